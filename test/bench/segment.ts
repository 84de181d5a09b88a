/**
 * k-means benchmark: Custodia analytics vs scikit-learn vs ml-kmeans on the same planted data.
 *
 *   npm run bench:segment        (= tsx test/bench/segment.ts; not part of the test suite)
 *
 * Data: generateBlobs (seeded) with d = 8 features and k = 8 planted Gaussian clusters of unequal
 * weights and per-feature spreads (some overlap: ARI of a perfect method ≈ 0.999), at n = 100,000
 * and n = 1,000,000; float64.
 *
 * Same settings for all three: k = 8, n_init = 3 (each library keeps the best of three k-means++
 * restarts; n_init = 3 rather than 1 so a single unlucky seeding cannot decide the inertia
 * comparison), max_iter = 300, tol = 1e-4 with scikit-learn's meaning (relative to the mean
 * per-feature variance, on the summed squared centre shift; ml-kmeans only has an absolute
 * per-centre tolerance, so it gets tol × mean variance).
 *
 *  - ours: kmeans() from analytics/ (greedy k-means++, Hamerly-accelerated Lloyd) with
 *    workers = availableParallelism() threads in total (2 on the reference machine: the calling
 *    thread + 1 worker thread). Kernels are compiled on first use and the worker pool persists,
 *    so the first ("cold") run is reported separately. Also timed on 1 thread, to show what the
 *    worker thread buys (the results are bit-identical, which is checked).
 *  - scikit-learn: KMeans(init="k-means++", algorithm="lloyd") in Debian's /usr/bin/python3
 *    (package python3-sklearn) on the same bytes (a temp file loaded with numpy.fromfile). Only
 *    fit() is timed, inside Python. It uses all cores through OpenMP (thread counts reported by
 *    threadpoolctl). One untimed warm-up fit, like our cold run. Skipped, with a message, when
 *    that interpreter or scikit-learn is missing.
 *  - ours and scikit-learn runs are INTERLEAVED (ours, sklearn, ours, sklearn, …; REPEATS pairs)
 *    so both see the same background load, with a 400 ms pause before each run (scikit-learn's
 *    OpenMP/OpenBLAS threads spin after a fit and would slow whatever runs next); the figures are
 *    medians over the pairs, and "pairwise" is the median of the per-pair ratios.
 *  - ml-kmeans (npm): kmeans(number[][], k, { initialization: "kmeans++" }) three times with
 *    different seeds, best inertia kept; single-threaded (no threading in that library); the
 *    number[][] conversion is not timed. Run in full at both sizes (≈ 9 s per restart at 1M).
 *
 * Prints progress to stderr, a table to stdout, and as the LAST stdout line one JSON object for
 * n = 1,000,000: { n, ms, sklearnMs, timeRatio, inertiaRatio, mlKmeansMs, ari, … , small } with
 * timeRatio = ms / sklearnMs, inertiaRatio = our inertia / scikit-learn's, ari = adjusted Rand
 * index of our labels vs the planted ones; `small` is the same for n = 100,000.
 * Environment: BENCH_REPEATS (default 5), BENCH_SKIP_ML=1 skips ml-kmeans, BENCH_PYTHON overrides
 * the interpreter (default /usr/bin/python3).
 */
import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { kmeans as mlKmeans } from "ml-kmeans";
import { adjustedRandIndex, closeKMeansWorkers, generateBlobs, kmeans, type KMeansResult, type Matrix } from "../../analytics/index.js";

const D = 8;
const K = 8;
const N_INIT = 3;
const MAX_ITER = 300;
const TOL = 1e-4;
const SEED = 42;
const REPEATS = Number(process.env.BENCH_REPEATS ?? 5);
const SIZES = [100_000, 1_000_000] as const;
const PYTHON = process.env.BENCH_PYTHON ?? "/usr/bin/python3"; // Debian's interpreter (python3-sklearn), not pyenv's
const SKLEARN_SCRIPT = join(dirname(fileURLToPath(import.meta.url)), "sklearn_kmeans.py");
const WORKERS = availableParallelism();

const log = (msg: string): void => {
  process.stderr.write(`[bench:segment] ${msg}\n`);
};
const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number | null, digits = 1): string => (x === null ? "—" : x.toFixed(digits));
const round = (x: number, digits = 1): number => Math.round(x * 10 ** digits) / 10 ** digits;
/**
 * Pause between timed runs: after a fit, OpenMP/OpenBLAS threads busy-wait for a while and would
 * otherwise steal the cores from the next (our) run; our idle workers block in Atomics.wait.
 */
const settle = (): Promise<void> => new Promise((r) => setTimeout(r, 400));

function sklearnUnavailable(): string | null {
  if (!existsSync(PYTHON)) return `${PYTHON} not found`;
  const r = spawnSync(PYTHON, ["-c", "import sklearn, numpy, threadpoolctl"], { encoding: "utf8" });
  if (r.status !== 0) return `scikit-learn is not importable by ${PYTHON} (apt-get install -y python3-sklearn): ${r.stderr.trim().split("\n").pop()}`;
  return null;
}

/** A running sklearn_kmeans.py: send a command line, read one JSON line back. */
class Sklearn {
  private readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;
  private stderr = "";

  constructor(file: string, n: number, readonly labelsOut: string) {
    this.proc = spawn(PYTHON, [SKLEARN_SCRIPT, file, String(n), String(D), String(K), String(N_INIT), String(MAX_ITER), String(TOL), String(SEED), labelsOut]);
    this.proc.stderr.on("data", (b: Buffer) => (this.stderr += b.toString()));
    this.lines = createInterface({ input: this.proc.stdout })[Symbol.asyncIterator]();
  }

  async next<T>(): Promise<T> {
    const r = await this.lines.next();
    if (r.done) throw new Error(`sklearn_kmeans.py exited: ${this.stderr}`);
    return JSON.parse(r.value) as T;
  }

  async send<T>(cmd: "fit" | "quit"): Promise<T> {
    this.proc.stdin.write(`${cmd}\n`);
    return this.next<T>();
  }
}

function inertiaOf(X: Matrix, centroids: ArrayLike<number>, labels: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < X.rows; i++) {
    const c = labels[i]! * D;
    for (let f = 0; f < D; f++) {
      const z = X.data[i * D + f]! - centroids[c + f]!;
      s += z * z;
    }
  }
  return s;
}

function meanVariance(X: Matrix): number {
  let tot = 0;
  for (let f = 0; f < D; f++) {
    let m = 0;
    for (let i = 0; i < X.rows; i++) m += X.data[i * D + f]!;
    m /= X.rows;
    let v = 0;
    for (let i = 0; i < X.rows; i++) v += (X.data[i * D + f]! - m) ** 2;
    tot += v / X.rows;
  }
  return tot / D;
}

function runMl(X: Matrix): { ms: number; inertia: number } {
  const rows: number[][] = new Array(X.rows);
  for (let i = 0; i < X.rows; i++) rows[i] = Array.from(X.data.subarray(i * D, (i + 1) * D));
  const tolerance = TOL * meanVariance(X);
  let best = Infinity;
  const t0 = performance.now();
  for (let r = 0; r < N_INIT; r++) {
    const res = mlKmeans(rows, K, { initialization: "kmeans++", seed: SEED + r, maxIterations: MAX_ITER, tolerance });
    best = Math.min(best, inertiaOf(X, res.centroids.flat(), res.clusters));
  }
  return { ms: performance.now() - t0, inertia: best };
}

interface CaseResult {
  n: number;
  ms: number;
  coldMs: number;
  serialMs: number;
  inertia: number;
  iterations: number;
  ari: number;
  sklearnMs: number | null;
  sklearnInertia: number | null;
  sklearnIterations: number | null;
  sklearnAri: number | null;
  timeRatio: number | null;
  pairRatio: number | null;
  inertiaRatio: number | null;
  mlKmeansMs: number | null;
  mlKmeansInertia: number | null;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "custodia-bench-"));
  const skip = sklearnUnavailable();
  if (skip !== null) log(`SKIPPING scikit-learn: ${skip}`);
  log(`machine: ${cpus()[0]?.model ?? "?"}, ${availableParallelism()} cores; ours uses workers = ${WORKERS}; ${REPEATS} interleaved pairs per size`);
  const results: CaseResult[] = [];
  let sklearnInfo: { version: string; threads: Record<string, number> } | null = null;
  try {
    for (const n of SIZES) {
      log(`n = ${n}: generating planted data (d = ${D}, k = ${K})`);
      const { X, labels: truth } = generateBlobs({ n, d: D, k: K, seed: SEED, minSeparation: 4, shared: true });
      const file = join(dir, `X-${n}.f64`);
      writeFileSync(file, new Uint8Array(X.data.buffer, X.data.byteOffset, X.data.byteLength));
      const opts = { k: K, nInit: N_INIT, maxIter: MAX_ITER, tol: TOL, seed: SEED, workers: WORKERS };

      let sk: Sklearn | null = null;
      if (skip === null) {
        sk = new Sklearn(file, n, join(dir, `labels-${n}.i32`));
        await sk.next<{ ready: boolean }>();
        await sk.send("fit"); // warm-up, untimed
      }
      let t0 = performance.now();
      let res: KMeansResult = kmeans(X, opts);
      const coldMs = performance.now() - t0;
      log(`n = ${n}: ours cold run ${coldMs.toFixed(1)} ms`);

      const ours: number[] = [];
      const theirs: number[] = [];
      let skLast: { ms: number; inertia: number; nIter: number } | null = null;
      for (let r = 0; r < REPEATS; r++) {
        await settle();
        t0 = performance.now();
        res = kmeans(X, opts);
        ours.push(performance.now() - t0);
        if (sk !== null) {
          await settle();
          skLast = await sk.send<{ ms: number; inertia: number; nIter: number }>("fit");
          theirs.push(skLast.ms);
        }
        log(`n = ${n}: pair ${r + 1}: ours ${ours[r]!.toFixed(1)} ms` + (sk !== null ? `, scikit-learn ${theirs[r]!.toFixed(1)} ms` : ""));
      }
      let sklearnLabels: Int32Array | null = null;
      if (sk !== null) {
        sklearnInfo = await sk.send<{ version: string; threads: Record<string, number> }>("quit");
        const buf = readFileSync(sk.labelsOut);
        sklearnLabels = new Int32Array(buf.buffer, buf.byteOffset, buf.byteLength / 4);
      }

      const serial: number[] = [];
      for (let r = 0; r < Math.min(REPEATS, 3); r++) {
        t0 = performance.now();
        const one = kmeans(X, { ...opts, workers: 1 });
        serial.push(performance.now() - t0);
        if (one.inertia !== res.inertia || one.labels.some((l, i) => l !== res.labels[i])) throw new Error("1-thread and multi-thread results differ");
      }
      log(`n = ${n}: ours on 1 thread ${median(serial).toFixed(1)} ms`);

      let ml: { ms: number; inertia: number } | null = null;
      if (process.env.BENCH_SKIP_ML !== "1") {
        log(`n = ${n}: ml-kmeans (${N_INIT} restarts, 1 thread)`);
        ml = runMl(X);
        log(`n = ${n}: ml-kmeans ${ml.ms.toFixed(0)} ms, inertia ${ml.inertia.toFixed(1)}`);
      }

      const ms = median(ours);
      const sklearnMs = theirs.length > 0 ? median(theirs) : null;
      results.push({
        n,
        ms,
        coldMs,
        serialMs: median(serial),
        inertia: res.inertia,
        iterations: res.iterations,
        ari: adjustedRandIndex(res.labels, truth),
        sklearnMs,
        sklearnInertia: skLast?.inertia ?? null,
        sklearnIterations: skLast?.nIter ?? null,
        sklearnAri: sklearnLabels !== null ? adjustedRandIndex(sklearnLabels, truth) : null,
        timeRatio: sklearnMs !== null ? ms / sklearnMs : null,
        pairRatio: theirs.length > 0 ? median(ours.map((o, i) => o / theirs[i]!)) : null,
        inertiaRatio: skLast !== null ? res.inertia / skLast.inertia : null,
        mlKmeansMs: ml?.ms ?? null,
        mlKmeansInertia: ml?.inertia ?? null,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await closeKMeansWorkers();
  }

  const head = ["n", "ours ms", "cold", "1 thread", "sklearn ms", "ml-kmeans ms", "ours/sklearn", "pairwise", "ml-kmeans/ours", "inertia ours", "inertia sklearn", "inertia ratio", "iters ours/sk", "ARI ours", "ARI sklearn"];
  const rows = results.map((r) => [
    String(r.n),
    fmt(r.ms),
    fmt(r.coldMs),
    fmt(r.serialMs),
    fmt(r.sklearnMs),
    fmt(r.mlKmeansMs, 0),
    fmt(r.timeRatio, 3),
    fmt(r.pairRatio, 3),
    r.mlKmeansMs === null ? "—" : `${(r.mlKmeansMs / r.ms).toFixed(1)}×`,
    r.inertia.toFixed(1),
    fmt(r.sklearnInertia),
    fmt(r.inertiaRatio, 6),
    `${r.iterations}/${r.sklearnIterations ?? "—"}`,
    r.ari.toFixed(4),
    fmt(r.sklearnAri, 4),
  ]);
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: string[]): string => cells.map((cell, c) => cell.padStart(widths[c]!)).join("  ");
  console.log(`k-means, d = ${D}, k = ${K}, n_init = ${N_INIT}, max_iter = ${MAX_ITER}, tol = ${TOL}; medians of ${REPEATS} interleaved runs (ms)`);
  console.log(
    `threads: ours ${WORKERS} (caller + ${WORKERS - 1} worker); scikit-learn ${sklearnInfo?.version ?? "skipped"} ${sklearnInfo ? JSON.stringify(sklearnInfo.threads) : ""}; ml-kmeans 1`,
  );
  console.log(line(head));
  for (const row of rows) console.log(line(row));

  const summary = (r: CaseResult): Record<string, unknown> => ({
    n: r.n,
    ms: round(r.ms),
    sklearnMs: r.sklearnMs === null ? null : round(r.sklearnMs),
    timeRatio: r.timeRatio === null ? null : round(r.timeRatio, 4),
    inertiaRatio: r.inertiaRatio === null ? null : round(r.inertiaRatio, 6),
    mlKmeansMs: r.mlKmeansMs === null ? null : round(r.mlKmeansMs),
    ari: round(r.ari, 4),
    pairwiseTimeRatio: r.pairRatio === null ? null : round(r.pairRatio, 4),
    coldMs: round(r.coldMs),
    serialMs: round(r.serialMs),
    mlKmeansSpeedup: r.mlKmeansMs === null ? null : round(r.mlKmeansMs / r.ms, 1),
    sklearnAri: r.sklearnAri === null ? null : round(r.sklearnAri, 4),
    iterations: r.iterations,
    sklearnIterations: r.sklearnIterations,
  });
  const big = results.find((r) => r.n === 1_000_000)!;
  const small = results.find((r) => r.n === 100_000)!;
  console.log(
    JSON.stringify({
      ...summary(big),
      nInit: N_INIT,
      workers: WORKERS,
      sklearnThreads: sklearnInfo?.threads ?? null,
      mlKmeansMode: big.mlKmeansMs === null ? "skipped" : "measured",
      small: summary(small),
    }),
  );
}

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`usage: npm run bench:segment
  k-means on planted data (n = 100,000 and 1,000,000; d = 8, k = 8): ours against scikit-learn
  (Debian's python3-sklearn) and ml-kmeans, in interleaved runs; a table, then one JSON line.
  Environment: BENCH_REPEATS (5 pairs), BENCH_PYTHON (/usr/bin/python3), BENCH_SKIP_ML=1 (skip
  ml-kmeans).
`);
  process.exit(0);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
