import fc from "fast-check";
import {
  AGE_BANDS,
  CHANNELS,
  GENDERS,
  MAX_UNIX_SECONDS,
  type ProfileRecord,
  type TransactionRecord,
  type VaultRecord,
} from "../../../gateway/vault/index.js";
import { subjectAddress } from "./helpers.js";

const CONTROL = /[\u0000-\u001F\u007F]/;
const CONTROL_EXCEPT_WS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;

/** One of a few subjects, so random batches hold several records per subject. */
export const arbSubject = fc.integer({ min: 0, max: 7 }).map(subjectAddress);

/** Any Unicode (incl. astral characters), no control characters: valid transaction ids. */
export const arbId = fc
  .string({ unit: "binary", minLength: 1, maxLength: 24 })
  .filter((s) => s.length <= 128 && !CONTROL.test(s));

/** Free text with commas, quotes, CR/LF and tabs allowed: valid categories/regions. */
export const arbText = (max: number): fc.Arbitrary<string> =>
  fc
    .oneof(
      fc.string({ unit: "binary", minLength: 1, maxLength: max }),
      fc.string({ unit: fc.constantFrom("a", "Z", " ", ",", '"', "\n", "\r", "\t", "é", "😀"), minLength: 1, maxLength: max }),
    )
    .filter((s) => s.length >= 1 && s.length <= max && !CONTROL_EXCEPT_WS.test(s));

const arbAmount = fc.double({ min: 0, max: 1e12, noNaN: true }).map((v) => (v === 0 ? 0 : v));
const arbTime = fc.integer({ min: 0, max: MAX_UNIX_SECONDS });

export const arbTransaction = (subject: fc.Arbitrary<string> = arbSubject): fc.Arbitrary<TransactionRecord> =>
  fc.record({
    kind: fc.constant("transaction" as const),
    subject: subject as fc.Arbitrary<TransactionRecord["subject"]>,
    id: arbId,
    at: arbTime,
    amount: fc.oneof(arbAmount, fc.integer({ min: 0, max: 100_000 }).map((c) => c / 100)),
    currency: fc.constantFrom("EUR", "USD", "GBP", "JPY", "CHF", "SEK"),
    category: arbText(64),
    channel: fc.constantFrom(...CHANNELS),
  });

const alnum = fc.string({ unit: fc.constantFrom(..."abcdefghijklmnopqrstuvwxyz0123456789"), minLength: 1, maxLength: 12 });

export const arbProfile = (subject: fc.Arbitrary<string> = arbSubject): fc.Arbitrary<ProfileRecord> =>
  fc
    .record(
      {
        email: fc.tuple(alnum, alnum).map(([a, b]) => `${a}.x@${b}.example`),
        phone: fc.tuple(fc.integer({ min: 1, max: 9 }), fc.string({ unit: fc.constantFrom(..."0123456789"), minLength: 6, maxLength: 14 })).map(([a, b]) => `+${a}${b}`),
        ageBand: fc.constantFrom(...AGE_BANDS),
        gender: fc.constantFrom(...GENDERS),
        region: arbText(64),
        joinedAt: arbTime,
        income: arbAmount,
        creditScore: fc.integer({ min: 0, max: 1000 }),
        marketingOptIn: fc.boolean(),
        preferredChannel: arbText(32),
      },
      { requiredKeys: [] },
    )
    .chain((fields) => subject.map((s) => ({ kind: "profile" as const, subject: s as ProfileRecord["subject"], ...fields })));

export const arbRecord = (): fc.Arbitrary<VaultRecord> => fc.oneof(arbTransaction(), arbProfile());

/** A valid batch: records unique by (subject, kind, id). */
export const arbBatch = (maxLength = 30): fc.Arbitrary<VaultRecord[]> =>
  fc.uniqueArray(arbRecord(), {
    maxLength,
    selector: (r) => `${r.subject}|${r.kind}|${r.kind === "transaction" ? r.id : ""}`,
  });
