/**
 * Throughput of DurableLog with fsync'd group commit (not a test).
 *
 *   npx tsx test/gateway/log/bench-durable-log.ts [appends=100000] [clients=1000] [sync=1]
 *
 * `clients` concurrent callers each loop "append, await the durable receipt"; every batch is one
 * `db.batch(..., { sync: true })`. Entries are audit-event-sized JSON objects (~250 bytes), each
 * tagged with a subject address as the gateway tags them. Prints CPU µs per append (all threads),
 * then the time to open the log again (what a restart costs: every entry is read and hashed).
 * The log lives in a `sublevel("audit", { valueEncoding: "view" })`; with ROOT=1 it is given the
 * root Level itself (its `name` namespaces the keys), which saves the sublevel's second encoding
 * pass per operation.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { DurableLog } from "../../../gateway/log/durable-log.js";

const total = Number(process.argv[2] ?? 100_000);
const clients = Number(process.argv[3] ?? 1000);
const sync = (process.argv[4] ?? "1") !== "0";

const dir = mkdtempSync(join(tmpdir(), "custodia-bench-log-"));
const db = new Level<string, Uint8Array>(dir, { valueEncoding: "view" });
await db.open();
const store = process.env.ROOT ? db : db.sublevel<string, Uint8Array>("audit", { valueEncoding: "view" });
const log = await DurableLog.open(store, {
  logId: `0x${"ab".repeat(32)}`,
  name: "bench",
  sync,
});

let next = 0;
const event = (i: number): unknown => ({
  type: "AccessDecision",
  seq: i,
  subject: "0x5B38Da6a701c568545dCfcB03FcB875f56beddC4",
  partner: "0xAb8483F64d9C6d1EcF9b849Ae677dD3315835cb2",
  purpose: 3,
  categories: 6,
  allowed: i % 7 !== 0,
  reason: "CONSENT_ACTIVE",
  requestId: `req-${i.toString(16).padStart(12, "0")}`,
  at: 1_700_000_000_000 + i,
});

const cpu0 = process.cpuUsage();
const t0 = performance.now();
await Promise.all(
  Array.from({ length: clients }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      await log.append(event(i), "0x5b38da6a701c568545dcfcb03fcb875f56beddc4");
    }
  }),
);
const ms = performance.now() - t0;
const cpu = process.cpuUsage(cpu0);
const s = log.stats();
console.log(
  JSON.stringify({
    appends: s.appends,
    clients,
    sync,
    seconds: +(ms / 1000).toFixed(3),
    appendsPerSecond: Math.round((s.appends / ms) * 1000),
    batches: s.batches,
    avgBatch: +(s.appends / s.batches).toFixed(1),
    maxBatch: s.maxBatchSize,
    // every thread of the process: LevelDB's writes, fsyncs and compaction included
    cpuUsPerAppend: +((cpu.user + cpu.system) / s.appends).toFixed(1),
  }),
);
await log.close();

// A restart: opening the log reads every batch record and rebuilds the tree and the tag index.
const r0 = performance.now();
const reopened = await DurableLog.open(store, { logId: `0x${"ab".repeat(32)}`, name: "bench", sync });
const reopenMs = performance.now() - r0;
console.log(JSON.stringify({ reopenedEntries: reopened.size, reopenSeconds: +(reopenMs / 1000).toFixed(2), reopenUsPerEntry: +((reopenMs * 1000) / reopened.size).toFixed(2), rssMB: Math.round(process.memoryUsage().rss / 1e6) }));
await reopened.close();
await db.close();
rmSync(dir, { recursive: true, force: true });
