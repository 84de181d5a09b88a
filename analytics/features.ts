/**
 * Per-subject behavioural features from raw transactions, and the scalers that put them on a
 * common footing for clustering (and back into original units for reporting).
 *
 * Columns, in this order (all per subject, as of `asOf`):
 *   recency_days      days since the last transaction; a subject with none gets its tenure
 *   frequency         number of transactions
 *   monetary          sum of amounts
 *   tenure_days       days since joinedAt
 *   avg_basket        monetary / frequency (0 with no transactions)
 *   cat_share:<c>     share of the subject's transactions (by count) in category c, for the
 *                     `topCategories` most frequent categories overall (ties by name) or the
 *                     explicit `categories` list, then cat_share:other for the rest
 *   channel_share:<h> the same for channels (`channels`, default online, store, app), then
 *                     channel_share:other
 * Shares are by count so zero amounts (refunds netted elsewhere, free items) do not divide by
 * zero; a subject with no transactions has all shares 0.
 *
 * Rows are the profiles' subjects sorted by UTF-16 code units, so the matrix (and every hash and
 * Merkle root built on it) does not depend on input order.
 *
 * Errors (INVALID_ARGUMENT, details.reason): EMPTY_INPUT (no profiles), BAD_SUBJECT,
 * DUPLICATE_SUBJECT, BAD_TIMESTAMP (asOf, joinedAt or at not finite), JOINED_AFTER_AS_OF,
 * UNKNOWN_SUBJECT, AFTER_AS_OF, NAN_AMOUNT, INFINITE_AMOUNT, NEGATIVE_AMOUNT, BAD_CATEGORY,
 * BAD_OPTION. Transaction errors carry details.index (position in the input) and subject.
 */
import { assertMatrix, fail, type Matrix } from "./matrix.js";

export type Channel = "online" | "store" | "app";

export interface Transaction {
  subject: string;
  /** Unix seconds. */
  at: number;
  amount: number;
  category: string;
  channel: Channel | (string & {});
}

export interface Profile {
  subject: string;
  /** Unix seconds. */
  joinedAt: number;
  ageBand?: string;
  gender?: string;
  region?: string;
}

export interface FeatureOptions {
  /** Unix seconds: the reference time; later transactions are errors. */
  asOf: number;
  /** How many of the most frequent categories get their own share column (default 4). */
  topCategories?: number;
  /** Explicit category columns (overrides topCategories), e.g. to match an earlier run. */
  categories?: readonly string[];
  /** Channel columns (default ["online", "store", "app"]). */
  channels?: readonly string[];
}

/** A feature matrix with named columns and the subject of each row. */
export interface FeatureMatrix extends Matrix {
  readonly names: readonly string[];
  readonly subjects: readonly string[];
}

export const DAY_SECONDS = 86_400;
export const BASE_FEATURES = ["recency_days", "frequency", "monetary", "tenure_days", "avg_basket"] as const;
export const DEFAULT_CHANNELS: readonly string[] = ["online", "store", "app"];

/** Builds the feature matrix. See the module comment for columns, order and errors. */
export function buildFeatures(transactions: readonly Transaction[], profiles: readonly Profile[], opts: FeatureOptions): FeatureMatrix {
  if (opts === null || typeof opts !== "object") fail("BAD_OPTION", "options must be an object");
  const { asOf } = opts;
  if (typeof asOf !== "number" || !Number.isFinite(asOf)) fail("BAD_TIMESTAMP", "asOf must be a finite number of seconds", { field: "asOf" });
  if (!Array.isArray(profiles) || !Array.isArray(transactions)) fail("BAD_OPTION", "transactions and profiles must be arrays");
  if (profiles.length === 0) fail("EMPTY_INPUT", "no profiles");
  const channels = opts.channels ?? DEFAULT_CHANNELS;
  checkNames(channels, "channels");

  // Subjects, sorted; validated.
  const index = new Map<string, number>();
  for (let p = 0; p < profiles.length; p++) {
    const pr = profiles[p]!;
    if (typeof pr?.subject !== "string" || pr.subject.length === 0) fail("BAD_SUBJECT", `profile ${p} has no subject`, { index: p });
    if (index.has(pr.subject)) fail("DUPLICATE_SUBJECT", `subject ${pr.subject} appears twice in profiles`, { index: p, subject: pr.subject });
    if (typeof pr.joinedAt !== "number" || !Number.isFinite(pr.joinedAt)) {
      fail("BAD_TIMESTAMP", `profile ${p} has an invalid joinedAt`, { index: p, subject: pr.subject, field: "joinedAt" });
    }
    if (pr.joinedAt > asOf) fail("JOINED_AFTER_AS_OF", `subject ${pr.subject} joined after asOf`, { index: p, subject: pr.subject });
    index.set(pr.subject, p);
  }
  const order = [...index.keys()].sort(compareStrings);
  const rowOf = new Map<string, number>();
  order.forEach((s, r) => rowOf.set(s, r));
  const n = order.length;

  // Validate transactions and count categories (for the top-N choice).
  const catCount = new Map<string, number>();
  for (let t = 0; t < transactions.length; t++) {
    const tx = transactions[t]!;
    const subject = tx?.subject;
    if (typeof subject !== "string" || !rowOf.has(subject)) fail("UNKNOWN_SUBJECT", `transaction ${t} is for an unknown subject`, { index: t, subject: String(subject) });
    if (typeof tx.at !== "number" || !Number.isFinite(tx.at)) fail("BAD_TIMESTAMP", `transaction ${t} has an invalid time`, { index: t, subject, field: "at" });
    if (tx.at > asOf) fail("AFTER_AS_OF", `transaction ${t} is after asOf`, { index: t, subject });
    const a = tx.amount;
    if (typeof a !== "number" || Number.isNaN(a)) fail("NAN_AMOUNT", `transaction ${t} has a NaN amount`, { index: t, subject });
    if (!Number.isFinite(a)) fail("INFINITE_AMOUNT", `transaction ${t} has an infinite amount`, { index: t, subject });
    if (a < 0) fail("NEGATIVE_AMOUNT", `transaction ${t} has a negative amount`, { index: t, subject, amount: a });
    if (typeof tx.category !== "string" || tx.category.length === 0) fail("BAD_CATEGORY", `transaction ${t} has no category`, { index: t, subject });
    if (typeof tx.channel !== "string" || tx.channel.length === 0) fail("BAD_CATEGORY", `transaction ${t} has no channel`, { index: t, subject, field: "channel" });
    catCount.set(tx.category, (catCount.get(tx.category) ?? 0) + 1);
  }

  let categories: readonly string[];
  if (opts.categories !== undefined) {
    checkNames(opts.categories, "categories");
    categories = opts.categories;
  } else {
    const top = opts.topCategories ?? 4;
    if (!Number.isSafeInteger(top) || top < 0) fail("BAD_OPTION", "topCategories must be an integer >= 0", { option: "topCategories" });
    categories = [...catCount.entries()]
      .sort((x, y) => y[1] - x[1] || compareStrings(x[0], y[0]))
      .slice(0, top)
      .map(([c]) => c);
  }
  const catCol = new Map<string, number>();
  categories.forEach((c, i) => catCol.set(c, i));
  const chCol = new Map<string, number>();
  channels.forEach((c, i) => chCol.set(c, i));

  const names = [
    ...BASE_FEATURES,
    ...categories.map((c) => `cat_share:${c}`),
    "cat_share:other",
    ...channels.map((c) => `channel_share:${c}`),
    "channel_share:other",
  ];
  const d = names.length;
  const catBase = BASE_FEATURES.length;
  const chBase = catBase + categories.length + 1;
  const data = new Float64Array(n * d);
  const last = new Float64Array(n).fill(-Infinity);

  for (const tx of transactions) {
    const r = rowOf.get(tx.subject)!;
    const o = r * d;
    data[o + 1]! += 1;
    data[o + 2]! += tx.amount;
    if (tx.at > last[r]!) last[r] = tx.at;
    const ci = catCol.get(tx.category);
    data[o + catBase + (ci ?? categories.length)]! += 1;
    const hi = chCol.get(tx.channel);
    data[o + chBase + (hi ?? channels.length)]! += 1;
  }
  for (let r = 0; r < n; r++) {
    const o = r * d;
    const pr = profiles[index.get(order[r]!)!]!;
    const tenure = (asOf - pr.joinedAt) / DAY_SECONDS;
    const freq = data[o + 1]!;
    data[o] = freq > 0 ? (asOf - last[r]!) / DAY_SECONDS : tenure;
    data[o + 3] = tenure;
    data[o + 4] = freq > 0 ? data[o + 2]! / freq : 0;
    if (freq > 0) for (let f = catBase; f < d; f++) data[o + f] = data[o + f]! / freq;
  }
  return { data, rows: n, cols: d, names, subjects: order };
}

function checkNames(list: readonly string[], what: string): void {
  if (!Array.isArray(list) || list.some((c) => typeof c !== "string" || c.length === 0) || new Set(list).size !== list.length) {
    fail("BAD_OPTION", `${what} must be distinct non-empty strings`, { option: what });
  }
}

/** Orders strings by UTF-16 code units (locale-independent). */
export function compareStrings(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// ---------------------------------------------------------------------------------------------
// Scalers
// ---------------------------------------------------------------------------------------------

/**
 * "zscore": (x − mean) / population standard deviation. "robust": (x − median) / IQR, quantiles
 * by linear interpolation (numpy's default). A column whose values are all equal (or whose IQR
 * is 0) gets scale 1, so it transforms to a constant instead of dividing by zero.
 */
export type ScalerKind = "zscore" | "robust";

export interface Scaler {
  readonly kind: ScalerKind;
  readonly center: Float64Array;
  readonly scale: Float64Array;
}

export function fitScaler(X: Matrix, kind: ScalerKind = "zscore"): Scaler {
  assertMatrix(X, "X");
  if (kind !== "zscore" && kind !== "robust") fail("BAD_OPTION", "scaler kind must be zscore or robust", { option: "kind" });
  const { rows: n, cols: d, data } = X;
  const center = new Float64Array(d);
  const scale = new Float64Array(d);
  const col = new Float64Array(n);
  for (let f = 0; f < d; f++) {
    let min = Infinity;
    let max = -Infinity;
    for (let i = 0; i < n; i++) {
      const v = data[i * d + f]!;
      col[i] = v;
      if (v < min) min = v;
      if (v > max) max = v;
    }
    if (kind === "zscore") {
      let s = 0;
      for (let i = 0; i < n; i++) s += col[i]!;
      const mean = s / n;
      let q = 0;
      for (let i = 0; i < n; i++) {
        const z = col[i]! - mean;
        q += z * z;
      }
      center[f] = min === max ? min : mean;
      scale[f] = min === max ? 1 : Math.sqrt(q / n) || 1;
    } else {
      col.sort();
      center[f] = quantileSorted(col, 0.5);
      const iqr = quantileSorted(col, 0.75) - quantileSorted(col, 0.25);
      scale[f] = iqr > 0 ? iqr : 1;
    }
  }
  return { kind, center, scale };
}

/** Linear-interpolation quantile of an ascending array (numpy "linear"). */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) fail("EMPTY_INPUT", "quantile of an empty array");
  const pos = (n - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.min(n - 1, lo + 1);
  const frac = pos - lo;
  const a = sorted[lo]!;
  const b = sorted[hi]!;
  return frac === 0 ? a : a + (b - a) * frac;
}

function checkWidth(s: Scaler, X: Matrix): void {
  assertMatrix(X, "X");
  if (X.cols !== s.center.length) fail("SHAPE_MISMATCH", `scaler has ${s.center.length} columns, matrix has ${X.cols}`, { expected: s.center.length, cols: X.cols });
}

/** (X − center) / scale, as a new matrix (names/subjects carried over when present). */
export function transform<M extends Matrix>(s: Scaler, X: M): M {
  checkWidth(s, X);
  const { rows: n, cols: d } = X;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) out[i * d + f] = (X.data[i * d + f]! - s.center[f]!) / s.scale[f]!;
  }
  return { ...X, data: out };
}

/** X × scale + center: back to original units. */
export function inverseTransform<M extends Matrix>(s: Scaler, X: M): M {
  checkWidth(s, X);
  const { rows: n, cols: d } = X;
  const out = new Float64Array(n * d);
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) out[i * d + f] = X.data[i * d + f]! * s.scale[f]! + s.center[f]!;
  }
  return { ...X, data: out };
}

/** One scaled row back to original units. */
export function inverseRow(s: Scaler, x: ArrayLike<number>): Float64Array {
  if (x.length !== s.center.length) fail("SHAPE_MISMATCH", "row width does not match the scaler", { expected: s.center.length, cols: x.length });
  const out = new Float64Array(x.length);
  for (let f = 0; f < x.length; f++) out[f] = x[f]! * s.scale[f]! + s.center[f]!;
  return out;
}
