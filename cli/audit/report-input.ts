/**
 * What `custodia audit report` draws: the outcome of `audit verify` plus the entries it read.
 * A stand-in copy of the type the verifier (`cli/audit/verify.ts`) exports; both will point at one
 * definition. Everything in it except the verdict came from a gateway that may be hostile, so the
 * report treats every string as untrusted text.
 */
export interface ReportInput {
  /** ISO 8601 instant the report was produced. */
  generatedAt: string;
  network: { chainId: number; contract: string; gateway: string };
  /** The verifier's verdict. */
  ok: boolean;
  failures: { code: string; log: string; index?: number; message: string }[];
  /** One per access-log entry; `time` is unix seconds, `partner` a ledger address, `purpose` a DPV key, `categories` a bitmask. */
  accesses: { index: number; time: number; partner: string; purpose: string; categories: number; decision: "allow" | "deny"; reason: string; block: number }[];
  /** One per segmentation run: segment name → number of subjects put in it. */
  decisions: { runId: string; partner: string; purpose: string; block: number; time: number; segments: Record<string, number> }[];
  /** Every checkpoint anchored on the ledger; `timestamp` is the block's unix seconds. */
  anchors: { log: string; treeSize: number; blockNumber: number; timestamp: number }[];
  /** log → entries not yet covered by an anchored checkpoint. */
  pending: Record<string, number>;
}
