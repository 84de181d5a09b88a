/**
 * Seeded synthetic data with KNOWN planted segments, for tests, demos and benchmarks.
 *
 * generateCustomers(): retail/finance customers drawn from up to six personas with distinct
 * recency, frequency, basket size, tenure, channel and category behaviour, plus noise, optional
 * outliers (a few subjects with 20× baskets) and protected attributes whose distribution differs
 * mildly by persona. Returns transactions, profiles (subjects "cust-0000001", … so sorted order is
 * generation order), and the true persona of each profile.
 *
 * generateBlobs(): the fast path for large benchmarks — an n × d matrix of Gaussian clusters
 * around k well-separated centres (minimum centre distance enforced), unequal cluster weights and
 * per-cluster, per-feature spreads; optionally backed by a SharedArrayBuffer so k-means workers
 * can use it without a copy.
 */
import { AGE_BANDS, GENDERS } from "../core/index.js";
import { Rng } from "./rng.js";
import { fail, type Matrix } from "./matrix.js";
import { DAY_SECONDS, type Profile, type Transaction } from "./features.js";

export const CATEGORIES = ["grocery", "fashion", "electronics", "home", "beauty", "travel"] as const;
export const CHANNELS = ["online", "store", "app"] as const;
// the vault's vocabularies (core/domain.ts), so generated profiles ingest as they are
export { AGE_BANDS, GENDERS };
export const REGIONS = ["north", "south", "east", "west"] as const;

export interface Persona {
  readonly name: string;
  /** Relative frequency of the persona in the population. */
  readonly weight: number;
  /** Tenure range in days. */
  readonly tenure: readonly [number, number];
  /** Days between the last purchase and asOf. */
  readonly recency: readonly [number, number];
  /** Purchases per 30 days while active. */
  readonly ratePerMonth: number;
  /** Median basket and log-normal sigma. */
  readonly basket: number;
  readonly basketSigma: number;
  /** Probabilities over CHANNELS and CATEGORIES. */
  readonly channels: readonly number[];
  readonly categories: readonly number[];
  /** Probabilities over AGE_BANDS (genders and regions are shared, nearly uniform). */
  readonly ages: readonly number[];
}

export const PERSONAS: readonly Persona[] = [
  {
    name: "app-loyalists",
    weight: 1.2,
    tenure: [400, 1500],
    recency: [0, 6],
    ratePerMonth: 6,
    basket: 38,
    basketSigma: 0.35,
    channels: [0.12, 0.03, 0.85],
    categories: [0.05, 0.5, 0.05, 0.05, 0.35, 0],
    ages: [0.35, 0.35, 0.15, 0.1, 0.03, 0.02],
  },
  {
    name: "store-grocers",
    weight: 1.4,
    tenure: [300, 2000],
    recency: [0, 8],
    ratePerMonth: 5,
    basket: 62,
    basketSigma: 0.3,
    channels: [0.04, 0.92, 0.04],
    categories: [0.82, 0.02, 0.01, 0.13, 0.02, 0],
    ages: [0.05, 0.15, 0.25, 0.3, 0.15, 0.1],
  },
  {
    name: "big-ticket-online",
    weight: 0.8,
    tenure: [200, 1500],
    recency: [15, 120],
    ratePerMonth: 0.5,
    basket: 650,
    basketSigma: 0.4,
    channels: [0.88, 0.1, 0.02],
    categories: [0, 0.05, 0.6, 0.35, 0, 0],
    ages: [0.1, 0.3, 0.3, 0.2, 0.06, 0.04],
  },
  {
    name: "lapsed",
    weight: 1.0,
    tenure: [700, 2500],
    recency: [250, 600],
    ratePerMonth: 1.2,
    basket: 45,
    basketSigma: 0.5,
    channels: [0.4, 0.4, 0.2],
    categories: [0.35, 0.25, 0.1, 0.15, 0.15, 0],
    ages: [0.15, 0.2, 0.2, 0.2, 0.15, 0.1],
  },
  {
    name: "new-joiners",
    weight: 0.8,
    tenure: [3, 45],
    recency: [0, 3],
    ratePerMonth: 4,
    basket: 30,
    basketSigma: 0.4,
    channels: [0.3, 0.05, 0.65],
    categories: [0.2, 0.4, 0.1, 0.05, 0.25, 0],
    ages: [0.4, 0.35, 0.15, 0.07, 0.018, 0.012],
  },
  {
    name: "travel-premium",
    weight: 0.6,
    tenure: [300, 1500],
    recency: [3, 60],
    ratePerMonth: 1.2,
    basket: 320,
    basketSigma: 0.35,
    channels: [0.7, 0.02, 0.28],
    categories: [0, 0.15, 0.1, 0, 0, 0.75],
    ages: [0.05, 0.25, 0.3, 0.25, 0.09, 0.06],
  },
];

export interface CustomerOptions {
  n: number;
  seed?: number;
  /** Unix seconds (default 1_767_225_600 = 2026-01-01T00:00:00Z). */
  asOf?: number;
  /** Number of personas used, the first ones of PERSONAS (1..6, default 6). */
  personas?: number;
  /** Share of subjects whose baskets are multiplied by 20 (default 0). */
  outlierRate?: number;
  /** Share of profiles missing each protected attribute (default 0). */
  missingRate?: number;
}

export interface CustomerData {
  readonly asOf: number;
  readonly transactions: Transaction[];
  readonly profiles: Profile[];
  /** Persona index of each profile (same order). */
  readonly truth: Int32Array;
  readonly personaNames: readonly string[];
}

export const DEFAULT_AS_OF = 1_767_225_600;

export function generateCustomers(opts: CustomerOptions): CustomerData {
  const { n } = opts;
  if (!Number.isSafeInteger(n) || n < 0 || n > 10_000_000) fail("BAD_OPTION", "n must be an integer in [0, 1e7]", { option: "n" });
  const np = opts.personas ?? PERSONAS.length;
  if (!Number.isSafeInteger(np) || np < 1 || np > PERSONAS.length) fail("BAD_OPTION", `personas must be 1..${PERSONAS.length}`, { option: "personas" });
  const outlierRate = opts.outlierRate ?? 0;
  const missingRate = opts.missingRate ?? 0;
  if (!(outlierRate >= 0 && outlierRate <= 1) || !(missingRate >= 0 && missingRate <= 1)) fail("BAD_OPTION", "rates must be in [0, 1]", { option: "rate" });
  const asOf = opts.asOf ?? DEFAULT_AS_OF;
  const rng = new Rng(opts.seed ?? 0);
  const personas = PERSONAS.slice(0, np);
  const weights = personas.map((p) => p.weight);
  const transactions: Transaction[] = [];
  const profiles: Profile[] = [];
  const truth = new Int32Array(n);
  const width = String(Math.max(n, 1)).length + 1;
  for (let i = 0; i < n; i++) {
    const pi = rng.pick(weights);
    const p = personas[pi]!;
    truth[i] = pi;
    const subject = `cust-${String(i + 1).padStart(Math.max(7, width), "0")}`;
    const tenureDays = rng.uniform(p.tenure[0], p.tenure[1]);
    const joinedAt = Math.round(asOf - tenureDays * DAY_SECONDS);
    const recencyDays = Math.min(rng.uniform(p.recency[0], p.recency[1]), tenureDays * 0.95);
    const lastAt = asOf - recencyDays * DAY_SECONDS;
    const activeDays = Math.max(0, (lastAt - joinedAt) / DAY_SECONDS);
    const count = 1 + rng.poisson((p.ratePerMonth * activeDays) / 30);
    const outlier = rng.next() < outlierRate;
    const scale = outlier ? 20 : 1;
    for (let t = 0; t < count; t++) {
      // The first purchase fixes recency; the others fall uniformly in the active window.
      const at = t === 0 ? lastAt : joinedAt + rng.next() * (lastAt - joinedAt);
      const amount = Math.round(p.basket * scale * Math.exp(p.basketSigma * rng.normal()) * 100) / 100;
      transactions.push({
        subject,
        at: Math.floor(at),
        amount,
        category: CATEGORIES[rng.pick(p.categories)]!,
        channel: CHANNELS[rng.pick(p.channels)]!,
      });
    }
    const profile: Profile = { subject, joinedAt };
    if (rng.next() >= missingRate) profile.ageBand = AGE_BANDS[rng.pick(p.ages)]!;
    if (rng.next() >= missingRate) profile.gender = GENDERS[rng.pick([0.49, 0.49, 0.01, 0.01])]!;
    if (rng.next() >= missingRate) profile.region = REGIONS[rng.pick([0.25, 0.25, 0.25, 0.25])]!;
    profiles.push(profile);
  }
  return { asOf, transactions, profiles, truth, personaNames: personas.map((p) => p.name) };
}

export interface BlobOptions {
  n: number;
  d: number;
  k: number;
  seed?: number;
  /** Centres are uniform in [-box, box]^d (default 6). */
  box?: number;
  /** Minimum distance between centres, in units of the largest spread (default 6). */
  minSeparation?: number;
  /** Back the matrix by a SharedArrayBuffer (default false). */
  shared?: boolean;
}

export interface Blobs {
  readonly X: Matrix;
  readonly labels: Int32Array;
  readonly centres: Float64Array;
}

export function generateBlobs(opts: BlobOptions): Blobs {
  const { n, d, k } = opts;
  if (!Number.isSafeInteger(n) || n < 1 || !Number.isSafeInteger(d) || d < 1 || !Number.isSafeInteger(k) || k < 1 || k > n) {
    fail("BAD_OPTION", "need integers n >= k >= 1 and d >= 1", { option: "n/d/k" });
  }
  const rng = new Rng(opts.seed ?? 0);
  const box = opts.box ?? 6;
  const maxSpread = 1.4;
  const minSep = (opts.minSeparation ?? 6) * maxSpread;
  const centres = new Float64Array(k * d);
  for (let j = 0; j < k; j++) {
    for (let attempt = 0; ; attempt++) {
      for (let f = 0; f < d; f++) centres[j * d + f] = rng.uniform(-box, box);
      let ok = true;
      for (let q = 0; q < j && ok; q++) {
        let s = 0;
        for (let f = 0; f < d; f++) {
          const z = centres[j * d + f]! - centres[q * d + f]!;
          s += z * z;
        }
        ok = Math.sqrt(s) >= minSep;
      }
      if (ok) break;
      if (attempt > 10_000) fail("BAD_OPTION", "cannot place centres that far apart; increase box or lower minSeparation", { option: "minSeparation" });
    }
  }
  const weights = Array.from({ length: k }, () => 0.5 + rng.next());
  const spread = Float64Array.from({ length: k * d }, () => rng.uniform(0.6, maxSpread));
  const buf = opts.shared ? new SharedArrayBuffer(n * d * 8) : new ArrayBuffer(n * d * 8);
  const data = new Float64Array(buf);
  const labels = new Int32Array(n);
  // Cumulative weights for O(k) picks without allocation.
  const cum = new Float64Array(k);
  let tot = 0;
  for (let j = 0; j < k; j++) cum[j] = tot += weights[j]!;
  for (let i = 0; i < n; i++) {
    const r = rng.next() * tot;
    let j = 0;
    while (j < k - 1 && cum[j]! <= r) j++;
    labels[i] = j;
    const o = i * d;
    for (let f = 0; f < d; f++) data[o + f] = centres[j * d + f]! + spread[j * d + f]! * rng.normal();
  }
  return { X: { data, rows: n, cols: d }, labels, centres };
}
