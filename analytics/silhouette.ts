/**
 * Silhouette coefficient on a seeded sample, and choosing k by it.
 *
 * silhouette(): draws `sampleSize` distinct rows (all rows if n <= sampleSize) and returns the
 * mean silhouette of the sample computed within the sample (as scikit-learn's silhouette_score
 * with sample_size): for a sampled point, a = mean distance to the other sampled points of its
 * cluster, b = smallest mean distance to the sampled points of another cluster,
 * s = (b − a) / max(a, b); s = 0 for a point alone in its cluster within the sample. Euclidean
 * distances. O(m²·d) for m sampled points.
 *
 * Errors: the matrix errors of assertMatrix, LENGTH_MISMATCH (labels), BAD_OPTION,
 * TOO_FEW_CLUSTERS (fewer than 2 distinct labels in the sample).
 */
import { Rng } from "./rng.js";
import { assertMatrix, fail, type Matrix } from "./matrix.js";
import { kmeans, type KMeansOptions, type KMeansResult } from "./kmeans.js";

export interface SilhouetteOptions {
  /** Rows sampled (default 2000). */
  sampleSize?: number;
  /** Sampling seed (default 0). */
  seed?: number;
}

export function silhouette(X: Matrix, labels: Int32Array, opts: SilhouetteOptions = {}): number {
  assertMatrix(X, "X");
  const { rows: n, cols: d, data } = X;
  if (!(labels instanceof Int32Array) || labels.length !== n) fail("LENGTH_MISMATCH", "labels must be an Int32Array with one label per row");
  const sampleSize = opts.sampleSize ?? 2000;
  if (!Number.isSafeInteger(sampleSize) || sampleSize < 2) fail("BAD_OPTION", "sampleSize must be an integer >= 2", { option: "sampleSize" });
  const idx = new Rng(opts.seed ?? 0).sampleIndices(n, sampleSize);
  const m = idx.length;
  // Compact the sampled labels to 0..c-1.
  const map = new Map<number, number>();
  const lab = new Int32Array(m);
  for (let s = 0; s < m; s++) {
    const l = labels[idx[s]!]!;
    let c = map.get(l);
    if (c === undefined) {
      c = map.size;
      map.set(l, c);
    }
    lab[s] = c;
  }
  const c = map.size;
  if (c < 2) fail("TOO_FEW_CLUSTERS", "silhouette needs at least 2 clusters in the sample", { clusters: c });
  const sizes = new Float64Array(c);
  for (let s = 0; s < m; s++) sizes[lab[s]!]! += 1;
  const pts = new Float64Array(m * d);
  for (let s = 0; s < m; s++) pts.set(data.subarray(idx[s]! * d, idx[s]! * d + d), s * d);
  // sumTo[s][c] = Σ distance from sample s to the sampled points of cluster c (symmetric fill).
  const sumTo = new Float64Array(m * c);
  for (let s = 0; s < m; s++) {
    const so = s * d;
    const ls = lab[s]!;
    for (let t = s + 1; t < m; t++) {
      const to = t * d;
      let e = 0;
      for (let f = 0; f < d; f++) {
        const z = pts[so + f]! - pts[to + f]!;
        e += z * z;
      }
      const dist = Math.sqrt(e);
      sumTo[s * c + lab[t]!]! += dist;
      sumTo[t * c + ls]! += dist;
    }
  }
  let total = 0;
  for (let s = 0; s < m; s++) {
    const ls = lab[s]!;
    const own = sizes[ls]!;
    if (own <= 1) continue; // s = 0
    const a = sumTo[s * c + ls]! / (own - 1);
    let b = Infinity;
    for (let q = 0; q < c; q++) {
      if (q === ls) continue;
      const v = sumTo[s * c + q]! / sizes[q]!;
      if (v < b) b = v;
    }
    const den = Math.max(a, b);
    if (den > 0) total += (b - a) / den;
  }
  return total / m;
}

export interface ChooseKOptions extends Omit<KMeansOptions, "k" | "init"> {
  /** Smallest k tried (default 2, at least 2). */
  kMin?: number;
  /** Largest k tried (default 8; capped at n − 1). */
  kMax?: number;
  /** Silhouette sample size (default 2000) and sampling seed (default: the k-means seed). */
  sampleSize?: number;
  sampleSeed?: number;
}

export interface ChooseKResult {
  /** The k with the highest silhouette (smallest k on ties). */
  readonly k: number;
  readonly scores: readonly { k: number; silhouette: number; inertia: number }[];
  /** The k-means result for the chosen k. */
  readonly result: KMeansResult;
}

/** Runs k-means for k in [kMin, kMax] and keeps the best silhouette. Errors: K_INVALID, K_TOO_LARGE, and those of kmeans/silhouette. */
export function chooseK(X: Matrix, opts: ChooseKOptions = {}): ChooseKResult {
  assertMatrix(X, "X", false);
  const kMin = opts.kMin ?? 2;
  if (!Number.isSafeInteger(kMin) || kMin < 2) fail("K_INVALID", "kMin must be an integer >= 2", { kMin });
  const kMaxReq = opts.kMax ?? 8;
  if (!Number.isSafeInteger(kMaxReq) || kMaxReq < kMin) fail("K_INVALID", "kMax must be an integer >= kMin", { kMin, kMax: kMaxReq });
  const kMax = Math.min(kMaxReq, X.rows - 1);
  if (kMax < kMin) fail("K_TOO_LARGE", `kMin = ${kMin} needs more than ${X.rows} points`, { k: kMin, n: X.rows });
  const { kMin: _a, kMax: _b, sampleSize, sampleSeed, ...kmOpts } = opts;
  const scores: { k: number; silhouette: number; inertia: number }[] = [];
  let best: { k: number; s: number; result: KMeansResult } | undefined;
  for (let k = kMin; k <= kMax; k++) {
    const result = kmeans(X, { ...kmOpts, k });
    const s = silhouette(X, result.labels, { sampleSize: sampleSize ?? 2000, seed: sampleSeed ?? opts.seed ?? 0 });
    scores.push({ k, silhouette: s, inertia: result.inertia });
    if (best === undefined || s > best.s) best = { k, s, result };
  }
  return { k: best!.k, scores, result: best!.result };
}
