/**
 * Anchors signed checkpoints of a DurableLog on the ledger.
 *
 * A checkpoint is {logId, treeSize, root, timestamp, gateway}, signed by the gateway key with
 * EIP-191 personal_sign over its RFC 8785 canonical JSON (`checkpointMessage`). Its (logId,
 * treeSize, root) is anchored with `LedgerPort.anchorCheckpoint` by the same account, which must be
 * an active GATEWAY member. Signed checkpoints and the anchoring state live in `store` (any
 * level handle, see ./kv.ts) under `<logId>/cp/<treeSize, 16 digits>` (JSON AnchorRecord) and
 * `<logId>/pending` (the signed checkpoint whose transaction is being submitted).
 *
 * Policy: anchor when `everyEntries` entries are un-anchored, or `everyMs` after the oldest
 * un-anchored entry became durable, whichever comes first. Exactly one anchoring operation (and so
 * at most one transaction) is in flight. A failed anchor is retried with exponential backoff; the
 * entries simply stay un-anchored until one succeeds — a later checkpoint covers them all.
 *
 * At start the log must still hold what was last anchored from it, with the same root: a log cut
 * short (its newest records deleted whole, which its own store cannot tell) or rewritten below
 * that anchor raises the alarm below ("ledger_ahead_of_log", "anchor_root_mismatch").
 *
 * Reconciliation (at start and after any failure): when the ledger's latest checkpoint of the log
 * is beyond the local record — e.g. the process died after the transaction landed but before the
 * record was written, or a receipt was lost — every such ledger checkpoint is checked against the
 * local tree and recorded. A ledger root that differs from the local root of the same size, a
 * ledger checkpoint beyond the durable log, or the log owned by another gateway raise an alarm:
 * a CustodiaError with `details.reason` "anchor_root_mismatch" | "ledger_ahead_of_log" |
 * "log_owned_by_other_gateway" that is reported to onError, halts the anchorer and is thrown
 * from start()/anchorNow() from then on.
 */
import { getAddress } from "ethers";
import { checkpointMessage, type SignedCheckpoint } from "../../core/checkpoint.js";
import type { Address, Bytes32 } from "../../core/domain.js";
import { CustodiaError, isCustodiaError } from "../../core/errors.js";
import type { LedgerPort, TxResult } from "../../core/ledger.js";
import type { DurableLog } from "./durable-log.js";
import { GET_OPTIONS, bytesToJson, jsonToBytes, pad16, readRange, type KvOp, type KvStore } from "./kv.js";

// The signed form lives in core, so an auditor verifies it without importing gateway code.
export { checkpointMessage, verifyCheckpointSignature, type SignedCheckpoint } from "../../core/checkpoint.js";

/** What the anchorer stores per anchored checkpoint. */
export interface AnchorRecord {
  checkpoint: SignedCheckpoint;
  /** The anchoring transaction; null when the checkpoint was found on the ledger by reconciliation without one. */
  txId: string | null;
  blockNumber: number | null;
  /** Local clock when the anchor was confirmed (or reconciled), unix ms. */
  anchoredAt: number;
  source: "anchored" | "reconciled";
}

/** Signs like an ethers Signer (EIP-191 personal_sign). */
export interface CheckpointSigner {
  getAddress(): Promise<string>;
  signMessage(message: string | Uint8Array): Promise<string>;
}

/** What the anchorer needs of a log. */
export type AnchorableLog = Pick<DurableLog, "logId" | "size" | "root" | "onDurable">;

export type AnchorLedger = Pick<LedgerPort, "account" | "anchorCheckpoint" | "latestCheckpoint" | "checkpointRoot" | "checkpoints" | "getMember">;

export interface AnchorerOptions {
  log: AnchorableLog;
  /** The ledger, submitting as the gateway account (the signer's address). */
  ledger: AnchorLedger;
  signer: CheckpointSigner;
  store: KvStore;
  /** Anchor once this many entries are un-anchored. */
  everyEntries: number;
  /** Anchor at the latest this long after the oldest un-anchored entry became durable, ms. */
  everyMs: number;
  /** Unix ms; timestamps of checkpoints and the anchor-lag figures. Default Date.now. */
  clock?: () => number;
  /** Every failure and alarm, as it happens (anchoring keeps retrying after failures). */
  onError?: (error: unknown) => void;
  /** First retry delay after a failure, ms (doubles up to retryMaxMs). Default 250. */
  retryInitialMs?: number;
  /** Default 30,000. */
  retryMaxMs?: number;
  /** fsync the store's writes. Default true. */
  sync?: boolean;
  /**
   * How the checkpoint key is bound to the account that anchors. Default "account" (EVM): the
   * signer's address is the ledger account. `{ didHash }` (Fabric, where the ledger account derives
   * from an MSP identity): the anchoring account is an active GATEWAY member registered with this
   * hash of the gateway's DID, the DID of the signing key.
   */
  signerBinding?: "account" | { didHash: Bytes32 };
}

export interface AnchorerStats {
  running: boolean;
  /** Checkpoints this process anchored / found on the ledger by reconciliation. */
  anchored: number;
  reconciled: number;
  failures: number;
  consecutiveFailures: number;
  lastError: { code: string; message: string } | null;
  /** Tree size of the latest anchored checkpoint (0: none). */
  anchoredSize: number;
  logSize: number;
  unanchored: number;
  /**
   * Largest time from an entry becoming durable to a checkpoint including it being confirmed on
   * the ledger, ms, over this process's life (entries found at start count from start()).
   */
  maxAnchorLagMs: number;
  lastAnchorLagMs: number | null;
  /** How long the oldest un-anchored entry has been waiting, ms. */
  oldestUnanchoredMs: number | null;
  retryPending: boolean;
  alarm: CustodiaError | null;
}

interface Unanchored {
  /** Log size after the batch. */
  size: number;
  /** clock() when it became durable. */
  at: number;
  /** Date.now() then, for the timer. */
  real: number;
}

interface LedgerCheckpoint {
  treeSize: number;
  root: string;
  blockNumber: number | null;
}

export class Anchorer {
  private readonly log: AnchorableLog;
  private readonly ledger: AnchorLedger;
  private readonly signer: CheckpointSigner;
  private readonly store: KvStore;
  private readonly everyEntries: number;
  private readonly everyMs: number;
  private readonly clock: () => number;
  private readonly onError: (error: unknown) => void;
  private readonly retryInitialMs: number;
  private readonly retryMaxMs: number;
  private readonly sync: boolean;
  private readonly prefix: string;
  private readonly signerBinding: "account" | { didHash: Bytes32 };

  /** The checkpoint key's address (the `gateway` of signed checkpoints). */
  private gateway: Address | undefined;
  /** The ledger account that anchors (equal to `gateway` on EVM; MSP-derived on Fabric). */
  private account: Address | undefined;
  private initialising: Promise<void> | undefined;
  private last: AnchorRecord | null = null;
  private pending: SignedCheckpoint | null = null;
  private needReconcile = true;
  private alarm: CustodiaError | null = null;

  private running = false;
  private unsubscribe: (() => void) | undefined;
  private chain: Promise<unknown> = Promise.resolve();
  private busy = false;
  private policyTimer: NodeJS.Timeout | undefined;
  private retryTimer: NodeJS.Timeout | undefined;
  private queue: Unanchored[] = [];

  private readonly counters = { anchored: 0, reconciled: 0, failures: 0, consecutiveFailures: 0 };
  private lastError: { code: string; message: string } | null = null;
  private maxLag = 0;
  private lastLag: number | null = null;

  constructor(opts: AnchorerOptions) {
    const bad = (field: string, message: string): never => {
      throw new CustodiaError("CONFIG_INVALID", `Anchorer option ${field}: ${message}`, { reason: "anchorer_option_invalid", field });
    };
    if (!Number.isSafeInteger(opts.everyEntries) || opts.everyEntries < 1) bad("everyEntries", "must be a positive integer");
    if (!Number.isFinite(opts.everyMs) || opts.everyMs <= 0) bad("everyMs", "must be > 0");
    const retryInitialMs = opts.retryInitialMs ?? 250;
    const retryMaxMs = opts.retryMaxMs ?? 30_000;
    if (!Number.isFinite(retryInitialMs) || retryInitialMs <= 0) bad("retryInitialMs", "must be > 0");
    if (!Number.isFinite(retryMaxMs) || retryMaxMs < retryInitialMs) bad("retryMaxMs", "must be >= retryInitialMs");
    this.log = opts.log;
    this.ledger = opts.ledger;
    this.signer = opts.signer;
    this.store = opts.store;
    this.everyEntries = opts.everyEntries;
    this.everyMs = opts.everyMs;
    this.clock = opts.clock ?? Date.now;
    this.onError = opts.onError ?? (() => undefined);
    this.retryInitialMs = retryInitialMs;
    this.retryMaxMs = retryMaxMs;
    this.sync = opts.sync ?? true;
    this.prefix = `${opts.log.logId.toLowerCase()}/`;
    this.signerBinding = opts.signerBinding ?? "account";
  }

  /**
   * Loads the local anchoring state, reconciles with the ledger and anchors whatever is not
   * anchored yet, then runs the policy. A ledger that cannot be reached does not fail start(): the
   * error goes to onError and anchoring is retried. Rejects with CONFIG_INVALID when the signer is
   * not the ledger account, and with the alarm when reconciliation finds tampering.
   */
  async start(): Promise<void> {
    if (this.running) return;
    await this.init();
    if (this.alarm) throw this.alarm;
    // The log must still hold what was anchored from it, as it was: a log cut short (its newest
    // records deleted whole, which the log's store cannot tell) or rewritten below the last anchor.
    const last = this.last?.checkpoint;
    if (last && this.log.size < last.treeSize) {
      this.raise("ledger_ahead_of_log", `${last.treeSize} entries were anchored but the log has ${this.log.size}: it was cut short or restored from an older copy (restore the log, or investigate)`, { ledgerSize: last.treeSize, logSize: this.log.size });
    }
    if (last && this.log.root(last.treeSize) !== last.root.toLowerCase()) {
      this.raise("anchor_root_mismatch", `the anchored root for ${last.treeSize} entries differs from the log's: its entries were changed (restore the log, or investigate)`, { treeSize: last.treeSize, ledgerRoot: last.root, localRoot: this.log.root(last.treeSize) });
    }
    this.running = true;
    this.unsubscribe = this.log.onDurable((size) => this.notifyAppended(size));
    // Entries already durable count as appended now (their real append time is not recorded).
    this.queue = this.queue.filter((q) => q.size > this.anchoredSize);
    const size = this.log.size;
    const tail = this.queue[this.queue.length - 1];
    if (size > this.anchoredSize && (tail === undefined || tail.size < size)) this.queue.push({ size, at: this.clock(), real: Date.now() });
    this.needReconcile = true;
    this.busy = true;
    try {
      await this.attempt();
    } catch (e) {
      if (e === this.alarm) {
        this.busy = false;
        await this.stop();
        throw e;
      }
      // reported and scheduled for retry by attempt()
    }
    this.busy = false;
    this.evaluate();
  }

  /** Stops the policy and waits for an anchoring operation in flight. anchorNow() still works after. */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.clearPolicyTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.chain;
  }

  /**
   * Anchors the log's current durable size now (after any operation in flight). Resolves with the
   * signed checkpoint, or null when nothing is new since the last anchor; rejects with the
   * ledger's error (then retried in the background while running) or the alarm.
   */
  async anchorNow(): Promise<SignedCheckpoint | null> {
    await this.init();
    return this.attempt();
  }

  /** The log reached `size` durable entries. Called by the log subscription set up in start(). */
  notifyAppended(size: number): void {
    const last = this.queue[this.queue.length - 1];
    if (size > this.anchoredSize && (last === undefined || size > last.size)) {
      const at = this.clock();
      if (last !== undefined && last.at === at) last.size = size;
      else this.queue.push({ size, at, real: Date.now() });
    }
    this.evaluate();
  }

  /** The latest anchored checkpoint known locally (null before start()/anchorNow() or when none). */
  lastAnchored(): SignedCheckpoint | null {
    return this.last?.checkpoint ?? null;
  }

  /**
   * Stored signed checkpoints, by tree size ascending: all of them, or a page — those with a tree
   * size above `after`, at most `limit`.
   */
  async checkpoints(page: { after?: number; limit?: number } = {}): Promise<SignedCheckpoint[]> {
    return (await this.records(page)).map((r) => r.checkpoint);
  }

  /** Stored anchor records, oldest first: all, or those of a tree size above `after`, at most `limit`. */
  async records(page: { after?: number; limit?: number } = {}): Promise<AnchorRecord[]> {
    const out: AnchorRecord[] = [];
    const from = page.after === undefined ? { gte: `${this.prefix}cp/` } : { gt: `${this.prefix}cp/${pad16(page.after)}` };
    await readRange(this.store, { ...from, lt: `${this.prefix}cp0`, ...(page.limit === undefined ? {} : { limit: page.limit }) }, (chunk) => {
      for (const [, value] of chunk) out.push(bytesToJson(value) as AnchorRecord);
    });
    return out;
  }

  /** The reason of the alarm that halted this anchorer ("anchor_root_mismatch", "ledger_ahead_of_log", "log_owned_by_other_gateway"), or null. */
  alarmReason(): string | null {
    return this.alarm === null ? null : String(this.alarm.details?.["reason"]);
  }

  stats(): AnchorerStats {
    const anchoredSize = this.anchoredSize;
    const logSize = this.log.size;
    const oldest = this.queue[0];
    return {
      running: this.running,
      ...this.counters,
      lastError: this.lastError,
      anchoredSize,
      logSize,
      unanchored: Math.max(0, logSize - anchoredSize),
      maxAnchorLagMs: this.maxLag,
      lastAnchorLagMs: this.lastLag,
      oldestUnanchoredMs: oldest === undefined ? null : Math.max(0, this.clock() - oldest.at),
      retryPending: this.retryTimer !== undefined,
      alarm: this.alarm,
    };
  }

  /* ------------------------------------------------------------------ policy */

  private get anchoredSize(): number {
    return this.last?.checkpoint.treeSize ?? 0;
  }

  private evaluate(afterRetry = false): void {
    if (!this.running || this.alarm || this.retryTimer !== undefined) return;
    const unanchored = this.log.size - this.anchoredSize;
    if (unanchored <= 0) {
      this.clearPolicyTimer();
      return;
    }
    if (afterRetry || unanchored >= this.everyEntries) {
      this.kick();
      return;
    }
    if (this.policyTimer === undefined && !this.busy) {
      const since = this.queue[0]?.real ?? Date.now();
      const delay = Math.max(0, since + this.everyMs - Date.now());
      this.policyTimer = setTimeout(() => {
        this.policyTimer = undefined;
        if (this.log.size > this.anchoredSize) this.kick();
      }, delay);
    }
  }

  private kick(): void {
    if (this.busy || !this.running) return; // evaluate() runs again when the operation in flight ends
    this.busy = true;
    this.clearPolicyTimer();
    this.attempt()
      .catch(() => undefined)
      .finally(() => {
        this.busy = false;
        this.evaluate();
      });
  }

  private clearPolicyTimer(): void {
    if (this.policyTimer) clearTimeout(this.policyTimer);
    this.policyTimer = undefined;
  }

  private scheduleRetry(): void {
    if (!this.running || this.alarm) return;
    this.clearPolicyTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    const n = Math.min(this.counters.consecutiveFailures, 30);
    const delay = Math.min(this.retryMaxMs, this.retryInitialMs * 2 ** Math.max(0, n - 1));
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      this.evaluate(true);
    }, delay);
  }

  /** One serialised anchoring operation with failure bookkeeping. */
  private attempt(): Promise<SignedCheckpoint | null> {
    const run = this.chain.then(async () => {
      try {
        const cp = await this.anchorOnce();
        this.counters.consecutiveFailures = 0;
        if (this.retryTimer) clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
        return cp;
      } catch (e) {
        if (e !== this.alarm) {
          this.needReconcile = true;
          this.counters.failures++;
          this.counters.consecutiveFailures++;
          this.lastError = { code: isCustodiaError(e) ? e.code : "INTERNAL", message: e instanceof Error ? e.message : String(e) };
          this.report(e);
          this.scheduleRetry();
        }
        throw e;
      }
    });
    this.chain = run.catch(() => undefined);
    return run;
  }

  /* ---------------------------------------------------------------- anchoring */

  private async anchorOnce(): Promise<SignedCheckpoint | null> {
    if (this.alarm) throw this.alarm;
    if (this.needReconcile) {
      await this.reconcile();
      this.needReconcile = false;
    }
    const size = this.log.size;
    if (size <= this.anchoredSize) return null;
    const cp = await this.sign(size);
    await this.write([{ type: "put", key: `${this.prefix}pending`, value: jsonToBytes(cp) }]);
    this.pending = cp;
    let tx: TxResult;
    try {
      tx = await this.ledger.anchorCheckpoint({ logId: cp.logId, treeSize: cp.treeSize, root: cp.root });
    } catch (e) {
      if (isCustodiaError(e, "CHECKPOINT_NOT_INCREASING")) {
        // Our own earlier transaction may have landed after all: look before retrying.
        await this.reconcile();
        if (this.anchoredSize >= size) return this.last!.checkpoint;
      }
      throw e;
    }
    await this.record({ checkpoint: cp, txId: tx.txId, blockNumber: tx.blockNumber, anchoredAt: this.clock(), source: "anchored" });
    return cp;
  }

  private async reconcile(): Promise<void> {
    const gateway = this.account!;
    const logId = this.log.logId.toLowerCase() as Bytes32;
    const head = await this.ledger.latestCheckpoint(logId);
    if (head === null || head.treeSize <= this.anchoredSize) {
      if ((head?.treeSize ?? 0) < this.anchoredSize) {
        // The ledger has less than we recorded (a reset dev chain, another deployment): not
        // tampering with our entries; the next anchor goes above it.
        this.report(
          new CustodiaError("INTERNAL", "the ledger is behind the locally recorded anchors", {
            reason: "ledger_behind_local",
            logId,
            ledgerSize: head?.treeSize ?? 0,
            localSize: this.anchoredSize,
          }),
        );
      }
      if (head !== null && getAddress(head.gateway) !== gateway) this.raise("log_owned_by_other_gateway", "the log is anchored by another gateway", { owner: head.gateway });
      return;
    }
    if (getAddress(head.gateway) !== gateway) this.raise("log_owned_by_other_gateway", "the log is anchored by another gateway", { owner: head.gateway });
    const durable = this.log.size;
    if (head.treeSize > durable) {
      this.raise("ledger_ahead_of_log", `the ledger anchors ${head.treeSize} entries but the log has ${durable}`, { ledgerSize: head.treeSize, logSize: durable });
    }
    const found: LedgerCheckpoint[] = (await this.ledger.checkpoints(logId))
      .filter((c) => c.treeSize > this.anchoredSize && c.treeSize <= head.treeSize)
      .map((c) => ({ treeSize: c.treeSize, root: c.root, blockNumber: c.blockNumber }));
    if (!found.some((c) => c.treeSize === head.treeSize)) {
      const root = await this.ledger.checkpointRoot(logId, head.treeSize);
      found.push({ treeSize: head.treeSize, root: root ?? "0x", blockNumber: null });
    }
    found.sort((a, b) => a.treeSize - b.treeSize);
    for (const c of found) {
      if (c.treeSize > durable) {
        this.raise("ledger_ahead_of_log", `the ledger anchors ${c.treeSize} entries but the log has ${durable}`, { ledgerSize: c.treeSize, logSize: durable });
      }
      const local = this.log.root(c.treeSize);
      if (c.root.toLowerCase() !== local) {
        this.raise("anchor_root_mismatch", `the ledger's root for ${c.treeSize} entries differs from the log's: tampering`, {
          treeSize: c.treeSize,
          ledgerRoot: c.root,
          localRoot: local,
        });
      }
    }
    for (const c of found) {
      const p = this.pending;
      const cp = p !== null && p.treeSize === c.treeSize && p.root === c.root.toLowerCase() ? p : await this.sign(c.treeSize);
      await this.record({ checkpoint: cp, txId: null, blockNumber: c.blockNumber, anchoredAt: this.clock(), source: "reconciled" });
    }
  }

  private async sign(treeSize: number): Promise<SignedCheckpoint> {
    const unsigned = { logId: this.log.logId.toLowerCase() as Bytes32, treeSize, root: this.log.root(treeSize), timestamp: this.clock(), gateway: this.gateway! };
    const signature = await this.signer.signMessage(checkpointMessage(unsigned));
    return { ...unsigned, signature };
  }

  private async record(rec: AnchorRecord): Promise<void> {
    const ops: KvOp[] = [{ type: "put", key: `${this.prefix}cp/${pad16(rec.checkpoint.treeSize)}`, value: jsonToBytes(rec) }];
    const clearsPending = this.pending !== null && this.pending.treeSize <= rec.checkpoint.treeSize;
    if (clearsPending) ops.push({ type: "del", key: `${this.prefix}pending` });
    await this.write(ops);
    if (clearsPending) this.pending = null;
    this.last = rec;
    this.counters[rec.source === "anchored" ? "anchored" : "reconciled"]++;
    let first: Unanchored | undefined;
    while (this.queue.length > 0 && this.queue[0]!.size <= rec.checkpoint.treeSize) {
      const q = this.queue.shift()!;
      first ??= q;
    }
    if (first !== undefined) {
      const lag = Math.max(0, rec.anchoredAt - first.at);
      this.lastLag = lag;
      if (lag > this.maxLag) this.maxLag = lag;
    }
  }

  private raise(reason: string, message: string, details: Record<string, unknown>): never {
    const alarm = new CustodiaError("INTERNAL", `ALARM: ${message}`, { reason, alarm: true, logId: this.log.logId, gateway: this.gateway, ...details });
    this.alarm = alarm;
    this.running = false;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
    this.clearPolicyTimer();
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.report(alarm);
    throw alarm;
  }

  private report(e: unknown): void {
    try {
      this.onError(e);
    } catch {
      // the reporter's own failure must not stop anchoring
    }
  }

  private write(ops: KvOp[]): Promise<void> {
    return this.store.batch(ops, { keyEncoding: "utf8", valueEncoding: "view", sync: this.sync });
  }

  /* -------------------------------------------------------------------- init */

  private init(): Promise<void> {
    this.initialising ??= (async () => {
      const gateway = getAddress(await this.signer.getAddress()) as Address;
      const account = getAddress(await this.ledger.account()) as Address;
      const binding = this.signerBinding;
      if (binding === "account" && account !== gateway) {
        throw new CustodiaError("CONFIG_INVALID", "the checkpoint signer is not the account the ledger submits as", {
          reason: "signer_not_ledger_account",
          signer: gateway,
          account,
        });
      }
      if (binding !== "account") {
        const member = await this.ledger.getMember(account);
        if (!member || !member.active || member.role !== "GATEWAY" || member.didHash !== binding.didHash) {
          throw new CustodiaError("CONFIG_INVALID", "the anchoring account is not an active GATEWAY member registered with the gateway's DID", {
            reason: "signer_not_bound_to_account",
            signer: gateway,
            account,
          });
        }
      }
      let last: AnchorRecord | null = null;
      await readRange(this.store, { gte: `${this.prefix}cp/`, lt: `${this.prefix}cp0`, reverse: true, limit: 1 }, (chunk) => {
        const first = chunk[0];
        if (first) last = bytesToJson(first[1]) as AnchorRecord;
      });
      const pending = await this.store.get(`${this.prefix}pending`, GET_OPTIONS);
      this.gateway = gateway;
      this.account = account;
      this.last = last;
      this.pending = pending === undefined ? null : (bytesToJson(pending) as SignedCheckpoint);
    })();
    this.initialising.catch(() => {
      this.initialising = undefined;
    });
    return this.initialising;
  }
}
