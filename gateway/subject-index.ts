import type { Address } from "../core/domain.js";
import type { JsonSublevel } from "./ledger-view.js";
import type { SubjectIndexPort } from "./ports.js";
import { batchWriter, type BatchWriter } from "./log/kv.js";

/**
 * Which log entries concern which subject, so a customer can list its own history without a scan
 * of the whole log. Derived data: the log is the record; `rebuild` restores the index from it.
 */
export class LevelSubjectIndex implements SubjectIndexPort {
  /** One record per log entry, so the cheap direct batch path (see kv.ts) matters here. */
  private readonly writeBatch: BatchWriter;

  constructor(
    private readonly db: JsonSublevel,
    private readonly onError: (e: unknown) => void = () => undefined,
  ) {
    this.writeBatch = batchWriter(db);
  }

  private static key(subject: Address, log: string, index: number): string {
    return `${subject.toLowerCase()}:${log}:${index.toString().padStart(12, "0")}`;
  }

  private pending: { type: "put"; key: string; value: string }[] = [];
  private flushing: Promise<void> | undefined;
  private scheduled = false;

  /**
   * Records an entry for a subject, off the request path: the log entry is already durable, and
   * this index is derived from it (after a crash, the runtime replays the entries past the
   * watermark). Writes are coalesced into one batch per event-loop turn; `list` and `flush` wait
   * for them, so a subject always sees its own entries.
   */
  add(subject: Address, log: string, index: number): void {
    // the value is JSON `1` (the handle is a JSON sublevel); only keys are read
    this.pending.push({ type: "put", key: LevelSubjectIndex.key(subject, log, index), value: "1" });
    if (this.scheduled) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      void this.flush().catch((e: unknown) => this.onError(e));
    });
  }

  /**
   * Writes everything added so far. A failed batch is kept and retried by the next flush; the
   * error is thrown to this caller (the runtime then leaves the watermark where it was).
   */
  async flush(): Promise<void> {
    while (this.flushing) await this.flushing.catch(() => undefined);
    if (this.pending.length === 0) return;
    const ops = this.pending;
    this.pending = [];
    this.flushing = this.writeBatch(ops, { sync: false }).catch((e: unknown) => {
      this.pending = ops.concat(this.pending);
      throw e;
    });
    try {
      await this.flushing;
    } finally {
      this.flushing = undefined;
    }
  }

  /** The newest `limit` entry indexes for a subject in one log, oldest first. */
  async list(subject: Address, log: string, limit: number): Promise<number[]> {
    await this.flush();
    const prefix = `${subject.toLowerCase()}:${log}:`;
    const out: number[] = [];
    for await (const key of this.db.keys({ gte: prefix, lt: `${prefix}~`, reverse: true, limit })) out.push(Number(key.slice(prefix.length)));
    return out.reverse();
  }

  /** Log size up to which the index is known complete (written at startup and clean shutdown). */
  async watermark(log: string): Promise<number> {
    return ((await this.db.get(`~watermark:${log}`)) as number | undefined) ?? 0;
  }

  async setWatermark(log: string, size: number): Promise<void> {
    await this.db.put(`~watermark:${log}`, size);
  }

  /**
   * Re-derives the index from log entries (puts are idempotent). After a crash between an append
   * and its index write, the runtime replays the entries past the watermark through this.
   */
  async rebuild(log: string, entries: Iterable<{ index: number; entry: unknown }>): Promise<number> {
    const ops: { type: "put"; key: string; value: number }[] = [];
    for (const { index, entry } of entries) {
      const subject = (entry as { subject?: unknown }).subject;
      if (typeof subject === "string" && /^0x[0-9a-fA-F]{40}$/.test(subject)) {
        ops.push({ type: "put", key: LevelSubjectIndex.key(subject as Address, log, index), value: 1 });
      }
    }
    if (ops.length) await this.db.batch(ops);
    return ops.length;
  }
}
