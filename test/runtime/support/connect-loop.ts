// A client that keeps connecting: `bun connect-loop.ts HOST PORT MS`.
// Connects, sends one line, waits for its echo, closes; again and again for
// MS milliseconds, one connection at a time. Prints one JSON line with the
// counts: ok (echo came back), refused (ECONNREFUSED), unanswered (closed
// before the echo), other (any other error, by code). Run it inside a
// machine's network namespace while the daemon restarts.
const [host = "127.0.0.1", port = "12345", ms = "3000"] = process.argv.slice(2);
const counts = { attempts: 0, ok: 0, refused: 0, unanswered: 0, other: {} as Record<string, number>, maxMs: 0 };
const end = Date.now() + Number(ms);

function once(n: number): Promise<"ok" | "refused" | "unanswered" | string> {
  const line = `attempt ${n}\n`;
  return new Promise((resolve) => {
    let got = "";
    let settled = false;
    const settle = (r: string) => {
      if (!settled) {
        settled = true;
        resolve(r);
      }
    };
    Bun.connect({
      hostname: host,
      port: Number(port),
      socket: {
        open(s) {
          s.write(line);
        },
        data(s, d) {
          got += d.toString();
          if (got.length >= line.length) {
            settle(got === line ? "ok" : "wrong"); // before end(): it runs close() at once
            s.end();
          }
        },
        close() {
          settle("unanswered");
        },
        error(_s, e) {
          settle((e as NodeJS.ErrnoException).code ?? String(e));
        },
        connectError(_s, e) {
          const code = (e as NodeJS.ErrnoException).code ?? String(e);
          settle(code === "ECONNREFUSED" ? "refused" : code);
        },
      },
    }).catch((e: NodeJS.ErrnoException) => settle(e.code === "ECONNREFUSED" ? "refused" : (e.code ?? String(e))));
  });
}

while (Date.now() < end) {
  const t0 = performance.now();
  const r = await once(++counts.attempts);
  counts.maxMs = Math.max(counts.maxMs, Math.round(performance.now() - t0));
  if (r === "ok" || r === "refused" || r === "unanswered") counts[r]++;
  else counts.other[r] = (counts.other[r] ?? 0) + 1;
}
console.log(JSON.stringify(counts));
