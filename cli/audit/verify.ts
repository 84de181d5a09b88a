/**
 * The independent auditor: verifies a gateway's `access` and `decisions` logs against the ledger,
 * trusting the ledger and nothing the gateway says. It depends only on `core` and on read access
 * to the ledger (an `AuditLedger`, a read-only slice of the LedgerPort) and on an `AuditSource`
 * for the gateway's audit API; never on gateway code. Every answer of the source is hostile
 * input, parsed defensively.
 *
 * First the gateway itself: the account it names must be registered on the ledger as a GATEWAY
 * member under the DID it presents (its logs' ids are bound to that account), and it must say it
 * serves the audited chain and contract. Then, for each log, the checklist:
 * 1. Anchors come from the ledger, not the gateway: the CheckpointAnchored events for
 *    logIdFor(chain, contract, gateway account, log), cross-checked with the contract's stored
 *    root for each size; sizes must increase; each anchor must be by this gateway, an active
 *    GATEWAY member at the anchor's block.
 * 2. The gateway's signed checkpoints must carry the gateway key's signature and name exactly a
 *    root the ledger anchored at that size; every ledger anchor must have one.
 * 3. Successive anchors are consistent: the gateway's RFC 9162 consistency proof between each pair
 *    of successive anchored sizes is verified against the two roots read from the ledger.
 * 4. Entries: all of them are fetched, re-hashed (leaf = SHA-256(0x00 ‖ JCS(entry))) and the
 *    tree recomputed; the root at every anchored size must equal the anchored root. Having every
 *    entry, this proves every anchored entry by itself. The gateway's inclusion proofs are then
 *    checked for a sample per anchor interval (its first and last entry and `proofSample - 2`
 *    random ones, default 4 in all), which tests the gateway's proof service without one request
 *    per entry. Entries beyond the latest anchor are "pending": counted, not judged, since the
 *    ledger does not vouch for them yet.
 * 5. When the entries do not reproduce an anchored root, the change is placed. Within the first
 *    interval whose root fails, the verifier asks for the gateway's inclusion proof of each
 *    position under the anchored root and finds the first position f whose served entry does not
 *    fit there. What the served entries look like then tells the kind of change:
 *    - the entry served at f fits at f+1 and the one at f+1 fits at f: two entries swapped
 *      (ENTRY_REORDERED; also found for farther swaps f <-> g);
 *    - the entry served at f fits at f+1: the original entry f is gone and everything moved up
 *      (ENTRY_DELETED); the log ending before an anchored size is also ENTRY_DELETED;
 *    - the entry served at f+1 fits at f: something was put in at f (ENTRY_INSERTED);
 *    - otherwise, with proofs shown to be of the anchored tree by entries that do fit:
 *      ENTRY_MODIFIED.
 *    This needs proofs of the anchored tree, i.e. a gateway whose tree predates the tampering
 *    of its storage. A gateway that rebuilt its whole tree from rewritten storage proves only
 *    its own tree: then nothing fits, and the finding is ENTRIES_UNLOCALISED, placed only to the
 *    anchor interval (ANCHOR_ROOT_MISMATCH says which anchor failed first).
 * 6. What the entries say, for anchored entries whose prefix matched an anchor:
 *    - access: the decision block is not after the anchor covering the entry, the time is not
 *      before that block's time (nor after the anchor's time plus `maxSkewSec`); an allowed access
 *      must be permitted by `checkPermission({subject, partner, purpose, categories, time},
 *      {block})` on the ledger, with the same agreement; a denied one must be denied there for the
 *      same reason, except SUBJECT_ERASED, a vault fact the ledger does not know, which is
 *      counted as checked by its reason; the consent key must be the one of the triple;
 *    - decisions: each model card's run id must be the hash of its model hash and data
 *      commitment; each decision needs a model card of its run earlier in the log, with the same
 *      model hash, and the subject's consent must cover the card's partner, purpose and
 *      categories at the card's block and time.
 *
 * The result is a VerifyReport: per-log figures, every finding (cli/audit/findings.ts), and the
 * ReportInput the `audit report` command draws. `ok` is false on any finding. Gateway or ledger
 * outages are not findings: they reject (GATEWAY_UNAVAILABLE, LEDGER_UNAVAILABLE), since nothing
 * can be concluded from a run that could not read.
 */
import { getAddress } from "ethers";
import { parseDid } from "../../core/did.js";
import { verifyCheckpointSignature, type SignedCheckpoint } from "../../core/checkpoint.js";
import { PURPOSES, assertCategoryMask, didHash, purposeId, type Address, type Bytes32, type PermissionCheck } from "../../core/domain.js";
import { consentKey } from "../../core/eip712.js";
import { CustodiaError, isCustodiaError } from "../../core/errors.js";
import { bytesEqual, hashCanonical, toHex0x } from "../../core/hash.js";
import { canonicalBytes } from "../../core/jcs.js";
import type { LedgerPort } from "../../core/ledger.js";
import { LedgerHistory } from "../../core/ledger-state.js";
import { LOG_NAMES, logIdFor, type LogName } from "../../core/logs.js";
import { MerkleTree, hashFromHex, leafHash, proofFromHex, rootFromInclusionProof, verifyConsistency, verifyInclusion } from "../../core/merkle.js";
import { finding, type Finding, type FindingCode } from "./findings.js";

/** The ledger reads the auditor needs; nothing that writes. */
export type AuditLedger = Pick<LedgerPort, "blockTime" | "getMember" | "checkPermission" | "checkpointRoot" | "checkpoints"> &
  Partial<Pick<LedgerPort, "events" | "blockNumber">> & {
    /**
     * false when the ledger cannot read state at a past block (a Fabric peer, an EVM node without
     * an archive): the state at each decision's block is then rebuilt from the ledger's events.
     */
    readonly historicalReads?: boolean;
  };

/**
 * The gateway's audit API, as JSON values the verifier parses itself. Implementations reject
 * with GATEWAY_MISBEHAVED for a refused or unreadable answer (a finding about that request) and
 * with GATEWAY_UNAVAILABLE (or an authentication code) when the run cannot go on.
 */
export interface AuditSource {
  /** GET /health. */
  health(): Promise<unknown>;
  /**
   * Has the gateway prove it holds the key of the DID its /health names, for the address asked
   * (GET /v1/gateway/identity): rejects GATEWAY_UNVERIFIED when it does not. A source that signs
   * no tokens (one reading files) leaves it out.
   */
  identity?(): Promise<void>;
  /** GET /v1/audit/logs. */
  logs(): Promise<unknown>;
  /** GET /v1/audit/logs/:log/checkpoints. */
  checkpoints(log: LogName): Promise<unknown>;
  /** GET /v1/audit/logs/:log/entries?start&end (end exclusive, at most 1000). */
  entries(log: LogName, start: number, end: number): Promise<unknown>;
  /** GET /v1/audit/logs/:log/proofs/inclusion?index&size. */
  inclusionProof(log: LogName, index: number, size: number): Promise<unknown>;
  /** GET /v1/audit/logs/:log/proofs/consistency?from&to. */
  consistencyProof(log: LogName, from: number, to: number): Promise<unknown>;
}

/** A progress indicator (cli/io.ts `progress` makes one). */
export interface ProgressLike {
  tick(n?: number): void;
  done(): void;
}

export interface VerifyOptions {
  ledger: AuditLedger;
  source: AuditSource;
  /** The network audited: the ledger's chain and the Custodia contract. */
  network: { chainId: number; contract: Address };
  /** Logs to verify; default both. */
  logs?: readonly LogName[];
  /** Anchors in blocks before this one are not checked (entries are still re-hashed from 0). */
  fromBlock?: number;
  /** Inclusion proofs checked per anchor interval when its root matches. Default 4. */
  proofSample?: number;
  /** Most inclusion proofs fetched to place a change. Default 5,000. */
  maxLocaliseProofs?: number;
  /** Allowed lead of an entry's decision time over its anchor's block time, s. Default 300. */
  maxSkewSec?: number;
  /**
   * How far behind the ledger a decision may be, s: a decision at block B and time t is stale when
   * block B+1 already existed at t minus this (the gateway's staleness bound plus block-time
   * granularity). Default 10.
   */
  maxViewLagSec?: number;
  /** Longest an entry may wait for an anchor, s, before the audit reports ANCHOR_OVERDUE. Default 600. */
  maxAnchorDelaySec?: number;
  /** The block the contracts were deployed at: no decision can be older. Default 0. */
  deployBlock?: number;
  /** Ledger reads in flight at once. Default 8. */
  concurrency?: number;
  progress?: (label: string, total: number) => ProgressLike;
  /**
   * Rebuild past state from ledger events instead of reading at past blocks. Default: only when the
   * ledger says it cannot read at past blocks (`historicalReads: false`).
   */
  replay?: boolean;
  /** The report's time. Default: now. */
  now?: () => Date;
  /** In [0, 1); picks the sampled proofs. Default Math.random. */
  random?: () => number;
}

/** What `custodia audit report` draws; filled in by `verifyAudit` as `VerifyReport.data`. */
export interface ReportInput {
  generatedAt: string; // ISO
  network: { chainId: number; contract: string; gateway: string };
  ok: boolean;
  failures: { code: string; log: string; index?: number; message: string }[];
  accesses: { index: number; time: number; partner: string; purpose: string; categories: number; decision: "allow" | "deny"; reason: string; block: number }[];
  decisions: { runId: string; partner: string; purpose: string; block: number; time: number; segments: Record<string, number> }[]; // per run: segment → subjects
  anchors: { log: string; treeSize: number; blockNumber: number; timestamp: number }[];
  pending: Record<string, number>; // log → un-anchored entries
}

/** Figures for one log. */
export interface LogSummary {
  name: LogName;
  logId: Bytes32;
  /** Entries the gateway serves. */
  size: number;
  /** Ledger anchors checked. */
  anchors: number;
  /** Tree size of the latest ledger anchor (0: none). */
  anchoredSize: number;
  /** Entries proven by an anchored root (and so checked for what they say). */
  entriesVerified: number;
  /** Entries beyond the latest anchor. */
  pending: number;
  /** Signed checkpoints checked against the ledger. */
  checkpointsChecked: number;
  proofsChecked: { inclusion: number; consistency: number };
  /** Access log: decisions re-checked against the ledger at their block. */
  accesses?: { allowed: number; denied: number; erasures: number; checkedOnLedger: number; checkedByReason: number };
  /** Decisions log: runs and per-subject decisions, consents re-checked on the ledger. */
  decisions?: { runs: number; decisions: number; checkedOnLedger: number };
  failures: number;
}

export interface VerifyReport {
  ok: boolean;
  generatedAt: string;
  network: { chainId: number; contract: Address };
  gateway: { did: string | null; account: Address | null };
  logs: LogSummary[];
  /** Every finding, by log and index. */
  failures: Finding[];
  data: ReportInput;
}

/* ------------------------------------------------------------------ internals */

interface Anchor {
  treeSize: number;
  root: Bytes32;
  rootBytes: Uint8Array;
  blockNumber: number;
  timestamp: number;
  gateway: Address;
}

/** At most this many findings of one code per log are listed; the rest are counted in one more. */
const FINDINGS_PER_CODE = 50;
const PAGE = 1000;
const REORDER_SEARCH = 256;
const ADDRESS_RE = /^0x[0-9a-fA-F]{40}$/;
const BYTES32_RE = /^0x[0-9a-fA-F]{64}$/;
const PURPOSE_KEYS: ReadonlySet<string> = new Set(PURPOSES.map((p) => p.key));

const noProgress: ProgressLike = { tick: () => undefined, done: () => undefined };

class Findings {
  readonly list: Finding[] = [];
  private readonly counts = new Map<string, number>();
  private readonly suppressed = new Map<string, { code: FindingCode; log: string; n: number }>();

  add(f: Finding): void {
    const key = `${f.log}/${f.code}`;
    const n = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, n);
    if (n <= FINDINGS_PER_CODE) {
      this.list.push(f);
      return;
    }
    const s = this.suppressed.get(key) ?? { code: f.code, log: f.log, n: 0 };
    s.n++;
    this.suppressed.set(key, s);
  }

  count(log: string): number {
    let n = 0;
    for (const [key, c] of this.counts) if (key.startsWith(`${log}/`)) n += c;
    return n;
  }

  /** The findings in a stable order (log, index, code), with the suppressed ones summarised. */
  final(): Finding[] {
    const out = [...this.list];
    for (const s of this.suppressed.values()) out.push(finding(s.code, s.log, `${s.n} more findings like the ones above were not listed`, undefined, { suppressed: s.n }));
    const logOrder = (l: string): number => (l === "gateway" ? -1 : LOG_NAMES.indexOf(l as LogName));
    return out.sort((a, b) => logOrder(a.log) - logOrder(b.log) || (a.index ?? -1) - (b.index ?? -1) || a.code.localeCompare(b.code));
  }
}

/** Thrown by the parsers below for an answer not of the promised form. */
function misbehaved(what: string, details?: Record<string, unknown>): never {
  throw new CustodiaError("GATEWAY_MISBEHAVED", `the gateway's ${what} is malformed`, details);
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function record(x: unknown): Record<string, unknown> | null {
  return x !== null && typeof x === "object" && !Array.isArray(x) ? (x as Record<string, unknown>) : null;
}

/** An EIP-55 address from hostile input, or null (a mixed-case address must carry a valid checksum). */
function address(x: unknown): Address | null {
  if (typeof x !== "string" || !ADDRESS_RE.test(x)) return null;
  try {
    return getAddress(x) as Address;
  } catch {
    return null;
  }
}

/** Errors from the gateway side that are a finding about one request, not the end of the run. */
function isGatewayFault(e: unknown): e is CustodiaError {
  return isCustodiaError(e) && (e.code === "GATEWAY_MISBEHAVED" || e.code.startsWith("PROOF_"));
}

async function mapLimit<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const item = items[next++]!;
      await fn(item);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/* ------------------------------------------------------------- gateway answers */

interface Listing {
  gateway: Address;
  logs: Map<string, { size: number; root: string; anchored: unknown }>;
}

function parseListing(body: unknown): Listing {
  const b = record(body);
  const gateway = address(b?.["gateway"]);
  if (!b || !gateway || !Array.isArray(b["logs"])) misbehaved("log listing");
  const logs = new Map<string, { size: number; root: string; anchored: unknown }>();
  for (const l of b["logs"] as unknown[]) {
    const r = record(l);
    if (!r || typeof r["name"] !== "string" || !isCount(r["size"]) || typeof r["root"] !== "string") misbehaved("log listing");
    logs.set(r["name"] as string, { size: r["size"] as number, root: r["root"] as string, anchored: r["anchored"] });
  }
  return { gateway, logs };
}

function parseHealth(body: unknown): { did: string; account: Address | null; chainId: unknown; contract: unknown } {
  const b = record(body);
  const gw = record(b?.["gateway"]);
  const ledger = record(b?.["ledger"]);
  if (!gw || typeof gw["did"] !== "string") misbehaved("health answer");
  return { did: gw["did"] as string, account: address(gw["account"]), chainId: ledger?.["chainId"], contract: ledger?.["contract"] };
}

interface ServedEntry {
  index: number;
  entry: unknown;
  leafHash: unknown;
}

function parseEntries(body: unknown, start: number, end: number): ServedEntry[] {
  const b = record(body);
  if (!b || !Array.isArray(b["entries"])) misbehaved(`entries page [${start}, ${end})`);
  const list = b["entries"] as unknown[];
  if (list.length !== end - start) misbehaved(`entries page [${start}, ${end})`, { asked: end - start, got: list.length });
  return list.map((x, k) => {
    const r = record(x);
    if (!r || r["index"] !== start + k || !("entry" in r)) misbehaved(`entry ${start + k}`, { index: start + k });
    return { index: start + k, entry: r["entry"], leafHash: r["leafHash"] };
  });
}

function parseProof(body: unknown, what: string): Uint8Array[] {
  const b = record(body);
  if (!b || !Array.isArray(b["proof"])) misbehaved(what);
  return proofFromHex(b["proof"]);
}

function parseSignedCheckpoint(x: unknown): SignedCheckpoint {
  const r = record(x);
  if (!r) throw new CustodiaError("INVALID_ARGUMENT", "a signed checkpoint is not an object", { reason: "checkpoint_malformed", field: "value" });
  return { logId: r["logId"], treeSize: r["treeSize"], root: r["root"], timestamp: r["timestamp"], gateway: r["gateway"], signature: r["signature"] } as SignedCheckpoint;
}

/* ------------------------------------------------------------------ the run */

/**
 * Runs the whole audit and returns the report. Rejects only when a party cannot be read at all
 * (GATEWAY_UNAVAILABLE, LEDGER_UNAVAILABLE, the gateway refusing the auditor); everything wrong
 * in what they say is a finding in the report.
 */
export async function verifyAudit(options: VerifyOptions): Promise<VerifyReport> {
  const { ledger, source, network } = options;
  const names = options.logs ?? LOG_NAMES;
  const findings = new Findings();
  const generatedAt = (options.now ?? (() => new Date()))().toISOString();
  const contract = getAddress(network.contract) as Address;

  let health: ReturnType<typeof parseHealth>;
  try {
    health = parseHealth(await source.health());
  } catch (e) {
    if (!isGatewayFault(e)) throw e;
    // without the gateway's identity nothing can be fetched or bound to a log id
    findings.add(finding("GATEWAY_ANSWER_INVALID", "gateway", `the gateway's /health cannot be read: ${e.message}`));
    const failures = findings.final();
    const data: ReportInput = { generatedAt, network: { chainId: network.chainId, contract, gateway: "" }, ok: false, failures: failures.map(({ code, log, message }) => ({ code, log, message })), accesses: [], decisions: [], anchors: [], pending: {} };
    return { ok: false, generatedAt, network: { chainId: network.chainId, contract }, gateway: { did: null, account: null }, logs: [], failures, data };
  }
  if (health.chainId !== network.chainId || typeof health.contract !== "string" || health.contract.toLowerCase() !== contract.toLowerCase()) {
    findings.add(
      finding("GATEWAY_NETWORK_MISMATCH", "gateway", `the gateway says it serves chain ${String(health.chainId)}, contract ${String(health.contract)}; the audit is of chain ${network.chainId}, contract ${contract}`, undefined, {
        gatewayChainId: health.chainId,
        gatewayContract: health.contract,
      }),
    );
  }
  // The logs audited are the ones bound to this account: it must be the gateway the consortium
  // registered under the DID the gateway presents, or a gateway could name a fresh account and
  // have nothing anchored to answer for. Checked before any token is signed: the token's audience
  // is that DID, and a gateway claiming another's DID must not collect the auditor's tokens for it.
  let registered = false;
  if (health.account) {
    const member = await ledger.getMember(health.account);
    registered = member !== null && member.role === "GATEWAY" && member.didHash.toLowerCase() === didHash(health.did).toLowerCase();
    if (!registered) {
      findings.add(
        finding("GATEWAY_NOT_REGISTERED", "gateway", `the gateway names account ${health.account} and DID ${health.did.slice(0, 120)}, but the ledger has no GATEWAY member with that account and DID`, undefined, {
          account: health.account,
          member: member ? { role: member.role, active: member.active } : null,
        }),
      );
    }
  } else {
    findings.add(finding("GATEWAY_ANSWER_INVALID", "gateway", "the gateway's /health names no ledger account: its logs cannot be found on the ledger"));
  }
  if (registered && source.identity) {
    try {
      await source.identity();
    } catch (e) {
      if (!isCustodiaError(e, "GATEWAY_UNVERIFIED")) throw e;
      // an impostor naming a registered gateway's account and DID: nothing is asked of it with a token
      registered = false;
      findings.add(finding("GATEWAY_UNVERIFIED", "gateway", e.message, undefined, e.details));
    }
  }
  let listing: Listing | null = null;
  if (registered) {
    try {
      listing = parseListing(await source.logs());
    } catch (e) {
      if (!isGatewayFault(e)) throw e;
      findings.add(finding("GATEWAY_ANSWER_INVALID", "gateway", `the gateway's log listing cannot be read: ${e.message}`));
    }
    if (listing && listing.gateway !== health.account) {
      findings.add(finding("GATEWAY_ANSWER_INVALID", "gateway", `the gateway names account ${health.account} in /health but ${listing.gateway} in its log listing`));
    }
  }
  const account = registered ? health.account : null;

  const data: ReportInput = {
    generatedAt,
    network: { chainId: network.chainId, contract, gateway: account ?? "" },
    ok: false,
    failures: [],
    accesses: [],
    decisions: [],
    anchors: [],
    pending: {},
  };
  const summaries: LogSummary[] = [];
  let history: LedgerHistory | undefined;
  let replay = options.replay ?? ledger.historicalReads === false;
  if (account && !replay && options.replay === undefined) {
    // a node without an archive of past state (or one restarted since) cannot answer reads at old
    // blocks: then the state at each decision's block is rebuilt from events instead
    replay = await ledger.getMember(account, { block: options.deployBlock ?? 0 }).then(
      () => false,
      (e: unknown) => !isCustodiaError(e, "LEDGER_UNAVAILABLE") || /state|trie|header|missing|not available/i.test(String((e as Error).message)),
    );
  }
  if (account && replay) {
    if (!ledger.events || !ledger.blockNumber) throw new CustodiaError("INVALID_ARGUMENT", "replaying past state needs a ledger that reads events");
    history = await LedgerHistory.load({ events: ledger.events.bind(ledger), blockNumber: ledger.blockNumber.bind(ledger), blockTime: ledger.blockTime.bind(ledger) }, options.deployBlock ?? 0);
  }
  if (account) {
    const ctx: RunContext = {
      history,
      options,
      ledger,
      source,
      findings,
      data,
      account,
      signer: didAccount(health.did) ?? account,
      progress: options.progress ?? (() => noProgress),
      permissionCache: new Map(),
      blockTimeCache: new Map(),
    };
    for (const name of names) summaries.push(await verifyLog(ctx, name, logIdFor(network.chainId, contract, account, name), listing?.logs.get(name)));
  }

  const failures = findings.final();
  data.ok = failures.length === 0;
  data.failures = failures.map((f) => ({ code: f.code, log: f.log, ...(f.index !== undefined ? { index: f.index } : {}), message: f.message }));
  data.accesses.sort((a, b) => a.index - b.index);
  return { ok: data.ok, generatedAt, network: { chainId: network.chainId, contract }, gateway: { did: health.did, account }, logs: summaries, failures, data };
}

/** The account a DID's key controls (did:ethr, secp256k1 did:key), or null. */
function didAccount(did: string): Address | null {
  try {
    return parseDid(did).account;
  } catch {
    return null;
  }
}

interface RunContext {
  options: VerifyOptions;
  ledger: AuditLedger;
  source: AuditSource;
  findings: Findings;
  data: ReportInput;
  account: Address;
  /**
   * The key that must sign checkpoints: the account the gateway's DID controls (the DID the ledger
   * registered for the gateway: its did:ethr on an EVM ledger, the did:key of its key on Fabric),
   * else the ledger account itself. On the EVM both are the gateway's account; on Fabric the
   * anchoring account derives from an MSP identity instead.
   */
  signer: Address;
  progress: (label: string, total: number) => ProgressLike;
  permissionCache: Map<string, Promise<PermissionCheck>>;
  blockTimeCache: Map<number, Promise<number>>;
  /** Past state rebuilt from events, when the ledger cannot read at past blocks. */
  history: LedgerHistory | undefined;
}

async function verifyLog(ctx: RunContext, name: LogName, logId: Bytes32, listed: { size: number; root: string; anchored: unknown } | undefined): Promise<LogSummary> {
  const { findings } = ctx;
  const add = (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>): void => findings.add(finding(code, name, message, index, details));
  const summary: LogSummary = {
    name,
    logId,
    size: 0,
    anchors: 0,
    anchoredSize: 0,
    entriesVerified: 0,
    pending: 0,
    checkpointsChecked: 0,
    proofsChecked: { inclusion: 0, consistency: 0 },
    failures: 0,
  };

  // 1. anchors, from the ledger (and the replayed state brought up to them)
  const anchors = await ledgerAnchors(ctx, name, logId, add);
  if (ctx.history && ctx.ledger.events && ctx.ledger.blockNumber) await ctx.history.catchUp({ events: ctx.ledger.events.bind(ctx.ledger), blockNumber: ctx.ledger.blockNumber.bind(ctx.ledger), blockTime: ctx.ledger.blockTime.bind(ctx.ledger) });
  summary.anchors = anchors.length;
  summary.anchoredSize = anchors.at(-1)?.treeSize ?? 0;
  for (const a of anchors) ctx.data.anchors.push({ log: name, treeSize: a.treeSize, blockNumber: a.blockNumber, timestamp: a.timestamp });

  // 2. the gateway's signed checkpoints against them
  summary.checkpointsChecked = await checkSignedCheckpoints(ctx, name, logId, anchors, listed?.anchored, add);

  // 3. consistency between successive anchors
  summary.proofsChecked.consistency = await checkConsistency(ctx, name, anchors, add);

  // 4. entries
  if (!listed) {
    add("GATEWAY_ANSWER_INVALID", `the gateway does not list its "${name}" log`);
    summary.pending = 0;
    summary.failures = findings.count(name);
    return summary;
  }
  // Entries after the latest anchor are not judged, so only the anchored ones are fetched, plus
  // the first pending one to see how long it has waited (a hostile size cannot make us read more).
  const anchoredSize = summary.anchoredSize;
  const served = await fetchEntries(ctx, name, Math.min(listed.size, anchoredSize + 1), add);
  summary.size = served.length;
  const leaves: Uint8Array[] = [];
  for (const s of served) {
    let leaf: Uint8Array;
    try {
      leaf = leafHash(canonicalBytes(s.entry));
    } catch {
      // an entry without a JSON form cannot have been logged; hash its text so positions stay aligned
      leaf = leafHash(new TextEncoder().encode(String(s.entry)));
      add("ENTRY_MALFORMED", `entry ${s.index} has no canonical JSON form`, s.index);
    }
    leaves.push(leaf);
    if (s.leafHash !== undefined && (typeof s.leafHash !== "string" || s.leafHash.toLowerCase() !== toHex0x(leaf))) {
      add("LEAF_HASH_MISMATCH", `the gateway states leaf hash ${String(s.leafHash).slice(0, 80)} for entry ${s.index}, but the entry hashes to ${toHex0x(leaf)}`, s.index);
    }
  }
  const tree = MerkleTree.fromLeafHashes(leaves);
  if (served.length === listed.size && listed.root.toLowerCase() !== toHex0x(tree.rootAt(served.length))) {
    add("LOG_ROOT_MISMATCH", `the gateway states root ${listed.root.slice(0, 80)} for its ${listed.size} entries, but they hash to ${toHex0x(tree.rootAt(served.length))}`, undefined, { size: listed.size });
  }

  // which anchors the entries reproduce
  let verifiedUpTo = 0;
  let firstBad = -1;
  const matched: boolean[] = anchors.map((a) => a.treeSize <= leaves.length && bytesEqual(tree.rootAt(a.treeSize), a.rootBytes));
  anchors.forEach((a, j) => {
    if (matched[j]) verifiedUpTo = Math.max(verifiedUpTo, a.treeSize);
    else if (firstBad < 0) firstBad = j;
  });
  summary.entriesVerified = verifiedUpTo;
  summary.pending = Math.max(0, listed.size - anchoredSize);
  ctx.data.pending[name] = summary.pending;
  const firstPending = served[anchoredSize]?.entry as { at?: unknown } | undefined;
  if (firstPending && typeof firstPending.at === "string" && Number.isFinite(Date.parse(firstPending.at))) {
    const waited = Math.floor(((ctx.options.now ?? (() => new Date()))().getTime() - Date.parse(firstPending.at)) / 1000);
    const limit = ctx.options.maxAnchorDelaySec ?? 600;
    if (waited > limit) add("ANCHOR_OVERDUE", `entry ${anchoredSize} has waited ${waited} s for an anchor (limit ${limit} s): the gateway is not anchoring`, anchoredSize, { waited, pending: summary.pending });
  }

  if (firstBad >= 0) {
    const a = anchors[firstBad]!;
    const start = firstBad > 0 ? anchors[firstBad - 1]!.treeSize : 0;
    const later = anchors.length - firstBad - 1;
    const tail = later > 0 ? ` (and ${later} later anchor${later === 1 ? "" : "s"})` : "";
    if (a.treeSize > leaves.length) {
      add("ANCHOR_ROOT_MISMATCH", `the ledger anchored ${a.treeSize} entries at block ${a.blockNumber}, but the gateway serves only ${leaves.length}${tail}`, start, { treeSize: a.treeSize, blockNumber: a.blockNumber, served: leaves.length });
    } else {
      add("ANCHOR_ROOT_MISMATCH", `entries [0, ${a.treeSize}) hash to ${toHex0x(tree.rootAt(a.treeSize))}, not to the root ${a.root} anchored at block ${a.blockNumber}${tail}`, start, {
        treeSize: a.treeSize,
        blockNumber: a.blockNumber,
        anchoredRoot: a.root,
        computedRoot: toHex0x(tree.rootAt(a.treeSize)),
      });
    }
    await localise(ctx, name, leaves, anchors, firstBad, add);
  }

  // sampled inclusion proofs of the intervals the entries reproduce
  summary.proofsChecked.inclusion = await sampleInclusionProofs(ctx, name, leaves, anchors, matched, add);

  // 6. what the proven entries say
  const proven = served.slice(0, verifiedUpTo);
  if (name === "access") summary.accesses = await checkAccesses(ctx, proven, anchors, add);
  else summary.decisions = await checkDecisions(ctx, proven, anchors, add);

  summary.failures = findings.count(name);
  return summary;
}

/* ----------------------------------------------------------------- 1. anchors */

async function ledgerAnchors(ctx: RunContext, name: LogName, logId: Bytes32, add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void): Promise<Anchor[]> {
  const fromBlock = ctx.options.fromBlock ?? 0;
  const events = (await ctx.ledger.checkpoints(logId)).filter((c) => c.blockNumber >= fromBlock);
  const anchors: Anchor[] = [];
  for (const c of events) {
    const prev = anchors.at(-1);
    if (prev && c.treeSize <= prev.treeSize) {
      add("ANCHOR_INCONSISTENT", `the ledger's anchor of ${c.treeSize} entries at block ${c.blockNumber} does not grow the log beyond ${prev.treeSize}`, undefined, { treeSize: c.treeSize, blockNumber: c.blockNumber });
      continue;
    }
    anchors.push({ treeSize: c.treeSize, root: c.root.toLowerCase() as Bytes32, rootBytes: hashFromHex(c.root), blockNumber: c.blockNumber, timestamp: c.timestamp, gateway: getAddress(c.gateway) as Address });
  }
  const bar = ctx.progress(`${name}: anchors`, anchors.length);
  await mapLimit(anchors, ctx.options.concurrency ?? 8, async (a) => {
    const stored = await ctx.ledger.checkpointRoot(logId, a.treeSize);
    if (stored === null || stored.toLowerCase() !== a.root) {
      add("ANCHOR_INCONSISTENT", `the ledger's event anchors root ${a.root} for ${a.treeSize} entries, but the contract stores ${String(stored)}`, undefined, { treeSize: a.treeSize, blockNumber: a.blockNumber });
    }
    if (a.gateway !== ctx.account) {
      add("ANCHOR_NOT_GATEWAY", `the anchor of ${a.treeSize} entries at block ${a.blockNumber} was made by ${a.gateway}, not by this gateway (${ctx.account})`, undefined, { treeSize: a.treeSize, anchoredBy: a.gateway });
    } else {
      const m = ctx.history ? ctx.history.member(a.gateway, a.blockNumber) : await ctx.ledger.getMember(a.gateway, { block: a.blockNumber });
      if (!m || m.role !== "GATEWAY" || !m.active) {
        add("ANCHOR_NOT_GATEWAY", `at block ${a.blockNumber}, ${a.gateway} was not an active GATEWAY member, yet anchored ${a.treeSize} entries`, undefined, { treeSize: a.treeSize, member: m ? { role: m.role, active: m.active } : null });
      }
    }
    bar.tick();
  });
  bar.done();
  return anchors;
}

/* ------------------------------------------------------- 2. signed checkpoints */

async function checkSignedCheckpoints(
  ctx: RunContext,
  name: LogName,
  logId: Bytes32,
  anchors: Anchor[],
  listedAnchored: unknown,
  add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void,
): Promise<number> {
  let served: unknown[];
  try {
    const body = record(await ctx.source.checkpoints(name));
    if (!body || !Array.isArray(body["checkpoints"])) misbehaved("checkpoint list");
    served = [...(body["checkpoints"] as unknown[])];
  } catch (e) {
    if (!isGatewayFault(e)) throw e;
    add("GATEWAY_ANSWER_INVALID", `the gateway's signed checkpoints cannot be read: ${e.message}`);
    served = [];
  }
  // the listing's "latest anchored" checkpoint is a signed claim too
  if (listedAnchored !== null && listedAnchored !== undefined) served.push(listedAnchored);
  const byAnchor = new Map(anchors.map((a) => [a.treeSize, a]));
  const covered = new Set<number>();
  const seen = new Set<string>();
  let checked = 0;
  for (const raw of served) {
    const r = record(raw);
    const dedupe = typeof r?.["signature"] === "string" ? `${r["signature"]}/${String(r["treeSize"])}` : String(checked);
    if (seen.has(dedupe)) continue;
    seen.add(dedupe);
    checked++;
    let cp: SignedCheckpoint;
    try {
      cp = parseSignedCheckpoint(raw);
      verifyCheckpointSignature(cp);
    } catch (e) {
      if (!isCustodiaError(e)) throw e;
      const size = isCount(r?.["treeSize"]) ? `of ${String(r["treeSize"])} entries ` : "";
      add("CHECKPOINT_SIGNATURE_INVALID", `a signed checkpoint ${size}fails: ${e.message}`, undefined, { reason: e.details?.["reason"] ?? e.code });
      continue;
    }
    if (cp.logId.toLowerCase() !== logId.toLowerCase() || cp.gateway !== ctx.signer) {
      add("CHECKPOINT_SIGNATURE_INVALID", `a signed checkpoint of ${cp.treeSize} entries is for log ${cp.logId} signed by ${cp.gateway}, not this log signed by ${ctx.signer}`, undefined, { treeSize: cp.treeSize });
      continue;
    }
    const anchor = byAnchor.get(cp.treeSize);
    // an anchor before --from-block is not in the list: ask the contract for that size
    const anchoredRoot = anchor?.root ?? (await ctx.ledger.checkpointRoot(logId, cp.treeSize))?.toLowerCase() ?? null;
    if (anchoredRoot === null) {
      add("CHECKPOINT_NOT_ANCHORED", `the gateway serves a signed checkpoint of ${cp.treeSize} entries, but the ledger anchored no root for that size`, undefined, { treeSize: cp.treeSize, root: cp.root });
    } else if (anchoredRoot !== cp.root.toLowerCase()) {
      add("CHECKPOINT_NOT_ANCHORED", `the gateway's signed checkpoint of ${cp.treeSize} entries names root ${cp.root}; the ledger anchored ${anchoredRoot}`, undefined, { treeSize: cp.treeSize, servedRoot: cp.root, anchoredRoot });
    } else {
      covered.add(cp.treeSize);
    }
  }
  for (const a of anchors) {
    if (!covered.has(a.treeSize)) add("CHECKPOINT_MISSING", `the ledger anchored ${a.treeSize} entries at block ${a.blockNumber}, but the gateway serves no signed checkpoint for it`, undefined, { treeSize: a.treeSize });
  }
  return checked;
}

/* ----------------------------------------------------------------- 3. consistency */

async function checkConsistency(ctx: RunContext, name: LogName, anchors: Anchor[], add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void): Promise<number> {
  const pairs = anchors.slice(1).map((a, i) => [anchors[i]!, a] as const);
  const bar = ctx.progress(`${name}: consistency`, pairs.length);
  let checked = 0;
  await mapLimit(pairs, ctx.options.concurrency ?? 8, async ([older, newer]) => {
    try {
      const proof = parseProof(await ctx.source.consistencyProof(name, older.treeSize, newer.treeSize), `consistency proof ${older.treeSize} → ${newer.treeSize}`);
      // both roots from the ledger: the gateway's own rootFrom/rootTo are not consulted
      verifyConsistency(older.treeSize, newer.treeSize, proof, older.rootBytes, newer.rootBytes);
    } catch (e) {
      if (!isGatewayFault(e)) throw e;
      add("CONSISTENCY_PROOF_INVALID", `the anchor of ${newer.treeSize} entries (block ${newer.blockNumber}) is not proven to extend the anchor of ${older.treeSize}: ${e.message}`, older.treeSize, {
        from: older.treeSize,
        to: newer.treeSize,
        reason: e.code,
      });
    }
    checked++;
    bar.tick();
  });
  bar.done();
  return checked;
}

/* ---------------------------------------------------------------- 4. entries */

async function fetchEntries(ctx: RunContext, name: LogName, size: number, add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void): Promise<ServedEntry[]> {
  const out: ServedEntry[] = [];
  const bar = ctx.progress(`${name}: entries`, size);
  for (let start = 0; start < size; start += PAGE) {
    const end = Math.min(size, start + PAGE);
    try {
      out.push(...parseEntries(await ctx.source.entries(name, start, end), start, end));
    } catch (e) {
      if (!isGatewayFault(e)) throw e;
      add("GATEWAY_ANSWER_INVALID", `the gateway's entries [${start}, ${end}) cannot be read (${e.message}); the log is checked up to ${start}`, start);
      break;
    }
    bar.tick(end - start);
  }
  bar.done();
  return out;
}

/** Picks the indices of [from, to) whose inclusion proofs are checked: first, last, and random ones. */
function sampleIndices(from: number, to: number, n: number, random: () => number): number[] {
  if (to - from <= n) return Array.from({ length: to - from }, (_, k) => from + k);
  const picked = new Set<number>([from, to - 1]);
  while (picked.size < n) picked.add(from + Math.floor(random() * (to - from)));
  return [...picked].sort((a, b) => a - b);
}

async function sampleInclusionProofs(
  ctx: RunContext,
  name: LogName,
  leaves: Uint8Array[],
  anchors: Anchor[],
  matched: boolean[],
  add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void,
): Promise<number> {
  const per = Math.max(1, ctx.options.proofSample ?? 4);
  const random = ctx.options.random ?? Math.random;
  const jobs: { index: number; anchor: Anchor }[] = [];
  anchors.forEach((a, j) => {
    if (!matched[j]) return;
    const from = j > 0 ? anchors[j - 1]!.treeSize : 0;
    for (const index of sampleIndices(from, a.treeSize, per, random)) jobs.push({ index, anchor: a });
  });
  const bar = ctx.progress(`${name}: inclusion proofs`, jobs.length);
  let checked = 0;
  await mapLimit(jobs, ctx.options.concurrency ?? 8, async ({ index, anchor }) => {
    try {
      const proof = parseProof(await ctx.source.inclusionProof(name, index, anchor.treeSize), `inclusion proof of entry ${index}`);
      verifyInclusion(index, anchor.treeSize, leaves[index]!, proof, anchor.rootBytes);
    } catch (e) {
      if (!isGatewayFault(e)) throw e;
      add("INCLUSION_PROOF_INVALID", `the gateway's proof that entry ${index} is in the tree of ${anchor.treeSize} entries does not lead to the root anchored at block ${anchor.blockNumber}: ${e.message}`, index, {
        treeSize: anchor.treeSize,
        reason: e.code,
      });
    }
    checked++;
    bar.tick();
  });
  bar.done();
  return checked;
}

/* ------------------------------------------------------------- 5. placing a change */

async function localise(
  ctx: RunContext,
  name: LogName,
  leaves: Uint8Array[],
  anchors: Anchor[],
  bad: number,
  add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void,
): Promise<void> {
  const start = bad > 0 ? anchors[bad - 1]!.treeSize : 0;
  const target = anchors[bad]!;
  const n = leaves.length;
  const proofs = new Map<string, Uint8Array[] | null>();
  let budget = ctx.options.maxLocaliseProofs ?? 5000;
  let witnessed = false;
  const bar = ctx.progress(`${name}: placing a change`, Math.min(n, target.treeSize) - start);

  /** Does `leaf` sit at position p of the anchored tree, by the gateway's proof? null: cannot tell. */
  const fitsAt = async (leaf: Uint8Array, p: number): Promise<boolean | null> => {
    const anchor = anchors.find((a) => a.treeSize > p);
    if (!anchor) return null;
    const key = `${p}/${anchor.treeSize}`;
    let proof = proofs.get(key);
    if (proof === undefined) {
      if (budget-- <= 0) return null;
      try {
        proof = parseProof(await ctx.source.inclusionProof(name, p, anchor.treeSize), `inclusion proof of entry ${p}`);
      } catch (e) {
        if (!isGatewayFault(e)) throw e;
        proof = null;
      }
      proofs.set(key, proof);
    }
    if (proof === null) return null;
    let root: Uint8Array;
    try {
      root = rootFromInclusionProof(p, anchor.treeSize, leaf, proof);
    } catch {
      return null;
    }
    const fits = bytesEqual(root, anchor.rootBytes);
    if (fits) witnessed = true;
    return fits;
  };
  const unlocalised = (why: string): void => {
    add("ENTRIES_UNLOCALISED", `entries in [${start}, ${Math.min(n, target.treeSize)}) differ from what the ledger anchored at block ${target.blockNumber}; ${why}`, start, { from: start, to: target.treeSize });
  };

  let f = -1;
  for (let p = start; p < Math.min(n, target.treeSize); p++) {
    const fits = await fitsAt(leaves[p]!, p);
    bar.tick();
    if (fits === null) {
      bar.done();
      return unlocalised("the gateway gives no usable inclusion proof to place the change");
    }
    if (!fits) {
      f = p;
      break;
    }
  }
  bar.done();
  if (f < 0) {
    if (n < target.treeSize) {
      add("ENTRY_DELETED", `the ledger anchored ${target.treeSize} entries at block ${target.blockNumber}; the gateway serves ${n}: entries from ${n} on are missing`, n, { anchored: target.treeSize, served: n });
      return;
    }
    return unlocalised("every entry fits the gateway's proofs, so the proofs are not of the anchored tree");
  }
  const at = (p: number): Uint8Array | undefined => leaves[p];
  const next = at(f + 1);
  // Two entries swapped, an entry gone, an entry put in — checked in this order, since a swap of
  // neighbours also makes the entry at f fit at f+1.
  if ((await fitsAt(leaves[f]!, f + 1)) === true) {
    if (next && (await fitsAt(next, f)) === true) {
      add("ENTRY_REORDERED", `entries ${f} and ${f + 1} changed places`, f, { with: f + 1 });
    } else {
      add("ENTRY_DELETED", `the anchored entry ${f} is missing: the gateway serves entry ${f + 1} in its place`, f);
    }
    return;
  }
  if (next && (await fitsAt(next, f)) === true) {
    add("ENTRY_INSERTED", `an entry that was not anchored was put in at ${f}: the anchored entry ${f} is served at ${f + 1}`, f);
    return;
  }
  const last = Math.min(n, anchors.at(-1)!.treeSize, f + 1 + REORDER_SEARCH);
  for (let g = f + 2; g < last; g++) {
    if ((await fitsAt(leaves[f]!, g)) === true && (await fitsAt(leaves[g]!, f)) === true) {
      add("ENTRY_REORDERED", `entries ${f} and ${g} changed places`, f, { with: g });
      return;
    }
  }
  // a plain change — if the proofs are shown to be of the anchored tree by some entry that fits
  for (let p = f + 1; !witnessed && p < Math.min(n, target.treeSize, f + 9); p++) await fitsAt(leaves[p]!, p);
  if (witnessed) add("ENTRY_MODIFIED", `the anchored entry ${f} was changed: what the gateway serves there is not what the ledger anchored at block ${target.blockNumber}`, f, { treeSize: target.treeSize });
  else unlocalised("no served entry fits the gateway's proofs under the anchored root, so they are proofs of another tree");
}

/* -------------------------------------------------------------- 6. what entries say */

function covering(anchors: Anchor[], index: number): Anchor {
  let lo = 0;
  let hi = anchors.length - 1;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (anchors[mid]!.treeSize > index) hi = mid;
    else lo = mid + 1;
  }
  return anchors[lo]!;
}

function blockTime(ctx: RunContext, block: number): Promise<number> {
  let t = ctx.blockTimeCache.get(block);
  if (!t) {
    t = ctx.ledger.blockTime(block);
    ctx.blockTimeCache.set(block, t);
  }
  return t;
}

function permission(ctx: RunContext, q: { subject: Address; partner: Address; purpose: number; categories: number; time: number }, block: number): Promise<PermissionCheck> {
  const key = `${q.subject}/${q.partner}/${q.purpose}/${q.categories}/${q.time}@${block}`;
  let p = ctx.permissionCache.get(key);
  if (!p) {
    p = ctx.history ? Promise.resolve(ctx.history.checkPermission(q, block)) : ctx.ledger.checkPermission(q, { block });
    ctx.permissionCache.set(key, p);
  }
  return p;
}

/** Block and time of a decision, checked against the anchor that covers its entry; false when they cannot be used. */
async function checkWhen(ctx: RunContext, index: number, block: number, time: number, anchor: Anchor, add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void): Promise<boolean> {
  if (block > anchor.blockNumber) {
    add("ENTRY_BLOCK_AFTER_ANCHOR", `entry ${index} says it was decided at block ${block}, after block ${anchor.blockNumber} that anchored it`, index, { block, anchorBlock: anchor.blockNumber });
    return false;
  }
  if (block < (ctx.options.deployBlock ?? 0)) {
    add("ENTRY_BLOCK_BEFORE_DEPLOYMENT", `entry ${index} says it was decided at block ${block}, before the contracts were deployed at block ${ctx.options.deployBlock ?? 0}`, index, { block });
    return false;
  }
  const bt = await blockTime(ctx, block);
  const skew = ctx.options.maxSkewSec ?? 300;
  if (time < bt || time > anchor.timestamp + skew) {
    add("ENTRY_TIME_INVALID", `entry ${index} was decided at time ${time}, ${time < bt ? `before its block's time ${bt}` : `more than ${skew} s after its anchor's time ${anchor.timestamp}`}`, index, { time, blockTime: bt, anchorTime: anchor.timestamp });
    return false;
  }
  // The block must have been the ledger's head (give or take the gateway's staleness bound) when
  // the decision was made: otherwise a decision after a revocation could cite the block before it.
  if (block < anchor.blockNumber) {
    const next = await blockTime(ctx, block + 1);
    const lag = ctx.options.maxViewLagSec ?? 10;
    if (next < time - lag) {
      add("ENTRY_BLOCK_STALE", `entry ${index} was decided at time ${time} on block ${block}, but block ${block + 1} existed from time ${next}: the decision was made on a view ${time - next} s stale`, index, { block, time, nextBlockTime: next });
      return false;
    }
  }
  return true;
}

interface AccessFields {
  partner: Address;
  subject: Address;
  purpose: string;
  categories: number;
  decision: "allow" | "deny";
  reason: string;
  block: number;
  time: number;
  consentKey: string;
  agreementId: string;
}

function parseAccess(e: Record<string, unknown>): AccessFields | string {
  const partner = address(e["partner"]);
  const subject = address(e["subject"]);
  if (!partner) return "partner is not an address";
  if (!subject) return "subject is not an address";
  if (typeof e["purpose"] !== "string" || !PURPOSE_KEYS.has(e["purpose"])) return "purpose is not a known purpose";
  try {
    assertCategoryMask(e["categories"] as number);
  } catch {
    return "categories is not a category mask";
  }
  if (e["decision"] !== "allow" && e["decision"] !== "deny") return "decision is neither allow nor deny";
  if (typeof e["reason"] !== "string") return "reason is missing";
  if (!isCount(e["block"]) || !isCount(e["time"])) return "block or time is not a count";
  if (typeof e["consentKey"] !== "string" || !BYTES32_RE.test(e["consentKey"])) return "consentKey is not 32 bytes of hex";
  if (typeof e["agreementId"] !== "string" || !/^\d{1,78}$/.test(e["agreementId"])) return "agreementId is not a decimal id";
  return {
    partner,
    subject,
    purpose: e["purpose"],
    categories: e["categories"] as number,
    decision: e["decision"],
    reason: e["reason"],
    block: e["block"],
    time: e["time"],
    consentKey: e["consentKey"],
    agreementId: e["agreementId"],
  };
}

async function checkAccesses(
  ctx: RunContext,
  entries: ServedEntry[],
  anchors: Anchor[],
  add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void,
): Promise<NonNullable<LogSummary["accesses"]>> {
  const stats = { allowed: 0, denied: 0, erasures: 0, checkedOnLedger: 0, checkedByReason: 0 };
  const jobs: { index: number; a: AccessFields }[] = [];
  for (const s of entries) {
    const e = record(s.entry);
    if (e?.["kind"] === "erasure") {
      if (!address(e["subject"])) add("ENTRY_MALFORMED", `erasure entry ${s.index}: subject is not an address`, s.index);
      else stats.erasures++;
      continue;
    }
    if (!e || e["kind"] !== "access") {
      add("ENTRY_MALFORMED", `entry ${s.index} is neither an access nor an erasure record`, s.index);
      continue;
    }
    const a = parseAccess(e);
    if (typeof a === "string") {
      add("ENTRY_MALFORMED", `access entry ${s.index}: ${a}`, s.index);
      continue;
    }
    if (a.decision === "allow") stats.allowed++;
    else stats.denied++;
    ctx.data.accesses.push({ index: s.index, time: a.time, partner: a.partner, purpose: a.purpose, categories: a.categories, decision: a.decision, reason: a.reason, block: a.block });
    jobs.push({ index: s.index, a });
  }
  const bar = ctx.progress("access: ledger checks", jobs.length);
  await mapLimit(jobs, ctx.options.concurrency ?? 8, async ({ index, a }) => {
    try {
      const pid = purposeId(a.purpose);
      if (a.consentKey.toLowerCase() !== consentKey(a.subject, a.partner, pid).toLowerCase()) {
        add("ACCESS_RECORD_MISMATCH", `access entry ${index} names consent key ${a.consentKey}, not the key of its subject, partner and purpose`, index);
      }
      if (!(await checkWhen(ctx, index, a.block, a.time, covering(anchors, index), add))) return;
      if (a.decision === "deny" && a.reason === "SUBJECT_ERASED") {
        stats.checkedByReason++;
        return;
      }
      const check = await permission(ctx, { subject: a.subject, partner: a.partner, purpose: pid, categories: a.categories, time: a.time }, a.block);
      stats.checkedOnLedger++;
      const evidence = { block: a.block, time: a.time, ledgerReason: check.reason, loggedReason: a.reason };
      if (a.decision === "allow") {
        if (!check.allowed) {
          add("ACCESS_NOT_PERMITTED", `access entry ${index} let ${a.partner} read ${a.subject} for ${a.purpose}, but at block ${a.block} the ledger says ${check.reason}`, index, evidence);
        } else if (a.reason !== "OK" || a.agreementId !== check.agreementId.toString()) {
          add("ACCESS_RECORD_MISMATCH", `allowed access entry ${index} records reason ${a.reason} under agreement ${a.agreementId}; the ledger allows under agreement ${check.agreementId}`, index, evidence);
        }
      } else if (check.allowed) {
        add("DENIAL_NOT_SUPPORTED", `access entry ${index} denied ${a.partner} for ${a.reason}, but at block ${a.block} the ledger allows it`, index, evidence);
      } else if (check.reason !== a.reason) {
        add("ACCESS_RECORD_MISMATCH", `denied access entry ${index} records reason ${a.reason}; the ledger's reason at block ${a.block} is ${check.reason}`, index, evidence);
      }
    } finally {
      bar.tick();
    }
  });
  bar.done();
  return stats;
}

interface Run {
  index: number;
  runId: string;
  partner: Address;
  purpose: string;
  categories: number;
  block: number;
  time: number;
  modelHash: string;
  /** False when its block or time failed their checks: its decisions are not re-checked on the ledger. */
  usable: boolean;
  segments: Record<string, number>;
}

function parseModelCard(e: Record<string, unknown>): Omit<Run, "index" | "usable" | "segments"> | string {
  const partner = address(e["partner"]);
  if (typeof e["runId"] !== "string" || !BYTES32_RE.test(e["runId"])) return "runId is not 32 bytes of hex";
  if (!partner) return "partner is not an address";
  if (typeof e["purpose"] !== "string" || !PURPOSE_KEYS.has(e["purpose"])) return "purpose is not a known purpose";
  try {
    assertCategoryMask(e["categories"] as number);
  } catch {
    return "categories is not a category mask";
  }
  if (!isCount(e["block"]) || !isCount(e["time"])) return "block or time is not a count";
  const card = record(e["card"]);
  if (!card || typeof card["modelHash"] !== "string" || typeof card["dataCommitment"] !== "string") return "the card has no model hash or data commitment";
  const runId = toHex0x(hashCanonical({ modelHash: card["modelHash"], dataCommitment: card["dataCommitment"] }));
  if (runId !== e["runId"].toLowerCase()) return `runId ${e["runId"]} is not the hash of the card's model hash and data commitment (${runId})`;
  return { runId: runId, partner, purpose: e["purpose"], categories: e["categories"] as number, block: e["block"], time: e["time"], modelHash: card["modelHash"].toLowerCase() };
}

async function checkDecisions(
  ctx: RunContext,
  entries: ServedEntry[],
  anchors: Anchor[],
  add: (code: FindingCode, message: string, index?: number, details?: Record<string, unknown>) => void,
): Promise<NonNullable<LogSummary["decisions"]>> {
  const stats = { runs: 0, decisions: 0, checkedOnLedger: 0 };
  const latest = new Map<string, Run>();
  const runs: Run[] = [];
  const jobs: { index: number; subject: Address; run: Run }[] = [];
  const cardChecks: Promise<void>[] = [];
  for (const s of entries) {
    const e = record(s.entry);
    if (e?.["kind"] === "model-card") {
      const c = parseModelCard(e);
      if (typeof c === "string") {
        add("MODEL_CARD_INVALID", `model card ${s.index}: ${c}`, s.index);
        continue;
      }
      // segment names come from the gateway: a null-prototype object keeps "__proto__" and "constructor" plain keys
      const run: Run = { ...c, index: s.index, usable: true, segments: Object.create(null) as Record<string, number> };
      stats.runs++;
      runs.push(run);
      latest.set(run.runId, run);
      cardChecks.push(
        checkWhen(ctx, s.index, run.block, run.time, covering(anchors, s.index), add).then((ok) => {
          run.usable = ok;
        }),
      );
      continue;
    }
    if (!e || e["kind"] !== "decision") {
      add("ENTRY_MALFORMED", `entry ${s.index} is neither a model card nor a decision`, s.index);
      continue;
    }
    const subject = address(e["subject"]);
    if (typeof e["runId"] !== "string" || !subject || typeof e["segment"] !== "string" || typeof e["modelHash"] !== "string") {
      add("ENTRY_MALFORMED", `decision entry ${s.index} lacks a run id, subject, segment or model hash`, s.index);
      continue;
    }
    stats.decisions++;
    const run = latest.get(e["runId"].toLowerCase());
    if (!run) {
      add("DECISION_WITHOUT_CARD", `decision ${s.index} about ${subject} belongs to run ${e["runId"]}, which has no model card before it`, s.index);
      continue;
    }
    if (e["modelHash"].toLowerCase() !== run.modelHash) {
      add("DECISION_CARD_MISMATCH", `decision ${s.index} names model ${e["modelHash"]}, but its run's card (entry ${run.index}) names ${run.modelHash}`, s.index, { card: run.index });
    }
    run.segments[e["segment"]] = (run.segments[e["segment"]] ?? 0) + 1;
    jobs.push({ index: s.index, subject, run });
  }
  await Promise.all(cardChecks);
  const bar = ctx.progress("decisions: ledger checks", jobs.length);
  await mapLimit(jobs, ctx.options.concurrency ?? 8, async ({ index, subject, run }) => {
    try {
      if (!run.usable) return;
      const check = await permission(ctx, { subject, partner: run.partner, purpose: purposeId(run.purpose), categories: run.categories, time: run.time }, run.block);
      stats.checkedOnLedger++;
      if (!check.allowed) {
        add("DECISION_WITHOUT_CONSENT", `decision ${index} put ${subject} in a segment for ${run.partner} (${run.purpose}), but at block ${run.block} the ledger says ${check.reason}`, index, {
          card: run.index,
          block: run.block,
          time: run.time,
          ledgerReason: check.reason,
        });
      }
    } finally {
      bar.tick();
    }
  });
  bar.done();
  for (const r of runs) ctx.data.decisions.push({ runId: r.runId, partner: r.partner, purpose: r.purpose, block: r.block, time: r.time, segments: { ...r.segments } });
  return stats;
}

/* ------------------------------------------------------------------ output */

/** The report as text a person can read: per log what was checked, then every failure. */
export function formatVerifyReport(report: VerifyReport): string {
  const n = (count: number, one: string, many = `${one}s`): string => `${count} ${count === 1 ? one : many}`;
  const lines: string[] = [];
  lines.push(`Audit of gateway ${report.gateway.account ?? "(unknown)"} on chain ${report.network.chainId}, contract ${report.network.contract}`);
  for (const l of report.logs) {
    lines.push("");
    lines.push(`${l.name} log (${l.logId})`);
    lines.push(`  anchors on the ledger:  ${l.anchors} (latest covers ${n(l.anchoredSize, "entry", "entries")}); ${n(l.proofsChecked.consistency, "consistency proof")}, ${n(l.checkpointsChecked, "signed checkpoint")} checked`);
    lines.push(`  entries verified:       ${l.entriesVerified} of ${l.size} against the anchored roots; ${n(l.proofsChecked.inclusion, "inclusion proof")} checked`);
    if (l.accesses) {
      lines.push(`  accesses:               ${l.accesses.allowed} allowed, ${l.accesses.denied} denied, ${n(l.accesses.erasures, "erasure")}`);
      lines.push(`  re-checked on ledger:   ${l.accesses.checkedOnLedger} at their decision block, ${l.accesses.checkedByReason} by reason (SUBJECT_ERASED)`);
    }
    if (l.decisions) {
      lines.push(`  segmentation runs:      ${l.decisions.runs}, ${n(l.decisions.decisions, "decision")}, ${n(l.decisions.checkedOnLedger, "consent")} re-checked on the ledger`);
    }
    lines.push(`  pending (not anchored): ${l.pending}`);
    lines.push(`  failures:               ${l.failures}`);
  }
  lines.push("");
  if (report.failures.length === 0) {
    lines.push("OK: everything anchored verifies against the ledger.");
  } else {
    lines.push(`FAILED: ${n(report.failures.length, "finding")}`);
    for (const f of report.failures) lines.push(`  [${f.code}] ${f.log}${f.index !== undefined ? ` #${f.index}` : ""}: ${f.message}`);
  }
  return lines.join("\n");
}
