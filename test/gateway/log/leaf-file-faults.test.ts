/**
 * A leaf file on a failing disk: writes and reads of node:fs fail on demand (ENOSPC, EIO), the
 * only double here — a full disk cannot be made on this machine without privileges.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { hashFromHex, proofFromHex, verifyInclusion } from "../../../core/merkle.js";
import { DurableLog } from "../../../gateway/log/durable-log.js";
import { FileLeafStore } from "../../../gateway/log/leaf-file.js";
import { InstrumentedStore, expectCode, randomLogId, tempDb, type TempDb } from "./helpers.js";

const faults = vi.hoisted(() => ({ write: false, read: false }));
vi.mock("node:fs", async (importOriginal) => {
  const fs = await importOriginal<typeof import("node:fs")>();
  const fail = (code: string): never => {
    throw Object.assign(new Error(`${code}: injected by the test`), { code });
  };
  return {
    ...fs,
    writeSync: ((...args: Parameters<typeof fs.writeSync>) => (faults.write ? fail("ENOSPC") : fs.writeSync(...args))) as typeof fs.writeSync,
    readSync: ((...args: Parameters<typeof fs.readSync>) => (faults.read ? fail("EIO") : fs.readSync(...args))) as typeof fs.readSync,
  };
});

const dir = mkdtempSync(join(tmpdir(), "custodia-leaf-faults-"));
const dbs: TempDb[] = [];
afterAll(() => rmSync(dir, { recursive: true, force: true }));
afterEach(async () => {
  faults.write = false;
  faults.read = false;
  while (dbs.length > 0) await dbs.pop()!.dispose();
});
let files = 0;
const path = (): string => join(dir, `leaves-${files++}`);
const leaf = (): Uint8Array => new Uint8Array(randomBytes(32));

async function verified(log: DurableLog, index: number, leafHash: string): Promise<void> {
  verifyInclusion(index, log.size, hashFromHex(leafHash), proofFromHex(log.inclusionProof(index)), hashFromHex(log.root()));
}

describe("a leaf file on a failing disk", () => {
  it("FileLeafStore: an append whose write fails changes nothing, and the next one after the disk recovers goes on", () => {
    const s = FileLeafStore.create(path(), 2);
    const ls = [leaf(), leaf(), leaf()];
    s.append(ls[0]!);
    s.append(ls[1]!);
    faults.write = true;
    expect(() => s.append(ls[2]!)).toThrow("ENOSPC");
    expect(s.length).toBe(2);
    faults.write = false;
    s.append(ls[2]!);
    const into = new Uint8Array(96);
    s.read(0, 3, into);
    expect(Buffer.from(into).equals(Buffer.concat(ls))).toBe(true);
    s.close();
  });

  it("DurableLog: a batch whose leaves the file cannot take is refused as a failed write; nothing hangs; the log goes on and reopens whole", async () => {
    const t = await tempDb();
    dbs.push(t);
    const logId = randomLogId();
    const opts = { logId, name: "full", leafFile: path(), maxBatch: 100 };
    const log = await DurableLog.open(t.db, opts);
    // 2,048 leaves fill the file's buffer; the write of it comes with the next append
    const first = await Promise.all(Array.from({ length: 2048 }, (_, i) => log.append({ i })));
    faults.write = true;
    const refused = await Promise.allSettled(Array.from({ length: 30 }, (_, i) => log.append({ refused: i })));
    expect(refused.every((r) => r.status === "rejected" && (r.reason as { details?: { reason?: string } }).details?.reason === "log_write_failed")).toBe(true);
    expect(log.size).toBe(2048);
    faults.write = false;
    const later = await Promise.all(Array.from({ length: 60 }, (_, i) => log.append({ later: i })));
    expect(later.map((r) => r.index)).toEqual(Array.from({ length: 60 }, (_, i) => 2048 + i));
    for (const r of [first[0]!, first[2047]!, later[0]!, later[59]!]) await verified(log, r.index, r.leafHash);
    const root = log.root();
    await log.close();
    const again = await DurableLog.open(t.db, { ...opts, leafFile: path() });
    expect(again.size).toBe(2108);
    expect(again.root()).toBe(root);
    await again.close();
  });

  it("DurableLog: a failed write it cannot roll back (the leaf file unreadable too) makes the log refuse appends until it is opened again", async () => {
    const t = await tempDb();
    dbs.push(t);
    const store = new InstrumentedStore(t.db);
    const logId = randomLogId();
    const opts = { logId, name: "broken", leafFile: path(), maxBatch: 100 };
    const log = await DurableLog.open(store, opts);
    await Promise.all(Array.from({ length: 2040 }, (_, i) => log.append({ i })));
    // the next batch crosses the buffer's write (leaves 0..2047 go to the file); its store write
    // fails, and rolling back to 2,040 must read the block of 64 from 1,984 out of the file
    store.failNext("before");
    faults.read = true;
    const batch = await Promise.allSettled(Array.from({ length: 20 }, (_, i) => log.append({ crossing: i })));
    expect(batch.every((r) => r.status === "rejected")).toBe(true);
    faults.read = false;
    await expectCode(log.append({ after: true }), "INTERNAL", "log_unusable");
    expect(log.size).toBe(2040);
    await log.close();
    const again = await DurableLog.open(t.db, { ...opts, leafFile: path() });
    expect(again.size).toBe(2040);
    const r = await again.append({ after: "reopen" });
    expect(r.index).toBe(2040);
    await verified(again, r.index, r.leafHash);
    await again.close();
  });
});
