/**
 * RFM scoring: quintile scores 1–5 for recency (recent = 5), frequency and monetary value, and
 * the customary named segments.
 *
 * Quintile score with deterministic ties: for a value x among n values,
 *     score(x) = 1 + floor(5 · below(x) / n)
 * where below(x) counts the values strictly worse than x (for F and M: strictly smaller; for R:
 * strictly more days since the last purchase). Equal values therefore always share a score (the
 * lowest their block reaches), and the result does not depend on input order. With n distinct
 * values the scores are as even as possible (n = 10 gives 1,1,2,2,3,3,4,4,5,5).
 *
 * Segment rule table on R and FM = round-half-up((F + M) / 2) = floor((F + M + 1) / 2):
 *
 *        FM=1            FM=2                 FM=3                 FM=4               FM=5
 *   R=5  New Customers   Potential Loyalists  Potential Loyalists  Champions          Champions
 *   R=4  Promising       Potential Loyalists  Potential Loyalists  Loyal Customers    Champions
 *   R=3  About to Sleep  About to Sleep       Need Attention       Loyal Customers    Loyal Customers
 *   R=2  Hibernating     Hibernating          At Risk              At Risk            Cannot Lose Them
 *   R=1  Lost            Lost                 At Risk              Cannot Lose Them   Cannot Lose Them
 */
import { fail } from "./matrix.js";
import type { FeatureMatrix } from "./features.js";

export const RFM_SEGMENTS = [
  "Champions",
  "Loyal Customers",
  "Potential Loyalists",
  "New Customers",
  "Promising",
  "Need Attention",
  "About to Sleep",
  "At Risk",
  "Cannot Lose Them",
  "Hibernating",
  "Lost",
] as const;
export type RfmSegment = (typeof RFM_SEGMENTS)[number];

/** RFM_GRID[5 − R][FM − 1]: the table in the module comment. */
export const RFM_GRID: readonly (readonly RfmSegment[])[] = [
  ["New Customers", "Potential Loyalists", "Potential Loyalists", "Champions", "Champions"],
  ["Promising", "Potential Loyalists", "Potential Loyalists", "Loyal Customers", "Champions"],
  ["About to Sleep", "About to Sleep", "Need Attention", "Loyal Customers", "Loyal Customers"],
  ["Hibernating", "Hibernating", "At Risk", "At Risk", "Cannot Lose Them"],
  ["Lost", "Lost", "At Risk", "Cannot Lose Them", "Cannot Lose Them"],
];

/** Segment for scores r, f, m in 1..5 (BAD_OPTION otherwise). */
export function rfmSegment(r: number, f: number, m: number): RfmSegment {
  for (const v of [r, f, m]) {
    if (!Number.isInteger(v) || v < 1 || v > 5) fail("BAD_OPTION", "RFM scores must be integers 1..5", { r, f, m });
  }
  const fm = Math.floor((f + m + 1) / 2);
  return RFM_GRID[5 - r]![fm - 1]!;
}

/**
 * Quintile scores (see module comment). `higherIsBetter` false scores small values 5 (recency).
 * Errors: EMPTY_INPUT, NAN_VALUE.
 */
export function quintileScores(values: ArrayLike<number>, higherIsBetter = true): Uint8Array {
  const n = values.length;
  if (n === 0) fail("EMPTY_INPUT", "no values to score");
  const sorted = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const v = values[i]!;
    if (typeof v !== "number" || !Number.isFinite(v)) fail("NAN_VALUE", `value ${i} is not finite`, { index: i });
    sorted[i] = higherIsBetter ? v : -v;
  }
  sorted.sort();
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const x = higherIsBetter ? values[i]! : -values[i]!;
    // below = number of sorted values strictly less than x (lower bound).
    let lo = 0;
    let hi = n;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (sorted[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    out[i] = 1 + Math.floor((5 * lo) / n);
  }
  return out;
}

export interface RfmResult {
  readonly subjects: readonly string[];
  readonly r: Uint8Array;
  readonly f: Uint8Array;
  readonly m: Uint8Array;
  readonly segments: readonly RfmSegment[];
  /** Subjects per segment (every segment listed, zero included). */
  readonly counts: Readonly<Record<RfmSegment, number>>;
}

export interface RfmInput {
  readonly subjects: readonly string[];
  readonly recency: ArrayLike<number>;
  readonly frequency: ArrayLike<number>;
  readonly monetary: ArrayLike<number>;
}

/** RFM scores and segments from explicit columns. Errors: EMPTY_INPUT, LENGTH_MISMATCH, NAN_VALUE. */
export function rfm(input: RfmInput): RfmResult {
  const n = input.subjects.length;
  if (n === 0) fail("EMPTY_INPUT", "no subjects");
  if (input.recency.length !== n || input.frequency.length !== n || input.monetary.length !== n) {
    fail("LENGTH_MISMATCH", "recency, frequency and monetary must have one value per subject");
  }
  const r = quintileScores(input.recency, false);
  const f = quintileScores(input.frequency, true);
  const m = quintileScores(input.monetary, true);
  const segments: RfmSegment[] = new Array(n);
  const counts = Object.fromEntries(RFM_SEGMENTS.map((s) => [s, 0])) as Record<RfmSegment, number>;
  for (let i = 0; i < n; i++) {
    const s = rfmSegment(r[i]!, f[i]!, m[i]!);
    segments[i] = s;
    counts[s]++;
  }
  return { subjects: input.subjects, r, f, m, segments, counts };
}

/** RFM from a feature matrix built by buildFeatures (recency_days, frequency, monetary columns). */
export function rfmFromFeatures(X: FeatureMatrix): RfmResult {
  const col = (name: string): Float64Array => {
    const j = X.names.indexOf(name);
    if (j < 0) fail("FEATURE_MISMATCH", `feature ${name} is missing`, { feature: name });
    const out = new Float64Array(X.rows);
    for (let i = 0; i < X.rows; i++) out[i] = X.data[i * X.cols + j]!;
    return out;
  };
  return rfm({ subjects: X.subjects, recency: col("recency_days"), frequency: col("frequency"), monetary: col("monetary") });
}
