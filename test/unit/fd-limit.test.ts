import { describe, expect, test } from "bun:test";
import { FD_HEADROOM, headroomFor, needsOpenCount, planFdBudget } from "../../src/sys/fd-limit.ts";

describe("planFdBudget", () => {
  test("raises the soft limit to fit --max-tcp plus headroom", () => {
    expect(planFdBudget({ soft: 1024, hard: 65536 }, 1024, 64)).toEqual({ soft: 1088, maxTcp: 1024, clamped: false });
  });

  test("never lowers a soft limit that is already large enough", () => {
    expect(planFdBudget({ soft: 20000, hard: 20000 }, 1024, 64)).toEqual({ soft: 20000, maxTcp: 1024, clamped: false });
  });

  test("clamps --max-tcp when even the hard limit is too small", () => {
    expect(planFdBudget({ soft: 64, hard: 64 }, 1024, 64)).toEqual({ soft: 64, maxTcp: 1, clamped: true });
    expect(planFdBudget({ soft: 256, hard: 512 }, 1024, 64)).toEqual({ soft: 512, maxTcp: 448, clamped: true });
  });
});

describe("needsOpenCount", () => {
  test("no count when the soft limit already holds --max-tcp plus the largest headroom", () => {
    expect(needsOpenCount({ soft: 20000, hard: 20000 }, 15000)).toBe(false);
    expect(needsOpenCount({ soft: 1088, hard: 1088 }, 1024)).toBe(false);
    expect(needsOpenCount({ soft: 1087, hard: 65536 }, 1024)).toBe(true);
    expect(needsOpenCount({ soft: 1024, hard: 65536 }, 1024)).toBe(true);
  });

  test("skipping the count never changes the plan: every headroom gives the same one", () => {
    for (const [soft, hard] of [[1088, 1088], [1088, 4096], [5000, 5000], [20000, 1_000_000]] as const) {
      for (const maxTcp of [1, 100, 1024, soft - FD_HEADROOM]) {
        const limit = { soft, hard };
        if (needsOpenCount(limit, maxTcp)) continue;
        const plan = planFdBudget(limit, maxTcp, FD_HEADROOM);
        expect(plan).toEqual({ soft, maxTcp, clamped: false });
        for (let open = 0; open <= FD_HEADROOM; open++) expect(planFdBudget(limit, maxTcp, headroomFor(open))).toEqual(plan);
      }
    }
  });
});
