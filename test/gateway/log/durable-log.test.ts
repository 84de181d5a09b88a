import fc from "fast-check";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalBytes } from "../../../core/jcs.js";
import { toHex0x } from "../../../core/hash.js";
import { hashFromHex, leafHash, proofFromHex, rootFromLeafHashes, verifyConsistency, verifyInclusion } from "../../../core/merkle.js";
import { DurableLog, type AppendReceipt } from "../../../gateway/log/durable-log.js";
import { GET_OPTIONS, pad16 } from "../../../gateway/log/kv.js";
import { InstrumentedStore, expectCode, randomLogId, tempDb, type TempDb } from "./helpers.js";

const disposers: TempDb[] = [];
afterEach(async () => {
  while (disposers.length > 0) await disposers.pop()!.dispose();
});

async function fresh(): Promise<TempDb> {
  const t = await tempDb();
  disposers.push(t);
  return t;
}

function checkReceipt(log: DurableLog, r: AppendReceipt): void {
  const leaf = hashFromHex(r.leafHash);
  verifyInclusion(r.index, log.size, leaf, proofFromHex(log.inclusionProof(r.index)), hashFromHex(log.root()));
  verifyInclusion(r.index, r.treeSize, leaf, proofFromHex(log.inclusionProof(r.index, r.treeSize)), hashFromHex(log.root(r.treeSize)));
}

const event = (i: number): unknown => ({ kind: "access", seq: i, subject: `subject-${i % 17}`, allowed: i % 3 !== 0 });

describe("DurableLog: group commit", () => {
  it("2,000 concurrent appends get indexes 0..1999 once each, verify by inclusion proof, in few batch writes", async () => {
    const { db } = await fresh();
    const store = new InstrumentedStore(db);
    const logId = randomLogId();
    const log = await DurableLog.open(store, { logId, name: "access", maxBatch: 256 });
    const before = store.batches;
    const receipts = await Promise.all(Array.from({ length: 2000 }, (_, i) => log.append(event(i))));
    const writes = store.batches - before;

    expect(log.size).toBe(2000);
    expect(receipts.map((r) => r.index).sort((a, b) => a - b)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    // Commit order is call order here: a FIFO queue with no failures.
    receipts.forEach((r, i) => {
      expect(r.index).toBe(i);
      expect(r.logId).toBe(logId);
      expect(r.leafHash).toBe(toHex0x(leafHash(canonicalBytes(event(i)))));
      expect(r.treeSize).toBeGreaterThan(r.index);
      checkReceipt(log, r);
    });
    expect(writes).toBe(log.stats().batches);
    expect(writes).toBeGreaterThanOrEqual(Math.ceil(2000 / 256));
    expect(writes).toBeLessThanOrEqual(2000 / 50);
    expect(log.stats().maxBatchSize).toBe(256);
    await log.close();
  });

  it("clients that each await their receipt before appending again are batched together", async () => {
    const { db } = await fresh();
    const store = new InstrumentedStore(db);
    const log = await DurableLog.open(store, { logId: randomLogId(), name: "access" });
    const before = store.batches;
    const seen = new Set<number>();
    await Promise.all(
      Array.from({ length: 100 }, async (_, c) => {
        for (let k = 0; k < 20; k++) {
          const r = await log.append({ client: c, k });
          expect(seen.has(r.index)).toBe(false);
          seen.add(r.index);
          expect(log.size).toBeGreaterThanOrEqual(r.treeSize);
        }
      }),
    );
    expect(seen.size).toBe(2000);
    expect(log.size).toBe(2000);
    const writes = store.batches - before;
    expect(writes).toBeLessThan(2000 / 10);
    await log.close();
  });

  it("maxDelayMs holds the first entry of an idle log for company", async () => {
    const { db } = await fresh();
    const store = new InstrumentedStore(db);
    const log = await DurableLog.open(store, { logId: randomLogId(), name: "l", maxDelayMs: 30 });
    const before = store.batches;
    const first = log.append({ n: 0 });
    await new Promise((r) => setTimeout(r, 10));
    const rest = [1, 2, 3].map((n) => log.append({ n }));
    const all = await Promise.all([first, ...rest]);
    expect(store.batches - before).toBe(1);
    expect(all.map((r) => r.treeSize)).toEqual([4, 4, 4, 4]);
    await log.close();
  });

  it("matches an independently computed RFC 9162 root for arbitrary JSON entries (property)", async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(fc.jsonValue(), { maxLength: 20 }), { minLength: 1, maxLength: 4 }), async (rounds) => {
        const t = await tempDb();
        try {
          const logId = randomLogId();
          const leaves: Uint8Array[] = [];
          let log = await DurableLog.open(t.db, { logId, name: "p", maxBatch: 7 });
          for (const round of rounds) {
            const rs = await Promise.all(round.map((v) => log.append(v)));
            rs.forEach((r, j) => expect(r.index).toBe(leaves.length + j));
            for (const v of round) leaves.push(leafHash(canonicalBytes(v)));
            await log.close();
            log = await DurableLog.open(t.db, { logId, name: "p", maxBatch: 7 });
            expect(log.size).toBe(leaves.length);
            expect(log.root()).toBe(toHex0x(rootFromLeafHashes(leaves)));
          }
          const entries = await log.getEntries(0, log.size);
          entries.forEach((e, i) => expect(toHex0x(leafHash(canonicalBytes(e.entry)))).toBe(toHex0x(leaves[i]!)));
          await log.close();
        } finally {
          await t.dispose();
        }
      }),
      { numRuns: 12 },
    );
  });
});

describe("DurableLog: durability and restart", () => {
  it("reopens with the same size, root and entries, proves consistency between sizes, and continues", async () => {
    const { db } = await fresh();
    const logId = randomLogId();
    const log = await DurableLog.open(db, { logId, name: "access" });
    expect(log.openReport).toEqual({ size: 0, truncated: 0, created: true });
    const roots: string[] = [log.root()];
    for (let round = 0; round < 5; round++) {
      await Promise.all(Array.from({ length: 37 }, (_, i) => log.append(event(round * 100 + i))));
      roots.push(log.root());
    }
    const entries = await log.getEntries(0, log.size);
    const size = log.size;
    const root = log.root();
    await log.close();

    const again = await DurableLog.open(db, { logId, name: "access" });
    expect(again.openReport).toEqual({ size, truncated: 0, created: false });
    expect(again.size).toBe(size);
    expect(again.root()).toBe(root);
    expect(await again.getEntries(0, again.size)).toEqual(entries);
    for (let s = 1; s <= 5; s++) expect(again.root(s * 37)).toBe(roots[s]);
    for (const [a, b] of [[1, 185], [37, 74], [50, 185], [111, 148], [185, 185]] as const) {
      verifyConsistency(a, b, proofFromHex(again.consistencyProof(a, b)), hashFromHex(again.root(a)), hashFromHex(again.root(b)));
    }
    const r = await again.append({ after: "restart" });
    expect(r.index).toBe(size);
    checkReceipt(again, r);
    verifyConsistency(size, size + 1, proofFromHex(again.consistencyProof(size)), hashFromHex(root), hashFromHex(again.root()));
    await again.close();
    const third = await DurableLog.open(db, { logId, name: "access" });
    expect(third.size).toBe(size + 1);
    expect((await third.getEntry(size)).entry).toEqual({ after: "restart" });
  });

  it("keeps logs of different names apart in one handle and works on a json-encoded sublevel", async () => {
    const { db } = await fresh();
    const sub = db.sublevel<string, unknown>("audit", { valueEncoding: "json" });
    const a = await DurableLog.open(sub, { logId: randomLogId(), name: "a" });
    const b = await DurableLog.open(sub, { logId: randomLogId(), name: "a.b" });
    await Promise.all([a.append(1), a.append(2), b.append("x")]);
    expect([a.size, b.size]).toEqual([2, 1]);
    expect((await a.getEntries(0, 2)).map((e) => e.entry)).toEqual([1, 2]);
    expect((await b.getEntry(0)).entry).toBe("x");
  });

  it("refuses storage that belongs to another logId", async () => {
    const { db } = await fresh();
    const log = await DurableLog.open(db, { logId: randomLogId(), name: "access" });
    await log.append(1);
    await log.close();
    await expectCode(DurableLog.open(db, { logId: randomLogId(), name: "access" }), "CONFIG_INVALID", "log_id_mismatch");
  });

  it("detects corrupted or missing entries on open", async () => {
    const { db } = await fresh();
    const logId = randomLogId();
    const log = await DurableLog.open(db, { logId, name: "c" });
    await Promise.all([0, 1, 2, 3].map((i) => log.append({ i })));
    await log.close();
    await db.put(`c/e/${pad16(2)}`, canonicalBytes({ i: 99 }), { valueEncoding: "view" });
    await expectCode(DurableLog.open(db, { logId, name: "c" }), "INTERNAL", "log_root_mismatch");
    await db.del(`c/e/${pad16(2)}`);
    await expectCode(DurableLog.open(db, { logId, name: "c" }), "INTERNAL", "log_gap");
  });

  it("truncates entries beyond the recorded size on open", async () => {
    const { db } = await fresh();
    const logId = randomLogId();
    const log = await DurableLog.open(db, { logId, name: "t" });
    await Promise.all([0, 1, 2].map((i) => log.append({ i })));
    const root = log.root();
    await log.close();
    await db.batch(
      [3, 4].map((i) => ({ type: "put" as const, key: `t/e/${pad16(i)}`, value: canonicalBytes({ stray: i }) })),
      { valueEncoding: "view" },
    );
    const again = await DurableLog.open(db, { logId, name: "t" });
    expect(again.openReport.truncated).toBe(2);
    expect(again.size).toBe(3);
    expect(again.root()).toBe(root);
    expect(await db.get(`t/e/${pad16(3)}`, GET_OPTIONS)).toBeUndefined();
    expect((await again.append({ i: 3 })).index).toBe(3);
  });
});

describe("DurableLog: failed batch writes", () => {
  it("rejects exactly the callers of the failed batch and reuses their indexes; memory equals disk", async () => {
    const { db } = await fresh();
    const store = new InstrumentedStore(db);
    const logId = randomLogId();
    const log = await DurableLog.open(store, { logId, name: "f" });
    await Promise.all(Array.from({ length: 10 }, (_, i) => log.append({ ok: i })));
    const rootBefore = log.root();

    store.delayMs = 20;
    store.failNext("before");
    const doomed = Array.from({ length: 50 }, (_, i) => log.append({ doomed: i }));
    await new Promise((r) => setImmediate(r)); // the doomed batch is now being written
    const survivors = Array.from({ length: 30 }, (_, i) => log.append({ survivor: i }));
    const outcomes = await Promise.allSettled(doomed);
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      const e = (o as PromiseRejectedResult).reason as { code: string; details: Record<string, unknown> };
      expect(e.code).toBe("INTERNAL");
      expect(e.details["reason"]).toBe("log_write_failed");
    }
    const rs = await Promise.all(survivors);
    expect(rs.map((r) => r.index)).toEqual(Array.from({ length: 30 }, (_, i) => 10 + i));
    expect(log.size).toBe(40);
    expect(log.root(10)).toBe(rootBefore);
    rs.forEach((r) => checkReceipt(log, r));
    expect(log.stats().failedBatches).toBe(1);
    const entries = await log.getEntries(0, 40);
    expect(entries.filter((e) => JSON.stringify(e.entry).includes("doomed"))).toEqual([]);
    const root = log.root();
    await log.close();

    const again = await DurableLog.open(db, { logId, name: "f" });
    expect(again.size).toBe(40);
    expect(again.root()).toBe(root);
    expect(again.openReport.truncated).toBe(0);
  });

  it("cleans up after a batch that was applied although the write reported failure", async () => {
    const { db } = await fresh();
    const store = new InstrumentedStore(db);
    const logId = randomLogId();
    const log = await DurableLog.open(store, { logId, name: "g" });
    await log.append({ ok: 0 });
    store.failNext("after");
    const doomed = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append({ doomed: i })));
    expect(doomed.every((o) => o.status === "rejected")).toBe(true);
    expect(log.size).toBe(1);
    // A smaller batch reuses indexes 1..5 and must delete the stale 6..20.
    const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => log.append({ next: i })));
    expect(rs.map((r) => r.index)).toEqual([1, 2, 3, 4, 5]);
    expect(await db.get(`g/e/${pad16(6)}`, GET_OPTIONS)).toBeUndefined();
    const root = log.root();
    await log.close();
    const again = await DurableLog.open(db, { logId, name: "g" });
    expect(again.openReport).toMatchObject({ size: 6, truncated: 0 });
    expect(again.root()).toBe(root);
  });
});

describe("DurableLog: sidecar records", () => {
  const sidecarOf = (sub: object, tag: string) => (index: number) => [{ sublevel: sub, key: `${tag}:${pad16(index)}`, value: tag }];
  /** A log on a failure-injecting store whose entry 0 carries an "ok" record in sublevel `idx`. */
  async function logWithOneIndexedEntry() {
    const { db } = await fresh();
    const idx = db.sublevel("idx", { valueEncoding: "utf8" });
    await idx.open();
    const store = new InstrumentedStore(db);
    const log = await DurableLog.open(store, { logId: randomLogId(), name: "s" });
    await log.append(event(0), sidecarOf(idx, "ok"));
    return { idx, store, log };
  }
  async function sidecarKeys(sub: { keys(): AsyncIterable<string> }): Promise<string[]> {
    const out: string[] = [];
    for await (const k of sub.keys()) out.push(k);
    return out;
  }

  it.each(["direct", "public"] as const)("writes each entry's records in its batch, keyed by the index it got (%s batch path)", async (path) => {
    const { db } = await fresh();
    const idx = db.sublevel("idx", { valueEncoding: "utf8" });
    await idx.open();
    const log = await DurableLog.open(path === "direct" ? db : new InstrumentedStore(db), { logId: randomLogId(), name: "s" });
    const receipts = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append(event(i), sidecarOf(idx, `t${i % 3}`))));
    const expected = receipts.map((r, i) => `t${i % 3}:${pad16(r.index)}`).sort();
    expect(await sidecarKeys(idx)).toEqual(expected);
    expect(await idx.get(expected[0]!)).toBe(expected[0]!.slice(0, 2));
    // entries without a sidecar write nothing beside themselves
    await log.append(event(99));
    expect((await sidecarKeys(idx)).length).toBe(60);
  });

  it("a failed batch writes neither its entries nor their records; the next batch's records take the reused indexes", async () => {
    const { idx, store, log } = await logWithOneIndexedEntry();
    store.failNext("before");
    const doomed = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => log.append(event(i), sidecarOf(idx, "doomed"))));
    expect(doomed.every((o) => o.status === "rejected")).toBe(true);
    const next = await Promise.all(Array.from({ length: 3 }, (_, i) => log.append(event(i), sidecarOf(idx, "next"))));
    expect(next.map((r) => r.index)).toEqual([1, 2, 3]);
    expect(await sidecarKeys(idx)).toEqual([`next:${pad16(1)}`, `next:${pad16(2)}`, `next:${pad16(3)}`, `ok:${pad16(0)}`]);
  });

  it("deletes the records of a batch that was applied although its write reported failure, with the next batch", async () => {
    const { idx, store, log } = await logWithOneIndexedEntry();
    store.failNext("after");
    const doomed = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.append(event(i), sidecarOf(idx, "doomed"))));
    expect(doomed.every((o) => o.status === "rejected")).toBe(true);
    // LevelDB applied the doomed batch: its records are there, naming indexes 1..6
    expect((await sidecarKeys(idx)).filter((k) => k.startsWith("doomed:")).length).toBe(6);
    const next = await Promise.all(Array.from({ length: 2 }, (_, i) => log.append(event(i), sidecarOf(idx, "next"))));
    expect(next.map((r) => r.index)).toEqual([1, 2]);
    expect(await sidecarKeys(idx)).toEqual([`next:${pad16(1)}`, `next:${pad16(2)}`, `ok:${pad16(0)}`]);
  });
});

describe("DurableLog: reads and errors", () => {
  it("reads entries by range, with limits, and rejects out-of-range requests with codes", async () => {
    const { db } = await fresh();
    const log = await DurableLog.open(db, { logId: randomLogId(), name: "r" });
    await Promise.all(Array.from({ length: 25 }, (_, i) => log.append(event(i))));
    const all = await log.getEntries(0, 25);
    expect(all.map((e) => e.index)).toEqual(Array.from({ length: 25 }, (_, i) => i));
    all.forEach((e, i) => {
      expect(e.entry).toEqual(event(i));
      expect(e.leafHash).toBe(log.leafHash(i));
    });
    expect((await log.getEntries(5, 12)).map((e) => e.index)).toEqual([5, 6, 7, 8, 9, 10, 11]);
    expect((await log.getEntries(5, 25, 3)).map((e) => e.index)).toEqual([5, 6, 7]);
    expect(await log.getEntries(25, 25)).toEqual([]);
    expect(await log.getEntry(24)).toEqual(all[24]);

    await expectCode(log.getEntries(5, 3), "INVALID_ARGUMENT", "range_out_of_bounds");
    await expectCode(log.getEntries(0, 26), "INVALID_ARGUMENT", "range_out_of_bounds");
    await expectCode(log.getEntries(-1, 2), "INVALID_ARGUMENT", "range_out_of_bounds");
    await expectCode(log.getEntries(0, 2, 0), "INVALID_ARGUMENT", "invalid_limit");
    await expectCode(log.getEntry(25), "INVALID_ARGUMENT", "index_out_of_range");
    await expectCode(log.getEntry(1.5), "INVALID_ARGUMENT", "index_out_of_range");
    await expectCode(() => log.root(26), "PROOF_INVALID_SIZE");
    await expectCode(() => log.inclusionProof(25), "PROOF_INVALID_INDEX");
    await expectCode(() => log.inclusionProof(3, 26), "PROOF_INVALID_SIZE");
    await expectCode(() => log.consistencyProof(0, 10), "PROOF_INVALID_SIZE");
    await expectCode(() => log.consistencyProof(10, 26), "PROOF_INVALID_SIZE");
    await expectCode(() => log.leafHash(25), "PROOF_INVALID_INDEX");
  });

  it("rejects entries without a JSON form, oversized entries and appends after close", async () => {
    const { db } = await fresh();
    const log = await DurableLog.open(db, { logId: randomLogId(), name: "e", maxEntryBytes: 64 });
    await expectCode(log.append(undefined), "INVALID_ARGUMENT");
    await expectCode(log.append({ big: "x".repeat(100) }), "INVALID_ARGUMENT", "entry_too_large");
    expect(log.size).toBe(0);
    const p = log.append({ last: true });
    await log.close();
    expect((await p).index).toBe(0);
    await expectCode(log.append(1), "INVALID_ARGUMENT", "log_closed");
  });

  it("validates its options", async () => {
    const { db } = await fresh();
    await expectCode(DurableLog.open(db, { logId: "0x12" as `0x${string}`, name: "x" }), "CONFIG_INVALID");
    await expectCode(DurableLog.open(db, { logId: randomLogId(), name: "a/b" }), "CONFIG_INVALID");
    await expectCode(DurableLog.open(db, { logId: randomLogId(), name: "x", maxBatch: 0 }), "CONFIG_INVALID");
  });

  it("notices an entry altered on disk after open", async () => {
    const { db } = await fresh();
    const log = await DurableLog.open(db, { logId: randomLogId(), name: "m" });
    await log.append({ v: 1 });
    await db.put(`m/e/${pad16(0)}`, canonicalBytes({ v: 2 }), { valueEncoding: "view" });
    await expectCode(log.getEntry(0), "INTERNAL", "log_entry_hash_mismatch");
  });
});
