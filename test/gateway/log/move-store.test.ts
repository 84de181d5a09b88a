/**
 * Moving the logs into a store of their own (gateway/log/move-store.ts), on real LevelDB databases:
 * the old place is a sublevel of one database, the new place a database of its own, as in the
 * gateway. A crash is simulated by a store that stops writing after its Nth batch (what was written
 * before stays, as after a SIGKILL of a process whose writes were fsync'd).
 */
import { afterEach, describe, expect, it } from "vitest";
import { Level } from "level";
import { DurableLog } from "../../../gateway/log/durable-log.js";
import type { KvBatchOp, KvBatchOptions, KvStore } from "../../../gateway/log/kv.js";
import { MOVED_KEY, MOVING_KEY, moveStore } from "../../../gateway/log/move-store.js";
import { expectCode, randomLogId, tempDb, type TempDb } from "./helpers.js";

const VIEW = { keyEncoding: "utf8", valueEncoding: "view" } as const;
const bytes = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A store whose batch number `dieAt` (1-based) and every later one fail without writing. */
class DyingStore implements KvStore {
  batches = 0;
  constructor(
    private readonly inner: KvStore,
    private readonly dieAt: number,
  ) {}
  get(key: string, options: typeof VIEW): Promise<Uint8Array | undefined> {
    return this.inner.get(key, options);
  }
  iterator(options: Parameters<KvStore["iterator"]>[0]): ReturnType<KvStore["iterator"]> {
    return this.inner.iterator(options);
  }
  async batch(operations: KvBatchOp[], options: KvBatchOptions): Promise<void> {
    if (++this.batches >= this.dieAt) throw new Error("the process died here");
    await this.inner.batch(operations, options);
  }
}

async function contents(store: KvStore): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const it = store.iterator({ ...VIEW });
  try {
    for (let chunk = await it.nextv(1000); chunk.length > 0; chunk = await it.nextv(1000)) for (const [k, v] of chunk) out.set(k, Buffer.from(v).toString("hex"));
  } finally {
    await it.close();
  }
  return out;
}

describe("moveStore", () => {
  const dbs: TempDb[] = [];
  afterEach(async () => {
    for (const d of dbs.splice(0)) await d.dispose();
  });

  /** The old place (a sublevel of the gateway's database, beside other data) and the new one. */
  async function places(records: number): Promise<{ gateway: Level<string, Uint8Array>; from: KvStore; to: KvStore; original: Map<string, string> }> {
    const a = await tempDb("custodia-move-from-");
    const b = await tempDb("custodia-move-to-");
    dbs.push(a, b);
    const from = a.db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" }) as unknown as KvStore;
    const ops: KvBatchOp[] = [];
    for (let i = 0; i < records; i++) ops.push({ type: "put", key: `access/b/${String(i * 10).padStart(16, "0")}`, value: bytes(`record ${i} `.repeat(1 + (i % 7))) });
    if (records > 0) ops.push({ type: "put", key: "access/meta", value: bytes(`{"size":${records * 10}}`) });
    if (ops.length > 0) await from.batch(ops, { keyEncoding: "utf8", valueEncoding: "view" });
    // the gateway's other data, which must stay where it is
    await a.db.sublevel<string, Uint8Array>("vault", { valueEncoding: "view" }).put("k", bytes("vault record"));
    return { gateway: a.db, from, to: b.db as unknown as KvStore, original: await contents(from) };
  }

  it("moves every record, byte for byte, and leaves nothing behind", async () => {
    const p = await places(2_345);
    const seen: number[] = [];
    const report = await moveStore(p.from, p.to, { chunk: 500, onProgress: (n) => seen.push(n) });
    expect(report).toEqual({ moved: 2_346, resumed: false });
    expect(await contents(p.to)).toEqual(p.original);
    expect((await contents(p.from)).size).toBe(0);
    expect(seen).toEqual([500, 1000, 1500, 2000, 2346]);
    // the rest of the gateway's database is untouched
    expect(Buffer.from((await p.gateway.sublevel<string, Uint8Array>("vault", { valueEncoding: "view" }).get("k"))!).toString()).toBe("vault record");
    // a second call finds nothing to do
    expect(await moveStore(p.from, p.to)).toEqual({ moved: 0, resumed: false });
    expect(await contents(p.to)).toEqual(p.original);
  });

  it("moves only the records under a prefix when given one, and leaves the others", async () => {
    const p = await places(30);
    await p.from.batch([{ type: "put", key: "decisions/b/0000000000000000", value: bytes("another log") }, { type: "put", key: "accessory", value: bytes("not under access/") }], { keyEncoding: "utf8", valueEncoding: "view" });
    expect(await moveStore(p.from, p.to, { prefix: "access/" })).toEqual({ moved: 31, resumed: false });
    expect(await contents(p.to)).toEqual(p.original);
    expect([...(await contents(p.from)).keys()]).toEqual(["accessory", "decisions/b/0000000000000000"]);
    // the other log moves into a store of its own the same way; nothing is left
    const d = await tempDb("custodia-move-to-");
    dbs.push(d);
    expect(await moveStore(p.from, d.db as unknown as KvStore, { prefix: "decisions/" })).toEqual({ moved: 1, resumed: false });
    expect([...(await contents(p.from)).keys()]).toEqual(["accessory"]);
  });

  it("does nothing on a fresh install (nothing in the old place)", async () => {
    const p = await places(0);
    await p.to.batch([{ type: "put", key: "access/meta", value: bytes("new") }], { keyEncoding: "utf8", valueEncoding: "view" });
    expect(await moveStore(p.from, p.to)).toEqual({ moved: 0, resumed: false });
    expect([...(await contents(p.to)).keys()]).toEqual(["access/meta"]);
  });

  // Every point a crash can stop a move at. 2,000 records and the meta, 500 a batch: in the new
  // place, batch 1 writes the "moving" mark, 2-6 copy, 7 writes the "moved" mark, 8 removes the
  // marks; in between, batches 1-5 of the old place delete what was copied.
  const crashes: Array<{ store: "to" | "from"; batch: number; what: string }> = [
    { store: "to", batch: 1, what: "before anything was written" },
    { store: "to", batch: 2, what: "before the first copy" },
    { store: "to", batch: 4, what: "midway through the copy" },
    { store: "to", batch: 7, what: "before the copy was marked complete" },
    { store: "from", batch: 1, what: "before the old place was emptied" },
    { store: "from", batch: 3, what: "midway through emptying the old place" },
    { store: "to", batch: 8, what: "before the marks were removed" },
  ];
  for (const c of crashes) {
    it(`finishes a move that died ${c.what}, with every record once`, async () => {
      const p = await places(2_000);
      const to = c.store === "to" ? new DyingStore(p.to, c.batch) : p.to;
      const from = c.store === "from" ? new DyingStore(p.from, c.batch) : p.from;
      await expect(moveStore(from, to, { chunk: 500 })).rejects.toThrow("the process died here");
      const report = await moveStore(p.from, p.to, { chunk: 500 });
      // a move that had written nothing starts afresh; any other is taken up where it stopped
      expect(report.resumed).toBe(!(c.store === "to" && c.batch === 1));
      expect(await contents(p.to)).toEqual(p.original);
      expect((await contents(p.from)).size).toBe(0);
      expect(await p.to.get(MOVING_KEY, VIEW)).toBeUndefined();
      expect(await p.to.get(MOVED_KEY, VIEW)).toBeUndefined();
    });
  }

  // A crash while an interrupted move starts again: in the new place the second attempt's batches
  // 1-2 clear the first attempt's copy (500 a batch), then 3-7 copy, 8 writes the "moved" mark.
  for (const [first, second] of [[4, 1], [4, 2], [5, 4], [3, 7]] as const) {
    it(`finishes a move whose first attempt died at batch ${first} and second at batch ${second}`, async () => {
      const p = await places(2_000);
      await expect(moveStore(p.from, new DyingStore(p.to, first), { chunk: 500 })).rejects.toThrow("the process died here");
      await expect(moveStore(p.from, new DyingStore(p.to, second), { chunk: 500 })).rejects.toThrow("the process died here");
      expect(await p.to.get(MOVING_KEY, VIEW)).toBeDefined();
      expect(await moveStore(p.from, p.to, { chunk: 500 })).toEqual({ moved: 2_001, resumed: true });
      expect(await contents(p.to)).toEqual(p.original);
      expect((await contents(p.from)).size).toBe(0);
    });
  }

  it("refuses an interrupted copy whose source has since been emptied, and tidies a mark with nothing copied", async () => {
    const p = await places(0);
    await p.to.batch([{ type: "put", key: MOVING_KEY, value: bytes("1") }, { type: "put", key: "access/b/0000000000000000", value: bytes("part of a copy") }], { keyEncoding: "utf8", valueEncoding: "view" });
    await expectCode(moveStore(p.from, p.to), "CONFIG_INVALID", "store_move_conflict");
    expect((await contents(p.to)).size).toBe(2);
    await p.to.batch([{ type: "del", key: "access/b/0000000000000000" }], { keyEncoding: "utf8" });
    expect(await moveStore(p.from, p.to)).toEqual({ moved: 0, resumed: true });
    expect((await contents(p.to)).size).toBe(0);
  });

  it("starts an interrupted copy again from an empty new place: nothing of the first attempt survives", async () => {
    const p = await places(50);
    await p.to.batch(
      [
        { type: "put", key: MOVING_KEY, value: bytes("1") },
        { type: "put", key: "access/b/9999999999999999", value: bytes("not in the old place") },
      ],
      { keyEncoding: "utf8", valueEncoding: "view" },
    );
    expect(await moveStore(p.from, p.to)).toEqual({ moved: 51, resumed: true });
    expect(await contents(p.to)).toEqual(p.original);
  });

  it("refuses when both places hold records and no move was under way, changing neither", async () => {
    const p = await places(10);
    await p.to.batch([{ type: "put", key: "access/b/0000000000000000", value: bytes("written after the move") }], { keyEncoding: "utf8", valueEncoding: "view" });
    const before = await contents(p.to);
    await expectCode(moveStore(p.from, p.to), "CONFIG_INVALID", "store_move_conflict");
    expect(await contents(p.to)).toEqual(before);
    expect(await contents(p.from)).toEqual(p.original);
  });

  it("moves a durable log that opens in its new place with the same size, root and entries", async () => {
    const p = await places(0);
    const logId = randomLogId();
    const log = await DurableLog.open(p.from, { logId, name: "access" });
    const receipts = await Promise.all(Array.from({ length: 300 }, (_, i) => log.append({ kind: "access", i }, `s${i % 3}`)));
    const root = log.root();
    await log.close();
    await moveStore(p.from, p.to);
    const moved = await DurableLog.open(p.to, { logId, name: "access" });
    expect(moved.size).toBe(300);
    expect(moved.root()).toBe(root);
    expect(moved.tagged("s1", 1000)).toEqual(receipts.filter((_, i) => i % 3 === 1).map((r) => r.index));
    expect((await moved.getEntry(299)).entry).toEqual({ kind: "access", i: 299 });
    await moved.close();
  });
});
