/**
 * The Hyperledger Fabric adapter of the ledger port: the Custodia chaincode through the Fabric
 * Gateway (@hyperledger/fabric-gateway 1.11 over one @grpc/grpc-js connection).
 *
 * - writes: endorse → submit → wait for the commit status; resolve only for a VALID transaction
 *   (its block number comes from the commit status);
 * - reads: evaluate on the gateway peer (current world state only — no reads at a past block);
 * - blocks: qscc (GetChainInfo, GetBlockByNumber, GetBlockByTxID) for height, block time and the
 *   block of a transaction; bounded event ranges from the Deliver service (full blocks);
 * - watch(): the gateway's chaincode-event stream (`getChaincodeEvents` with a checkpointer, so a
 *   broken stream resumes where the last delivered event left off), with block scans as
 *   freshness heartbeats;
 * - every call has a deadline; errors become CustodiaErrors: the chaincode's `CUSTODIA:<CODE>:`
 *   rule errors keep their code, gRPC UNAVAILABLE / DEADLINE_EXCEEDED become LEDGER_UNAVAILABLE, an
 *   invalidated transaction (MVCC conflict, policy failure, ...) LEDGER_REVERTED.
 */
import { createPrivateKey } from "node:crypto";
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import {
  CommitError,
  GatewayError,
  checkpointers,
  connect,
  hash,
  signers,
  type ChaincodeEvent,
  type Checkpointer,
  type CloseableAsyncIterable,
  type Contract,
  type Gateway,
  type Network,
} from "@hyperledger/fabric-gateway";
import { CustodiaError } from "../../core/errors.js";
import type { WatchOptions, Watcher } from "../../core/ledger.js";
import { CONTRACT_NAME, type EvaluateTransaction, type SubmitTransaction } from "../src/protocol.js";
import { ChaincodeLedger, ruleErrorFrom, type ChaincodeTransport, type RawChaincodeEvent, type SubmitResult } from "./chaincode-ledger.js";
import { chainHeight, chaincodeEventsOf, parseBlock } from "./fabric-blocks.js";

/* ------------------------------------------------------------------ config */

/** A client identity: MSP id, X.509 certificate and private key, as files or PEM text. */
export type FabricIdentity =
  | { mspId: string; certPath: string; keyPath: string }
  | { mspId: string; certificate: string; privateKey: string };

export interface FabricTimeouts {
  evaluateMs: number;
  endorseMs: number;
  submitMs: number;
  commitStatusMs: number;
  /** Bounded block reads (events in a block range). */
  blocksMs: number;
}

export interface FabricConfig {
  /** host:port of the gateway peer. */
  peerEndpoint: string;
  /** PEM file of the peer's TLS root CA; omitted only together with `insecure: true`. */
  tlsCertPath?: string;
  /** Plaintext gRPC (a peer with TLS disabled). */
  insecure?: boolean;
  /** TLS server name override when the endpoint's host differs from the peer's certificate (e.g. peer0.org1.example.com). */
  hostAlias?: string;
  channel: string;
  /** Chaincode name as committed on the channel. */
  chaincode: string;
  /** Contract name inside the chaincode (default "custodia"). */
  contractName?: string;
  identity: FabricIdentity;
  timeouts?: Partial<FabricTimeouts>;
  /** Block the chaincode was initialised at: where event scans start (default 0). */
  startBlock?: number;
  /** Heartbeat/retry interval of watch(), ms (default 1000). */
  pollMs?: number;
  /** Where watch() records its progress (default: in memory, per watch); e.g. checkpointers.file(path). */
  checkpointer?: Checkpointer;
}

const DEFAULT_TIMEOUTS: FabricTimeouts = { evaluateMs: 5_000, endorseMs: 15_000, submitMs: 5_000, commitStatusMs: 60_000, blocksMs: 30_000 };

/** The variables fabricConfigFromEnv needs. */
export const FABRIC_ENV = [
  "FABRIC_PEER_ENDPOINT",
  "FABRIC_TLS_CERT",
  "FABRIC_MSP_ID",
  "FABRIC_CERT",
  "FABRIC_KEY",
  "FABRIC_CHANNEL",
  "FABRIC_CHAINCODE",
] as const;

/** Which of FABRIC_ENV are missing (FABRIC_TLS_CERT is optional with FABRIC_INSECURE=true). */
export function missingFabricEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  return FABRIC_ENV.filter((k) => !env[k] && !(k === "FABRIC_TLS_CERT" && env["FABRIC_INSECURE"] === "true"));
}

/**
 * Reads the connection and the (admin) identity from the environment:
 *
 *   FABRIC_PEER_ENDPOINT    host:port of the gateway peer, e.g. localhost:7051
 *   FABRIC_TLS_CERT         peer TLS root CA (PEM file)      (or FABRIC_INSECURE=true for plaintext)
 *   FABRIC_PEER_HOST_ALIAS  TLS server name override, e.g. peer0.org1.example.com (optional)
 *   FABRIC_MSP_ID           MSP id of the identity, e.g. Org1MSP
 *   FABRIC_CERT             the identity's certificate: a PEM file or an MSP signcerts/ directory
 *   FABRIC_KEY              its private key: a PEM file or an MSP keystore/ directory
 *   FABRIC_CHANNEL          channel name
 *   FABRIC_CHAINCODE        chaincode name
 *   FABRIC_START_BLOCK      first block of event scans (optional, default 0)
 *
 * Throws CONFIG_INVALID naming every missing variable.
 */
export function fabricConfigFromEnv(env: NodeJS.ProcessEnv = process.env): FabricConfig {
  const missing = missingFabricEnv(env);
  if (missing.length > 0) throw new CustodiaError("CONFIG_INVALID", `Fabric settings missing: ${missing.join(", ")}`, { missing });
  const config: FabricConfig = {
    peerEndpoint: env["FABRIC_PEER_ENDPOINT"]!,
    channel: env["FABRIC_CHANNEL"]!,
    chaincode: env["FABRIC_CHAINCODE"]!,
    identity: { mspId: env["FABRIC_MSP_ID"]!, certPath: env["FABRIC_CERT"]!, keyPath: env["FABRIC_KEY"]! },
  };
  if (env["FABRIC_TLS_CERT"]) config.tlsCertPath = env["FABRIC_TLS_CERT"];
  else config.insecure = true;
  if (env["FABRIC_PEER_HOST_ALIAS"]) config.hostAlias = env["FABRIC_PEER_HOST_ALIAS"];
  if (env["FABRIC_START_BLOCK"]) {
    const n = Number(env["FABRIC_START_BLOCK"]);
    if (!Number.isSafeInteger(n) || n < 0) throw new CustodiaError("CONFIG_INVALID", "FABRIC_START_BLOCK must be a block number");
    config.startBlock = n;
  }
  return config;
}

/** A PEM file, or the single file of an MSP directory such as signcerts/ or keystore/. */
function readPem(path: string, what: string): string {
  try {
    let file = path;
    if (statSync(path).isDirectory()) {
      const files = readdirSync(path).filter((f) => !f.startsWith(".")).sort();
      if (files.length === 0) throw new Error(`${path} is an empty directory`);
      file = join(path, files[0]!);
    }
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new CustodiaError("CONFIG_INVALID", `cannot read the ${what} at ${path}: ${(e as Error).message}`, undefined, { cause: e });
  }
}

function loadIdentity(id: FabricIdentity): { mspId: string; certificate: string; privateKey: string } {
  if ("certificate" in id) return id;
  return { mspId: id.mspId, certificate: readPem(id.certPath, "certificate"), privateKey: readPem(id.keyPath, "private key") };
}

/* ------------------------------------------------------------------ errors */

const UNAVAILABLE_CODES: ReadonlySet<number> = new Set([
  grpc.status.UNAVAILABLE,
  grpc.status.DEADLINE_EXCEEDED,
  grpc.status.CANCELLED,
  grpc.status.RESOURCE_EXHAUSTED,
]);

/**
 * Any error of a gateway call as a CustodiaError: the chaincode's rule error (found in the
 * endorsement error details or the message) keeps its code; unreachable or slow peers give
 * LEDGER_UNAVAILABLE; a committed-but-invalid transaction LEDGER_REVERTED.
 */
export function mapFabricError(e: unknown): CustodiaError {
  if (e instanceof CustodiaError) return e;
  const texts: string[] = [];
  if (e instanceof GatewayError) texts.push(...e.details.map((d) => d.message));
  if (e instanceof Error) texts.push(e.message);
  for (const t of texts) {
    const mapped = ruleErrorFrom(t, e);
    if (mapped) return mapped;
  }
  if (e instanceof CommitError) {
    return new CustodiaError("LEDGER_REVERTED", `transaction ${e.transactionId} was committed invalid (validation code ${e.code})`, { txId: e.transactionId, validationCode: e.code }, { cause: e });
  }
  const code = typeof (e as { code?: unknown })?.code === "number" ? ((e as { code: number }).code) : undefined;
  const message = e instanceof Error ? e.message : String(e);
  const details = e instanceof GatewayError ? { grpcCode: e.code, details: e.details.map((d) => `${d.mspId}@${d.address}: ${d.message}`) } : code === undefined ? undefined : { grpcCode: code };
  if (code !== undefined && UNAVAILABLE_CODES.has(code)) {
    return new CustodiaError("LEDGER_UNAVAILABLE", `Fabric peer cannot be reached: ${message.slice(0, 200)}`, details, { cause: e });
  }
  if (code === grpc.status.PERMISSION_DENIED) {
    return new CustodiaError("UNAUTHORIZED", `Fabric refused the identity: ${message.slice(0, 200)}`, details, { cause: e });
  }
  if (code === grpc.status.NOT_FOUND) {
    return new CustodiaError("LEDGER_NOT_DEPLOYED", `channel or chaincode not found: ${message.slice(0, 200)}`, details, { cause: e });
  }
  if (code !== undefined) {
    return new CustodiaError("LEDGER_REVERTED", `Fabric rejected the call: ${message.slice(0, 200)}`, details, { cause: e });
  }
  if (/ECONNREFUSED|ECONNRESET|EHOSTUNREACH|ETIMEDOUT/i.test(message)) {
    return new CustodiaError("LEDGER_UNAVAILABLE", `Fabric peer cannot be reached: ${message.slice(0, 200)}`, undefined, { cause: e });
  }
  return new CustodiaError("INTERNAL", `Fabric call failed: ${message.slice(0, 200)}`, undefined, { cause: e });
}

async function guard<T>(fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw mapFabricError(e);
  }
}

/* --------------------------------------------------------------- transport */

interface Connection {
  client: grpc.Client;
  config: FabricConfig;
  timeouts: FabricTimeouts;
  /** Open gateways over the client; the client closes with the last one. */
  users: number;
}

const IDLE = Symbol("idle");

/** ChaincodeTransport over a Fabric Gateway. */
export class FabricGatewayTransport implements ChaincodeTransport {
  private readonly gateway: Gateway;
  private readonly network: Network;
  private readonly contract: Contract;
  private readonly qscc: Contract;
  private closed = false;

  constructor(
    private readonly connection: Connection,
    identity: FabricIdentity,
  ) {
    const id = loadIdentity(identity);
    const t = connection.timeouts;
    let key;
    try {
      key = createPrivateKey(id.privateKey);
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", `the private key of ${id.mspId} cannot be parsed`, undefined, { cause: e });
    }
    this.gateway = connect({
      client: connection.client,
      identity: { mspId: id.mspId, credentials: new TextEncoder().encode(id.certificate) },
      signer: signers.newPrivateKeySigner(key),
      hash: hash.sha256,
      // per-call deadlines: each option factory runs once per call
      evaluateOptions: () => ({ deadline: Date.now() + t.evaluateMs }),
      endorseOptions: () => ({ deadline: Date.now() + t.endorseMs }),
      submitOptions: () => ({ deadline: Date.now() + t.submitMs }),
      commitStatusOptions: () => ({ deadline: Date.now() + t.commitStatusMs }),
    });
    connection.users++;
    this.network = this.gateway.getNetwork(connection.config.channel);
    this.contract = this.network.getContract(connection.config.chaincode, connection.config.contractName ?? CONTRACT_NAME);
    this.qscc = this.network.getContract("qscc");
  }

  /** Another identity over the same gRPC connection. */
  as(identity: FabricIdentity): FabricGatewayTransport {
    return new FabricGatewayTransport(this.connection, identity);
  }

  submit(fn: SubmitTransaction, args: readonly string[]): Promise<SubmitResult> {
    return guard(async () => {
      const submitted = await this.contract.submitAsync(fn, { arguments: [...args] });
      const result = submitted.getResult();
      const status = await submitted.getStatus();
      if (!status.successful) throw new CommitError({ code: status.code, transactionId: status.transactionId, message: `transaction ${status.transactionId} failed to commit with status code ${status.code}` });
      return { txId: status.transactionId, blockNumber: Number(status.blockNumber), result };
    });
  }

  evaluate(fn: EvaluateTransaction, args: readonly string[]): Promise<Uint8Array> {
    return guard(() => this.contract.evaluate(fn, { arguments: [...args] }));
  }

  async blockNumber(): Promise<number> {
    const info = await guard(() => this.qscc.evaluateTransaction("GetChainInfo", this.connection.config.channel));
    return chainHeight(info) - 1;
  }

  async blockTime(block: number): Promise<number> {
    const bytes = await guard(() => this.qscc.evaluateTransaction("GetBlockByNumber", this.connection.config.channel, String(block)));
    return parseBlock(bytes).timestamp;
  }

  async blockOfTransaction(txId: string): Promise<number> {
    const bytes = await guard(() => this.qscc.evaluateTransaction("GetBlockByTxID", this.connection.config.channel, txId));
    return parseBlock(bytes).number;
  }

  /** Reads full blocks [fromBlock, toBlock] from the Deliver service; toBlock must be committed. */
  async events(fromBlock: number, toBlock: number): Promise<RawChaincodeEvent[]> {
    if (fromBlock > toBlock) return [];
    return guard(async () => {
      const request = this.network.newBlockEventsRequest({ startBlock: BigInt(fromBlock) });
      const blocks = await request.getEvents({ deadline: Date.now() + this.connection.timeouts.blocksMs });
      const out: RawChaincodeEvent[] = [];
      try {
        for await (const block of blocks) {
          const parsed = parseBlock(block);
          out.push(...chaincodeEventsOf(parsed, this.connection.config.chaincode));
          if (parsed.number >= toBlock) break;
        }
      } finally {
        blocks.close();
      }
      return out;
    });
  }

  /**
   * Streams the chaincode's events with `getChaincodeEvents` and a checkpointer. Events of one
   * block arrive together (the gateway sends one response per block), and are delivered as one
   * batch with throughBlock = that block. While the stream is quiet, a heartbeat every pollMs
   * reports freshness: it scans the blocks past the last delivered one and advances throughBlock
   * up to (not past) the first block that holds an event still to come from the stream. A
   * callback that throws is reported to onError and its events are delivered again (the stream
   * restarts from the last checkpoint): at-least-once, like the EVM adapter's polling.
   */
  watch(fromBlock: number, onEvents: (events: RawChaincodeEvent[], throughBlock: number) => void | Promise<void>, options: WatchOptions): Watcher {
    const pollMs = options.pollMs ?? this.connection.config.pollMs ?? 1_000;
    const chaincode = this.connection.config.chaincode;
    const checkpointer = this.connection.config.checkpointer ?? checkpointers.inMemory();
    let stopped = false;
    let stream: CloseableAsyncIterable<ChaincodeEvent> | undefined;
    let heartbeatTimer: NodeJS.Timeout | undefined;
    let through = fromBlock - 1;
    let deliveries: Promise<unknown> = Promise.resolve();
    let logBlock = -1;
    let logIndex = 0;

    /** Serialised delivery; resolves false when the callback threw. */
    const deliver = (events: RawChaincodeEvent[], upTo: number, last?: ChaincodeEvent): Promise<boolean> => {
      const job = deliveries.then(async () => {
        if (stopped) return true;
        const fresh = events.filter((e) => e.blockNumber > through);
        if (fresh.length === 0 && upTo < through) return true;
        const reach = Math.max(upTo, through);
        try {
          await onEvents(fresh, reach);
        } catch (e) {
          options.onError?.(e);
          return false;
        }
        const advanced = reach > through;
        through = reach;
        if (last) await checkpointer.checkpointChaincodeEvent(last);
        else if (advanced && reach >= 0) await checkpointer.checkpointBlock(BigInt(reach));
        return true;
      });
      deliveries = job.catch(() => undefined);
      return job;
    };

    const flush = async (batch: ChaincodeEvent[]): Promise<boolean> => {
      const block = Number(batch[0]!.blockNumber);
      // logIndex continues within a block only across successful deliveries, so a redelivered
      // batch gets the same indexes again
      const start = block === logBlock ? logIndex : 0;
      const raw = batch
        .filter((e) => e.chaincodeName === chaincode)
        .map((e, i): RawChaincodeEvent => ({ blockNumber: block, txId: e.transactionId, logIndex: start + i, eventName: e.eventName, payload: e.payload }));
      const ok = await deliver(raw, block, batch[batch.length - 1]);
      if (ok) {
        logBlock = block;
        logIndex = start + raw.length;
      }
      return ok;
    };

    const follow = async (): Promise<void> => {
      while (!stopped) {
        try {
          stream = await this.network.getChaincodeEvents(chaincode, { checkpoint: checkpointer, startBlock: BigInt(fromBlock) });
          const iterator = stream[Symbol.asyncIterator]();
          let batch: ChaincodeEvent[] = [];
          let pending = iterator.next();
          pending.catch(() => undefined);
          while (!stopped) {
            // events of one block are yielded back to back; a turn of the event loop without the
            // next one means the block is complete
            const r = batch.length > 0 ? await Promise.race([pending, new Promise<typeof IDLE>((res) => setImmediate(res, IDLE))]) : await pending;
            if (r === IDLE) {
              if (!(await flush(batch))) throw new Error("watch callback failed; resuming from the last checkpoint");
              batch = [];
              continue;
            }
            if (r.done) break;
            pending = iterator.next();
            pending.catch(() => undefined);
            if (batch.length > 0 && r.value.blockNumber !== batch[0]!.blockNumber) {
              if (!(await flush(batch))) throw new Error("watch callback failed; resuming from the last checkpoint");
              batch = [];
            }
            batch.push(r.value);
          }
          if (batch.length > 0 && !stopped) await flush(batch);
        } catch (e) {
          if (!stopped && !(e instanceof Error && e.message.startsWith("watch callback failed"))) options.onError?.(mapFabricError(e));
        } finally {
          stream?.close();
          stream = undefined;
        }
        if (!stopped) await new Promise((res) => setTimeout(res, pollMs));
      }
    };

    const heartbeat = async (): Promise<void> => {
      try {
        const head = await this.blockNumber();
        const from = through + 1;
        if (head >= from) {
          const pendingEvents = await this.events(from, head);
          const upTo = pendingEvents.length > 0 ? pendingEvents[0]!.blockNumber - 1 : head;
          if (upTo >= from) await deliver([], upTo);
        } else {
          await deliver([], through);
        }
      } catch (e) {
        if (!stopped) options.onError?.(e);
      } finally {
        if (!stopped) {
          heartbeatTimer = setTimeout(() => {
            beating = heartbeat();
          }, pollMs);
        }
      }
    };

    const following = follow();
    let beating = heartbeat();
    return {
      stop: async () => {
        stopped = true;
        if (heartbeatTimer) clearTimeout(heartbeatTimer);
        stream?.close();
        await following;
        await beating;
        await deliveries;
      },
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.gateway.close();
    if (--this.connection.users === 0) this.connection.client.close();
  }
}

/* ------------------------------------------------------------------ ledger */

/** The ledger port on a Fabric network (see the file comment). */
export class FabricLedger extends ChaincodeLedger {
  private constructor(
    private readonly gatewayTransport: FabricGatewayTransport,
    private readonly config: FabricConfig,
  ) {
    super(gatewayTransport, config.startBlock === undefined ? {} : { startBlock: config.startBlock });
  }

  /** Opens one gRPC connection to the gateway peer and a gateway for `config.identity`. */
  static connect(config: FabricConfig): FabricLedger {
    let credentials: grpc.ChannelCredentials;
    if (config.tlsCertPath) credentials = grpc.credentials.createSsl(Buffer.from(readPem(config.tlsCertPath, "TLS root certificate")));
    else if (config.insecure) credentials = grpc.credentials.createInsecure();
    else throw new CustodiaError("CONFIG_INVALID", "a TLS root certificate (tlsCertPath) is required unless insecure is set");
    const options: grpc.ClientOptions = config.hostAlias ? { "grpc.ssl_target_name_override": config.hostAlias } : {};
    const client = new grpc.Client(config.peerEndpoint, credentials, options);
    const connection: Connection = { client, config, timeouts: { ...DEFAULT_TIMEOUTS, ...config.timeouts }, users: 0 };
    try {
      return new FabricLedger(new FabricGatewayTransport(connection, config.identity), config);
    } catch (e) {
      client.close();
      throw e;
    }
  }

  /** The same network over the same gRPC connection, submitting as another identity. */
  as(identity: FabricIdentity): FabricLedger {
    return new FabricLedger(this.gatewayTransport.as(identity), { ...this.config, identity });
  }
}
