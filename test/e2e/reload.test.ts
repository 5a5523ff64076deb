// SIGHUP: never ends the process; it is logged at info level and whatever is
// reloadable is reloaded (here: the local addresses UDP answers on).
import { expect, test } from "bun:test";
import { startDaemon } from "../support/daemon.ts";
import { TcpClient } from "../support/net.ts";

test("SIGHUP is logged at info level and does not end anything: clients keep their connection, the server keeps serving", async () => {
  const d = await startDaemon(["--port", "0"]);
  try {
    const c = await TcpClient.connect(d.tcpPort);
    c.send("before\n");
    expect((await c.read(7)).toString()).toBe("before\n");
    for (let i = 1; i <= 3; i++) {
      d.proc.kill("SIGHUP");
      await d.waitForLog(new RegExp(`(?:SIGHUP received[^]*){${i}}`));
    }
    expect(d.stderr()).toMatch(/INFO.*SIGHUP received: reloading what="UDP addresses"/i);
    c.send("after\n");
    expect((await c.read(6)).toString()).toBe("after\n");
    const fresh = await TcpClient.connect(d.tcpPort);
    fresh.send("new\n");
    expect((await fresh.read(4)).toString()).toBe("new\n");
    c.close();
    fresh.close();
  } finally {
    expect(await d.stop()).toBe(0);
  }
});
