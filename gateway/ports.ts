import type { Address, Bytes32 } from "../core/domain.js";

/** What the HTTP layer needs of a durable RFC 9162 log (gateway/log implements it). */
export interface AppendReceipt {
  logId: Bytes32;
  index: number;
  leafHash: Bytes32;
  treeSize: number;
}

export interface LogPort {
  readonly size: number;
  /** `tag` files the entry under it, in the entry's own record (the gateway's: the subject's address, lower case). */
  append(entry: unknown, tag?: string): Promise<AppendReceipt>;
  /** `append` of an entry given as its RFC 8785 canonical JSON text. */
  appendCanonical(text: string, tag?: string): Promise<AppendReceipt>;
  /** The newest `limit` durable entry indexes filed under `tag`, oldest first (a subject's own history, GDPR Art. 15). */
  tagged(tag: string, limit: number): number[];
  root(size?: number): Bytes32 | string;
  getEntries(start: number, endExclusive: number): Promise<{ index: number; entry: unknown; leafHash: string }[]>;
  /** The entries at `indexes` (each durable), in the order given: one read per batch record they fall in. */
  getEntriesAt(indexes: readonly number[]): Promise<{ index: number; entry: unknown; leafHash: string }[]>;
  inclusionProof(index: number, size?: number): string[];
  consistencyProof(size1: number, size2?: number): string[];
}

export interface SignedCheckpointView {
  logId: string;
  treeSize: number;
  root: string;
  timestamp: number;
  gateway: string;
  signature: string;
}

export interface AnchorerPort {
  lastAnchored(): SignedCheckpointView | null;
  /** The alarm that stopped anchoring (the log and the ledger disagree), or null. */
  alarmReason(): string | null;
  /** Signed checkpoints by tree size ascending: all, or those above `after`, at most `limit`. */
  checkpoints(page?: { after?: number; limit?: number }): Promise<SignedCheckpointView[]>;
}

/** What the HTTP layer needs of the data vault (gateway/vault implements it). */
export interface VaultPort {
  ingest(records: never[]): Promise<{ subjects: { subject: Address; records: number; commitment: Bytes32 }[] }>;
  read(subject: Address): Promise<unknown>;
  erase(subject: Address): Promise<{ commitment: Bytes32 | null; erasedAt: number }>;
  status(subject: Address): Promise<"active" | "erased" | "unknown">;
  /** Optional synchronous cache lookup: the status and, if held, the records; undefined when unknown to the cache. */
  peek?(subject: Address): Readonly<{ status: "active" | "erased" | "unknown"; data?: unknown }> | undefined;
  /** The current data commitment of an active subject; null when unknown; SUBJECT_ERASED (details: the tombstone's commitment) when erased. */
  commitment(subject: Address): Promise<{ commitment: Bytes32; records: number; committedAt: number } | null>;
  /** Active subjects, ascending. */
  subjects(): AsyncIterable<Address>;
}

/** Parsing and projection of vault records, injected with the vault. */
export interface VaultCodec {
  parseJson(body: unknown): never[];
  parseCsv(text: string, kind: "transactions" | "profiles"): never[];
  /** The part of a subject's data in the given categories. */
  project(data: unknown, categoriesMask: number): unknown;
}
