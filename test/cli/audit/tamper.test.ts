/**
 * Storage tampering caught by the auditor, each kind with its own finding code.
 *
 * A real gateway on Hardhat's in-process chain serves real traffic, anchors its access log twice
 * (6 and 12 entries) and gets one more entry (pending), then stops. Its log store (a LevelDB of its
 * own) is copied and each copy edited with `level` directly, in the log's storage layout (batch
 * records `<name>/b/<16-digit first index>`, each naming the root of the log after it): an entry
 * modified, deleted (later ones moved up), two entries reordered, one inserted, the tail cut off.
 *
 * The durable log verifies itself on open, so a gateway restarted on these copies refuses to
 * start (asserted below) — but on the tail cut off, which leaves a shorter log that is whole: that
 * one raises the anchorer's alarm, since it falls short of an anchor. The hostile gateway is
 * therefore simulated: a source that serves the
 * tampered storage's entries read raw (skipping that check) while its proofs come from the tree it
 * built before the edit — the original storage opened with the real DurableLog — and its signed
 * checkpoints are the ones the real gateway served. That is a gateway whose storage was edited
 * under it and that does not re-check what it reads. A last case rewrites the storage
 * consistently (entries and the roots the records name), which the durable log accepts: a gateway
 * rebuilt on it proves only its own tree, and the change cannot be placed beyond its anchor
 * interval.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Level } from "level";
import { verifyAudit, type AuditSource, type VerifyReport } from "../../../cli/audit/verify.js";
import type { FindingCode } from "../../../cli/audit/findings.js";
import { CustodiaError, isCustodiaError } from "../../../core/errors.js";
import { toHex0x } from "../../../core/hash.js";
import { canonicalBytes } from "../../../core/jcs.js";
import { logIdFor } from "../../../core/logs.js";
import { leafHash, rootFromLeafHashes } from "../../../core/merkle.js";
import type { Address, Bytes32 } from "../../../core/domain.js";
import { EvmLedger } from "../../../contracts/evm-ledger.js";
import type { Anchorer } from "../../../gateway/log/anchorer.js";
import { DurableLog, batchKey, decodeRecord, encodeBatchRecord } from "../../../gateway/log/durable-log.js";
import type { KvStore } from "../../../gateway/log/kv.js";
import { hardhatProvider } from "../../helpers/hardhat.js";
import { CHAIN_ID, startTestGateway, type Identity, type TestGateway } from "../../gateway/harness.js";
import { variedRecords } from "./support.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** The gateway's log store (LevelDB) at `dir`, and its handle as the runtime opens it. */
async function openStore(dir: string): Promise<{ db: Level<string, Uint8Array>; logs: KvStore }> {
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  return { db, logs: db as unknown as KvStore };
}

const VIEW = { keyEncoding: "utf8", valueEncoding: "view" } as const;

/** Every stored access entry, raw, by index, read from the batch records; their keys; the root each record names, by its end. */
async function storedEntries(logs: KvStore): Promise<{ entries: Map<number, Uint8Array>; keys: string[]; roots: Map<number, Uint8Array> }> {
  const it = logs.iterator({ gte: "access/b/", lt: "access/b0", ...VIEW });
  const entries = new Map<number, Uint8Array>();
  const roots = new Map<number, Uint8Array>();
  const keys: string[] = [];
  try {
    for (let chunk = await it.nextv(1000); chunk.length > 0; chunk = await it.nextv(1000)) {
      for (const [k, v] of chunk) {
        keys.push(k);
        const start = Number(k.slice("access/b/".length));
        const record = decodeRecord(v)!;
        record.entries.forEach((e, j) => entries.set(start + j, e.bytes));
        if (record.root) roots.set(start + record.entries.length, record.root);
      }
    }
  } finally {
    await it.close();
  }
  return { entries, keys, roots };
}

async function rawEntries(logs: KvStore): Promise<Uint8Array[]> {
  const { entries } = await storedEntries(logs);
  return [...entries.keys()].sort((a, b) => a - b).map((i) => entries.get(i)!);
}

/**
 * Edits one stored entry (null: deletes it) and writes the storage back in the gateway's layout,
 * one batch record per entry, each naming a root. `roots` "kept": the root the log had at that size
 * before any edit (`original`, its final root past its end) — an editor of entries who leaves the
 * roots as they were; "recomputed": the root of the edited entries — one who rewrites the storage
 * consistently.
 */
async function editEntry(logs: KvStore, original: Uint8Array[], index: number, value: Uint8Array | null, roots: "kept" | "recomputed" = "kept"): Promise<void> {
  const { entries, keys } = await storedEntries(logs);
  const originalRoot = (size: number): Uint8Array => rootFromLeafHashes(original.slice(0, Math.min(size, original.length)));
  if (value === null) entries.delete(index);
  else entries.set(index, value);
  const ops: Parameters<KvStore["batch"]>[0] = keys.map((key) => ({ type: "del" as const, key }));
  const sorted = [...entries.keys()].sort((a, b) => a - b);
  const leaves: Uint8Array[] = [];
  sorted.forEach((k, position) => {
    leaves.push(leafHash(entries.get(k)!));
    const root = roots === "kept" ? originalRoot(position + 1) : rootFromLeafHashes(leaves);
    ops.push({ type: "put", key: batchKey("access", position), value: encodeBatchRecord([{ tag: "", bytes: entries.get(k)! }], root) });
  });
  await logs.batch(ops, VIEW);
}

describe("audit verify against tampered gateway storage", () => {
  let g: TestGateway;
  let partner: Identity;
  let logId: Bytes32;
  let ledger: EvmLedger;
  const scratch: string[] = [];
  const recorded: { health?: unknown; listing?: Json; checkpoints?: unknown } = {};

  const original = (): string => join(g.dataDir, "logs", "access");

  async function call(method: "GET" | "POST", url: string, who: Identity | null, payload?: unknown): Promise<Json> {
    const res = await g.app.inject({ method, url, headers: who ? { authorization: `Bearer ${await who.token()}` } : {}, ...(payload === undefined ? {} : { payload: payload as never }) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  }

  /** A copy of the stopped gateway's log store, edited by `edit` with `level` directly. */
  async function tampered(edit: (s: { logs: KvStore; get(i: number): Promise<Uint8Array>; put(i: number, v: Uint8Array, roots?: "kept" | "recomputed"): Promise<void>; del(i: number): Promise<void> }) => Promise<void>): Promise<string> {
    const dir = mkdtempSync(join(tmpdir(), "custodia-tampered-"));
    scratch.push(dir);
    cpSync(original(), dir, { recursive: true });
    const { db, logs } = await openStore(dir);
    try {
      const original = (await rawEntries(logs)).map((b) => leafHash(b));
      await edit({
        logs,
        get: async (i) => (await storedEntries(logs)).entries.get(i)!,
        put: (i, v, roots) => editEntry(logs, original, i, v, roots),
        del: (i) => editEntry(logs, original, i, null),
      });
    } finally {
      await db.close();
    }
    return dir;
  }

  /** Opening the durable log on `dir` as a restarted gateway would: the refusal's reason, or null when it opens. */
  async function refusal(dir: string): Promise<string | null> {
    const { db, logs } = await openStore(dir);
    try {
      const log = await DurableLog.open(logs, { logId, name: "access" });
      await log.close();
      return null;
    } catch (e) {
      if (!isCustodiaError(e, "INTERNAL")) throw e;
      return String(e.details?.["reason"]);
    } finally {
      await db.close();
    }
  }

  /**
   * The hostile gateway: entries read raw from `entriesDir`; inclusion and consistency proofs from
   * the real DurableLog opened on `proofsDir` (its tree); health, signed checkpoints and the
   * latest anchored checkpoint as the real gateway served them. Refusals mirror the gateway's 4xx.
   */
  async function storageSource(entriesDir: string, proofsDir: string): Promise<AuditSource & { close(): Promise<void> }> {
    const e = await openStore(entriesDir);
    const p = proofsDir === entriesDir ? e : await openStore(proofsDir);
    const stored = await rawEntries(e.logs);
    const log = await DurableLog.open(p.logs, { logId, name: "access" });
    const refuse = (err: unknown): never => {
      throw new CustodiaError("GATEWAY_MISBEHAVED", `refused: ${err instanceof Error ? err.message : String(err)}`);
    };
    return {
      health: async () => recorded.health,
      logs: async () => ({
        ...recorded.listing,
        logs: recorded.listing!.logs.map((l: Json) => (l.name === "access" ? { ...l, size: stored.length, root: toHex0x(rootFromLeafHashes(stored.map((b) => leafHash(b)))) } : l)),
      }),
      checkpoints: async () => recorded.checkpoints,
      entries: async (_log, start, end) => {
        if (end > stored.length) refuse(new Error(`range must satisfy start < end <= ${stored.length}`));
        return { entries: stored.slice(start, end).map((b, k) => ({ index: start + k, entry: JSON.parse(new TextDecoder().decode(b)) as unknown, leafHash: toHex0x(leafHash(b)) })) };
      },
      inclusionProof: async (_log, index, size) => {
        try {
          return { index, treeSize: size, proof: log.inclusionProof(index, size) };
        } catch (err) {
          return refuse(err);
        }
      },
      consistencyProof: async (_log, from, to) => {
        try {
          return { from, to, proof: log.consistencyProof(from, to) };
        } catch (err) {
          return refuse(err);
        }
      },
      close: async () => {
        await log.close();
        await e.db.close();
        if (p !== e) await p.db.close();
      },
    };
  }

  async function audit(source: AuditSource & { close(): Promise<void> }): Promise<VerifyReport> {
    try {
      return await verifyAudit({ ledger, source, network: { chainId: CHAIN_ID, contract: g.deployment.custodia }, logs: ["access"], proofSample: 3 });
    } finally {
      await source.close();
    }
  }

  const codesOf = (r: VerifyReport): FindingCode[] => [...new Set(r.failures.map((f) => f.code))].sort();

  /** Entry i re-encoded as the log stores it, after `change`. */
  const changed = (bytes: Uint8Array, change: (e: Json) => Json): Uint8Array => canonicalBytes(change(JSON.parse(new TextDecoder().decode(bytes)) as Json));

  beforeAll(async () => {
    g = await startTestGateway({ config: { anchorEveryMs: 3_600_000, anchorEveryEntries: 1_000_000 } });
    partner = await g.partner(["profiling"], ["transactions", "behavioural", "contact"]);
    const auditor = await g.member("AUDITOR");
    const customers: Identity[] = [];
    for (let i = 0; i < 4; i++) {
      const c = await g.customer();
      await g.ingest(variedRecords(c.address!, i));
      expect((await g.grant(c, partner, "profiling", ["transactions"])).status).toBe(200);
      customers.push(c);
    }
    const q = (subjects: Identity[], purpose: string, categories: string[]) => call("POST", "/v1/data/query", partner, { subjects: subjects.map((c) => c.address), purpose, categories });
    await q(customers, "profiling", ["transactions"]);
    await q([customers[0]!], "research", ["transactions"]);
    await q([customers[1]!], "profiling", ["contact"]);
    await (g.rt.deps.anchorers.access as Anchorer).anchorNow(); // 6
    await q(customers, "profiling", ["transactions"]);
    await q([customers[2]!], "research", ["transactions"]);
    await q([customers[3]!], "profiling", ["transactions"]);
    await (g.rt.deps.anchorers.access as Anchorer).anchorNow(); // 12
    await q([customers[0]!], "profiling", ["transactions"]); // 13th entry: pending
    expect(g.rt.deps.logs.access.size).toBe(13);
    logId = logIdFor(CHAIN_ID, g.deployment.custodia, g.operator.address!, "access");
    recorded.health = await call("GET", "/health", null);
    recorded.listing = await call("GET", "/v1/audit/logs", auditor);
    recorded.checkpoints = await call("GET", "/v1/audit/logs/access/checkpoints", auditor);
    await g.rt.close();
    ledger = new EvmLedger({ provider: hardhatProvider(), address: g.deployment.custodia as Address, deployBlock: g.deployment.deployBlock });
  });

  afterAll(async () => {
    for (const d of scratch) rmSync(d, { recursive: true, force: true });
    await g?.close();
  });

  it("verifies the untouched storage through the same simulated gateway (the baseline: no finding)", async () => {
    // every record the gateway wrote names the root of the log after it
    const copy = await tampered(async (s) => {
      const stored = await storedEntries(s.logs);
      expect(stored.entries.size).toBe(13);
      expect(stored.roots.size).toBe(stored.keys.length);
      for (const [end, root] of stored.roots) expect(toHex0x(root)).toBe(toHex0x(rootFromLeafHashes([...Array(end).keys()].map((i) => leafHash(stored.entries.get(i)!)))));
    });
    expect(await refusal(copy)).toBeNull();
    const r = await audit(await storageSource(copy, original()));
    expect(r.failures).toEqual([]);
    expect(r.ok).toBe(true);
    expect(r.logs[0]).toMatchObject({ size: 13, anchors: 2, anchoredSize: 12, entriesVerified: 12, pending: 1 });
  });

  const cases: {
    name: string;
    edit: Parameters<typeof tampered>[0];
    /** Why a gateway restarted on it refuses its log; null: the log opens (the anchors catch it). */
    refusedFor: string | null;
    code: FindingCode;
    index: number;
    details?: Record<string, unknown>;
  }[] = [
    {
      name: "an entry modified",
      edit: async (s) => s.put(8, changed(await s.get(8), (e) => ({ ...e, categories: 5 }))),
      refusedFor: "log_root_mismatch",
      code: "ENTRY_MODIFIED",
      index: 8,
    },
    {
      name: "an entry deleted (the later ones moved up)",
      edit: async (s) => {
        for (let i = 8; i < 12; i++) await s.put(i, await s.get(i + 1));
        await s.del(12);
      },
      // the last record names the root of 12 entries that are not these
      refusedFor: "log_root_mismatch",
      code: "ENTRY_DELETED",
      index: 8,
    },
    {
      name: "two entries reordered",
      edit: async (s) => {
        const [a, b] = [await s.get(7), await s.get(10)];
        await s.put(7, b);
        await s.put(10, a);
      },
      refusedFor: "log_root_mismatch",
      code: "ENTRY_REORDERED",
      index: 7,
      details: { with: 10 },
    },
    {
      name: "two neighbouring entries swapped",
      edit: async (s) => {
        const [a, b] = [await s.get(8), await s.get(9)];
        await s.put(8, b);
        await s.put(9, a);
      },
      refusedFor: "log_root_mismatch",
      code: "ENTRY_REORDERED",
      index: 8,
      details: { with: 9 },
    },
    {
      name: "an entry inserted",
      edit: async (s) => {
        for (let i = 12; i >= 8; i--) await s.put(i + 1, await s.get(i));
        await s.put(8, changed(await s.get(9), (e) => ({ ...e, requestId: "inserted", categories: 5 })));
      },
      refusedFor: "log_root_mismatch",
      code: "ENTRY_INSERTED",
      index: 8,
    },
    {
      name: "the anchored tail cut off",
      edit: async (s) => {
        await s.del(12);
        await s.del(11);
      },
      // what is left is a log of 11 entries as it was: nothing local records that there were 13
      // (a log shorter than an anchor raises the anchorer's alarm: "ledger_ahead_of_log", anchorer.test.ts)
      refusedFor: null,
      code: "ENTRY_DELETED",
      index: 11,
      details: { anchored: 12, served: 11 },
    },
  ];

  for (const c of cases) {
    it(`catches ${c.name} with ${c.code}`, async () => {
      const dir = await tampered(c.edit);
      // a gateway restarted on this storage would refuse to open its log (but one case)
      expect(await refusal(dir)).toBe(c.refusedFor);
      const r = await audit(await storageSource(dir, original()));
      expect(r.ok).toBe(false);
      expect(codesOf(r)).toEqual(["ANCHOR_ROOT_MISMATCH", c.code].sort());
      const placed = r.failures.filter((f) => f.code === c.code);
      expect(placed).toHaveLength(1);
      expect(placed[0]).toMatchObject({ log: "access", index: c.index, ...(c.details ? { details: c.details } : {}) });
      // the first anchor (6 entries) still verifies; the second is where the log stops matching
      expect(r.failures.find((f) => f.code === "ANCHOR_ROOT_MISMATCH")).toMatchObject({ index: 6, details: { treeSize: 12 } });
      expect(r.logs[0]!.entriesVerified).toBe(6);
      // only the proven prefix is read for what it says
      expect(r.data.accesses.map((a) => a.index)).toEqual([0, 1, 2, 3, 4, 5]);
    });
  }

  it("catches storage rewritten consistently (entries and the roots the records name): the durable log accepts it, the ledger does not", async () => {
    const dir = await tampered(async (s) => {
      await s.put(8, changed(await s.get(8), (e) => ({ ...e, categories: 5 })), "recomputed");
    });
    expect(await refusal(dir)).toBeNull();
    // a gateway rebuilt on it serves the rewritten entries and proofs of its own, rewritten tree
    const r = await audit(await storageSource(dir, dir));
    expect(codesOf(r)).toEqual(["ANCHOR_ROOT_MISMATCH", "CONSISTENCY_PROOF_INVALID", "ENTRIES_UNLOCALISED"]);
    expect(r.failures.find((f) => f.code === "ENTRIES_UNLOCALISED")).toMatchObject({ index: 6, details: { from: 6, to: 12 } });
    expect(r.failures.find((f) => f.code === "CONSISTENCY_PROOF_INVALID")).toMatchObject({ details: { from: 6, to: 12, reason: "PROOF_ROOT_MISMATCH" } });
  });
});
