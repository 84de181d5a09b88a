import type { Address } from "../core/domain.js";
import type { JsonSublevel } from "./ledger-view.js";
import type { SubjectIndexPort } from "./ports.js";
import type { SidecarPut } from "./log/kv.js";

/**
 * Which log entries concern which subject, so a customer can list its own history without a scan
 * of the whole log. Derived data: the log is the record; `rebuild` restores the index from it.
 * Readers check each entry's subject (see DurableLog's note on sidecar records).
 */
export class LevelSubjectIndex implements SubjectIndexPort {
  constructor(private readonly db: JsonSublevel) {}

  private static prefix(subject: Address, log: string): string {
    return `${subject.toLowerCase()}:${log}:`;
  }

  /** Keys sort by index within a subject's log: 12 digits, zero-padded. */
  private static key(prefix: string, index: number): string {
    return prefix + index.toString().padStart(12, "0");
  }

  /**
   * The index record of one log entry about `subject`, as a sidecar for DurableLog.append: it is
   * written in the entry's own batch once the entry's index is known, so the index is complete
   * whenever the log is. (The value is JSON `1`: the handle is a JSON sublevel; only keys are read.)
   */
  recordOf(subject: Address, log: string): (index: number) => SidecarPut[] {
    const prefix = LevelSubjectIndex.prefix(subject, log);
    return (index) => [{ sublevel: this.db, key: LevelSubjectIndex.key(prefix, index), value: "1" }];
  }

  /** The newest `limit` entry indexes for a subject in one log, oldest first. */
  async list(subject: Address, log: string, limit: number): Promise<number[]> {
    const prefix = LevelSubjectIndex.prefix(subject, log);
    const out: number[] = [];
    for await (const key of this.db.keys({ gte: prefix, lt: `${prefix}~`, reverse: true, limit })) out.push(Number(key.slice(prefix.length)));
    return out.reverse();
  }

  /**
   * Log size up to which the index is known complete (written at startup and clean shutdown). Logs
   * written before index records travelled with their entries may have a tail to replay.
   */
  async watermark(log: string): Promise<number> {
    return ((await this.db.get(`~watermark:${log}`)) as number | undefined) ?? 0;
  }

  async setWatermark(log: string, size: number): Promise<void> {
    await this.db.put(`~watermark:${log}`, size);
  }

  /** Re-derives the index from log entries (puts are idempotent): the replay past the watermark. */
  async rebuild(log: string, entries: Iterable<{ index: number; entry: unknown }>): Promise<number> {
    const ops: { type: "put"; key: string; value: number }[] = [];
    for (const { index, entry } of entries) {
      const subject = (entry as { subject?: unknown }).subject;
      if (typeof subject === "string" && /^0x[0-9a-fA-F]{40}$/.test(subject)) {
        ops.push({ type: "put", key: LevelSubjectIndex.key(LevelSubjectIndex.prefix(subject as Address, log), index), value: 1 });
      }
    }
    if (ops.length) await this.db.batch(ops);
    return ops.length;
  }
}
