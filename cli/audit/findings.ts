/**
 * What `custodia audit verify` can find wrong. Findings are items of the audit report, not
 * exceptions: one run collects every finding it can, and the run as a whole then fails with the
 * core code VERIFY_FAILED (exit code 1). Scripts and tests branch on these codes, never on the
 * messages. Append-only: a code, once published, keeps its meaning.
 */

export const FINDING_CODES = {
  // the gateway and the network it claims
  GATEWAY_NETWORK_MISMATCH: "the gateway says it serves another chain or contract than the one audited",
  GATEWAY_NOT_REGISTERED: "the account the gateway names is not a GATEWAY member on the ledger under the DID the gateway presents",
  GATEWAY_ANSWER_INVALID: "the gateway's answer is not what its audit API promises, or it refused a read it owes an auditor",
  GATEWAY_UNVERIFIED: "the server audited did not prove it holds the key of the gateway DID it presents, for the address the auditor used: no token was sent to it",

  // anchors on the ledger
  ANCHOR_INCONSISTENT: "the ledger's anchor events and its stored roots disagree, or tree sizes do not increase",
  ANCHOR_NOT_GATEWAY: "an anchor was made by an account that is not this gateway, or not an active GATEWAY member at that block",
  CONSISTENCY_PROOF_INVALID: "the gateway cannot prove that a ledger anchor extends the one before it",

  // the gateway's signed checkpoints
  CHECKPOINT_SIGNATURE_INVALID: "a signed checkpoint is malformed, for another log, or not signed by the gateway's key",
  CHECKPOINT_NOT_ANCHORED: "a signed checkpoint names a root the ledger did not anchor for that size",
  CHECKPOINT_MISSING: "the ledger holds an anchor the gateway serves no signed checkpoint for",

  // the entries against the anchored roots
  ANCHOR_ROOT_MISMATCH: "the entries the gateway serves do not hash to the root anchored on the ledger",
  ENTRY_MODIFIED: "an anchored entry was changed",
  ENTRY_DELETED: "an anchored entry is missing: the entries after it moved up one place, or the log ends early",
  ENTRY_REORDERED: "two anchored entries changed places",
  ENTRY_INSERTED: "an entry was put between anchored entries",
  ENTRIES_UNLOCALISED: "the entries do not match the anchored root and the gateway's proofs are not of the anchored tree, so the change cannot be placed",
  INCLUSION_PROOF_INVALID: "the gateway's inclusion proof for an entry does not lead to the anchored root",
  LEAF_HASH_MISMATCH: "the leaf hash the gateway states for an entry is not the hash of the entry it serves",
  LOG_ROOT_MISMATCH: "the root the gateway states for its log is not the root of the entries it serves",

  // what the entries say
  ENTRY_MALFORMED: "an entry is not a well-formed access, erasure, model-card or decision record",
  ENTRY_BLOCK_AFTER_ANCHOR: "an entry claims a decision block later than the anchor that covers it",
  ENTRY_TIME_INVALID: "an entry's decision time is before its block's time, or after the anchor that covers it",
  ENTRY_BLOCK_STALE: "an entry was decided on a block older than the ledger's head at its decision time (a backdated or stale decision)",
  ENTRY_BLOCK_BEFORE_DEPLOYMENT: "an entry claims a decision block before the contracts existed",
  ANCHOR_OVERDUE: "entries have waited longer than allowed for an anchor: the gateway stopped anchoring",
  ACCESS_NOT_PERMITTED: "an allowed access that the ledger did not permit at the block it was decided",
  DENIAL_NOT_SUPPORTED: "a denied access that the ledger would have allowed at that block",
  ACCESS_RECORD_MISMATCH: "an access entry's reason, consent key or agreement differs from the ledger's answer",
  MODEL_CARD_INVALID: "a model card is malformed or its run id is not the hash of its model and data commitment",
  DECISION_WITHOUT_CARD: "a decision whose run has no model card earlier in the log",
  DECISION_CARD_MISMATCH: "a decision's model hash differs from its run's model card",
  DECISION_WITHOUT_CONSENT: "a decision about a subject whose consent did not cover the run at its block",
} as const;

export type FindingCode = keyof typeof FINDING_CODES;

/** One item of the audit report. `index` is the log position the finding is about, when there is one. */
export interface Finding {
  code: FindingCode;
  /** The log ("access" | "decisions"), or "gateway" for findings about the gateway as a whole. */
  log: string;
  index?: number;
  /** One line a person can read. */
  message: string;
  /** Structured, non-secret evidence (roots, sizes, blocks, the ledger's reason). */
  details?: Record<string, unknown>;
}

/** Builds a finding; keeps `index` and `details` out of the object when absent, for tidy JSON. */
export function finding(code: FindingCode, log: string, message: string, index?: number, details?: Record<string, unknown>): Finding {
  return { code, log, ...(index !== undefined ? { index } : {}), message, ...(details !== undefined ? { details } : {}) };
}
