/**
 * The one error type of Custodia. Every failure the system reports carries a code from this
 * union; callers and tests branch on the code, never on the message. The gateway maps codes to
 * HTTP statuses in a single table at its edge.
 */
export const ERROR_CODES = [
  // input
  "BAD_REQUEST",
  "INVALID_ARGUMENT",
  "INVALID_PURPOSE",
  "INVALID_CATEGORIES",
  "INVALID_ADDRESS",
  "INVALID_DID",
  // merkle proofs
  "PROOF_INVALID_INDEX",
  "PROOF_INVALID_SIZE",
  "PROOF_WRONG_LENGTH",
  "PROOF_ROOT_MISMATCH",
  "PROOF_MALFORMED",
  // ledger rules (mapped from on-chain custom errors)
  "UNAUTHORIZED",
  "MEMBER_EXISTS",
  "MEMBER_UNKNOWN",
  "MEMBER_INACTIVE",
  "AGREEMENT_UNKNOWN",
  "AGREEMENT_INVALID",
  "AGREEMENT_ENDED",
  "SIGNATURE_INVALID",
  "SIGNATURE_EXPIRED",
  "NONCE_INVALID",
  "CONSENT_NOT_ACTIVE",
  "CONSENT_EXPIRY_INVALID",
  "COMMITMENT_EXISTS",
  "COMMITMENT_UNKNOWN",
  "COMMITMENT_ERASED",
  "CHECKPOINT_NOT_INCREASING",
  "CHECKPOINT_LOG_OWNED",
  // ledger plumbing
  "LEDGER_UNAVAILABLE",
  "LEDGER_REVERTED",
  "LEDGER_NOT_DEPLOYED",
  // authentication and access (gateway)
  "UNAUTHENTICATED",
  "TOKEN_INVALID",
  "TOKEN_EXPIRED",
  "TOKEN_NOT_YET_VALID",
  "TOKEN_AUDIENCE",
  "TOKEN_REPLAYED",
  "TOKEN_LIFETIME",
  "DID_UNSUPPORTED",
  "DID_UNRESOLVABLE",
  "FORBIDDEN",
  "ACCESS_DENIED",
  "NOT_FOUND",
  "SUBJECT_ERASED",
  "DATA_TAMPERED",
  "RATE_LIMITED",
  "PAYLOAD_TOO_LARGE",
  "UNSUPPORTED_MEDIA_TYPE",
  "LEDGER_STALE",
  "LOG_ALARM",
  // configuration / environment
  "CONFIG_INVALID",
  // command-line tools
  "GATEWAY_UNAVAILABLE",
  "GATEWAY_MISBEHAVED",
  "GATEWAY_UNVERIFIED",
  "WALLET_MISSING",
  "WALLET_EXISTS",
  "WALLET_INVALID",
  "WALLET_LOCKED",
  "WALLET_BAD_PASSPHRASE",
  "VERIFY_FAILED",
  "INTERNAL",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export class CustodiaError extends Error {
  override readonly name = "CustodiaError";
  readonly code: ErrorCode;
  /** Structured, non-secret details (e.g. the two roots of a mismatch). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, details?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.details = details;
  }
}

export function isCustodiaError(e: unknown, code?: ErrorCode): e is CustodiaError {
  return e instanceof CustodiaError && (code === undefined || e.code === code);
}
