import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, afterEach, beforeEach, describe, expect, it } from "vitest";
import { canonicalBytes } from "../../../core/jcs.js";
import { toHex0x } from "../../../core/hash.js";
import { hashFromHex, leafHash, proofFromHex, rootFromLeafHashes, verifyConsistency, verifyInclusion } from "../../../core/merkle.js";
import { DurableLog, batchKey, decodeRecord, encodeBatchRecord, type AppendReceipt, type StoredEntry } from "../../../gateway/log/durable-log.js";
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

/** The batch records of log `name` as stored: each one's first index, root (null in format 1) and entries. */
async function storedRecords(db: { iterator(o: object): AsyncIterable<[string, Uint8Array]> }, name: string): Promise<{ start: number; root: Uint8Array | null; entries: StoredEntry[] }[]> {
  const out: { start: number; root: Uint8Array | null; entries: StoredEntry[] }[] = [];
  for await (const [key, value] of db.iterator({ gte: `${name}/b/`, lt: `${name}/b0`, valueEncoding: "view" })) {
    const record = decodeRecord(value)!;
    out.push({ start: Number(key.slice(name.length + 3)), root: record.root, entries: record.entries });
  }
  return out;
}

/** The meta record of log `name` (the base, `<name>/_meta`), parsed. */
async function storedMeta(db: TempDb["db"], name: string): Promise<Record<string, unknown>> {
  return JSON.parse(new TextDecoder().decode((await db.get(`${name}/_meta`, GET_OPTIONS))!)) as Record<string, unknown>;
}

/**
 * A log in the layout of stop 15 and before (meta v1, its size and root rewritten with every
 * batch; batch records without roots), one record per `chunk` entries.
 */
async function v1Log(db: TempDb["db"], name: string, logId: string, entries: unknown[], chunk = 10): Promise<string> {
  const bytes = entries.map((e) => canonicalBytes(e));
  const root = toHex0x(rootFromLeafHashes(bytes.map((b) => leafHash(b))));
  const ops: Array<{ type: "put"; key: string; value: Uint8Array }> = [];
  for (let i = 0; i < bytes.length; i += chunk) ops.push({ type: "put", key: batchKey(name, i), value: encodeBatchRecord(bytes.slice(i, i + chunk).map((b) => ({ tag: "", bytes: b }))) });
  ops.push({ type: "put", key: `${name}/meta`, value: new TextEncoder().encode(JSON.stringify({ v: 1, logId, size: bytes.length, root })) });
  await db.batch(ops, { valueEncoding: "view" });
  return root;
}

/** Rewrites the stored entry at `index` (its batch record re-encoded around the new bytes, with the root it had). */
async function overwriteStored(db: { get(k: string, o: object): Promise<Uint8Array | undefined>; put(k: string, v: Uint8Array, o: object): Promise<void> }, name: string, index: number, bytes: Uint8Array | null): Promise<void> {
  const records = await storedRecords(db as never, name);
  const r = records.findLast((x) => x.start <= index)!;
  const entries = r.entries.slice();
  if (bytes === null) entries.splice(index - r.start, 1);
  else entries[index - r.start] = { tag: entries[index - r.start]!.tag, bytes };
  await db.put(batchKey(name, r.start), encodeBatchRecord(entries, r.root ?? undefined), { valueEncoding: "view" });
}

const event = (i: number): unknown => ({ kind: "access", seq: i, subject: `subject-${i % 17}`, allowed: i % 3 !== 0 });

/**
 * Every test runs twice: with the whole tree in memory (the default), and with the leaf hashes in
 * a leaf file and only subtrees of 4 leaves and more in memory (as the gateway runs its logs, at
 * a prune level and a write buffer small enough that every test crosses many blocks and reads,
 * writes and cuts the file itself).
 */
const leafDir = mkdtempSync(join(tmpdir(), "custodia-leaves-"));
afterAll(() => rmSync(leafDir, { recursive: true, force: true }));
let withLeafFile = false;
let leafFiles = 0;
const mode = (): { leafFile?: string; pruneBelow?: number; leafFileBuffer?: number } => (withLeafFile ? { leafFile: join(leafDir, `leaves-${leafFiles++}`), pruneBelow: 2, leafFileBuffer: 3 } : {});

describe.each([
  ["tree in memory", false],
  ["leaf file", true],
] as const)("%s:", (_name, leafFile) => {
  beforeEach(() => {
    withLeafFile = leafFile;
  });

  describe("DurableLog: group commit", () => {
    it("2,000 concurrent appends get indexes 0..1999 once each, verify by inclusion proof, in few batch writes", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const logId = randomLogId();
      const log = await DurableLog.open(store, { ...mode(), logId, name: "access", maxBatch: 256 });
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
      const log = await DurableLog.open(store, { ...mode(), logId: randomLogId(), name: "access" });
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
      const log = await DurableLog.open(store, { ...mode(), logId: randomLogId(), name: "l", maxDelayMs: 30 });
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
            let log = await DurableLog.open(t.db, { ...mode(), logId, name: "p", maxBatch: 7 });
            for (const round of rounds) {
              const rs = await Promise.all(round.map((v) => log.append(v)));
              rs.forEach((r, j) => expect(r.index).toBe(leaves.length + j));
              for (const v of round) leaves.push(leafHash(canonicalBytes(v)));
              await log.close();
              log = await DurableLog.open(t.db, { ...mode(), logId, name: "p", maxBatch: 7 });
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
      const log = await DurableLog.open(db, { ...mode(), logId, name: "access" });
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

      const again = await DurableLog.open(db, { ...mode(), logId, name: "access" });
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
      const third = await DurableLog.open(db, { ...mode(), logId, name: "access" });
      expect(third.size).toBe(size + 1);
      expect((await third.getEntry(size)).entry).toEqual({ after: "restart" });
    });

    it("keeps logs of different names apart in one handle and works on a json-encoded sublevel", async () => {
      const { db } = await fresh();
      const sub = db.sublevel<string, unknown>("audit", { valueEncoding: "json" });
      const a = await DurableLog.open(sub, { ...mode(), logId: randomLogId(), name: "a" });
      const b = await DurableLog.open(sub, { ...mode(), logId: randomLogId(), name: "a.b" });
      await Promise.all([a.append(1), a.append(2), b.append("x")]);
      expect([a.size, b.size]).toEqual([2, 1]);
      expect((await a.getEntries(0, 2)).map((e) => e.entry)).toEqual([1, 2]);
      expect((await b.getEntry(0)).entry).toBe("x");
    });

    it("refuses storage that belongs to another logId", async () => {
      const { db } = await fresh();
      const log = await DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "access" });
      await log.append(1);
      await log.close();
      await expectCode(DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "access" }), "CONFIG_INVALID", "log_id_mismatch");
    });

    it("detects corrupted or missing entries on open", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "c" });
      await Promise.all([0, 1, 2, 3].map((i) => log.append({ i })));
      await log.close();
      await overwriteStored(db, "c", 2, canonicalBytes({ i: 99 }));
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "c" }), "INTERNAL", "log_root_mismatch");
      // an entry taken out of its record: the record's root no longer matches
      await overwriteStored(db, "c", 2, null);
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "c" }), "INTERNAL", "log_root_mismatch");
      await db.put(batchKey("c", 0), new Uint8Array([9, 9, 9]), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "c" }), "INTERNAL", "log_record_invalid");
      await db.put(batchKey("c", 0), encodeBatchRecord([{ tag: "", bytes: canonicalBytes({ i: 0 }) }], new Uint8Array(32)).subarray(0, 40), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "c" }), "INTERNAL", "log_record_invalid");
      // a record without its root (format 1) past the base: this version never writes one
      await db.put(batchKey("c", 0), encodeBatchRecord([0, 1, 2, 3, 4].map((i) => ({ tag: "", bytes: canonicalBytes({ i }) }))), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "c" }), "INTERNAL", "log_record_invalid");
    });

    it("detects a record missing between others", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "m" });
      for (let b = 0; b < 3; b++) await Promise.all([0, 1, 2].map((i) => log.append({ b, i })));
      await log.close();
      expect((await storedRecords(db, "m")).map((r) => r.start)).toEqual([0, 3, 6]);
      await db.del(batchKey("m", 3));
      const e = await expectCode(DurableLog.open(db, { ...mode(), logId, name: "m" }), "INTERNAL", "log_gap");
      expect(e.details?.["missing"]).toBe(3);
    });

    it("writes one record per batch, carrying the root of the log after it, and the meta only once", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "w" });
      const meta = await storedMeta(db, "w");
      expect(meta).toEqual({ v: 2, logId, size: 0, root: log.root() });
      await log.close();
      const store = new InstrumentedStore(db);
      const counted = await DurableLog.open(store, { ...mode(), logId, name: "w" });
      for (let b = 0; b < 4; b++) await Promise.all(Array.from({ length: 5 + b }, (_, i) => counted.append({ b, i })));
      expect(store.batches).toBe(4);
      const records = await storedRecords(db, "w");
      expect(records.map((r) => [r.start, r.entries.length])).toEqual([[0, 5], [5, 6], [11, 7], [18, 8]]);
      for (const r of records) expect(toHex0x(r.root!)).toBe(counted.root(r.start + r.entries.length));
      expect(await storedMeta(db, "w")).toEqual(meta);
      // every key the log holds sorts after the meta: no table file's range reaches over later ones
      const keys: string[] = [];
      for await (const k of db.keys()) keys.push(k);
      expect(keys[0]).toBe("w/_meta");
      expect(keys.slice(1).every((k) => /^w\/b\/\d{16}$/.test(k))).toBe(true);
      await counted.close();
      const again = await DurableLog.open(db, { ...mode(), logId, name: "w" });
      expect(again.openReport).toEqual({ size: 26, truncated: 0, created: false });
    });

    it("opens a log whose newest records were deleted whole as a shorter log: nothing local records its length (the anchors do)", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "cut" });
      for (let b = 0; b < 3; b++) await Promise.all([0, 1].map((i) => log.append({ b, i })));
      const root4 = log.root(4);
      await log.close();
      await db.del(batchKey("cut", 4));
      const again = await DurableLog.open(db, { ...mode(), logId, name: "cut" });
      expect(again.size).toBe(4);
      expect(again.root()).toBe(root4);
    });

    it("takes a log of the earlier layout over: checked against its recorded size, its meta becomes the base, new records carry roots", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const entries = Array.from({ length: 25 }, (_, i) => ({ i }));
      const root = await v1Log(db, "old", logId, entries);
      // a stray record past the recorded size (the v1 layout's only way to hold one) is dropped
      await db.put(batchKey("old", 25), encodeBatchRecord([25, 26].map((i) => ({ tag: "x", bytes: canonicalBytes({ stray: i }) }))), { valueEncoding: "view" });
      const log = await DurableLog.open(db, { ...mode(), logId, name: "old" });
      expect(log.openReport).toEqual({ size: 25, truncated: 2, created: false });
      expect(log.tookOver).toBe(true);
      expect(log.root()).toBe(root);
      expect(log.tagged("x", 10)).toEqual([]);
      expect(await db.get(batchKey("old", 25), GET_OPTIONS)).toBeUndefined();
      expect(await storedMeta(db, "old")).toEqual({ v: 2, logId, size: 25, root });
      expect(await db.get("old/meta", GET_OPTIONS)).toBeUndefined();
      await Promise.all([0, 1, 2].map((i) => log.append({ after: i })));
      const grown = log.root();
      await log.close();
      const records = await storedRecords(db, "old");
      expect(records.map((r) => [r.start, r.root === null])).toEqual([[0, true], [10, true], [20, true], [25, false]]);
      const again = await DurableLog.open(db, { ...mode(), logId, name: "old" });
      expect(again.openReport).toEqual({ size: 28, truncated: 0, created: false });
      expect(again.tookOver).toBe(false);
      expect(again.root()).toBe(grown);
      expect((await again.getEntries(0, 28)).map((e) => e.entry)).toEqual([...entries, { after: 0 }, { after: 1 }, { after: 2 }]);
      // a v1 record reaching past the recorded size: never written so, since size and record travelled together
      const { db: db2 } = await fresh();
      await v1Log(db2, "over", logId, entries);
      await db2.put(batchKey("over", 20), encodeBatchRecord([20, 21, 22, 23, 24, 25].map((i) => ({ tag: "", bytes: canonicalBytes({ i }) }))), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db2, { ...mode(), logId, name: "over" }), "INTERNAL", "log_record_invalid");
      // the base still binds what it covers: an entry of the old records altered is caught
      await again.close();
      await overwriteStored(db, "old", 3, canonicalBytes({ i: 99 }));
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "old" }), "INTERNAL", "log_root_mismatch");
    });

    it("refuses a record past the end whose root does not match, and takes one whose root does", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "t" });
      await Promise.all([0, 1, 2].map((i) => log.append({ i })));
      await log.close();
      const extra = [3, 4].map((i) => ({ tag: "x", bytes: canonicalBytes({ i }) }));
      await db.put(batchKey("t", 3), encodeBatchRecord(extra, new Uint8Array(32).fill(7)), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "t" }), "INTERNAL", "log_root_mismatch");
      const leaves = [0, 1, 2, 3, 4].map((i) => leafHash(canonicalBytes({ i })));
      await db.put(batchKey("t", 3), encodeBatchRecord(extra, rootFromLeafHashes(leaves)), { valueEncoding: "view" });
      const again = await DurableLog.open(db, { ...mode(), logId, name: "t" });
      expect(again.size).toBe(5);
      expect(again.tagged("x", 10)).toEqual([3, 4]);
    });
  });

  describe("DurableLog: meta records", () => {
    it("refuses a meta record whose version does not belong under its key", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const root = toHex0x(rootFromLeafHashes([]));
      await db.put("a/_meta", new TextEncoder().encode(JSON.stringify({ v: 1, logId, size: 0, root })), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "a" }), "INTERNAL", "log_meta_invalid");
      await db.put("b/meta", new TextEncoder().encode(JSON.stringify({ v: 2, logId, size: 0, root })), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "b" }), "INTERNAL", "log_meta_invalid");
    });
  });

  describe("DurableLog: failed batch writes", () => {
    it("rejects exactly the callers of the failed batch and reuses their indexes; memory equals disk", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const logId = randomLogId();
      const log = await DurableLog.open(store, { ...mode(), logId, name: "f" });
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

      const again = await DurableLog.open(db, { ...mode(), logId, name: "f" });
      expect(again.size).toBe(40);
      expect(again.root()).toBe(root);
      expect(again.openReport.truncated).toBe(0);
    });

    it("cleans up after a batch that was applied although the write reported failure", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const logId = randomLogId();
      const log = await DurableLog.open(store, { ...mode(), logId, name: "g" });
      await log.append({ ok: 0 });
      store.failNext("after");
      const doomed = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append({ doomed: i })));
      expect(doomed.every((o) => o.status === "rejected")).toBe(true);
      expect(log.size).toBe(1);
      // LevelDB applied it: its record is there, holding indexes 1..20
      expect((await storedRecords(db, "g")).map((r) => [r.start, r.entries.length])).toEqual([[0, 1], [1, 20]]);
      // A smaller batch reuses indexes 1..5: its record replaces the doomed one whole.
      const rs = await Promise.all(Array.from({ length: 5 }, (_, i) => log.append({ next: i })));
      expect(rs.map((r) => r.index)).toEqual([1, 2, 3, 4, 5]);
      expect((await storedRecords(db, "g")).map((r) => [r.start, r.entries.length])).toEqual([[0, 1], [1, 5]]);
      const root = log.root();
      await log.close();
      const again = await DurableLog.open(db, { ...mode(), logId, name: "g" });
      expect(again.openReport).toMatchObject({ size: 6, truncated: 0 });
      expect(again.root()).toBe(root);
    });
  });

  describe("DurableLog: tags", () => {
    it.each(["direct", "public"] as const)("files each entry under its tag in its own record, and lists the newest of a tag (%s batch path)", async (path) => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(path === "direct" ? db : new InstrumentedStore(db), { ...mode(), logId, name: "s", maxBatch: 7 });
      const receipts = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append(event(i), `t${i % 3}`)));
      await log.append(event(99));
      const want = (k: number) => receipts.filter((_, i) => i % 3 === k).map((r) => r.index);
      expect(log.tagged("t1", 100)).toEqual(want(1));
      expect(log.tagged("t1", 4)).toEqual(want(1).slice(-4));
      expect(log.tagged("t1", 0)).toEqual([]);
      expect(log.tagged("nobody", 5)).toEqual([]);
      // one record per group commit (at most maxBatch entries each), tags beside their entries
      const records = await storedRecords(db, "s");
      expect(records.length).toBe(log.stats().batches);
      expect(records.every((r) => r.entries.length <= 7)).toBe(true);
      const stored = records.flatMap((r) => r.entries);
      expect(stored.map((e) => e.tag)).toEqual([...receipts.map((_, i) => `t${i % 3}`), ""]);
      expect(stored.map((e) => toHex0x(leafHash(e.bytes)))).toEqual([...receipts.map((r) => r.leafHash), log.leafHash(60)]);
      await log.close();
      // rebuilt from storage on open
      const again = await DurableLog.open(db, { ...mode(), logId, name: "s" });
      expect(again.tagged("t2", 100)).toEqual(want(2));
    });

    it("keeps only each tag's newest maxTagged entries, while appending and when rebuilt on open", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const log = await DurableLog.open(db, { ...mode(), logId, name: "cap", maxTagged: 5, maxBatch: 3 });
      const receipts = await Promise.all(Array.from({ length: 47 }, (_, i) => log.append(event(i), i % 2 === 0 ? "even" : "odd")));
      const newest = (tag: string, n: number) =>
        receipts
          .filter((_, i) => (i % 2 === 0 ? "even" : "odd") === tag)
          .map((r) => r.index)
          .slice(-n);
      // at every length of its list (it is cut back at twice the cap), the same answer
      expect(log.tagged("even", 100)).toEqual(newest("even", 5));
      expect(log.tagged("odd", 5)).toEqual(newest("odd", 5));
      expect(log.tagged("odd", 2)).toEqual(newest("odd", 2));
      await log.append(event(47), "odd");
      expect(log.tagged("odd", 100)).toEqual([...newest("odd", 4), 47]);
      await log.close();
      const again = await DurableLog.open(db, { ...mode(), logId, name: "cap", maxTagged: 5 });
      expect(again.tagged("odd", 100)).toEqual([...newest("odd", 4), 47]);
      expect(again.tagged("even", 100)).toEqual(newest("even", 5));
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "cap", maxTagged: 0 }), "CONFIG_INVALID", "log_option_invalid");
    });

    it("a failed batch files nothing; the next batch's entries take the reused indexes under their own tags", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const logId = randomLogId();
      const log = await DurableLog.open(store, { ...mode(), logId, name: "s" });
      await log.append(event(0), "ok");
      store.failNext("after");
      const doomed = await Promise.allSettled(Array.from({ length: 6 }, (_, i) => log.append(event(i), "doomed")));
      expect(doomed.every((o) => o.status === "rejected")).toBe(true);
      expect(log.tagged("doomed", 10)).toEqual([]);
      const next = await Promise.all(Array.from({ length: 2 }, (_, i) => log.append(event(i), "next")));
      expect(next.map((r) => r.index)).toEqual([1, 2]);
      expect(log.tagged("next", 10)).toEqual([1, 2]);
      await log.close();
      const again = await DurableLog.open(db, { ...mode(), logId, name: "s" });
      expect([again.tagged("ok", 10), again.tagged("next", 10), again.tagged("doomed", 10)]).toEqual([[0], [1, 2], []]);
    });

    it("refuses tags that cannot be stored", async () => {
      const { db } = await fresh();
      const log = await DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "s" });
      for (const bad of ["with space", "x".repeat(256), "ünïcode", "line\nbreak", 7 as never]) await expectCode(log.append({ a: 1 }, bad), "INVALID_ARGUMENT", "invalid_tag");
      expect((await log.append({ a: 1 }, "x".repeat(255))).index).toBe(0);
      expect(log.size).toBe(1);
    });
  });

  describe("DurableLog: logs stored one record per entry (earlier versions)", () => {
    /** A log in the earlier layout: `<name>/e/<index>` per entry and the meta record. */
    async function legacyLog(db: TempDb["db"], name: string, logId: string, entries: unknown[]): Promise<string> {
      const bytes = entries.map((e) => canonicalBytes(e));
      const root = toHex0x(rootFromLeafHashes(bytes.map((b) => leafHash(b))));
      await db.batch([
        ...bytes.map((value, i) => ({ type: "put" as const, key: `${name}/e/${pad16(i)}`, value })),
        { type: "put" as const, key: `${name}/meta`, value: new TextEncoder().encode(JSON.stringify({ v: 1, logId, size: entries.length, root })) },
      ], { valueEncoding: "view" });
      return root;
    }

    it("rewrites them into batch records on open, deriving tags, and keeps size, root and entries", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const entries = Array.from({ length: 2500 }, (_, i) => event(i));
      const root = await legacyLog(db, "old", logId, entries);
      const log = await DurableLog.open(db, { ...mode(), logId, name: "old", legacyTag: (e) => (e as { subject: string }).subject });
      expect(log.size).toBe(2500);
      expect(log.root()).toBe(root);
      expect((await log.getEntries(995, 1005)).map((e) => e.entry)).toEqual(entries.slice(995, 1005));
      expect(log.tagged("subject-3", 1000)).toEqual(entries.map((_, i) => i).filter((i) => i % 17 === 3));
      const left = [];
      for await (const k of db.keys({ gte: "old/e/", lt: "old/e0" })) left.push(k);
      expect(left).toEqual([]);
      expect((await storedRecords(db, "old")).map((r) => [r.start, r.entries.length])).toEqual([[0, 1000], [1000, 1000], [2000, 500]]);
      expect((await log.append({ after: 1 })).index).toBe(2500);
    });

    it("finishes a rewrite a crash interrupted (some entries already in batch records)", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      const entries = Array.from({ length: 30 }, (_, i) => event(i));
      const root = await legacyLog(db, "half", logId, entries);
      // what a crash after the first chunk leaves: entries 0..9 in a batch record, the rest per entry
      await db.batch([
        { type: "put", key: batchKey("half", 0), value: encodeBatchRecord(entries.slice(0, 10).map((e) => ({ tag: "", bytes: canonicalBytes(e) }))) },
        ...Array.from({ length: 10 }, (_, i) => ({ type: "del" as const, key: `half/e/${pad16(i)}` })),
      ], { valueEncoding: "view" });
      const log = await DurableLog.open(db, { ...mode(), logId, name: "half" });
      expect(log.size).toBe(30);
      expect(log.root()).toBe(root);
      expect((await log.getEntries(0, 30)).map((e) => e.entry)).toEqual(entries);
    });

    it("still reports a missing or altered entry of such a log", async () => {
      const { db } = await fresh();
      const logId = randomLogId();
      await legacyLog(db, "gap", logId, [1, 2, 3, 4].map((i) => ({ i })));
      await db.del(`gap/e/${pad16(1)}`);
      await expectCode(DurableLog.open(db, { ...mode(), logId, name: "gap" }), "INTERNAL", "log_gap");
      const { db: db2 } = await fresh();
      await legacyLog(db2, "alt", logId, [1, 2, 3].map((i) => ({ i })));
      await db2.put(`alt/e/${pad16(2)}`, canonicalBytes({ i: 99 }), { valueEncoding: "view" });
      await expectCode(DurableLog.open(db2, { ...mode(), logId, name: "alt" }), "INTERNAL", "log_root_mismatch");
    });
  });

  describe("DurableLog: reads and errors", () => {
    it("reads entries by range, with limits, and rejects out-of-range requests with codes", async () => {
      const { db } = await fresh();
      const log = await DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "r" });
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

    it("reads entries at given indexes, in the order asked, with one seek per record (at most one per distinct index)", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const log = await DurableLog.open(store, { ...mode(), logId: randomLogId(), name: "at", maxBatch: 8 });
      await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(event(i))));
      const records = await storedRecords(db, "at");
      expect(records.length).toBeGreaterThanOrEqual(4);
      const indexes = [29, 0, 3, 3, 17, 8];
      const readsBefore = store.gets + store.iterators;
      const got = await log.getEntriesAt(indexes);
      // the seeks of one round run together, so two indexes of one record may both seek it
      const records_ = new Set(indexes.map((i) => records.findLast((r) => r.start <= i)!.start)).size;
      const reads = store.gets + store.iterators - readsBefore;
      expect(reads).toBeGreaterThanOrEqual(records_);
      expect(reads).toBeLessThanOrEqual(new Set(indexes).size);
      expect(got.map((e) => e.index)).toEqual(indexes);
      for (const e of got) expect(e).toEqual(await log.getEntry(e.index));
      expect(await log.getEntriesAt([])).toEqual([]);

      await expectCode(log.getEntriesAt([0, 30]), "INVALID_ARGUMENT", "index_out_of_range");
      await expectCode(log.getEntriesAt([-1]), "INVALID_ARGUMENT", "index_out_of_range");
      await expectCode(log.getEntriesAt(Array.from({ length: 10_001 }, () => 0)), "INVALID_ARGUMENT", "too_many_indexes");
      await overwriteStored(db, "at", 3, canonicalBytes({ altered: true }));
      await expectCode(log.getEntriesAt([29, 3]), "INTERNAL", "log_entry_hash_mismatch");
      const last = records.at(-1)!;
      await db.del(batchKey("at", last.start));
      await expectCode(log.getEntriesAt([0, 29]), "INTERNAL", "log_gap");
    });

    it("reads entries at indexes spread over more records than it reads at once", async () => {
      const { db } = await fresh();
      const store = new InstrumentedStore(db);
      const log = await DurableLog.open(store, { ...mode(), logId: randomLogId(), name: "many", maxBatch: 1 });
      await Promise.all(Array.from({ length: 40 }, (_, i) => log.append(event(i))));
      const indexes = Array.from({ length: 40 }, (_, i) => 39 - i);
      const before = store.gets + store.iterators;
      const got = await log.getEntriesAt(indexes);
      expect(store.gets + store.iterators - before).toBe(40);
      expect(got.map((e) => e.index)).toEqual(indexes);
      expect(got.map((e) => e.entry)).toEqual(indexes.map(event));
    });

    it("rejects entries without a JSON form, oversized entries and appends after close", async () => {
      const { db } = await fresh();
      const log = await DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "e", maxEntryBytes: 64 });
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
      await expectCode(DurableLog.open(db, { ...mode(), logId: "0x12" as `0x${string}`, name: "x" }), "CONFIG_INVALID");
      await expectCode(DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "a/b" }), "CONFIG_INVALID");
      await expectCode(DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "x", maxBatch: 0 }), "CONFIG_INVALID");
    });

    it("notices an entry altered on disk after open", async () => {
      const { db } = await fresh();
      const log = await DurableLog.open(db, { ...mode(), logId: randomLogId(), name: "m" });
      await log.append({ v: 1 });
      await overwriteStored(db, "m", 0, canonicalBytes({ v: 2 }));
      await expectCode(log.getEntry(0), "INTERNAL", "log_entry_hash_mismatch");
    });
  });
});
