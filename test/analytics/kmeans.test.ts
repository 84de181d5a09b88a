import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { Rng, adjustedRandIndex, chooseK, generateBlobs, kmeans, predict, seedCentres, silhouette, type Matrix } from "../../analytics/index.js";
import { expectReason, inertiaOf, naiveLloyd } from "./helpers.js";

function randomMatrix(n: number, d: number, seed: number): Matrix {
  const r = new Rng(seed);
  return { data: Float64Array.from({ length: n * d }, () => r.normal()), rows: n, cols: d };
}

describe("kmeans", () => {
  it("recovers planted clusters (ARI >= 0.9) and reports a consistent result", () => {
    const { X, labels } = generateBlobs({ n: 3000, d: 5, k: 4, seed: 11 });
    const r = kmeans(X, { k: 4, seed: 1, nInit: 2 });
    expect(adjustedRandIndex(r.labels, labels)).toBeGreaterThanOrEqual(0.9);
    expect(r.converged).toBe(true);
    expect(r.centroids.length).toBe(20);
    expect(r.labels.length).toBe(3000);
    expect(r.inertia).toBeCloseTo(inertiaOf(X.data, 3000, 5, r.centroids, r.labels), 6);
    expect(r.inertia).toBe(Math.min(...r.inertias));
    expect(r.inertias.length).toBe(2);
    // labels are the nearest centres of the returned centroids
    expect(predict(r.centroids, 4, X)).toEqual(r.labels);
  });

  it("is deterministic for a seed; different seeds may differ", () => {
    const X = randomMatrix(600, 3, 5);
    const a = kmeans(X, { k: 7, seed: 9 });
    const b = kmeans(X, { k: 7, seed: 9 });
    expect(b.labels).toEqual(a.labels);
    expect(b.centroids).toEqual(a.centroids);
    expect(b.inertia).toBe(a.inertia);
    const others = [1, 2, 3, 4, 5].map((s) => kmeans(X, { k: 7, seed: s }).centroids);
    expect(others.some((c) => c.some((v, q) => v !== a.centroids[q]))).toBe(true);
  });

  it("gives bit-identical results with 1 and 2 threads (shared-memory workers)", () => {
    const { X } = generateBlobs({ n: 20_000, d: 6, k: 5, seed: 3 });
    const one = kmeans(X, { k: 5, seed: 4, nInit: 2, workers: 1 });
    const two = kmeans(X, { k: 5, seed: 4, nInit: 2, workers: 2 });
    expect(two.workersUsed).toBe(2);
    expect(one.workersUsed).toBe(1);
    expect(two.labels).toEqual(one.labels);
    expect(two.centroids).toEqual(one.centroids);
    expect(two.inertia).toBe(one.inertia);
    // wide data takes the generic (not unrolled) kernels
    const wide = generateBlobs({ n: 9000, d: 40, k: 12, seed: 5 }).X;
    const w1 = kmeans(wide, { k: 12, seed: 2, workers: 1 });
    const w2 = kmeans(wide, { k: 12, seed: 2, workers: 2 });
    expect(w2.workersUsed).toBe(2);
    expect(w2.labels).toEqual(w1.labels);
    expect(w2.inertia).toBe(w1.inertia);
  });

  it("matches plain Lloyd on wide data (generic kernels)", () => {
    const X = randomMatrix(800, 40, 12);
    const init = X.data.slice(0, 12 * 40);
    const ref = naiveLloyd(X.data, 800, 40, 12, init);
    const r = kmeans(X, { k: 12, init, tol: 0 });
    if (!ref.hadEmpty) expect(r.labels).toEqual(ref.labels);
    expect(r.inertia).toBeLessThanOrEqual(ref.inertia * (1 + 1e-12));
  });

  it("Hamerly's result equals plain Lloyd's from the same centres at convergence (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 250 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 1, max: 6 }), fc.integer({ min: 0, max: 1e6 }), (n, d, kReq, seed) => {
        const k = Math.min(kReq, n);
        const X = randomMatrix(n, d, seed);
        const init = X.data.slice(0, k * d); // first k rows: distinct with probability 1
        const ref = naiveLloyd(X.data, n, d, k, init);
        fc.pre(!ref.hadEmpty); // plain Lloyd has no rule for empty clusters
        const r = kmeans(X, { k, init, tol: 0, maxIter: 10_000 });
        expect(r.converged).toBe(true);
        expect(r.labels).toEqual(ref.labels);
        for (let q = 0; q < k * d; q++) expect(Math.abs(r.centroids[q]! - ref.centroids[q]!)).toBeLessThan(1e-9);
        expect(r.inertia).toBeLessThanOrEqual(ref.inertia * (1 + 1e-12) + 1e-12);
      }),
      { numRuns: 60, seed: 20240611 },
    );
  });

  it("is no worse than plain Lloyd from the same k-means++ seeds on random data", () => {
    for (const seed of [1, 2, 3, 4]) {
      const X = randomMatrix(1500, 4, 100 + seed);
      const init = seedCentres(X, { k: 6, seed });
      const ref = naiveLloyd(X.data, 1500, 4, 6, init);
      const r = kmeans(X, { k: 6, seed, tol: 0 });
      expect(r.inertia).toBeLessThanOrEqual(ref.inertia * (1 + 1e-9));
      if (!ref.hadEmpty) expect(r.labels).toEqual(ref.labels);
    }
  });

  it("seeds with k-means++ rows of X", () => {
    const X = randomMatrix(300, 2, 8);
    const c = seedCentres(X, { k: 5, seed: 2 });
    for (let j = 0; j < 5; j++) {
      let found = false;
      for (let i = 0; i < 300 && !found; i++) found = X.data[i * 2] === c[j * 2] && X.data[i * 2 + 1] === c[j * 2 + 1];
      expect(found).toBe(true);
    }
  });

  it("handles identical points without looping or NaN", () => {
    const X = { data: new Float64Array(50 * 3).fill(2.5), rows: 50, cols: 3 };
    const r = kmeans(X, { k: 4, seed: 1, nInit: 3 });
    expect(r.inertia).toBe(0);
    expect(r.converged).toBe(true);
    expect(Array.from(r.centroids).every((v) => v === 2.5)).toBe(true);
    const sizes = new Array(4).fill(0);
    for (const l of r.labels) sizes[l]++;
    expect(sizes.every((s) => s > 0)).toBe(true); // empty clusters re-seeded
    expect(r.iterations).toBeLessThanOrEqual(2);
  });

  it("re-seeds an empty cluster from the farthest point, deterministically", () => {
    // Three tight groups and one initial centre far away from everything.
    const pts = [0, 0, 0.1, 0, 10, 0, 10.1, 0, 20, 0, 20.1, 0, 35, 0];
    const X = { data: Float64Array.from(pts), rows: 7, cols: 2 };
    const init = Float64Array.from([0, 0, 10, 0, 20, 0, 1000, 1000]);
    const r = kmeans(X, { k: 4, init, tol: 0 });
    expect(r.labels[6]).toBe(3); // the farthest point (35, 0) took over the empty cluster
    expect(r.centroids[6]).toBe(35);
    expect(Number.isFinite(r.inertia)).toBe(true);
    expect(r.inertia).toBeCloseTo(0.015, 12);
  });

  it("handles k = 1, k = n and a single point", () => {
    const X = randomMatrix(10, 2, 3);
    const one = kmeans(X, { k: 1 });
    expect(Array.from(one.labels)).toEqual(new Array(10).fill(0));
    let mx = 0;
    for (let i = 0; i < 10; i++) mx += X.data[i * 2]!;
    expect(one.centroids[0]).toBeCloseTo(mx / 10, 12);
    const all = kmeans(X, { k: 10 });
    expect(all.inertia).toBe(0);
    expect(new Set(all.labels).size).toBe(10);
    const single = kmeans({ data: Float64Array.from([4, 2]), rows: 1, cols: 2 }, { k: 1 });
    expect(Array.from(single.centroids)).toEqual([4, 2]);
    expect(single.inertia).toBe(0);
  });

  it("stops after maxIter with converged = false", () => {
    const X = randomMatrix(2000, 2, 4);
    const r = kmeans(X, { k: 8, maxIter: 1, tol: 0, seed: 3 });
    expect(r.iterations).toBe(1);
    expect(r.converged).toBe(false);
    expect(predict(r.centroids, 8, X)).toEqual(r.labels); // final assignment step ran
  });

  it("rejects degenerate input with exact reasons", () => {
    const X = randomMatrix(5, 2, 1);
    expectReason(() => kmeans({ data: new Float64Array(0), rows: 0, cols: 2 }, { k: 1 }), "EMPTY_INPUT");
    expectReason(() => kmeans({ data: new Float64Array(0), rows: 3, cols: 0 }, { k: 1 }), "ZERO_DIMENSION");
    expectReason(() => kmeans({ data: new Float64Array(5), rows: 3, cols: 2 }, { k: 1 }), "SHAPE_MISMATCH");
    const big = expectReason(() => kmeans(X, { k: 6 }), "K_TOO_LARGE");
    expect(big.details).toMatchObject({ k: 6, n: 5 });
    expectReason(() => kmeans(X, { k: 0 }), "K_INVALID");
    expectReason(() => kmeans(X, { k: 1.5 }), "K_INVALID");
    const nan = X.data.slice();
    nan[7] = Number.NaN;
    const e = expectReason(() => kmeans({ data: nan, rows: 5, cols: 2 }, { k: 2 }), "NAN_VALUE");
    expect(e.details).toMatchObject({ row: 3, col: 1 });
    const inf = X.data.slice();
    inf[0] = Infinity;
    expectReason(() => kmeans({ data: inf, rows: 5, cols: 2 }, { k: 2 }), "NAN_VALUE");
    expectReason(() => kmeans(X, { k: 2, nInit: 0 }), "BAD_OPTION");
    expectReason(() => kmeans(X, { k: 2, tol: -1 }), "BAD_OPTION");
    expectReason(() => kmeans(X, { k: 2, maxIter: 0 }), "BAD_OPTION");
    expectReason(() => kmeans(X, { k: 2, workers: 0 }), "BAD_OPTION");
    expectReason(() => kmeans(X, { k: 2, init: new Float64Array(3) }), "BAD_OPTION");
    expectReason(() => kmeans(X, { k: 2, seed: -3 }), "BAD_SEED");
  });
});

describe("silhouette and chooseK", () => {
  it("matches hand-computed values (and scikit-learn's)", () => {
    // 1-D: {0, 1} and {5, 7}: s = (5/6 + 4/5 + 5/9 + 9/13) / 4
    const X = { data: Float64Array.from([0, 1, 5, 7]), rows: 4, cols: 1 };
    expect(silhouette(X, Int32Array.from([0, 0, 1, 1]))).toBeCloseTo((5 / 6 + 4 / 5 + 5 / 9 + 9 / 13) / 4, 12);
    // a singleton cluster contributes 0 (scikit-learn: 0.6030309990117432)
    const Y = { data: Float64Array.from([0, 0, 0, 1, 4, 0, 4, 1, 10, 0]), rows: 5, cols: 2 };
    expect(silhouette(Y, Int32Array.from([0, 0, 1, 1, 2]))).toBeCloseTo(0.6030309990117432, 12);
  });

  it("samples deterministically and rejects a single cluster", () => {
    const { X, labels } = generateBlobs({ n: 5000, d: 3, k: 3, seed: 2 });
    const a = silhouette(X, labels, { sampleSize: 500, seed: 1 });
    expect(silhouette(X, labels, { sampleSize: 500, seed: 1 })).toBe(a);
    expect(a).toBeGreaterThan(0.5);
    expectReason(() => silhouette(X, new Int32Array(5000), { sampleSize: 100 }), "TOO_FEW_CLUSTERS");
    expectReason(() => silhouette(X, new Int32Array(3)), "LENGTH_MISMATCH");
  });

  it("chooses the planted k", () => {
    const { X } = generateBlobs({ n: 2000, d: 4, k: 5, seed: 6 });
    const r = chooseK(X, { kMin: 2, kMax: 8, seed: 1, sampleSize: 600 });
    expect(r.k).toBe(5);
    expect(r.scores.map((s) => s.k)).toEqual([2, 3, 4, 5, 6, 7, 8]);
    expect(r.result.k).toBe(5);
    expectReason(() => chooseK(X, { kMin: 1 }), "K_INVALID");
    expectReason(() => chooseK({ data: Float64Array.from([1, 2]), rows: 2, cols: 1 }, { kMin: 2 }), "K_TOO_LARGE");
  });
});
