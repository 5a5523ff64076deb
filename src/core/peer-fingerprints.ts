// Every UDP peer (address, port) ever heard from, as a 64-bit fingerprint, so
// total_clients counts a peer once over the process lifetime even after it
// left the --udp-window table. Open addressing with linear probing in one
// Uint32Array (two words a slot, 0/0 = empty), doubled as it fills (load
// <= 1/2) up to 2^21 slots: 16 MiB for 2^20 peers. Two peers share a
// fingerprint with probability about n^2 / 2^65 (1 in 36 million at 2^20).

/** Peers the set holds at most. */
export const FINGERPRINT_CAP = 1 << 20;
const MAX_SLOTS = FINGERPRINT_CAP * 2;
const MIN_SLOTS = 1 << 10;

export type FingerprintAdd = "added" | "present" | "full";

/** A set's content as plain data: its slot table and how many fingerprints it holds. */
export interface FingerprintState {
  size: number;
  slots: Uint32Array;
}

export class PeerFingerprintSet {
  private slots = new Uint32Array(MIN_SLOTS * 2);
  private mask = MIN_SLOTS - 1;
  /** Fingerprints held. */
  size = 0;
  // The fingerprint of the last hash() call (no allocation per datagram).
  private hi = 0;
  private lo = 0;

  constructor(readonly cap = FINGERPRINT_CAP) {}

  /** Bytes of the table now (its largest is 16 MiB). */
  get bytes(): number {
    return this.slots.byteLength;
  }

  /** The content, copied. */
  state(): FingerprintState {
    return { size: this.size, slots: this.slots.slice() };
  }

  /** Take over a state() (of a set with the same hashing); a table that is not one this set could have made is refused. */
  restore(state: FingerprintState): void {
    const slotCount = state.slots.length / 2;
    const shapeOk = Number.isInteger(slotCount) && slotCount >= MIN_SLOTS && slotCount <= MAX_SLOTS && (slotCount & (slotCount - 1)) === 0;
    if (!shapeOk || !Number.isInteger(state.size) || state.size < 0 || 2 * state.size > slotCount || state.size > this.cap) {
      throw new Error("peer fingerprint table: not a table of this set");
    }
    this.slots = state.slots.slice();
    this.mask = slotCount - 1;
    this.size = state.size;
  }

  /** Remember the peer; "present" if it was already, "full" if new but the set is at its cap. */
  add(address: string, port: number): FingerprintAdd {
    this.hash(address, port);
    const hi = this.hi;
    const lo = this.lo;
    let i = this.find(hi, lo);
    const slots = this.slots;
    if (slots[2 * i] === hi && slots[2 * i + 1] === lo) return "present";
    if (this.size >= this.cap) return "full";
    if (2 * (this.size + 1) > this.mask + 1 && this.mask + 1 < MAX_SLOTS) {
      this.grow();
      i = this.find(hi, lo);
    }
    this.slots[2 * i] = hi;
    this.slots[2 * i + 1] = lo;
    this.size++;
    return "added";
  }

  /** The slot holding (hi, lo), or the empty slot where it would go. */
  private find(hi: number, lo: number): number {
    const slots = this.slots;
    const mask = this.mask;
    let i = (lo ^ (hi >>> 7)) & mask;
    for (;;) {
      const h = slots[2 * i]!;
      const l = slots[2 * i + 1]!;
      if ((h === hi && l === lo) || (h === 0 && l === 0)) return i;
      i = (i + 1) & mask;
    }
  }

  private grow(): void {
    const old = this.slots;
    const count = (this.mask + 1) * 2;
    this.slots = new Uint32Array(count * 2);
    this.mask = count - 1;
    for (let j = 0; j < old.length; j += 2) {
      const hi = old[j]!;
      const lo = old[j + 1]!;
      if (hi === 0 && lo === 0) continue;
      const i = this.find(hi, lo);
      this.slots[2 * i] = hi;
      this.slots[2 * i + 1] = lo;
    }
  }

  /** Two independent 32-bit hashes of (address, port), each finished with murmur3's fmix32. */
  private hash(address: string, port: number): void {
    let a = 0x811c9dc5 ^ port;
    let b = 0x9747b28c ^ Math.imul(port, 0x85ebca6b);
    for (let k = 0; k < address.length; k++) {
      const c = address.charCodeAt(k);
      a = Math.imul(a ^ c, 0x01000193);
      b = Math.imul(b ^ c, 0x5bd1e995);
      b ^= b >>> 13;
    }
    this.hi = fmix32(a ^ address.length) >>> 0;
    this.lo = fmix32(b + a) >>> 0;
    if (this.hi === 0 && this.lo === 0) this.lo = 1; // 0/0 marks an empty slot
  }
}

function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
