import { describe, expect, test } from "bun:test";
import { planFdBudget } from "../../src/sys/fd-limit.ts";

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
