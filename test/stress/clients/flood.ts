// Connection flood against a full server: `hold` connections opened and kept
// open (never closed from this side, half-open allowed), plus `churnPerSec`
// connect-read-close cycles a second for `durationMs`. Classifies what each
// connection got: exactly "server busy\n" then FIN, an echo-capable slot, or
// nothing within `replyTimeoutMs` (what a server stuck at EMFILE would give).
// `busyText` replaces "server busy\n" as the expected refusal (e.g. the
// metrics listener's 503 response).
//   args: { host, port, hold, churnPerSec, durationMs, replyTimeoutMs, busyText }
// Emits "held" once the held connections are answered, then "result".
import type { Socket } from "bun";
import { args, emit, nextCommand, pool } from "./lib.ts";

const BUSY: string = args.busyText ?? "server busy\n";
const replyTimeoutMs: number = args.replyTimeoutMs ?? 3000;
let busy = 0;
let other = 0;
let silent = 0;
let refused = 0;
let firstOther = "";
const held: Socket<{ got: string }>[] = [];

/** One connection; resolves with what it got. `keep` leaves it open. */
async function attempt(keep: boolean): Promise<void> {
  let socket: Socket<{ got: string; ended: boolean }>;
  const state = { got: "", ended: false };
  try {
    socket = await Bun.connect({
      hostname: args.host ?? "127.0.0.1",
      port: args.port,
      data: state,
      allowHalfOpen: true,
      socket: {
        data: (s, d) => void (s.data.got += Buffer.from(d).toString("latin1")),
        end: (s) => void (s.data.ended = true),
        close: (s) => void (s.data.ended = true),
        error: () => {},
      },
    });
  } catch {
    refused++;
    return;
  }
  const t0 = performance.now();
  while (!state.ended && state.got.length < BUSY.length && performance.now() - t0 < replyTimeoutMs) await Bun.sleep(10);
  if (state.got === BUSY) busy++;
  else if (state.got === "") silent++;
  else {
    other++;
    firstOther ||= JSON.stringify(state.got.slice(0, 60));
  }
  if (keep) held.push(socket as unknown as Socket<{ got: string }>);
  else socket.terminate();
}

await pool(Array.from({ length: args.hold ?? 0 }), 50, () => attempt(true));
emit("held", { held: held.length, busy, other, silent, refused, firstOther });
const go = await nextCommand("go");
const durationMs: number = go.durationMs ?? args.durationMs ?? 3000;
const perSec: number = args.churnPerSec ?? 100;
const t0 = performance.now();
const inflight: Promise<void>[] = [];
let started = 0;
while (performance.now() - t0 < durationMs) {
  const due = Math.floor(((performance.now() - t0) / 1000) * perSec);
  while (started < due) {
    started++;
    inflight.push(attempt(false));
  }
  await Bun.sleep(10);
}
await Promise.all(inflight);
emit("result", { held: held.length, churned: started, busy, other, silent, refused, firstOther });
await nextCommand("release");
for (const s of held) s.end();
emit("released", {});
await Bun.sleep(200);
process.exit(0);
