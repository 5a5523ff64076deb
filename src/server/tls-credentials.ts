// The TLS certificate and private key: $CREDENTIALS_DIRECTORY/tls.crt and
// tls.key (systemd's LoadCredential=) when present, else --tls-cert and
// --tls-key; the key file under the token's 0600 rule. Both are checked to be
// PEM that parses and to belong together before they are used, so a bad pair
// fails startup, and a bad pair on SIGHUP leaves the old one in force.
import type { TlsConfig } from "../core/config.ts";
import { readCredential, readPrivateFile, readPublicFile, SecretFileError } from "./secret-file.ts";

export const CERT_CREDENTIAL = "tls.crt";
export const KEY_CREDENTIAL = "tls.key";

export interface TlsCredentials {
  cert: string;
  key: string;
  /** The certificate's serial number (hex), for the log. */
  serial: string;
  /** Where they came from, for the log. */
  origin: string;
}

/** Throws SecretFileError (a StartupError) naming the file or the problem. */
export async function loadTlsCredentials(cfg: TlsConfig, credentialsDirectory: string | undefined): Promise<TlsCredentials> {
  const certCredential = readCredential(credentialsDirectory, CERT_CREDENTIAL);
  const keyCredential = readCredential(credentialsDirectory, KEY_CREDENTIAL);
  const certBytes = certCredential ?? readPublicFile("--tls-cert", cfg.certFile);
  const keyBytes = keyCredential ?? readPrivateFile("--tls-key", cfg.keyFile);
  const cert = new TextDecoder().decode(certBytes);
  const key = new TextDecoder().decode(keyBytes);
  // node:crypto loads only when TLS is configured.
  const { X509Certificate, createPrivateKey } = await import("node:crypto");
  let x509: InstanceType<typeof X509Certificate>;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new SecretFileError(`TLS certificate ${certCredential ? `credential ${CERT_CREDENTIAL}` : cfg.certFile}: not a PEM certificate (${firstLine(err)})`);
  }
  let privateKey: ReturnType<typeof createPrivateKey>;
  try {
    privateKey = createPrivateKey(key);
  } catch (err) {
    throw new SecretFileError(`TLS key ${keyCredential ? `credential ${KEY_CREDENTIAL}` : cfg.keyFile}: not a PEM private key (${firstLine(err)})`);
  }
  if (!x509.checkPrivateKey(privateKey)) throw new SecretFileError("TLS certificate and key do not belong together");
  const origin = [certCredential ? `credential ${CERT_CREDENTIAL}` : `file ${cfg.certFile}`, keyCredential ? `credential ${KEY_CREDENTIAL}` : `file ${cfg.keyFile}`].join(", ");
  return { cert, key, serial: x509.serialNumber, origin };
}

function firstLine(err: unknown): string {
  return (err instanceof Error ? err.message : String(err)).split("\n")[0]!;
}
