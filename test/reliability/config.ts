/**
 * Sizes and figures of the reliability suite (`npm run test:reliability`).
 *
 * Two modes: the SHORT run is part of `npm test` (each item real but small), the FULL run has the
 * issue's sizes (a soak of at least 10 minutes, at least 20 SIGKILLs, at least 10,000 fuzz cases).
 * `CUSTODIA_RELIABILITY=full` selects the full defaults; every size can also be set on its own
 * through its `CUSTODIA_REL_*` variable, so a 10-minute soak can be run by hand without the rest.
 *
 * Each test file records its figures with `recordFigures`; when CUSTODIA_REL_RESULTS names a
 * directory (the runner, test/reliability/run.ts, sets it) they are written there as JSON and the
 * runner merges them into the one JSON line the full run ends with.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";

export type Mode = "short" | "full";

/** The mode of this run: CUSTODIA_RELIABILITY=full, anything else (or nothing) is short. */
export const MODE: Mode = process.env["CUSTODIA_RELIABILITY"] === "full" ? "full" : "short";

function num(name: string, short: number, full: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === "") return MODE === "full" ? full : short;
  const n = Number(raw);
  if (!Number.isFinite(n) || n < 0) throw new Error(`${name} must be a non-negative number, got "${raw}"`);
  return n;
}

/** Every size of the suite, from the environment with the mode's defaults. */
export const SIZES = {
  /** Soak at the target rate, seconds (full: 10 minutes). */
  soakSeconds: num("CUSTODIA_REL_SOAK_SECONDS", 15, 600),
  /** The unthrottled burst that measures the gateway's maximum, seconds. */
  soakMeasureSeconds: num("CUSTODIA_REL_SOAK_MEASURE_SECONDS", 3, 10),
  /** Fraction of the measured maximum the soak runs at. */
  soakLoad: num("CUSTODIA_REL_SOAK_LOAD", 0.8, 0.8),
  soakConnections: num("CUSTODIA_REL_SOAK_CONNECTIONS", 16, 32),
  soakPartners: num("CUSTODIA_REL_SOAK_PARTNERS", 3, 5),
  soakSubjects: num("CUSTODIA_REL_SOAK_SUBJECTS", 60, 400),
  /** How often the gateway process's memory is sampled during the soak, seconds. */
  soakSampleSeconds: num("CUSTODIA_REL_SOAK_SAMPLE_SECONDS", 3, 15),
  /** SIGKILLs of the gateway under load. */
  kills: num("CUSTODIA_REL_KILLS", 3, 20),
  /** Random kill moment after the load starts: uniform in [min, max] ms. */
  killMinMs: num("CUSTODIA_REL_KILL_MIN_MS", 250, 250),
  killMaxMs: num("CUSTODIA_REL_KILL_MAX_MS", 1_200, 2_500),
  /** Generated HTTP requests against the gateway, and generated CLI invocations. */
  fuzzHttpCases: num("CUSTODIA_REL_FUZZ_HTTP_CASES", 400, 10_000),
  fuzzCliCases: num("CUSTODIA_REL_FUZZ_CLI_CASES", 100, 2_000),
  /** Grant/revoke races with partner queries. */
  raceRounds: num("CUSTODIA_REL_RACE_ROUNDS", 6, 60),
  /** Partner queries fired around each consent change, per subject. */
  raceQueries: num("CUSTODIA_REL_RACE_QUERIES", 12, 24),
  /** Subjects whose consent changes in each round (at once). */
  raceSubjects: num("CUSTODIA_REL_RACE_SUBJECTS", 3, 4),
} as const;

/**
 * The seed of every random choice in the suite (kill moments, fuzz cases, race timings):
 * CUSTODIA_REL_SEED, else derived from the clock. Printed by each test so a run can be repeated.
 */
export const SEED: number = (() => {
  const raw = process.env["CUSTODIA_REL_SEED"];
  if (raw !== undefined && raw !== "") {
    const n = Number(raw);
    if (!Number.isSafeInteger(n)) throw new Error(`CUSTODIA_REL_SEED must be an integer, got "${raw}"`);
    return n | 0;
  }
  return (Date.now() ^ (process.pid << 16)) | 0;
})();

/** A small seeded PRNG: deterministic kill moments and race timings for a seed. */
export { rng } from "../helpers/rng.js";

/** The figures of the one JSON line; each test file contributes the ones it measures. */
export interface Figures {
  soakSeconds: number;
  requests: number;
  errors5xx: number;
  kills: number;
  lostEntries: number;
  duplicateEntries: number;
  maxAnchorLagMs: number;
  fuzzCases: number;
  fuzzFailures: number;
  staleGrants: number;
}

/** Every key of the JSON line, in its order. */
export const FIGURE_KEYS: readonly (keyof Figures)[] = ["soakSeconds", "requests", "errors5xx", "kills", "lostEntries", "duplicateEntries", "maxAnchorLagMs", "fuzzCases", "fuzzFailures", "staleGrants"];

/** What one test file reports: some of the figures, plus details that go into RELIABILITY.md. */
export interface ItemReport {
  item: string;
  mode: Mode;
  seed: number;
  figures: Partial<Figures>;
  details: Record<string, unknown>;
}

/**
 * Records an item's figures: written to `$CUSTODIA_REL_RESULTS/<item>.json` when that is set,
 * and printed as one line either way (vitest shows it with the file's output). Call it before
 * asserting, so a failing run still reports what it measured.
 */
export function recordFigures(report: Omit<ItemReport, "mode" | "seed"> & { seed?: number }): void {
  const full: ItemReport = { mode: MODE, seed: report.seed ?? SEED, ...report };
  const dir = process.env["CUSTODIA_REL_RESULTS"];
  if (dir) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, `${report.item}.json`), JSON.stringify(full, null, 2) + "\n");
  }
  process.stdout.write(`reliability ${report.item}: ${JSON.stringify({ ...full.figures, ...full.details })}\n`);
}
