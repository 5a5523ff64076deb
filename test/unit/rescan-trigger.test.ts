import { expect, test } from "bun:test";
import { RescanTrigger } from "../../src/core/rescan-trigger.ts";

test("the first ask schedules a rescan at once; asks while it is scheduled schedule nothing", () => {
  const t = new RescanTrigger(1000);
  expect(t.ask(5000)).toBe(0);
  for (let now = 5000; now < 5100; now += 10) expect(t.ask(now)).toBeNull();
});

test("rescans start at least the gap apart: an ask soon after one waits for the rest of the gap", () => {
  const t = new RescanTrigger(1000);
  expect(t.ask(0)).toBe(0);
  t.fired();
  t.started(0);
  expect(t.ask(300)).toBe(700);
  expect(t.ask(400)).toBeNull();
  t.fired();
  t.started(1000);
  expect(t.ask(2500)).toBe(0); // past the gap: at once
});

test("a flood of asks draws one rescan per gap at most", () => {
  const t = new RescanTrigger(1000);
  let pending: number | null = null; // when the scheduled rescan starts
  const starts: number[] = [];
  for (let now = 0; now <= 10_000; now++) {
    if (pending !== null && now >= pending) {
      t.fired();
      t.started(now);
      starts.push(now);
      pending = null;
    }
    const delay = t.ask(now);
    if (delay !== null) pending = now + delay;
  }
  // The first ask (at 0) starts one on the next millisecond's turn, then one a second.
  expect(starts).toEqual(Array.from({ length: 10 }, (_, i) => 1 + i * 1000));
});

test("a rescan not asked for (SIGHUP) also counts: the next asked one waits for the gap", () => {
  const t = new RescanTrigger(1000);
  t.started(100);
  expect(t.ask(600)).toBe(500);
});
