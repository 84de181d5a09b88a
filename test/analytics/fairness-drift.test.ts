import { describe, expect, it } from "vitest";
import { Rng, fairnessReports, psi, psiByFeature, segmentFairness } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("fairness", () => {
  it("computes shares per group and min/max disparity ratios on a constructed example", () => {
    // group f: 4 subjects (A,A,A,B); group m: 2 subjects (A,B); one subject with no value
    const segs = ["A", "A", "A", "B", "A", "B", "B"];
    const gender = ["f", "f", "f", "f", "m", "m", undefined];
    const rep = segmentFairness("gender", segs, gender);
    expect(rep.groups).toEqual([
      { value: "f", size: 4 },
      { value: "m", size: 2 },
    ]);
    expect(rep.missing).toBe(1);
    const a = rep.segments.find((s) => s.segment === "A")!;
    const b = rep.segments.find((s) => s.segment === "B")!;
    expect(a.shares).toEqual({ f: 0.75, m: 0.5 });
    expect(a.ratio).toBeCloseTo(0.5 / 0.75, 15);
    expect(a.flagged).toBe(true);
    expect(b.shares).toEqual({ f: 0.25, m: 0.5 });
    expect(b.ratio).toBe(0.5);
    expect(rep.minRatio).toBe(0.5);
  });

  it("gives ratio 1 for parity or a single group, and skips absent attributes", () => {
    const rep = segmentFairness("region", ["A", "B", "A", "B"], ["n", "n", "s", "s"]);
    expect(rep.segments.every((s) => s.ratio === 1 && !s.flagged)).toBe(true);
    expect(segmentFairness("x", ["A", "B"], ["g", "g"]).minRatio).toBe(1);
    const reports = fairnessReports(["A", "B"], [
      { subject: "1", joinedAt: 0, gender: "f" },
      { subject: "2", joinedAt: 0, gender: "m" },
    ]);
    expect(reports.map((r) => r.attribute)).toEqual(["gender"]);
    expect(reports[0]!.minRatio).toBe(0);
    expectReason(() => segmentFairness("g", ["A"], []), "LENGTH_MISMATCH");
    expectReason(() => segmentFairness("g", [], []), "EMPTY_INPUT");
  });
});

describe("PSI drift", () => {
  const normal = (n: number, mu: number, seed: number): Float64Array => {
    const r = new Rng(seed);
    return Float64Array.from({ length: n }, () => mu + r.normal());
  };

  it("is 0 for identical distributions and > 0.25 for a shifted one", () => {
    const ref = normal(5000, 0, 1);
    expect(psi(ref, ref)).toBe(0);
    expect(psi(ref, ref.slice().reverse())).toBe(0);
    expect(psi(ref, normal(5000, 0, 2))).toBeLessThan(0.02);
    expect(psi(ref, normal(5000, 1, 3))).toBeGreaterThan(0.25);
  });

  it("matches a hand computation with deduplicated quantile edges and epsilon for empty bins", () => {
    // reference 0..9, 2 bins: edge = median 4.5; current all in the upper bin
    const ref = Float64Array.from([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const cur = Float64Array.from([7, 8, 9, 10]);
    const expected = (1e-4 - 0.5) * Math.log(1e-4 / 0.5) + (1 - 0.5) * Math.log(1 / 0.5);
    expect(psi(ref, cur, { bins: 2 })).toBeCloseTo(expected, 12);
    // a reference of ties collapses to one edge
    expect(psi([0, 0, 0, 0, 1], [0, 0, 0, 0, 1], { bins: 10 })).toBe(0);
  });

  it("runs per shared feature name and rejects bad input", () => {
    const ref = { data: Float64Array.from([1, 10, 2, 20, 3, 30]), rows: 3, cols: 2, names: ["a", "b"], subjects: ["x", "y", "z"] };
    const cur = { data: Float64Array.from([100, 1, 200, 2, 300, 3]), rows: 3, cols: 2, names: ["c", "a"], subjects: ["x", "y", "z"] };
    const out = psiByFeature(ref, cur, { bins: 2 });
    expect(out).toEqual([{ feature: "a", psi: 0, status: "stable" }]);
    expectReason(() => psiByFeature(ref, { ...cur, names: ["p", "q"] }), "FEATURE_MISMATCH");
    expectReason(() => psi([], [1]), "EMPTY_INPUT");
    expectReason(() => psi([1, Number.NaN], [1]), "NAN_VALUE");
    expectReason(() => psi([1], [1], { bins: 1 }), "BAD_OPTION");
  });
});
