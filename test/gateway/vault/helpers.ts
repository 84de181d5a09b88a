import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getAddress } from "ethers";
import { Level } from "level";
import { CustodiaError, type ErrorCode } from "../../../core/errors.js";
import type { Address } from "../../../core/domain.js";
import type { ProfileRecord, TransactionRecord } from "../../../gateway/vault/index.js";

/** A deterministic EIP-55 address for test subject `i`. */
export function subjectAddress(i: number): Address {
  return getAddress(`0x${(0xc0ffee00 + i).toString(16).padStart(40, "a")}`) as Address;
}

export const MASTER_KEY = new Uint8Array(32).fill(0x42);
export const OTHER_KEY = new Uint8Array(32).fill(0x17);

export function tx(subject: Address, id: string, over: Partial<TransactionRecord> = {}): TransactionRecord {
  return {
    kind: "transaction",
    subject,
    id,
    at: 1_700_000_000,
    amount: 42.5,
    currency: "EUR",
    category: "groceries",
    channel: "store",
    ...over,
  };
}

export function profile(subject: Address, over: Partial<ProfileRecord> = {}): ProfileRecord {
  return {
    kind: "profile",
    subject,
    email: "alice.example@mail.test",
    phone: "+447700900123",
    ageBand: "25-34",
    gender: "female",
    region: "GB-LND",
    joinedAt: 1_600_000_000,
    income: 54_321.75,
    creditScore: 712,
    marketingOptIn: true,
    preferredChannel: "email",
    ...over,
  };
}

/** A LevelDB in a fresh temp directory; `cleanup` closes and deletes it. */
export async function tempLevel(): Promise<{ dir: string; db: Level<string, string>; cleanup: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "custodia-vault-test-"));
  const db = new Level<string, string>(dir);
  await db.open();
  return {
    dir,
    db,
    cleanup: async () => {
      await db.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Every raw (key, value) of the database, as bytes, bypassing sublevels and encodings. */
export async function rawEntries(db: Level<string, string>): Promise<[Buffer, Buffer][]> {
  return (await db.iterator<Buffer, Buffer>({ keyEncoding: "buffer", valueEncoding: "buffer" }).all()) as [Buffer, Buffer][];
}

/** The concatenated bytes of every file in the LevelDB directory (logs, tables, manifest). */
export function diskBytes(dir: string): Buffer {
  return Buffer.concat(readdirSync(dir).map((f) => readFileSync(join(dir, f))));
}

/** The code of the CustodiaError a promise rejects with (fails the test if it resolves). */
export async function rejectsWith(p: Promise<unknown>): Promise<CustodiaError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof CustodiaError) return e;
    throw e;
  }
  throw new Error("expected a rejection");
}

export function throwsWith(fn: () => unknown): CustodiaError {
  try {
    fn();
  } catch (e) {
    if (e instanceof CustodiaError) return e;
    throw e;
  }
  throw new Error("expected a throw");
}

export function codeOf(e: CustodiaError): ErrorCode {
  return e.code;
}
