// Self-signed certificates for tests, made with openssl (in Debian; .ci/run
// installs it): a key (mode 0600) and a certificate for "localhost" with a
// chosen serial number, so a test can tell which one a server presented.
import { chmodSync, readFileSync } from "node:fs";
import { join } from "node:path";

export interface TestCert {
  certFile: string;
  keyFile: string;
  cert: string;
  /** As node:tls reports it: hex, upper case. */
  serial: string;
}

export function makeCert(dir: string, name: string, serial: number): TestCert {
  const certFile = join(dir, `${name}.crt`);
  const keyFile = join(dir, `${name}.key`);
  const r = Bun.spawnSync(
    ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2",
      "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-set_serial", String(serial), "-keyout", keyFile, "-out", certFile],
    { stdout: "ignore", stderr: "pipe" },
  );
  if (r.exitCode !== 0) throw new Error(`openssl failed: ${r.stderr.toString()}`);
  chmodSync(keyFile, 0o600);
  return { certFile, keyFile, cert: readFileSync(certFile, "utf8"), serial: serial.toString(16).toUpperCase().padStart(2, "0") };
}
