/**
 * Adjusted Rand index (Hubert & Arabie) between two labelings of the same items:
 *   ARI = (Σ_ij C(n_ij, 2) − E) / (½(Σ_i C(a_i, 2) + Σ_j C(b_j, 2)) − E),
 *   E   = Σ_i C(a_i, 2) · Σ_j C(b_j, 2) / C(n, 2)
 * over the contingency table n_ij. 1 for identical partitions (up to renaming), about 0 for
 * independent ones. When the denominator is 0 (both labelings put everything in one cluster, or
 * everything in singletons) the partitions are identical and the result is 1, as in
 * scikit-learn. Labels may be numbers or strings. Errors: LENGTH_MISMATCH.
 */
import { fail } from "./matrix.js";

export function adjustedRandIndex(a: ArrayLike<number | string>, b: ArrayLike<number | string>): number {
  const n = a.length;
  if (b.length !== n) fail("LENGTH_MISMATCH", "labelings must have the same length", { a: n, b: b.length });
  if (n < 2) return 1;
  const ia = compact(a);
  const ib = compact(b);
  const ka = ia.k;
  const kb = ib.k;
  const table = new Float64Array(ka * kb);
  const ra = new Float64Array(ka);
  const rb = new Float64Array(kb);
  for (let i = 0; i < n; i++) {
    table[ia.codes[i]! * kb + ib.codes[i]!]! += 1;
    ra[ia.codes[i]!]! += 1;
    rb[ib.codes[i]!]! += 1;
  }
  const c2 = (x: number): number => (x * (x - 1)) / 2;
  let sumIJ = 0;
  for (let q = 0; q < table.length; q++) sumIJ += c2(table[q]!);
  let sumA = 0;
  for (let q = 0; q < ka; q++) sumA += c2(ra[q]!);
  let sumB = 0;
  for (let q = 0; q < kb; q++) sumB += c2(rb[q]!);
  const expected = (sumA * sumB) / c2(n);
  const maxIndex = (sumA + sumB) / 2;
  const den = maxIndex - expected;
  if (den === 0) return 1;
  return (sumIJ - expected) / den;
}

function compact(labels: ArrayLike<number | string>): { codes: Int32Array; k: number } {
  const map = new Map<number | string, number>();
  const codes = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i]!;
    let c = map.get(l);
    if (c === undefined) {
      c = map.size;
      map.set(l, c);
    }
    codes[i] = c;
  }
  return { codes, k: map.size };
}
