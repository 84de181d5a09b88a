/**
 * The ledger port over the in-memory stand-in peer (memory-peer.ts): the adapter's shared
 * ChaincodeLedger with a transport that calls the stand-in instead of a Fabric Gateway. Only the
 * transport is test code; argument encoding, view decoding, event decoding and error mapping are
 * the production adapter's. A unit-test stand-in, see memory-peer.ts for what it does not model.
 */
import { CustodiaError } from "../../../core/errors.js";
import type { WatchOptions, Watcher } from "../../../core/ledger.js";
import { pollWatch } from "../../../core/poll-watch.js";
import { ChaincodeLedger, ruleErrorFrom, type ChaincodeTransport, type RawChaincodeEvent, type SubmitResult } from "../../../chaincode/adapter/chaincode-ledger.js";
import type { EvaluateTransaction, SubmitTransaction } from "../../../chaincode/src/protocol.js";
import { EndorsementFailure, MemoryPeer, TX_VALID } from "./memory-peer.js";
import { TestCa, type TestIdentity } from "./x509.js";

function mapError(e: unknown): CustodiaError {
  if (e instanceof CustodiaError) return e;
  if (e instanceof EndorsementFailure) {
    return ruleErrorFrom(e.message, e) ?? new CustodiaError("LEDGER_REVERTED", `endorsement failed: ${e.chaincodeMessage.slice(0, 200)}`, undefined, { cause: e });
  }
  return new CustodiaError("INTERNAL", `in-memory peer failed: ${(e as Error).message}`, undefined, { cause: e });
}

export class MemoryTransport implements ChaincodeTransport {
  constructor(
    readonly peer: MemoryPeer,
    readonly identity: TestIdentity,
  ) {}

  async submit(fn: SubmitTransaction, args: readonly string[]): Promise<SubmitResult> {
    try {
      const r = await this.peer.submit(this.identity, fn, args);
      return { txId: r.txId, blockNumber: r.blockNumber, result: r.payload };
    } catch (e) {
      throw mapError(e);
    }
  }

  async evaluate(fn: EvaluateTransaction, args: readonly string[]): Promise<Uint8Array> {
    try {
      return await this.peer.evaluate(this.identity, fn, args);
    } catch (e) {
      throw mapError(e);
    }
  }

  async blockNumber(): Promise<number> {
    return this.peer.height - 1;
  }

  async blockTime(block: number): Promise<number> {
    const b = this.peer.block(block);
    if (!b) throw new CustodiaError("INVALID_ARGUMENT", `block ${block} does not exist`);
    return b.timestamp;
  }

  async blockOfTransaction(txId: string): Promise<number> {
    const n = this.peer.blockOfTransaction(txId);
    if (n === undefined) throw new CustodiaError("INVALID_ARGUMENT", `transaction ${txId} is not on the ledger`);
    return n;
  }

  async events(fromBlock: number, toBlock: number): Promise<RawChaincodeEvent[]> {
    const out: RawChaincodeEvent[] = [];
    for (let n = Math.max(0, fromBlock); n <= Math.min(toBlock, this.peer.height - 1); n++) {
      let logIndex = 0;
      for (const tx of this.peer.block(n)!.transactions) {
        if (tx.event && tx.validationCode === TX_VALID && tx.chaincodeName === this.peer.chaincodeName) out.push({ blockNumber: n, txId: tx.txId, logIndex: logIndex++, eventName: tx.event.name, payload: tx.event.payload });
      }
    }
    return out;
  }

  /** Polls the stand-in as the EVM adapter polls a node (the stand-in has no event stream). */
  watch(fromBlock: number, onEvents: (events: RawChaincodeEvent[], throughBlock: number) => void | Promise<void>, options: WatchOptions): Watcher {
    return pollWatch(this, fromBlock, onEvents, options, 50);
  }

  async close(): Promise<void> {}
}

/** The ledger port for one identity on the stand-in peer. */
export class MemoryFabricLedger extends ChaincodeLedger {
  constructor(
    readonly peer: MemoryPeer,
    readonly identity: TestIdentity,
  ) {
    super(new MemoryTransport(peer, identity));
  }

  /** The same ledger, submitting as another identity. */
  as(identity: TestIdentity): MemoryFabricLedger {
    return new MemoryFabricLedger(this.peer, identity);
  }
}

export interface MemoryNetwork {
  peer: MemoryPeer;
  ca: TestCa;
  /** The identity that ran InitLedger: the first ADMIN. */
  admin: MemoryFabricLedger;
  /** A ledger handle for a fresh client identity of the same MSP. */
  newLedger(): MemoryFabricLedger;
}

/** A stand-in peer with the chaincode initialised for `domain` by a fresh admin identity. */
export async function startMemoryNetwork(domain: { chainId: bigint | number; verifyingContract: string }, options: { mspId?: string } = {}): Promise<MemoryNetwork> {
  const peer = await MemoryPeer.create({ peerMspId: options.mspId ?? "Org1MSP" });
  const ca = new TestCa(options.mspId ?? "Org1MSP");
  const admin = new MemoryFabricLedger(peer, ca.newIdentity("admin"));
  await admin.initLedger(domain);
  return { peer, ca, admin, newLedger: () => new MemoryFabricLedger(peer, ca.newIdentity()) };
}
