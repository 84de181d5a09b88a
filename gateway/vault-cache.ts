import type { Address, Bytes32 } from "../core/domain.js";
import type { VaultPort } from "./ports.js";

/**
 * A bounded in-memory cache in front of the vault for the read path (status and decrypted
 * records), so a hot subject is not re-read, re-unwrapped and re-decrypted on every request.
 * Coherent because this gateway is the vault's only writer: ingest and erasure evict the subject
 * before they return, so an erased subject is never served from the cache.
 */
export class CachedVault implements VaultPort {
  private readonly entries = new Map<string, { status: "active" | "erased" | "unknown"; data?: unknown }>();

  constructor(
    private readonly inner: VaultPort,
    private readonly maxSubjects = 10_000,
  ) {}

  async ingest(records: never[]): Promise<{ subjects: { subject: Address; records: number; commitment: Bytes32 }[] }> {
    try {
      return await this.inner.ingest(records);
    } finally {
      // evict everything the batch may have touched, whether it landed or not
      for (const r of records as { subject?: string }[]) if (typeof r?.subject === "string") this.entries.delete(r.subject.toLowerCase());
    }
  }

  async erase(subject: Address): Promise<{ commitment: Bytes32 | null; erasedAt: number }> {
    this.entries.delete(subject.toLowerCase());
    try {
      return await this.inner.erase(subject);
    } finally {
      this.entries.delete(subject.toLowerCase());
    }
  }

  subjects(): AsyncIterable<Address> {
    return this.inner.subjects();
  }

  async status(subject: Address): Promise<"active" | "erased" | "unknown"> {
    const hit = this.entries.get(subject.toLowerCase());
    if (hit) return hit.status;
    const status = await this.inner.status(subject);
    this.put(subject, { status });
    return status;
  }

  async read(subject: Address): Promise<unknown> {
    const key = subject.toLowerCase();
    const hit = this.entries.get(key);
    if (hit?.data !== undefined) return hit.data;
    const data = await this.inner.read(subject);
    this.put(subject, { status: "active", data });
    return data;
  }

  private put(subject: Address, value: { status: "active" | "erased" | "unknown"; data?: unknown }): void {
    const key = subject.toLowerCase();
    this.entries.delete(key);
    if (this.entries.size >= this.maxSubjects) {
      const oldest = this.entries.keys().next();
      if (!oldest.done) this.entries.delete(oldest.value);
    }
    this.entries.set(key, value);
  }
}
