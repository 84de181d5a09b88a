import { expect } from "vitest";
import { CustodiaError } from "../../core/index.js";

/** Runs fn, expects a CustodiaError INVALID_ARGUMENT with details.reason === reason; returns it. */
export function expectReason(fn: () => unknown, reason: string): CustodiaError {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${reason}`).toBeInstanceOf(CustodiaError);
  const err = caught as CustodiaError;
  expect(err.code).toBe("INVALID_ARGUMENT");
  expect(err.details?.reason).toBe(reason);
  return err;
}

/** Plain Lloyd's algorithm from explicit centres, for reference: runs until no label changes. */
export function naiveLloyd(
  X: Float64Array,
  n: number,
  d: number,
  k: number,
  init: Float64Array,
  maxIter = 10_000,
): { centroids: Float64Array; labels: Int32Array; inertia: number; iterations: number; hadEmpty: boolean } {
  const C = init.slice();
  const labels = new Int32Array(n).fill(-1);
  let iterations = 0;
  let hadEmpty = false;
  for (;;) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bd = Infinity;
      for (let j = 0; j < k; j++) {
        let e = 0;
        for (let f = 0; f < d; f++) {
          const z = X[i * d + f]! - C[j * d + f]!;
          e += z * z;
        }
        if (e < bd) {
          bd = e;
          best = j;
        }
      }
      if (labels[i] !== best) {
        labels[i] = best;
        changed++;
      }
    }
    if (changed === 0 || iterations >= maxIter) break;
    const S = new Float64Array(k * d);
    const N = new Float64Array(k);
    for (let i = 0; i < n; i++) {
      N[labels[i]!]! += 1;
      for (let f = 0; f < d; f++) S[labels[i]! * d + f]! += X[i * d + f]!;
    }
    for (let j = 0; j < k; j++) {
      if (N[j] === 0) hadEmpty = true;
      else for (let f = 0; f < d; f++) C[j * d + f] = S[j * d + f]! / N[j]!;
    }
    iterations++;
  }
  return { centroids: C, labels, inertia: inertiaOf(X, n, d, C, labels), iterations, hadEmpty };
}

export function inertiaOf(X: Float64Array, n: number, d: number, C: Float64Array, labels: Int32Array): number {
  let s = 0;
  for (let i = 0; i < n; i++) {
    for (let f = 0; f < d; f++) {
      const z = X[i * d + f]! - C[labels[i]! * d + f]!;
      s += z * z;
    }
  }
  return s;
}
