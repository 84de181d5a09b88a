/**
 * bench:gateway-ab — two builds of the gateway compared on the same ledger node, in the same run,
 * in alternating rounds (A, B, B, A, A, B …), so the host's drift falls on both. For each: the
 * gateway process's CPU µs per request at a fixed request rate (below saturation: what the build
 * costs, little disturbed by how the cores were shared) and at saturation (req/s, CPU, p99).
 * This is how a change is told from the noise on a shared machine (see BENCHMARKS.md).
 *
 *   git worktree add ../custodia-base <rev> && ln -s "$PWD/node_modules" ../custodia-base/ && cp -r artifacts ../custodia-base/
 *   npm run bench:gateway-ab -- ../custodia-base .
 *
 * Environment: AB_RATE (fixed rate, req/s, default 3000), AB_ROUNDS (default 4), AB_SECONDS (per
 * measurement, default 4), AB_A_ENV / AB_B_ENV (JSON of extra environment for that gateway, e.g.
 * '{"MAX_SYNC_AGE_MS":"200"}': one build against itself with another setting). Anchoring is off in
 * both (both gateways sign with the same key); give ANCHOR_EVERY_* in one side's env to measure it.
 * Last line: {"a":{...},"b":{...},"cpuRatio":b/a at the fixed rate,"rpsRatio":b/a at saturation};
 * each side's `failed` counts its non-2xx answers and errors, and any makes the exit code 1.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import autocannon from "autocannon";
import { startNetwork } from "../../contracts/network.js";
import { readyUrl } from "../helpers/child-process.js";
import { cpuOf, ingestWorkload, rotating, seedWorkload } from "./gateway-workload.js";

const USAGE = `usage: npm run bench:gateway-ab -- <checkout A> <checkout B>
  Each checkout is a directory of this repository (a git worktree) whose node_modules and
  artifacts/ resolve. Environment: AB_RATE, AB_ROUNDS, AB_SECONDS, AB_A_ENV, AB_B_ENV (see the
  header of test/bench/gateway-ab.ts).`;

const args = process.argv.slice(2).filter((a) => a !== "--");
if (args.includes("--help") || args.includes("-h")) {
  process.stdout.write(`${USAGE}\n`);
  process.exit(0);
}
const fail = (message: string): never => {
  process.stderr.write(`bench:gateway-ab: ${message}\n${USAGE}\n`);
  process.exit(2);
};
if (args.length !== 2) fail("give two checkouts");
const roots = { A: resolve(args[0]!), B: resolve(args[1]!) };
for (const root of Object.values(roots)) if (!existsSync(join(root, "test/gateway/fixtures/gateway-process.ts"))) fail(`${root} is not a checkout of this repository`);
const envOf = (side: "A" | "B"): Record<string, string> => {
  try {
    return JSON.parse(process.env[`AB_${side}_ENV`] ?? "{}") as Record<string, string>;
  } catch {
    return fail(`AB_${side}_ENV is not JSON`);
  }
};
const RATE = Number(process.env["AB_RATE"] ?? 3000);
const ROUNDS = Number(process.env["AB_ROUNDS"] ?? 4);
const SECONDS = Number(process.env["AB_SECONDS"] ?? 4);
if (![RATE, ROUNDS, SECONDS].every((n) => Number.isInteger(n) && n > 0)) fail("AB_RATE, AB_ROUNDS and AB_SECONDS are positive integers");
const log = (s: string): void => void process.stderr.write(`bench:gateway-ab: ${s}\n`);

interface Tally {
  fixedCpuUs: number;
  fixedRequests: number;
  satCpuUs: number;
  satRequests: number;
  satSeconds: number;
  p99: number[];
  /** Non-2xx answers and connection errors, both phases: a build that fails requests is not faster. */
  failed: number;
}

const dataDir = mkdtempSync(join(tmpdir(), "custodia-bench-ab-"));
const dataDirB = mkdtempSync(join(tmpdir(), "custodia-bench-ab-b-"));
const net = await startNetwork({ dataDir, ledgerPort: 0, log });
const procs: ChildProcess[] = [];
try {
  const workload = await seedWorkload(net, 200, log);
  // the same deployment and keys for B, in a store of its own
  cpSync(dataDir, dataDirB, { recursive: true });
  const gws = {} as Record<"A" | "B", { url: string; pid: number }>;
  for (const side of ["A", "B"] as const) {
    const root = roots[side];
    const proc = spawn(process.execPath, ["--import", "tsx", join(root, "test/gateway/fixtures/gateway-process.ts")], {
      cwd: root,
      env: { ...process.env, DATA_DIR: side === "A" ? dataDir : dataDirB, RPC: net.rpcUrl, ANCHOR_EVERY_MS: "86400000", ANCHOR_EVERY_ENTRIES: "1000000000", ...envOf(side) },
      stdio: ["ignore", "pipe", "inherit"],
    });
    procs.push(proc);
    gws[side] = { url: await readyUrl(proc, { timeoutMs: 120_000, stderr: () => "", killOnTimeout: true }), pid: proc.pid! };
    await ingestWorkload(gws[side].url, workload);
  }
  const headers = { authorization: `Bearer ${await workload.partnerToken()}` };
  const requests = rotating(workload.paths);
  const run = (url: string, seconds: number, rate?: number): Promise<autocannon.Result> =>
    new Promise((ok, ko) => autocannon({ url, connections: 50, duration: seconds, headers, requests: requests as never, ...(rate ? { overallRate: rate } : {}) }, (e, r) => (e ? ko(e) : ok(r))));
  log("warming up both");
  for (const g of Object.values(gws)) await run(g.url, 3);
  const tally: Record<"A" | "B", Tally> = { A: { fixedCpuUs: 0, fixedRequests: 0, satCpuUs: 0, satRequests: 0, satSeconds: 0, p99: [], failed: 0 }, B: { fixedCpuUs: 0, fixedRequests: 0, satCpuUs: 0, satRequests: 0, satSeconds: 0, p99: [], failed: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? (["A", "B"] as const) : (["B", "A"] as const)) {
      const g = gws[side];
      const t = tally[side];
      let before = cpuOf(g.pid) ?? 0;
      let res = await run(g.url, SECONDS, RATE);
      t.fixedCpuUs += (cpuOf(g.pid) ?? 0) - before;
      t.fixedRequests += res.requests.total;
      t.failed += res.non2xx + res.errors;
      before = cpuOf(g.pid) ?? 0;
      res = await run(g.url, SECONDS);
      t.satCpuUs += (cpuOf(g.pid) ?? 0) - before;
      t.satRequests += res.requests.total;
      t.satSeconds += res.duration;
      t.p99.push(res.latency.p99);
      t.failed += res.non2xx + res.errors;
      log(`round ${r + 1}/${ROUNDS} ${side}: ${Math.round(res.requests.total / res.duration)} req/s at saturation, p99 ${res.latency.p99} ms${res.non2xx + res.errors > 0 ? `, ${res.non2xx} non-2xx and ${res.errors} errors` : ""}`);
    }
  }
  const summary = (t: Tally) => ({ fixedRate: RATE, fixedCpuUsPerReq: Number((t.fixedCpuUs / t.fixedRequests).toFixed(1)), rps: Math.round(t.satRequests / t.satSeconds), satCpuUsPerReq: Number((t.satCpuUs / t.satRequests).toFixed(1)), p99ms: t.p99, failed: t.failed });
  const a = summary(tally.A);
  const b = summary(tally.B);
  process.stdout.write(`A ${roots.A}: ${a.fixedCpuUsPerReq} µs/req at ${RATE} req/s; ${a.rps} req/s at saturation, ${a.satCpuUsPerReq} µs/req\n`);
  process.stdout.write(`B ${roots.B}: ${b.fixedCpuUsPerReq} µs/req at ${RATE} req/s; ${b.rps} req/s at saturation, ${b.satCpuUsPerReq} µs/req\n`);
  process.stdout.write(`${JSON.stringify({ a, b, cpuRatio: Number((b.fixedCpuUsPerReq / a.fixedCpuUsPerReq).toFixed(3)), rpsRatio: Number((b.rps / a.rps).toFixed(3)) })}\n`);
  if (a.failed + b.failed > 0) {
    log(`requests failed (A ${a.failed}, B ${b.failed}): the figures above do not compare working builds`);
    process.exitCode = 1;
  }
} finally {
  for (const p of procs) p.kill("SIGKILL");
  await net.close();
  rmSync(dataDir, { recursive: true, force: true });
  rmSync(dataDirB, { recursive: true, force: true });
}
