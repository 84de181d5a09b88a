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
  /**
   * Bumped by every write for a subject. A read that started before a write must not put what it
   * read into the cache afterwards (an erasure racing a read would otherwise be undone).
   */
  private readonly generation = new Map<string, number>();

  private bump(key: string): void {
    this.generation.set(key, (this.generation.get(key) ?? 0) + 1);
    this.entries.delete(key);
  }

  constructor(
    private readonly inner: VaultPort,
    private readonly maxSubjects = 10_000,
  ) {}

  async ingest(records: never[]): Promise<{ subjects: { subject: Address; records: number; commitment: Bytes32 }[] }> {
    const touched = new Set<string>();
    for (const r of records as { subject?: string }[]) if (typeof r?.subject === "string") touched.add(r.subject.toLowerCase());
    for (const k of touched) this.bump(k);
    try {
      return await this.inner.ingest(records);
    } finally {
      // evict everything the batch may have touched, whether it landed or not
      for (const k of touched) this.bump(k);
    }
  }

  async erase(subject: Address): Promise<{ commitment: Bytes32 | null; erasedAt: number }> {
    const key = subject.toLowerCase();
    this.bump(key);
    try {
      const result = await this.inner.erase(subject);
      this.bump(key);
      this.entries.set(key, { status: "erased" });
      return result;
    } catch (e) {
      this.bump(key);
      throw e;
    }
  }

  subjects(): AsyncIterable<Address> {
    return this.inner.subjects();
  }

  /** Not cached: asked rarely, and always current. */
  commitment(subject: Address): Promise<{ commitment: Bytes32; records: number; committedAt: number } | null> {
    return this.inner.commitment(subject);
  }

  /**
   * What the cache holds for a subject, synchronously (the hot path of a data request): its
   * status and, once read, its records; undefined when not cached (ask status() and read()).
   */
  peek(subject: Address): Readonly<{ status: "active" | "erased" | "unknown"; data?: unknown }> | undefined {
    return this.entries.get(subject.toLowerCase());
  }

  async status(subject: Address): Promise<"active" | "erased" | "unknown"> {
    const key = subject.toLowerCase();
    const hit = this.entries.get(key);
    if (hit) return hit.status;
    const before = this.generation.get(key) ?? 0;
    const status = await this.inner.status(subject);
    if ((this.generation.get(key) ?? 0) === before) this.put(subject, { status });
    return status;
  }

  async read(subject: Address): Promise<unknown> {
    const key = subject.toLowerCase();
    const hit = this.entries.get(key);
    if (hit?.data !== undefined) return hit.data;
    const before = this.generation.get(key) ?? 0;
    const data = await this.inner.read(subject);
    if ((this.generation.get(key) ?? 0) === before) this.put(subject, { status: "active", data });
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
