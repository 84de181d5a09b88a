import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { randomBytes } from "node:crypto";
import {
  Vault,
  dataCommitment,
  recordFields,
  recordsRoot,
  type SubjectData,
  type VaultRecord,
} from "../../../gateway/vault/index.js";
import type { Address } from "../../../core/domain.js";
import { arbBatch } from "./arbitraries.js";
import { MASTER_KEY, tempLevel } from "./helpers.js";

let env: Awaited<ReturnType<typeof tempLevel>>;
let run = 0;

beforeAll(async () => {
  env = await tempLevel();
});
afterAll(async () => {
  await env.cleanup();
});

/** A vault in a fresh sublevel whose 32-byte draws (data key, then salt, per new subject) are kept. */
async function freshVault(): Promise<{ vault: Vault; draws32: Uint8Array[] }> {
  const draws32: Uint8Array[] = [];
  const vault = await Vault.open(env.db.sublevel(`run-${run++}`), {
    masterKey: MASTER_KEY,
    randomBytes: (n) => {
      const b = new Uint8Array(randomBytes(n));
      if (n === 32) draws32.push(b.slice());
      return b;
    },
  });
  return { vault, draws32 };
}

const key = (r: VaultRecord): string => `${r.subject}|${r.kind}|${r.kind === "transaction" ? r.id : ""}`;
const utf8Order = (a: string, b: string): number => Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));

/** What the vault should hold: the records merged by (subject, kind, id), later ones winning. */
function expected(batches: VaultRecord[][]): Map<Address, { data: SubjectData; records: VaultRecord[] }> {
  const merged = new Map<string, VaultRecord>();
  for (const b of batches) for (const r of b) merged.set(key(r), r);
  const out = new Map<Address, { data: SubjectData; records: VaultRecord[] }>();
  for (const r of merged.values()) {
    let e = out.get(r.subject);
    if (e === undefined) out.set(r.subject, (e = { data: { subject: r.subject, profile: null, transactions: [] }, records: [] }));
    e.records.push(r);
    if (r.kind === "profile") e.data.profile = recordFields(r);
    else e.data.transactions.push(recordFields(r));
  }
  for (const e of out.values()) e.data.transactions.sort((a, b) => utf8Order(a.id, b.id));
  return out;
}

describe("Vault properties (real LevelDB)", () => {
  it("random valid records round-trip exactly, with recomputable commitments", async () => {
    await fc.assert(
      fc.asyncProperty(arbBatch(30), async (batch) => {
        const { vault, draws32 } = await freshVault();
        const summary = await vault.ingest(batch);
        const want = expected([batch]);
        // new subjects are processed in address order, each drawing a data key then a salt
        const order = [...want.keys()].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1));
        expect(summary.subjects.map((s) => s.subject)).toEqual(order);
        for (const [i, subject] of order.entries()) {
          const e = want.get(subject)!;
          expect(await vault.read(subject)).toEqual(e.data);
          const salt = draws32[2 * i + 1]!;
          expect(summary.subjects[i]!.commitment).toBe(dataCommitment(subject, salt, recordsRoot(e.records)));
        }
      }),
      { numRuns: 40 },
    );
  });

  it("a second batch upserts by (kind, id); the commitment tracks the merged records under the same salt", async () => {
    await fc.assert(
      fc.asyncProperty(arbBatch(20), arbBatch(20), async (first, second) => {
        const { vault, draws32 } = await freshVault();
        await vault.ingest(first);
        const firstSubjects = [...new Set(first.map((r) => r.subject))].sort((a, b) => (a.toLowerCase() < b.toLowerCase() ? -1 : 1));
        const saltOf = new Map(firstSubjects.map((s, i) => [s, draws32[2 * i + 1]!]));
        const summary = await vault.ingest(second);
        const newSubjects = summary.subjects.map((s) => s.subject).filter((s) => !saltOf.has(s));
        newSubjects.forEach((s, i) => saltOf.set(s, draws32[2 * (firstSubjects.length + i) + 1]!));
        const want = expected([first, second]);
        for (const [subject, e] of want) {
          expect(await vault.read(subject)).toEqual(e.data);
          const c = await vault.commitment(subject);
          expect(c!.commitment).toBe(dataCommitment(subject, saltOf.get(subject)!, recordsRoot(e.records)));
          expect(c!.records).toBe(e.records.length);
        }
      }),
      { numRuns: 30 },
    );
  });
});
