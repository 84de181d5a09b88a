import { describe, expect, it } from "vitest";
import { adjustedRandIndex } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("adjustedRandIndex", () => {
  it("matches scikit-learn reference values", () => {
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 0, 1, 2])).toBeCloseTo(4 / 7, 12);
    expect(adjustedRandIndex([0, 0, 0, 0], [0, 1, 2, 3])).toBe(0);
    expect(adjustedRandIndex([0, 0, 1, 1], [0, 1, 0, 1])).toBeCloseTo(-0.5, 12);
    expect(adjustedRandIndex([0, 0, 0, 1, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2, 2, 2])).toBeCloseTo(0.18181818181818182, 12);
  });

  it("is 1 for identical partitions up to renaming, strings included", () => {
    expect(adjustedRandIndex([0, 0, 1, 1, 2], [5, 5, 3, 3, 9])).toBe(1);
    expect(adjustedRandIndex(["a", "a", "b"], Int32Array.from([1, 1, 0]))).toBe(1);
    expect(adjustedRandIndex([1, 1, 1], [2, 2, 2])).toBe(1);
    expect(adjustedRandIndex([0, 1, 2], [2, 0, 1])).toBe(1);
    expect(adjustedRandIndex([], [])).toBe(1);
  });

  it("rejects labelings of different lengths", () => {
    expectReason(() => adjustedRandIndex([0, 1], [0]), "LENGTH_MISMATCH");
  });
});
