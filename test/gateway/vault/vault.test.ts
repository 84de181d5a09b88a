import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { randomBytes as nodeRandomBytes } from "node:crypto";
import type { Level } from "level";
import type { Address } from "../../../core/domain.js";
import {
  Vault,
  dataCommitment,
  parseCsvRecords,
  parseJsonRecords,
  recordFields,
  recordsRoot,
  TRANSACTION_FIELDS,
  type VaultOptions,
  type VaultRecord,
} from "../../../gateway/vault/index.js";
import { MASTER_KEY, OTHER_KEY, diskBytes, profile, rawEntries, rejectsWith, subjectAddress, tempLevel, tx } from "./helpers.js";

const A = subjectAddress(1);
const B = subjectAddress(2);
const C = subjectAddress(3);

let env: Awaited<ReturnType<typeof tempLevel>>;
let clock: number;
const now = (): number => clock;

beforeEach(async () => {
  env = await tempLevel();
  clock = 1_800_000_000;
});
afterEach(async () => {
  await env.cleanup();
});

function open(opts: Partial<VaultOptions> = {}, name = "vault"): Promise<Vault> {
  return Vault.open(env.db.sublevel(name), { masterKey: MASTER_KEY, now, ...opts });
}

const hexOf = (a: Address): string => a.slice(2).toLowerCase();

/** Raw entries of one of the vault's sublevels whose key mentions the subject. */
async function rawOf(db: Level<string, string>, sub: "rec" | "dek" | "state" | "tomb", subject: Address): Promise<[Buffer, Buffer][]> {
  return (await rawEntries(db)).filter(([k]) => k.toString().includes(`!${sub}!`) && k.toString().includes(hexOf(subject)));
}

async function putRaw(db: Level<string, string>, key: Buffer, value: Buffer): Promise<void> {
  await db.put<Buffer, Buffer>(key, value, { keyEncoding: "buffer", valueEncoding: "buffer" });
}

async function delRaw(db: Level<string, string>, key: Buffer): Promise<void> {
  await db.del<Buffer>(key, { keyEncoding: "buffer" });
}

const sampleA: VaultRecord[] = [profile(A), tx(A, "t-001"), tx(A, "t-002", { amount: 987.65, channel: "online", category: "Electronics" })];
const sampleB: VaultRecord[] = [tx(B, "b-1", { currency: "USD" })];

describe("Vault: ingest and read", () => {
  it("round-trips JSON and CSV uploads per subject", async () => {
    const v = await open();
    const fromJson = parseJsonRecords(JSON.stringify([...sampleA, ...sampleB]));
    const summary = await v.ingest(fromJson);
    expect(summary.subjects.map((s) => [s.subject, s.records, s.changed])).toEqual([
      [A, 3, 3],
      [B, 1, 1],
    ]);
    expect(summary.subjects.every((s) => /^0x[0-9a-f]{64}$/.test(s.commitment))).toBe(true);

    expect(await v.read(A)).toEqual({
      subject: A,
      profile: recordFields(profile(A)),
      transactions: [recordFields(tx(A, "t-001")), recordFields(sampleA[2] as ReturnType<typeof tx>)],
    });
    expect(await v.read(B.toLowerCase())).toEqual({ subject: B, profile: null, transactions: [recordFields(tx(B, "b-1", { currency: "USD" }))] });

    const csv = [TRANSACTION_FIELDS.join(","), `${C},"c,1",1700000000,1.25,EUR,"multi\nline ""quoted""",app`].join("\r\n");
    await v.ingest(parseCsvRecords(csv));
    expect((await v.read(C)).transactions).toEqual([
      { id: "c,1", at: 1_700_000_000, amount: 1.25, currency: "EUR", category: 'multi\nline "quoted"', channel: "app" },
    ]);
  });

  it("upserts by (kind, id): changed records replace, new ones add, the profile is replaced whole", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const r = await v.ingest([
      tx(A, "t-001", { amount: 1 }), // changed
      tx(A, "t-002", { amount: 987.65, channel: "online", category: "Electronics" }), // unchanged
      tx(A, "t-003"), // new
      { kind: "profile", subject: A, email: "new@mail.test" }, // replaces the whole profile
    ]);
    expect(r.subjects).toEqual([expect.objectContaining({ subject: A, records: 4, changed: 3 })]);
    const data = await v.read(A);
    expect(data.profile).toEqual({ email: "new@mail.test" });
    expect(data.transactions.map((t) => [t.id, t.amount])).toEqual([
      ["t-001", 1],
      ["t-002", 987.65],
      ["t-003", 42.5],
    ]);
  });

  it("lists active subjects in address order and reports status", async () => {
    const v = await open();
    await v.ingest([tx(C, "1"), tx(A, "1"), tx(B, "1")]);
    const listed: Address[] = [];
    for await (const s of v.subjects()) listed.push(s);
    expect(listed).toEqual([A, B, C].sort((x, y) => (x.toLowerCase() < y.toLowerCase() ? -1 : 1)));
    expect(await v.status(A)).toBe("active");
    expect(await v.status(subjectAddress(99))).toBe("unknown");
  });

  it("answers NOT_FOUND for unknown subjects and INVALID_ADDRESS for malformed ones", async () => {
    const v = await open();
    expect((await rejectsWith(v.read(subjectAddress(99)))).code).toBe("NOT_FOUND");
    expect(await v.commitment(subjectAddress(99))).toBeNull();
    expect((await rejectsWith(v.read("0xnope"))).code).toBe("INVALID_ADDRESS");
    expect((await rejectsWith(v.status("bob"))).code).toBe("INVALID_ADDRESS");
  });

  it("stores nothing when any record of a batch is invalid", async () => {
    const v = await open();
    await v.ingest(sampleB);
    const before = await rawEntries(env.db);
    const e = await rejectsWith(v.ingest([...sampleA, tx(C, "x", { amount: -1 })] as VaultRecord[]));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details).toMatchObject({ reason: "out_of_range", index: 3, field: "amount" });
    expect(await rawEntries(env.db)).toEqual(before);
    expect(await v.status(A)).toBe("unknown");
    const dup = await rejectsWith(v.ingest([tx(A, "1"), tx(A, "1")]));
    expect(dup.details).toMatchObject({ reason: "duplicate_record", index: 1 });
    expect(await v.ingest([])).toEqual({ subjects: [] });
    const small = await open({ maxBatchRecords: 2 }, "small");
    expect((await rejectsWith(small.ingest([tx(A, "1"), tx(A, "2"), tx(A, "3")]))).details).toMatchObject({ reason: "too_many_rows" });
  });

  it("serialises concurrent ingests without losing records", async () => {
    const v = await open();
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => v.ingest([tx(A, `p-${i}`), tx(B, `p-${i}`)])));
    expect(results.map((r) => r.subjects[0]!.records).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
    expect((await v.read(A)).transactions).toHaveLength(8);
    expect((await v.commitment(A))!.commitment).toBe(results.find((r) => r.subjects[0]!.records === 8)!.subjects[0]!.commitment);
  });

  it("refuses use after close and keeps other data in the database untouched", async () => {
    await env.db.put("unrelated", "value");
    const v = await open();
    await v.ingest(sampleA);
    await v.close();
    expect((await rejectsWith(v.read(A))).code).toBe("INTERNAL");
    expect((await rejectsWith(v.ingest(sampleA))).message).toMatch(/closed/);
    expect(await env.db.get("unrelated")).toBe("value");
    const again = await open();
    expect((await again.read(A)).transactions).toHaveLength(2);
  });

  it("rejects a master key that is not 32 bytes", async () => {
    expect((await rejectsWith(open({ masterKey: new Uint8Array(16) }))).code).toBe("INVALID_ARGUMENT");
  });
});

describe("Vault: encryption at rest", () => {
  const secrets = ["alice.example@mail.test", "+447700900123", "54321.75", "987.65", "Electronics", "GB-LND", "t-002", "female"];

  it("no personal value appears in any LevelDB key or value, nor in the files on disk", async () => {
    const v = await open();
    await v.ingest(sampleA);
    await v.read(A); // the data is really there
    const raw = await rawEntries(env.db);
    expect(raw.length).toBeGreaterThan(0);
    for (const [k, val] of raw) {
      for (const s of secrets) {
        expect(k.includes(s), `key contains ${s}`).toBe(false);
        expect(val.includes(s), `value contains ${s}`).toBe(false);
      }
    }
    await env.db.close(); // flush everything to the files
    const disk = diskBytes(env.dir);
    for (const s of secrets) expect(disk.includes(s), `disk contains ${s}`).toBe(false);
  });

  it("encrypts each write under a fresh IV: identical records give different ciphertexts", async () => {
    const v = await open();
    await v.ingest([tx(A, "same"), tx(B, "same")]);
    const [ra] = await rawOf(env.db, "rec", A);
    const [rb] = await rawOf(env.db, "rec", B);
    expect(ra![1].equals(rb![1])).toBe(false);
    expect(ra![0].toString().endsWith("same")).toBe(false); // ids are not in keys either
  });
});

describe("Vault: tampering", () => {
  async function tamperedCode(mutate: () => Promise<void>, subject: Address = A): Promise<[string, unknown]> {
    await mutate();
    const v = await open();
    const e = await rejectsWith(v.read(subject));
    return [e.code, e.details?.what];
  }

  it("a flipped byte in a record ciphertext → DATA_TAMPERED, and ingest for the subject is refused", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const [k, val] = (await rawOf(env.db, "rec", A))[1]!;
    val[val.length - 1]! ^= 0x01;
    await putRaw(env.db, k, val);
    const e = await rejectsWith(v.read(A));
    expect(e.code).toBe("DATA_TAMPERED");
    expect(e.details).toMatchObject({ what: "record", reason: "authentication_failed" });
    const before = await rawEntries(env.db);
    expect((await rejectsWith(v.ingest([tx(A, "new")]))).code).toBe("DATA_TAMPERED");
    expect(await rawEntries(env.db)).toEqual(before);
  });

  it("a flipped byte in the IV, tag or wrapped data key, or a truncated blob → DATA_TAMPERED", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const [rk, rv] = (await rawOf(env.db, "rec", A))[0]!;
    for (const offset of [1, 13, 29]) {
      const copy = Buffer.from(rv);
      copy[offset]! ^= 0x80;
      await putRaw(env.db, rk, copy);
      expect((await rejectsWith(v.read(A))).code).toBe("DATA_TAMPERED");
    }
    await putRaw(env.db, rk, rv.subarray(0, 10));
    expect((await rejectsWith(v.read(A))).details).toMatchObject({ reason: "malformed" });
    await putRaw(env.db, rk, rv);
    await v.read(A); // restored

    const [dk, dv] = (await rawOf(env.db, "dek", A))[0]!;
    const bad = Buffer.from(dv);
    bad[bad.length - 1]! ^= 0x01;
    await putRaw(env.db, dk, bad);
    expect(await tamperedCode(async () => undefined)).toEqual(["DATA_TAMPERED", "data key"]);
  });

  it("ciphertexts moved between records or subjects, deleted records and a missing state → DATA_TAMPERED", async () => {
    const v = await open();
    await v.ingest([...sampleA, ...sampleB]);
    const recs = await rawOf(env.db, "rec", A);
    const [k0, v0] = recs[0]!;
    const [k1, v1] = recs[1]!;
    // swap two records of the same subject
    await putRaw(env.db, k0, v1);
    await putRaw(env.db, k1, v0);
    expect((await rejectsWith(v.read(A))).code).toBe("DATA_TAMPERED");
    await putRaw(env.db, k0, v0);
    await putRaw(env.db, k1, v1);
    // B's ciphertext copied under A's slot
    const [, vb] = (await rawOf(env.db, "rec", B))[0]!;
    await putRaw(env.db, k0, vb);
    expect((await rejectsWith(v.read(A))).code).toBe("DATA_TAMPERED");
    await putRaw(env.db, k0, v0);
    expect((await v.read(A)).transactions).toHaveLength(2);
    // a deleted record is noticed through the records root
    await delRaw(env.db, k1);
    expect((await rejectsWith(v.read(A))).details).toMatchObject({ what: "records", reason: "records_root_mismatch" });
    await putRaw(env.db, k1, v1);
    // the subject's wrapped key swapped for another subject's
    const [dkA, dvA] = (await rawOf(env.db, "dek", A))[0]!;
    const [, dvB] = (await rawOf(env.db, "dek", B))[0]!;
    await putRaw(env.db, dkA, dvB);
    expect((await rejectsWith(v.read(A))).details).toMatchObject({ what: "data key" });
    await putRaw(env.db, dkA, dvA);
    // state removed
    const [sk] = (await rawOf(env.db, "state", A))[0]!;
    await delRaw(env.db, sk);
    expect((await rejectsWith(v.read(A))).details).toMatchObject({ what: "state", reason: "missing" });
  });

  it("a wrong master key is refused at open; without the key check, every read fails authentication", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const e = await rejectsWith(open({ masterKey: OTHER_KEY }));
    expect(e.code).toBe("DATA_TAMPERED");
    expect(e.details).toMatchObject({ what: "master key", reason: "master_key_mismatch" });
    // remove the key check: the wrapped data key itself still refuses the wrong master key
    for (const [k] of (await rawEntries(env.db)).filter(([key]) => key.toString().includes("!meta!"))) await delRaw(env.db, k);
    const wrong = await open({ masterKey: OTHER_KEY });
    const r = await rejectsWith(wrong.read(A));
    expect(r.code).toBe("DATA_TAMPERED");
    expect(r.details).toMatchObject({ what: "data key", reason: "authentication_failed" });
    expect((await rejectsWith(wrong.commitment(A))).code).toBe("DATA_TAMPERED");
  });
});

describe("Vault: erasure", () => {
  it("crypto-shreds: key, state and records go in one batch, a PII-free tombstone stays, reads throw SUBJECT_ERASED", async () => {
    const v = await open();
    const { subjects } = await v.ingest([...sampleA, ...sampleB]);
    const commitmentA = subjects.find((s) => s.subject === A)!.commitment;
    expect((await rawOf(env.db, "rec", A)).length).toBe(3);

    clock += 60;
    const receipt = await v.erase(A);
    expect(receipt).toEqual({ commitment: commitmentA, erasedAt: clock });

    const left = (await rawEntries(env.db)).filter(([k]) => k.toString().includes(hexOf(A)));
    expect(left.map(([k]) => k.toString())).toEqual([expect.stringContaining("!tomb!")]);
    expect(JSON.parse(left[0]![1].toString())).toEqual({ erasedAt: clock, commitment: commitmentA });

    const e = await rejectsWith(v.read(A));
    expect(e.code).toBe("SUBJECT_ERASED");
    expect(e.details).toMatchObject({ subject: A, erasedAt: clock, commitment: commitmentA });
    expect((await rejectsWith(v.commitment(A))).code).toBe("SUBJECT_ERASED");
    expect(await v.status(A)).toBe("erased");
    const listed: Address[] = [];
    for await (const s of v.subjects()) listed.push(s);
    expect(listed).toEqual([B]);
    // the other subject is untouched
    expect((await v.read(B)).transactions).toHaveLength(1);
  });

  it("is idempotent, and refuses any later ingest for the erased subject (whole batch)", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const first = await v.erase(A);
    clock += 1000;
    expect(await v.erase(A)).toEqual(first);
    const e = await rejectsWith(v.ingest([tx(C, "c1"), tx(A, "again")]));
    expect(e.code).toBe("SUBJECT_ERASED");
    expect(e.details).toMatchObject({ subjects: [A], count: 1 });
    expect(await v.status(C)).toBe("unknown"); // nothing of the batch was stored
  });

  it("erasing an unknown subject leaves a tombstone with a null commitment", async () => {
    const v = await open();
    const D = subjectAddress(4);
    expect(await v.erase(D)).toEqual({ commitment: null, erasedAt: clock });
    expect(await v.status(D)).toBe("erased");
    expect((await rejectsWith(v.ingest([tx(D, "1")]))).code).toBe("SUBJECT_ERASED");
  });

  it("erases even when the subject's data was tampered with", async () => {
    const v = await open();
    await v.ingest(sampleA);
    const [sk, sv] = (await rawOf(env.db, "state", A))[0]!;
    sv[sv.length - 1]! ^= 1;
    await putRaw(env.db, sk, sv);
    expect(await v.erase(A)).toEqual({ commitment: null, erasedAt: clock });
    expect((await rawEntries(env.db)).filter(([k]) => k.toString().includes(hexOf(A)))).toHaveLength(1);
  });

  it.each([
    ["still in the log", false],
    ["already in a table (reopened)", true],
  ])("compacts the erased ranges so the wrapped key and ciphertexts leave the LevelDB files (data %s)", async (_, reopen) => {
    let v = await open();
    await v.ingest([...sampleA, ...sampleB]);
    const wrappedA = (await rawOf(env.db, "dek", A))[0]![1];
    const cipherA = (await rawOf(env.db, "rec", A)).map(([, val]) => val);
    const wrappedB = (await rawOf(env.db, "dek", B))[0]![1];
    expect(diskBytes(env.dir).includes(wrappedA)).toBe(true);
    if (reopen) {
      await v.close();
      await env.db.close();
      await env.db.open();
      v = await open();
      await v.ingest([tx(C, "later")]);
    }
    await v.erase(A);
    const disk = diskBytes(env.dir);
    expect(disk.includes(wrappedA)).toBe(false);
    for (const c of cipherA) expect(disk.includes(c)).toBe(false);
    expect(disk.includes(wrappedB)).toBe(true);
    expect((await v.read(B)).transactions).toHaveLength(1);
  });
});

describe("Vault: commitments", () => {
  /** Deterministic randomness that records every 32-byte draw (data keys and salts). */
  function seeded(seed: number): { randomBytes: (n: number) => Uint8Array; draws32: Uint8Array[] } {
    let counter = seed * 1_000_003;
    const draws32: Uint8Array[] = [];
    return {
      draws32,
      randomBytes: (n) => {
        const out = new Uint8Array(n);
        for (let i = 0; i < n; i++) out[i] = (Math.imul(++counter, 2654435761) >>> 24) & 0xff;
        if (n === 32) draws32.push(out.slice());
        return out;
      },
    };
  }

  it("is SHA-256 over {subject, salt, recordsRoot}: recomputable from the salt and the records", async () => {
    const rnd = seeded(1);
    const v = await open({ randomBytes: rnd.randomBytes });
    const { subjects } = await v.ingest(sampleA);
    const [, salt] = rnd.draws32; // first the data key, then the salt
    expect(subjects[0]!.commitment).toBe(dataCommitment(A, salt!, recordsRoot(sampleA)));
    expect(await v.commitment(A)).toEqual({ commitment: subjects[0]!.commitment, records: 3, committedAt: clock });
    expect(dataCommitment(A, nodeRandomBytes(32), recordsRoot(sampleA))).not.toBe(subjects[0]!.commitment);
  });

  it("changes exactly when the records change, and is stable for the same records and salt", async () => {
    const v = await open();
    const c0 = (await v.ingest(sampleA)).subjects[0]!.commitment;
    clock += 10;
    const same = await v.ingest([...sampleA].reverse());
    expect(same.subjects[0]).toMatchObject({ commitment: c0, changed: 0 });
    expect((await v.commitment(A))!.committedAt).toBe(clock - 10); // nothing was rewritten
    const c1 = (await v.ingest([tx(A, "t-001", { amount: 42.51 })])).subjects[0]!.commitment;
    expect(c1).not.toBe(c0);
    const c2 = (await v.ingest([tx(A, "t-999")])).subjects[0]!.commitment;
    expect(new Set([c0, c1, c2]).size).toBe(3);
    expect((await v.commitment(A))!.records).toBe(4);
  });

  it("is independent of batch order and equal across vaults with the same salt, different with another salt", async () => {
    const v1 = await open({ randomBytes: seeded(7).randomBytes }, "v1");
    const v2 = await open({ randomBytes: seeded(7).randomBytes }, "v2");
    const v3 = await open({ randomBytes: seeded(8).randomBytes }, "v3");
    const c1 = (await v1.ingest(sampleA)).subjects[0]!.commitment;
    await v2.ingest([sampleA[2]!]);
    const c2 = (await v2.ingest([sampleA[1]!, sampleA[0]!])).subjects[0]!.commitment;
    const c3 = (await v3.ingest(sampleA)).subjects[0]!.commitment;
    expect(c2).toBe(c1);
    expect(c3).not.toBe(c1);
  });
});
