/**
 * A small typed client for the gateway's HTTP API, as the command-line tools use it. Every call
 * is authenticated with a DID-JWT made locally by the wallet (`tokenFor`): one session token,
 * reused for reads until shortly before it expires, and a fresh single-use token for every
 * state-changing call, as the gateway requires. Only tokens, signed messages and the request
 * bodies below leave the machine; never a key.
 *
 * Failures: a gateway that cannot be reached (or answers 5xx) ends a command with exit 3; a
 * refusal (`{code, message}` with a 4xx) keeps the gateway's code and ends with exit 4; an answer
 * that is not what the API promises is GATEWAY_MISBEHAVED.
 *
 * Before it signs the first token, the client has the gateway prove that it holds the key of the
 * DID its /health names, for the address the client is talking to (core/gateway-url.ts); a server
 * that cannot is GATEWAY_UNVERIFIED, and no token is signed for it.
 */
import { ERROR_CODES, type ErrorCode } from "../core/errors.js";
import type { Address, Bytes32, ConsentRecord, ConsentState } from "../core/domain.js";
import { CliError, EXIT } from "./io.js";
import { identityProblem, identityQuestion, refusalProblem } from "./gateway-identity.js";
import { tokenFor, type LoadedWallet } from "./wallet-store.js";

/** GET /health. */
export interface GatewayHealth {
  status: string;
  gateway: { did: string; account: Address };
  ledger: { chainId: number; contract: Address; syncedBlock: number; fresh: boolean };
  /** `alarm`: why anchoring of that log stopped (the log and the ledger disagree), or null. */
  logs: Record<string, { size: number; anchored: number; alarm?: string | null }>;
}

/** A log receipt: where a decision or event sits in one of the gateway's RFC 9162 logs. */
export interface LogReceipt {
  log: string;
  logId: Bytes32;
  index: number;
  leafHash: string;
  treeSize: number;
}

/** An inclusion proof as the customer endpoints return it, for the log's current size. */
export interface EntryProof {
  treeSize: number;
  root: string;
  inclusion: string[];
}

/** One entry of the caller's own history (GET /v1/me/accesses). */
export interface HistoryEntry {
  index: number;
  entry: Record<string, unknown>;
  leafHash: string;
  proof: EntryProof;
}

/** One of the caller's own decisions (GET /v1/me/decisions). */
export interface DecisionEntry extends HistoryEntry {
  explanation: unknown;
}

/** The gateway's own account of its latest anchored checkpoint (informative; the ledger is asked). */
export interface AnchoredView {
  logId: string;
  treeSize: number;
  root: string;
}

/** GET /v1/me/accesses. */
export interface HistoryPage {
  treeSize: number;
  root: string;
  anchored: AnchoredView | null;
  entries: HistoryEntry[];
}

/** GET /v1/me/decisions. */
export interface DecisionsPage {
  treeSize: number;
  root: string;
  anchored: AnchoredView | null;
  decisions: DecisionEntry[];
}

/** POST /v1/consents. */
export interface ConsentSubmissionResult {
  action: "grant" | "revoke";
  txId: string;
  blockNumber: number;
  /** The gateway's VC-JWT consent receipt. */
  receipt: string;
}

/** One subject's answer to a partner's data request. */
export interface DataResult {
  subject: Address;
  decision: "allow" | "deny";
  reason: string;
  block: number;
  receipt: LogReceipt;
  data?: unknown;
}

/** POST /v1/data/query. */
export interface DataQueryResult {
  block: number;
  results: DataResult[];
  allowed: number;
  denied: number;
}

/** POST /v1/segmentations. */
export interface SegmentationResult {
  runId: string;
  modelHash: string;
  dataCommitment: string;
  block: number;
  included: number;
  excluded: number;
  segments: unknown;
  metrics: unknown;
  fairness: unknown;
  modelCardReceipt: LogReceipt;
  decisions: { subject: Address; segment: string; receipt: LogReceipt }[];
}

/** GET /v1/me/data: what the vault holds for the caller (never the data), and the ledger's record of it. */
export interface MyData {
  subject: Address;
  status: "active" | "erased" | "unknown";
  /** The vault's salted commitment to the subject's records (the tombstone's, once erased). */
  commitment: Bytes32 | null;
  records?: number;
  committedAt?: number;
  ledger: { committed: boolean; committedAt: number | null; erasedAt: number | null };
  /** The subject's next data nonce on the ledger (decimal). */
  dataNonce: string;
}

/** A wallet-signed DataCommitment or ErasureRequest, as the gateway relays it. */
export interface SignedDataRequest {
  message: { subject: Address; commitment: Bytes32; nonce: string; deadline: number };
  signature: string;
}

/** POST /v1/me/erasure. */
export interface ErasureResult {
  erased: boolean;
  ledger: { txId: string; blockNumber: number } | null;
  receipt: LogReceipt;
}

/** GET /v1/audit/logs/:log/proofs/consistency. */
export interface ConsistencyProof {
  log: string;
  from: number;
  to: number;
  rootFrom: string;
  rootTo: string;
  proof: string[];
}

/** How a GatewayClient signs and waits. */
export interface GatewayClientOptions {
  /** The wallet that signs the tokens; null for the unauthenticated calls (health) only. */
  wallet: LoadedWallet | null;
  /** Per-request timeout, ms (default 60 s: a segmentation over a large vault takes a while). */
  timeoutMs?: number;
  /** A /health answer already fetched (the demo shares one among hundreds of clients). */
  health?: GatewayHealth;
}

const KNOWN_CODES = new Set<string>(ERROR_CODES);
/** Renew the session token this long before it expires, seconds. */
const RENEW_BEFORE_SEC = 30;

/** The typed client. One instance per wallet; it caches /health and the session token. */
export class GatewayClient {
  readonly baseUrl: string;
  private readonly wallet: LoadedWallet | null;
  private readonly timeoutMs: number;
  private healthCache: GatewayHealth | undefined;
  private identityCheck: Promise<string> | undefined;
  private session: { token: string; exp: number } | undefined;

  constructor(baseUrl: string, options: GatewayClientOptions) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.wallet = options.wallet;
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.healthCache = options.health;
  }

  /** GET /health (cached): the gateway's DID (every token's audience), its account and ledger. */
  async health(): Promise<GatewayHealth> {
    if (!this.healthCache) {
      const h = await this.request<GatewayHealth>("GET", "/health", undefined, "none");
      if (!h || typeof h.gateway?.did !== "string" || typeof h.ledger?.chainId !== "number" || typeof h.ledger?.contract !== "string") {
        throw new CliError("GATEWAY_MISBEHAVED", `${this.baseUrl}/health did not describe a Custodia gateway`, EXIT.UNAVAILABLE);
      }
      this.healthCache = h;
    }
    return this.healthCache;
  }

  /**
   * The gateway's DID, once the gateway has proved it holds that DID's key for this client's
   * address (GET /v1/gateway/identity with a fresh nonce). Checked once per client; a failure is
   * not cached. Rejects GATEWAY_UNVERIFIED when the proof is refused, missing or wrong.
   */
  verifiedDid(): Promise<string> {
    this.identityCheck ??= this.checkIdentity().catch((e: unknown) => {
      this.identityCheck = undefined;
      throw e;
    });
    return this.identityCheck;
  }

  private async checkIdentity(): Promise<string> {
    const { did } = (await this.health()).gateway;
    const question = identityQuestion(this.baseUrl);
    const unverified = (why: string): CliError =>
      new CliError("GATEWAY_UNVERIFIED", `the server at ${question.url} did not prove it is the gateway ${did} (${why}); no token was signed for it`, EXIT.UNAVAILABLE, { url: question.url, did });
    let answer: unknown;
    try {
      answer = await this.request<unknown>("GET", question.path, undefined, "none");
    } catch (e) {
      if (!(e instanceof CliError)) throw e;
      // down, 5xx or rate-limited: it could not be asked now, which says nothing about who it is
      const why = refusalProblem(e.code === "GATEWAY_UNAVAILABLE" ? 503 : (e.details?.["status"] as number | undefined), e.message);
      if (why === null) throw e;
      throw unverified(why);
    }
    const problem = identityProblem(answer, question, did);
    if (problem !== null) throw unverified(problem);
    return did;
  }

  /* --------------------------------------------------------- customer */

  myConsents(): Promise<{ block: number; consents: ConsentState[] }> {
    return this.request("GET", "/v1/me/consents", undefined, "session");
  }

  submitGrant(message: Record<string, unknown>, signature: string, record: ConsentRecord): Promise<ConsentSubmissionResult> {
    return this.request("POST", "/v1/consents", { action: "grant", message, signature, record }, "once");
  }

  submitRevoke(message: Record<string, unknown>, signature: string): Promise<ConsentSubmissionResult> {
    return this.request("POST", "/v1/consents", { action: "revoke", message, signature }, "once");
  }

  accesses(limit?: number): Promise<HistoryPage> {
    return this.request("GET", `/v1/me/accesses${limit !== undefined ? `?limit=${limit}` : ""}`, undefined, "session");
  }

  decisions(): Promise<DecisionsPage> {
    return this.request("GET", "/v1/me/decisions", undefined, "session");
  }

  myData(): Promise<MyData> {
    return this.request("GET", "/v1/me/data", undefined, "session");
  }

  /** POST /v1/me/commitments: relays a wallet-signed DataCommitment to the ledger. */
  commitData(signed: SignedDataRequest): Promise<{ txId: string; blockNumber: number }> {
    return this.request("POST", "/v1/me/commitments", signed, "once");
  }

  /** POST /v1/me/erasure, with the wallet-signed ErasureRequest when the ledger records the data. */
  erase(signed?: SignedDataRequest): Promise<ErasureResult> {
    return this.request("POST", "/v1/me/erasure", signed ?? {}, "once");
  }

  /** RFC 9162 consistency proof between two sizes of a log (open to any authenticated caller). */
  consistency(log: string, from: number, to: number): Promise<ConsistencyProof> {
    return this.request("GET", `/v1/audit/logs/${encodeURIComponent(log)}/proofs/consistency?from=${from}&to=${to}`, undefined, "session");
  }

  /* ---------------------------------------------------------- partner */

  query(subjects: readonly string[], purpose: string, categories: readonly string[]): Promise<DataQueryResult> {
    return this.request("POST", "/v1/data/query", { subjects, purpose, categories }, "session");
  }

  segment(body: { purpose: string; k?: number; seed?: number }): Promise<SegmentationResult> {
    return this.request("POST", "/v1/segmentations", body, "once");
  }

  /* --------------------------------------------------------- operator */

  ingest(records: readonly unknown[]): Promise<{ records: number; subjects: unknown[] }> {
    return this.request("POST", "/v1/vault/records", records, "once");
  }

  ingestCsv(csv: string, kind: "transactions" | "profiles"): Promise<{ records: number; subjects: unknown[] }> {
    return this.request("POST", `/v1/vault/records?kind=${kind}`, csv, "once", "text/csv");
  }

  /* --------------------------------------------------------- plumbing */

  private async authorization(use: "once" | "session"): Promise<string> {
    if (!this.wallet) throw new CliError("WALLET_MISSING", "this call needs a wallet to sign its token", EXIT.LOCAL);
    const audience = await this.verifiedDid();
    const now = Math.floor(Date.now() / 1000);
    if (use === "once") return `Bearer ${await tokenFor(this.wallet, audience, { once: true, nowSec: now })}`;
    if (!this.session || this.session.exp - RENEW_BEFORE_SEC <= now) {
      const token = await tokenFor(this.wallet, audience, { once: false, nowSec: now });
      this.session = { token, exp: JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8")).exp as number };
    }
    return `Bearer ${this.session.token}`;
  }

  private async request<T>(method: "GET" | "POST", path: string, body: unknown, auth: "none" | "once" | "session", contentType = "application/json"): Promise<T> {
    const headers: Record<string, string> = { accept: "application/json" };
    if (auth !== "none") headers["authorization"] = await this.authorization(auth);
    let payload: string | undefined;
    if (body !== undefined) {
      headers["content-type"] = contentType;
      payload = typeof body === "string" ? body : JSON.stringify(body);
    }
    const url = `${this.baseUrl}${path}`;
    let res: Response;
    try {
      // no redirects followed: a token and a body go to the address checked, or nowhere (a 3xx is a refusal)
      res = await fetch(url, { method, headers, ...(payload !== undefined ? { body: payload } : {}), signal: AbortSignal.timeout(this.timeoutMs), redirect: "manual" });
    } catch (e) {
      const cause = (e as { cause?: { code?: string; message?: string } }).cause;
      const why = (e as Error).name === "TimeoutError" ? `no answer within ${this.timeoutMs} ms` : (cause?.code ?? cause?.message ?? (e as Error).message);
      throw new CliError("GATEWAY_UNAVAILABLE", `cannot reach the gateway at ${this.baseUrl} (${why})`, EXIT.UNAVAILABLE);
    }
    const text = await res.text().catch(() => "");
    let json: unknown;
    try {
      json = text === "" ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    if (res.ok) {
      if (json === undefined) throw new CliError("GATEWAY_MISBEHAVED", `the gateway answered ${method} ${path.split("?")[0]} with something other than JSON`, EXIT.UNAVAILABLE);
      return json as T;
    }
    const err = json as { code?: unknown; message?: unknown } | undefined;
    const exit = res.status >= 500 ? EXIT.UNAVAILABLE : EXIT.REJECTED;
    if (err && typeof err.code === "string" && KNOWN_CODES.has(err.code)) {
      const message = typeof err.message === "string" ? err.message : `HTTP ${res.status}`;
      throw new CliError(err.code as ErrorCode, `gateway: ${message}`, exit, { status: res.status });
    }
    throw new CliError(res.status >= 500 ? "GATEWAY_UNAVAILABLE" : "GATEWAY_MISBEHAVED", `the gateway answered ${method} ${path.split("?")[0]} with HTTP ${res.status}`, exit, { status: res.status });
  }
}
