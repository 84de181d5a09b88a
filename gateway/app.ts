import { randomUUID } from "node:crypto";
import Fastify, { type FastifyInstance, type FastifyServerOptions } from "fastify";
import { Ajv } from "ajv";
import swagger from "@fastify/swagger";
import swaggerUi from "@fastify/swagger-ui";
import type { TypeBoxTypeProvider } from "@fastify/type-provider-typebox";
import { Type } from "@sinclair/typebox";
import { getAddress, type Wallet } from "ethers";
import { CATEGORIES, canonicalAccessEvent, categoryMask, flatString, purposeId, type AccessEvent, type Address, type Bytes32, type ConsentRecord, type PermissionReason } from "../core/domain.js";
import { runIdOf, segmentRun, toDecisionRecord } from "../analytics/model.js";
import type { Profile, Transaction } from "../analytics/features.js";
import type { ExplanationStore } from "./explanations.js";
import { consentKey, type ConsentGrantMessage, type ConsentRevokeMessage, type DataCommitmentMessage } from "../core/eip712.js";
import { CustodiaError } from "../core/errors.js";
import type { LedgerPort } from "../core/ledger.js";
import { authHook, type Access, type RouteAuth } from "./auth/hook.js";
import type { JtiStore, TokenVerifier } from "./auth/tokens.js";
import type { GatewayConfig } from "./config.js";
import { installErrorHandling } from "./http-errors.js";
import type { Decision, LedgerView } from "./ledger-view.js";
import type { AnchorerPort, AppendReceipt, LogPort, VaultCodec, VaultPort } from "./ports.js";
import { checkConsentRecord, issueConsentReceipt, issueIdentityProof } from "./receipts.js";
import { IDENTITY_NONCE_RE, canonicalGatewayUrl, isLoopbackPeer } from "../core/gateway-url.js";
import {
  CheckpointPageT,
  ConsentSubmissionT,
  ConsistencyQueryT,
  DataQueryT,
  DataResultT,
  ErasureBodyT,
  ErrorT,
  InclusionQueryT,
  LogParamT,
  RangeQueryT,
  SignedDataRequestT,
  SingleDataQueryT,
  SegmentationRequestT,
  SubjectParamT,
  type ConsentSubmission,
} from "./schemas.js";

export type LogName = "access" | "decisions";

export interface GatewayDeps {
  config: GatewayConfig;
  identity: { did: string; wallet: Wallet; account: Address };
  chain: { chainId: number; contract: Address };
  /** The ledger as this gateway's account: relays signed consents, anchors checkpoints. */
  ledger: LedgerPort;
  view: LedgerView;
  vault: VaultPort;
  vaultCodec: VaultCodec;
  logs: Record<LogName, LogPort>;
  anchorers: Record<LogName, AnchorerPort>;
  explanations: ExplanationStore;
  tokens: TokenVerifier;
  jti: JtiStore;
  /** Milliseconds since the epoch. */
  clock: () => number;
  logger?: FastifyServerOptions["logger"];
  /**
   * The addresses (canonical, see core/gateway-url.ts) this gateway signs identity proofs for:
   * `public`, the URLs its operator configured, for anyone; `loopback`, its loopback listening
   * addresses, only for a question asked over loopback without proxy headers. Read per request,
   * so the runtime adds the listening addresses once it listens. None: every proof is refused.
   */
  servedUrls?: { public: ReadonlySet<string>; loopback: ReadonlySet<string> };
}

/** Headers by which HTTP proxies say they passed a request on. */
const PROXY_HEADERS = ["forwarded", "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-real-ip", "via"] as const;

const ANYONE: readonly Access[] = ["CUSTOMER", "PARTNER", "AUDITOR", "GATEWAY", "ADMIN"];
const once = (roles: readonly Access[]): { auth: RouteAuth } => ({ auth: { roles, tokenUse: "once" } });
const session = (roles: readonly Access[]): { auth: RouteAuth } => ({ auth: { roles, tokenUse: "session" } });
/** Routes whose 200 body is described in prose carry an open schema (serialised as plain JSON). */
const open200 = { 200: Type.Unknown() };
const errors = { 400: ErrorT, 401: ErrorT, 403: ErrorT, 404: ErrorT, 409: ErrorT, 410: ErrorT, 422: ErrorT, 429: ErrorT, 503: ErrorT };

function receiptOf(log: LogName, r: AppendReceipt) {
  return { log, logId: r.logId, index: r.index, leafHash: r.leafHash, treeSize: r.treeSize };
}

/** EIP-55 checksumming hashes with keccak in JS; callers repeat the same addresses, so memoise. */
const checksummed = new Map<string, Address>();
function toAddress(value: string): Address {
  let a = checksummed.get(value);
  if (!a) {
    try {
      a = flatString(getAddress(value) as Address);
    } catch {
      throw new CustodiaError("INVALID_ADDRESS", "not a valid address (mixed-case addresses must carry a valid EIP-55 checksum)");
    }
    if (checksummed.size >= 100_000) checksummed.clear();
    checksummed.set(value, a);
  }
  return a;
}

/** ISO 8601 text of a time in ms; the last one is remembered (several requests share each millisecond). */
let isoMs = Number.NaN;
let isoText = "";
function isoTime(ms: number): string {
  if (ms !== isoMs) {
    isoText = new Date(ms).toISOString();
    isoMs = ms;
  }
  return isoText;
}

/** JSON text of projections (memoised and frozen by the vault codec, so each is serialised once). */
const projectionJson = new WeakMap<object, string>();

/**
 * A DataResultT answer as JSON text, with the projection's cached text as its data. Every string
 * in it is the gateway's own and plain ASCII without quotes or backslashes — a checksummed address,
 * a decision and reason code, a log name, hex hashes — so each goes between quotes as it is (a
 * JSON.stringify call per field cost ~2 % of the busy thread). The types say so; the route tests
 * parse this text and compare it with the same answer serialised by the schema (POST /v1/data/query).
 */
function dataResultJson(r: { subject: Address; decision: "allow" | "deny"; reason: PermissionReason | "SUBJECT_ERASED"; block: number; receipt: ReturnType<typeof receiptOf>; data?: unknown }): string {
  let data = "null";
  if (typeof r.data === "object" && r.data !== null) {
    const cached = projectionJson.get(r.data);
    if (cached === undefined) projectionJson.set(r.data, (data = JSON.stringify(r.data)));
    else data = cached;
  }
  const { receipt } = r;
  return `{"subject":"${r.subject}","decision":"${r.decision}","reason":"${r.reason}","block":${r.block},"receipt":{"log":"${receipt.log}","logId":"${receipt.logId}","index":${receipt.index},"leafHash":"${receipt.leafHash}","treeSize":${receipt.treeSize}},"data":${data}}`;
}

/** The tag a log entry about `subject` is filed under: its address in lower case. */
function subjectTag(subject: Address): string {
  return subject.toLowerCase();
}

/** The tag of a stored log entry, from its `subject` (for logs written before tags were stored). */
export function subjectTagOf(entry: unknown): string | undefined {
  const s = (entry as { subject?: unknown } | null)?.subject;
  return typeof s === "string" && /^0x[0-9a-fA-F]{40}$/.test(s) ? subjectTag(s as Address) : undefined;
}

/**
 * Whether a log entry is about this subject: a history listing serves only those, whatever the
 * tag index says (a tag is not part of the entry nor of its hash; see DurableLog).
 */
function concerns(entry: unknown, subject: Address): boolean {
  const s = (entry as { subject?: unknown } | null)?.subject;
  return typeof s === "string" && s.toLowerCase() === subject.toLowerCase();
}

function requireAccount(account: Address | null): Address {
  if (!account) throw new CustodiaError("FORBIDDEN", "this DID controls no ledger account (use a secp256k1 did:key or did:ethr)");
  return account;
}

/**
 * Response headers of a JSON API that serves personal data, as the OWASP REST Security Cheat
 * Sheet lists them for every API response: nothing is cached anywhere (`no-store`), no page may
 * frame an answer (CSP `frame-ancestors` and its older X-Frame-Options form), content types are
 * not sniffed, TLS is remembered (a TLS-terminating proxy in front passes it on).
 */
const API_HEADERS: Readonly<Record<string, string>> = {
  "cache-control": "no-store",
  "content-security-policy": "frame-ancestors 'none'",
  "strict-transport-security": "max-age=31536000; includeSubDomains",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
};

/**
 * The HTML pages (the OpenAPI explorer under /docs) also keep their referrer and their resources
 * to themselves — headers the cheat sheet keeps for HTML, of no use on a JSON answer.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  ...API_HEADERS,
  "cross-origin-resource-policy": "same-origin",
  "referrer-policy": "no-referrer",
};

/**
 * Builds the gateway's HTTP service (no listening): DID-JWT authentication, contract-checked and
 * durably logged data access, the consent relay, the vault, and the audit API.
 */
export async function buildGateway(deps: GatewayDeps): Promise<FastifyInstance> {
  const { config } = deps;
  const app = Fastify({
    logger: deps.logger ?? false,
    bodyLimit: config.bodyLimit,
    // request.ip (the per-address limits) is X-Forwarded-For's client only behind a proxy named here
    trustProxy: config.trustedProxies.length > 0 ? config.trustedProxies : false,
    genReqId: () => randomUUID(),
    // URLs the router refuses itself (an over-long path parameter, a broken percent-escape) answer
    // like every other error: {code, message}, a documented code, and not the path echoed back
    frameworkErrors: (error, _req, reply) => {
      const tooLong = (error as { code?: string }).code === "FST_ERR_MAX_PARAM_LENGTH";
      const raw = reply as unknown as { code(n: number): typeof raw; header(k: string, v: string): typeof raw; headers(h: Record<string, string>): typeof raw; send(b: string): void };
      raw
        .code(tooLong ? 414 : 400)
        .header("content-type", "application/json; charset=utf-8")
        .headers(API_HEADERS)
        .send(JSON.stringify({ code: "BAD_REQUEST", message: tooLong ? "a path segment is too long" : "the URL is malformed" }));
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  // Query strings and params arrive as text and are coerced to their schema types; JSON bodies are
  // validated as sent, never coerced: they carry signed content (a coerced null would change the
  // consent record's hash) and a number sent as a string is a client bug worth reporting.
  const coercing = new Ajv({ coerceTypes: "array", removeAdditional: false, useDefaults: true, allErrors: false, strict: false });
  const exact = new Ajv({ coerceTypes: false, removeAdditional: false, useDefaults: false, allErrors: false, strict: false });
  app.setValidatorCompiler(({ schema, httpPart }) => (httpPart === "body" ? exact : coercing).compile(schema));

  installErrorHandling(app);
  app.decorateRequest("principal", null);
  // Security headers, set as one precomputed object per reply.
  app.addHook("onRequest", (req, reply, done) => {
    void reply.headers(req.url.startsWith("/docs") ? PAGE_HEADERS : API_HEADERS);
    done();
  });
  await app.register(swagger, {
    openapi: {
      info: { title: "Custodia gateway", version: "1", description: "Consent-checked, audited access to customer data. Authenticate with `Authorization: Bearer <DID-JWT>` (aud = the gateway DID from /health)." },
      components: { securitySchemes: { didJwt: { type: "http", scheme: "bearer", bearerFormat: "DID-JWT" } } },
      security: [{ didJwt: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: "/docs" });

  // Authentication and the per-principal rate limit, in one synchronous pass where tokens are cached.
  app.addHook("onRequest", authHook({ tokens: deps.tokens, jti: deps.jti, view: deps.view, failureLimit: config.authFailureLimit, failureWindowMs: config.rateLimitWindowMs, requestLimit: config.rateLimitMax, requestWindowMs: config.rateLimitWindowMs, clock: deps.clock, memberBinding: deps.ledger.kind === "fabric" ? "did" : "account" }));
  app.addContentTypeParser(["text/csv", "text/plain"], { parseAs: "string", bodyLimit: config.ingestBodyLimit }, (_req, body, done) => done(null, body));

  const nowSec = (): number => Math.floor(deps.clock() / 1000);

  /**
   * Read-your-writes for relayed transactions: the answer waits until the view includes the
   * transaction's block, so the caller's next request is decided on it. The transaction has landed
   * whatever happens here; a view that cannot catch up now fails its own decisions closed.
   */
  const settled = (block: number): Promise<unknown> => deps.view.syncThrough(block).catch(() => undefined);

  /** One decision, logged durably before anything about the data is returned. */
  async function decideAndLog(args: { requestId: string; actor: string; partner: Address; subject: Address; purpose: number; purposeKey: string; categories: number; decision: Omit<Decision, "block">; block: number; time: number }) {
    let { allowed, reason } = args.decision;
    let data: unknown;
    // the vault cache answers most requests synchronously; the awaits are for what it lacks
    const cached = deps.vault.peek?.(args.subject);
    if (allowed) {
      const status = cached ? cached.status : await deps.vault.status(args.subject);
      if (status === "erased") {
        allowed = false;
        reason = "SUBJECT_ERASED" as never;
      } else if (status === "active") {
        try {
          data = deps.vaultCodec.project(cached?.data !== undefined ? cached.data : await deps.vault.read(args.subject), args.categories);
        } catch (e) {
          // an erasure (or a purge) between status and read: record the refusal, release nothing
          if (!(e instanceof CustodiaError) || (e.code !== "SUBJECT_ERASED" && e.code !== "NOT_FOUND")) throw e;
          if (e.code === "SUBJECT_ERASED") {
            allowed = false;
            reason = "SUBJECT_ERASED" as never;
          } else {
            data = null;
          }
        }
      } else {
        data = null;
      }
    } else if ((cached ? cached.status : await deps.vault.status(args.subject)) === "erased") {
      reason = "SUBJECT_ERASED" as never;
    }
    const entry: AccessEvent = {
      actor: args.actor,
      agreementId: args.decision.agreementId.toString(),
      at: isoTime(deps.clock()),
      block: args.block,
      categories: args.categories,
      consentKey: args.decision.consentKey,
      decision: allowed ? "allow" : "deny",
      kind: "access",
      partner: args.partner,
      purpose: args.purposeKey as AccessEvent["purpose"],
      reason,
      requestId: args.requestId,
      subject: args.subject,
      time: args.time,
    };
    const receipt = await deps.logs.access.appendCanonical(canonicalAccessEvent(entry), subjectTag(args.subject));
    return { subject: args.subject, decision: entry.decision, reason: reason as PermissionReason | "SUBJECT_ERASED", block: args.block, receipt: receiptOf("access", receipt), ...(allowed ? { data } : {}) };
  }

  /** Decisions for many subjects at one fresh block (or, in strict mode, asked of the ledger). */
  async function decideMany(partner: Address, subjects: Address[], purpose: number, categories: number): Promise<{ block: number; time: number; decisions: Omit<Decision, "block">[] }> {
    if (config.strict) {
      const block = await deps.ledger.blockNumber();
      const time = Math.max(nowSec(), await deps.ledger.blockTime(block));
      const decisions = await Promise.all(
        subjects.map(async (subject) => {
          const check = await deps.ledger.checkPermission({ subject, partner, purpose, categories, time }, { block });
          return { allowed: check.allowed, reason: check.reason, agreementId: check.agreementId, consentKey: consentKey(subject, partner, purpose) };
        }),
      );
      return { block, time, decisions };
    }
    const block = await deps.view.freshBlock();
    const time = deps.view.decisionTime();
    return { block, time, decisions: subjects.map((s) => deps.view.decideAt(s, partner, { purpose, categories, time })) };
  }

  /** The reason of a log's anchoring alarm ("anchor_root_mismatch", "ledger_ahead_of_log", ...), or null. */
  const alarmOf = (n: LogName): string | null => deps.anchorers[n].alarmReason();

  /**
   * Fail closed on an alarmed log: its anchorer found it and the ledger in disagreement and stopped
   * anchoring, so a receipt it hands out now could not be checked against the ledger. Nothing is
   * released under such a receipt until an operator has resolved the alarm (and restarted).
   * Checked when a request starts (nothing is decided or logged) and again before data leaves.
   * Erasure still goes ahead: it releases nothing, and refusing it would keep data it must destroy.
   */
  const refuseOnAlarm = (n: LogName): void => {
    const reason = alarmOf(n);
    if (reason !== null) throw new CustodiaError("LOG_ALARM", `the ${n} log and the ledger disagree (${reason}); no data is released until an operator resolves it (see /health)`, { log: n, reason });
  };

  /* ------------------------------------------------------------ public */

  const HealthT = Type.Object({ status: Type.String(), gateway: Type.Object({ did: Type.String(), account: Type.String() }), ledger: Type.Object({ chainId: Type.Integer(), contract: Type.String(), syncedBlock: Type.Integer(), syncs: Type.Integer(), fresh: Type.Boolean(), sync: Type.Union([Type.Literal("strict"), Type.Literal("push"), Type.Literal("request")]) }), logs: Type.Record(Type.String(), Type.Object({ size: Type.Integer(), anchored: Type.Integer(), alarm: Type.Union([Type.String(), Type.Null()]) })) });
  // 200 "ok", or "degraded" while the ledger view is stale (data requests then answer 503 until it
  // catches up); 503 "alarm" while a log's anchorer has an alarm: no data is released until an
  // operator resolves it, so a load balancer should take this gateway out.
  app.get("/health", { schema: { tags: ["service"], security: [], response: { 200: HealthT, 503: HealthT } } }, async (_req, reply) => {
    const alarmed = (Object.keys(deps.logs) as LogName[]).some((n) => alarmOf(n) !== null);
    if (alarmed) void reply.code(503);
    return {
      status: alarmed ? "alarm" : deps.view.isFresh() ? "ok" : "degraded",
      gateway: { did: deps.identity.did, account: deps.identity.account },
      ledger: { chainId: deps.chain.chainId, contract: deps.chain.contract, syncedBlock: deps.view.syncedBlock, syncs: deps.view.syncs, fresh: deps.view.isFresh(), sync: (config.strict ? "strict" : deps.view.pushing ? "push" : "request") as "strict" | "push" | "request" },
      logs: Object.fromEntries((Object.keys(deps.logs) as LogName[]).map((n) => [n, { size: deps.logs[n].size, anchored: deps.anchorers[n].lastAnchored()?.treeSize ?? 0, alarm: alarmOf(n) }])),
    };
  });

  // A client asks this before it signs a token for the gateway's DID: the gateway signs the
  // client's nonce and the address the client is talking to, and only for an address it serves.
  const IdentityQueryT = Type.Object({
    url: Type.String({ minLength: 1, maxLength: 2048, description: "the gateway address the client is talking to" }),
    nonce: Type.String({ pattern: IDENTITY_NONCE_RE.source, description: "16 to 64 random bytes, lowercase hex" }),
  });
  const IdentityT = Type.Object({ did: Type.String(), url: Type.String(), proof: Type.String({ description: "ES256K JWT: iss the gateway's DID, aud the url, the nonce, iat, exp" }) });
  app.get("/v1/gateway/identity", { schema: { tags: ["service"], security: [], querystring: IdentityQueryT, response: { 200: IdentityT, 400: ErrorT, 429: ErrorT } } }, async (req) => {
    const q = req.query as { url: string; nonce: string };
    const url = canonicalGatewayUrl(q.url);
    const served = deps.servedUrls;
    // a question from this machine: over loopback, naming the address it was sent to, and nothing
    // says a proxy passed it on (only as strong as the proxies on this host: see loopbackIdentity)
    const local =
      config.loopbackIdentity &&
      isLoopbackPeer(req.socket.remoteAddress) &&
      req.headers.host === new URL(url).host &&
      !PROXY_HEADERS.some((h) => req.headers[h] !== undefined);
    if (!(served?.public.has(url) || (local && served?.loopback.has(url)))) {
      // a question over loopback may just use another name for it: say which ones it answers to
      const here = local && served !== undefined && served.loopback.size > 0 ? `; on this machine it answers at ${[...served.loopback].join(", ")}` : "";
      throw new CustodiaError("INVALID_ARGUMENT", `this gateway does not serve ${url}: it proves its identity only for its own addresses (its operator names a proxy's with CUSTODIA_PUBLIC_URL)${here}`, { reason: "not_this_gateway", url });
    }
    return { did: deps.identity.did, url, proof: await issueIdentityProof(deps.identity, { audience: url, nonce: q.nonce, nowSec: nowSec() }) };
  });

  /* ---------------------------------------------------------- customer */

  app.get("/v1/me", { config: session(ANYONE), schema: { tags: ["customer"], response: { 200: Type.Object({ did: Type.String(), account: Type.Union([Type.String(), Type.Null()]), role: Type.String() }), ...errors } } }, async (req) => {
    const p = req.principal!;
    return { did: p.did, account: p.account, role: p.role };
  });

  app.post("/v1/consents", { config: once(ANYONE), schema: { tags: ["customer"], body: ConsentSubmissionT, response: { 200: Type.Object({ action: Type.String(), txId: Type.String(), blockNumber: Type.Integer(), receipt: Type.String() }), ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const body = req.body as ConsentSubmission;
    const subject = toAddress(body.message.subject);
    if (subject !== account && req.principal!.role !== "GATEWAY") {
      throw new CustodiaError("FORBIDDEN", "a customer submits consents for its own account only");
    }
    let tx;
    let record: ConsentRecord | null = null;
    if (body.action === "grant") {
      const message: ConsentGrantMessage = { ...body.message, subject, partner: toAddress(body.message.partner), receiptHash: body.message.receiptHash.toLowerCase() as `0x${string}` };
      record = body.record as ConsentRecord;
      checkConsentRecord(record, message, deps.view.member(message.partner)?.didHash);
      tx = await deps.ledger.grantConsent(message, body.signature);
      await settled(tx.blockNumber);
      return { action: body.action, ...tx, receipt: await issueConsentReceipt(deps.identity, { record, message, action: "grant", ...tx, chainId: deps.chain.chainId, contract: deps.chain.contract, nowSec: nowSec() }) };
    }
    const message: ConsentRevokeMessage = { ...body.message, subject, partner: toAddress(body.message.partner) };
    tx = await deps.ledger.revokeConsent(message, body.signature);
    await settled(tx.blockNumber);
    return { action: body.action, ...tx, receipt: await issueConsentReceipt(deps.identity, { record: null, message, action: "revoke", ...tx, chainId: deps.chain.chainId, contract: deps.chain.contract, nowSec: nowSec() }) };
  });

  app.get("/v1/me/consents", { config: session(ANYONE), schema: { tags: ["customer"], response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const block = await deps.view.freshBlock();
    return { block, consents: deps.view.consentsOf(account) };
  });

  app.get("/v1/me/accesses", { config: session(ANYONE), schema: { tags: ["customer", "audit"], querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000 })) }), response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const log = deps.logs.access;
    const size = log.size;
    const indexes = log.tagged(subjectTag(account), (req.query as { limit?: number }).limit ?? 200).filter((i) => i < size);
    const root = log.root(size);
    const entries = [];
    for (const e of await log.getEntriesAt(indexes)) {
      if (!concerns(e.entry, account)) continue;
      // A proof may hash again up to 63 leaf pairs read from the log's leaf file (~0.08 ms): a
      // history of 1,000 entries yields to other requests every 25 proofs instead of holding
      // the event loop for all of them.
      if (entries.length % 25 === 24) await new Promise((r) => setImmediate(r));
      entries.push({ ...e, proof: { treeSize: size, root, inclusion: log.inclusionProof(e.index, size) } });
    }
    return { treeSize: size, root, anchored: deps.anchorers.access.lastAnchored(), entries };
  });

  app.get("/v1/me/data", { config: session(ANYONE), schema: { tags: ["customer"], response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    // what the vault holds (never the data itself), and whether the ledger records its commitment:
    // the wallet signs a DataCommitment for it, and later an ErasureRequest naming it
    let status = await deps.vault.status(account);
    let vault: { commitment: Bytes32 | null; records?: number; committedAt?: number } = { commitment: null };
    try {
      const c = await deps.vault.commitment(account);
      if (c) vault = c;
    } catch (e) {
      if (!(e instanceof CustodiaError) || e.code !== "SUBJECT_ERASED") throw e;
      status = "erased";
      vault = { commitment: ((e.details?.["commitment"] as Bytes32 | null | undefined) ?? null) };
    }
    const [onLedger, dataNonce] = await Promise.all([vault.commitment ? deps.ledger.getCommitment(vault.commitment) : null, deps.ledger.dataNonce(account)]);
    return {
      subject: account,
      status,
      ...vault,
      ledger: { committed: onLedger !== null && onLedger.subject === account, committedAt: onLedger?.committedAt ?? null, erasedAt: onLedger?.erasedAt || null },
      dataNonce: dataNonce.toString(),
    };
  });

  app.post("/v1/me/commitments", { config: once(ANYONE), schema: { tags: ["customer"], body: SignedDataRequestT, response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const body = req.body as { message: { subject: string; commitment: `0x${string}`; nonce: string; deadline: number }; signature: string };
    const message: DataCommitmentMessage = { subject: toAddress(body.message.subject), commitment: body.message.commitment, nonce: BigInt(body.message.nonce), deadline: body.message.deadline };
    if (message.subject !== account && req.principal!.role !== "GATEWAY") throw new CustodiaError("FORBIDDEN", "a customer commits its own data only");
    return deps.ledger.commitData(message, body.signature);
  });

  app.post("/v1/me/erasure", { config: once(ANYONE), schema: { tags: ["customer"], body: ErasureBodyT, response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const body = (req.body ?? {}) as { message?: { subject: string; commitment: `0x${string}`; nonce: string; deadline: number }; signature?: string };
    if ((await deps.vault.status(account)) === "erased") throw new CustodiaError("SUBJECT_ERASED", "this subject's data was already erased");
    let ledgerTx = null;
    if (body.message && body.signature) {
      const message: DataCommitmentMessage = { subject: toAddress(body.message.subject), commitment: body.message.commitment, nonce: BigInt(body.message.nonce), deadline: body.message.deadline };
      if (message.subject !== account) throw new CustodiaError("FORBIDDEN", "a customer erases its own data only");
      // The ledger record first: if the signed request is refused, nothing is shredded.
      ledgerTx = await deps.ledger.recordErasure(message, body.signature);
    }
    // Always through the vault, even for a subject it holds nothing of yet: the tombstone it
    // leaves is what refuses a later ingest for this subject.
    await deps.explanations.eraseSubject(account);
    const erased = await deps.vault.erase(account);
    const receipt = await deps.logs.access.append({ kind: "erasure", requestId: req.id, actor: req.principal!.did, subject: account, ledgerTx, commitment: erased.commitment, at: new Date(deps.clock()).toISOString() }, subjectTag(account));
    return { erased: true, ledger: ledgerTx, receipt: receiptOf("access", receipt) };
  });

  /* ----------------------------------------------------------- partner */

  app.post("/v1/data/query", { config: session(["PARTNER"]), schema: { tags: ["partner"], body: DataQueryT, response: { 200: Type.Object({ block: Type.Integer(), results: Type.Array(DataResultT), allowed: Type.Integer(), denied: Type.Integer() }), ...errors } } }, async (req) => {
    const partner = requireAccount(req.principal!.account);
    refuseOnAlarm("access");
    const q = req.body as { subjects: string[]; purpose: string; categories: string[] };
    if (q.subjects.length > config.maxSubjectsPerRequest) throw new CustodiaError("BAD_REQUEST", `at most ${config.maxSubjectsPerRequest} subjects per request`);
    const subjects = [...new Set(q.subjects.map(toAddress))];
    const purpose = purposeId(q.purpose);
    const categories = categoryMask(q.categories);
    const { block, time, decisions } = await decideMany(partner, subjects, purpose, categories);
    const results = await Promise.all(
      subjects.map((subject, i) => decideAndLog({ requestId: `${req.id}/${i}`, actor: req.principal!.did, partner, subject, purpose, purposeKey: q.purpose, categories, decision: decisions[i]!, block, time })),
    );
    // an alarm raised while this request was decided and logged still stops the data (the
    // entries stay on the record: the decisions were made)
    refuseOnAlarm("access");
    const allowed = results.filter((r) => r.decision === "allow").length;
    return { block, results, allowed, denied: results.length - allowed };
  });

  app.get("/v1/data/:subject", { config: session(["PARTNER"]), schema: { tags: ["partner"], params: SubjectParamT, querystring: SingleDataQueryT, response: { 200: DataResultT, ...errors } } }, async (req, reply) => {
    const partner = requireAccount(req.principal!.account);
    refuseOnAlarm("access");
    const subject = toAddress((req.params as { subject: string }).subject);
    const q = req.query as { purpose: string; categories: string };
    const purpose = purposeId(q.purpose);
    const categories = categoryMask(q.categories.split(",").filter(Boolean));
    const { block, time, decisions } = await decideMany(partner, [subject], purpose, categories);
    const result = await decideAndLog({ requestId: req.id, actor: req.principal!.did, partner, subject, purpose, purposeKey: q.purpose, categories, decision: decisions[0]!, block, time });
    if (result.decision === "deny") {
      // The denial is on the record; the receipt travels in a header so the partner can prove it.
      void reply.header("x-custodia-receipt", JSON.stringify(result.receipt));
      throw result.reason === "SUBJECT_ERASED"
        ? new CustodiaError("SUBJECT_ERASED", "this subject's data was erased")
        : new CustodiaError("ACCESS_DENIED", `access denied: ${result.reason}`);
    }
    // an alarm raised while this request was decided and logged still stops the data
    refuseOnAlarm("access");
    // Sent as JSON text built here (the type provider only knows the object form): the
    // projection's JSON is serialised once per (data, categories) and reused, where the schema
    // serialiser would stringify the data on every request.
    return reply.type("application/json; charset=utf-8").send(dataResultJson(result) as never);
  });

  /* ---------------------------------------------------------- operator */

  app.post("/v1/vault/records", { config: once(["GATEWAY", "ADMIN"]), bodyLimit: config.ingestBodyLimit, schema: { tags: ["operator"], querystring: Type.Object({ kind: Type.Optional(Type.Union([Type.Literal("transactions"), Type.Literal("profiles")])) }), response: { ...open200, ...errors } } }, async (req) => {
    const kind = (req.query as { kind?: "transactions" | "profiles" }).kind;
    const records = typeof req.body === "string" ? (kind ? deps.vaultCodec.parseCsv(req.body, kind) : (() => { throw new CustodiaError("BAD_REQUEST", "CSV uploads need ?kind=transactions or ?kind=profiles"); })()) : deps.vaultCodec.parseJson(req.body);
    const result = await deps.vault.ingest(records);
    return { records: records.length, subjects: result.subjects };
  });

  /* ------------------------------------------------------ segmentation */

  /** Data categories a segmentation reads: transactions, and channel/tenure (behavioural). */
  const SEGMENT_CATEGORIES = categoryMask(["transactions", "behavioural"]);

  app.post("/v1/segmentations", { config: once(["PARTNER"]), schema: { tags: ["partner"], body: SegmentationRequestT, response: { ...open200, ...errors } } }, async (req) => {
    const partner = requireAccount(req.principal!.account);
    refuseOnAlarm("decisions");
    const body = req.body as { purpose: string; k?: number; seed?: number };
    const purpose = purposeId(body.purpose);
    const candidates: Address[] = [];
    for await (const subject of deps.vault.subjects()) candidates.push(subject);
    // All decisions at one block and one time, made together right after the sync: only subjects
    // whose consent covers this partner, purpose and categories; erased subjects are not in the
    // vault's active set at all.
    const block = await deps.view.freshBlock();
    const time = deps.view.decisionTime();
    const allowed = (subject: Address, extra = 0): boolean => deps.view.decideAt(subject, partner, { purpose, categories: SEGMENT_CATEGORIES | extra, time }).allowed;
    const decided = candidates.map((subject) => ({ subject, ok: allowed(subject), demographic: allowed(subject, CATEGORIES.demographic), location: allowed(subject, CATEGORIES.location) }));
    const transactions: Transaction[] = [];
    const profiles: Profile[] = [];
    let excluded = 0;
    for (const { subject, ok, demographic, location } of decided) {
      if (!ok) {
        excluded++;
        continue;
      }
      let data: { profile: Record<string, unknown> | null; transactions: { at: number; amount: number; category: string; channel: string }[] };
      try {
        data = (await deps.vault.read(subject)) as typeof data;
      } catch (e) {
        if (e instanceof CustodiaError && (e.code === "SUBJECT_ERASED" || e.code === "NOT_FOUND")) continue; // erased mid-run
        throw e;
      }
      if (data.transactions.length === 0) {
        excluded++;
        continue;
      }
      const p = data.profile ?? {};
      // protected attributes feed the fairness report only where the consent covers them
      profiles.push({
        subject,
        joinedAt: typeof p["joinedAt"] === "number" ? p["joinedAt"] : data.transactions.reduce((m, t) => Math.min(m, t.at), Number.POSITIVE_INFINITY),
        ...(demographic && typeof p["ageBand"] === "string" ? { ageBand: p["ageBand"] } : {}),
        ...(demographic && typeof p["gender"] === "string" ? { gender: p["gender"] } : {}),
        ...(location && typeof p["region"] === "string" ? { region: p["region"] } : {}),
      });
      for (const t of data.transactions) transactions.push({ subject, at: Math.min(t.at, time), amount: t.amount, category: t.category, channel: t.channel });
    }
    if (profiles.length < 3) throw new CustodiaError("BAD_REQUEST", `only ${profiles.length} subjects consent to this segmentation; at least 3 are needed`);
    const run = segmentRun(transactions, profiles, {
      asOf: time,
      seed: body.seed ?? 1,
      nInit: 4,
      ...(body.k !== undefined ? { k: Math.min(body.k, profiles.length - 1) } : { kRange: [2, Math.min(8, profiles.length - 1)] as const }),
    });
    const runId = runIdOf(run.modelCard);
    const at = new Date(deps.clock()).toISOString();
    // The model card goes first — it carries the partner, purpose and block every decision of the
    // run was made under, so a crash can leave a card without decisions but never decisions an
    // auditor cannot check. Everything is durable before anything is answered.
    const card = await deps.logs.decisions.append({ kind: "model-card", runId, partner, purpose: body.purpose, categories: SEGMENT_CATEGORIES, block, time, at, included: profiles.length, excluded, card: run.modelCard });
    const receipts = await Promise.all(run.decisions.map((d) => deps.logs.decisions.append(toDecisionRecord(d, runId, at), subjectTag(d.subject as Address))));
    // a subject erased while the run was computing keeps its decision on the record, but its
    // personal explanation is not written back
    const stillActive = await Promise.all(run.decisions.map(async (d) => (await deps.vault.status(d.subject as Address)) === "active"));
    await deps.explanations.putMany(run.decisions.filter((_, i) => stillActive[i]).map((d) => ({ subject: d.subject as Address, runId, explanation: d.explanation })));
    refuseOnAlarm("decisions");
    return {
      runId,
      modelHash: run.modelHash,
      dataCommitment: run.modelCard.dataCommitment,
      block,
      included: profiles.length,
      excluded,
      segments: run.modelCard.segments,
      metrics: run.modelCard.metrics,
      fairness: run.modelCard.fairness,
      modelCardReceipt: receiptOf("decisions", card),
      decisions: run.decisions.map((d, i) => ({ subject: d.subject, segment: d.segment, receipt: receiptOf("decisions", receipts[i]!) })),
    };
  });

  app.get("/v1/me/decisions", { config: session(ANYONE), schema: { tags: ["customer"], response: { ...open200, ...errors } } }, async (req) => {
    const account = requireAccount(req.principal!.account);
    const log = deps.logs.decisions;
    const size = log.size;
    const root = log.root(size);
    const decisions = [];
    for (const e of await log.getEntriesAt(log.tagged(subjectTag(account), 200).filter((i) => i < size))) {
      if (!concerns(e.entry, account)) continue;
      const record = e.entry as { runId: string };
      decisions.push({ ...e, explanation: (await deps.explanations.get(account, record.runId)) ?? null, proof: { treeSize: size, root, inclusion: log.inclusionProof(e.index, size) } });
    }
    return { treeSize: size, root, anchored: deps.anchorers.decisions.lastAnchored(), decisions };
  });

  /* ------------------------------------------------------------- audit */

  const auditors: readonly Access[] = ["AUDITOR", "ADMIN"];

  app.get("/v1/audit/logs", { config: session(ANYONE), schema: { tags: ["audit"], response: { ...open200, ...errors } } }, async () => ({
    gateway: deps.identity.account,
    logs: (Object.keys(deps.logs) as LogName[]).map((name) => ({ name, size: deps.logs[name].size, root: deps.logs[name].root(), anchored: deps.anchorers[name].lastAnchored() })),
  }));

  // Paged: anchoring every 10,000 entries or 10 s makes thousands of checkpoints a day. `next` is
  // the `after` of the following page, null on the last one.
  app.get("/v1/audit/logs/:log/checkpoints", { config: session(ANYONE), schema: { tags: ["audit"], params: LogParamT, querystring: CheckpointPageT, response: { ...open200, ...errors } } }, async (req) => {
    const name = (req.params as { log: LogName }).log;
    const { after, limit = 1000 } = req.query as { after?: number; limit?: number };
    const page = await deps.anchorers[name].checkpoints({ ...(after === undefined ? {} : { after }), limit: limit + 1 });
    const more = page.length > limit;
    if (more) page.length = limit;
    return { log: name, checkpoints: page, next: more ? page[page.length - 1]!.treeSize : null };
  });

  app.get("/v1/audit/logs/:log/entries", { config: session(auditors), schema: { tags: ["audit"], params: LogParamT, querystring: RangeQueryT, response: { ...open200, ...errors } } }, async (req) => {
    const name = (req.params as { log: LogName }).log;
    const { start, end } = req.query as { start: number; end: number };
    const log = deps.logs[name];
    if (end <= start || end > log.size) throw new CustodiaError("PROOF_INVALID_INDEX", `range must satisfy start < end <= ${log.size}`);
    if (end - start > 1000) throw new CustodiaError("BAD_REQUEST", "at most 1000 entries per page");
    return { log: name, treeSize: log.size, entries: await log.getEntries(start, end) };
  });

  app.get("/v1/audit/logs/:log/proofs/inclusion", { config: session(auditors), schema: { tags: ["audit"], params: LogParamT, querystring: InclusionQueryT, response: { ...open200, ...errors } } }, async (req) => {
    const name = (req.params as { log: LogName }).log;
    const { index, size } = req.query as { index: number; size: number };
    const log = deps.logs[name];
    if (size > log.size) throw new CustodiaError("PROOF_INVALID_SIZE", `the log has ${log.size} entries`);
    const [e] = await log.getEntries(index, index + 1);
    return { log: name, index, treeSize: size, leafHash: e?.leafHash, root: log.root(size), proof: log.inclusionProof(index, size) };
  });

  app.get("/v1/audit/logs/:log/proofs/consistency", { config: session(ANYONE), schema: { tags: ["audit"], params: LogParamT, querystring: ConsistencyQueryT, response: { ...open200, ...errors } } }, async (req) => {
    const name = (req.params as { log: LogName }).log;
    const { from, to } = req.query as { from: number; to: number };
    const log = deps.logs[name];
    if (to > log.size) throw new CustodiaError("PROOF_INVALID_SIZE", `the log has ${log.size} entries`);
    return { log: name, from, to, rootFrom: log.root(from), rootTo: log.root(to), proof: log.consistencyProof(from, to) };
  });

  return app;
}
