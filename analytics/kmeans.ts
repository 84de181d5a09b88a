/**
 * k-means on a dense row-major Float64Array (n × d), with scikit-learn's semantics:
 *
 *  - seeding: greedy k-means++ (Arthur & Vassilvitskii, with scikit-learn's `2 + floor(ln k)`
 *    local trials per centre; the trial giving the lowest potential wins, earliest on ties);
 *  - `nInit` restarts, each seeded from `seed`; the lowest inertia wins (earliest on ties);
 *  - Lloyd iterations accelerated with Hamerly's bounds (per point: an upper bound on the distance
 *    to its centre and a lower bound on the distance to every other centre), so once the centres
 *    settle most points skip the k distance computations. The result is plain Lloyd's: same
 *    labels and centres (ties go to the lowest centre index, as in a naive argmin);
 *  - stopping: "strict" convergence when an assignment step changes no label; otherwise when the
 *    summed squared centre shift is <= tol × mean per-feature variance (then, as in scikit-learn,
 *    one more assignment step so labels match the returned centres); or after `maxIter`
 *    iterations (`converged: false`, also followed by that assignment step);
 *  - an empty cluster is re-seeded with the point farthest from its centre (ties: lowest row),
 *    taken only from clusters that keep at least one point, so identical points terminate with
 *    all clusters populated and no NaN.
 *
 * Speed without changing results:
 *  - k-means++ prunes with the triangle inequality: a candidate c cannot be closer to x than x's
 *    current centre c_a when ‖c − c_a‖² >= 4·D(x) (D = squared distance to c_a). Each round is
 *    one fused pass (apply the previous centre, evaluate the new candidates); the last pass also
 *    yields the first centre sums and valid Hamerly bounds, so no full assignment is needed;
 *  - the hot loops are generated JavaScript specialised for d, k and the trial count (see
 *    kmeans-kernels.ts) over typed arrays, with no allocation per row;
 *  - rows are processed in fixed chunks of CHUNK_ROWS and every sum (potentials, centre sums,
 *    inertia, variance) is accumulated per chunk, then combined in chunk order: results are
 *    bit-identical whatever the number of threads;
 *  - with `workers` > 1 the chunks are split between the calling thread and `workers − 1`
 *    worker_threads of a persistent, unref'd pool working on SharedArrayBuffers, synchronised with
 *    Atomics.wait/notify, so the API stays synchronous. X is used in place when it is already on
 *    a SharedArrayBuffer, else copied once. If workers cannot start, the run continues on one
 *    thread (`workersUsed` says so). `closeKMeansWorkers()` stops the pool.
 *
 * Float64 throughout. Float32 storage was measured (1M × 8, k = 8, one thread: first pass 22 vs
 * 25 ms, k-means++ round 58 vs 57 ms, full assignment 123 vs 121 ms) — no gain, since the loops
 * are compute-bound and values are widened on load — at a relative distance error of ~3.5e-7.
 *
 * Errors (CustodiaError INVALID_ARGUMENT, details.reason): EMPTY_INPUT (n = 0), ZERO_DIMENSION
 * (d = 0), SHAPE_MISMATCH, NAN_VALUE (non-finite value; details.row/col), K_INVALID (k not an
 * integer >= 1), K_TOO_LARGE (k > n), BAD_OPTION (nInit, maxIter, tol, workers, localTrials,
 * init), BAD_SEED.
 */
import { availableParallelism } from "node:os";
import { MessageChannel, Worker, type MessagePort } from "node:worker_threads";
import { CustodiaError } from "../core/index.js";
import { Rng, assertSeed } from "./rng.js";
import { assertMatrix, fail, firstNonFinite, type Matrix } from "./matrix.js";
import { compileKernels, potSlot, type CompiledKernel } from "./kmeans-kernels.js";

export interface KMeansOptions {
  /** Number of clusters, 1 <= k <= n. */
  k: number;
  /** Restarts with different k-means++ seeds; the lowest inertia wins. Default 1. */
  nInit?: number;
  /** Maximum Lloyd iterations per restart. Default 300. */
  maxIter?: number;
  /** Relative tolerance (scikit-learn meaning). Default 1e-4. */
  tol?: number;
  /** Non-negative safe integer. Default 0. */
  seed?: number;
  /**
   * Threads in total (the caller's thread included; at most 16). Default: 1 for small inputs
   * (n·d < 2^20), else min(availableParallelism(), 8). Results do not depend on it. Measured on
   * 2 cores, d = 8, k = 8, warm pool: 20k rows 9.2 → 6.8 ms, 100k rows 59 → 31 ms, 200k rows
   * 113 → 55 ms; starting the pool costs ~30–50 ms once, hence the threshold for the default.
   */
  workers?: number;
  /** k-means++ local trials per centre. Default 2 + floor(ln k). */
  localTrials?: number;
  /** Explicit initial centres (k × d row-major) instead of k-means++; then nInit must be 1. */
  init?: Float64Array;
}

export interface KMeansResult {
  readonly n: number;
  readonly d: number;
  readonly k: number;
  /** k × d row-major. */
  readonly centroids: Float64Array;
  readonly labels: Int32Array;
  /** Sum of squared distances of points to their assigned centres. */
  readonly inertia: number;
  /** Lloyd iterations of the winning restart. */
  readonly iterations: number;
  readonly converged: boolean;
  /** Index of the winning restart and the inertia of every restart. */
  readonly bestInit: number;
  readonly inertias: readonly number[];
  /** Threads actually used. */
  readonly workersUsed: number;
}

/** Rows per chunk: the unit of work splitting and of ordered partial sums. */
export const CHUNK_ROWS = 4096;
const MAX_PARTS = 16;
const AUTO_WORKERS_MIN_VALUES = 1 << 20;
const WORKER_START_TIMEOUT_MS = 15_000;
const KERNEL_TIMEOUT_MS = 300_000;

// ---------------------------------------------------------------------------------------------
// Workspace shared by the kernels (and, through SharedArrayBuffers, by the worker threads)
// ---------------------------------------------------------------------------------------------

interface Dims {
  n: number;
  d: number;
  k: number;
  chunk: number;
  nChunks: number;
  accW: number;
  tMax: number;
}

interface Ws extends Dims {
  X: Float64Array;
  C: Float64Array;
  A: Int32Array;
  U: Float64Array;
  L: Float64Array;
  D: Float64Array;
  sums: Float64Array;
  counts: Float64Array;
  acc: Float64Array;
  cand: Float64Array;
  candCC2: Float64Array;
  cc2: Float64Array;
  shift: Float64Array;
  halfS: Float64Array;
  P: Float64Array;
}

interface BufRef {
  buffer: ArrayBufferLike;
  byteOffset: number;
  length: number;
}

interface WsDesc {
  dims: Dims;
  bufs: Record<Exclude<keyof Ws, keyof Dims>, BufRef>;
}

// Scalar parameter slots in ws.P.
const P_M = 0; // index of the centre being added (k-means++)
const P_T = 1; // local trials in this call
const P_MAXS = 2; // largest centre shift
const P_SECS = 3; // second largest centre shift
const P_ARGS = 4; // centre with the largest shift
const P_MODE = 5; // `first` pass: bit 1 statistics, bit 2 first k-means++ centre

// Pool control block layout (Int32): [0] command sequence number, [1] command, [2] error flag,
// [3] next chunk to process, [4 + w] last sequence number done by worker w,
// [4 + MAX_PARTS + w] ready flag of worker w.
const CTRL_SEQ = 0;
const CTRL_CMD = 1;
const CTRL_ERR = 2;
const CTRL_NEXT = 3;
const CTRL_DONE = 4;
const CTRL_READY = 4 + MAX_PARTS;
const CTRL_LEN = 4 + 2 * MAX_PARTS;

/** Rebuilds the typed-array views from a descriptor (also runs inside the workers). */
function buildWs(desc: WsDesc): Ws {
  const b = desc.bufs;
  const f = (r: BufRef): Float64Array => new Float64Array(r.buffer, r.byteOffset, r.length);
  const i = (r: BufRef): Int32Array => new Int32Array(r.buffer, r.byteOffset, r.length);
  return {
    n: desc.dims.n,
    d: desc.dims.d,
    k: desc.dims.k,
    chunk: desc.dims.chunk,
    nChunks: desc.dims.nChunks,
    accW: desc.dims.accW,
    tMax: desc.dims.tMax,
    X: f(b.X),
    C: f(b.C),
    A: i(b.A),
    U: f(b.U),
    L: f(b.L),
    D: f(b.D),
    sums: f(b.sums),
    counts: f(b.counts),
    acc: f(b.acc),
    cand: f(b.cand),
    candCC2: f(b.candCC2),
    cc2: f(b.cc2),
    shift: f(b.shift),
    halfS: f(b.halfS),
    P: f(b.P),
  };
}

// Kernel indices into the compiled table (see kmeans-kernels.ts, KERNEL_NAMES order).
const K_FIRST = 0;
const K_KPP_STEP = 1;
const K_KPP_FINAL = 2;
const K_ASSIGN_SUMS = 3;
const K_HAMERLY = 4;
const K_INERTIA = 5;

// ---------------------------------------------------------------------------------------------
// Worker pool: persistent (so the workers' JIT stays warm across runs), unref'd threads that
// wait on a shared control block; a run hands them its workspace with a SETUP command (the
// descriptor travels over a MessagePort and is read with receiveMessageOnPort, so neither side
// needs an event loop turn), then each command runs the named kernel on the worker's chunks.
// ---------------------------------------------------------------------------------------------

const CMD_EXIT = -1;
const CMD_SETUP = -2;
const CMD_RELEASE = -3;

/**
 * The loop each pool worker runs (self-contained: it is shipped as source text). For a kernel
 * command it takes chunks one at a time from the shared counter ctrl[3] (dynamic scheduling, so a
 * descheduled thread does not hold the others up); every chunk writes only its own slots, so the
 * result does not depend on which thread ran which chunk.
 */
function workerLoop(
  ctrl: Int32Array,
  me: number,
  port: unknown,
  receive: (port: unknown) => { message: { desc: WsDesc; src: string; active: boolean } } | undefined,
  build: (d: WsDesc) => Ws,
): void {
  // ctrl indices mirror CTRL_*: 0 seq, 1 cmd, 2 error flag, 3 next chunk, 4 + w done, 20 + w ready.
  // Read the sequence BEFORE announcing readiness: the caller may post a command the moment it
  // sees the ready flag, and that command must not be mistaken for an old one.
  let seen = Atomics.load(ctrl, 0);
  Atomics.store(ctrl, 20 + me, 1);
  Atomics.notify(ctrl, 20 + me);
  const cache = new Map<string, CompiledKernel[]>();
  let ws: Ws | null = null;
  let kernels: CompiledKernel[] | null = null;
  let active = false;
  for (;;) {
    Atomics.wait(ctrl, 0, seen);
    const seq = Atomics.load(ctrl, 0);
    if (seq === seen) continue;
    seen = seq;
    const cmd = Atomics.load(ctrl, 1);
    if (cmd === -1) break;
    try {
      if (cmd === -2) {
        const m = receive(port)!.message;
        ws = build(m.desc);
        active = m.active;
        kernels = cache.get(m.src) ?? null;
        if (kernels === null) {
          kernels = new Function(`"use strict"; return ${m.src};`)() as CompiledKernel[];
          if (cache.size > 16) cache.clear();
          cache.set(m.src, kernels);
        }
      } else if (cmd === -3) {
        ws = null;
        kernels = null;
        active = false;
      } else if (active) {
        const kernel = kernels![cmd]!;
        const nChunks = ws!.nChunks;
        for (;;) {
          const ch = Atomics.add(ctrl, 3, 1);
          if (ch >= nChunks) break;
          kernel(ws, ch, ch + 1);
        }
      }
    } catch {
      Atomics.store(ctrl, 2, 1);
    }
    Atomics.store(ctrl, 4 + me, seq);
    Atomics.notify(ctrl, 4 + me);
  }
}

function workerSource(): string {
  if (CTRL_READY !== 20 || CTRL_DONE !== 4 || CTRL_ERR !== 2 || CTRL_NEXT !== 3) throw new Error("worker ctrl layout out of sync");
  return [
    '"use strict";',
    // Transpilers may wrap named functions in a __name helper; make it a no-op here.
    "var __name = function (f) { return f; };",
    'const { workerData, receiveMessageOnPort } = require("node:worker_threads");',
    `const buildWs = ${buildWs.toString()};`,
    `const workerLoop = ${workerLoop.toString()};`,
    "workerLoop(new Int32Array(workerData.ctrl), workerData.me, workerData.port, receiveMessageOnPort, buildWs);",
  ].join("\n");
}

class WorkerPool {
  readonly ctrl = new Int32Array(new SharedArrayBuffer(CTRL_LEN * 4));
  readonly members: { worker: Worker; port: MessagePort }[] = [];
  dead = false;

  /** Makes sure at least `count` workers are running; false if they cannot be started. */
  ensure(count: number): boolean {
    if (this.members.length >= count) return true;
    try {
      const src = workerSource();
      const start = this.members.length;
      for (let me = start; me < count; me++) {
        const { port1, port2 } = new MessageChannel();
        port1.unref();
        const worker = new Worker(src, { eval: true, workerData: { ctrl: this.ctrl.buffer, me, port: port2 }, transferList: [port2] });
        worker.unref();
        const markDead = (): void => {
          this.dead = true;
          Atomics.store(this.ctrl, CTRL_ERR, 1);
        };
        worker.on("error", markDead);
        worker.on("exit", markDead);
        this.members.push({ worker, port: port1 });
      }
      const deadline = Date.now() + WORKER_START_TIMEOUT_MS;
      for (let me = start; me < count; me++) {
        while (Atomics.load(this.ctrl, CTRL_READY + me) !== 1) {
          const left = deadline - Date.now();
          if (left <= 0) throw new Error("worker start timed out");
          Atomics.wait(this.ctrl, CTRL_READY + me, 0, Math.min(left, 50));
        }
      }
      return true;
    } catch {
      void this.shutdown();
      return false;
    }
  }

  /** Posts `cmd` to every worker and waits until all have acknowledged it. */
  command(cmd: number, whileWaiting?: () => void): void {
    const ctrl = this.ctrl;
    Atomics.store(ctrl, CTRL_CMD, cmd);
    Atomics.store(ctrl, CTRL_NEXT, 0);
    const seq = Atomics.add(ctrl, CTRL_SEQ, 1) + 1;
    Atomics.notify(ctrl, CTRL_SEQ);
    let ownError: unknown;
    try {
      whileWaiting?.();
    } catch (e) {
      ownError = e ?? new Error("kernel failed"); // still wait: the workers share the buffers
    }
    const deadline = Date.now() + KERNEL_TIMEOUT_MS;
    for (let me = 0; me < this.members.length; me++) {
      for (;;) {
        const cur = Atomics.load(ctrl, CTRL_DONE + me);
        if (cur === seq) break;
        if (Date.now() > deadline) {
          void this.shutdown();
          throw new CustodiaError("INTERNAL", "k-means worker did not answer");
        }
        Atomics.wait(ctrl, CTRL_DONE + me, cur, 1000);
      }
    }
    if (ownError !== undefined) throw ownError;
    if (Atomics.load(ctrl, CTRL_ERR) !== 0) {
      void this.shutdown();
      throw new CustodiaError("INTERNAL", "k-means worker failed");
    }
  }

  shutdown(): Promise<void> {
    this.dead = true;
    Atomics.store(this.ctrl, CTRL_CMD, CMD_EXIT);
    Atomics.add(this.ctrl, CTRL_SEQ, 1);
    Atomics.notify(this.ctrl, CTRL_SEQ);
    const done = Promise.all(this.members.map((m) => m.worker.terminate())).then(() => undefined);
    this.members.length = 0;
    if (pool === this) pool = undefined;
    return done;
  }
}

let pool: WorkerPool | undefined;

/** Stops the k-means worker threads (they are unref'd, so this is only needed for tidiness). */
export function closeKMeansWorkers(): Promise<void> {
  return pool !== undefined ? pool.shutdown() : Promise.resolve();
}

// ---------------------------------------------------------------------------------------------
// The driver
// ---------------------------------------------------------------------------------------------

class Engine {
  readonly ws: Ws;
  readonly parts: number;
  private readonly kernels: CompiledKernel[];
  private readonly pool: WorkerPool | undefined;

  constructor(X: Matrix, k: number, tMax: number, parts: number) {
    const n = X.rows;
    const d = X.cols;
    const { source, kernels } = compileKernels(d, k, tMax);
    this.kernels = kernels;
    const nChunks = Math.ceil(n / CHUNK_ROWS);
    const dims: Dims = { n, d, k, chunk: CHUNK_ROWS, nChunks, accW: Math.max(2 * d + 2, tMax), tMax };
    const shared = parts > 1;
    const alloc = (len: number, bytes: number): BufRef => ({
      buffer: shared ? new SharedArrayBuffer(len * bytes) : new ArrayBuffer(len * bytes),
      byteOffset: 0,
      length: len,
    });
    let xRef: BufRef;
    if (!shared || X.data.buffer instanceof SharedArrayBuffer) {
      xRef = { buffer: X.data.buffer, byteOffset: X.data.byteOffset, length: X.data.length };
    } else {
      xRef = alloc(n * d, 8);
      new Float64Array(xRef.buffer, 0, n * d).set(X.data);
    }
    const desc: WsDesc = {
      dims,
      bufs: {
        X: xRef,
        C: alloc(k * d, 8),
        A: alloc(n, 4),
        U: alloc(n, 8),
        L: alloc(n, 8),
        D: alloc(n, 8),
        sums: alloc(nChunks * k * d, 8),
        counts: alloc(nChunks * k, 8),
        acc: alloc(nChunks * dims.accW, 8),
        cand: alloc(tMax * d, 8),
        candCC2: alloc(tMax * k, 8),
        cc2: alloc(k, 8),
        shift: alloc(k, 8),
        halfS: alloc(k, 8),
        P: alloc(8, 8),
      },
    };
    this.ws = buildWs(desc);
    let usePool: WorkerPool | undefined;
    if (parts > 1) {
      if (pool?.dead) void pool.shutdown();
      pool ??= new WorkerPool();
      if (pool.ensure(parts - 1)) {
        try {
          pool.members.forEach((m, me) => m.port.postMessage({ desc, src: source, active: me < parts - 1 }));
          pool.command(CMD_SETUP);
          usePool = pool;
        } catch {
          // the pool is shut down by command(); continue on this thread
        }
      }
    }
    this.pool = usePool;
    this.parts = usePool !== undefined ? parts : 1;
  }

  /** Runs kernel `cmd` over all chunks (threads take chunks dynamically); returns when all are done. */
  run(cmd: number): void {
    if (this.pool === undefined) {
      this.kernels[cmd]!(this.ws, 0, this.ws.nChunks);
      return;
    }
    const { ctrl } = this.pool;
    const kernel = this.kernels[cmd]!;
    const { ws } = this;
    this.pool.command(cmd, () => {
      for (;;) {
        const ch = Atomics.add(ctrl, CTRL_NEXT, 1);
        if (ch >= ws.nChunks) break;
        kernel(ws, ch, ch + 1);
      }
    });
  }

  /** Sum over chunks (in chunk order) of acc[ch][slot]. */
  accSum(slot: number): number {
    const { acc, accW, nChunks } = this.ws;
    let s = 0;
    for (let ch = 0; ch < nChunks; ch++) s += acc[ch * accW + slot]!;
    return s;
  }

  /** Lets the workers drop their references to this run's buffers. */
  close(): void {
    if (this.pool !== undefined && !this.pool.dead) {
      try {
        this.pool.command(CMD_RELEASE);
      } catch {
        // the pool has been shut down; nothing holds the buffers any more
      }
    }
  }
}

interface Resolved {
  k: number;
  nInit: number;
  maxIter: number;
  tol: number;
  seed: number;
  workers: number;
  localTrials: number;
  init: Float64Array | undefined;
}

function resolveOptions(X: Matrix, opts: KMeansOptions): Resolved {
  if (opts === null || typeof opts !== "object") fail("BAD_OPTION", "options must be an object");
  assertMatrix(X, "X", false);
  const { k } = opts;
  if (typeof k !== "number" || !Number.isSafeInteger(k) || k < 1) fail("K_INVALID", "k must be an integer >= 1", { k });
  if (k > X.rows) fail("K_TOO_LARGE", `k = ${k} exceeds the number of points (${X.rows})`, { k, n: X.rows });
  const intOpt = (name: string, v: unknown, dflt: number, min: number): number => {
    if (v === undefined) return dflt;
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) fail("BAD_OPTION", `${name} must be an integer >= ${min}`, { option: name });
    return v;
  };
  const nInit = intOpt("nInit", opts.nInit, 1, 1);
  const maxIter = intOpt("maxIter", opts.maxIter, 300, 1);
  const localTrials = intOpt("localTrials", opts.localTrials, 2 + Math.floor(Math.log(k)), 1);
  const tol = opts.tol ?? 1e-4;
  if (typeof tol !== "number" || !Number.isFinite(tol) || tol < 0) fail("BAD_OPTION", "tol must be a finite number >= 0", { option: "tol" });
  const seed = opts.seed ?? 0;
  assertSeed(seed);
  const nChunks = Math.ceil(X.rows / CHUNK_ROWS);
  let workers: number;
  if (opts.workers === undefined) {
    workers = X.rows * X.cols >= AUTO_WORKERS_MIN_VALUES ? Math.min(availableParallelism(), 8) : 1;
  } else {
    workers = intOpt("workers", opts.workers, 1, 1);
  }
  workers = Math.max(1, Math.min(workers, MAX_PARTS, nChunks));
  let init: Float64Array | undefined;
  if (opts.init !== undefined) {
    if (!(opts.init instanceof Float64Array) || opts.init.length !== k * X.cols) {
      fail("BAD_OPTION", "init must be a Float64Array of k × d centres", { option: "init" });
    }
    if (firstNonFinite(opts.init) >= 0) fail("BAD_OPTION", "init has a non-finite value", { option: "init" });
    if (nInit !== 1) fail("BAD_OPTION", "nInit must be 1 with explicit init", { option: "nInit" });
    init = opts.init;
  }
  return { k, nInit, maxIter, tol, seed, workers, localTrials, init };
}

/** Runs k-means. See the module comment for the algorithm and the error reasons. */
export function kmeans(X: Matrix, opts: KMeansOptions): KMeansResult {
  const o = resolveOptions(X, opts);
  const eng = new Engine(X, o.k, o.localTrials, o.workers);
  try {
    return runAll(eng, o);
  } finally {
    eng.close();
  }
}

/**
 * The k-means++ centres (k × d) that `kmeans(X, { ...opts, nInit: 1 })` starts from — for
 * inspection and for comparing against other Lloyd implementations from the same seeds.
 */
export function seedCentres(X: Matrix, opts: Omit<KMeansOptions, "init" | "nInit" | "maxIter" | "tol">): Float64Array {
  const o = resolveOptions(X, opts);
  const eng = new Engine(X, o.k, o.localTrials, o.workers);
  try {
    const ws = eng.ws;
    const { n, d, X: data, C, P } = ws;
    const rng = new Rng(new Rng(o.seed).deriveSeed());
    const firstRow = rng.nextInt(n);
    C.set(data.subarray(firstRow * d, firstRow * d + d), 0);
    P[P_MODE] = 3;
    eng.run(K_FIRST);
    if (eng.accSum(2 * d) !== 0) fail("NAN_VALUE", "X has a non-finite value");
    kmeansPlusPlus(eng, rng, o.localTrials);
    return C.slice();
  } finally {
    eng.close();
  }
}

function runAll(eng: Engine, o: Resolved): KMeansResult {
  const ws = eng.ws;
  const { n, d, k, X, C, acc, accW, chunk, nChunks, P } = ws;
  const master = new Rng(o.seed);
  const inertias: number[] = [];
  let tolAbs = 0;
  let best: { C: Float64Array; A: Int32Array; inertia: number; iterations: number; converged: boolean; index: number } | undefined;
  for (let r = 0; r < o.nInit; r++) {
    const rng = new Rng(master.deriveSeed());
    // First pass: the first k-means++ centre and, on the first restart, validation (finite
    // values) and the absolute tolerance tol × mean per-feature variance (per-chunk means and
    // squared deviations merged in chunk order with Chan et al.'s formula).
    const firstRow = rng.nextInt(n);
    C.set(X.subarray(firstRow * d, firstRow * d + d), 0);
    P[P_MODE] = (r === 0 ? 1 : 0) | (o.init === undefined ? 2 : 0);
    eng.run(K_FIRST);
    if (r === 0) {
      if (eng.accSum(2 * d) !== 0) {
        const bad = firstNonFinite(X);
        if (bad < 0) fail("NAN_VALUE", "X has values whose sum overflows");
        fail("NAN_VALUE", `X has a non-finite value at row ${Math.floor(bad / d)}, column ${bad % d}`, {
          row: Math.floor(bad / d),
          col: bad % d,
        });
      }
      let varSum = 0;
      for (let f = 0; f < d; f++) {
        let cnt = 0;
        let mean = 0;
        let m2 = 0;
        for (let ch = 0; ch < nChunks; ch++) {
          const nb = Math.min(n, (ch + 1) * chunk) - ch * chunk;
          const delta = acc[ch * accW + f]! - mean;
          const tot = cnt + nb;
          mean += (delta * nb) / tot;
          m2 += acc[ch * accW + d + f]! + (delta * delta * cnt * nb) / tot;
          cnt = tot;
        }
        varSum += m2 / n;
      }
      tolAbs = (varSum / d) * o.tol;
    }
    if (o.init !== undefined) {
      C.set(o.init);
      eng.run(K_ASSIGN_SUMS);
    } else {
      kmeansPlusPlus(eng, rng, o.localTrials);
      finishSeeding(eng);
    }
    const { iterations, converged } = lloyd(eng, o.maxIter, tolAbs);
    eng.run(K_INERTIA);
    const inertia = eng.accSum(0);
    inertias.push(inertia);
    if (best === undefined || inertia < best.inertia) {
      best = { C: C.slice(), A: ws.A.slice(), inertia, iterations, converged, index: r };
    }
  }
  const b = best!;
  return {
    n,
    d,
    k,
    centroids: b.C,
    labels: b.A,
    inertia: b.inertia,
    iterations: b.iterations,
    converged: b.converged,
    bestInit: b.index,
    inertias,
    workersUsed: eng.parts,
  };
}

/**
 * Greedy k-means++ (centre 0 already in C, D and A set by the `first` pass): each further
 * centre is the best of T candidates sampled with probability ∝ D (the lowest resulting
 * potential wins, earliest on ties). One fused pass per centre applies the previously chosen
 * centre and evaluates the new candidates; sampling picks a chunk by its potential, then
 * recomputes that chunk's D on the fly, so the chosen centre need not be applied first.
 */
function kmeansPlusPlus(eng: Engine, rng: Rng, localTrials: number): void {
  const ws = eng.ws;
  const { n, d, k, X, C, D, A, acc, accW, nChunks, chunk, cand, candCC2, cc2, P } = ws;
  const T = localTrials;
  const chunkPot = new Float64Array(nChunks);
  // Potentials of the distribution to sample from, per chunk, from acc slot `slot`.
  const readPot = (slot: number): number => {
    let s = 0;
    for (let ch = 0; ch < nChunks; ch++) {
      const v = acc[ch * accW + slot]!;
      chunkPot[ch] = v;
      s += v;
    }
    return s;
  };
  // D after the pending centre `pc` (the last chosen, not yet applied; -1 if none), computed
  // exactly as kppStep will: prune with the triangle inequality, else min(D, ‖x − c_pc‖²).
  const dAfter = (i: number, pc: number, pcc: Float64Array): number => {
    const di = D[i]!;
    if (pc < 0 || pcc[A[i]!]! >= 4 * di) return di;
    let e = 0;
    for (let f = 0; f < d; f++) {
      const z = X[i * d + f]! - C[pc * d + f]!;
      e += z * z;
    }
    return e < di ? e : di;
  };
  // Samples a row with probability ∝ its D (after the pending centre).
  const sample = (pot: number, pc: number, pcc: Float64Array): number => {
    if (!(pot > 0)) return rng.nextInt(n);
    const target = rng.next() * pot;
    let cum = 0;
    let ch = 0;
    while (ch < nChunks - 1 && cum + chunkPot[ch]! <= target) cum += chunkPot[ch++]!;
    let last = -1;
    for (let i = ch * chunk; i < n; i++) {
      const v = dAfter(i, pc, pcc);
      if (v > 0) {
        last = i;
        cum += v;
        if (cum > target) return i;
      }
    }
    return last >= 0 ? last : rng.nextInt(n);
  };

  let pot = readPot(potSlot(d));
  const pendingCC = new Float64Array(k); // ‖c_pending − c_j‖² for j < pending
  let pending = -1;
  for (let c = 1; c < k; c++) {
    for (let t = 0; t < T; t++) {
      const idx = sample(pot, pending, pendingCC);
      cand.set(X.subarray(idx * d, idx * d + d), t * d);
      for (let j = 0; j < k; j++) {
        let e = Infinity;
        if (j < c) {
          e = 0;
          for (let f = 0; f < d; f++) {
            const z = cand[t * d + f]! - C[j * d + f]!;
            e += z * z;
          }
        }
        candCC2[t * k + j] = e;
      }
    }
    cc2.set(pendingCC);
    P[P_M] = pending;
    P[P_T] = T;
    eng.run(K_KPP_STEP);
    let bestT = 0;
    let bestPot = Infinity;
    for (let t = 0; t < T; t++) {
      const s = eng.accSum(t);
      if (s < bestPot) {
        bestPot = s;
        bestT = t;
      }
    }
    C.set(cand.subarray(bestT * d, bestT * d + d), c * d);
    for (let j = 0; j < k; j++) pendingCC[j] = j < c ? candCC2[bestT * k + j]! : Infinity;
    pending = c;
    pot = readPot(bestT);
  }
  // Leave the last centre pending for finishSeeding (kppFinal applies it).
  cc2.set(pendingCC);
  P[P_M] = pending;
}

/** Applies the last k-means++ centre and leaves labels, Hamerly bounds and centre sums ready. */
function finishSeeding(eng: Engine): void {
  const ws = eng.ws;
  const { k, cc2, P } = ws;
  prepareBounds(ws); // halfS of the seeds (the shift fields are unused here)
  if (k === 1) {
    // No k-means++ round ran: every row is labelled 0, D = squared distance to the only centre.
    cc2[0] = Infinity;
    P[P_M] = 0;
  }
  eng.run(K_KPP_FINAL);
}

/**
 * Lloyd iterations from the assignment and sums currently in the workspace (labels and bounds
 * valid for C). Leaves the final centres in C and labels in A.
 */
function lloyd(eng: Engine, maxIter: number, tolAbs: number): { iterations: number; converged: boolean } {
  const ws = eng.ws;
  const { d, k, C, sums, counts, nChunks, shift } = ws;
  const kd = k * d;
  const total = new Float64Array(kd);
  const cnt = new Float64Array(k);
  const next = new Float64Array(kd);
  let moved = 0;
  let iterations = 0;
  let converged = false;
  let strict = false;
  for (;;) {
    // M-step: totals over chunks (in order), empty-cluster relocation, new centres and shifts.
    totals(sums, counts, nChunks, kd, k, total, cnt);
    let empty = 0;
    for (let j = 0; j < k; j++) if (cnt[j] === 0) empty++;
    if (empty > 0) {
      moved += relocateEmpty(ws, cnt);
      totals(sums, counts, nChunks, kd, k, total, cnt);
    }
    let shiftTot = 0;
    for (let j = 0; j < k; j++) {
      const jo = j * d;
      let s = 0;
      for (let f = 0; f < d; f++) {
        const v = total[jo + f]! / cnt[j]!;
        next[jo + f] = v;
        const z = v - C[jo + f]!;
        s += z * z;
      }
      shift[j] = Math.sqrt(s);
      shiftTot += s;
    }
    C.set(next);
    iterations++;
    if (iterations > 1 && moved === 0) {
      strict = true;
      converged = true;
      break;
    }
    if (shiftTot <= tolAbs) {
      converged = true;
      break;
    }
    if (iterations >= maxIter) break;
    prepareBounds(ws);
    eng.run(K_HAMERLY);
    moved = eng.accSum(0);
  }
  if (!strict) {
    // Last assignment step so labels match the returned centres (as scikit-learn does).
    prepareBounds(ws);
    eng.run(K_HAMERLY);
  }
  return { iterations, converged };
}

function totals(sums: Float64Array, counts: Float64Array, nChunks: number, kd: number, k: number, total: Float64Array, cnt: Float64Array): void {
  total.fill(0);
  cnt.fill(0);
  for (let ch = 0; ch < nChunks; ch++) {
    const so = ch * kd;
    for (let q = 0; q < kd; q++) total[q] = total[q]! + sums[so + q]!;
    const co = ch * k;
    for (let j = 0; j < k; j++) cnt[j] = cnt[j]! + counts[co + j]!;
  }
}

/** Half the distance from each centre to its nearest other centre, and the shift extremes. */
function prepareBounds(ws: Ws): void {
  const { d, k, C, shift, halfS, P } = ws;
  for (let j = 0; j < k; j++) halfS[j] = Infinity;
  for (let j = 0; j < k; j++) {
    for (let j2 = j + 1; j2 < k; j2++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const z = C[j * d + f]! - C[j2 * d + f]!;
        s += z * z;
      }
      const h = Math.sqrt(s) / 2;
      if (h < halfS[j]!) halfS[j] = h;
      if (h < halfS[j2]!) halfS[j2] = h;
    }
  }
  let maxS = 0;
  let secS = 0;
  let argS = -1;
  for (let j = 0; j < k; j++) {
    const s = shift[j]!;
    if (s > maxS) {
      secS = maxS;
      maxS = s;
      argS = j;
    } else if (s > secS) secS = s;
  }
  P[P_MAXS] = maxS;
  P[P_SECS] = secS;
  P[P_ARGS] = argS;
}

/**
 * Moves the farthest points (squared distance to their current centre, ties by lowest row) into
 * the empty clusters, lowest empty index first, never emptying a donor. Runs on the calling
 * thread (rare). Returns the number of points moved.
 */
function relocateEmpty(ws: Ws, cnt: Float64Array): number {
  const { n, d, k, X, C, A, U, L, sums, counts, chunk } = ws;
  const empties: number[] = [];
  for (let j = 0; j < k; j++) if (cnt[j] === 0) empties.push(j);
  const m = empties.length;
  // The m + k farthest rows (distance desc, row asc) are enough: each non-empty cluster can
  // refuse at most one of them (its last point).
  const cap = Math.min(n, m + k);
  const topRow = new Int32Array(cap);
  const topDist = new Float64Array(cap);
  let size = 0;
  for (let i = 0; i < n; i++) {
    const xo = i * d;
    const ao = A[i]! * d;
    let s = 0;
    for (let f = 0; f < d; f++) {
      const z = X[xo + f]! - C[ao + f]!;
      s += z * z;
    }
    if (size === cap && !(s > topDist[cap - 1]!)) continue; // rows come in ascending order
    let pos = size < cap ? size++ : cap - 1;
    while (pos > 0 && topDist[pos - 1]! < s) {
      topDist[pos] = topDist[pos - 1]!;
      topRow[pos] = topRow[pos - 1]!;
      pos--;
    }
    topDist[pos] = s;
    topRow[pos] = i;
  }
  const left = Float64Array.from(cnt);
  let moved = 0;
  for (let r = 0; r < size && moved < m; r++) {
    const i = topRow[r]!;
    const a = A[i]!;
    if (left[a]! <= 1) continue;
    const e = empties[moved]!;
    const ch = Math.floor(i / chunk);
    const sa = ch * k * d + a * d;
    const se = ch * k * d + e * d;
    for (let f = 0; f < d; f++) {
      const v = X[i * d + f]!;
      sums[sa + f] = sums[sa + f]! - v;
      sums[se + f] = sums[se + f]! + v;
    }
    counts[ch * k + a] = counts[ch * k + a]! - 1;
    counts[ch * k + e] = counts[ch * k + e]! + 1;
    left[a] = left[a]! - 1;
    left[e] = left[e]! + 1;
    A[i] = e;
    U[i] = 0; // the point is its new cluster's centre
    L[i] = 0; // trivially valid; forces a check next step
    moved++;
  }
  return moved;
}

/** Index of the nearest centre (ties: lowest index) for each row of Y. */
export function predict(centroids: Float64Array, k: number, Y: Matrix): Int32Array {
  assertMatrix(Y, "Y");
  const d = Y.cols;
  if (centroids.length !== k * d) fail("SHAPE_MISMATCH", "centroids do not match Y's width", { k, d });
  const out = new Int32Array(Y.rows);
  for (let i = 0; i < Y.rows; i++) {
    let best = 0;
    let bd = Infinity;
    for (let j = 0; j < k; j++) {
      let s = 0;
      for (let f = 0; f < d; f++) {
        const z = Y.data[i * d + f]! - centroids[j * d + f]!;
        s += z * z;
      }
      if (s < bd) {
        bd = s;
        best = j;
      }
    }
    out[i] = best;
  }
  return out;
}
