import { parseCli, usage, VERSION } from "./cli.ts";
const r = parseCli(process.argv.slice(2));
if (r.kind === "version") console.log(`epoll-echo ${VERSION}`);
else if (r.kind === "help") console.log(await usage());
