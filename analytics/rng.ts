/**
 * Seeded pseudo-random numbers for everything random in analytics: xoshiro128** (Blackman &
 * Vigna), 32-bit state words seeded through splitmix32. Pure integer arithmetic via Math.imul and
 * `>>> 0`, so a seed gives the same stream on every platform and Node version.
 */
import { CustodiaError } from "../core/index.js";

function splitmix32(state: { s: number }): number {
  state.s = (state.s + 0x9e3779b9) | 0;
  let z = state.s;
  z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
  z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
  return (z ^ (z >>> 16)) >>> 0;
}

const TWO_POW_32 = 4294967296;
const TWO_POW_53_INV = 1 / 9007199254740992;

/** Validates a seed: a finite integer in [0, 2^53). Throws INVALID_ARGUMENT (reason BAD_SEED). */
export function assertSeed(seed: unknown): asserts seed is number {
  if (typeof seed !== "number" || !Number.isSafeInteger(seed) || seed < 0) {
    throw new CustodiaError("INVALID_ARGUMENT", "seed must be a non-negative safe integer", { reason: "BAD_SEED", seed: String(seed) });
  }
}

export class Rng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;
  private spare = 0;
  private hasSpare = false;

  /** `seed`: a non-negative safe integer; both its low and high 32 bits feed the state. */
  constructor(seed: number) {
    assertSeed(seed);
    const st = { s: (seed >>> 0) ^ Math.imul(Math.floor(seed / TWO_POW_32) | 0, 0x27d4eb2d) };
    this.a = splitmix32(st);
    this.b = splitmix32(st);
    this.c = splitmix32(st);
    this.d = splitmix32(st);
    if ((this.a | this.b | this.c | this.d) === 0) this.a = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** Uniform double in [0, 1) with 53 random bits. */
  next(): number {
    const hi = this.nextU32() >>> 5; // 27 bits
    const lo = this.nextU32() >>> 6; // 26 bits
    return (hi * 67108864 + lo) * TWO_POW_53_INV;
  }

  /** Uniform integer in [0, n). Precondition: 1 <= n <= 2^32 (unbiased by rejection). */
  nextInt(n: number): number {
    if (n <= 1) return 0;
    const limit = TWO_POW_32 - (TWO_POW_32 % n);
    for (;;) {
      const x = this.nextU32();
      if (x < limit) return x % n;
    }
  }

  /** Uniform double in [lo, hi). */
  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Standard normal deviate (Marsaglia polar method). */
  normal(): number {
    if (this.hasSpare) {
      this.hasSpare = false;
      return this.spare;
    }
    let u: number;
    let v: number;
    let s: number;
    do {
      u = 2 * this.next() - 1;
      v = 2 * this.next() - 1;
      s = u * u + v * v;
    } while (s >= 1 || s === 0);
    const m = Math.sqrt((-2 * Math.log(s)) / s);
    this.spare = v * m;
    this.hasSpare = true;
    return u * m;
  }

  /** Poisson deviate: Knuth's product method for small means, a rounded normal above 30. */
  poisson(mean: number): number {
    if (!(mean > 0)) return 0;
    if (mean > 30) return Math.max(0, Math.round(mean + Math.sqrt(mean) * this.normal()));
    const l = Math.exp(-mean);
    let k = 0;
    let p = 1;
    do {
      k++;
      p *= this.next();
    } while (p > l);
    return k - 1;
  }

  /** Index drawn with probability proportional to `weights[i]` (all >= 0, sum > 0). */
  pick(weights: readonly number[]): number {
    let total = 0;
    for (const w of weights) total += w;
    let r = this.next() * total;
    for (let i = 0; i < weights.length; i++) {
      r -= weights[i]!;
      if (r < 0) return i;
    }
    return weights.length - 1;
  }

  /** A fresh seed derived from this stream (for sub-streams such as k-means restarts). */
  deriveSeed(): number {
    return (this.nextU32() & 0x1fffff) * TWO_POW_32 + this.nextU32();
  }

  /** In-place Fisher–Yates shuffle. */
  shuffle<T>(arr: T[] | Int32Array): void {
    for (let i = arr.length - 1; i > 0; i--) {
      const j = this.nextInt(i + 1);
      const t = arr[i]!;
      arr[i] = arr[j]!;
      arr[j] = t;
    }
  }

  /** `m` distinct indices from [0, n), sorted ascending (m >= n gives all of them). */
  sampleIndices(n: number, m: number): Int32Array {
    if (m >= n) {
      const all = new Int32Array(n);
      for (let i = 0; i < n; i++) all[i] = i;
      return all;
    }
    // Floyd's algorithm: O(m) draws, no O(n) array.
    const chosen = new Set<number>();
    for (let j = n - m; j < n; j++) {
      const t = this.nextInt(j + 1);
      chosen.add(chosen.has(t) ? j : t);
    }
    const out = Int32Array.from(chosen);
    out.sort();
    return out;
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
