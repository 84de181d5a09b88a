/**
 * THE UNIT-TEST STAND-IN FOR A FABRIC PEER — not a Fabric implementation, and no substitute for the
 * real-network run (test/ledger/fabric.conformance.test.ts).
 *
 * It executes the compiled chaincode (chaincode/dist, through fabric-shim's own
 * ChaincodeFromContract: the same routing, argument marshalling, metadata and ClientIdentity
 * parsing as `fabric-chaincode-node`) against an in-memory world state that keeps the peer
 * semantics the chaincode depends on:
 *
 * - keys and composite keys exactly as fabric-shim encodes them (U+0000 namespace and separators),
 *   partial-composite-key and range scans over the committed state in UTF-8 byte order (LevelDB's
 *   order), iterators with next()/close() and async iteration;
 * - simulation as on an endorser: reads see the committed state only (a transaction never reads its
 *   own writes), writes go to a write set applied at commit; a failed endorsement (status != 200)
 *   leaves no trace — no writes, no block, no event;
 * - per transaction: a tx id, a timestamp (the client clock, never earlier than the previous block),
 *   the creator (MSP id + X.509 certificate) that ClientIdentity parses, one chaincode event (the
 *   last setEvent wins, as on Fabric);
 * - one transaction per block, blocks numbered from 1 after an empty genesis block 0; evaluations
 *   run the chaincode but never commit;
 * - endorsement and commit are separate steps (as with the Fabric Gateway's Endorse and Submit):
 *   at commit the read set (key versions, range results) is validated against the state, and a
 *   stale transaction is recorded in its block as MVCC_READ_CONFLICT / PHANTOM_READ_CONFLICT with
 *   no effect. `submit` endorses and commits in one step, one transaction at a time.
 *
 * Not modelled: endorsement policies and signatures, private data, state-based endorsement,
 * several peers or organisations.
 */
import { createHash, randomBytes } from "node:crypto";
import { chaincodeFromContracts, type ChaincodeFromContract } from "./load-chaincode.js";
import type { TestIdentity } from "./x509.js";

const COMPOSITEKEY_NS = "\u0000";
const MIN_UNICODE_RUNE_VALUE = "\u0000";
const MAX_UNICODE_RUNE_VALUE = "\u{10ffff}";
const EMPTY_KEY_SUBSTITUTE = "\u0001";

/** Raised when the chaincode answers an endorsement with an error status. */
export class EndorsementFailure extends Error {
  constructor(
    readonly status: number,
    readonly chaincodeMessage: string,
  ) {
    // as a peer reports it in an endorsement error's details
    super(`chaincode response ${status}, ${chaincodeMessage}`);
    this.name = "EndorsementFailure";
  }
}

/* ---------------------------------------------------------------- world state */

function utf8Compare(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function validateCompositeKeyAttribute(attr: unknown): asserts attr is string {
  if (!attr || typeof attr !== "string" || attr.length === 0) throw new Error("object type or attribute not a non-zero length string");
  if (attr.includes(MIN_UNICODE_RUNE_VALUE) || attr.includes(MAX_UNICODE_RUNE_VALUE)) {
    throw new Error(`object type or attribute [${JSON.stringify(attr)}] contains U+0000 or U+10FFFF, which are not allowed`);
  }
}

function validateSimpleKeys(...keys: string[]): void {
  for (const key of keys) {
    if (key && key.charAt(0) === COMPOSITEKEY_NS) throw new Error(`first character of the key [${key}] contains a null character which is not allowed`);
  }
}

/** fabric-shim's createCompositeKey. */
export function createCompositeKey(objectType: string, attributes: string[]): string {
  validateCompositeKeyAttribute(objectType);
  if (!Array.isArray(attributes)) throw new Error("attributes must be an array");
  let key = COMPOSITEKEY_NS + objectType + MIN_UNICODE_RUNE_VALUE;
  for (const a of attributes) {
    validateCompositeKeyAttribute(a);
    key += a + MIN_UNICODE_RUNE_VALUE;
  }
  return key;
}

/** fabric-shim's splitCompositeKey. */
export function splitCompositeKey(compositeKey: string): { objectType: string | null; attributes: string[] } {
  const result: { objectType: string | null; attributes: string[] } = { objectType: null, attributes: [] };
  if (compositeKey && compositeKey.length > 1 && compositeKey.charAt(0) === COMPOSITEKEY_NS) {
    const split = compositeKey.substring(1).split(MIN_UNICODE_RUNE_VALUE);
    result.objectType = split[0] ?? null;
    split.pop();
    if (split.length > 1) {
      split.shift();
      result.attributes = split;
    }
  }
  return result;
}

/** The committed key-value state of one chaincode namespace; each value has the block that wrote it as version. */
export class MemoryWorldState {
  private readonly values = new Map<string, { value: Buffer; version: number }>();

  get(key: string): Buffer | undefined {
    return this.values.get(key)?.value;
  }

  version(key: string): number | null {
    return this.values.get(key)?.version ?? null;
  }

  /** Keys in [startKey, endKey) in UTF-8 byte order, with their values and versions. */
  range(startKey: string, endKey: string): { key: string; value: Buffer; version: number }[] {
    return [...this.values.keys()]
      .filter((k) => utf8Compare(k, startKey) >= 0 && (endKey === "" || utf8Compare(k, endKey) < 0))
      .sort(utf8Compare)
      .map((key) => {
        const v = this.values.get(key)!;
        return { key, value: Buffer.from(v.value), version: v.version };
      });
  }

  apply(writes: ReadonlyMap<string, Buffer | null>, version = 0): void {
    for (const [k, v] of writes) {
      if (v === null) this.values.delete(k);
      else this.values.set(k, { value: Buffer.from(v), version });
    }
  }

  get size(): number {
    return this.values.size;
  }
}

/* ---------------------------------------------------------------- the stub */

interface KV {
  key: string;
  value: Buffer;
}

class MemoryIterator {
  private at = 0;
  closed = false;
  constructor(private readonly rows: KV[]) {}
  async next(): Promise<{ value: KV; done: false } | { value?: undefined; done: true }> {
    if (this.closed) throw new Error("iterator is closed");
    const row = this.rows[this.at++];
    return row ? { value: { key: row.key, value: Buffer.from(row.value) }, done: false } : { done: true };
  }
  async close(): Promise<void> {
    this.closed = true;
  }
}

function scan(world: MemoryWorldState, start: string, end: string, simpleOnly: boolean): { key: string; value: Buffer; version: number }[] {
  const rows = world.range(start, end);
  return simpleOnly ? rows.filter((r) => r.key.charAt(0) !== COMPOSITEKEY_NS) : rows;
}

/** fabric-shim returns a promise of an iterator that is itself async-iterable. */
function asyncIterablePromise(iterator: MemoryIterator): Promise<MemoryIterator> & AsyncIterable<KV> {
  const promise = Promise.resolve(iterator) as Promise<MemoryIterator> & AsyncIterable<KV>;
  promise[Symbol.asyncIterator] = () => ({
    next: async () => {
      const r = await iterator.next();
      if (r.done) await iterator.close();
      return r as IteratorResult<KV>;
    },
    return: async () => {
      await iterator.close();
      return { done: true, value: undefined };
    },
  });
  return promise;
}

/** Seconds as fabric-shim's getTxTimestamp() reports them: a Long-like object. */
class LongSeconds {
  readonly unsigned = true;
  constructor(private readonly value: number) {}
  get low(): number {
    return this.value % 2 ** 32 | 0;
  }
  get high(): number {
    return Math.floor(this.value / 2 ** 32) | 0;
  }
  toNumber(): number {
    return this.value;
  }
  toInt(): number {
    return this.value | 0;
  }
  toString(): string {
    return String(this.value);
  }
}

export interface SimulationInput {
  txId: string;
  channelId: string;
  peerMspId: string;
  /** Milliseconds since the epoch (the client's clock when it built the proposal). */
  timestampMs: number;
  creator: TestIdentity;
  args: string[];
}

/** A ChaincodeStub for one simulated transaction. */
export class SimulationStub {
  readonly writes = new Map<string, Buffer | null>();
  /** Read set: key -> version read (null: absent). */
  readonly reads = new Map<string, number | null>();
  /** Range reads: what each scan returned, for phantom validation. */
  readonly ranges: { start: string; end: string; simpleOnly: boolean; keys: [string, number][] }[] = [];
  event: { name: string; payload: Buffer } | undefined;
  private readonly iterators: MemoryIterator[] = [];

  constructor(
    private readonly world: MemoryWorldState,
    private readonly input: SimulationInput,
  ) {}

  /* identity and proposal */
  getTxID(): string {
    return this.input.txId;
  }
  getChannelID(): string {
    return this.input.channelId;
  }
  getMspID(): string {
    return this.input.peerMspId;
  }
  getCreator(): { mspid: string; idBytes: Uint8Array } {
    return { mspid: this.input.creator.mspId, idBytes: new Uint8Array(Buffer.from(this.input.creator.certificate, "utf8")) };
  }
  getTransient(): Map<string, Uint8Array> {
    return new Map();
  }
  getTxTimestamp(): { seconds: LongSeconds; nanos: number } {
    const ms = this.input.timestampMs;
    return { seconds: new LongSeconds(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1_000_000 };
  }
  getDateTimestamp(): Date {
    return new Date(this.input.timestampMs);
  }
  getArgs(): string[] {
    return [...this.input.args];
  }
  getStringArgs(): string[] {
    return [...this.input.args];
  }
  getBufferArgs(): Buffer[] {
    return this.input.args.map((a) => Buffer.from(a, "utf8"));
  }
  getFunctionAndParameters(): { fcn: string; params: string[] } {
    const [fcn = "", ...params] = this.input.args;
    return { fcn, params };
  }

  /* state: reads see committed state only; writes are buffered */
  async getState(key: string): Promise<Uint8Array> {
    if (typeof key !== "string" || key === "") throw new Error("key must not be empty");
    this.reads.set(key, this.world.version(key));
    const v = this.world.get(key);
    return v ? Buffer.from(v) : Buffer.alloc(0);
  }
  async putState(key: string, value: Uint8Array): Promise<void> {
    if (typeof key !== "string" || key === "") throw new Error("key must not be empty");
    if (!(value instanceof Uint8Array)) throw new Error("value must be bytes");
    this.writes.set(key, Buffer.from(value));
  }
  async deleteState(key: string): Promise<void> {
    if (typeof key !== "string" || key === "") throw new Error("key must not be empty");
    this.writes.set(key, null);
  }
  getStateByRange(startKey: string, endKey: string): Promise<MemoryIterator> & AsyncIterable<KV> {
    validateSimpleKeys(startKey, endKey);
    // as the shim: an empty start key means "from the first simple key"
    return this.iterator(startKey === "" ? EMPTY_KEY_SUBSTITUTE : startKey, endKey, true);
  }
  getStateByPartialCompositeKey(objectType: string, attributes: string[]): Promise<MemoryIterator> & AsyncIterable<KV> {
    const start = createCompositeKey(objectType, attributes);
    return this.iterator(start, start + MAX_UNICODE_RUNE_VALUE, false);
  }
  createCompositeKey(objectType: string, attributes: string[]): string {
    return createCompositeKey(objectType, attributes);
  }
  splitCompositeKey(compositeKey: string): { objectType: string | null; attributes: string[] } {
    return splitCompositeKey(compositeKey);
  }

  /* events */
  setEvent(name: string, payload: Uint8Array): void {
    if (typeof name !== "string" || name === "") throw new Error("Event name must be a non-empty string");
    this.event = { name, payload: Buffer.from(payload) };
  }

  /** Iterators left open when the transaction ended (a chaincode bug on a real peer too). */
  get openIterators(): number {
    return this.iterators.filter((i) => !i.closed).length;
  }

  private iterator(start: string, end: string, simpleOnly: boolean): Promise<MemoryIterator> & AsyncIterable<KV> {
    const rows = scan(this.world, start, end, simpleOnly);
    this.ranges.push({ start, end, simpleOnly, keys: rows.map((r) => [r.key, r.version]) });
    const it = new MemoryIterator(rows);
    this.iterators.push(it);
    return asyncIterablePromise(it);
  }
}

// Everything else a real stub offers: unsupported here, loudly.
for (const name of [
  "getSignedProposal",
  "getBinding",
  "setStateValidationParameter",
  "getStateValidationParameter",
  "getStateByRangeWithPagination",
  "getStateByPartialCompositeKeyWithPagination",
  "getQueryResult",
  "getQueryResultWithPagination",
  "getHistoryForKey",
  "invokeChaincode",
  "getPrivateData",
  "getPrivateDataHash",
  "putPrivateData",
  "deletePrivateData",
  "purgePrivateData",
  "setPrivateDataValidationParameter",
  "getPrivateDataValidationParameter",
  "getPrivateDataByRange",
  "getPrivateDataByPartialCompositeKey",
  "getPrivateDataQueryResult",
]) {
  Object.defineProperty(SimulationStub.prototype, name, {
    value() {
      throw new Error(`ChaincodeStub.${name} is not supported by the in-memory stand-in`);
    },
  });
}

/* ---------------------------------------------------------------- the peer */

/** peer.TxValidationCode values the stand-in produces. */
export const TX_VALID = 0;
export const TX_MVCC_READ_CONFLICT = 11;
export const TX_PHANTOM_READ_CONFLICT = 12;

export interface MemoryPeerOptions {
  channelId?: string;
  peerMspId?: string;
  /** Name the chaincode is installed under (events carry it). */
  chaincodeName?: string;
  /** The clients' clock (ms); default Date.now. */
  clock?: () => number;
}

/** A proposal's identity and time; the stand-in makes them up when a caller does not bring its own. */
export interface ProposalContext {
  txId: string;
  timestampMs: number;
}

/** A simulated (endorsed) transaction, ready to commit. */
export interface Endorsement extends ProposalContext {
  creator: TestIdentity;
  fn: string;
  args: readonly string[];
  stub: SimulationStub;
  /** The chaincode's response payload. */
  payload: Buffer;
}

export interface MemoryTransaction {
  txId: string;
  chaincodeName: string;
  fn: string;
  creator: TestIdentity;
  /** Unix seconds / ms of the proposal. */
  timestamp: number;
  timestampMs: number;
  validationCode: number;
  payload: Buffer;
  event?: { name: string; payload: Buffer };
}

export interface MemoryBlock {
  number: number;
  /** Unix seconds: the latest transaction timestamp in the block (genesis: creation time). */
  timestamp: number;
  transactions: MemoryTransaction[];
}

/**
 * One peer with one channel and the Custodia chaincode installed. `submit` endorses and commits
 * one transaction at a time, in call order; `endorse` + `commit` are the two halves, for callers
 * (the fake gateway) that submit what they endorsed earlier.
 */
export class MemoryPeer {
  readonly channelId: string;
  readonly peerMspId: string;
  readonly chaincodeName: string;
  readonly world = new MemoryWorldState();
  private readonly blocks: MemoryBlock[];
  private readonly txIndex = new Map<string, number>();
  private readonly clock: () => number;
  private readonly listeners = new Set<(block: MemoryBlock) => void>();
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    private readonly chaincode: ChaincodeFromContract,
    options: MemoryPeerOptions,
  ) {
    this.channelId = options.channelId ?? "custodia";
    this.peerMspId = options.peerMspId ?? "Org1MSP";
    this.chaincodeName = options.chaincodeName ?? "custodia";
    this.clock = options.clock ?? Date.now;
    this.blocks = [{ number: 0, timestamp: Math.floor(this.clock() / 1000), transactions: [] }];
  }

  static async create(options: MemoryPeerOptions = {}): Promise<MemoryPeer> {
    return new MemoryPeer(await chaincodeFromContracts(), options);
  }

  get height(): number {
    return this.blocks.length;
  }

  block(n: number): MemoryBlock | undefined {
    return this.blocks[n];
  }

  blockOfTransaction(txId: string): number | undefined {
    return this.txIndex.get(txId);
  }

  /** Calls `listener` with every block committed from now on; returns the unsubscribe function. */
  onBlock(listener: (block: MemoryBlock) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Endorses and commits a transaction in its own block; rejects with EndorsementFailure. */
  submit(creator: TestIdentity, fn: string, args: readonly string[]): Promise<{ txId: string; blockNumber: number; payload: Buffer }> {
    const run = this.queue.then(async () => {
      const endorsement = await this.endorse(creator, fn, args);
      const { blockNumber } = this.commit(endorsement);
      return { txId: endorsement.txId, blockNumber, payload: endorsement.payload };
    });
    this.queue = run.catch(() => undefined);
    return run;
  }

  /** Runs a transaction for its result only (a query): nothing is committed. */
  async evaluate(creator: TestIdentity, fn: string, args: readonly string[], proposal?: ProposalContext): Promise<Buffer> {
    return (await this.endorse(creator, fn, args, proposal)).payload;
  }

  /** Simulates a transaction against the committed state; rejects with EndorsementFailure. */
  async endorse(creator: TestIdentity, fn: string, args: readonly string[], proposal?: ProposalContext): Promise<Endorsement> {
    const context = proposal ?? this.newProposal(creator);
    const stub = new SimulationStub(this.world, {
      txId: context.txId,
      channelId: this.channelId,
      peerMspId: this.peerMspId,
      timestampMs: context.timestampMs,
      creator,
      args: [fn, ...args],
    });
    const response = await this.chaincode.Invoke(stub);
    if (stub.openIterators > 0) throw new Error(`${fn} left ${stub.openIterators} state iterator(s) open`);
    if (response.status !== 200) throw new EndorsementFailure(response.status, response.message ?? "");
    return { ...context, creator, fn, args, stub, payload: Buffer.from(response.payload ?? new Uint8Array()) };
  }

  /**
   * Orders an endorsed transaction into the next block and validates it there: its reads must
   * still be current (MVCC) and its range scans must return the same keys (phantoms). Only a valid
   * transaction's writes are applied; an invalid one stays in its block with its validation code.
   */
  commit(e: Endorsement): { blockNumber: number; validationCode: number } {
    if (this.txIndex.has(e.txId)) throw new Error(`duplicate transaction id ${e.txId}`);
    let validationCode = TX_VALID;
    for (const [key, version] of e.stub.reads) {
      if (this.world.version(key) !== version) validationCode = TX_MVCC_READ_CONFLICT;
    }
    if (validationCode === TX_VALID) {
      for (const r of e.stub.ranges) {
        const now = scan(this.world, r.start, r.end, r.simpleOnly).map((x) => `${x.key}@${x.version}`);
        if (now.join("\n") !== r.keys.map(([k, v]) => `${k}@${v}`).join("\n")) validationCode = TX_PHANTOM_READ_CONFLICT;
      }
    }
    const number = this.blocks.length;
    const tx: MemoryTransaction = {
      txId: e.txId,
      chaincodeName: this.chaincodeName,
      fn: e.fn,
      creator: e.creator,
      timestamp: Math.floor(e.timestampMs / 1000),
      timestampMs: e.timestampMs,
      validationCode,
      payload: e.payload,
    };
    if (e.stub.event) tx.event = e.stub.event;
    if (validationCode === TX_VALID) this.world.apply(e.stub.writes, number);
    const block: MemoryBlock = { number, timestamp: tx.timestamp, transactions: [tx] };
    this.blocks.push(block);
    this.txIndex.set(tx.txId, number);
    for (const l of this.listeners) l(block);
    return { blockNumber: number, validationCode };
  }

  private newProposal(creator: TestIdentity): ProposalContext {
    const nonce = randomBytes(24);
    const txId = createHash("sha256").update(nonce).update(creator.certificate).digest("hex");
    // a well-behaved client clock: never before the latest block
    const last = this.blocks[this.blocks.length - 1]!.timestamp * 1000;
    return { txId, timestampMs: Math.max(this.clock(), last) };
  }
}
