/** Shared fixtures of the gateway log tests: real LevelDB databases in temp dirs, failure injection. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Level } from "level";
import { expect } from "vitest";
import type { Bytes32 } from "../../../core/domain.js";
import { CustodiaError, type ErrorCode } from "../../../core/errors.js";
import { randomBytes } from "node:crypto";
import type { KvBatchOp, KvBatchOptions, KvStore } from "../../../gateway/log/kv.js";

export interface TempDb {
  dir: string;
  db: Level<string, Uint8Array>;
  /** Closes the database (if open) and deletes the directory. */
  dispose(): Promise<void>;
}

export async function tempDb(prefix = "custodia-log-"): Promise<TempDb> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const db = new Level<string, Uint8Array>(dir, { valueEncoding: "view" });
  await db.open();
  return {
    dir,
    db,
    dispose: async () => {
      if (db.status === "open") await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function randomLogId(): Bytes32 {
  return `0x${randomBytes(32).toString("hex")}`;
}

/**
 * Wraps a store: counts batch writes and can make the next batch(es) fail — before writing
 * (`failNext`), or after writing (`applyThenFail`: LevelDB applied it but the caller saw an error).
 */
export class InstrumentedStore implements KvStore {
  batches = 0;
  failed = 0;
  private fail: Array<"before" | "after"> = [];
  delayMs = 0;

  constructor(private readonly inner: KvStore) {}

  failNext(mode: "before" | "after" = "before"): void {
    this.fail.push(mode);
  }

  /** Point reads (`get`) so far. */
  gets = 0;

  get(key: string, options: { keyEncoding: "utf8"; valueEncoding: "view" }): Promise<Uint8Array | undefined> {
    this.gets++;
    return this.inner.get(key, options);
  }

  /** Iterators opened so far (range reads, and the log's seeks for the record holding an index). */
  iterators = 0;

  iterator(options: Parameters<KvStore["iterator"]>[0]): ReturnType<KvStore["iterator"]> {
    this.iterators++;
    return this.inner.iterator(options);
  }

  async batch(operations: KvBatchOp[], options: KvBatchOptions): Promise<void> {
    this.batches++;
    const mode = this.fail.shift();
    if (this.delayMs > 0) await new Promise((r) => setTimeout(r, this.delayMs));
    if (mode === "before") {
      this.failed++;
      throw new Error("injected write failure");
    }
    await this.inner.batch(operations, options);
    if (mode === "after") {
      this.failed++;
      throw new Error("injected failure after the write was applied");
    }
  }
}

export async function expectCode(p: Promise<unknown> | (() => unknown), code: ErrorCode, reason?: string): Promise<CustodiaError> {
  let caught: unknown;
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a CustodiaError ${code}, but the call succeeded`).toBeInstanceOf(CustodiaError);
  const err = caught as CustodiaError;
  expect(err.code).toBe(code);
  if (reason !== undefined) expect(err.details?.["reason"]).toBe(reason);
  return err;
}
