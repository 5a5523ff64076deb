// The server's whole configuration as one plain object: what the CLI produces
// and what tests hand to startServer() directly.
import type { Cidr } from "./cidr.ts";

export type LogFormat = "text" | "json";
/** 0 quiet (warnings and errors), 1 normal, 2 verbose (-v), 3 debug (-vv). */
export type Verbosity = 0 | 1 | 2 | 3;

export interface Config {
  /** Addresses to bind TCP and UDP on (IPv4 or IPv6 literals); empty = every address, dual stack. */
  listen: string[];
  /** Bind TCP, TLS and UDP with SO_REUSEPORT so several processes share the ports. */
  reusePort: boolean;
  tcpPort: number;
  udpPort: number;
  maxTcp: number;
  backlog: number;
  maxLine: number;
  maxDatagram: number;
  /** Seconds a UDP peer stays "active" after its last datagram. */
  udpWindow: number;
  /** Seconds of client silence before a TCP connection is closed; 0 = never. */
  idleTimeout: number;
  /** Reply to UDP source ports below 1024 (off: inetd's rule against echo loops). */
  udpAllowLowPorts: boolean;
  /** UDP replies a second per source address (burst the same); 0 = no limit. Loopback is exempt. */
  udpRate: number;
  shutdownTokenFile: string | null;
  logFormat: LogFormat;
  verbosity: Verbosity;
  /** Where to serve GET /metrics (Prometheus text format); null = off. */
  metrics: HostPort | null;
  /** The name /instance answers (1-64 printable ASCII, no spaces); null = the hostname. */
  instance: string | null;
  /** --proxy-protocol-from: peers that must start with a PROXY header; null = none (nothing parsed). */
  proxyProtocolFrom: Cidr[] | null;
  /** --tls-port with --tls-cert and --tls-key; null = no TLS listener. */
  tls: TlsConfig | null;
}

export interface TlsConfig {
  port: number;
  /** PEM files; $CREDENTIALS_DIRECTORY/tls.crt and tls.key take precedence when present. */
  certFile: string;
  keyFile: string;
}

/** A host name or address literal (IPv6 without brackets) and a port. */
export interface HostPort {
  host: string;
  port: number;
}

export const DEFAULT_PORT = 12345;

/** Largest UDP payload the kernel can deliver (IPv6: 65535 - 8-byte header; IPv4 peers stop at 65507). */
export const MAX_UDP_PAYLOAD = 65527;

export const DEFAULTS: Config = {
  listen: [],
  reusePort: false,
  tcpPort: DEFAULT_PORT,
  udpPort: DEFAULT_PORT,
  maxTcp: 1024,
  backlog: 128,
  maxLine: 4096,
  maxDatagram: MAX_UDP_PAYLOAD,
  udpWindow: 60,
  idleTimeout: 0,
  udpAllowLowPorts: false,
  udpRate: 1000,
  shutdownTokenFile: null,
  logFormat: "text",
  verbosity: 1,
  metrics: null,
  instance: null,
  proxyProtocolFrom: null,
  tls: null,
};

/** Most --listen addresses (each is a TCP listener and a UDP socket, from the descriptor headroom). */
export const MAX_LISTEN = 16;
