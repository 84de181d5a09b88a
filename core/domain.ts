import { CustodiaError } from "./errors.js";
import { sha256, toHex0x } from "./hash.js";
import { canonicalize, wellFormed } from "./jcs.js";

/* ------------------------------------------------------------------ roles */

/** On-ledger member roles. Numeric values are the ledger encoding (uint8); NONE is never stored. */
export const Role = { NONE: 0, ADMIN: 1, GATEWAY: 2, PARTNER: 3, AUDITOR: 4 } as const;
export type RoleName = Exclude<keyof typeof Role, "NONE">;
export type RoleId = (typeof Role)[keyof typeof Role];
export const ROLE_NAMES: readonly RoleName[] = ["ADMIN", "GATEWAY", "PARTNER", "AUDITOR"];

export function roleName(id: number): RoleName {
  const name = ROLE_NAMES.find((n) => Role[n] === id);
  if (!name) throw new CustodiaError("INVALID_ARGUMENT", `unknown role id ${id}`);
  return name;
}

/* --------------------------------------------------------------- purposes */

/**
 * Processing purposes, aligned with the W3C Data Privacy Vocabulary (DPV). The ledger stores the
 * small integer id (uint8) and agreements hold a uint32 bitmask of ids; receipts and records use
 * the DPV IRI. Ids are append-only: never renumber.
 */
export const PURPOSES = [
  { id: 0, key: "service-provision", dpv: "https://w3id.org/dpv#ServiceProvision", label: "Providing the contracted service" },
  { id: 1, key: "profiling", dpv: "https://w3id.org/dpv#Profiling", label: "Customer profiling and segmentation" },
  { id: 2, key: "direct-marketing", dpv: "https://w3id.org/dpv#DirectMarketing", label: "Direct marketing" },
  { id: 3, key: "personalisation", dpv: "https://w3id.org/dpv#Personalisation", label: "Personalisation of offers and service" },
  { id: 4, key: "credit-checking", dpv: "https://w3id.org/dpv#CreditChecking", label: "Credit checking" },
  { id: 5, key: "fraud-prevention", dpv: "https://w3id.org/dpv#FraudPreventionAndDetection", label: "Fraud prevention and detection" },
  { id: 6, key: "research", dpv: "https://w3id.org/dpv#ResearchAndDevelopment", label: "Research and development" },
] as const;

export type PurposeKey = (typeof PURPOSES)[number]["key"];
export type PurposeId = (typeof PURPOSES)[number]["id"];
/** Highest purpose id the ledgers accept; agreements carry purposes as a uint32 bitmask. */
export const MAX_PURPOSE_ID = 31;

export function purposeId(key: string): PurposeId {
  const p = PURPOSES.find((x) => x.key === key);
  if (!p) throw new CustodiaError("INVALID_PURPOSE", `unknown purpose "${key}"`, { known: PURPOSES.map((x) => x.key) });
  return p.id;
}

export function purposeById(id: number): (typeof PURPOSES)[number] {
  const p = PURPOSES.find((x) => x.id === id);
  if (!p) throw new CustodiaError("INVALID_PURPOSE", `unknown purpose id ${id}`);
  return p;
}

export function purposeMask(keys: readonly string[]): number {
  let mask = 0;
  for (const k of keys) mask |= 1 << purposeId(k);
  return mask >>> 0;
}

export function purposesFromMask(mask: number): PurposeKey[] {
  return PURPOSES.filter((p) => (mask >>> p.id) & 1).map((p) => p.key);
}

/* ------------------------------------------------------- data categories */

/** Data categories as bits of a uint16 mask. Append-only. */
export const CATEGORIES = {
  contact: 1 << 0,
  demographic: 1 << 1,
  transactions: 1 << 2,
  behavioural: 1 << 3,
  location: 1 << 4,
  financial: 1 << 5,
  preferences: 1 << 6,
} as const;

export type CategoryName = keyof typeof CATEGORIES;
export const CATEGORY_NAMES = Object.keys(CATEGORIES) as CategoryName[];
export const ALL_CATEGORIES = CATEGORY_NAMES.reduce((m, n) => m | CATEGORIES[n], 0);

export function categoryMask(names: readonly string[]): number {
  if (names.length === 0) throw new CustodiaError("INVALID_CATEGORIES", "at least one data category is required");
  let mask = 0;
  for (const n of names) {
    const bit = (CATEGORIES as Record<string, number>)[n];
    if (bit === undefined) throw new CustodiaError("INVALID_CATEGORIES", `unknown data category "${n}"`, { known: CATEGORY_NAMES });
    mask |= bit;
  }
  return mask;
}

export function categoriesFromMask(mask: number): CategoryName[] {
  return CATEGORY_NAMES.filter((n) => (mask & CATEGORIES[n]) !== 0);
}

/** True when every category in `needed` is in `granted`. */
export function coversCategories(granted: number, needed: number): boolean {
  return (granted & needed) === needed;
}

export function assertCategoryMask(mask: number): void {
  if (!Number.isInteger(mask) || mask <= 0 || (mask & ~ALL_CATEGORIES) !== 0) {
    throw new CustodiaError("INVALID_CATEGORIES", `category mask ${mask} is empty or has unknown bits`);
  }
}

/* ------------------------------------------------------------ ledger data */

export type Address = `0x${string}`;
export type Bytes32 = `0x${string}`;

/** The did:ethr of a ledger account on a chain (chain id in hex, as ethr-did-resolver names it). */
export function ethrDid(chainId: number, account: string): string {
  return `did:ethr:0x${chainId.toString(16)}:${account}`;
}

/** Members are registered on the ledger under the SHA-256 of their DID string. */
export function didHash(did: string): Bytes32 {
  return toHex0x(sha256(new TextEncoder().encode(did)));
}

/** Age bands of customer profiles (demographic category). */
export const AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"] as const;
export type AgeBand = (typeof AGE_BANDS)[number];

/** Gender values of customer profiles (demographic category). */
export const GENDERS = ["female", "male", "other", "undisclosed"] as const;
export type Gender = (typeof GENDERS)[number];

export interface Member {
  account: Address;
  /** SHA-256 of the member's DID string (hex, 0x-prefixed). */
  didHash: Bytes32;
  role: RoleName;
  /** SHA-256 of the organisation name; the name itself lives off-chain. */
  orgHash: Bytes32;
  active: boolean;
}

export interface Agreement {
  id: bigint;
  partner: Address;
  /** Bitmask of purpose ids. */
  purposes: number;
  /** Bitmask of data categories. */
  categories: number;
  /** Unix seconds. */
  validFrom: number;
  validUntil: number;
  termsHash: Bytes32;
  active: boolean;
}

/** The rule-bearing part of a consent as the ledger stores it (one packed slot on the EVM). */
export interface ConsentState {
  subject: Address;
  partner: Address;
  purpose: number;
  categories: number;
  /** Unix seconds; 0 = never expires. */
  expiresAt: number;
  grantedAt: number;
  /** Unix seconds of the revocation; 0 while active. */
  revokedAt: number;
  /** The nonce the next signed grant/revoke for this consent must carry. */
  nonce: number;
}

export type PermissionReason =
  | "OK"
  | "PARTNER_NOT_MEMBER"
  | "PARTNER_INACTIVE"
  | "NOT_A_PARTNER"
  | "NO_AGREEMENT"
  | "NO_CONSENT"
  | "CONSENT_REVOKED"
  | "CONSENT_EXPIRED"
  | "CONSENT_CATEGORIES";

/** Numeric encoding of PermissionReason on the ledger (uint8), in this order. */
export const PERMISSION_REASONS: readonly PermissionReason[] = [
  "OK",
  "PARTNER_NOT_MEMBER",
  "PARTNER_INACTIVE",
  "NOT_A_PARTNER",
  "NO_AGREEMENT",
  "NO_CONSENT",
  "CONSENT_REVOKED",
  "CONSENT_EXPIRED",
  "CONSENT_CATEGORIES",
];

export interface PermissionCheck {
  allowed: boolean;
  reason: PermissionReason;
  /** The agreement that covers the request, 0n when none does. */
  agreementId: bigint;
}

export interface DataCommitment {
  commitment: Bytes32;
  subject: Address;
  committedAt: number;
  /** 0 until erased. */
  erasedAt: number;
}

export interface Checkpoint {
  logId: Bytes32;
  treeSize: number;
  root: Bytes32;
}

export interface AnchoredCheckpoint extends Checkpoint {
  gateway: Address;
  blockNumber: number;
  timestamp: number;
}

/* --------------------------------------------------- off-chain records */

/**
 * A consent record with the fields of ISO/IEC TS 27560 (consent record information structure).
 * Only its SHA-256 (over JCS) and the rule-bearing fields go on the ledger.
 */
export interface ConsentRecord {
  schemaVersion: "custodia.consent/1";
  recordId: string;
  /** Subject DID. */
  piiPrincipalId: string;
  /** Controllers: the operator(s) relaying the consent. */
  piiControllers: { id: string; name?: string }[];
  /** Recipients: the partner DID. */
  recipients: { id: string; name?: string }[];
  purpose: { id: PurposeKey; dpv: string; description: string };
  piiCategories: CategoryName[];
  /** SHA-256 of the privacy notice shown to the subject. */
  noticeHash: Bytes32;
  /** Retention / validity: ISO 8601 instant, or null for "until withdrawn". */
  expiresAt: string | null;
  jurisdiction: string;
  legalBasis: "consent";
  withdrawalMethod: string;
  consentType: "explicit";
  /** Event history: given, withdrawn, each with its ISO 8601 time. */
  events: { type: "given" | "withdrawn"; at: string }[];
}

/** What a consent record is built from: the rule-bearing fields and who is involved. */
export interface ConsentRecordInput {
  recordId: string;
  subjectDid: string;
  controllers: { id: string; name?: string }[];
  /** The recipient: an identifier ending in the partner's ledger account (its did:ethr), or its registered DID. */
  recipient: string;
  purpose: number;
  categories: number;
  noticeHash: Bytes32;
  /** Unix seconds; 0 = until withdrawn. */
  expiresAt: number;
  /** Unix seconds the consent is given at. */
  givenAt: number;
  withdrawalMethod: string;
  jurisdiction?: string;
}

/** The ISO/IEC TS 27560 record of a consent being given; its JCS hash is the signed receiptHash. */
export function consentRecord(input: ConsentRecordInput): ConsentRecord {
  const p = purposeById(input.purpose);
  return {
    schemaVersion: "custodia.consent/1",
    recordId: input.recordId,
    piiPrincipalId: input.subjectDid,
    piiControllers: input.controllers,
    recipients: [{ id: input.recipient }],
    purpose: { id: p.key, dpv: p.dpv, description: p.label },
    piiCategories: categoriesFromMask(input.categories),
    noticeHash: input.noticeHash,
    expiresAt: input.expiresAt ? new Date(input.expiresAt * 1000).toISOString() : null,
    jurisdiction: input.jurisdiction ?? "EU",
    legalBasis: "consent",
    withdrawalMethod: input.withdrawalMethod,
    consentType: "explicit",
    events: [{ type: "given", at: new Date(input.givenAt * 1000).toISOString() }],
  };
}

export type AccessDecision = "allow" | "deny";

/** One entry of a gateway's `access` log. */
export interface AccessEvent {
  kind: "access";
  requestId: string;
  /** DID of the caller. */
  actor: string;
  /** Ledger account of the partner. */
  partner: Address;
  subject: Address;
  purpose: PurposeKey;
  categories: number;
  decision: AccessDecision;
  reason: PermissionReason | string;
  /** Ledger block the decision was made at. */
  block: number;
  /** Unix seconds the rule was evaluated at (expiry and validity windows): max(gateway clock, block time). */
  time: number;
  /** keccak256(subject, partner, purpose): the consent key consulted. */
  consentKey: Bytes32;
  agreementId: string;
  /** ISO 8601. */
  at: string;
}

/**
 * The RFC 8785 canonical JSON of an access event, written out field by field in canonical member
 * order: the gateway logs one per request (about 1 µs here against 3 µs with JSON.stringify per
 * string, and more for the generic canonicaliser). Anything the fixed layout does not cover — a
 * value of another type, a string that is not well-formed, an extra member — goes through
 * `canonicalize` (which refuses what has no canonical form). A property test holds the two equal.
 */
export function canonicalAccessEvent(e: AccessEvent): string {
  const actor = jsonString(e.actor);
  const agreementId = jsonString(e.agreementId);
  const at = jsonString(e.at);
  const consentKey = jsonString(e.consentKey);
  const decision = jsonString(e.decision);
  const partner = jsonString(e.partner);
  const purpose = jsonString(e.purpose);
  const reason = jsonString(e.reason);
  const requestId = jsonString(e.requestId);
  const subject = jsonString(e.subject);
  if (
    e.kind !== "access" ||
    actor === undefined ||
    agreementId === undefined ||
    at === undefined ||
    consentKey === undefined ||
    decision === undefined ||
    partner === undefined ||
    purpose === undefined ||
    reason === undefined ||
    requestId === undefined ||
    subject === undefined ||
    !Number.isSafeInteger(e.block) ||
    !Number.isSafeInteger(e.categories) ||
    !Number.isSafeInteger(e.time) ||
    Object.keys(e).length !== 14
  ) {
    return canonicalize(e);
  }
  return `{"actor":${actor},"agreementId":${agreementId},"at":${at},"block":${e.block},"categories":${e.categories},"consentKey":${consentKey},"decision":${decision},"kind":"access","partner":${partner},"purpose":${purpose},"reason":${reason},"requestId":${requestId},"subject":${subject},"time":${e.time}}`;
}

/**
 * The same text as one flat string. ethers builds addresses and hashes by concatenation, and V8
 * keeps such a string as a tree of pieces: every regular-expression test, comparison and write of
 * it then takes a slow path (a regex test on a checksummed address ran at half speed). Values used
 * on every request (memoised addresses and consent keys, a token's account) are flattened once,
 * when they are made.
 */
export function flatString<T extends string>(s: T): T {
  return JSON.parse(JSON.stringify(s)) as T;
}

/** Printable ASCII but `"` and `\`: such a string's JSON form is the string in quotes. */
const PLAIN_JSON_STRING = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;

/**
 * The JSON (and RFC 8785) form of a well-formed string; undefined for anything else. Addresses,
 * hashes, DIDs, ISO times and UUIDs are plain ASCII and skip JSON.stringify.
 */
function jsonString(v: unknown): string | undefined {
  if (typeof v !== "string") return undefined;
  if (PLAIN_JSON_STRING.test(v)) return `"${v}"`;
  return wellFormed(v) ? JSON.stringify(v) : undefined;
}

/** One entry of a gateway's `decisions` log: a per-subject model decision. */
export interface DecisionRecord {
  kind: "decision";
  runId: string;
  subject: Address;
  modelHash: Bytes32;
  inputHash: Bytes32;
  segment: string;
  explanationHash: Bytes32;
  at: string;
}
