/**
 * Reading Fabric blocks (common.Block protobufs from the Deliver service or qscc): block number,
 * block time, and the chaincode events of the block's valid transactions. @hyperledger/fabric-protos
 * is the message library @hyperledger/fabric-gateway itself returns blocks in.
 */
import { common, peer } from "@hyperledger/fabric-protos";
import type { RawChaincodeEvent } from "./chaincode-ledger.js";

export interface BlockTransaction {
  txId: string;
  /** Channel header type (common.HeaderType): 3 = ENDORSER_TRANSACTION, 1 = CONFIG, ... */
  type: number;
  /** peer.TxValidationCode from the block metadata; 0 = VALID. */
  validationCode: number;
  /** Client timestamp of the transaction, unix seconds. */
  timestamp: number;
  /** The chaincode event of an endorser transaction, if it set one. */
  event?: { chaincodeName: string; eventName: string; payload: Uint8Array };
}

export interface ParsedBlock {
  number: number;
  /** The latest transaction timestamp in the block (unix seconds); 0 for a block without any. */
  timestamp: number;
  transactions: BlockTransaction[];
}

const VALID = 0;

/** Parses a block (or its serialized bytes). */
export function parseBlock(input: common.Block | Uint8Array): ParsedBlock {
  const block = input instanceof Uint8Array ? common.Block.deserializeBinary(input) : input;
  const number = Number(block.getHeader()?.getNumber() ?? 0);
  const envelopes = block.getData()?.getDataList_asU8() ?? [];
  const filter = block.getMetadata()?.getMetadataList_asU8()[common.BlockMetadataIndex.TRANSACTIONS_FILTER] ?? new Uint8Array();
  const transactions: BlockTransaction[] = [];
  let timestamp = 0;
  envelopes.forEach((bytes, i) => {
    const envelope = common.Envelope.deserializeBinary(bytes);
    const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
    const header = common.ChannelHeader.deserializeBinary(payload.getHeader()?.getChannelHeader_asU8() ?? new Uint8Array());
    const seconds = Number(header.getTimestamp()?.getSeconds() ?? 0);
    timestamp = Math.max(timestamp, seconds);
    const tx: BlockTransaction = {
      txId: header.getTxId(),
      type: header.getType(),
      // a config block has no transaction filter entry for its envelope: treat as valid
      validationCode: filter[i] ?? VALID,
      timestamp: seconds,
    };
    if (header.getType() === common.HeaderType.ENDORSER_TRANSACTION) {
      const event = chaincodeEventOf(payload.getData_asU8());
      if (event) tx.event = event;
    }
    transactions.push(tx);
  });
  return { number, timestamp, transactions };
}

function chaincodeEventOf(transactionBytes: Uint8Array): BlockTransaction["event"] {
  const transaction = peer.Transaction.deserializeBinary(transactionBytes);
  for (const action of transaction.getActionsList()) {
    const actionPayload = peer.ChaincodeActionPayload.deserializeBinary(action.getPayload_asU8());
    const endorsed = actionPayload.getAction();
    if (!endorsed) continue;
    const response = peer.ProposalResponsePayload.deserializeBinary(endorsed.getProposalResponsePayload_asU8());
    const chaincodeAction = peer.ChaincodeAction.deserializeBinary(response.getExtension_asU8());
    const eventBytes = chaincodeAction.getEvents_asU8();
    if (eventBytes.length === 0) continue;
    const event = peer.ChaincodeEvent.deserializeBinary(eventBytes);
    return { chaincodeName: event.getChaincodeId(), eventName: event.getEventName(), payload: event.getPayload_asU8() };
  }
  return undefined;
}

/**
 * The events `chaincodeName` emitted in valid transactions of the block, in transaction order;
 * logIndex counts them within the block (what the chaincode-events stream delivers too).
 */
export function chaincodeEventsOf(block: ParsedBlock, chaincodeName: string): RawChaincodeEvent[] {
  const out: RawChaincodeEvent[] = [];
  for (const tx of block.transactions) {
    if (tx.validationCode !== VALID || !tx.event || tx.event.chaincodeName !== chaincodeName) continue;
    out.push({ blockNumber: block.number, txId: tx.txId, logIndex: out.length, eventName: tx.event.eventName, payload: tx.event.payload });
  }
  return out;
}

/** The height of the channel's ledger from qscc GetChainInfo's common.BlockchainInfo. */
export function chainHeight(blockchainInfo: Uint8Array): number {
  return Number(common.BlockchainInfo.deserializeBinary(blockchainInfo).getHeight());
}
