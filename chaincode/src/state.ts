import type { Context } from "fabric-contract-api";
import type { RoleName } from "../../core/domain.js";
import { canonicalize } from "../../core/jcs.js";

/**
 * World-state layout. Every value is canonical JSON (core's RFC 8785 canonicalize), every key a
 * composite key, so endorsers produce byte-identical write sets. Keys (object type, attributes):
 *
 *   config            []                      domain and initialisation record (one)
 *   member            [account]               MemberRecord
 *   agreementCount    []                      { count }
 *   agreement         [id20]                  AgreementRecord
 *   partnerAgreement  [partner, id20]         { id }   (index: a partner's agreements in id order)
 *   consent           [consentKey]            ConsentRecord (keyed like the Solidity mapping)
 *   commitment        [commitment]            CommitmentRecord
 *   dataNonce         [subject]               { nonce }
 *   checkpointHead    [logId]                 HeadRecord
 *   checkpoint        [logId, treeSize20]     CheckpointRecord (history, in tree-size order)
 *
 * id20/treeSize20: decimal zero-padded to 20 digits (uint64 max has 20), so the lexicographic
 * order of a partial-composite-key scan is numeric order.
 *
 * Fabric semantics to keep in mind: a transaction does not read its own writes (reads see the
 * committed state), so every function below reads what it needs before it writes, and never reads
 * a key after writing it.
 */

export interface ConfigRecord {
  name: string;
  version: string;
  chainId: string;
  verifyingContract: string;
  /** Account registered as the first ADMIN, and when. */
  admin: string;
  initialisedAt: number;
  txId: string;
}

export interface MemberRecord {
  didHash: string;
  orgHash: string;
  role: RoleName;
  active: boolean;
}

export interface AgreementRecord {
  partner: string;
  purposes: number;
  categories: number;
  validFrom: number;
  validUntil: number;
  termsHash: string;
  active: boolean;
}

export interface ConsentRecord {
  categories: number;
  expiresAt: number;
  grantedAt: number;
  revokedAt: number;
  nonce: number;
}

export interface CommitmentRecord {
  subject: string;
  committedAt: number;
  erasedAt: number;
}

export interface HeadRecord {
  gateway: string;
  treeSize: string;
  count: number;
}

export interface CheckpointRecord {
  root: string;
  gateway: string;
  index: number;
  txId: string;
  time: number;
}

export type ObjectType =
  | "config"
  | "member"
  | "agreementCount"
  | "agreement"
  | "partnerAgreement"
  | "consent"
  | "commitment"
  | "dataNonce"
  | "checkpointHead"
  | "checkpoint";

export class State {
  constructor(private readonly ctx: Context) {}

  key(type: ObjectType, attributes: string[]): string {
    return this.ctx.stub.createCompositeKey(type, attributes);
  }

  /** The committed value at (type, attributes), or undefined. */
  async get<T>(type: ObjectType, attributes: string[]): Promise<T | undefined> {
    const bytes = await this.ctx.stub.getState(this.key(type, attributes));
    if (!bytes || bytes.length === 0) return undefined;
    return JSON.parse(Buffer.from(bytes).toString("utf8")) as T;
  }

  async put(type: ObjectType, attributes: string[], value: unknown): Promise<void> {
    await this.ctx.stub.putState(this.key(type, attributes), Buffer.from(canonicalize(value), "utf8"));
  }

  /** Every committed (attributes, value) under a partial composite key, in key order. */
  async scan<T>(type: ObjectType, prefix: string[]): Promise<{ attributes: string[]; value: T }[]> {
    const iterator = await this.ctx.stub.getStateByPartialCompositeKey(type, prefix);
    const out: { attributes: string[]; value: T }[] = [];
    try {
      for (let r = await iterator.next(); !r.done; r = await iterator.next()) {
        const { attributes } = this.ctx.stub.splitCompositeKey(r.value.key);
        out.push({ attributes, value: JSON.parse(Buffer.from(r.value.value).toString("utf8")) as T });
      }
    } finally {
      await iterator.close();
    }
    return out;
  }
}
