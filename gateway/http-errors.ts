import type { FastifyError, FastifyInstance, FastifyReply } from "fastify";
import { CustodiaError, type ErrorCode } from "../core/errors.js";

/** The one table from error codes to HTTP statuses. Anything not listed is a 500. */
export const HTTP_STATUS: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400,
  INVALID_ARGUMENT: 400,
  INVALID_PURPOSE: 400,
  INVALID_CATEGORIES: 400,
  INVALID_ADDRESS: 400,
  INVALID_DID: 400,
  PROOF_INVALID_INDEX: 400,
  PROOF_INVALID_SIZE: 400,
  PROOF_WRONG_LENGTH: 400,
  PROOF_ROOT_MISMATCH: 400,
  PROOF_MALFORMED: 400,
  UNAUTHENTICATED: 401,
  TOKEN_INVALID: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_NOT_YET_VALID: 401,
  TOKEN_AUDIENCE: 401,
  TOKEN_REPLAYED: 401,
  TOKEN_LIFETIME: 401,
  DID_UNSUPPORTED: 401,
  DID_UNRESOLVABLE: 401,
  UNAUTHORIZED: 403,
  FORBIDDEN: 403,
  ACCESS_DENIED: 403,
  NOT_FOUND: 404,
  MEMBER_UNKNOWN: 404,
  AGREEMENT_UNKNOWN: 404,
  COMMITMENT_UNKNOWN: 404,
  MEMBER_EXISTS: 409,
  COMMITMENT_EXISTS: 409,
  CONSENT_NOT_ACTIVE: 409,
  NONCE_INVALID: 409,
  CHECKPOINT_NOT_INCREASING: 409,
  CHECKPOINT_LOG_OWNED: 409,
  AGREEMENT_ENDED: 409,
  MEMBER_INACTIVE: 409,
  SUBJECT_ERASED: 410,
  COMMITMENT_ERASED: 410,
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415,
  SIGNATURE_INVALID: 422,
  SIGNATURE_EXPIRED: 422,
  CONSENT_EXPIRY_INVALID: 422,
  AGREEMENT_INVALID: 422,
  RATE_LIMITED: 429,
  INTERNAL: 500,
  DATA_TAMPERED: 500,
  CONFIG_INVALID: 500,
  LEDGER_REVERTED: 502,
  LEDGER_UNAVAILABLE: 503,
  LEDGER_STALE: 503,
  LOG_ALARM: 503,
  LEDGER_NOT_DEPLOYED: 503,
  // client-side codes (command-line tools); the gateway never raises them
  GATEWAY_UNAVAILABLE: 503,
  GATEWAY_MISBEHAVED: 502,
  GATEWAY_UNVERIFIED: 502,
  WALLET_MISSING: 500,
  WALLET_EXISTS: 500,
  WALLET_INVALID: 500,
  WALLET_LOCKED: 500,
  WALLET_BAD_PASSPHRASE: 500,
  VERIFY_FAILED: 500,
};

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

/** Fastify's own errors (body parsing, limits, validation) mapped to our codes. */
function fromFastify(err: FastifyError): CustodiaError {
  if (err.validation) return new CustodiaError("BAD_REQUEST", `invalid request: ${err.message}`.slice(0, 300));
  switch (err.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return new CustodiaError("PAYLOAD_TOO_LARGE", "request body is too large");
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return new CustodiaError("UNSUPPORTED_MEDIA_TYPE", "unsupported content type");
    case "FST_ERR_CTP_INVALID_JSON_BODY":
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
    case "FST_ERR_CTP_INVALID_CONTENT_LENGTH":
    case "FST_ERR_CTP_EMPTY_TYPE":
    case "FST_ERR_CTP_INVALID_TYPE":
      return new CustodiaError("BAD_REQUEST", "request body cannot be parsed");
    default:
      break;
  }
  if (err.statusCode === 429) return new CustodiaError("RATE_LIMITED", "too many requests; slow down");
  if (err.statusCode === 413) return new CustodiaError("PAYLOAD_TOO_LARGE", "request body is too large");
  if (err.statusCode === 415) return new CustodiaError("UNSUPPORTED_MEDIA_TYPE", "unsupported content type");
  if (err instanceof SyntaxError || (err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500)) {
    return new CustodiaError("BAD_REQUEST", "malformed request");
  }
  return new CustodiaError("INTERNAL", "internal error");
}

/**
 * A 429 says when to come back (Retry-After, seconds) and, where a limit applies, the limit in the
 * common X-RateLimit-* form. Served answers carry none of these: a client learns its budget here.
 */
function rateLimitHeaders(reply: FastifyReply, err: CustodiaError): void {
  const d = err.details ?? {};
  const wait = typeof d["retryAfterSec"] === "number" ? d["retryAfterSec"] : 1;
  void reply.header("retry-after", String(wait));
  if (typeof d["limit"] === "number") {
    void reply.headers({ "x-ratelimit-limit": String(d["limit"]), "x-ratelimit-remaining": "0", "x-ratelimit-reset": String(wait) });
  }
}

/** Every error leaves as `{ code, message }` with the status from the table; never a stack. */
export function installErrorHandling(app: FastifyInstance): void {
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const err = error instanceof CustodiaError ? error : fromFastify(error);
    const status = HTTP_STATUS[err.code] ?? 500;
    if (status >= 500) request.log.error({ err: error, code: err.code }, "request failed");
    else request.log.info({ code: err.code }, err.message);
    if (err.code === "RATE_LIMITED") rateLimitHeaders(reply, err);
    const message = status >= 500 && err.code === "INTERNAL" ? "internal error" : err.message;
    void reply.status(status).send({ code: err.code, message } satisfies ErrorBody);
  });
  app.setNotFoundHandler((request, reply) => {
    void reply.status(404).send({ code: "NOT_FOUND", message: `no route ${request.method} ${request.url.split("?")[0]}` } satisfies ErrorBody);
  });
}
