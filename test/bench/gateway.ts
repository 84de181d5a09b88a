/**
 * bench:gateway — partners requesting data from a gateway with durable logging, the ledger check
 * and the vault all on, against a bare Fastify route, on loopback, in the same run. The gateway and
 * the peer each run in their own process; autocannon drives them from this one.
 *
 * The machine's speed drifts (a shared host: the same run of the peer measured 25,000 req/s one
 * hour and 12,000 the next), so the two are measured in alternating rounds — gateway, peer,
 * gateway, peer … — and each side's figures are over all its rounds: a slow spell falls on both.
 * Latency percentiles are over every response of every round.
 *
 * On Linux it also reads the whole machine's CPU over each side's rounds (`machine`): the load
 * generator shares the cores with the server it drives, so what a request costs the machine on
 * each side bounds the ratio. `ratioAtPeerUtilisation` is the ratio the gateway would reach if it
 * kept the cores as busy as the peer's rounds did, at its own machine cost per request;
 * `ratioAtFullMachine` the ratio at every core busy all the time, which no run reaches.
 *
 * Last line: {"rps":..,"p99ms":..,"bareRps":..,"ratio":..,...}
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { startNetwork } from "../../contracts/network.js";
import { readyUrl } from "../helpers/child-process.js";
import { bytesWrittenBy, cpuOf, ingestWorkload, machineTimes, rotating, seedWorkload, type MachineTimes } from "./gateway-workload.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`usage: npm run bench:gateway
  Partners' data requests against a gateway with everything on, and the same requests against a
  bare Fastify route, in alternating rounds; the last line is one JSON object (rps, p99ms, bareRps,
  ratio, ..., bytesWrittenPerEntry: the gateway's disk writes per log entry, machine: each side's
  machine CPU per request, how busy the cores were, iowait and steal, and the ratio the gateway
  would reach at the peer's utilisation and at full use).
  Environment: BENCH_CONNECTIONS (50), BENCH_SECONDS (10, split over the rounds), BENCH_ROUNDS (5),
  BENCH_SUBJECTS (200), BENCH_CPU_PROF=<dir> (CPU profiles of the servers),
  BENCH_PEER (same-bytes: the peer answers the bytes of a gateway answer; shape: a smaller body of
  the same shape, the peer until stop 13), BENCH_WARMUP_SECONDS (2, each side, before the rounds);
  PUSH_HEADS, MAX_SYNC_AGE_MS, ANCHOR_EVERY_MS, ANCHOR_EVERY_ENTRIES, LOG_MAX_DELAY_MS reach the
  gateway. To compare two builds, see bench:gateway-ab.
`);
  process.exit(0);
}

const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 50);
const DURATION = Number(process.env["BENCH_SECONDS"] ?? 10);
const SUBJECTS = Number(process.env["BENCH_SUBJECTS"] ?? 200);
const WARMUP = Math.max(1, Math.round(Number(process.env["BENCH_WARMUP_SECONDS"] ?? 2)));
const ROUNDS = Math.max(1, Math.round(Number(process.env["BENCH_ROUNDS"] ?? 5)));
// every CPU /proc/stat sums over (not just those this process may run on)
const CORES = cpus().length;
const log = (s: string): void => void process.stderr.write(`bench:gateway: ${s}\n`);
const peerMode = process.env["BENCH_PEER"] ?? "same-bytes";
if (peerMode !== "same-bytes" && peerMode !== "shape") {
  process.stderr.write(`bench:gateway: BENCH_PEER is "same-bytes" or "shape", not "${peerMode}"\n`);
  process.exit(2);
}

function start(script: string, env: NodeJS.ProcessEnv): Promise<{ url: string; proc: ChildProcess }> {
  // BENCH_CPU_PROF=<dir> writes a CPU profile of each measured process there (on exit)
  const prof = process.env["BENCH_CPU_PROF"] ? ["--cpu-prof", `--cpu-prof-dir=${process.env["BENCH_CPU_PROF"]}`] : [];
  const proc = spawn(process.execPath, [...prof, "--import", "tsx", fileURLToPath(new URL(script, import.meta.url))], { env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] });
  // its stderr goes straight to ours
  return readyUrl(proc, { timeoutMs: 120_000, stderr: () => "", killOnTimeout: true }).then((url) => ({ url, proc }));
}

function stop(proc: ChildProcess): Promise<void> {
  return new Promise((r) => {
    if (proc.exitCode !== null) return r();
    proc.once("exit", () => r());
    proc.kill("SIGTERM");
    setTimeout(() => proc.kill("SIGKILL"), 10_000).unref();
  });
}

/** One side's measurement, summed over its rounds. */
class Side {
  requests = 0;
  seconds = 0;
  non2xx = 0;
  errors = 0;
  readonly latencies: number[] = [];
  readonly perRound: number[] = [];
  /** The whole machine's CPU time over the rounds, µs (undefined off Linux), and the rounds' wall time, s. */
  machine: MachineTimes | undefined = { busy: 0, iowait: 0, steal: 0 };
  wallSeconds = 0;
  /** Bytes the server wrote to storage over the rounds (Linux only). */
  written: number | undefined = 0;
  private readonly cpu: Record<string, number> = {};
  constructor(private readonly pids: Record<string, number | undefined>) {}

  /** Runs one autocannon round with `opts`, adding its requests, CPU and every response time. */
  async round(opts: autocannon.Options): Promise<void> {
    const before = Object.fromEntries(Object.entries(this.pids).map(([k, pid]) => [k, cpuOf(pid)]));
    const written0 = bytesWrittenBy(this.pids["server"]);
    const self0 = process.cpuUsage();
    const machine0 = machineTimes();
    const wall0 = performance.now();
    const res = await run(opts, (ms) => this.latencies.push(ms));
    const machine1 = machineTimes();
    const written1 = bytesWrittenBy(this.pids["server"]);
    this.written = this.written === undefined || written0 === undefined || written1 === undefined ? undefined : this.written + written1 - written0;
    this.wallSeconds += (performance.now() - wall0) / 1000;
    const self = process.cpuUsage(self0);
    const m = this.machine;
    this.machine = m === undefined || machine0 === undefined || machine1 === undefined ? undefined : { busy: m.busy + machine1.busy - machine0.busy, iowait: m.iowait + machine1.iowait - machine0.iowait, steal: m.steal + machine1.steal - machine0.steal };
    for (const [k, pid] of Object.entries(this.pids)) {
      const a = before[k];
      const b = cpuOf(pid);
      if (a !== undefined && b !== undefined) this.cpu[k] = (this.cpu[k] ?? 0) + (b - a);
    }
    this.cpu["loadgen"] = (this.cpu["loadgen"] ?? 0) + self.user + self.system;
    this.requests += res.requests.total;
    this.seconds += res.duration;
    this.non2xx += res.non2xx;
    this.errors += res.errors;
    this.perRound.push(res.requests.total / res.duration);
  }

  get rps(): number {
    return this.requests / this.seconds;
  }

  percentile(p: number): number {
    const sorted = Float64Array.from(this.latencies).sort();
    return sorted.length === 0 ? 0 : Math.round(sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]! * 10) / 10;
  }

  /** The machine's busy CPU µs per request, everything included (Linux only). */
  machineUsPerReq(): number | undefined {
    return this.machine === undefined ? undefined : this.machine.busy / Math.max(1, this.requests);
  }

  /** The share of the machine's CPU time over the rounds (wall time × cores) that was busy, in iowait, and stolen (Linux only). */
  shares(): { busy: number; iowait: number; steal: number } | undefined {
    const m = this.machine;
    if (m === undefined) return undefined;
    const total = this.wallSeconds * 1e6 * CORES;
    return { busy: m.busy / total, iowait: m.iowait / total, steal: m.steal / total };
  }

  /** CPU µs per request of each process over the measured rounds (Linux only, but the load generator's). */
  cpuUsPerReq(): Record<string, number> {
    return Object.fromEntries(Object.entries(this.cpu).map(([k, us]) => [k, Math.round(us / Math.max(1, this.requests))]));
  }
}

function run(opts: autocannon.Options, onLatency?: (ms: number) => void): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    const inst = autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
    if (onLatency) inst.on("response", (_client: unknown, _status: number, _bytes: number, ms: number) => onLatency(ms));
    autocannon.track(inst, { renderProgressBar: process.stderr.isTTY, renderResultsTable: false, renderLatencyTable: false, outputStream: process.stderr });
  });
}

/** One answer of the gateway: its body and the headers a server chooses (not framing, not Date). */
async function capture(url: string, headers: Record<string, string>): Promise<{ headers: Record<string, string>; body: string }> {
  const res = await fetch(url, { headers });
  const body = await res.text();
  if (res.status !== 200) throw new Error(`the gateway answered ${res.status}: ${body}`);
  const skip = new Set(["content-length", "content-type", "date", "connection", "keep-alive", "transfer-encoding"]);
  return { headers: Object.fromEntries([...res.headers].filter(([k]) => !skip.has(k))), body };
}

const dataDir = mkdtempSync(join(tmpdir(), "custodia-bench-gw-"));
const net = await startNetwork({ dataDir, ledgerPort: 0, log });
try {
  const workload = await seedWorkload(net, SUBJECTS, log);
  const gw = await start("../gateway/fixtures/gateway-process.ts", { DATA_DIR: dataDir, RPC: net.rpcUrl });
  await ingestWorkload(gw.url, workload);
  const requests = rotating(workload.paths);
  const headers = { authorization: `Bearer ${await workload.partnerToken()}` };
  // The peer gets exactly the same requests (the rotating paths and the bearer token) and, unless
  // BENCH_PEER=shape, answers exactly the bytes of a gateway answer (body and headers, captured
  // here), so the load generator does the same work in both measurements and the ratio compares
  // the servers.
  const peerEnv = peerMode === "shape" ? {} : { PEER_RESPONSE: JSON.stringify(await capture(`${gw.url}${workload.paths[0]!}`, headers)) };
  const bare = await start("./fixtures/bare-fastify.ts", peerEnv);
  const load = (url: string, duration: number): autocannon.Options => ({ url, connections: CONNECTIONS, duration, headers, requests: requests as never });
  log(`warming up the gateway and the bare Fastify peer, ${WARMUP} s each`);
  await run(load(gw.url, WARMUP));
  await run(load(bare.url, WARMUP));
  const before = (await (await fetch(`${gw.url}/health`)).json()) as { ledger: { sync: string; syncs: number }; logs: { access: { size: number } } };
  log(`ledger sync mode: ${before.ledger.sync}`);
  const g = new Side({ server: gw.proc.pid, ledger: net.node?.pid });
  const b = new Side({ server: bare.proc.pid });
  const roundSec = Math.max(1, Math.round(DURATION / ROUNDS));
  for (let r = 0; r < ROUNDS; r++) {
    log(`round ${r + 1}/${ROUNDS}: gateway, then bare Fastify, ${CONNECTIONS} connections, ${roundSec} s each`);
    await g.round(load(gw.url, roundSec));
    await b.round(load(bare.url, roundSec));
  }
  const after = (await (await fetch(`${gw.url}/health`)).json()) as { ledger: { syncs: number }; logs: { access: { size: number } } };
  await stop(gw.proc);
  await stop(bare.proc);

  const logged = after.logs.access.size - before.logs.access.size;
  const ok2xx = g.requests - g.non2xx;
  const gCpu = g.cpuUsPerReq();
  const bCpu = b.cpuUsPerReq();
  function machineSummary() {
    const gm = g.machineUsPerReq();
    const bm = b.machineUsPerReq();
    const gs = g.shares();
    const bs = b.shares();
    if (gm === undefined || bm === undefined || gs === undefined || bs === undefined) return undefined;
    const r3 = (x: number): number => Number(x.toFixed(3));
    return {
      cores: CORES,
      gatewayUsPerReq: Math.round(gm),
      bareUsPerReq: Math.round(bm),
      gatewayUtilisation: r3(gs.busy),
      bareUtilisation: r3(bs.busy),
      iowait: { gateway: r3(gs.iowait), bare: r3(bs.iowait) },
      steal: { gateway: r3(gs.steal), bare: r3(bs.steal) },
      // at the peer's utilisation: (bu·cores/gm) / (bu·cores/bm); at every core busy: (cores/gm) / bareRps
      ratioAtPeerUtilisation: r3(bm / gm),
      ratioAtFullMachine: r3(bm / (gm * bs.busy)),
    };
  }
  const roundRatios = g.perRound.map((x, k) => x / b.perRound[k]!).sort((x, y) => x - y);
  const result = {
    rps: Math.round(g.rps),
    p99ms: g.percentile(99),
    p50ms: g.percentile(50),
    bareRps: Math.round(b.rps),
    bareP99ms: b.percentile(99),
    ratio: Number((g.rps / b.rps).toFixed(3)),
    // the ratio of each round's pair, lowest to highest: how much the machine drifted
    roundRatios: roundRatios.map((x) => Number(x.toFixed(3))),
    // each side's req/s per round, in the order measured
    roundRps: { gateway: g.perRound.map(Math.round), bare: b.perRound.map(Math.round) },
    peer: peerMode,
    sync: before.ledger.sync,
    ledgerSyncs: after.ledger.syncs - before.ledger.syncs,
    connections: CONNECTIONS,
    seconds: Number(g.seconds.toFixed(1)),
    rounds: ROUNDS,
    non2xx: g.non2xx,
    errors: g.errors,
    logged,
    acknowledged: ok2xx,
    // CPU µs per request of each process over the measured rounds (Linux only)
    cpuUsPerReq: { gateway: gCpu, bare: bCpu },
    // bytes the gateway wrote to storage per access-log entry over the rounds: write-ahead logs,
    // table files, compaction (Linux only)
    bytesWrittenPerEntry: g.written === undefined || logged === 0 ? null : Math.round(g.written / logged),
    // The whole machine (servers, load generator, ledger node, kernel): busy CPU µs per request and
    // the share of its CPU time that was busy, in iowait, and stolen, per side; and the ratio the
    // gateway would reach at its machine cost per request, at the peer's utilisation and at full use.
    machine: machineSummary(),
  };
  if (result.machine) {
    const m = result.machine;
    const pc = (x: number): string => `${Math.round(x * 100)} %`;
    process.stdout.write(`\nmachine  ${CORES} cores; gateway rounds ${m.gatewayUsPerReq} µs/req, ${pc(m.gatewayUtilisation)} busy (iowait ${pc(m.iowait.gateway)}, steal ${pc(m.steal.gateway)}); fastify rounds ${m.bareUsPerReq} µs/req, ${pc(m.bareUtilisation)} busy (iowait ${pc(m.iowait.bare)}, steal ${pc(m.steal.bare)})\n`);
    process.stdout.write(`         the gateway's ratio at its machine cost: ${m.ratioAtPeerUtilisation} at the peer's utilisation, ${m.ratioAtFullMachine} with every core busy\n`);
  }
  process.stdout.write(`\ngateway  ${result.rps} req/s  p50 ${result.p50ms} ms  p99 ${result.p99ms} ms  (${result.non2xx} non-2xx, ${logged} log entries for ${ok2xx} 2xx${result.bytesWrittenPerEntry === null ? "" : `, ${result.bytesWrittenPerEntry} bytes written to disk per entry`})\n`);
  process.stdout.write(`fastify  ${result.bareRps} req/s  p99 ${result.bareP99ms} ms\nratio    ${result.ratio}\n`);
  if (gCpu["server"] !== undefined && bCpu["server"] !== undefined) {
    process.stdout.write(`cpu/req  gateway ${gCpu["server"]} µs (ledger node ${gCpu["ledger"] ?? "?"} µs, load generator ${gCpu["loadgen"]} µs); fastify ${bCpu["server"]} µs (load generator ${bCpu["loadgen"]} µs)\n`);
  }
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await net.close();
  rmSync(dataDir, { recursive: true, force: true });
}
