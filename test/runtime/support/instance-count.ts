// Which instance answers: `bun instance-count.ts HOST PORT N [udp]`.
// Opens N TCP connections at once (or N UDP sockets, each its own source
// port), sends `/instance` on each, keeps every connection open until all
// have answered, then closes them. Prints one JSON line: the count per
// instance name, and how many got no answer (with the first error). Run it
// in a machine's network namespace, against instances sharing one port.
const [host = "127.0.0.1", port = "12345", n = "400", proto = "tcp"] = process.argv.slice(2);
const counts: Record<string, number> = {};
let failed = 0;
let firstError = "";
const TIMEOUT_MS = 10_000;

function fail(why: string): void {
  failed++;
  firstError ||= why;
}

function answer(reply: string): void {
  const name = reply.endsWith("\n") ? reply.slice(0, -1) : "";
  if (name === "" || name.includes("\n")) return fail(`bad reply ${JSON.stringify(reply)}`);
  counts[name] = (counts[name] ?? 0) + 1;
}

async function tcp(): Promise<void> {
  const sockets: { end(): void }[] = [];
  await Promise.all(
    Array.from({ length: Number(n) }, () => {
      return new Promise<void>((resolve) => {
        let got = "";
        let done = false;
        const settle = (f: () => void) => {
          if (!done) {
            done = true;
            f();
            resolve();
          }
        };
        const timer = setTimeout(() => settle(() => fail("timeout")), TIMEOUT_MS);
        Bun.connect({
          hostname: host,
          port: Number(port),
          socket: {
            open(s) {
              sockets.push(s);
              s.write("/instance\n");
            },
            data(_s, d) {
              got += d.toString("latin1");
              if (got.endsWith("\n")) settle(() => (clearTimeout(timer), answer(got)));
            },
            close() {
              settle(() => (clearTimeout(timer), fail("closed before the answer")));
            },
            error(_s, e) {
              settle(() => (clearTimeout(timer), fail(String(e))));
            },
            connectError(_s, e) {
              settle(() => (clearTimeout(timer), fail(String(e))));
            },
          },
        }).catch((e) => settle(() => (clearTimeout(timer), fail(String(e)))));
      });
    }),
  );
  for (const s of sockets) s.end();
}

async function udp(): Promise<void> {
  await Promise.all(
    Array.from({ length: Number(n) }, async () => {
      let resolveReply: (s: string) => void = () => {};
      const reply = new Promise<string>((r) => (resolveReply = r));
      const sock = await Bun.udpSocket({
        socket: {
          data(_s, buf) {
            resolveReply(Buffer.from(buf).toString("latin1"));
          },
        },
      });
      sock.send("/instance\n", Number(port), host);
      let timer: Timer | undefined;
      const got = await Promise.race([reply, new Promise<null>((r) => (timer = setTimeout(() => r(null), TIMEOUT_MS)))]);
      clearTimeout(timer);
      sock.close();
      if (got === null) fail("timeout");
      else answer(got);
    }),
  );
}

await (proto === "udp" ? udp() : tcp());
console.log(JSON.stringify({ counts, failed, firstError }));
