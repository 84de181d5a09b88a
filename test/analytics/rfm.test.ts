import { describe, expect, it } from "vitest";
import { RFM_GRID, RFM_SEGMENTS, buildFeatures, quintileScores, rfm, rfmFromFeatures, rfmSegment } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("quintile scores", () => {
  it("scores 10 distinct values 1,1,2,2,…,5,5 (recency reversed)", () => {
    const v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
    expect(Array.from(quintileScores(v, true))).toEqual([1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    expect(Array.from(quintileScores(v, false))).toEqual([5, 5, 4, 4, 3, 3, 2, 2, 1, 1]);
  });

  it("gives ties the same score: 1 + floor(5·below/n), order-independent", () => {
    // below = number of strictly smaller values: 0,0,0,0,4,4,6,7,8,9
    expect(Array.from(quintileScores([0, 0, 0, 0, 5, 5, 10, 20, 30, 40]))).toEqual([1, 1, 1, 1, 3, 3, 4, 4, 5, 5]);
    expect(Array.from(quintileScores([40, 5, 0, 30, 0, 10, 5, 0, 20, 0]))).toEqual([5, 3, 1, 5, 1, 4, 3, 1, 4, 1]);
    expect(Array.from(quintileScores([7, 7, 7]))).toEqual([1, 1, 1]);
    expect(Array.from(quintileScores([3]))).toEqual([1]);
  });

  it("rejects empty and non-finite input", () => {
    expectReason(() => quintileScores([]), "EMPTY_INPUT");
    expectReason(() => quintileScores([1, Number.NaN]), "NAN_VALUE");
  });
});

describe("RFM segments", () => {
  it("follows the documented grid", () => {
    const cases: [number, number, number, string][] = [
      [5, 5, 5, "Champions"],
      [4, 5, 4, "Champions"],
      [4, 4, 4, "Loyal Customers"],
      [3, 5, 4, "Loyal Customers"],
      [5, 2, 3, "Potential Loyalists"],
      [5, 1, 1, "New Customers"],
      [4, 1, 1, "Promising"],
      [3, 3, 3, "Need Attention"],
      [3, 2, 1, "About to Sleep"],
      [2, 3, 4, "At Risk"],
      [1, 3, 3, "At Risk"],
      [1, 5, 5, "Cannot Lose Them"],
      [2, 5, 5, "Cannot Lose Them"],
      [2, 1, 2, "Hibernating"],
      [1, 1, 1, "Lost"],
    ];
    for (const [r, f, m, s] of cases) expect(rfmSegment(r, f, m), `${r}${f}${m}`).toBe(s);
    expect(new Set(RFM_GRID.flat())).toEqual(new Set(RFM_SEGMENTS));
    expectReason(() => rfmSegment(0, 1, 1), "BAD_OPTION");
  });

  it("scores and segments a hand-computed population", () => {
    const res = rfm({
      subjects: ["a", "b", "c", "d", "e"],
      recency: [1, 30, 200, 2, 400], // days; small is good
      frequency: [20, 5, 1, 1, 12],
      monetary: [900, 100, 10, 15, 800],
    });
    // n = 5 → score = 1 + below
    expect(Array.from(res.r)).toEqual([5, 3, 2, 4, 1]);
    expect(Array.from(res.f)).toEqual([5, 3, 1, 1, 4]);
    expect(Array.from(res.m)).toEqual([5, 3, 1, 2, 4]);
    expect(res.segments).toEqual(["Champions", "Need Attention", "Hibernating", "Potential Loyalists", "Cannot Lose Them"]);
    expect(res.counts.Champions).toBe(1);
    expect(res.counts.Lost).toBe(0);
    expectReason(() => rfm({ subjects: ["a"], recency: [1, 2], frequency: [1], monetary: [1] }), "LENGTH_MISMATCH");
    expectReason(() => rfm({ subjects: [], recency: [], frequency: [], monetary: [] }), "EMPTY_INPUT");
  });

  it("reads the recency/frequency/monetary columns of a feature matrix", () => {
    const X = buildFeatures(
      [
        { subject: "x", at: 90, amount: 5, category: "c", channel: "app" },
        { subject: "y", at: 10, amount: 50, category: "c", channel: "app" },
        { subject: "y", at: 20, amount: 50, category: "c", channel: "app" },
      ],
      [
        { subject: "x", joinedAt: 0 },
        { subject: "y", joinedAt: 0 },
      ],
      { asOf: 100 },
    );
    const res = rfmFromFeatures(X);
    expect(Array.from(res.r)).toEqual([3, 1]);
    expect(Array.from(res.f)).toEqual([1, 3]);
    expect(Array.from(res.m)).toEqual([1, 3]);
  });
});
