import { describe, expect, it } from "vitest";
import { explainAll, explainRow, fitScaler, generateBlobs, kmeans, segmentProfiles, transform } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("explanations", () => {
  it("decomposes the squared margin per feature on a hand-worked example", () => {
    // centres (0,0) and (4,0); x = (1, 3)
    const C = Float64Array.from([0, 0, 4, 0]);
    const ex = explainRow([1, 3], C, 2, 0, ["a", "b"], 2);
    expect(ex.segment).toBe(0);
    expect(ex.secondSegment).toBe(1);
    expect(ex.nearestDistance).toBeCloseTo(Math.sqrt(10), 12);
    expect(ex.secondDistance).toBeCloseTo(Math.sqrt(18), 12);
    expect(ex.margin).toBeCloseTo(Math.sqrt(18) - Math.sqrt(10), 12);
    expect(ex.squaredMargin).toBeCloseTo(8, 12);
    // a: (1-4)² − 1² = 8; b: 9 − 9 = 0
    expect(ex.topFeatures.map((t) => [t.feature, t.contribution])).toEqual([
      ["a", 8],
      ["b", 0],
    ]);
  });

  it("gives non-negative margins and consistent top features for every subject", () => {
    const { X } = generateBlobs({ n: 1500, d: 4, k: 4, seed: 9 });
    const r = kmeans(X, { k: 4, seed: 2 });
    const names = ["f0", "f1", "f2", "f3"];
    const all = explainAll(X, r.centroids, 4, r.labels, names, 4);
    const bad: number[] = [];
    for (let i = 0; i < all.length; i++) {
      const ex = all[i]!;
      const sum = ex.topFeatures.reduce((s, t) => s + t.contribution, 0);
      let ok = ex.segment === r.labels[i] && ex.margin! >= 0 && Math.abs(sum - ex.squaredMargin!) < 1e-9 && ex.topFeatures[0]!.contribution > 0;
      for (let q = 1; q < ex.topFeatures.length; q++) ok &&= ex.topFeatures[q - 1]!.contribution >= ex.topFeatures[q]!.contribution;
      if (!ok) bad.push(i);
    }
    expect(bad).toEqual([]);
  });

  it("has no runner-up with k = 1", () => {
    const ex = explainRow([1, 2], Float64Array.from([0, 0]), 1, 0, ["a", "b"]);
    expect(ex).toMatchObject({ secondSegment: null, secondDistance: null, margin: null, squaredMargin: null, topFeatures: [] });
    expectReason(() => explainRow([1, 2], Float64Array.from([0, 0]), 1, 3, ["a", "b"]), "K_INVALID");
    expectReason(() => explainRow([1, 2], Float64Array.from([0, 0]), 1, 0, ["a"]), "SHAPE_MISMATCH");
  });

  it("profiles segments in original units through the scaler inverse", () => {
    const raw = { data: Float64Array.from([1, 100, 3, 300, 10, 1000, 12, 1200]), rows: 4, cols: 2 };
    const s = fitScaler(raw, "zscore");
    const Xs = transform(s, raw);
    const r = kmeans(Xs, { k: 2, seed: 1 });
    const prof = segmentProfiles(r.centroids, 2, r.labels, ["a", "b"], s);
    const small = prof.find((p) => p.centre.a! < 5)!;
    const large = prof.find((p) => p.centre.a! > 5)!;
    expect(small.centre.a).toBeCloseTo(2, 9);
    expect(small.centre.b).toBeCloseTo(200, 9);
    expect(large.centre.a).toBeCloseTo(11, 9);
    expect(large.centre.b).toBeCloseTo(1100, 9);
    expect(small.size + large.size).toBe(4);
    expect(small.share).toBe(0.5);
  });
});
