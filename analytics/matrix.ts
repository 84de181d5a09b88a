/**
 * The dense matrix shape shared by analytics (row-major Float64Array, n rows × d columns) and the
 * one helper that raises analytics' coded errors: always INVALID_ARGUMENT, with a machine-readable
 * `details.reason` that tests and callers branch on.
 */
import { CustodiaError } from "../core/index.js";

/** Dense row-major matrix: element (i, j) is `data[i * cols + j]`. */
export interface Matrix {
  readonly data: Float64Array;
  readonly rows: number;
  readonly cols: number;
}

/** Every `details.reason` analytics can raise (all under code INVALID_ARGUMENT). */
export type AnalyticsReason =
  | "EMPTY_INPUT"
  | "ZERO_DIMENSION"
  | "SHAPE_MISMATCH"
  | "NAN_VALUE"
  | "K_INVALID"
  | "K_TOO_LARGE"
  | "BAD_OPTION"
  | "BAD_SEED"
  | "NAN_AMOUNT"
  | "INFINITE_AMOUNT"
  | "NEGATIVE_AMOUNT"
  | "BAD_TIMESTAMP"
  | "UNKNOWN_SUBJECT"
  | "DUPLICATE_SUBJECT"
  | "AFTER_AS_OF"
  | "JOINED_AFTER_AS_OF"
  | "BAD_SUBJECT"
  | "BAD_CATEGORY"
  | "LENGTH_MISMATCH"
  | "FEATURE_MISMATCH"
  | "TOO_FEW_CLUSTERS"
  | "CSV_EMPTY"
  | "CSV_MISSING_COLUMN"
  | "CSV_DUPLICATE_COLUMN"
  | "CSV_COLUMN_COUNT"
  | "CSV_UNTERMINATED_QUOTE"
  | "CSV_BAD_QUOTE"
  | "CSV_BAD_NUMBER"
  | "CSV_BAD_TIMESTAMP"
  | "CSV_EMPTY_FIELD";

/** Throws CustodiaError("INVALID_ARGUMENT") with `details = { reason, ...extra }`. */
export function fail(reason: AnalyticsReason, message: string, extra: Record<string, unknown> = {}): never {
  throw new CustodiaError("INVALID_ARGUMENT", message, { reason, ...extra });
}

/**
 * Checks shape and content: rows >= 1 (EMPTY_INPUT), cols >= 1 (ZERO_DIMENSION),
 * data.length === rows × cols (SHAPE_MISMATCH) and, unless `checkFinite` is false, every value
 * finite (NAN_VALUE, with the first offending row and column).
 */
export function assertMatrix(X: Matrix, what = "matrix", checkFinite = true): void {
  if (X === null || typeof X !== "object" || !(X.data instanceof Float64Array)) {
    fail("SHAPE_MISMATCH", `${what} must be { data: Float64Array, rows, cols }`);
  }
  if (!Number.isSafeInteger(X.rows) || X.rows < 0 || !Number.isSafeInteger(X.cols) || X.cols < 0) {
    fail("SHAPE_MISMATCH", `${what} has invalid dimensions`, { rows: X.rows, cols: X.cols });
  }
  if (X.rows === 0) fail("EMPTY_INPUT", `${what} has no rows`);
  if (X.cols === 0) fail("ZERO_DIMENSION", `${what} has no columns`);
  if (X.data.length !== X.rows * X.cols) {
    fail("SHAPE_MISMATCH", `${what}.data has ${X.data.length} values, expected ${X.rows}×${X.cols}`, {
      length: X.data.length,
      rows: X.rows,
      cols: X.cols,
    });
  }
  if (checkFinite) {
    const bad = firstNonFinite(X.data);
    if (bad >= 0) {
      fail("NAN_VALUE", `${what} has a non-finite value at row ${Math.floor(bad / X.cols)}, column ${bad % X.cols}`, {
        row: Math.floor(bad / X.cols),
        col: bad % X.cols,
      });
    }
  }
}

/** Index of the first NaN/±Infinity in `a`, or -1. */
export function firstNonFinite(a: Float64Array): number {
  for (let i = 0; i < a.length; i++) {
    const v = a[i]!;
    if (v - v !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

/** Row `i` of X as a fresh Float64Array. */
export function row(X: Matrix, i: number): Float64Array {
  return X.data.slice(i * X.cols, (i + 1) * X.cols);
}

/** Squared Euclidean distance between row `i` of `a` (stride d) and row `j` of `b` (stride d). */
export function sqDist(a: Float64Array, i: number, b: Float64Array, j: number, d: number): number {
  let s = 0;
  const ai = i * d;
  const bj = j * d;
  for (let f = 0; f < d; f++) {
    const z = a[ai + f]! - b[bj + f]!;
    s += z * z;
  }
  return s;
}
