/**
 * The ledger's permission state — members, agreements, consents — as a function of its events.
 * One transition rule (`stateChange`) serves the gateway's live index and `LedgerHistory`, the
 * auditor's view of that state at any past block, rebuilt from events alone: on Fabric, where a
 * peer serves only the current world state, and on an EVM node that keeps no archive.
 */
import type { Address, Agreement, Bytes32, ConsentState, Member, PermissionCheck } from "./domain.js";
import { consentKey } from "./eip712.js";
import type { LedgerEvent, LedgerPort, PermissionQuery } from "./ledger.js";
import { evaluatePermission } from "./permission.js";

export type StateChange =
  | { kind: "member"; key: Address; value: Member }
  | { kind: "agreement"; key: bigint; value: Agreement }
  | { kind: "consent"; key: Bytes32; value: ConsentState };

/** The current records a transition reads. */
export interface StateLookup {
  member(account: Address): Member | null | undefined;
  agreement(id: bigint): Agreement | null | undefined;
  consent(key: Bytes32): ConsentState | null | undefined;
}

/** Events that change the permission state; only consent changes need their block's time. */
export function needsBlockTime(ev: LedgerEvent): boolean {
  return ev.type === "ConsentGranted" || ev.type === "ConsentRevoked";
}

/**
 * The record an event creates or replaces, or null when it changes no permission state (data
 * commitments, checkpoints, or a deactivation of something unknown). `blockTime` is the event's
 * block's timestamp (read only for consent events, see needsBlockTime). Mirrors the contract:
 * a grant replaces the consent and clears any revocation; nonces advance past the signed one.
 */
export function stateChange(ev: LedgerEvent, lookup: StateLookup, blockTime: number): StateChange | null {
  switch (ev.type) {
    case "MemberRegistered":
      return { kind: "member", key: ev.account, value: { account: ev.account, didHash: ev.didHash, orgHash: ev.orgHash, role: ev.role, active: true } };
    case "MemberDeactivated": {
      const m = lookup.member(ev.account);
      return m ? { kind: "member", key: ev.account, value: { ...m, active: false } } : null;
    }
    case "AgreementRegistered":
      return {
        kind: "agreement",
        key: ev.id,
        value: { id: ev.id, partner: ev.partner, purposes: ev.purposes, categories: ev.categories, validFrom: ev.validFrom, validUntil: ev.validUntil, termsHash: ev.termsHash, active: true },
      };
    case "AgreementEnded": {
      const a = lookup.agreement(ev.id);
      return a ? { kind: "agreement", key: ev.id, value: { ...a, active: false } } : null;
    }
    case "ConsentGranted": {
      const key = consentKey(ev.subject, ev.partner, ev.purpose);
      return { kind: "consent", key, value: { subject: ev.subject, partner: ev.partner, purpose: ev.purpose, categories: ev.categories, expiresAt: ev.expiresAt, grantedAt: blockTime, revokedAt: 0, nonce: ev.nonce + 1 } };
    }
    case "ConsentRevoked": {
      const key = consentKey(ev.subject, ev.partner, ev.purpose);
      const prev = lookup.consent(key);
      return prev ? { kind: "consent", key, value: { ...prev, revokedAt: blockTime, nonce: ev.nonce + 1 } } : null;
    }
    default:
      return null;
  }
}

/** The ledger reads a history is built from. */
export type HistorySource = Pick<LedgerPort, "events" | "blockTime" | "blockNumber">;

interface Version<T> {
  block: number;
  value: T;
}

/** The last version at or before `block` (versions are in ledger order). */
function at<T>(versions: readonly Version<T>[] | undefined, block: number): T | undefined {
  if (!versions) return undefined;
  let lo = 0;
  let hi = versions.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (versions[mid]!.block <= block) lo = mid + 1;
    else hi = mid;
  }
  return lo === 0 ? undefined : versions[lo - 1]!.value;
}

/**
 * Every version of every member, agreement and consent record, from the ledger's events: the state
 * "at block B" is the state after all of B's transactions, as an EVM call at block tag B reads it.
 */
export class LedgerHistory {
  private readonly members = new Map<string, Version<Member>[]>();
  private readonly agreements = new Map<bigint, Version<Agreement>[]>();
  /** Agreement ids per partner, in registration order. */
  private readonly byPartner = new Map<string, bigint[]>();
  private readonly consents = new Map<string, Version<ConsentState>[]>();
  private through = -1;

  private constructor(private readonly chunkBlocks: number) {}

  /** Reads the events of [fromBlock, head] (in chunks) and the block times consent events need. */
  static async load(ledger: HistorySource, fromBlock = 0, chunkBlocks = 5_000): Promise<LedgerHistory> {
    const history = new LedgerHistory(chunkBlocks);
    history.through = fromBlock - 1;
    await history.catchUp(ledger);
    return history;
  }

  /** Reads the events of the blocks mined since the last load or catch-up. */
  async catchUp(ledger: HistorySource): Promise<void> {
    const head = await ledger.blockNumber();
    const times = new Map<number, number>();
    for (let from = this.through + 1; from <= head; from += this.chunkBlocks) {
      const to = Math.min(head, from + this.chunkBlocks - 1);
      for (const ev of await ledger.events(from, to)) {
        let t = 0;
        if (needsBlockTime(ev)) {
          t = times.get(ev.blockNumber) ?? (await ledger.blockTime(ev.blockNumber));
          times.set(ev.blockNumber, t);
        }
        this.apply(ev, t);
      }
      this.through = to;
    }
  }

  /** The last block the history covers. */
  get throughBlock(): number {
    return this.through;
  }

  /** Applies one event (in ledger order) with its block's time. */
  apply(ev: LedgerEvent, blockTime: number): void {
    const latest = <T>(m: Map<unknown, Version<T>[]>, k: unknown): T | undefined => m.get(k)?.at(-1)?.value;
    const change = stateChange(ev, { member: (a) => latest(this.members, a.toLowerCase()), agreement: (id) => latest(this.agreements, id), consent: (k) => latest(this.consents, k) }, blockTime);
    if (!change) return;
    const push = <K, T>(m: Map<K, Version<T>[]>, k: K, value: T): void => {
      const list = m.get(k) ?? [];
      list.push({ block: ev.blockNumber, value });
      m.set(k, list);
    };
    if (change.kind === "member") push(this.members, change.key.toLowerCase(), change.value);
    else if (change.kind === "consent") push(this.consents, change.key, change.value);
    else {
      if (!this.agreements.has(change.key)) {
        const partner = change.value.partner.toLowerCase();
        const ids = this.byPartner.get(partner) ?? [];
        ids.push(change.key);
        this.byPartner.set(partner, ids);
      }
      push(this.agreements, change.key, change.value);
    }
    if (ev.blockNumber > this.through) this.through = ev.blockNumber;
  }

  member(account: Address, block: number): Member | null {
    return at(this.members.get(account.toLowerCase()), block) ?? null;
  }

  /** The ledger's permission rule on the state at `block` (core's evaluatePermission). */
  checkPermission(q: PermissionQuery, block: number): PermissionCheck {
    const agreements: Agreement[] = [];
    for (const id of this.byPartner.get(q.partner.toLowerCase()) ?? []) {
      const a = at(this.agreements.get(id), block);
      if (a) agreements.push(a);
    }
    const consent = at(this.consents.get(consentKey(q.subject, q.partner, q.purpose)), block) ?? null;
    return evaluatePermission({ member: this.member(q.partner, block), agreements, consent }, { purpose: q.purpose, categories: q.categories, time: q.time });
  }
}
