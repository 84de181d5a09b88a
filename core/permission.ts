import type { Agreement, ConsentState, Member, PermissionCheck } from "./domain.js";
import { assertCategoryMask, MAX_PURPOSE_ID } from "./domain.js";
import { CustodiaError } from "./errors.js";

/** The ledger state one permission decision depends on. */
export interface PermissionInputs {
  /** The partner's member record, null if never registered. */
  member: Member | null;
  /** The partner's agreements, in ledger (registration) order. */
  agreements: readonly Agreement[];
  /** The consent for (subject, partner, purpose); null or grantedAt 0 if never given. */
  consent: ConsentState | null;
}

export interface PermissionRequest {
  purpose: number;
  categories: number;
  /** Unix seconds. */
  time: number;
}

/**
 * The ledger's permission rule as a pure function: the same checks, in the same order, with the
 * same reasons as `checkPermission` in the Solidity contract and the chaincode. The gateway
 * decides from its event-fed index with this; a test holds it equal to the ledger's answer.
 */
export function evaluatePermission(inputs: PermissionInputs, request: PermissionRequest): PermissionCheck {
  const { purpose, categories, time } = request;
  if (!Number.isInteger(purpose) || purpose < 0 || purpose > MAX_PURPOSE_ID) {
    throw new CustodiaError("INVALID_PURPOSE", `purpose id ${purpose} is out of range`);
  }
  assertCategoryMask(categories);
  const m = inputs.member;
  if (!m) return { allowed: false, reason: "PARTNER_NOT_MEMBER", agreementId: 0n };
  if (!m.active) return { allowed: false, reason: "PARTNER_INACTIVE", agreementId: 0n };
  if (m.role !== "PARTNER") return { allowed: false, reason: "NOT_A_PARTNER", agreementId: 0n };
  const a = inputs.agreements.find(
    (x) => x.active && x.validFrom <= time && time < x.validUntil && ((x.purposes >>> purpose) & 1) === 1 && (x.categories & categories) === categories,
  );
  if (!a) return { allowed: false, reason: "NO_AGREEMENT", agreementId: 0n };
  const c = inputs.consent;
  if (!c || c.grantedAt === 0 || c.grantedAt > time) return { allowed: false, reason: "NO_CONSENT", agreementId: a.id };
  if (c.revokedAt !== 0 && c.revokedAt <= time) return { allowed: false, reason: "CONSENT_REVOKED", agreementId: a.id };
  if (c.expiresAt !== 0 && time >= c.expiresAt) return { allowed: false, reason: "CONSENT_EXPIRED", agreementId: a.id };
  if ((c.categories & categories) !== categories) return { allowed: false, reason: "CONSENT_CATEGORIES", agreementId: a.id };
  return { allowed: true, reason: "OK", agreementId: a.id };
}
