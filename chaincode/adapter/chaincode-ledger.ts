import { getAddress } from "ethers";
import { CustodiaError } from "../../core/errors.js";
import {
  PERMISSION_REASONS,
  ROLE_NAMES,
  type Address,
  type Agreement,
  type AnchoredCheckpoint,
  type Bytes32,
  type Checkpoint,
  type ConsentState,
  type DataCommitment,
  type Member,
  type PermissionCheck,
} from "../../core/domain.js";
import { custodiaDomain, type ConsentGrantMessage, type ConsentRevokeMessage, type DataCommitmentMessage, type Eip712Domain } from "../../core/eip712.js";
import type {
  AgreementInput,
  LedgerEvent,
  LedgerPort,
  LogHead,
  MemberInput,
  PermissionQuery,
  ReadAt,
  TxResult,
  WatchOptions,
  Watcher,
} from "../../core/ledger.js";
import {
  EVENT_NAMES,
  parseRuleError,
  type AgreementView,
  type CheckpointEntryView,
  type CommitmentView,
  type ConsentView,
  type DomainView,
  type EvaluateTransaction,
  type EventPayload,
  type LogHeadView,
  type MemberView,
  type PermissionView,
  type SubmitTransaction,
  type WhoAmIView,
} from "../src/protocol.js";

/**
 * One chaincode event as a transport delivers it: its block, its transaction, its position among
 * this chaincode's events in the block (Fabric keeps one event per transaction, so this is the
 * index of the transaction among the chaincode's valid transactions of the block), name and payload.
 */
export interface RawChaincodeEvent {
  blockNumber: number;
  txId: string;
  logIndex: number;
  eventName: string;
  payload: Uint8Array;
}

export interface SubmitResult {
  txId: string;
  blockNumber: number;
  /** The transaction function's return value. */
  result: Uint8Array;
}

/**
 * How a ChaincodeLedger reaches the Custodia chaincode. The Fabric Gateway transport
 * (fabric-ledger.ts) talks to a peer; the tests' in-memory stand-in runs the compiled chaincode
 * against a simulated world state. Every method rejects with a CustodiaError.
 */
export interface ChaincodeTransport {
  /** Endorses, submits and waits for the commit; rejects unless the transaction is valid. */
  submit(fn: SubmitTransaction, args: readonly string[]): Promise<SubmitResult>;
  /** Evaluates a read-only transaction on one peer. */
  evaluate(fn: EvaluateTransaction, args: readonly string[]): Promise<Uint8Array>;
  /** Latest committed block number (height - 1). */
  blockNumber(): Promise<number>;
  /** The block's time: the latest transaction timestamp in it (unix seconds). */
  blockTime(block: number): Promise<number>;
  /** The block a committed transaction is in. */
  blockOfTransaction(txId: string): Promise<number>;
  /** This chaincode's events of valid transactions in blocks [fromBlock, toBlock], in ledger order. */
  events(fromBlock: number, toBlock: number): Promise<RawChaincodeEvent[]>;
  /** Follows the chaincode's events from `fromBlock` (see LedgerPort.watch). */
  watch(fromBlock: number, onEvents: (events: RawChaincodeEvent[], throughBlock: number) => void | Promise<void>, options: WatchOptions): Watcher;
  close(): Promise<void>;
}

export interface ChaincodeLedgerOptions {
  /** Block the chaincode was initialised at: where event scans start (default 0). */
  startBlock?: number;
}

const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000";
const EVENTS: ReadonlySet<string> = new Set(EVENT_NAMES);

/**
 * The ledger port over the Custodia chaincode, independent of how the chaincode is reached.
 * Semantics are the EVM adapter's, with one Fabric difference: there are no reads at a past block
 * (a peer only has the current world state), so `at.block` is rejected with INVALID_ARGUMENT and
 * the conformance suite runs with `historicalReads: false`.
 */
export class ChaincodeLedger implements LedgerPort {
  readonly kind = "fabric" as const;
  protected readonly startBlock: number;
  private accountCache: Address | undefined;
  private domainCache: Eip712Domain | undefined;
  private readonly txBlocks = new Map<string, number>();

  constructor(
    protected readonly transport: ChaincodeTransport,
    options: ChaincodeLedgerOptions = {},
  ) {
    this.startBlock = options.startBlock ?? 0;
  }

  /** Whether reads at a past block are possible: never on Fabric. */
  get historicalReads(): false {
    return false;
  }

  async account(): Promise<Address> {
    this.accountCache ??= getAddress((await this.view<WhoAmIView>("WhoAmI", [])).account) as Address;
    return this.accountCache;
  }

  /** The calling identity as the chaincode sees it (MSP id and x509 id), e.g. for diagnostics. */
  whoAmI(): Promise<WhoAmIView> {
    return this.view<WhoAmIView>("WhoAmI", []);
  }

  blockNumber(): Promise<number> {
    return this.transport.blockNumber();
  }

  async blockTime(block?: number): Promise<number> {
    return this.transport.blockTime(block ?? (await this.transport.blockNumber()));
  }

  async eip712Domain(): Promise<Eip712Domain> {
    if (this.domainCache) return this.domainCache;
    const d = await this.view<DomainView>("Eip712Domain", []);
    this.domainCache = { ...custodiaDomain(BigInt(d.chainId), d.verifyingContract), name: d.name, version: d.version };
    return this.domainCache;
  }

  /** Initialises the chaincode once (see CustodiaContract.InitLedger): the caller becomes the first ADMIN. */
  initLedger(domain: { chainId: bigint | number; verifyingContract: string }): Promise<TxResult> {
    return this.write("InitLedger", [BigInt(domain.chainId).toString(), getAddress(domain.verifyingContract)]);
  }

  /* ---------------------------------------------------------- membership */

  registerMember(m: MemberInput): Promise<TxResult> {
    return this.write("RegisterMember", [m.account, m.didHash, m.role, m.orgHash]);
  }

  deactivateMember(account: Address): Promise<TxResult> {
    return this.write("DeactivateMember", [account]);
  }

  async getMember(account: Address, at?: ReadAt): Promise<Member | null> {
    noHistory(at);
    const m = await this.view<MemberView | null>("Member", [account]);
    if (!m) return null;
    if (!ROLE_NAMES.includes(m.role)) throw new CustodiaError("LEDGER_REVERTED", `unknown role ${m.role}`);
    return { account: addr(m.account), didHash: m.didHash as Bytes32, orgHash: m.orgHash as Bytes32, role: m.role, active: m.active };
  }

  /* ---------------------------------------------------------- agreements */

  async registerAgreement(a: AgreementInput): Promise<TxResult & { id: bigint }> {
    const r = await this.submit("RegisterAgreement", [a.partner, dec(a.purposes), dec(a.categories), dec(a.validFrom), dec(a.validUntil), a.termsHash]);
    const text = new TextDecoder().decode(r.result);
    if (!/^[1-9][0-9]*$/.test(text)) throw new CustodiaError("LEDGER_REVERTED", "agreement registered without an id", { result: text.slice(0, 100) });
    return { txId: r.txId, blockNumber: r.blockNumber, id: BigInt(text) };
  }

  endAgreement(id: bigint): Promise<TxResult> {
    return this.write("EndAgreement", [dec(id)]);
  }

  async getAgreement(id: bigint, at?: ReadAt): Promise<Agreement | null> {
    noHistory(at);
    const a = await this.view<AgreementView | null>("Agreement", [dec(id)]);
    if (!a) return null;
    return {
      id: BigInt(a.id),
      partner: addr(a.partner),
      purposes: a.purposes,
      categories: a.categories,
      validFrom: a.validFrom,
      validUntil: a.validUntil,
      termsHash: a.termsHash as Bytes32,
      active: a.active,
    };
  }

  async agreementsOf(partner: Address, at?: ReadAt): Promise<bigint[]> {
    noHistory(at);
    return (await this.view<string[]>("AgreementsOf", [partner])).map((x) => BigInt(x));
  }

  /* ------------------------------------------------------------- consent */

  grantConsent(g: ConsentGrantMessage, signature: string): Promise<TxResult> {
    return this.write("GrantConsent", [g.subject, g.partner, dec(g.purpose), dec(g.categories), dec(g.expiresAt), g.receiptHash, dec(g.nonce), dec(g.deadline), signature]);
  }

  revokeConsent(r: ConsentRevokeMessage, signature: string): Promise<TxResult> {
    return this.write("RevokeConsent", [r.subject, r.partner, dec(r.purpose), dec(r.nonce), dec(r.deadline), signature]);
  }

  async getConsent(subject: Address, partner: Address, purpose: number, at?: ReadAt): Promise<ConsentState> {
    noHistory(at);
    const c = await this.view<ConsentView>("Consent", [subject, partner, dec(purpose)]);
    return {
      subject: addr(subject),
      partner: addr(partner),
      purpose,
      categories: c.categories,
      expiresAt: c.expiresAt,
      grantedAt: c.grantedAt,
      revokedAt: c.revokedAt,
      nonce: c.nonce,
    };
  }

  async checkPermission(q: PermissionQuery, at?: ReadAt): Promise<PermissionCheck> {
    noHistory(at);
    const r = await this.view<PermissionView>("CheckPermission", [q.subject, q.partner, dec(q.purpose), dec(q.categories), dec(q.time)]);
    if (!PERMISSION_REASONS.includes(r.reason)) throw new CustodiaError("LEDGER_REVERTED", `unknown permission reason ${r.reason}`);
    return { allowed: r.allowed, reason: r.reason, agreementId: BigInt(r.agreementId) };
  }

  /* ---------------------------------------------------------------- data */

  commitData(m: DataCommitmentMessage, signature: string): Promise<TxResult> {
    return this.write("CommitData", [m.subject, m.commitment, dec(m.nonce), dec(m.deadline), signature]);
  }

  recordErasure(m: DataCommitmentMessage, signature: string): Promise<TxResult> {
    return this.write("RecordErasure", [m.subject, m.commitment, dec(m.nonce), dec(m.deadline), signature]);
  }

  async getCommitment(commitment: Bytes32, at?: ReadAt): Promise<DataCommitment | null> {
    noHistory(at);
    const c = await this.view<CommitmentView | null>("CommitmentOf", [commitment]);
    if (!c) return null;
    return { commitment, subject: addr(c.subject), committedAt: c.committedAt, erasedAt: c.erasedAt };
  }

  async dataNonce(subject: Address, at?: ReadAt): Promise<bigint> {
    noHistory(at);
    return BigInt(await this.view<string>("DataNonce", [subject]));
  }

  /* --------------------------------------------------------- checkpoints */

  anchorCheckpoint(cp: Checkpoint): Promise<TxResult> {
    return this.write("AnchorCheckpoint", [cp.logId, dec(cp.treeSize), cp.root]);
  }

  async latestCheckpoint(logId: Bytes32, at?: ReadAt): Promise<LogHead | null> {
    noHistory(at);
    const h = await this.view<LogHeadView | null>("LatestCheckpoint", [logId]);
    if (!h || h.count === 0) return null;
    return { gateway: addr(h.gateway), treeSize: Number(h.treeSize), count: h.count };
  }

  async checkpointRoot(logId: Bytes32, treeSize: number, at?: ReadAt): Promise<Bytes32 | null> {
    noHistory(at);
    return (await this.view<string | null>("CheckpointRoot", [logId, dec(treeSize)])) as Bytes32 | null;
  }

  /**
   * The log's anchors from the chaincode's checkpoint history (world state, composite key per
   * logId and tree size) rather than a scan of every block; each entry's block is looked up from
   * its transaction id. `timestamp` is the anchoring transaction's timestamp, the time the
   * chaincode itself used.
   */
  async checkpoints(logId: Bytes32): Promise<AnchoredCheckpoint[]> {
    const entries = await this.view<CheckpointEntryView[]>("CheckpointHistory", [logId]);
    const out: AnchoredCheckpoint[] = [];
    for (const e of entries) {
      out.push({
        logId,
        treeSize: Number(e.treeSize),
        root: e.root as Bytes32,
        gateway: addr(e.gateway),
        blockNumber: await this.blockOf(e.txId),
        timestamp: e.time,
      });
    }
    return out;
  }

  /* -------------------------------------------------------------- events */

  async events(fromBlock: number, toBlock?: number): Promise<LedgerEvent[]> {
    // never past the committed head: a block stream would wait for blocks that do not exist yet
    const head = await this.transport.blockNumber();
    const to = Math.min(toBlock ?? head, head);
    const from = Math.max(fromBlock, this.startBlock);
    if (from > to) return [];
    return decodeEvents(await this.transport.events(from, to));
  }

  watch(fromBlock: number, onEvents: (events: LedgerEvent[], throughBlock: number) => void | Promise<void>, options: WatchOptions = {}): Watcher {
    return this.transport.watch(Math.max(fromBlock, this.startBlock), (raw, through) => onEvents(decodeEvents(raw), through), options);
  }

  close(): Promise<void> {
    return this.transport.close();
  }

  /* ------------------------------------------------------------ plumbing */

  private async blockOf(txId: string): Promise<number> {
    const hit = this.txBlocks.get(txId);
    if (hit !== undefined) return hit;
    const block = await this.transport.blockOfTransaction(txId);
    this.txBlocks.set(txId, block);
    return block;
  }

  protected submit(fn: SubmitTransaction, args: readonly string[]): Promise<SubmitResult> {
    return this.transport.submit(fn, args);
  }

  protected async write(fn: SubmitTransaction, args: readonly string[]): Promise<TxResult> {
    const r = await this.transport.submit(fn, args);
    this.txBlocks.set(r.txId, r.blockNumber);
    return { txId: r.txId, blockNumber: r.blockNumber };
  }

  protected async view<T>(fn: EvaluateTransaction, args: readonly string[]): Promise<T> {
    const bytes = await this.transport.evaluate(fn, args);
    const text = new TextDecoder().decode(bytes);
    try {
      return JSON.parse(text) as T;
    } catch (e) {
      throw new CustodiaError("LEDGER_REVERTED", `${fn} returned no JSON`, { result: text.slice(0, 100) }, { cause: e });
    }
  }
}

/** Maps a chaincode error message to its CustodiaError, or null when it carries no rule code. */
export function ruleErrorFrom(text: string, cause?: unknown): CustodiaError | null {
  const r = parseRuleError(text);
  if (!r) return null;
  return new CustodiaError(r.code, `ledger rejected the call: ${r.error}`, { error: r.error, args: r.args }, { cause });
}

/**
 * The ledger events among chaincode events. LEDGER_UNAVAILABLE (reason "event_undecodable") for an
 * event of a known name whose payload does not read: a follower that skipped it could miss a
 * revocation, so the sync fails instead. Events of other names are skipped.
 */
export function decodeEvents(raw: readonly RawChaincodeEvent[]): LedgerEvent[] {
  const out: LedgerEvent[] = [];
  for (const r of raw) {
    const ev = decodeEvent(r);
    if (ev) out.push(ev);
    else if (EVENTS.has(r.eventName)) {
      throw new CustodiaError("LEDGER_UNAVAILABLE", "the ledger returned a chaincode event that does not decode", { reason: "event_undecodable", event: r.eventName, txId: r.txId, logIndex: r.logIndex });
    }
  }
  return out;
}

export function decodeEvent(raw: RawChaincodeEvent): LedgerEvent | null {
  if (!EVENTS.has(raw.eventName)) return null;
  let p: EventPayload;
  try {
    p = JSON.parse(new TextDecoder().decode(raw.payload)) as EventPayload;
  } catch {
    return null;
  }
  if (!p || p.type !== raw.eventName) return null;
  let ev: LedgerEvent | null;
  try {
    ev = eventOfPayload(p, { blockNumber: raw.blockNumber, txId: raw.txId, logIndex: raw.logIndex });
  } catch {
    return null; // an address or id that does not parse
  }
  return ev && wellFormed(ev) ? ev : null;
}

const HASH_FIELDS: ReadonlySet<string> = new Set(["didHash", "orgHash", "termsHash", "receiptHash", "commitment", "logId", "root"]);
const COUNT_FIELDS: ReadonlySet<string> = new Set(["purposes", "categories", "validFrom", "validUntil", "purpose", "expiresAt", "nonce", "treeSize", "index"]);

/** Every field of the event has its type: a payload missing `purpose` must not become a revocation of nothing. */
function wellFormed(ev: LedgerEvent): boolean {
  for (const [k, v] of Object.entries(ev)) {
    if (HASH_FIELDS.has(k) && !(typeof v === "string" && /^0x[0-9a-fA-F]{64}$/.test(v))) return false;
    if (COUNT_FIELDS.has(k) && !(typeof v === "number" && Number.isSafeInteger(v) && v >= 0)) return false;
    if (k === "role" && !ROLE_NAMES.includes(v as never)) return false;
  }
  return true;
}

function eventOfPayload(p: EventPayload, base: { blockNumber: number; txId: string; logIndex: number }): LedgerEvent | null {
  switch (p.type) {
    case "MemberRegistered":
      return { ...base, type: p.type, account: addr(p.account), role: p.role, didHash: p.didHash as Bytes32, orgHash: p.orgHash as Bytes32 };
    case "MemberDeactivated":
      return { ...base, type: p.type, account: addr(p.account) };
    case "AgreementRegistered":
      return {
        ...base,
        type: p.type,
        id: BigInt(p.id),
        partner: addr(p.partner),
        purposes: p.purposes,
        categories: p.categories,
        validFrom: p.validFrom,
        validUntil: p.validUntil,
        termsHash: p.termsHash as Bytes32,
      };
    case "AgreementEnded":
      return { ...base, type: p.type, id: BigInt(p.id), partner: addr(p.partner) };
    case "ConsentGranted":
      return {
        ...base,
        type: p.type,
        subject: addr(p.subject),
        partner: addr(p.partner),
        purpose: p.purpose,
        categories: p.categories,
        expiresAt: p.expiresAt,
        receiptHash: p.receiptHash as Bytes32,
        nonce: p.nonce,
      };
    case "ConsentRevoked":
      return { ...base, type: p.type, subject: addr(p.subject), partner: addr(p.partner), purpose: p.purpose, nonce: p.nonce };
    case "DataCommitted":
      return { ...base, type: p.type, subject: addr(p.subject), commitment: p.commitment as Bytes32 };
    case "DataErased":
      return { ...base, type: p.type, subject: addr(p.subject), commitment: p.commitment as Bytes32 };
    case "CheckpointAnchored":
      return { ...base, type: p.type, logId: p.logId as Bytes32, gateway: addr(p.gateway), treeSize: Number(p.treeSize), root: p.root as Bytes32, index: p.index };
    default:
      return null;
  }
}

function noHistory(at: ReadAt | undefined): void {
  if (at?.block !== undefined) {
    throw new CustodiaError("INVALID_ARGUMENT", "reads at a past block are not supported on Fabric: a peer serves only the current world state", {
      capability: "historicalReads",
      block: at.block,
    });
  }
}

function addr(a: string): Address {
  return (a === ZERO_ADDRESS ? a : getAddress(a)) as Address;
}

/** Canonical decimal of a non-negative integer argument (what the chaincode accepts). */
function dec(v: number | bigint): string {
  if (typeof v === "number" && !Number.isSafeInteger(v)) throw new CustodiaError("INVALID_ARGUMENT", `${v} is not an integer`);
  const b = BigInt(v);
  if (b < 0n) throw new CustodiaError("INVALID_ARGUMENT", `${v} is negative`);
  return b.toString();
}
