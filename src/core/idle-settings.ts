// The runtime's settings for an idle server, and the names the re-exec at
// rest goes by (src/server/handover.ts). Small on purpose: every start reads
// it; the hand-over itself (src/core/handover.ts) loads only when used.

/**
 * One GC marker thread, no allocator scavenger thread: the units'
 * Environment= and the image's ENV. A process started without the first one
 * re-executes itself with both once it is at rest; any value of it in the
 * environment means the operator chose, and it never does.
 */
export const IDLE_SETTINGS: readonly (readonly [string, string])[] = [
  ["BUN_JSC_numberOfGCMarkers", "1"],
  ["MIMALLOC_SCAVENGER", "0"],
];
export const OPT_OUT_VARIABLE = IDLE_SETTINGS[0]![0];

/** The environment variable naming the hand-over descriptor; removed from the environment by the process that reads it. */
export const HANDOVER_VARIABLE = "EPOLL_ECHO_HANDOVER";

/** `IDLE_SETTINGS` as the log shows them: "A=1 B=0". */
export function settingsText(): string {
  return IDLE_SETTINGS.map(([k, v]) => `${k}=${v}`).join(" ");
}

/** Whether a process with this environment should re-execute itself with IDLE_SETTINGS (the opt-out variable is absent). */
export function wantsIdleSettings(env: Readonly<Record<string, string | undefined>>): boolean {
  return env[OPT_OUT_VARIABLE] === undefined;
}
