import type { Address } from "../core/domain.js";
import type { JsonSublevel } from "./ledger-view.js";
import type { SubjectIndexPort } from "./ports.js";

/**
 * Which log entries concern which subject, so a customer can list its own history without a scan
 * of the whole log. Derived data: the log is the record; `rebuild` restores the index from it.
 */
export class LevelSubjectIndex implements SubjectIndexPort {
  constructor(private readonly db: JsonSublevel) {}

  private static key(subject: Address, log: string, index: number): string {
    return `${subject.toLowerCase()}:${log}:${index.toString().padStart(12, "0")}`;
  }

  private pending: { type: "put"; key: string; value: number }[] = [];
  private flushing: Promise<void> | undefined;

  /**
   * Records an entry for a subject. Writes from concurrent requests are coalesced into one batch;
   * the promise resolves once the batch holding this entry is written.
   */
  add(subject: Address, log: string, index: number): Promise<void> {
    this.pending.push({ type: "put", key: LevelSubjectIndex.key(subject, log, index), value: 1 });
    this.flushing ??= Promise.resolve().then(async () => {
      const ops = this.pending;
      this.pending = [];
      this.flushing = undefined;
      await this.db.batch(ops);
    });
    return this.flushing;
  }

  /** The newest `limit` entry indexes for a subject in one log, oldest first. */
  async list(subject: Address, log: string, limit: number): Promise<number[]> {
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
