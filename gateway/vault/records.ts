/**
 * The operator's record model: two record kinds (`transaction`, `profile`), their validation and
 * normalisation, the fixed field → data-category table, and projection of a subject's data onto
 * a granted category mask. Pure: no I/O.
 *
 * Validation never throws on the first problem: `checkRecord` returns every problem of one
 * record, and `validateRecords` collects the first N problems of a batch into one
 * CustodiaError("INVALID_ARGUMENT", ..., { reason, line?, index?, field?, problems, ... }).
 */
import { getAddress } from "ethers";
import { AGE_BANDS, GENDERS, type AgeBand, type Gender } from "../../core/domain.js";
import { CustodiaError } from "../../core/errors.js";
import {
  CATEGORIES,
  assertCategoryMask,
  categoriesFromMask,
  type Address,
  type CategoryName,
} from "../../core/domain.js";

/* ------------------------------------------------------------------ model */

export const RECORD_KINDS = ["transaction", "profile"] as const;
export type RecordKind = (typeof RECORD_KINDS)[number];

export const CHANNELS = ["online", "store", "app", "phone"] as const;
export type Channel = (typeof CHANNELS)[number];

// the profile vocabularies are the domain's (the synthetic generator and the fairness report use them too)
export { AGE_BANDS, GENDERS, type AgeBand, type Gender };

/** One card/account transaction of a subject. `id` is unique per subject. */
export interface TransactionRecord {
  kind: "transaction";
  /** EIP-55 checksummed. */
  subject: Address;
  /** Operator-assigned transaction id: 1–128 characters, no control characters. */
  id: string;
  /** Unix seconds, integer in [0, 253402300799] (up to year 9999). */
  at: number;
  /** Finite, in [0, 1e12]. */
  amount: number;
  /** ISO 4217 alphabetic code, upper case (input is upper-cased). */
  currency: string;
  /** Merchant category, 1–64 characters. */
  category: string;
  channel: Channel;
}

/** The subject's profile: one per subject, every field optional. */
export interface ProfileRecord {
  kind: "profile";
  subject: Address;
  /** Up to 254 characters, local@domain.tld. */
  email?: string;
  /** E.164: "+" then 7–15 digits, first digit non-zero. */
  phone?: string;
  ageBand?: AgeBand;
  gender?: Gender;
  /** Free text, e.g. an ISO 3166-2 code; 1–64 characters. */
  region?: string;
  /** Unix seconds the subject became a customer. */
  joinedAt?: number;
  /** Annual income, finite, in [0, 1e12]. */
  income?: number;
  /** In [0, 1000] (covers the usual bureau scales). */
  creditScore?: number;
  marketingOptIn?: boolean;
  /** 1–32 characters. */
  preferredChannel?: string;
}

export type VaultRecord = TransactionRecord | ProfileRecord;

export type TransactionFields = Omit<TransactionRecord, "kind" | "subject">;
export type ProfileFields = Omit<ProfileRecord, "kind" | "subject">;

/** Everything the vault holds about one subject, as `Vault.read` returns it. */
export interface SubjectData {
  subject: Address;
  profile: ProfileFields | null;
  /** Sorted by id in Unicode code-point order (= UTF-8 byte order). */
  transactions: TransactionFields[];
}

/** Field order of each kind (also the CSV column names). `subject` first, then the data fields. */
export const TRANSACTION_FIELDS = ["subject", "id", "at", "amount", "currency", "category", "channel"] as const;
export const PROFILE_FIELDS = [
  "subject",
  "email",
  "phone",
  "ageBand",
  "gender",
  "region",
  "joinedAt",
  "income",
  "creditScore",
  "marketingOptIn",
  "preferredChannel",
] as const;
export type TransactionField = (typeof TRANSACTION_FIELDS)[number];
export type ProfileField = (typeof PROFILE_FIELDS)[number];

/* ------------------------------------------------------ category table */

/**
 * The fixed field → data-category table. Fields not listed are identifiers that accompany any
 * returned record: `subject` (always) and a transaction's `id` (whenever any of its fields are
 * returned). Notes:
 * - a transaction's `channel` (online/store/app/phone) is behavioural, so a `transactions`-only
 *   grant returns transactions without their channel, and a `behavioural`-only grant returns
 *   `{ id, channel }` per transaction;
 * - a profile's `joinedAt` (customer tenure) is classified as behavioural: it describes the
 *   relationship, not the person.
 */
export const FIELD_CATEGORIES: {
  readonly transaction: Readonly<Record<Exclude<TransactionField, "subject" | "id">, CategoryName>>;
  readonly profile: Readonly<Record<Exclude<ProfileField, "subject">, CategoryName>>;
} = Object.freeze({
  transaction: Object.freeze({
    at: "transactions",
    amount: "transactions",
    currency: "transactions",
    category: "transactions",
    channel: "behavioural",
  } as const),
  profile: Object.freeze({
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
  } as const),
});

/** A transaction with only the granted fields (its `id` always). */
export type ProjectedTransaction = { id: string } & Partial<Omit<TransactionFields, "id">>;

export interface Projection {
  subject: Address;
  /** The mask the projection was made for. */
  mask: number;
  /** The granted categories, in CATEGORY_NAMES order: only their fields can appear below. */
  categories: CategoryName[];
  /** The granted categories for which at least one value was actually returned. */
  returned: CategoryName[];
  /** Granted profile fields; null when no profile category is granted or there is no profile. */
  profile: Partial<ProfileFields> | null;
  /** Empty unless `transactions` or `behavioural` is granted. */
  transactions: ProjectedTransaction[];
}

/**
 * Keeps only the fields of the categories in `mask` (a valid, non-empty category mask, else
 * INVALID_CATEGORIES). Does not mutate `data`.
 */
export function projectByCategories(data: SubjectData, mask: number): Projection {
  assertCategoryMask(mask);
  const granted = (c: CategoryName): boolean => (mask & CATEGORIES[c]) !== 0;
  const returned = new Set<CategoryName>();

  let profile: Partial<ProfileFields> | null = null;
  if (data.profile !== null) {
    const out: Record<string, unknown> = {};
    let any = false;
    for (const [field, cat] of Object.entries(FIELD_CATEGORIES.profile) as [keyof ProfileFields, CategoryName][]) {
      if (!granted(cat)) continue;
      any = true;
      const v = data.profile[field];
      if (v !== undefined) {
        out[field] = v;
        returned.add(cat);
      }
    }
    if (any) profile = out as Partial<ProfileFields>;
  }

  const txFields = (Object.entries(FIELD_CATEGORIES.transaction) as [keyof TransactionFields, CategoryName][]).filter(
    ([, cat]) => granted(cat),
  );
  const transactions: ProjectedTransaction[] = [];
  if (txFields.length > 0) {
    for (const tx of data.transactions) {
      const out: Record<string, unknown> = { id: tx.id };
      for (const [field, cat] of txFields) {
        out[field] = tx[field];
        returned.add(cat);
      }
      transactions.push(out as ProjectedTransaction);
    }
  }

  const categories = categoriesFromMask(mask);
  return {
    subject: data.subject,
    mask,
    categories,
    returned: categories.filter((c) => returned.has(c)),
    profile,
    transactions,
  };
}

/* ------------------------------------------------------------ problems */

/** Why an input was rejected; `details.reason` of INVALID_ARGUMENT carries one of these. */
export const PROBLEM_REASONS = [
  // document level
  "invalid_json",
  "not_an_array",
  "too_many_rows",
  "missing_header",
  "unknown_column",
  "duplicate_column",
  "missing_column",
  // CSV syntax
  "column_count",
  "unterminated_quote",
  "invalid_quote",
  // record level
  "not_an_object",
  "unknown_kind",
  "missing_field",
  "unknown_field",
  "invalid_type",
  "invalid_address",
  "invalid_text",
  "invalid_email",
  "invalid_phone",
  "invalid_currency",
  "invalid_enum",
  "invalid_integer",
  "invalid_number",
  "invalid_boolean",
  "out_of_range",
  "too_long",
  "duplicate_record",
] as const;
export type ProblemReason = (typeof PROBLEM_REASONS)[number];

export interface Problem {
  reason: ProblemReason;
  message: string;
  /** 1-based line of the input text where the record (or the offending token) starts. */
  line?: number;
  /** 0-based position of the record in the batch (JSON arrays and `Vault.ingest`). */
  index?: number;
  field?: string;
}

/** Default number of problems reported in one INVALID_ARGUMENT. */
export const MAX_PROBLEMS = 20;

/**
 * Collects problems, keeping the first `max` and counting all of them. `fail()` throws the
 * batch's INVALID_ARGUMENT when anything was collected.
 */
export class ProblemList {
  readonly problems: Problem[] = [];
  count = 0;
  constructor(readonly max: number = MAX_PROBLEMS) {}

  add(p: Problem): void {
    this.count++;
    if (this.problems.length < this.max) this.problems.push(p);
  }

  get full(): boolean {
    return this.problems.length >= this.max;
  }

  /** Throws INVALID_ARGUMENT when any problem was collected. */
  throwIfAny(what = "input"): void {
    if (this.count === 0) return;
    const first = this.problems[0]!;
    const where = [
      first.line !== undefined ? `line ${first.line}` : undefined,
      first.index !== undefined && first.line === undefined ? `record ${first.index}` : undefined,
      first.field !== undefined ? `field "${first.field}"` : undefined,
    ]
      .filter(Boolean)
      .join(", ");
    const details: Record<string, unknown> = { reason: first.reason };
    if (first.line !== undefined) details.line = first.line;
    if (first.index !== undefined) details.index = first.index;
    if (first.field !== undefined) details.field = first.field;
    details.problems = this.problems;
    details.problemCount = this.count;
    details.truncated = this.count > this.problems.length;
    throw new CustodiaError(
      "INVALID_ARGUMENT",
      `invalid ${what}: ${this.count} problem${this.count === 1 ? "" : "s"}; first (${where || "document"}): ${first.message}`,
      details,
    );
  }
}

/* ----------------------------------------------------------- validation */

/** Maximum accepted unix time: 9999-12-31T23:59:59Z. */
export const MAX_UNIX_SECONDS = 253_402_300_799;
export const MAX_AMOUNT = 1e12;
export const MAX_ID_LENGTH = 128;

type Check = { ok: true; value: unknown } | { ok: false; reason: ProblemReason; message: string };
const ok = (value: unknown): Check => ({ ok: true, value });
const bad = (reason: ProblemReason, message: string): Check => ({ ok: false, reason, message });

// C0 controls and DEL; free text may contain TAB, LF and CR, identifiers none of them.
const CONTROL_EXCEPT_WS = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\u007F]/;
const CONTROL_ANY = /[\u0000-\u001F\u007F]/;
const LONE_SURROGATE = /\p{Surrogate}/u;
const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const EMAIL = /^[^\s@"<>(),;:\\[\]]+@[^\s@"<>(),;:\\[\]]+\.[^\s@"<>(),;:\\[\]]+$/;
const E164 = /^\+[1-9][0-9]{6,14}$/;
const CURRENCY = /^[A-Z]{3}$/;

let isoCurrencies: ReadonlySet<string> | null | undefined;
function knownCurrencies(): ReadonlySet<string> | null {
  if (isoCurrencies === undefined) {
    try {
      isoCurrencies = new Set(Intl.supportedValuesOf("currency"));
      if (isoCurrencies.size < 100) isoCurrencies = null; // small-icu build: fall back to the shape
    } catch {
      isoCurrencies = null;
    }
  }
  return isoCurrencies;
}

/**
 * Parses and EIP-55-normalises an address: 0x + 40 hex digits; mixed case must carry a valid
 * checksum; all-lower/all-upper hex is accepted. Returns null when invalid.
 */
export function normalizeAddress(input: unknown): Address | null {
  if (typeof input !== "string" || !HEX_ADDRESS.test(input)) return null;
  // The checksum is a keccak256 per call; batches repeat subjects, so remember recent answers.
  const cached = addressCache.get(input);
  if (cached !== undefined) return cached;
  let out: Address | null;
  try {
    out = getAddress(input) as Address;
  } catch {
    out = null;
  }
  if (addressCache.size >= ADDRESS_CACHE_SIZE) addressCache.clear();
  addressCache.set(input, out);
  return out;
}

const ADDRESS_CACHE_SIZE = 50_000;
const addressCache = new Map<string, Address | null>();

/** As normalizeAddress, throwing INVALID_ADDRESS. */
export function parseAddress(input: unknown): Address {
  const a = normalizeAddress(input);
  if (a === null) {
    throw new CustodiaError("INVALID_ADDRESS", "subject must be a 0x-prefixed 20-byte address with a valid EIP-55 checksum");
  }
  return a;
}

function text(max: number, opts: { allowWhitespaceControls: boolean }): (v: unknown) => Check {
  return (v) => {
    if (typeof v !== "string") return bad("invalid_type", "must be a string");
    if (v.length === 0) return bad("invalid_text", "must not be empty");
    if (v.length > max) return bad("too_long", `must be at most ${max} characters`);
    if ((opts.allowWhitespaceControls ? CONTROL_EXCEPT_WS : CONTROL_ANY).test(v)) {
      return bad("invalid_text", "contains a control character");
    }
    if (LONE_SURROGATE.test(v)) return bad("invalid_text", "is not well-formed Unicode");
    return ok(v);
  };
}

function oneOf<T extends string>(values: readonly T[]): (v: unknown) => Check {
  return (v) => {
    if (typeof v !== "string") return bad("invalid_type", "must be a string");
    return (values as readonly string[]).includes(v) ? ok(v) : bad("invalid_enum", `must be one of ${values.join(", ")}`);
  };
}

function unixSeconds(v: unknown): Check {
  if (typeof v !== "number") return bad("invalid_type", "must be a number (unix seconds)");
  if (!Number.isInteger(v)) return bad("invalid_integer", "must be an integer (unix seconds)");
  if (v < 0 || v > MAX_UNIX_SECONDS) return bad("out_of_range", `must be in [0, ${MAX_UNIX_SECONDS}]`);
  return ok(v === 0 ? 0 : v);
}

function numberIn(min: number, max: number): (v: unknown) => Check {
  return (v) => {
    if (typeof v !== "number") return bad("invalid_type", "must be a number");
    if (!Number.isFinite(v)) return bad("invalid_number", "must be finite");
    if (v < min || v > max) return bad("out_of_range", `must be in [${min}, ${max}]`);
    return ok(v === 0 ? 0 : v); // -0 → 0: canonical JSON cannot tell them apart
  };
}

const CHECKS: {
  transaction: Record<Exclude<TransactionField, "subject">, (v: unknown) => Check>;
  profile: Record<Exclude<ProfileField, "subject">, (v: unknown) => Check>;
} = {
  transaction: {
    id: text(MAX_ID_LENGTH, { allowWhitespaceControls: false }),
    at: unixSeconds,
    amount: numberIn(0, MAX_AMOUNT),
    currency: (v) => {
      if (typeof v !== "string") return bad("invalid_type", "must be a string");
      const c = v.toUpperCase();
      const known = knownCurrencies();
      if (!CURRENCY.test(c) || (known !== null && !known.has(c))) {
        return bad("invalid_currency", "must be an ISO 4217 alphabetic currency code");
      }
      return ok(c);
    },
    category: text(64, { allowWhitespaceControls: true }),
    channel: oneOf(CHANNELS),
  },
  profile: {
    email: (v) => {
      if (typeof v !== "string") return bad("invalid_type", "must be a string");
      if (v.length > 254) return bad("too_long", "must be at most 254 characters");
      return EMAIL.test(v) && !CONTROL_ANY.test(v) && !LONE_SURROGATE.test(v) ? ok(v) : bad("invalid_email", "is not an email address");
    },
    phone: (v) => {
      if (typeof v !== "string") return bad("invalid_type", "must be a string");
      return E164.test(v) ? ok(v) : bad("invalid_phone", "must be an E.164 number (+ and 7-15 digits)");
    },
    ageBand: oneOf(AGE_BANDS),
    gender: oneOf(GENDERS),
    region: text(64, { allowWhitespaceControls: true }),
    joinedAt: unixSeconds,
    income: numberIn(0, MAX_AMOUNT),
    creditScore: numberIn(0, 1000),
    marketingOptIn: (v) => (typeof v === "boolean" ? ok(v) : bad("invalid_type", "must be a boolean")),
    preferredChannel: text(32, { allowWhitespaceControls: true }),
  },
};

const REQUIRED_TX: readonly string[] = TRANSACTION_FIELDS;

/**
 * Validates and normalises one record given as a JSON value. Returns the record, or the
 * problems (without line/index: the caller adds its position). `null` profile fields are
 * treated as absent; unknown fields are rejected.
 */
export function checkRecord(input: unknown): { ok: true; record: VaultRecord } | { ok: false; problems: Problem[] } {
  const problems: Problem[] = [];
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { ok: false, problems: [{ reason: "not_an_object", message: "a record must be a JSON object" }] };
  }
  const obj = input as Record<string, unknown>;
  const kind = obj.kind;
  if (kind === undefined) {
    return { ok: false, problems: [{ reason: "missing_field", field: "kind", message: 'missing "kind"' }] };
  }
  if (kind !== "transaction" && kind !== "profile") {
    return {
      ok: false,
      problems: [{ reason: "unknown_kind", field: "kind", message: `kind must be "transaction" or "profile"` }],
    };
  }
  const checks: Record<string, (v: unknown) => Check> = CHECKS[kind];
  const out: Record<string, unknown> = { kind };

  const subject = normalizeAddress(obj.subject);
  if (obj.subject === undefined || obj.subject === null) {
    problems.push({ reason: "missing_field", field: "subject", message: 'missing "subject"' });
  } else if (subject === null) {
    problems.push({
      reason: "invalid_address",
      field: "subject",
      message: "subject must be a 0x-prefixed 20-byte address with a valid EIP-55 checksum",
    });
  } else {
    out.subject = subject;
  }

  for (const key of Object.keys(obj)) {
    if (key !== "kind" && key !== "subject" && !Object.hasOwn(checks, key)) {
      problems.push({ reason: "unknown_field", field: key, message: `unknown field "${key}" for a ${kind}` });
    }
  }
  for (const [field, check] of Object.entries(checks)) {
    const v = obj[field];
    if (v === undefined || v === null) {
      if (kind === "transaction" && REQUIRED_TX.includes(field)) {
        problems.push({ reason: "missing_field", field, message: `missing "${field}"` });
      }
      continue;
    }
    const r = check(v);
    if (r.ok) out[field] = r.value;
    else problems.push({ reason: r.reason, field, message: `${field} ${r.message}` });
  }
  if (problems.length > 0) return { ok: false, problems };
  return { ok: true, record: out as unknown as VaultRecord };
}

/** The identity of a record within its subject: profile → "p:", transaction → "t:" + id. */
export function recordKey(r: { kind: RecordKind; id?: string }): string {
  return r.kind === "profile" ? "p:" : `t:${r.id ?? ""}`;
}

export interface ValidateOptions {
  /** Max records (default 100 000). */
  maxRecords?: number;
  /** Max problems reported (default 20). */
  maxProblems?: number;
  /** 1-based line of each record in its source text, for problem reports (asked only on problems). */
  lineOf?: (index: number) => number | undefined;
  /**
   * Problems already found for record `index` by the caller (e.g. a too-long string); fields
   * named there are not reported again.
   */
  priorProblems?: (index: number) => readonly Problem[] | undefined;
}

export const DEFAULT_MAX_RECORDS = 100_000;

/**
 * Validates records one at a time into `records`, reporting problems (with index and line) to
 * a ProblemList, and rejecting a second record with the same (subject, kind, id).
 */
export class RecordCollector {
  readonly records: VaultRecord[] = [];
  private readonly seen = new Map<string, number>();

  constructor(
    readonly problems: ProblemList,
    private readonly lineOf?: (index: number) => number | undefined,
  ) {}

  /** Validates `input`, the record at position `index`; `prior` are problems found before. */
  add(input: unknown, index: number, prior?: readonly Problem[]): void {
    const r = checkRecord(input);
    if (!r.ok || (prior !== undefined && prior.length > 0)) {
      const at = this.at(index);
      const reported = new Set<string | undefined>();
      for (const p of prior ?? []) {
        reported.add(p.field);
        this.problems.add({ ...p, ...at });
      }
      if (!r.ok) for (const p of r.problems) if (!reported.has(p.field)) this.problems.add({ ...p, ...at });
      return;
    }
    const key = `${r.record.subject.toLowerCase()}:${recordKey(r.record)}`;
    const prev = this.seen.get(key);
    if (prev !== undefined) {
      const prevLine = this.lineOf?.(prev);
      this.problems.add({
        reason: "duplicate_record",
        field: r.record.kind === "profile" ? "subject" : "id",
        message: `duplicate ${r.record.kind} for this subject (first at ${prevLine !== undefined ? `line ${prevLine}` : `record ${prev}`})`,
        ...this.at(index),
      });
      return;
    }
    this.seen.set(key, index);
    this.records.push(r.record);
  }

  private at(index: number): { index: number; line?: number } {
    const line = this.lineOf?.(index);
    return line === undefined ? { index } : { index, line };
  }
}

/**
 * Validates a batch of JSON-shaped records: all of them or nothing. Rejects duplicates of the
 * same (subject, kind, id) within the batch. Throws INVALID_ARGUMENT listing the first problems.
 */
export function validateRecords(inputs: readonly unknown[], opts: ValidateOptions = {}): VaultRecord[] {
  const maxRecords = opts.maxRecords ?? DEFAULT_MAX_RECORDS;
  const list = new ProblemList(opts.maxProblems ?? MAX_PROBLEMS);
  if (!Array.isArray(inputs)) {
    list.add({ reason: "not_an_array", message: "records must be an array" });
    list.throwIfAny("records");
  }
  if (inputs.length > maxRecords) {
    list.add({ reason: "too_many_rows", message: `a batch holds at most ${maxRecords} records, got ${inputs.length}` });
    list.throwIfAny("records");
  }
  const collector = new RecordCollector(list, opts.lineOf);
  for (let i = 0; i < inputs.length; i++) collector.add(inputs[i], i, opts.priorProblems?.(i));
  list.throwIfAny("records");
  return collector.records;
}

const CANONICAL_KEYS = {
  transaction: ["kind", ...TRANSACTION_FIELDS].sort(),
  profile: ["kind", ...PROFILE_FIELDS].sort(),
};
const utf8 = new TextEncoder();

/**
 * The RFC 8785 canonical JSON of a validated record, as UTF-8: what the vault encrypts and what
 * its Merkle leaves hash. Records are flat objects of strings, finite numbers and booleans with
 * ASCII keys, for which JCS is JSON.stringify with the keys in sorted order (JCS formats strings
 * and numbers exactly as ECMAScript JSON.stringify does) — a fast path equal to
 * core/jcs canonicalBytes (tested).
 */
export function canonicalRecordBytes(r: VaultRecord): Uint8Array {
  return utf8.encode(JSON.stringify(r, CANONICAL_KEYS[r.kind]));
}

/** Strips `kind` and `subject`. */
export function recordFields(r: TransactionRecord): TransactionFields;
export function recordFields(r: ProfileRecord): ProfileFields;
export function recordFields(r: VaultRecord): TransactionFields | ProfileFields {
  const { kind: _k, subject: _s, ...rest } = r;
  return rest;
}
