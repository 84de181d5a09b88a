/**
 * bench:headroom — what a second server process buys on this machine, where the load generator
 * shares the cores with the server it drives. A Fastify route that burns a fixed CPU time per
 * request runs as one process and as two (node:cluster, one listening socket), each driven by the
 * same autocannon load, in alternating rounds; for a light route (no extra work) and a heavy one
 * (SPIN_US of work, about what the gateway does beyond a bare route).
 *
 * It is the measurement behind the gateway's next step (BENCHMARKS.md, stop 16): a server whose
 * requests cost little gains nothing from a second process here, since the load generator already
 * needs a core; one whose requests cost as much as the gateway's does.
 *
 * Last line: {"light":{"one":..,"two":..,"gain":..},"heavy":{...},"spinUs":..}
 */
import { spawn, type ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import { readyUrl } from "../helpers/child-process.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`usage: npm run bench:headroom
  One server process against two, for a light route and a heavy one, under the same load; the last
  line is one JSON object: req/s of each and the gain of two processes over one.
  Environment: BENCH_CONNECTIONS (50), BENCH_ROUNDS (3), BENCH_ROUND_SECONDS (3), SPIN_US (50: the
  heavy route's CPU time per request, µs).
`);
  process.exit(0);
}

const CONNECTIONS = Number(process.env["BENCH_CONNECTIONS"] ?? 50);
const ROUNDS = Math.max(1, Number(process.env["BENCH_ROUNDS"] ?? 3));
const SECONDS = Math.max(1, Number(process.env["BENCH_ROUND_SECONDS"] ?? 3));
const SPIN_US = Number(process.env["SPIN_US"] ?? 50);
const log = (s: string): void => void process.stderr.write(`bench:headroom: ${s}\n`);

async function measure(workers: number, spinUs: number): Promise<number> {
  const proc: ChildProcess = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./fixtures/spin-server.ts", import.meta.url))], {
    env: { ...process.env, WORKERS: String(workers), SPIN_US: String(spinUs) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    const url = await readyUrl(proc, { timeoutMs: 60_000, stderr: () => "", killOnTimeout: true });
    const run = (duration: number): Promise<autocannon.Result> =>
      new Promise((resolve, reject) => void autocannon({ url: `${url}/v1/data/0x0000000000000000000000000000000000000000`, connections: CONNECTIONS, duration }, (err, res) => (err ? reject(err) : resolve(res))));
    await run(1); // warm-up
    const res = await run(SECONDS);
    if (res.non2xx > 0 || res.errors > 0) throw new Error(`the server answered ${res.non2xx} non-2xx and ${res.errors} errors`);
    return res.requests.total / res.duration;
  } finally {
    await new Promise<void>((r) => {
      if (proc.exitCode !== null) return r();
      proc.once("exit", () => r());
      proc.kill("SIGTERM");
    });
  }
}

const result: Record<string, unknown> = {};
for (const [name, spinUs] of [["light", 0], ["heavy", SPIN_US]] as const) {
  const one: number[] = [];
  const two: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    log(`${name} route, round ${r + 1}/${ROUNDS}: one process, then two, ${CONNECTIONS} connections, ${SECONDS} s each`);
    one.push(await measure(1, spinUs));
    two.push(await measure(2, spinUs));
  }
  const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
  result[name] = { one: Math.round(mean(one)), two: Math.round(mean(two)), gain: Number((mean(two) / mean(one)).toFixed(3)) };
  process.stdout.write(`${name.padEnd(6)} ${Math.round(mean(one))} req/s with one process, ${Math.round(mean(two))} with two (x${(mean(two) / mean(one)).toFixed(2)})\n`);
}
result["spinUs"] = SPIN_US;
result["connections"] = CONNECTIONS;
process.stdout.write(`${JSON.stringify(result)}\n`);
