import type { AbstractSublevel } from "abstract-level";
import { consentKey } from "../core/eip712.js";
import { CustodiaError } from "../core/errors.js";
import { flatString, type Address, type Agreement, type Bytes32, type ConsentState, type Member, type PermissionCheck } from "../core/domain.js";
import type { LedgerEvent, LedgerPort } from "../core/ledger.js";
import type { HeadFeed } from "./head-feed.js";
import { needsBlockTime, stateChange, type StateLookup } from "../core/ledger-state.js";
import { evaluatePermission, type PermissionRequest } from "../core/permission.js";

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type JsonSublevel = AbstractSublevel<any, any, string, any>;

export interface LedgerViewOptions {
  /** Consider the view stale (answer 503) when the last successful sync is older than this. */
  staleAfterMs: number;
  /** Background sync interval, so the view follows the ledger while idle. */
  pollMs: number;
  /**
   * Reuse a sync younger than this for a decision. 0 = every decision waits for a sync that
   * started after the request arrived, so a change mined before the request is always seen.
   */
  maxSyncAgeMs: number;
  /** Block the contracts were deployed at. */
  fromBlock: number;
  /** Largest block range per event query while catching up. */
  chunkBlocks: number;
  clock: () => number;
  onError?: (e: unknown) => void;
  /**
   * New-block notifications from the node. While the feed is live, a decision waits only for the
   * blocks announced before its request arrived (none, usually: each announcement starts a sync at
   * once) instead of asking the node; when it is not live, decisions ask the node as without a feed.
   */
  heads?: HeadFeed;
}

export const DEFAULT_VIEW_OPTIONS: Omit<LedgerViewOptions, "fromBlock" | "clock"> = {
  staleAfterMs: 5_000,
  pollMs: 1_000,
  maxSyncAgeMs: 0,
  chunkBlocks: 5_000,
};

export interface Decision extends PermissionCheck {
  /** The ledger block whose state the decision was made on. */
  block: number;
  consentKey: Bytes32;
}

/**
 * The gateway's index of contract state: membership, agreements and consents, kept current from
 * ledger events and persisted in LevelDB with the block it reflects. Decisions are pure functions
 * of this state (core's evaluatePermission, the contract's rule). When the ledger cannot be reached,
 * or the last sync is older than the staleness bound, decisions fail closed with 503 codes.
 */
export class LedgerView {
  private members = new Map<string, Member>();
  /** didHash → account of the member registered with it (latest registration wins). */
  private membersByDid = new Map<string, string>();
  private agreements = new Map<bigint, Agreement>();
  private agreementsByPartner = new Map<string, bigint[]>();
  private consents = new Map<string, ConsentState>();
  private consentsBySubject = new Map<string, Set<string>>();
  private synced = -1;
  private syncedTime = 0;
  private lastSyncAt = 0;
  private syncCount = 0;
  private running: Promise<number> | undefined;
  /** `running` is scheduled but has not asked the node anything yet. */
  private runningNotStarted = false;
  private queued: Promise<number> | undefined;
  /** The staleness bound of the sync decisions are waiting on (see bounded()). */
  private lastBound: { work: Promise<unknown>; bounded: Promise<unknown> } | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private unsubscribe: (() => void) | undefined;

  private constructor(
    private readonly ledger: LedgerPort,
    private readonly db: JsonSublevel,
    private readonly opts: LedgerViewOptions,
  ) {}

  static async open(ledger: LedgerPort, db: JsonSublevel, opts: LedgerViewOptions): Promise<LedgerView> {
    const view = new LedgerView(ledger, db, opts);
    await view.load();
    return view;
  }

  /** Starts following the ledger in the background (first sync awaited, errors reported). */
  async start(): Promise<void> {
    this.stopped = false;
    try {
      await this.sync();
    } catch (e) {
      this.opts.onError?.(e);
    }
    const loop = (): void => {
      if (this.stopped) return;
      this.timer = setTimeout(() => {
        this.sync()
          .catch((e: unknown) => this.opts.onError?.(e))
          .finally(loop);
      }, this.opts.pollMs);
    };
    loop();
    // every announced block starts a sync right away, so decisions rarely have to wait for one
    this.unsubscribe = this.opts.heads?.onHead((block) => {
      if (block > this.synced && !this.stopped) this.sync().catch((e: unknown) => this.opts.onError?.(e));
    });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    if (this.timer) clearTimeout(this.timer);
    await Promise.allSettled([this.running, this.queued]);
  }

  get syncedBlock(): number {
    return this.synced;
  }

  /** The newest block the node's push feed has announced (-1: no feed, or nothing announced yet). */
  get announcedBlock(): number {
    return this.opts.heads?.live ? this.opts.heads.head : -1;
  }

  /** Timestamp (unix s) of the synced block: decisions never take a time earlier than this. */
  get syncedBlockTime(): number {
    return this.syncedTime;
  }

  /**
   * The time a decision is made at: the gateway clock, but never before the block it is decided
   * on (block timestamps can run ahead of a gateway's clock, and state at B exists from B's time).
   */
  decisionTime(): number {
    return Math.max(Math.floor(this.opts.clock() / 1000), this.syncedTime);
  }

  /** Decisions currently follow pushed block announcements (a live head feed) rather than asking the node. */
  get pushing(): boolean {
    return this.opts.heads?.live === true;
  }

  /** Completed syncs since this view was opened. */
  get syncs(): number {
    return this.syncCount;
  }

  get lastSyncedAt(): number {
    return this.lastSyncAt;
  }

  isFresh(): boolean {
    return this.synced >= 0 && this.opts.clock() - this.lastSyncAt <= this.opts.staleAfterMs;
  }

  /**
   * Brings the view up to the ledger head. Concurrent callers share syncs: a caller arriving while
   * one runs waits for the next one, which starts after it arrived (so it sees every block mined
   * before its request), and all arrivals during a sync share that single next sync.
   */
  sync(): Promise<number> {
    // A sync that has not asked the node yet is one every caller may join: it is started after
    // the current I/O phase, so every request parsed in it shares it (one ledger round trip per
    // event-loop turn at most) instead of queueing for the next one.
    if (this.runningNotStarted) return this.running!;
    if (!this.running) {
      this.runningNotStarted = true;
      this.running = new Promise<void>((resolve) => setImmediate(resolve))
        .then(() => {
          this.runningNotStarted = false;
          return this.syncOnce();
        })
        .finally(() => {
          this.running = undefined;
        });
      return this.running;
    }
    if (!this.queued) {
      this.queued = this.running
        .catch(() => undefined)
        .then(() => {
          this.queued = undefined;
          return this.sync();
        });
    }
    return this.queued;
  }

  /**
   * Waits until the view includes `block` (e.g. the block of a transaction the gateway just relayed,
   * so the caller's next request sees its effect). LEDGER_UNAVAILABLE when the node cannot be asked;
   * LEDGER_STALE when the node's answers stay behind `block` (a lagging read replica).
   */
  async syncThrough(block: number): Promise<number> {
    try {
      for (let tries = 0; this.synced < block; tries++) {
        if (tries === 3) throw new CustodiaError("LEDGER_STALE", `the ledger node is still behind block ${block}`, { block, synced: this.synced });
        await this.bounded(this.sync());
      }
    } catch (e) {
      if (e instanceof CustodiaError && (e.code === "LEDGER_UNAVAILABLE" || e.code === "LEDGER_STALE")) throw e;
      throw new CustodiaError("LEDGER_UNAVAILABLE", "the ledger cannot be checked", undefined, { cause: e });
    }
    return this.synced;
  }

  /**
   * The block a decision may be made on: syncs (or reuses a recent enough sync), and fails closed
   * with LEDGER_UNAVAILABLE when the ledger cannot be asked, LEDGER_STALE when the view is too old.
   */
  async freshBlock(): Promise<number> {
    const heads = this.opts.heads;
    if (heads?.live && this.synced >= 0) {
      // Push mode: every block the node announced before this request arrived is in the view once
      // the syncs it started are done. A decision is therefore never more than the notification
      // delay behind the node — well inside one block.
      await this.syncThrough(heads.head);
      if (!this.isFresh()) throw new CustodiaError("LEDGER_STALE", "the gateway's view of the ledger is too old to decide on");
      return this.synced;
    }
    const age = this.opts.clock() - this.lastSyncAt;
    if (this.synced >= 0 && this.opts.maxSyncAgeMs > 0 && age <= this.opts.maxSyncAgeMs) return this.synced;
    try {
      await this.bounded(this.sync());
    } catch (e) {
      throw e instanceof CustodiaError && e.code === "LEDGER_UNAVAILABLE"
        ? e
        : new CustodiaError("LEDGER_UNAVAILABLE", "the ledger cannot be checked", undefined, { cause: e });
    }
    if (!this.isFresh()) throw new CustodiaError("LEDGER_STALE", "the gateway's view of the ledger is too old to decide on");
    return this.synced;
  }

  /**
   * A node that accepts connections but does not answer (frozen, partitioned) must not hold a
   * decision past the staleness bound: it fails closed then (the sync itself goes on). Every
   * decision of a burst waits on the same sync, so they share one bound (one timer per sync, not
   * one per request); a later joiner's bound is then a little shorter than its own, never longer.
   */
  private bounded<T>(work: Promise<T>): Promise<T> {
    if (this.lastBound?.work === work) return this.lastBound.bounded as Promise<T>;
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CustodiaError("LEDGER_UNAVAILABLE", `the ledger did not answer within ${this.opts.staleAfterMs} ms`)), this.opts.staleAfterMs);
    });
    work.catch(() => undefined);
    const bounded = Promise.race([work, limit]).finally(() => clearTimeout(timer));
    this.lastBound = { work, bounded };
    return bounded;
  }

  /** Decides from the index as it stands (callers that already hold a fresh block). */
  decideAt(subject: Address, partner: Address, request: PermissionRequest): Omit<Decision, "block"> {
    const key = this.consentKeyOf(subject, partner, request.purpose);
    const check = evaluatePermission(
      {
        member: this.members.get(partner) ?? null,
        agreements: (this.agreementsByPartner.get(partner) ?? []).map((id) => this.agreements.get(id)!),
        consent: this.consents.get(key) ?? null,
      },
      request,
    );
    // spelled out: a spread of the check builds the object on V8's slow path, on every decision
    return { allowed: check.allowed, reason: check.reason, agreementId: check.agreementId, consentKey: key };
  }

  /** keccak256 is costly in JS and the hot path asks for the same keys again and again. */
  private readonly keyMemo = new Map<string, Bytes32>();
  private consentKeyOf(subject: Address, partner: Address, purpose: number): Bytes32 {
    const memoKey = `${subject}${partner}${purpose}`;
    let key = this.keyMemo.get(memoKey);
    if (!key) {
      key = flatString(consentKey(subject, partner, purpose));
      if (this.keyMemo.size >= 100_000) this.keyMemo.clear();
      this.keyMemo.set(memoKey, key);
    }
    return key;
  }

  /** The member registered with this DID hash (whatever its account), or null. */
  memberByDidHash(hash: Bytes32): Member | null {
    const account = this.membersByDid.get(hash);
    return account === undefined ? null : (this.members.get(account) ?? null);
  }

  member(account: Address): Member | null {
    return this.members.get(account) ?? null;
  }

  /** A subject's consents, by partner then purpose (a stable order, whatever the history). */
  consentsOf(subject: Address): ConsentState[] {
    return [...(this.consentsBySubject.get(subject) ?? [])]
      .map((k) => this.consents.get(k)!)
      .sort((a, b) => (a.partner < b.partner ? -1 : a.partner > b.partner ? 1 : a.purpose - b.purpose));
  }

  agreementsOf(partner: Address): Agreement[] {
    return (this.agreementsByPartner.get(partner) ?? []).map((id) => this.agreements.get(id)!);
  }

  /* --------------------------------------------------------------- sync */

  private async syncOnce(): Promise<number> {
    const head = await this.ledger.blockNumber();
    let from = Math.max(this.synced + 1, this.opts.fromBlock);
    while (from <= head) {
      const to = Math.min(head, from + this.opts.chunkBlocks - 1);
      const events = await this.ledger.events(from, to);
      await this.apply(events, to);
      from = to + 1;
    }
    if (head > this.synced || (this.syncedTime === 0 && head >= 0)) {
      // an empty range: nothing to apply, but the head and its time still move, together (also
      // after a restart, when the stored block's time is not yet known)
      const t = await this.ledger.blockTime(head);
      this.synced = head;
      this.syncedTime = t;
    }
    this.lastSyncAt = this.opts.clock();
    this.syncCount++;
    return this.synced;
  }

  private async apply(events: LedgerEvent[], throughBlock: number): Promise<void> {
    const touched = { members: new Set<string>(), agreements: new Set<bigint>(), consents: new Set<string>() };
    const lookup: StateLookup = { member: (a) => this.members.get(a), agreement: (id) => this.agreements.get(id), consent: (k) => this.consents.get(k) };
    for (const ev of events) {
      const change = stateChange(ev, lookup, needsBlockTime(ev) ? await this.ledger.blockTime(ev.blockNumber) : 0);
      if (!change) continue;
      if (change.kind === "member") {
        this.members.set(change.key, change.value);
        // a DID names the member it was last registered for; a deactivation does not move it
        if (change.value.active) this.membersByDid.set(change.value.didHash, change.key);
        touched.members.add(change.key);
      } else if (change.kind === "agreement") {
        this.agreements.set(change.key, change.value);
        const list = this.agreementsByPartner.get(change.value.partner) ?? [];
        if (!list.includes(change.key)) list.push(change.key);
        this.agreementsByPartner.set(change.value.partner, list);
        touched.agreements.add(change.key);
      } else {
        this.putConsent(change.key, change.value);
        touched.consents.add(change.key);
      }
    }
    const ops: { type: "put"; key: string; value: unknown }[] = [];
    for (const a of touched.members) ops.push({ type: "put", key: `m:${a}`, value: this.members.get(a) });
    for (const id of touched.agreements) {
      const a = this.agreements.get(id);
      if (a) ops.push({ type: "put", key: `a:${id.toString().padStart(20, "0")}`, value: { ...a, id: id.toString() } });
    }
    for (const k of touched.consents) if (this.consents.has(k)) ops.push({ type: "put", key: `c:${k}`, value: this.consents.get(k) });
    ops.push({ type: "put", key: "meta:synced", value: throughBlock });
    const throughTime = await this.ledger.blockTime(throughBlock);
    await this.db.batch(ops);
    // the block and its time change in the same synchronous step: a decision never pairs a
    // block's state with an older time
    this.synced = throughBlock;
    this.syncedTime = throughTime;
  }

  private putConsent(key: string, c: ConsentState): void {
    this.consents.set(key, c);
    let set = this.consentsBySubject.get(c.subject);
    if (!set) this.consentsBySubject.set(c.subject, (set = new Set()));
    set.add(key);
  }

  private async load(): Promise<void> {
    // keys sort by kind, and agreement keys are zero-padded ids: iteration order is registration order
    for await (const [key, value] of this.db.iterator()) {
      if (key === "meta:synced") this.synced = value as number;
      else if (key.startsWith("m:")) {
        this.members.set(key.slice(2), value as Member);
        // on reload, an active member wins the DID over an inactive one
        const holder = this.members.get(this.membersByDid.get((value as Member).didHash) ?? "");
        if (!holder?.active || (value as Member).active) this.membersByDid.set((value as Member).didHash, key.slice(2));
      }
      else if (key.startsWith("c:")) this.putConsent(key.slice(2), value as ConsentState);
      else if (key.startsWith("a:")) {
        const a = value as Omit<Agreement, "id"> & { id: string };
        const id = BigInt(a.id);
        this.agreements.set(id, { ...a, id });
        const list = this.agreementsByPartner.get(a.partner) ?? [];
        list.push(id);
        this.agreementsByPartner.set(a.partner, list);
      }
    }
  }

}
