/**
 * Why a subject landed in its segment, in terms a reviewer can check by hand.
 *
 * For a scaled row x assigned to centre c1, with c2 the nearest other centre:
 *   nearestDistance  = ‖x − c1‖, secondDistance = ‖x − c2‖ (Euclidean, scaled units)
 *   margin           = secondDistance − nearestDistance (>= 0 when c1 is the nearest centre)
 *   squaredMargin    = ‖x − c2‖² − ‖x − c1‖² = Σ_f contribution_f, with
 *   contribution_f   = (x_f − c2_f)² − (x_f − c1_f)²
 * A positive contribution is a feature that pulls the subject towards its own segment (away from
 * the runner-up); a negative one pulls towards the runner-up. `topFeatures` lists the largest
 * contributions first (ties: column order). With k = 1 there is no runner-up: the second-centre
 * fields are null and topFeatures is empty.
 *
 * Segment profiles report, per segment, its size and share and its centre in ORIGINAL units
 * (the scaled centroid through the scaler's inverse — for these affine scalers, the mean of the
 * segment's raw features).
 */
import { fail, type Matrix } from "./matrix.js";
import { inverseRow, type Scaler } from "./features.js";

export interface FeatureContribution {
  readonly feature: string;
  /** (x_f − c2_f)² − (x_f − c1_f)², scaled units. */
  readonly contribution: number;
  /** The subject's scaled value and its own centre's scaled value. */
  readonly value: number;
  readonly centre: number;
}

export interface Explanation {
  readonly segment: number;
  readonly nearestDistance: number;
  readonly secondSegment: number | null;
  readonly secondDistance: number | null;
  readonly margin: number | null;
  readonly squaredMargin: number | null;
  readonly topFeatures: readonly FeatureContribution[];
}

/**
 * Explanation for one scaled row `x` assigned to `segment`. Errors: SHAPE_MISMATCH, K_INVALID.
 */
export function explainRow(
  x: ArrayLike<number>,
  centroids: Float64Array,
  k: number,
  segment: number,
  names: readonly string[],
  topN = 3,
): Explanation {
  const d = x.length;
  if (names.length !== d || centroids.length !== k * d) fail("SHAPE_MISMATCH", "row, names and centroids disagree in width", { d, k });
  if (!Number.isInteger(segment) || segment < 0 || segment >= k) fail("K_INVALID", "segment out of range", { segment, k });
  const sq = (j: number): number => {
    let s = 0;
    for (let f = 0; f < d; f++) {
      const z = x[f]! - centroids[j * d + f]!;
      s += z * z;
    }
    return s;
  };
  const d1 = sq(segment);
  let second = -1;
  let d2 = Infinity;
  for (let j = 0; j < k; j++) {
    if (j === segment) continue;
    const e = sq(j);
    if (e < d2) {
      d2 = e;
      second = j;
    }
  }
  if (second < 0) {
    return { segment, nearestDistance: Math.sqrt(d1), secondSegment: null, secondDistance: null, margin: null, squaredMargin: null, topFeatures: [] };
  }
  const contribs: FeatureContribution[] = [];
  let sqMargin = 0;
  for (let f = 0; f < d; f++) {
    const a = x[f]! - centroids[segment * d + f]!;
    const b = x[f]! - centroids[second * d + f]!;
    const c = b * b - a * a;
    sqMargin += c;
    contribs.push({ feature: names[f]!, contribution: c, value: x[f]!, centre: centroids[segment * d + f]! });
  }
  const order = contribs.map((_, f) => f).sort((p, q) => contribs[q]!.contribution - contribs[p]!.contribution || p - q);
  return {
    segment,
    nearestDistance: Math.sqrt(d1),
    secondSegment: second,
    secondDistance: Math.sqrt(d2),
    margin: Math.sqrt(d2) - Math.sqrt(d1),
    squaredMargin: sqMargin,
    topFeatures: order.slice(0, Math.max(0, topN)).map((f) => contribs[f]!),
  };
}

/** Explanations for every row of a scaled matrix, given its labels. */
export function explainAll(Xs: Matrix, centroids: Float64Array, k: number, labels: Int32Array, names: readonly string[], topN = 3): Explanation[] {
  if (labels.length !== Xs.rows) fail("LENGTH_MISMATCH", "one label per row is required");
  const out: Explanation[] = new Array(Xs.rows);
  for (let i = 0; i < Xs.rows; i++) {
    out[i] = explainRow(Xs.data.subarray(i * Xs.cols, (i + 1) * Xs.cols), centroids, k, labels[i]!, names, topN);
  }
  return out;
}

export interface SegmentProfile {
  readonly segment: number;
  readonly size: number;
  readonly share: number;
  /** Centre in original units, by feature name. */
  readonly centre: Readonly<Record<string, number>>;
}

/** Size, share and original-unit centre of each segment (scaled centroids through the scaler's inverse). */
export function segmentProfiles(centroids: Float64Array, k: number, labels: Int32Array, names: readonly string[], scaler: Scaler): SegmentProfile[] {
  const d = names.length;
  if (centroids.length !== k * d || scaler.center.length !== d) fail("SHAPE_MISMATCH", "centroids, names and scaler disagree in width", { d, k });
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    if (l < 0 || l >= k) fail("K_INVALID", "label out of range", { label: l, k });
    sizes[l]!++;
  }
  const n = labels.length;
  const out: SegmentProfile[] = [];
  for (let j = 0; j < k; j++) {
    const orig = inverseRow(scaler, centroids.subarray(j * d, (j + 1) * d));
    const centre: Record<string, number> = {};
    names.forEach((nm, f) => (centre[nm] = orig[f]!));
    out.push({ segment: j, size: sizes[j]!, share: n > 0 ? sizes[j]! / n : 0, centre });
  }
  return out;
}
