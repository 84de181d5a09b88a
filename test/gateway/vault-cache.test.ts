import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Level } from "level";
import { Wallet } from "ethers";
import type { Address } from "../../core/domain.js";
import { CachedVault } from "../../gateway/vault-cache.js";
import type { VaultPort } from "../../gateway/ports.js";
import { Vault } from "../../gateway/vault/index.js";
import { sampleRecords } from "./harness.js";

/** The read cache over the real vault: an erasure racing a read must win. */
describe("CachedVault", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-vcache-"));
  let db: Level<string, Uint8Array>;
  let vault: Vault;
  beforeAll(async () => {
    db = new Level(join(dir, "db"), { valueEncoding: "view" });
    vault = await Vault.open(db as never, { masterKey: new Uint8Array(randomBytes(32)) });
  });
  afterAll(async () => {
    await vault.close();
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("never serves data erased while a read was in flight", async () => {
    const subject = Wallet.createRandom().address as Address;
    await vault.ingest(sampleRecords(subject) as never);
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    // the real vault, with its read held back until the erasure has finished
    const slow: VaultPort = {
      ingest: (r) => vault.ingest(r as never) as never,
      erase: (s) => vault.erase(s),
      status: (s) => vault.status(s),
      subjects: () => vault.subjects(),
      commitment: (s) => vault.commitment(s),
      read: async (s) => {
        const data = await vault.read(s);
        await gate;
        return data;
      },
    };
    const cache = new CachedVault(slow);
    const racingRead = cache.read(subject);
    await cache.erase(subject);
    release();
    await racingRead; // the read that started before the erasure may complete...
    expect(await cache.status(subject)).toBe("erased"); // ...but it must not resurrect the data
    await expect(cache.read(subject)).rejects.toMatchObject({ code: "SUBJECT_ERASED" });
  });

  it("forgets a subject's cached data when it is re-ingested", async () => {
    const subject = Wallet.createRandom().address as Address;
    const cache = new CachedVault(vault as unknown as VaultPort);
    await cache.ingest(sampleRecords(subject, 1) as never);
    const first = (await cache.read(subject)) as { transactions: unknown[] };
    await cache.ingest(sampleRecords(subject, 4) as never);
    const second = (await cache.read(subject)) as { transactions: unknown[] };
    expect(first.transactions).toHaveLength(1);
    expect(second.transactions).toHaveLength(4);
  });

  it("answers synchronously only what it holds, and never the data of a subject being erased", async () => {
    const subject = Wallet.createRandom().address as Address;
    const cache = new CachedVault(vault as unknown as VaultPort);
    await cache.ingest(sampleRecords(subject, 2) as never);
    expect(cache.peek(subject)).toBeUndefined();
    expect(await cache.status(subject)).toBe("active");
    expect(cache.peek(subject)).toEqual({ status: "active" });
    const data = await cache.read(subject);
    expect(cache.peek(subject.toLowerCase() as Address)).toEqual({ status: "active", data });
    const erasing = cache.erase(subject);
    // from the moment the erasure starts, the cache holds nothing for the subject...
    expect(cache.peek(subject)).toBeUndefined();
    await erasing;
    // ...and once it is done, that the subject is erased
    expect(cache.peek(subject)).toEqual({ status: "erased" });
    await cache.ingest(sampleRecords(Wallet.createRandom().address as Address, 1) as never);
    expect(cache.peek(subject)).toEqual({ status: "erased" });
  });
});
