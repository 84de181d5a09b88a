/**
 * bench:log-memory — what a durable log costs in memory per entry, and what a restart costs, with
 * the whole Merkle tree in memory against the tree pruned over a leaf file (as the gateway runs
 * its logs since stop 17). A first child process appends N access-event-sized entries (tagged
 * with one of S subjects) in fsync'd batches; then, for each mode, a fresh child process:
 *   1. opens the log, timing the open (every entry read and hashed again);
 *   2. measures its memory after a forced GC — RSS, and V8's heap plus the typed arrays outside
 *      it — against the same process just before the open;
 *   3. times 200 inclusion proofs of random entries at the current size, and 200 roots of random
 *      earlier sizes (what the audit API and a customer's history ask).
 * Last line: one JSON object with both modes' figures and the ratio of their memory per entry.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { DurableLog } from "../../gateway/log/durable-log.js";

const HELP = `usage: npm run bench:log-memory [-- --entries N] [-- --subjects S]
  Memory per log entry (heap and RSS after GC), open time and proof times of a DurableLog with N
  entries (default 2,000,000) tagged with S subjects (default 10,000): the tree in memory against
  the tree pruned over a leaf file. The last line is one JSON object.
`;

const arg = (name: string, dflt: number): number => {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return dflt;
  const v = Number(process.argv[i + 1]);
  if (!Number.isSafeInteger(v) || v < 1) {
    process.stderr.write(`bench:log-memory: --${name} must be a positive whole number\n`);
    process.exit(2);
  }
  return v;
};

interface ModeResult {
  mode: string;
  entries: number;
  /** V8's heap plus ArrayBuffers (where the tree's hashes live). */
  heapBytesPerEntry: number;
  rssBytesPerEntry: number;
  openSeconds: number;
  proofUs: number;
  oldRootUs: number;
}

const LOG_ID = `0x${"ab".repeat(32)}` as const;

/** Appends the entries (the first child). */
async function write(dir: string, entries: number, subjects: number): Promise<void> {
  const db = new Level<string, Uint8Array>(join(dir, "db"), { valueEncoding: "view" });
  await db.open();
  const log = await DurableLog.open(db, { logId: LOG_ID, name: "access" });
  const subject = (i: number): string => `0x${(i % subjects).toString(16).padStart(40, "0")}`;
  const event = (i: number): unknown => ({ actor: "did:ethr:0x7a69:0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2", agreementId: "1", at: "2026-12-06T12:00:00.000Z", block: 200 + Math.floor(i / 4096), categories: 1, consentKey: `0x${(i % subjects).toString(16).padStart(64, "0")}`, decision: "allow", kind: "access", partner: "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2", purpose: "profiling", reason: "OK", requestId: `req-${i}`, subject: subject(i), time: 1_796_000_000 + Math.floor(i / 4096) });
  let done = 0;
  let shown = -1;
  while (done < entries) {
    const n = Math.min(4096, entries - done);
    await Promise.all(Array.from({ length: n }, (_, j) => log.append(event(done + j), subject(done + j))));
    done += n;
    const pct = Math.floor((100 * done) / entries);
    if (process.stderr.isTTY) process.stderr.write(`\r  appending: ${pct} %`);
    else if (pct >= shown + 25) process.stderr.write(`  appending: ${(shown = pct)} %\n`);
  }
  if (process.stderr.isTTY) process.stderr.write("\n");
  await log.close();
  await db.close();
}

/** Opens the log in one mode and measures (a fresh child per mode). */
async function measure(dir: string, mode: "memory" | "leaf-file"): Promise<ModeResult> {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error("run with --expose-gc");
  const db = new Level<string, Uint8Array>(join(dir, "db"), { valueEncoding: "view" });
  await db.open();
  const used = (): { heap: number; rss: number } => {
    gc();
    gc();
    const m = process.memoryUsage();
    return { heap: m.heapUsed + m.arrayBuffers, rss: m.rss };
  };
  const before = used();
  const t0 = performance.now();
  const log = await DurableLog.open(db, { logId: LOG_ID, name: "access", ...(mode === "leaf-file" ? { leafFile: join(dir, "access.leaves") } : {}) });
  const openSeconds = (performance.now() - t0) / 1000;
  const after = used();
  const entries = log.size;
  const random = (n: number): number => Math.floor(Math.random() * n);
  for (let i = 0; i < 50; i++) log.inclusionProof(random(entries)); // warm-up
  const p0 = performance.now();
  for (let i = 0; i < 200; i++) log.inclusionProof(random(entries));
  const proofUs = ((performance.now() - p0) * 1000) / 200;
  const r0 = performance.now();
  for (let i = 0; i < 200; i++) log.root(1 + random(entries));
  const oldRootUs = ((performance.now() - r0) * 1000) / 200;
  await log.close();
  await db.close();
  return { mode, entries, heapBytesPerEntry: (after.heap - before.heap) / entries, rssBytesPerEntry: (after.rss - before.rss) / entries, openSeconds, proofUs, oldRootUs };
}

function runChild(args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ["--expose-gc", "--import", "tsx", fileURLToPath(import.meta.url), "--child", ...args], { stdio: ["ignore", "pipe", "inherit"] });
    let out = "";
    proc.stdout.on("data", (d: Buffer) => (out += d.toString()));
    proc.on("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`bench:log-memory: the ${args[0]} step exited with ${code}`))));
  });
}

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(HELP);
} else if (process.argv.includes("--child")) {
  const [step, dir] = process.argv.slice(process.argv.indexOf("--child") + 1);
  if (step === "write") await write(dir!, arg("entries", 2_000_000), arg("subjects", 10_000));
  else process.stdout.write(`${JSON.stringify(await measure(dir!, step as "memory" | "leaf-file"))}\n`);
} else {
  const entries = arg("entries", 2_000_000);
  const subjects = arg("subjects", 10_000);
  process.stderr.write(`bench:log-memory: ${entries.toLocaleString("en")} entries, ${subjects.toLocaleString("en")} subjects; each step in its own process\n`);
  const dir = mkdtempSync(join(tmpdir(), "custodia-bench-logmem-"));
  let memory: ModeResult;
  let leafFile: ModeResult;
  try {
    await runChild(["write", dir, "--entries", String(entries), "--subjects", String(subjects)]);
    memory = JSON.parse(await runChild(["memory", dir])) as ModeResult;
    leafFile = JSON.parse(await runChild(["leaf-file", dir])) as ModeResult;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const r1 = (x: number): number => Math.round(x * 10) / 10;
  for (const m of [memory, leafFile]) {
    process.stdout.write(`${m.mode.padEnd(10)} heap ${r1(m.heapBytesPerEntry)} B/entry, RSS ${r1(m.rssBytesPerEntry)} B/entry; open ${m.openSeconds.toFixed(2)} s; inclusion proof ${r1(m.proofUs)} µs, root of an earlier size ${r1(m.oldRootUs)} µs\n`);
  }
  const result = {
    entries,
    subjects,
    memory: { heapBytesPerEntry: r1(memory.heapBytesPerEntry), rssBytesPerEntry: r1(memory.rssBytesPerEntry), openSeconds: r1(memory.openSeconds), proofUs: r1(memory.proofUs), oldRootUs: r1(memory.oldRootUs) },
    leafFile: { heapBytesPerEntry: r1(leafFile.heapBytesPerEntry), rssBytesPerEntry: r1(leafFile.rssBytesPerEntry), openSeconds: r1(leafFile.openSeconds), proofUs: r1(leafFile.proofUs), oldRootUs: r1(leafFile.oldRootUs) },
    rssRatio: Number((leafFile.rssBytesPerEntry / memory.rssBytesPerEntry).toFixed(3)),
  };
  process.stdout.write(`${JSON.stringify(result)}\n`);
}
