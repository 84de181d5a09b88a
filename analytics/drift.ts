/**
 * Population stability index between a reference and a current sample of one feature:
 *   PSI = Σ_bins (c_b − r_b) · ln(c_b / r_b)
 * with r_b, c_b the shares of reference and current values in bin b. Bin edges are the reference
 * quantiles at 1/bins, …, (bins−1)/bins (linear interpolation, duplicates dropped, so a
 * reference with many ties gets fewer bins); bin b holds values in (edge_{b−1}, edge_b]. An empty
 * bin's share is replaced by `epsilon` (default 1e-4) so the logarithm stays finite.
 * Conventional reading: < 0.1 stable, 0.1–0.25 moderate shift, > 0.25 significant shift.
 *
 * Errors: EMPTY_INPUT, NAN_VALUE, BAD_OPTION, FEATURE_MISMATCH (psiByFeature with no shared
 * feature names).
 */
import { fail } from "./matrix.js";
import type { FeatureMatrix } from "./features.js";
import { quantileSorted } from "./features.js";

export interface PsiOptions {
  bins?: number;
  epsilon?: number;
}

export function psi(reference: ArrayLike<number>, current: ArrayLike<number>, opts: PsiOptions = {}): number {
  const bins = opts.bins ?? 10;
  const eps = opts.epsilon ?? 1e-4;
  if (!Number.isSafeInteger(bins) || bins < 2) fail("BAD_OPTION", "bins must be an integer >= 2", { option: "bins" });
  if (!(eps > 0 && eps < 1)) fail("BAD_OPTION", "epsilon must be in (0, 1)", { option: "epsilon" });
  if (reference.length === 0 || current.length === 0) fail("EMPTY_INPUT", "psi needs non-empty samples");
  const ref = Float64Array.from(reference);
  for (const arr of [ref, current]) {
    for (let i = 0; i < arr.length; i++) if (!Number.isFinite(arr[i]!)) fail("NAN_VALUE", `value ${i} is not finite`, { index: i });
  }
  ref.sort();
  const edges: number[] = [];
  for (let b = 1; b < bins; b++) {
    const e = quantileSorted(ref, b / bins);
    if (edges.length === 0 || e > edges[edges.length - 1]!) edges.push(e);
  }
  const hist = (arr: ArrayLike<number>): Float64Array => {
    const h = new Float64Array(edges.length + 1);
    for (let i = 0; i < arr.length; i++) {
      const v = arr[i]!;
      let lo = 0;
      let hi = edges.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (edges[mid]! < v) lo = mid + 1;
        else hi = mid;
      }
      h[lo]! += 1;
    }
    for (let b = 0; b < h.length; b++) h[b] = h[b]! / arr.length;
    return h;
  };
  const r = hist(ref);
  const c = hist(current);
  let out = 0;
  for (let b = 0; b < r.length; b++) {
    const rb = r[b]! > 0 ? r[b]! : eps;
    const cb = c[b]! > 0 ? c[b]! : eps;
    out += (cb - rb) * Math.log(cb / rb);
  }
  return out;
}

export type DriftStatus = "stable" | "moderate" | "significant";

export interface FeatureDrift {
  readonly feature: string;
  readonly psi: number;
  readonly status: DriftStatus;
}

export function driftStatus(v: number): DriftStatus {
  return v < 0.1 ? "stable" : v <= 0.25 ? "moderate" : "significant";
}

/** PSI per feature name present in both matrices (in the current matrix's column order). */
export function psiByFeature(reference: FeatureMatrix, current: FeatureMatrix, opts: PsiOptions = {}): FeatureDrift[] {
  const out: FeatureDrift[] = [];
  for (let j = 0; j < current.cols; j++) {
    const name = current.names[j]!;
    const rj = reference.names.indexOf(name);
    if (rj < 0) continue;
    const rv = new Float64Array(reference.rows);
    for (let i = 0; i < reference.rows; i++) rv[i] = reference.data[i * reference.cols + rj]!;
    const cv = new Float64Array(current.rows);
    for (let i = 0; i < current.rows; i++) cv[i] = current.data[i * current.cols + j]!;
    const v = psi(rv, cv, opts);
    out.push({ feature: name, psi: v, status: driftStatus(v) });
  }
  if (out.length === 0) fail("FEATURE_MISMATCH", "the two runs share no feature names");
  return out;
}
