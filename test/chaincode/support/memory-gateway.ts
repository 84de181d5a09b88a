/**
 * A FAKE Fabric Gateway peer endpoint for unit tests: a real gRPC server (@grpc/grpc-js) speaking
 * the Fabric Gateway and Deliver protocols (fabric-protos messages) in front of the in-memory
 * stand-in peer (memory-peer.ts). It lets the production adapter (chaincode/adapter/fabric-ledger.ts)
 * run unchanged — @hyperledger/fabric-gateway's client, signing, per-call deadlines, commit status,
 * chaincode-event streams with checkpoints, Deliver block streams, qscc queries and gRPC error
 * details — without a Fabric network. It is not Fabric: one peer, no orderer, no endorsement
 * policies, no certificate-chain validation (only the client's signatures are checked).
 *
 *   Gateway/Evaluate       simulate, return the chaincode response (qscc: GetChainInfo,
 *                          GetBlockByNumber, GetBlockByTxID from the stand-in's blocks)
 *   Gateway/Endorse        simulate, return the prepared transaction envelope
 *   Gateway/Submit         commit the endorsed transaction (MVCC-validated) in its own block
 *   Gateway/CommitStatus   validation code and block of a transaction
 *   Gateway/ChaincodeEvents  stream of a chaincode's events per block, from a start position
 *   Deliver/Deliver        stream of full blocks (common.Block) from a start position
 *
 * Failures are reported like the Fabric Gateway: an endorsement failure is ABORTED (evaluate:
 * UNKNOWN) with a gateway.ErrorDetail carrying "chaincode response 500, <chaincode message>".
 */
import { createHash, randomBytes, verify, X509Certificate } from "node:crypto";
import { createRequire } from "node:module";
import * as grpc from "@grpc/grpc-js";
import { common, gateway, msp, orderer, peer, google } from "@hyperledger/fabric-protos";
import { EndorsementFailure, TX_VALID, type Endorsement, type MemoryBlock, type MemoryPeer, type MemoryTransaction } from "./memory-peer.js";
import type { TestIdentity } from "./x509.js";

const require = createRequire(import.meta.url);
// google-protobuf's well-known types (a dependency of fabric-protos; untyped here)
const { Timestamp } = require("google-protobuf/google/protobuf/timestamp_pb.js") as {
  Timestamp: { fromDate(d: Date): unknown };
};
const { Any } = require("google-protobuf/google/protobuf/any_pb.js") as {
  Any: new () => { setTypeUrl(u: string): void; setValue(v: Uint8Array): void };
};

const PEER_ADDRESS = "peer0.memory.example.com:7051";

/* ------------------------------------------------------------------ protobuf building */

function serializedIdentity(id: { mspId: string; certificate: string }): Uint8Array {
  const s = new msp.SerializedIdentity();
  s.setMspid(id.mspId);
  s.setIdBytes(new TextEncoder().encode(id.certificate));
  return s.serializeBinary();
}

interface EnvelopeInput {
  txId: string;
  timestampMs: number;
  channelId: string;
  chaincodeName: string;
  creator: { mspId: string; certificate: string };
  args: readonly string[];
  payload: Uint8Array;
  event?: { name: string; payload: Uint8Array };
}

/** An endorser transaction envelope as a peer's endorsement and a block carry it. */
function transactionEnvelope(t: EnvelopeInput): common.Envelope {
  const chaincodeId = new peer.ChaincodeID();
  chaincodeId.setName(t.chaincodeName);

  const extension = new peer.ChaincodeHeaderExtension();
  extension.setChaincodeId(chaincodeId);
  const channelHeader = new common.ChannelHeader();
  channelHeader.setType(common.HeaderType.ENDORSER_TRANSACTION);
  channelHeader.setTxId(t.txId);
  channelHeader.setChannelId(t.channelId);
  channelHeader.setTimestamp(Timestamp.fromDate(new Date(t.timestampMs)) as never);
  channelHeader.setExtension$(extension.serializeBinary());
  const signatureHeader = new common.SignatureHeader();
  signatureHeader.setCreator(serializedIdentity(t.creator));
  signatureHeader.setNonce(randomBytes(24));
  const header = new common.Header();
  header.setChannelHeader(channelHeader.serializeBinary());
  header.setSignatureHeader(signatureHeader.serializeBinary());

  const response = new peer.Response();
  response.setStatus(200);
  response.setPayload(t.payload);
  const action = new peer.ChaincodeAction();
  action.setResponse(response);
  action.setChaincodeId(chaincodeId);
  if (t.event) {
    const ev = new peer.ChaincodeEvent();
    ev.setChaincodeId(t.chaincodeName);
    ev.setTxId(t.txId);
    ev.setEventName(t.event.name);
    ev.setPayload(t.event.payload);
    action.setEvents(ev.serializeBinary());
  }
  const responsePayload = new peer.ProposalResponsePayload();
  responsePayload.setProposalHash(createHash("sha256").update(t.txId).digest());
  responsePayload.setExtension$(action.serializeBinary());
  const endorsement = new peer.Endorsement();
  endorsement.setEndorser(serializedIdentity({ mspId: "Org1MSP", certificate: "memory peer" }));
  endorsement.setSignature(randomBytes(70));
  const endorsed = new peer.ChaincodeEndorsedAction();
  endorsed.setProposalResponsePayload(responsePayload.serializeBinary());
  endorsed.setEndorsementsList([endorsement]);

  const input = new peer.ChaincodeInput();
  input.setArgsList(t.args.map((a) => new TextEncoder().encode(a)));
  const proposalPayload = new peer.ChaincodeProposalPayload();
  proposalPayload.setInput(input.serializeBinary());
  const actionPayload = new peer.ChaincodeActionPayload();
  actionPayload.setChaincodeProposalPayload(proposalPayload.serializeBinary());
  actionPayload.setAction(endorsed);
  const transactionAction = new peer.TransactionAction();
  transactionAction.setHeader(signatureHeader.serializeBinary());
  transactionAction.setPayload(actionPayload.serializeBinary());
  const transaction = new peer.Transaction();
  transaction.setActionsList([transactionAction]);

  const payload = new common.Payload();
  payload.setHeader(header);
  payload.setData(transaction.serializeBinary());
  const envelope = new common.Envelope();
  envelope.setPayload(payload.serializeBinary());
  return envelope;
}

/** The genesis block's (config) envelope: only its header matters here. */
function configEnvelope(channelId: string, timestampMs: number): common.Envelope {
  const channelHeader = new common.ChannelHeader();
  channelHeader.setType(common.HeaderType.CONFIG);
  channelHeader.setChannelId(channelId);
  channelHeader.setTimestamp(Timestamp.fromDate(new Date(timestampMs)) as never);
  const header = new common.Header();
  header.setChannelHeader(channelHeader.serializeBinary());
  const payload = new common.Payload();
  payload.setHeader(header);
  const envelope = new common.Envelope();
  envelope.setPayload(payload.serializeBinary());
  return envelope;
}

function txEnvelope(p: MemoryPeer, tx: MemoryTransaction): common.Envelope {
  const input: EnvelopeInput = {
    txId: tx.txId,
    timestampMs: tx.timestampMs,
    channelId: p.channelId,
    chaincodeName: tx.chaincodeName,
    creator: tx.creator,
    args: [tx.fn],
    payload: tx.payload,
  };
  if (tx.event) input.event = tx.event;
  return transactionEnvelope(input);
}

/** A stand-in block as a common.Block with the transactions filter in its metadata. */
export function encodeBlock(p: MemoryPeer, b: MemoryBlock): common.Block {
  const header = new common.BlockHeader();
  header.setNumber(b.number);
  header.setDataHash(createHash("sha256").update(`block ${b.number}`).digest());
  const envelopes = b.number === 0 ? [configEnvelope(p.channelId, b.timestamp * 1000)] : b.transactions.map((tx) => txEnvelope(p, tx));
  const data = new common.BlockData();
  data.setDataList(envelopes.map((e) => e.serializeBinary()));
  const metadata = new common.BlockMetadata();
  const list: Uint8Array[] = [new Uint8Array(), new Uint8Array(), new Uint8Array(), new Uint8Array(), new Uint8Array()];
  list[common.BlockMetadataIndex.TRANSACTIONS_FILTER] = Uint8Array.from(b.number === 0 ? [TX_VALID] : b.transactions.map((t) => t.validationCode));
  metadata.setMetadataList(list);
  const block = new common.Block();
  block.setHeader(header);
  block.setData(data);
  block.setMetadata(metadata);
  return block;
}

/* ------------------------------------------------------------------ requests */

interface Proposal {
  txId: string;
  channelId: string;
  timestampMs: number;
  chaincodeName: string;
  creator: TestIdentity;
  fn: string;
  args: string[];
}

function timestampMsOf(ts: unknown): number {
  const t = ts as { getSeconds(): number; getNanos(): number } | undefined;
  return t ? t.getSeconds() * 1000 + Math.floor(t.getNanos() / 1_000_000) : Date.now();
}

function creatorOf(signatureHeaderBytes: Uint8Array): TestIdentity {
  const sh = common.SignatureHeader.deserializeBinary(signatureHeaderBytes);
  const id = msp.SerializedIdentity.deserializeBinary(sh.getCreator_asU8());
  return { mspId: id.getMspid(), certificate: new TextDecoder().decode(id.getIdBytes_asU8()), privateKey: "" };
}

/** Checks an ECDSA signature by the creator's certificate key over `bytes` (SHA-256). */
function requireSignedBy(creator: TestIdentity, bytes: Uint8Array, signature: Uint8Array, what: string): void {
  let ok = false;
  try {
    ok = verify("sha256", bytes, new X509Certificate(creator.certificate).publicKey, signature);
  } catch {
    ok = false;
  }
  if (!ok) throw grpcError(grpc.status.PERMISSION_DENIED, `${what}: signature does not verify against the creator certificate`);
}

function decodeProposal(signed: peer.SignedProposal | undefined): Proposal {
  if (!signed) throw grpcError(grpc.status.INVALID_ARGUMENT, "missing signed proposal");
  const proposal = peer.Proposal.deserializeBinary(signed.getProposalBytes_asU8());
  const header = common.Header.deserializeBinary(proposal.getHeader_asU8());
  const ch = common.ChannelHeader.deserializeBinary(header.getChannelHeader_asU8());
  const creator = creatorOf(header.getSignatureHeader_asU8());
  requireSignedBy(creator, signed.getProposalBytes_asU8(), signed.getSignature_asU8(), "proposal");
  const payload = peer.ChaincodeProposalPayload.deserializeBinary(proposal.getPayload_asU8());
  const spec = peer.ChaincodeInvocationSpec.deserializeBinary(payload.getInput_asU8()).getChaincodeSpec();
  const args = (spec?.getInput()?.getArgsList_asU8() ?? []).map((a) => new TextDecoder().decode(a));
  return {
    txId: ch.getTxId(),
    channelId: ch.getChannelId(),
    timestampMs: timestampMsOf(ch.getTimestamp()),
    chaincodeName: spec?.getChaincodeId()?.getName() ?? "",
    creator,
    fn: args[0] ?? "",
    args: args.slice(1),
  };
}

function seekStart(position: orderer.SeekPosition | undefined, height: number): number {
  if (!position) return height;
  if (position.hasSpecified()) return Number(position.getSpecified()!.getNumber());
  if (position.hasOldest()) return 0;
  if (position.hasNewest()) return height - 1;
  return height; // next commit
}

/* ------------------------------------------------------------------ errors */

function grpcError(code: grpc.status, message: string, details: { message: string }[] = []): grpc.ServiceError {
  const metadata = new grpc.Metadata();
  if (details.length > 0) {
    const status = new google.rpc.Status();
    status.setCode(code);
    status.setMessage(message);
    status.setDetailsList(
      details.map((d) => {
        const detail = new gateway.ErrorDetail();
        detail.setAddress(PEER_ADDRESS);
        detail.setMspId("Org1MSP");
        detail.setMessage(d.message);
        const any = new Any();
        any.setTypeUrl("type.googleapis.com/gateway.ErrorDetail");
        any.setValue(detail.serializeBinary());
        return any as never;
      }),
    );
    metadata.set("grpc-status-details-bin", Buffer.from(status.serializeBinary()));
  }
  return Object.assign(new Error(message), { code, details: message, metadata }) as grpc.ServiceError;
}

function asServiceError(e: unknown, endorsing: boolean): grpc.ServiceError {
  if (e && typeof e === "object" && "metadata" in e && "code" in e) return e as grpc.ServiceError;
  if (e instanceof EndorsementFailure) {
    return endorsing
      ? grpcError(grpc.status.ABORTED, "failed to endorse transaction, see attached details for more info", [{ message: e.message }])
      : grpcError(grpc.status.UNKNOWN, `evaluate call to endorser returned error: ${e.message}`, [{ message: e.message }]);
  }
  return grpcError(grpc.status.INTERNAL, (e as Error).message ?? String(e));
}

/* ------------------------------------------------------------------ server */

/** What the server needs of a server-streaming or bidi call. */
interface ServerStream {
  on(event: "cancelled" | "close" | "error", listener: () => void): unknown;
  end(): void;
}

export interface MemoryGatewayOptions {
  /** Delay every unary call by this many ms (to exercise client deadlines). */
  delayMs?: number;
}

export class MemoryGatewayServer {
  private readonly pending = new Map<string, Endorsement>();
  private readonly streams = new Set<ServerStream>();
  private server: grpc.Server | undefined;
  /** Calls served per gateway method, for assertions. */
  readonly calls: Record<string, number> = {};
  address = "";

  constructor(
    readonly peer: MemoryPeer,
    private readonly options: MemoryGatewayOptions = {},
  ) {}

  async start(): Promise<this> {
    const server = new grpc.Server();
    const unary =
      <Req, Res>(name: string, fn: (req: Req) => Promise<Res>, endorsing = false) =>
      (call: grpc.ServerUnaryCall<Req, Res>, callback: grpc.sendUnaryData<Res>): void => {
        this.calls[name] = (this.calls[name] ?? 0) + 1;
        const run = async (): Promise<void> => {
          if (this.options.delayMs) await new Promise((r) => setTimeout(r, this.options.delayMs));
          callback(null, await fn(call.request));
        };
        run().catch((e: unknown) => callback(asServiceError(e, endorsing), null));
      };
    server.addService(gateway.GatewayService, {
      evaluate: unary("evaluate", (r: gateway.EvaluateRequest) => this.evaluate(r)),
      endorse: unary("endorse", (r: gateway.EndorseRequest) => this.endorse(r), true),
      submit: unary("submit", (r: gateway.SubmitRequest) => this.submit(r)),
      commitStatus: unary("commitStatus", (r: gateway.SignedCommitStatusRequest) => this.commitStatus(r)),
      chaincodeEvents: (call: grpc.ServerWritableStream<gateway.SignedChaincodeEventsRequest, gateway.ChaincodeEventsResponse>) => this.chaincodeEvents(call),
    });
    server.addService(peer.DeliverService, {
      deliver: (call: grpc.ServerDuplexStream<common.Envelope, peer.DeliverResponse>) => this.deliver(call),
      deliverFiltered: (call: grpc.ServerDuplexStream<common.Envelope, peer.DeliverResponse>) => call.destroy(grpcError(grpc.status.UNIMPLEMENTED, "filtered blocks are not served")),
      deliverWithPrivateData: (call: grpc.ServerDuplexStream<common.Envelope, peer.DeliverResponse>) => call.destroy(grpcError(grpc.status.UNIMPLEMENTED, "private data is not served")),
    });
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync("127.0.0.1:0", grpc.ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))),
    );
    this.server = server;
    this.address = `127.0.0.1:${port}`;
    return this;
  }

  async stop(): Promise<void> {
    for (const s of this.streams) s.end();
    this.streams.clear();
    const server = this.server;
    if (!server) return;
    this.server = undefined;
    await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
  }

  /* ----------------------------------------------------------- gateway */

  private async evaluate(r: gateway.EvaluateRequest): Promise<gateway.EvaluateResponse> {
    const p = decodeProposal(r.getProposedTransaction());
    const payload = p.chaincodeName === "qscc" ? this.qscc(p) : await this.peer.evaluate(p.creator, p.fn, p.args, { txId: p.txId, timestampMs: p.timestampMs });
    const response = new peer.Response();
    response.setStatus(200);
    response.setPayload(payload);
    const out = new gateway.EvaluateResponse();
    out.setResult(response);
    return out;
  }

  private async endorse(r: gateway.EndorseRequest): Promise<gateway.EndorseResponse> {
    const p = decodeProposal(r.getProposedTransaction());
    if (p.chaincodeName !== this.peer.chaincodeName) throw grpcError(grpc.status.NOT_FOUND, `chaincode ${p.chaincodeName} not found`);
    const e = await this.peer.endorse(p.creator, p.fn, p.args, { txId: p.txId, timestampMs: p.timestampMs });
    this.pending.set(p.txId, e);
    const envelopeInput: EnvelopeInput = {
      txId: p.txId,
      timestampMs: p.timestampMs,
      channelId: p.channelId,
      chaincodeName: p.chaincodeName,
      creator: p.creator,
      args: [p.fn, ...p.args],
      payload: e.payload,
    };
    if (e.stub.event) envelopeInput.event = e.stub.event;
    const out = new gateway.EndorseResponse();
    out.setPreparedTransaction(transactionEnvelope(envelopeInput));
    return out;
  }

  private async submit(r: gateway.SubmitRequest): Promise<gateway.SubmitResponse> {
    const envelope = r.getPreparedTransaction();
    const e = this.pending.get(r.getTransactionId());
    if (!envelope || !e) throw grpcError(grpc.status.FAILED_PRECONDITION, `transaction ${r.getTransactionId()} was not endorsed here`);
    requireSignedBy(e.creator, envelope.getPayload_asU8(), envelope.getSignature_asU8(), "transaction");
    this.pending.delete(r.getTransactionId());
    this.peer.commit(e);
    return new gateway.SubmitResponse();
  }

  private async commitStatus(r: gateway.SignedCommitStatusRequest): Promise<gateway.CommitStatusResponse> {
    const request = gateway.CommitStatusRequest.deserializeBinary(r.getRequest_asU8());
    const n = this.peer.blockOfTransaction(request.getTransactionId());
    if (n === undefined) throw grpcError(grpc.status.NOT_FOUND, `transaction ${request.getTransactionId()} not found`);
    const tx = this.peer.block(n)!.transactions.find((t) => t.txId === request.getTransactionId())!;
    const out = new gateway.CommitStatusResponse();
    out.setBlockNumber(n);
    out.setResult(tx.validationCode as never);
    return out;
  }

  private chaincodeEvents(call: grpc.ServerWritableStream<gateway.SignedChaincodeEventsRequest, gateway.ChaincodeEventsResponse>): void {
    this.calls["chaincodeEvents"] = (this.calls["chaincodeEvents"] ?? 0) + 1;
    const request = gateway.ChaincodeEventsRequest.deserializeBinary(call.request.getRequest_asU8());
    const chaincode = request.getChaincodeId();
    let after = request.getAfterTransactionId();
    let next = seekStart(request.getStartPosition(), this.peer.height);
    const startBlock = next;
    const send = (b: MemoryBlock): void => {
      let txs = b.transactions.filter((t) => t.validationCode === TX_VALID && t.event && t.chaincodeName === chaincode);
      if (after && b.number === startBlock) {
        const i = txs.findIndex((t) => t.txId === after);
        if (i >= 0) txs = txs.slice(i + 1);
        after = "";
      }
      if (txs.length === 0) return;
      const response = new gateway.ChaincodeEventsResponse();
      response.setBlockNumber(b.number);
      response.setEventsList(
        txs.map((t) => {
          const ev = new peer.ChaincodeEvent();
          ev.setChaincodeId(t.chaincodeName);
          ev.setTxId(t.txId);
          ev.setEventName(t.event!.name);
          ev.setPayload(t.event!.payload);
          return ev;
        }),
      );
      call.write(response);
    };
    this.follow(call, () => {
      while (next < this.peer.height) send(this.peer.block(next++)!);
    });
  }

  /* ----------------------------------------------------------- deliver */

  private deliver(call: grpc.ServerDuplexStream<common.Envelope, peer.DeliverResponse>): void {
    this.calls["deliver"] = (this.calls["deliver"] ?? 0) + 1;
    call.once("data", (envelope: common.Envelope) => {
      const payload = common.Payload.deserializeBinary(envelope.getPayload_asU8());
      const creator = creatorOf(payload.getHeader()?.getSignatureHeader_asU8() ?? new Uint8Array());
      try {
        requireSignedBy(creator, envelope.getPayload_asU8(), envelope.getSignature_asU8(), "deliver request");
      } catch (e) {
        call.destroy(e as Error);
        return;
      }
      const seek = orderer.SeekInfo.deserializeBinary(payload.getData_asU8());
      let next = seekStart(seek.getStart(), this.peer.height);
      const stop = seek.getStop()?.hasSpecified() ? Number(seek.getStop()!.getSpecified()!.getNumber()) : Number.MAX_SAFE_INTEGER;
      this.follow(call, () => {
        while (next < this.peer.height && next <= stop) {
          const response = new peer.DeliverResponse();
          response.setBlock(encodeBlock(this.peer, this.peer.block(next++)!));
          call.write(response);
        }
      });
    });
  }

  /** Runs `pump` now and after every new block, until the client cancels. */
  private follow(call: ServerStream, pump: () => void): void {
    this.streams.add(call);
    const unsubscribe = this.peer.onBlock(() => pump());
    const end = (): void => {
      unsubscribe();
      this.streams.delete(call);
    };
    call.on("cancelled", end);
    call.on("close", end);
    call.on("error", end);
    pump();
  }

  /* ----------------------------------------------------------- qscc */

  private qscc(p: Proposal): Uint8Array {
    const channel = p.args[0];
    if (channel !== this.peer.channelId) throw new EndorsementFailure(500, `channel ${channel} not found`);
    switch (p.fn) {
      case "GetChainInfo": {
        const info = new common.BlockchainInfo();
        info.setHeight(this.peer.height);
        return info.serializeBinary();
      }
      case "GetBlockByNumber": {
        const b = this.peer.block(Number(p.args[1]));
        if (!b) throw new EndorsementFailure(500, `Failed to get block number ${p.args[1]}, error Entry not found in index`);
        return encodeBlock(this.peer, b).serializeBinary();
      }
      case "GetBlockByTxID": {
        const n = this.peer.blockOfTransaction(p.args[1] ?? "");
        if (n === undefined) throw new EndorsementFailure(500, `Failed to get block for txID ${p.args[1]}, error entry not found in index`);
        return encodeBlock(this.peer, this.peer.block(n)!).serializeBinary();
      }
      default:
        throw new EndorsementFailure(500, `Requested function ${p.fn} not found.`);
    }
  }
}
