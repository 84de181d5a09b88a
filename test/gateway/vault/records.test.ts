import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { CATEGORIES, CATEGORY_NAMES, ALL_CATEGORIES, type CategoryName } from "../../../core/domain.js";
import { canonicalBytes } from "../../../core/jcs.js";
import {
  FIELD_CATEGORIES,
  PROFILE_FIELDS,
  TRANSACTION_FIELDS,
  canonicalRecordBytes,
  checkRecord,
  normalizeAddress,
  projectByCategories,
  recordFields,
  validateRecords,
  type SubjectData,
} from "../../../gateway/vault/index.js";
import { profile, subjectAddress, throwsWith, tx } from "./helpers.js";
import { arbRecord } from "./arbitraries.js";

const A = subjectAddress(1);

describe("addresses", () => {
  it("normalise to EIP-55 and reject bad checksums and shapes", () => {
    expect(normalizeAddress(A.toLowerCase())).toBe(A);
    expect(normalizeAddress(`0x${A.slice(2).toUpperCase()}`)).toBe(A);
    expect(normalizeAddress(A)).toBe(A);
    // flip the case of one letter: a mixed-case address with a wrong checksum
    const i = [...A].findIndex((c, k) => k > 1 && /[a-f]/i.test(c));
    const flipped = A.slice(0, i) + (A[i] === A[i]!.toLowerCase() ? A[i]!.toUpperCase() : A[i]!.toLowerCase()) + A.slice(i + 1);
    expect(normalizeAddress(flipped)).toBeNull();
    for (const bad of ["", "0x", A.slice(0, 41), `${A}00`, A.slice(2), 42, null, `0x${"g".repeat(40)}`]) {
      expect(normalizeAddress(bad)).toBeNull();
    }
  });
});

describe("record validation", () => {
  it("accepts and normalises valid records", () => {
    const r = checkRecord({ ...tx(A, "t1"), subject: A.toLowerCase(), currency: "usd" });
    expect(r).toEqual({ ok: true, record: { ...tx(A, "t1"), currency: "USD" } });
    expect(checkRecord(profile(A))).toEqual({ ok: true, record: profile(A) });
    expect(checkRecord({ kind: "profile", subject: A })).toEqual({ ok: true, record: { kind: "profile", subject: A } });
    // null profile fields are absent; -0 becomes 0
    expect(checkRecord({ kind: "profile", subject: A, email: null, income: -0 })).toEqual({
      ok: true,
      record: { kind: "profile", subject: A, income: 0 },
    });
  });

  const cases: [string, unknown, string, string | undefined][] = [
    ["not an object", [], "not_an_object", undefined],
    ["missing kind", { subject: A }, "missing_field", "kind"],
    ["unknown kind", { kind: "order", subject: A }, "unknown_kind", "kind"],
    ["missing subject", { kind: "profile" }, "missing_field", "subject"],
    ["bad subject", { kind: "profile", subject: "0x1234" }, "invalid_address", "subject"],
    ["unknown field", { kind: "profile", subject: A, ssn: "078-05-1120" }, "unknown_field", "ssn"],
    ["missing tx field", { ...tx(A, "t"), amount: undefined }, "missing_field", "amount"],
    ["empty id", tx(A, ""), "invalid_text", "id"],
    ["id with newline", tx(A, "a\nb"), "invalid_text", "id"],
    ["id too long", tx(A, "x".repeat(129)), "too_long", "id"],
    ["id not a string", { ...tx(A, "t"), id: 7 }, "invalid_type", "id"],
    ["fractional at", tx(A, "t", { at: 1.5 }), "invalid_integer", "at"],
    ["negative at", tx(A, "t", { at: -1 }), "out_of_range", "at"],
    ["at as string", { ...tx(A, "t"), at: "1700000000" }, "invalid_type", "at"],
    ["negative amount", tx(A, "t", { amount: -0.01 }), "out_of_range", "amount"],
    ["huge amount", tx(A, "t", { amount: 1e12 + 1 }), "out_of_range", "amount"],
    ["infinite amount", tx(A, "t", { amount: Infinity }), "invalid_number", "amount"],
    ["NaN amount", tx(A, "t", { amount: NaN }), "invalid_number", "amount"],
    ["bad currency", tx(A, "t", { currency: "EURO" }), "invalid_currency", "currency"],
    ["unknown currency", tx(A, "t", { currency: "QQQ" }), "invalid_currency", "currency"],
    ["category too long", tx(A, "t", { category: "c".repeat(65) }), "too_long", "category"],
    ["category control char", tx(A, "t", { category: "a\u0000b" }), "invalid_text", "category"],
    ["lone surrogate", tx(A, "t", { category: "a\ud800" }), "invalid_text", "category"],
    ["bad channel", { ...tx(A, "t"), channel: "fax" }, "invalid_enum", "channel"],
    ["bad email", profile(A, { email: "not-an-email" }), "invalid_email", "email"],
    ["bad phone", profile(A, { phone: "07700 900123" }), "invalid_phone", "phone"],
    ["bad age band", { ...profile(A), ageBand: "30-40" }, "invalid_enum", "ageBand"],
    ["bad gender", { ...profile(A), gender: "x" }, "invalid_enum", "gender"],
    ["empty region", profile(A, { region: "" }), "invalid_text", "region"],
    ["bad joinedAt", profile(A, { joinedAt: 2.5 }), "invalid_integer", "joinedAt"],
    ["credit score range", profile(A, { creditScore: 1001 }), "out_of_range", "creditScore"],
    ["income type", { ...profile(A), income: "1000" }, "invalid_type", "income"],
    ["opt-in type", { ...profile(A), marketingOptIn: "yes" }, "invalid_type", "marketingOptIn"],
    ["preferred channel too long", profile(A, { preferredChannel: "p".repeat(33) }), "too_long", "preferredChannel"],
  ];
  it.each(cases)("rejects %s", (_name, input, reason, field) => {
    const r = checkRecord(input);
    expect(r.ok).toBe(false);
    if (r.ok) return;
    expect(r.problems[0]).toMatchObject(field === undefined ? { reason } : { reason, field });
  });

  it("reports every problem of a record, and batches fail as a whole with index and details", () => {
    const r = checkRecord({ kind: "transaction", subject: "nope", id: "t", at: -1, amount: "x", currency: "EUR", category: "c" });
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.problems.map((p) => p.field).sort()).toEqual(["amount", "at", "channel", "subject"]);

    const e = throwsWith(() => validateRecords([tx(A, "ok"), tx(A, "bad", { amount: -1 }), tx(A, "ok")]));
    expect(e.code).toBe("INVALID_ARGUMENT");
    expect(e.details).toMatchObject({ reason: "out_of_range", index: 1, field: "amount", problemCount: 2, truncated: false });
    expect((e.details!.problems as { reason: string }[]).map((p) => p.reason)).toEqual(["out_of_range", "duplicate_record"]);
  });

  it("lists only the first N problems and counts the rest", () => {
    const bad = Array.from({ length: 50 }, (_, i) => tx(A, `t${i}`, { amount: -1 }));
    const e = throwsWith(() => validateRecords(bad, { maxProblems: 5 }));
    expect(e.details).toMatchObject({ problemCount: 50, truncated: true });
    expect(e.details!.problems).toHaveLength(5);
    expect(throwsWith(() => validateRecords(bad, { maxRecords: 10 })).details).toMatchObject({ reason: "too_many_rows" });
  });

  it("the fast canonical form equals RFC 8785 canonical JSON", () => {
    fc.assert(
      fc.property(arbRecord(), (r) => {
        expect(Buffer.from(canonicalRecordBytes(r)).toString()).toBe(Buffer.from(canonicalBytes(r)).toString());
      }),
      { numRuns: 300 },
    );
  });
});

describe("field → category table", () => {
  it("classifies every data field of both kinds, and only known categories", () => {
    expect(Object.keys(FIELD_CATEGORIES.transaction).sort()).toEqual(TRANSACTION_FIELDS.filter((f) => f !== "subject" && f !== "id").sort());
    expect(Object.keys(FIELD_CATEGORIES.profile).sort()).toEqual(PROFILE_FIELDS.filter((f) => f !== "subject").sort());
    const used = new Set([...Object.values(FIELD_CATEGORIES.transaction), ...Object.values(FIELD_CATEGORIES.profile)]);
    expect([...used].sort()).toEqual([...CATEGORY_NAMES].sort()); // every category has fields
  });

  it("matches the documented table", () => {
    expect(FIELD_CATEGORIES).toEqual({
      transaction: { at: "transactions", amount: "transactions", currency: "transactions", category: "transactions", channel: "behavioural" },
      profile: {
        email: "contact",
        phone: "contact",
        ageBand: "demographic",
        gender: "demographic",
        region: "location",
        joinedAt: "behavioural",
        income: "financial",
        creditScore: "financial",
        marketingOptIn: "preferences",
        preferredChannel: "preferences",
      },
    });
  });
});

describe("projectByCategories", () => {
  const data: SubjectData = {
    subject: A,
    profile: recordFields(profile(A)),
    transactions: [recordFields(tx(A, "t1")), recordFields(tx(A, "t2", { channel: "online", amount: 3 }))],
  };

  const expected: Record<CategoryName, { profile: Record<string, unknown> | null; tx: Record<string, unknown>[] }> = {
    contact: { profile: { email: "alice.example@mail.test", phone: "+447700900123" }, tx: [] },
    demographic: { profile: { ageBand: "25-34", gender: "female" }, tx: [] },
    transactions: {
      profile: null,
      tx: [
        { id: "t1", at: 1_700_000_000, amount: 42.5, currency: "EUR", category: "groceries" },
        { id: "t2", at: 1_700_000_000, amount: 3, currency: "EUR", category: "groceries" },
      ],
    },
    behavioural: { profile: { joinedAt: 1_600_000_000 }, tx: [{ id: "t1", channel: "store" }, { id: "t2", channel: "online" }] },
    location: { profile: { region: "GB-LND" }, tx: [] },
    financial: { profile: { income: 54_321.75, creditScore: 712 }, tx: [] },
    preferences: { profile: { marketingOptIn: true, preferredChannel: "email" }, tx: [] },
  };

  it.each(CATEGORY_NAMES)("returns exactly the %s fields", (cat) => {
    const p = projectByCategories(data, CATEGORIES[cat]);
    expect(p.categories).toEqual([cat]);
    expect(p.returned).toEqual([cat]);
    expect(p.profile).toEqual(expected[cat].profile);
    expect(p.transactions).toEqual(expected[cat].tx);
    expect(p.mask).toBe(CATEGORIES[cat]);
  });

  it("transactions-only omits the channel; all categories return everything", () => {
    const t = projectByCategories(data, CATEGORIES.transactions);
    expect(t.transactions.every((x) => !("channel" in x))).toBe(true);
    const all = projectByCategories(data, ALL_CATEGORIES);
    expect(all.profile).toEqual(data.profile);
    expect(all.transactions).toEqual(data.transactions);
    expect(all.returned).toEqual(CATEGORY_NAMES);
  });

  it("says which granted categories had no data, and never mutates its input", () => {
    const sparse: SubjectData = { subject: A, profile: { email: "a@b.co" }, transactions: [] };
    const before = structuredClone(sparse);
    const p = projectByCategories(sparse, CATEGORIES.contact | CATEGORIES.financial | CATEGORIES.transactions);
    expect(p.categories).toEqual(["contact", "transactions", "financial"]);
    expect(p.returned).toEqual(["contact"]);
    expect(p.profile).toEqual({ email: "a@b.co" });
    expect(p.transactions).toEqual([]);
    expect(sparse).toEqual(before);
    const none = projectByCategories({ subject: A, profile: null, transactions: [] }, CATEGORIES.contact);
    expect(none).toMatchObject({ profile: null, transactions: [], returned: [] });
  });

  it("rejects empty or unknown masks", () => {
    expect(throwsWith(() => projectByCategories(data, 0)).code).toBe("INVALID_CATEGORIES");
    expect(throwsWith(() => projectByCategories(data, 1 << 12)).code).toBe("INVALID_CATEGORIES");
  });
});
