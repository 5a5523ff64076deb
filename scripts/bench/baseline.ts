// The floor: the smallest correct line-aware TCP + UDP echo on Bun.listen /
// Bun.udpSocket. Compiled exactly like epoll-echo (scripts/build.sh --entry)
// so the two are compared on equal terms.
//
// TCP: every read is answered with one write holding all of its complete
// lines; an unterminated tail is carried to the next read (capped, so memory
// stays bounded); when write() accepts fewer bytes than offered, the rest is
// kept, reading pauses, and drain() finishes the job before resuming.
// UDP: each datagram is sent back to its sender.
//
// usage: baseline --port N   (0 = kernel picks; the same number for TCP and UDP)
//   prints "listening (TCP port=P, UDP port=Q)" on stderr when ready.

const LF = 0x0a;
const MAX_CARRY = 64 * 1024;

/** Per-connection state, created only when a connection needs one. */
interface State {
  carry: Uint8Array | null; // unterminated tail of the last read
  out: Uint8Array | null; // bytes write() did not take yet
}

const i = process.argv.indexOf("--port");
const port = i > 0 ? Number(process.argv[i + 1]) : 0;

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const r = new Uint8Array(a.length + b.length);
  r.set(a, 0);
  r.set(b, a.length);
  return r;
}

const tcp = Bun.listen<State | undefined>({
  hostname: "::",
  port,
  socket: {
    data(s, chunk) {
      let buf: Uint8Array = chunk;
      let st = s.data;
      if (st !== undefined && st.carry !== null) {
        buf = join(st.carry, chunk);
        st.carry = null;
      }
      const end = buf.lastIndexOf(LF) + 1;
      if (end < buf.length) {
        if (buf.length - end > MAX_CARRY) return void s.end();
        if (st === undefined) st = s.data = { carry: null, out: null };
        st.carry = buf.slice(end);
      }
      if (end === 0) return;
      const n = s.write(buf, 0, end);
      if (n < end && n >= 0) {
        if (st === undefined) st = s.data = { carry: null, out: null };
        st.out = buf.slice(n, end);
        s.pause();
      }
    },
    drain(s) {
      const st = s.data;
      if (st === undefined || st.out === null) return;
      const n = s.write(st.out);
      if (n < 0) return;
      if (n === st.out.length) {
        st.out = null;
        s.resume();
      } else st.out = st.out.subarray(n);
    },
    error() {},
  },
});

const udp = await Bun.udpSocket({
  hostname: "::",
  port: port === 0 ? 0 : port,
  socket: {
    data(sock, buf, rport, addr) {
      sock.send(buf, rport, addr); // false = kernel buffer full: UDP may drop
    },
  },
});

console.error(`baseline: listening (TCP port=${tcp.port}, UDP port=${udp.port})`);
