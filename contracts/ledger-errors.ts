import type { Interface } from "ethers";
import { CustodiaError, type ErrorCode } from "../core/errors.js";

/** The contract's custom errors, mapped once to core codes shared with the Fabric adapter. */
export const CONTRACT_ERROR_CODES: Readonly<Record<string, ErrorCode>> = {
  MembershipUnauthorized: "UNAUTHORIZED",
  MembershipInvalidRole: "INVALID_ARGUMENT",
  MembershipInvalidAccount: "INVALID_ADDRESS",
  MembershipExists: "MEMBER_EXISTS",
  MembershipUnknown: "MEMBER_UNKNOWN",
  MembershipInactive: "MEMBER_INACTIVE",
  AgreementInvalid: "AGREEMENT_INVALID",
  AgreementNotPartner: "AGREEMENT_INVALID",
  AgreementUnknown: "AGREEMENT_UNKNOWN",
  AgreementAlreadyEnded: "AGREEMENT_ENDED",
  ConsentInvalidPurpose: "INVALID_PURPOSE",
  ConsentInvalidCategories: "INVALID_CATEGORIES",
  ConsentInvalidPartner: "INVALID_ADDRESS",
  ConsentInvalidExpiry: "CONSENT_EXPIRY_INVALID",
  ConsentNotActive: "CONSENT_NOT_ACTIVE",
  SignatureExpired: "SIGNATURE_EXPIRED",
  SignatureInvalid: "SIGNATURE_INVALID",
  ControllerNoRegistry: "CONFIG_INVALID",
  NonceInvalid: "NONCE_INVALID",
  DataInvalidCommitment: "INVALID_ARGUMENT",
  DataCommitmentExists: "COMMITMENT_EXISTS",
  DataCommitmentUnknown: "COMMITMENT_UNKNOWN",
  DataCommitmentErased: "COMMITMENT_ERASED",
  DataNotOwner: "UNAUTHORIZED",
  CheckpointNotIncreasing: "CHECKPOINT_NOT_INCREASING",
  CheckpointLogOwned: "CHECKPOINT_LOG_OWNED",
  CheckpointInvalidRoot: "INVALID_ARGUMENT",
};

/** ethers error codes that mean "the ledger could not be asked", as opposed to "it said no". */
const UNAVAILABLE = new Set(["NETWORK_ERROR", "SERVER_ERROR", "TIMEOUT", "UNKNOWN_ERROR", "CANCELLED", "UNCONFIGURED_NAME"]);

function findRevertData(e: unknown, depth = 0): string | undefined {
  if (depth > 6 || e === null || typeof e !== "object") return undefined;
  const o = e as Record<string, unknown>;
  const d = o["data"];
  if (typeof d === "string" && /^0x[0-9a-fA-F]{8}/.test(d)) return d;
  if (d && typeof d === "object") {
    const inner = findRevertData(d, depth + 1);
    if (inner) return inner;
  }
  for (const k of ["error", "info", "cause", "revert"]) {
    const inner = findRevertData(o[k], depth + 1);
    if (inner) return inner;
  }
  return undefined;
}

function bigintsToStrings(args: readonly unknown[]): unknown[] {
  return args.map((a) => (typeof a === "bigint" ? a.toString() : a));
}

/**
 * Turns anything an ethers call threw into a CustodiaError: a decoded custom error keeps its name
 * and arguments in `details`; a node that cannot be reached becomes LEDGER_UNAVAILABLE.
 */
export function mapLedgerError(e: unknown, iface: Interface): CustodiaError {
  if (e instanceof CustodiaError) return e;
  const data = findRevertData(e);
  if (data) {
    let parsed: ReturnType<Interface["parseError"]> = null;
    try {
      parsed = iface.parseError(data);
    } catch {
      parsed = null;
    }
    if (parsed) {
      const code = CONTRACT_ERROR_CODES[parsed.name] ?? "LEDGER_REVERTED";
      return new CustodiaError(code, `ledger rejected the call: ${parsed.name}`, { error: parsed.name, args: bigintsToStrings([...parsed.args]) }, { cause: e });
    }
    return new CustodiaError("LEDGER_REVERTED", "ledger reverted with unknown data", { data }, { cause: e });
  }
  const code = (e as { code?: unknown })?.code;
  if (code === "CALL_EXCEPTION") {
    return new CustodiaError("LEDGER_REVERTED", "ledger reverted without a reason", undefined, { cause: e });
  }
  if (typeof code === "string" && UNAVAILABLE.has(code)) {
    return new CustodiaError("LEDGER_UNAVAILABLE", "ledger node cannot be reached", { ethersCode: code }, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  if (/ECONNREFUSED|ECONNRESET|socket hang up|fetch failed|EHOSTUNREACH|ETIMEDOUT/i.test(msg)) {
    return new CustodiaError("LEDGER_UNAVAILABLE", "ledger node cannot be reached", undefined, { cause: e });
  }
  return new CustodiaError("LEDGER_UNAVAILABLE", `ledger call failed: ${msg.slice(0, 200)}`, undefined, { cause: e });
}
