import { afterAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadShutdownToken, TokenError } from "../../src/server/token.ts";

const dir = mkdtempSync(join(tmpdir(), "epoll-echo-token-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, content: string, mode = 0o600): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  chmodSync(path, mode);
  return path;
}
const text = (t: Uint8Array | null) => (t === null ? null : Buffer.from(t).toString("latin1"));

describe("loadShutdownToken", () => {
  test("no source: no token", () => {
    expect(loadShutdownToken({ tokenFile: null })).toEqual({ token: null, origin: "none" });
  });

  test("a 0600 file, surrounding whitespace trimmed", () => {
    const r = loadShutdownToken({ tokenFile: file("t1", "  s3 cret \n") });
    expect(text(r.token)).toBe("s3 cret");
    expect(r.origin).toStartWith("file ");
  });

  test("an empty or blank file means no token", () => {
    expect(loadShutdownToken({ tokenFile: file("t2", " \n\t") }).token).toBeNull();
  });

  test("group- or world-accessible files are refused", () => {
    for (const mode of [0o640, 0o604, 0o660, 0o620]) {
      expect(() => loadShutdownToken({ tokenFile: file(`m${mode}`, "x", mode) })).toThrow(/group or others/);
    }
    expect(() => loadShutdownToken({ tokenFile: file("m400", "x", 0o400) })).not.toThrow();
  });

  test("missing file, directory: clear errors", () => {
    expect(() => loadShutdownToken({ tokenFile: join(dir, "nope") })).toThrow(new TokenError(`--shutdown-token-file ${join(dir, "nope")}: no such file`));
    expect(() => loadShutdownToken({ tokenFile: dir })).toThrow(/not a regular file/);
  });

  test("the systemd credential wins over the file", () => {
    const creds = join(dir, "creds");
    mkdirSync(creds);
    writeFileSync(join(creds, "shutdown.token"), "from-cred\n");
    const r = loadShutdownToken({ credentialsDirectory: creds, tokenFile: file("t3", "from-file") });
    expect(text(r.token)).toBe("from-cred");
    expect(r.origin).toBe("credential shutdown.token");
  });

  test("a credentials directory without the credential falls back to the file", () => {
    const empty = join(dir, "empty-creds");
    mkdirSync(empty);
    expect(text(loadShutdownToken({ credentialsDirectory: empty, tokenFile: file("t4", "f") }).token)).toBe("f");
  });

  test("error messages never contain the token", () => {
    try {
      loadShutdownToken({ tokenFile: file("t5", "topsecret", 0o644) });
    } catch (err) {
      expect(String(err)).not.toContain("topsecret");
    }
  });
});
