// Facts about a peer's address as Bun reports it (dual-stack sockets show IPv4
// peers as "::ffff:a.b.c.d").

/** 127.0.0.0/8, ::1, or an IPv4-mapped loopback address. */
export function isLoopback(address: string): boolean {
  if (address === "::1") return true;
  const start = address.startsWith("::ffff:") ? 7 : 0;
  if (!address.startsWith("127.", start)) return false;
  // Per datagram on the UDP path: count the dots rather than split (no allocation).
  let dots = 0;
  for (let i = start; i < address.length; i++) if (address.charCodeAt(i) === 0x2e) dots++;
  return dots === 3;
}

/** The address as people write it: a v4-mapped IPv6 address ("::ffff:a.b.c.d") as plain IPv4. */
export function plainAddress(address: string): string {
  return address.startsWith("::ffff:") && address.includes(".") ? address.slice(7) : address;
}

/** "[v6]:port" or "v4:port" for logs; v4-mapped addresses shown as plain IPv4. */
export function formatPeer(address: string, port: number): string {
  const shown = plainAddress(address);
  return shown.includes(":") ? `[${shown}]:${port}` : `${shown}:${port}`;
}
