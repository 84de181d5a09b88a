/**
 * Signed checkpoints of a gateway's logs: the exact message a gateway signs (EIP-191
 * personal_sign over the RFC 8785 form of {logId, treeSize, root, timestamp, gateway}) and the
 * check of such a signature. Shared by the gateway's anchorer, which signs, and the auditor, which
 * verifies what a gateway serves against what the ledger anchored. Pure: no I/O.
 */
import { getAddress, verifyMessage } from "ethers";
import type { Address, Bytes32 } from "./domain.js";
import { CustodiaError } from "./errors.js";
import { canonicalize } from "./jcs.js";

/** A checkpoint of a log, signed by the gateway key that anchors it. */
export interface SignedCheckpoint {
  logId: Bytes32;
  treeSize: number;
  root: Bytes32;
  /** When the gateway signed it, unix ms. */
  timestamp: number;
  /** EIP-55 checksummed address of the gateway key. */
  gateway: Address;
  /** EIP-191 personal_sign by `gateway` over `checkpointMessage(...)`, 0x hex. */
  signature: string;
}

const BYTES32_RE = /^0x[0-9a-f]{64}$/;
const SIGNATURE_RE = /^0x[0-9a-fA-F]{130}$/;

/** The exact string a gateway signs for a checkpoint: RFC 8785 JSON of the five fields. */
export function checkpointMessage(cp: Omit<SignedCheckpoint, "signature">): string {
  return canonicalize({ logId: cp.logId, treeSize: cp.treeSize, root: cp.root, timestamp: cp.timestamp, gateway: cp.gateway });
}

/**
 * Checks a signed checkpoint's form and that its signature was made by `cp.gateway`. Returns on
 * success. Throws INVALID_ARGUMENT (reason "checkpoint_malformed": hashes must be lowercase 0x
 * hex, gateway EIP-55, sizes and timestamps safe integers) or SIGNATURE_INVALID (reason
 * "signature_malformed" | "signer_mismatch"). Pure: no I/O.
 */
export function verifyCheckpointSignature(cp: SignedCheckpoint): void {
  const malformed = (field: string): never => {
    throw new CustodiaError("INVALID_ARGUMENT", `signed checkpoint has a malformed ${field}`, { reason: "checkpoint_malformed", field });
  };
  if (cp === null || typeof cp !== "object") malformed("value");
  if (typeof cp.logId !== "string" || !BYTES32_RE.test(cp.logId)) malformed("logId");
  if (typeof cp.root !== "string" || !BYTES32_RE.test(cp.root)) malformed("root");
  if (!Number.isSafeInteger(cp.treeSize) || cp.treeSize < 0) malformed("treeSize");
  if (!Number.isSafeInteger(cp.timestamp) || cp.timestamp < 0) malformed("timestamp");
  let gateway: string;
  try {
    gateway = getAddress(cp.gateway);
  } catch {
    return malformed("gateway");
  }
  if (gateway !== cp.gateway) malformed("gateway");
  if (typeof cp.signature !== "string" || !SIGNATURE_RE.test(cp.signature)) {
    throw new CustodiaError("SIGNATURE_INVALID", "checkpoint signature is not a 65-byte hex signature", { reason: "signature_malformed" });
  }
  let recovered: string;
  try {
    recovered = verifyMessage(checkpointMessage(cp), cp.signature);
  } catch (e) {
    throw new CustodiaError("SIGNATURE_INVALID", "checkpoint signature cannot be recovered", { reason: "signature_malformed" }, { cause: e });
  }
  if (recovered !== gateway) {
    throw new CustodiaError("SIGNATURE_INVALID", "checkpoint was not signed by its gateway", { reason: "signer_mismatch", gateway, recovered });
  }
}
