import type { Address } from "../core/domain.js";
import type { JsonSublevel } from "./ledger-view.js";

/**
 * Per-subject explanations of segmentation decisions. They hold the subject's feature values, so
 * they live beside the vault (erased with it), while the decisions log, which auditors read,
 * holds only their hash.
 */
export class ExplanationStore {
  constructor(private readonly db: JsonSublevel) {}

  private static prefix(subject: Address): string {
    return `${subject.toLowerCase()}:`;
  }

  async putMany(items: { subject: Address; runId: string; explanation: unknown }[]): Promise<void> {
    if (items.length) await this.db.batch(items.map((i) => ({ type: "put" as const, key: `${ExplanationStore.prefix(i.subject)}${i.runId}`, value: i.explanation })));
  }

  async get(subject: Address, runId: string): Promise<unknown> {
    return this.db.get(`${ExplanationStore.prefix(subject)}${runId}`);
  }

  async eraseSubject(subject: Address): Promise<number> {
    const p = ExplanationStore.prefix(subject);
    const keys: string[] = [];
    for await (const k of this.db.keys({ gte: p, lt: `${p}~` })) keys.push(k);
    if (keys.length) await this.db.batch(keys.map((key) => ({ type: "del" as const, key })));
    return keys.length;
  }
}
