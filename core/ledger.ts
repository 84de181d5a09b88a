import type {
  Address,
  Agreement,
  AnchoredCheckpoint,
  Bytes32,
  Checkpoint,
  ConsentState,
  DataCommitment,
  Member,
  PermissionCheck,
  RoleName,
} from "./domain.js";
import type { ConsentGrantMessage, ConsentRevokeMessage, DataCommitmentMessage, Eip712Domain } from "./eip712.js";

/**
 * The ledger port: every operation and view of the consent ledger, with identical semantics on
 * each adapter (EVM via ethers, Hyperledger Fabric via fabric-gateway). Types only — no I/O here.
 *
 * Every method rejects with a CustodiaError: rule violations carry the rule's code
 * (NONCE_INVALID, CONSENT_NOT_ACTIVE, ...), an unreachable ledger LEDGER_UNAVAILABLE.
 * Writes resolve once the transaction is committed in a block.
 */
export interface LedgerPort {
  readonly kind: "evm" | "fabric";

  /** The account this adapter submits as. */
  account(): Promise<Address>;
  /** Latest committed block number. */
  blockNumber(): Promise<number>;
  /** Timestamp (unix seconds) of a block, latest by default. */
  blockTime(block?: number): Promise<number>;
  /** The EIP-712 domain subjects sign consents for. */
  eip712Domain(): Promise<Eip712Domain>;

  registerMember(input: MemberInput): Promise<TxResult>;
  deactivateMember(account: Address): Promise<TxResult>;
  /** null when the account was never registered. */
  getMember(account: Address, at?: ReadAt): Promise<Member | null>;

  registerAgreement(input: AgreementInput): Promise<TxResult & { id: bigint }>;
  endAgreement(id: bigint): Promise<TxResult>;
  getAgreement(id: bigint, at?: ReadAt): Promise<Agreement | null>;
  agreementsOf(partner: Address, at?: ReadAt): Promise<bigint[]>;

  grantConsent(message: ConsentGrantMessage, signature: string): Promise<TxResult>;
  revokeConsent(message: ConsentRevokeMessage, signature: string): Promise<TxResult>;
  /** The stored consent; a never-granted consent has grantedAt 0 and nonce 0. */
  getConsent(subject: Address, partner: Address, purpose: number, at?: ReadAt): Promise<ConsentState>;
  /** Is `partner` permitted `purpose` over `categories` of `subject` at unix time `time`? */
  checkPermission(query: PermissionQuery, at?: ReadAt): Promise<PermissionCheck>;

  commitData(message: DataCommitmentMessage, signature: string): Promise<TxResult>;
  recordErasure(message: DataCommitmentMessage, signature: string): Promise<TxResult>;
  getCommitment(commitment: Bytes32, at?: ReadAt): Promise<DataCommitment | null>;
  dataNonce(subject: Address, at?: ReadAt): Promise<bigint>;

  anchorCheckpoint(checkpoint: Checkpoint): Promise<TxResult>;
  /** null when nothing was anchored for the log. */
  latestCheckpoint(logId: Bytes32, at?: ReadAt): Promise<LogHead | null>;
  /** The root anchored for `logId` at exactly `treeSize`, or null. */
  checkpointRoot(logId: Bytes32, treeSize: number, at?: ReadAt): Promise<Bytes32 | null>;
  /** Every anchored checkpoint of a log, oldest first (from ledger events). */
  checkpoints(logId: Bytes32): Promise<AnchoredCheckpoint[]>;

  /**
   * Ledger events in [fromBlock, toBlock], in ledger order. LEDGER_UNAVAILABLE (reason
   * "event_undecodable") when one of the contract's own events cannot be read: a follower that
   * skipped it could miss a revocation.
   */
  events(fromBlock: number, toBlock?: number): Promise<LedgerEvent[]>;
  /**
   * Follows the ledger from `fromBlock` on: calls `onEvents` with each new batch of events and the
   * block they reach to (also for empty batches, so callers know how fresh they are).
   */
  watch(fromBlock: number, onEvents: (events: LedgerEvent[], throughBlock: number) => void | Promise<void>, options?: WatchOptions): Watcher;

  close(): Promise<void>;
}

/** Read at a past block (EVM: an archive read). Omitted: latest. */
export interface ReadAt {
  block?: number;
}

export interface TxResult {
  txId: string;
  blockNumber: number;
}

export interface MemberInput {
  account: Address;
  didHash: Bytes32;
  role: RoleName;
  orgHash: Bytes32;
}

export interface AgreementInput {
  partner: Address;
  purposes: number;
  categories: number;
  validFrom: number;
  validUntil: number;
  termsHash: Bytes32;
}

export interface PermissionQuery {
  subject: Address;
  partner: Address;
  purpose: number;
  categories: number;
  /** Unix seconds. */
  time: number;
}

export interface LogHead {
  gateway: Address;
  treeSize: number;
  count: number;
}

export interface WatchOptions {
  pollMs?: number;
  onError?: (error: unknown) => void;
}

export interface Watcher {
  stop(): Promise<void>;
}

interface EventBase {
  blockNumber: number;
  txId: string;
  /** Position of the event within its block. */
  logIndex: number;
}

export type LedgerEvent =
  | (EventBase & { type: "MemberRegistered"; account: Address; role: RoleName; didHash: Bytes32; orgHash: Bytes32 })
  | (EventBase & { type: "MemberDeactivated"; account: Address })
  | (EventBase & {
      type: "AgreementRegistered";
      id: bigint;
      partner: Address;
      purposes: number;
      categories: number;
      validFrom: number;
      validUntil: number;
      termsHash: Bytes32;
    })
  | (EventBase & { type: "AgreementEnded"; id: bigint; partner: Address })
  | (EventBase & {
      type: "ConsentGranted";
      subject: Address;
      partner: Address;
      purpose: number;
      categories: number;
      expiresAt: number;
      receiptHash: Bytes32;
      nonce: number;
    })
  | (EventBase & { type: "ConsentRevoked"; subject: Address; partner: Address; purpose: number; nonce: number })
  | (EventBase & { type: "DataCommitted"; subject: Address; commitment: Bytes32 })
  | (EventBase & { type: "DataErased"; subject: Address; commitment: Bytes32 })
  | (EventBase & { type: "CheckpointAnchored"; logId: Bytes32; gateway: Address; treeSize: number; root: Bytes32; index: number });

export type LedgerEventType = LedgerEvent["type"];
