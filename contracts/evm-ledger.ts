import {
  BaseWallet,
  Contract,
  Interface,
  JsonRpcProvider,
  Network,
  getAddress,
  getNumber,
  Transaction,
  type ContractMethod,
  type EventFragment,
  type Log,
  type Provider,
  type Signer,
  type ContractTransactionResponse,
  type TransactionResponse,
} from "ethers";
import { CustodiaError } from "../core/errors.js";
import { Role, flatString, roleName, type Address, type Agreement, type AnchoredCheckpoint, type Bytes32, type Checkpoint, type ConsentState, type DataCommitment, type Member, type PermissionCheck, PERMISSION_REASONS } from "../core/domain.js";
import { custodiaDomain, type ConsentGrantMessage, type ConsentRevokeMessage, type DataCommitmentMessage, type Eip712Domain } from "../core/eip712.js";
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
} from "../core/ledger.js";
import { loadArtifact } from "./artifacts.js";
import { FastJsonRpcProvider } from "./json-rpc-http.js";
import { mapLedgerError } from "./ledger-errors.js";
import { pollWatch } from "../core/poll-watch.js";

const ZERO32 = `0x${"0".repeat(64)}`;

export interface EvmLedgerOptions {
  provider: Provider;
  /** Address of the deployed Custodia contract. */
  address: string;
  /** Submits writes; reads work without one. */
  signer?: Signer;
  /** Block the contract was deployed at: where event scans start. */
  deployBlock?: number;
  /** Polling interval for watch(), ms. */
  pollMs?: number;
}

/**
 * A JSON-RPC provider set up the way a long-running service needs it: a fixed network (no
 * detection retries when the node is down), no response cache (fresh reads for fail-closed
 * decisions), and a per-request timeout so an unresponsive node surfaces as LEDGER_UNAVAILABLE.
 * Requests go over kept-alive sockets (FastJsonRpcProvider): the gateway asks for the head block
 * on every burst of decisions, and ethers' own path cost ~1.4 ms and ~400 µs of CPU per call (a
 * timer-driven queue and an http.ClientRequest each time) where a plain socket write costs ~70 µs.
 */
export function jsonRpcProvider(url: string, chainId: number, timeoutMs = 5_000): JsonRpcProvider {
  const network = Network.from(chainId);
  return new FastJsonRpcProvider(url, network, { staticNetwork: network, cacheTimeout: -1, pollingInterval: 250 }, { timeoutMs });
}

/** Per provider and sending account: the serialised send queue and the next nonce. */
interface SenderState {
  address: string;
  queue: Promise<unknown>;
  /** undefined: ask the node (at start, and after any failed send). */
  next: number | undefined;
}
const senders = new WeakMap<Provider, Map<string, SenderState>>();

/** Checksummed forms of addresses seen in logs (getAddress is a Keccak in JavaScript); bounded. */
const checksummed = new Map<string, string>();
const CHECKSUM_MEMO_MAX = 100_000;
const HEX64 = /^0x[0-9a-fA-F]{64}$/;
const UINT_TYPE = /^uint(\d{1,3})$/;

function checksumAddress(hex40: string): string {
  const lower = hex40.toLowerCase();
  let out = checksummed.get(lower);
  if (out === undefined) {
    out = flatString(getAddress(`0x${lower}`));
    if (checksummed.size >= CHECKSUM_MEMO_MAX) checksummed.clear();
    checksummed.set(lower, out);
  }
  return out;
}

/** What decodeStaticEvent needs of an event, worked out once per fragment (ethers' topicHash getter hashes on every read). */
interface StaticLayout {
  /** Per parameter: "address", "bytes32" or a uint's bit width; undefined when a parameter is of another type. */
  kinds: Array<"address" | "bytes32" | number> | undefined;
  indexed: number;
  topic0: string;
}
const layouts = new WeakMap<EventFragment, StaticLayout>();
function layoutOf(fragment: EventFragment): StaticLayout {
  let layout = layouts.get(fragment);
  if (layout === undefined) {
    let kinds: StaticLayout["kinds"] = [];
    for (const input of fragment.inputs) {
      const bits = Number(UINT_TYPE.exec(input.type)?.[1]);
      if (input.type === "address" || input.type === "bytes32") kinds.push(input.type);
      else if (bits % 8 === 0 && bits >= 8 && bits <= 256) kinds.push(bits);
      else {
        kinds = undefined;
        break;
      }
    }
    layout = { kinds, indexed: fragment.inputs.filter((i) => i.indexed).length, topic0: fragment.topicHash };
    layouts.set(fragment, layout);
  }
  return layout;
}

/**
 * Decodes a log of an event whose parameters are all one-word static types (address, uintN,
 * bytes32: every event of the Custodia contract), as ethers' `decodeEventLog` would — addresses
 * checksummed, integers as bigint, bytes32 as lower-case hex — without ethers' per-log Keccak work
 * (the event's topic hash, each address's checksum) and its Result proxies: ethers' `parseLog`
 * took 0.5–0.65 ms a log here, this ~13 µs once an address's checksum is memoised. Returns
 * undefined for an event with any other parameter type (the caller falls back to ethers). Throws
 * when the log does not fit the event: another event's topic 0, a topic or data word missing or
 * extra, a malformed topic, an address or integer wider than its type — stricter than ethers,
 * which masks an over-wide integer and ignores extra data; Solidity emits neither.
 */
export function decodeStaticEvent(fragment: EventFragment, topics: ReadonlyArray<string>, data: string): unknown[] | undefined {
  const { kinds, indexed, topic0 } = layoutOf(fragment);
  if (kinds === undefined) return undefined;
  const inputs = fragment.inputs;
  if (topics.length !== indexed + (fragment.anonymous ? 0 : 1)) throw new Error(`log has ${topics.length} topics, event ${fragment.name} has ${indexed} indexed parameters`);
  const words = inputs.length - indexed;
  if (typeof data !== "string" || data.length !== 2 + 64 * words || !/^0x[0-9a-fA-F]*$/.test(data)) throw new Error(`log data does not hold the ${words} words of event ${fragment.name}`);
  if (!fragment.anonymous && topics[0]!.toLowerCase() !== topic0) throw new Error(`topic 0 is not event ${fragment.name}'s`);
  let topic = fragment.anonymous ? 0 : 1;
  let word = 0;
  return inputs.map((input, i) => {
    let hex: string;
    if (input.indexed) {
      hex = topics[topic++]!;
      if (!HEX64.test(hex)) throw new Error(`topic ${topic - 1} is not 32 bytes`);
      hex = hex.slice(2);
    } else {
      hex = data.slice(2 + 64 * word, 2 + 64 * (word + 1));
      word++;
    }
    const kind = kinds[i]!;
    if (kind === "bytes32") return `0x${hex.toLowerCase()}`;
    const width = kind === "address" ? 40 : kind / 4;
    if (!/^0*$/.test(hex.slice(0, 64 - width))) throw new Error(`parameter ${input.name} is wider than ${input.type}`);
    return kind === "address" ? checksumAddress(hex.slice(24)) : BigInt(`0x${hex}`);
  });
}

function isNonceConflict(e: unknown): boolean {
  const code = (e as { code?: unknown })?.code;
  return code === "NONCE_EXPIRED" || code === "REPLACEMENT_UNDERPRICED" || /nonce too low|already known/i.test(String((e as Error)?.message));
}

/** Every EvmLedger submitting as the same account through the same provider shares one nonce sequence. */
async function nonceState(provider: Provider, signer: Signer): Promise<SenderState> {
  const address = getAddress(await signer.getAddress());
  let byAccount = senders.get(provider);
  if (!byAccount) {
    byAccount = new Map();
    senders.set(provider, byAccount);
  }
  let state = byAccount.get(address);
  if (!state) {
    state = { address, queue: Promise.resolve(), next: undefined };
    byAccount.set(address, state);
  }
  return state;
}

/** The EVM adapter of the ledger port (ethers 6). */
export class EvmLedger implements LedgerPort {
  readonly kind = "evm" as const;
  readonly address: Address;
  readonly iface: Interface;
  readonly provider: Provider;
  readonly signer: Signer | undefined;
  private readonly contract: Contract;
  private readonly deployBlock: number;
  private readonly pollMs: number;
  /** This adapter's latest submission (close() waits for it). */
  private lastSend: Promise<unknown> = Promise.resolve();
  private feeCache: { at: number; value: Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint }> } | undefined;
  private domainCache: Eip712Domain | undefined;
  private readonly blockTimes = new Map<number, number>();
  /**
   * The contract's events by topic 0. ethers' `parseLog` finds a log's event by recomputing every
   * event's Keccak topic hash, in JavaScript, for each log (~0.5 ms a log here).
   */
  private readonly eventsByTopic = new Map<string, EventFragment>();

  constructor(options: EvmLedgerOptions) {
    const artifact = loadArtifact("Custodia");
    this.iface = new Interface(artifact.abi as never);
    this.iface.forEachEvent((fragment) => this.eventsByTopic.set(fragment.topicHash, fragment));
    this.provider = options.provider;
    this.signer = options.signer;
    this.address = getAddress(options.address) as Address;
    this.contract = new Contract(this.address, this.iface, options.signer ?? options.provider);
    this.deployBlock = options.deployBlock ?? 0;
    this.pollMs = options.pollMs ?? 500;
  }

  /** The same ledger, submitting as another signer. */
  connect(signer: Signer): EvmLedger {
    return new EvmLedger({ provider: this.provider, address: this.address, signer, deployBlock: this.deployBlock, pollMs: this.pollMs });
  }

  async account(): Promise<Address> {
    if (!this.signer) throw new CustodiaError("CONFIG_INVALID", "this ledger adapter has no signer");
    return getAddress(await this.signer.getAddress()) as Address;
  }

  async blockNumber(): Promise<number> {
    // The gateway asks this once per burst of decisions: straight to the node when the provider is
    // ours, without ethers' request pipeline (a perform/format round of promises per call).
    const provider = this.provider;
    if (provider instanceof FastJsonRpcProvider) return this.guard(async () => getNumber((await provider.send("eth_blockNumber", [])) as string, "eth_blockNumber"));
    return this.guard(() => provider.getBlockNumber());
  }

  async blockTime(block?: number): Promise<number> {
    if (block !== undefined) {
      const hit = this.blockTimes.get(block);
      if (hit !== undefined) return hit;
    }
    const b = await this.guard(() => this.provider.getBlock(block ?? "latest"));
    if (!b) throw new CustodiaError("INVALID_ARGUMENT", `block ${block} does not exist`);
    if (block !== undefined) {
      if (this.blockTimes.size >= 10_000) this.blockTimes.clear();
      this.blockTimes.set(block, b.timestamp);
    }
    return b.timestamp;
  }

  async eip712Domain(): Promise<Eip712Domain> {
    if (this.domainCache) return this.domainCache;
    const d = await this.read<[string, string, string, bigint, string]>("eip712Domain", []);
    this.domainCache = { ...custodiaDomain(d[3], d[4]), name: d[1], version: d[2] };
    return this.domainCache;
  }

  /* ---------------------------------------------------------- membership */

  registerMember(m: MemberInput): Promise<TxResult> {
    return this.write("registerMember", [m.account, m.didHash, Role[m.role], m.orgHash]);
  }

  deactivateMember(account: Address): Promise<TxResult> {
    return this.write("deactivateMember", [account]);
  }

  async getMember(account: Address, at?: ReadAt): Promise<Member | null> {
    const m = await this.read<{ didHash: string; orgHash: string; role: bigint; active: boolean }>("member", [account], at);
    if (Number(m.role) === Role.NONE) return null;
    return { account: getAddress(account) as Address, didHash: m.didHash as Bytes32, orgHash: m.orgHash as Bytes32, role: roleName(Number(m.role)), active: m.active };
  }

  /* ---------------------------------------------------------- agreements */

  async registerAgreement(a: AgreementInput): Promise<TxResult & { id: bigint }> {
    const { result, logs } = await this.writeWithLogs("registerAgreement", [a.partner, a.purposes, a.categories, a.validFrom, a.validUntil, a.termsHash]);
    const ev = logs.map((l) => this.eventOf(l)).find((e) => e?.type === "AgreementRegistered");
    if (!ev || ev.type !== "AgreementRegistered") throw new CustodiaError("LEDGER_REVERTED", "agreement registered without its event");
    return { ...result, id: ev.id };
  }

  endAgreement(id: bigint): Promise<TxResult> {
    return this.write("endAgreement", [id]);
  }

  async getAgreement(id: bigint, at?: ReadAt): Promise<Agreement | null> {
    const a = await this.read<{ partner: string; purposes: bigint; categories: bigint; validFrom: bigint; validUntil: bigint; active: boolean; termsHash: string }>("agreement", [id], at);
    if (a.partner === "0x0000000000000000000000000000000000000000") return null;
    return {
      id,
      partner: getAddress(a.partner) as Address,
      purposes: Number(a.purposes),
      categories: Number(a.categories),
      validFrom: Number(a.validFrom),
      validUntil: Number(a.validUntil),
      termsHash: a.termsHash as Bytes32,
      active: a.active,
    };
  }

  async agreementsOf(partner: Address, at?: ReadAt): Promise<bigint[]> {
    const ids = await this.read<bigint[]>("agreementsOf", [partner], at);
    return [...ids];
  }

  /* -------------------------------------------------------- key rotation */

  /**
   * EVM only: copies the ERC-1056 owner of `subject` into the contract, so after a key rotation
   * the new key signs for the subject and the old one is refused. Permissionless.
   */
  syncController(subject: Address): Promise<TxResult> {
    return this.write("syncController", [subject]);
  }

  async controllerOf(subject: Address, at?: ReadAt): Promise<Address> {
    return getAddress(await this.read<string>("controllerOf", [subject], at)) as Address;
  }

  /* ------------------------------------------------------------- consent */

  grantConsent(g: ConsentGrantMessage, signature: string): Promise<TxResult> {
    return this.write("grantConsent", [[g.subject, g.partner, g.purpose, g.categories, g.expiresAt, g.receiptHash, g.nonce, g.deadline], signature]);
  }

  revokeConsent(r: ConsentRevokeMessage, signature: string): Promise<TxResult> {
    return this.write("revokeConsent", [[r.subject, r.partner, r.purpose, r.nonce, r.deadline], signature]);
  }

  async getConsent(subject: Address, partner: Address, purpose: number, at?: ReadAt): Promise<ConsentState> {
    const c = await this.read<{ categories: bigint; expiresAt: bigint; grantedAt: bigint; revokedAt: bigint; nonce: bigint }>("consent", [subject, partner, purpose], at);
    return {
      subject: getAddress(subject) as Address,
      partner: getAddress(partner) as Address,
      purpose,
      categories: Number(c.categories),
      expiresAt: Number(c.expiresAt),
      grantedAt: Number(c.grantedAt),
      revokedAt: Number(c.revokedAt),
      nonce: Number(c.nonce),
    };
  }

  async checkPermission(q: PermissionQuery, at?: ReadAt): Promise<PermissionCheck> {
    const r = await this.read<[boolean, bigint, bigint]>("checkPermission", [q.subject, q.partner, q.purpose, q.categories, q.time], at);
    const reason = PERMISSION_REASONS[Number(r[1])];
    if (!reason) throw new CustodiaError("LEDGER_REVERTED", `unknown permission reason ${r[1]}`);
    return { allowed: r[0], reason, agreementId: r[2] };
  }

  /* ---------------------------------------------------------------- data */

  commitData(m: DataCommitmentMessage, signature: string): Promise<TxResult> {
    return this.write("commitData", [[m.subject, m.commitment, m.nonce, m.deadline], signature]);
  }

  recordErasure(m: DataCommitmentMessage, signature: string): Promise<TxResult> {
    return this.write("recordErasure", [[m.subject, m.commitment, m.nonce, m.deadline], signature]);
  }

  async getCommitment(commitment: Bytes32, at?: ReadAt): Promise<DataCommitment | null> {
    const r = await this.read<[string, bigint, bigint]>("commitmentOf", [commitment], at);
    if (r[0] === "0x0000000000000000000000000000000000000000") return null;
    return { commitment, subject: getAddress(r[0]) as Address, committedAt: Number(r[1]), erasedAt: Number(r[2]) };
  }

  dataNonce(subject: Address, at?: ReadAt): Promise<bigint> {
    return this.read<bigint>("dataNonce", [subject], at);
  }

  /* --------------------------------------------------------- checkpoints */

  anchorCheckpoint(cp: Checkpoint): Promise<TxResult> {
    return this.write("anchorCheckpoint", [cp.logId, cp.treeSize, cp.root]);
  }

  async latestCheckpoint(logId: Bytes32, at?: ReadAt): Promise<LogHead | null> {
    const r = await this.read<[string, bigint, bigint]>("latestCheckpoint", [logId], at);
    if (Number(r[2]) === 0) return null;
    return { gateway: getAddress(r[0]) as Address, treeSize: Number(r[1]), count: Number(r[2]) };
  }

  async checkpointRoot(logId: Bytes32, treeSize: number, at?: ReadAt): Promise<Bytes32 | null> {
    const root = await this.read<string>("checkpointRoot", [logId, treeSize], at);
    return root === ZERO32 ? null : (root as Bytes32);
  }

  async checkpoints(logId: Bytes32): Promise<AnchoredCheckpoint[]> {
    const topic = this.iface.getEvent("CheckpointAnchored")!.topicHash;
    const logs = await this.guard(() => this.provider.getLogs({ address: this.address, fromBlock: this.deployBlock, toBlock: "latest", topics: [topic, logId] }));
    const out: AnchoredCheckpoint[] = [];
    for (const log of logs) {
      const ev = this.eventOf(log);
      if (ev?.type !== "CheckpointAnchored") continue;
      out.push({ logId: ev.logId, treeSize: ev.treeSize, root: ev.root, gateway: ev.gateway, blockNumber: ev.blockNumber, timestamp: await this.blockTime(ev.blockNumber) });
    }
    return out;
  }

  /* -------------------------------------------------------------- events */

  async events(fromBlock: number, toBlock?: number): Promise<LedgerEvent[]> {
    const logs = await this.guard(() => this.provider.getLogs({ address: this.address, fromBlock: Math.max(fromBlock, this.deployBlock), toBlock: toBlock ?? "latest" }));
    const out: LedgerEvent[] = [];
    for (const l of logs) {
      const ev = this.eventOf(l);
      if (ev) out.push(ev);
    }
    return out;
  }

  watch(fromBlock: number, onEvents: (events: LedgerEvent[], throughBlock: number) => void | Promise<void>, options: WatchOptions = {}): Watcher {
    return pollWatch<LedgerEvent>(this, fromBlock, onEvents, options, this.pollMs);
  }

  async close(): Promise<void> {
    await this.lastSend;
  }

  /** Decodes one contract log into a ledger event; foreign logs, and logs that do not decode, give null. */
  parse(log: Log): LedgerEvent | null {
    try {
      return this.eventOf(log);
    } catch (e) {
      if (e instanceof CustodiaError && e.details?.["reason"] === "event_undecodable") return null;
      throw e;
    }
  }

  /**
   * `parse` for the ledger's own answers: one of the contract's events that does not decode is
   * LEDGER_UNAVAILABLE (reason "event_undecodable"), not skipped — a follower that skipped it could
   * miss a revocation, an auditor a checkpoint.
   */
  private eventOf(log: Log): LedgerEvent | null {
    let decoded: ReturnType<EvmLedger["decodeLog"]>;
    try {
      decoded = this.decodeLog(log);
    } catch (e) {
      throw new CustodiaError(
        "LEDGER_UNAVAILABLE",
        "the ledger node returned a contract event that does not decode",
        { reason: "event_undecodable", event: this.eventsByTopic.get(log.topics[0]!.toLowerCase())!.name, txId: log.transactionHash, logIndex: log.index },
        { cause: e },
      );
    }
    return decoded ? this.toEvent(decoded.fragment, decoded.args, log) : null;
  }

  /** The contract event a log is, and its arguments; undefined for a log of no event of the contract; throws when it does not decode. */
  private decodeLog(log: Log): { fragment: EventFragment; args: ReadonlyArray<unknown> } | undefined {
    const fragment = log.topics.length > 0 ? this.eventsByTopic.get(log.topics[0]!.toLowerCase()) : undefined;
    if (!fragment) return undefined;
    return { fragment, args: decodeStaticEvent(fragment, log.topics, log.data) ?? [...this.iface.decodeEventLog(fragment, log.data, log.topics)] };
  }

  /** The ledger event of a decoded log; null for the contract's events that are not ledger events. */
  private toEvent(fragment: EventFragment, decoded: ReadonlyArray<unknown>, log: Log): LedgerEvent | null {
    const base = { blockNumber: log.blockNumber, txId: log.transactionHash, logIndex: log.index };
    // addresses come out checksummed (decodeStaticEvent, and ethers alike): no getAddress again
    const a = decoded as any[]; // eslint-disable-line @typescript-eslint/no-explicit-any
    switch (fragment.name) {
      case "MemberRegistered":
        return { ...base, type: fragment.name, account: a[0] as Address, role: roleName(Number(a[1])), didHash: a[2], orgHash: a[3] };
      case "MemberDeactivated":
        return { ...base, type: fragment.name, account: a[0] as Address };
      case "AgreementRegistered":
        return { ...base, type: fragment.name, id: a[0], partner: a[1] as Address, purposes: Number(a[2]), categories: Number(a[3]), validFrom: Number(a[4]), validUntil: Number(a[5]), termsHash: a[6] };
      case "AgreementEnded":
        return { ...base, type: fragment.name, id: a[0], partner: a[1] as Address };
      case "ConsentGranted":
        return { ...base, type: fragment.name, subject: a[0] as Address, partner: a[1] as Address, purpose: Number(a[2]), categories: Number(a[3]), expiresAt: Number(a[4]), receiptHash: a[5], nonce: Number(a[6]) };
      case "ConsentRevoked":
        return { ...base, type: fragment.name, subject: a[0] as Address, partner: a[1] as Address, purpose: Number(a[2]), nonce: Number(a[3]) };
      case "DataCommitted":
        return { ...base, type: fragment.name, subject: a[0] as Address, commitment: a[1] };
      case "DataErased":
        return { ...base, type: fragment.name, subject: a[0] as Address, commitment: a[1] };
      case "CheckpointAnchored":
        return { ...base, type: fragment.name, logId: a[0], gateway: a[1] as Address, treeSize: Number(a[2]), root: a[3], index: Number(a[4]) };
      default:
        return null;
    }
  }

  /* ------------------------------------------------------------ plumbing */

  /** EIP-1559 fees (or a legacy gas price), refreshed at most once a second. */
  private async fees(): Promise<{ maxFeePerGas: bigint; maxPriorityFeePerGas: bigint } | { gasPrice: bigint }> {
    const now = Date.now();
    if (!this.feeCache || now - this.feeCache.at > 1_000) {
      const pending = this.guard(() => this.provider.getFeeData()).then((f) => {
        const value = f.maxFeePerGas !== null && f.maxPriorityFeePerGas !== null ? { maxFeePerGas: f.maxFeePerGas, maxPriorityFeePerGas: f.maxPriorityFeePerGas } : { gasPrice: f.gasPrice ?? 0n };
        return value;
      });
      this.feeCache = { at: now, value: pending };
      pending.catch(() => {
        if (this.feeCache?.value === pending) this.feeCache = undefined;
      });
    }
    return this.feeCache.value;
  }

  private async guard<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw mapLedgerError(e, this.iface);
    }
  }

  private read<T>(method: string, args: unknown[], at?: ReadAt): Promise<T> {
    const overrides = at?.block !== undefined ? [{ blockTag: at.block }] : [];
    return this.guard(async () => (await this.contract.getFunction(method).staticCall(...args, ...overrides)) as T);
  }

  private async write(method: string, args: unknown[]): Promise<TxResult> {
    return (await this.writeWithLogs(method, args)).result;
  }

  /**
   * Signs and broadcasts one call. With a local key (a Wallet) and this repository's provider, the
   * steps of ethers' `sendTransaction` are taken here so the broadcast can skip recovering the
   * sender from the signature (`FastJsonRpcProvider.broadcastSigned`); otherwise ethers sends it.
   */
  private async submit(signer: Signer, fn: ContractMethod, args: unknown[], overrides: object): Promise<TransactionResponse> {
    const provider = this.provider;
    if (!(signer instanceof BaseWallet) || !(provider instanceof FastJsonRpcProvider) || signer.provider !== provider) {
      return (await fn.send(...args, overrides)) as ContractTransactionResponse;
    }
    const populated = await signer.populateTransaction(await fn.populateTransaction(...args, overrides));
    delete populated.from;
    return provider.broadcastSigned(await signer.signTransaction(Transaction.from(populated)), signer.address);
  }

  private async writeWithLogs(method: string, args: unknown[]): Promise<{ result: TxResult; logs: readonly Log[] }> {
    const signer = this.signer;
    if (!signer) throw new CustodiaError("CONFIG_INVALID", "this ledger adapter has no signer: writes need one");
    const fn = this.contract.getFunction(method);
    // Simulation and fees run concurrently with other writes: a rule violation surfaces here,
    // before a nonce is taken. Only nonce assignment, signing and broadcast are serialised per
    // signer, with the nonce counted locally; mining is awaited concurrently.
    const [gas, fees] = await Promise.all([this.guard(() => fn.estimateGas(...args)), this.fees()]);
    const sender = await nonceState(this.provider, signer);
    const sent = sender.queue.then(async () => {
      for (let attempt = 0; ; attempt++) {
        sender.next ??= await this.guard(() => this.provider.getTransactionCount(sender.address, "pending"));
        const nonce = sender.next;
        try {
          const tx = await this.submit(signer, fn, args, { nonce, gasLimit: (gas * 6n) / 5n, ...fees });
          sender.next = nonce + 1;
          return tx;
        } catch (e) {
          sender.next = undefined; // unknown whether the nonce was used: ask the node next time
          // the same key sent something else meanwhile (another process, a wallet): once more on a fresh nonce
          if (attempt === 0 && isNonceConflict(e)) continue;
          throw mapLedgerError(e, this.iface);
        }
      }
    });
    sender.queue = sent.catch(() => undefined);
    this.lastSend = sender.queue;
    const tx = await sent;
    const receipt = await this.guard(() => tx.wait());
    if (!receipt) throw new CustodiaError("LEDGER_UNAVAILABLE", "transaction was not mined");
    return { result: { txId: receipt.hash, blockNumber: receipt.blockNumber }, logs: receipt.logs };
  }
}
