/**
 * The chaincode's wire protocol, shared by the chaincode (chaincode/src) and its clients
 * (chaincode/adapter, the tests): contract and transaction names, event names and payloads, the
 * JSON shapes views return, and the format of rule errors.
 *
 * Encoding rules: every value is RFC 8785 canonical JSON. Addresses are EIP-55 checksummed,
 * bytes32 values lowercase 0x-hex. Integers that fit a JSON number exactly (uint8..uint40) are
 * numbers; uint64 and uint256 values (tree sizes, agreement ids, data nonces) are decimal strings.
 * Transaction arguments are strings: integers in canonical decimal, addresses and hex as above.
 *
 * No decorators and no Fabric imports here: this file is also compiled by the root project.
 */
import { ERROR_CODES, type ErrorCode } from "../../core/errors.js";
import type { PermissionReason, RoleName } from "../../core/domain.js";

/** Name of the contract inside the chaincode (also its default contract). */
export const CONTRACT_NAME = "custodia";

/** Transaction functions: submitted (they write and emit one event) ... */
export const SUBMIT_TRANSACTIONS = [
  "InitLedger",
  "RegisterMember",
  "DeactivateMember",
  "RegisterAgreement",
  "EndAgreement",
  "GrantConsent",
  "GrantConsentDirect",
  "RevokeConsent",
  "RevokeConsentDirect",
  "CommitData",
  "CommitDataDirect",
  "RecordErasure",
  "RecordErasureDirect",
  "AnchorCheckpoint",
] as const;

/** ... and evaluated (read-only views). */
export const EVALUATE_TRANSACTIONS = [
  "WhoAmI",
  "Eip712Domain",
  "Member",
  "Agreement",
  "AgreementsOf",
  "Consent",
  "CheckPermission",
  "CommitmentOf",
  "DataNonce",
  "LatestCheckpoint",
  "CheckpointRoot",
  "CheckpointHistory",
] as const;

export type SubmitTransaction = (typeof SUBMIT_TRANSACTIONS)[number];
export type EvaluateTransaction = (typeof EVALUATE_TRANSACTIONS)[number];

/** Chaincode event names: the Solidity event names (one event per transaction, as Fabric allows). */
export const EVENT_NAMES = [
  "MemberRegistered",
  "MemberDeactivated",
  "AgreementRegistered",
  "AgreementEnded",
  "ConsentGranted",
  "ConsentRevoked",
  "DataCommitted",
  "DataErased",
  "CheckpointAnchored",
] as const;
export type EventName = (typeof EVENT_NAMES)[number];

/* ------------------------------------------------------------ view shapes */

export interface WhoAmIView {
  /** The ledger account of the calling identity (see identity.ts). */
  account: string;
  mspId: string;
  /** The client identity id: x509::<subject DN>::<issuer DN>. */
  id: string;
}

export interface DomainView {
  name: string;
  version: string;
  /** Decimal. */
  chainId: string;
  verifyingContract: string;
}

export interface MemberView {
  account: string;
  didHash: string;
  orgHash: string;
  role: RoleName;
  active: boolean;
}

export interface AgreementView {
  /** Decimal uint256. */
  id: string;
  partner: string;
  purposes: number;
  categories: number;
  validFrom: number;
  validUntil: number;
  termsHash: string;
  active: boolean;
}

export interface ConsentView {
  categories: number;
  expiresAt: number;
  grantedAt: number;
  revokedAt: number;
  nonce: number;
}

export interface PermissionView {
  allowed: boolean;
  reason: PermissionReason;
  /** Decimal uint256, "0" when no agreement covers the request. */
  agreementId: string;
}

export interface CommitmentView {
  subject: string;
  committedAt: number;
  erasedAt: number;
}

export interface LogHeadView {
  gateway: string;
  /** Decimal uint64. */
  treeSize: string;
  count: number;
}

export interface CheckpointEntryView {
  logId: string;
  /** Decimal uint64. */
  treeSize: string;
  root: string;
  gateway: string;
  /** Number of anchors of the log before this one. */
  index: number;
  /** The anchoring transaction and its timestamp (unix seconds). */
  txId: string;
  time: number;
}

/* ----------------------------------------------------------- event payloads */

/** Chaincode event payloads (canonical JSON). `type` repeats the event name; `time` is the tx timestamp. */
export type EventPayload =
  | { type: "MemberRegistered"; account: string; role: RoleName; didHash: string; orgHash: string; time: number }
  | { type: "MemberDeactivated"; account: string; time: number }
  | {
      type: "AgreementRegistered";
      id: string;
      partner: string;
      purposes: number;
      categories: number;
      validFrom: number;
      validUntil: number;
      termsHash: string;
      time: number;
    }
  | { type: "AgreementEnded"; id: string; partner: string; time: number }
  | {
      type: "ConsentGranted";
      subject: string;
      partner: string;
      purpose: number;
      categories: number;
      expiresAt: number;
      receiptHash: string;
      nonce: number;
      time: number;
    }
  | { type: "ConsentRevoked"; subject: string; partner: string; purpose: number; nonce: number; time: number }
  | { type: "DataCommitted"; subject: string; commitment: string; time: number }
  | { type: "DataErased"; subject: string; commitment: string; time: number }
  | { type: "CheckpointAnchored"; logId: string; gateway: string; treeSize: string; root: string; index: number; time: number };

/* ------------------------------------------------------------------ errors */

/**
 * Every rule violation the chaincode reports is an error whose message starts with
 * `CUSTODIA:<ErrorCode>: ` followed by the Solidity error name and its arguments as canonical
 * JSON, e.g. `CUSTODIA:NONCE_INVALID: NonceInvalid {"expected":"1","given":"0","subject":"0x…"}`.
 * Fabric passes the message through (the peer prefixes "chaincode response 500, "), so clients
 * find the prefix anywhere in an endorsement error's details.
 */
export const ERROR_PREFIX = "CUSTODIA:";

export interface RuleErrorInfo {
  code: ErrorCode;
  /** The Solidity custom error this mirrors (e.g. NonceInvalid), or a chaincode-only name. */
  error: string;
  args: Record<string, unknown>;
  message: string;
}

const KNOWN_CODES: ReadonlySet<string> = new Set(ERROR_CODES);
const RULE_ERROR = /CUSTODIA:([A-Z_]+):\s?([A-Za-z][A-Za-z0-9]*)?\s?(\{.*\})?/s;

/** Parses the first `CUSTODIA:<CODE>:` error in `text`; null when there is none. */
export function parseRuleError(text: string): RuleErrorInfo | null {
  const m = RULE_ERROR.exec(text);
  if (!m || !KNOWN_CODES.has(m[1]!)) return null;
  let args: Record<string, unknown> = {};
  if (m[3]) {
    try {
      const parsed: unknown = JSON.parse(m[3]);
      if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) args = parsed as Record<string, unknown>;
    } catch {
      args = {};
    }
  }
  return { code: m[1] as ErrorCode, error: m[2] ?? "Error", args, message: m[0] };
}
