/**
 * A small HTTP client for the gateway's audit API, as `custodia audit verify` uses it. It signs in
 * as the auditor with a DID-JWT session token made locally from the auditor's key (ES256K-R for a
 * did:ethr, ES256K for a secp256k1 did:key; aud = the gateway DID from GET /health, a short
 * expiry, a random jti), reused for reads until shortly before it expires, as the gateway allows
 * for session tokens. The first token is signed only once the gateway has proved it holds that
 * DID's key for the address the auditor uses (identity()).
 *
 * Everything it returns is the gateway's JSON as `unknown`: the gateway is the party under audit,
 * so its answers are parsed and judged by the verifier, never trusted here. What this client does
 * decide is what kind of failure a transport problem is:
 * - the gateway cannot be reached, times out, or answers 5xx: GATEWAY_UNAVAILABLE (exit 3);
 * - it refuses the auditor (401/403): the gateway's own code, exit 4, and the run stops;
 * - any other refusal or an answer that is not JSON: GATEWAY_MISBEHAVED, which the verifier turns
 *   into a finding about the request that got it (a gateway that will not prove what the ledger
 *   anchored is a finding, not a crash).
 */
import { randomUUID } from "node:crypto";
import { ES256KSigner, createJWT } from "did-jwt";
import { SigningKey, computeAddress, concat, encodeBase58, getBytes } from "ethers";
import { ERROR_CODES, CustodiaError, isCustodiaError, type ErrorCode } from "../../core/errors.js";
import type { LogName } from "../../core/logs.js";
import { identityProblem, identityQuestion, refusalProblem } from "../gateway-identity.js";
import { CliError, EXIT } from "../io.js";
import type { AuditSource } from "./verify.js";

/** The auditor as the client signs for it. */
export interface AuditorKey {
  /** 0x-prefixed 32-byte secp256k1 private key; used here only to sign tokens. */
  privateKey: string;
  /** did:ethr naming the key's account, or the key's secp256k1 did:key. */
  did: string;
}

export interface GatewayClientOptions {
  /** Base URL of the gateway, without a trailing slash. */
  baseUrl: string;
  auditor: AuditorKey;
  /** Per-request timeout, ms. Default 30,000. */
  timeoutMs?: number;
  /** Largest answer read, bytes (a hostile gateway must not exhaust memory). Default 256 MiB. */
  maxBodyBytes?: number;
  /** Unix seconds, for token times. Default: the system clock. */
  nowSec?: () => number;
  /** Token lifetime, s (the gateway accepts at most 300). Default 240. */
  tokenSeconds?: number;
}

const SESSION_MARGIN_SEC = 30;
/** Checkpoints asked per page (the gateway's largest page). */
const CHECKPOINT_PAGE = 10_000;
const MAX_RATE_LIMIT_RETRIES = 5;

/** The audit API over HTTP; implements the verifier's AuditSource. */
export class GatewayClient implements AuditSource {
  private readonly baseUrl: string;
  private readonly auditor: AuditorKey;
  private readonly timeoutMs: number;
  private readonly maxBodyBytes: number;
  private readonly nowSec: () => number;
  private readonly tokenSeconds: number;
  private readonly recoverable: boolean;
  private audience: string | undefined;
  /** The DID the gateway proved it holds (identity()), once it has. */
  private verified: string | undefined;
  private session: { token: string; exp: number; aud: string } | undefined;

  constructor(options: GatewayClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, "");
    this.auditor = options.auditor;
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxBodyBytes = options.maxBodyBytes ?? 256 * 1024 * 1024;
    this.nowSec = options.nowSec ?? (() => Math.floor(Date.now() / 1000));
    this.tokenSeconds = options.tokenSeconds ?? 240;
    this.recoverable = checkAuditorKey(options.auditor);
  }

  /** GET /health (no token); also learns the gateway DID the tokens are addressed to. */
  async health(): Promise<unknown> {
    const body = await this.request("/health", false);
    const did = (body as { gateway?: { did?: unknown } } | null)?.gateway?.did;
    if (typeof did !== "string" || did.length === 0 || did.length > 512) {
      throw new CustodiaError("GATEWAY_MISBEHAVED", "the gateway's /health does not name its DID", { path: "/health" });
    }
    this.audience = did;
    return body;
  }

  /**
   * Has the gateway prove it holds the key of the DID its /health named, for this client's
   * address (cli/gateway-identity.ts); no token is signed before it has. Rejects
   * GATEWAY_UNVERIFIED when it does not, GATEWAY_UNAVAILABLE when it cannot be asked.
   */
  async identity(): Promise<void> {
    if (this.audience === undefined) await this.health();
    const did = this.audience!;
    if (this.verified === did) return;
    const question = identityQuestion(this.baseUrl);
    const unverified = (why: string): CliError =>
      new CliError("GATEWAY_UNVERIFIED", `the server at ${question.url} did not prove it is the gateway ${did.slice(0, 200)} (${why}); no token was sent to it`, EXIT.UNAVAILABLE, { url: question.url, did: did.slice(0, 200) });
    let answer: unknown;
    try {
      answer = await this.request(question.path, false);
    } catch (e) {
      if (!isCustodiaError(e)) throw e;
      // down, 5xx or still rate-limited after the retries: it could not be asked now
      const status = e.code === "GATEWAY_UNAVAILABLE" || e.code === "RATE_LIMITED" ? 503 : (e.details?.["status"] as number | undefined);
      const why = refusalProblem(status, e.message);
      if (why === null) throw e;
      throw unverified(why);
    }
    const problem = identityProblem(answer, question, did, this.nowSec());
    if (problem !== null) throw unverified(problem);
    this.verified = did;
  }

  logs(): Promise<unknown> {
    return this.request("/v1/audit/logs", true);
  }

  /**
   * GET /v1/audit/logs/:log/checkpoints, every page: the first page's answer with the checkpoints
   * of all pages. Each `next` must lie beyond the one before (a gateway paging in circles is caught,
   * GATEWAY_MISBEHAVED); an answer without `next` is one page.
   */
  async checkpoints(log: LogName): Promise<unknown> {
    const path = `/v1/audit/logs/${log}/checkpoints`;
    const first = await this.request(`${path}?limit=${CHECKPOINT_PAGE}`, true);
    const pageOf = (body: unknown): { checkpoints: unknown[]; next: unknown } | null =>
      body !== null && typeof body === "object" && Array.isArray((body as { checkpoints?: unknown }).checkpoints) ? (body as { checkpoints: unknown[]; next: unknown }) : null;
    const head = pageOf(first);
    if (head === null) return first; // the verifier judges a malformed listing
    const all = [...head.checkpoints];
    let after = -1;
    for (let next = head.next; next !== null && next !== undefined; ) {
      if (typeof next !== "number" || !Number.isSafeInteger(next) || next <= after) {
        throw new CustodiaError("GATEWAY_MISBEHAVED", "the checkpoint listing's pages do not advance", { path, next: String(next) });
      }
      after = next;
      const page = pageOf(await this.request(`${path}?after=${after}&limit=${CHECKPOINT_PAGE}`, true));
      if (page === null) throw new CustodiaError("GATEWAY_MISBEHAVED", "a page of the checkpoint listing is malformed", { path, after });
      all.push(...page.checkpoints);
      next = page.next;
    }
    return { ...(first as object), checkpoints: all, next: null };
  }

  entries(log: LogName, start: number, end: number): Promise<unknown> {
    return this.request(`/v1/audit/logs/${log}/entries?start=${start}&end=${end}`, true);
  }

  inclusionProof(log: LogName, index: number, size: number): Promise<unknown> {
    return this.request(`/v1/audit/logs/${log}/proofs/inclusion?index=${index}&size=${size}`, true);
  }

  consistencyProof(log: LogName, from: number, to: number): Promise<unknown> {
    return this.request(`/v1/audit/logs/${log}/proofs/consistency?from=${from}&to=${to}`, true);
  }

  /* ------------------------------------------------------------------ plumbing */

  private async token(): Promise<string> {
    if (this.audience === undefined || this.verified !== this.audience) await this.identity();
    // signed for the DID proved, never for one a later /health named
    const aud = this.verified!;
    const now = this.nowSec();
    if (this.session && this.session.aud === aud && this.session.exp - now > SESSION_MARGIN_SEC) return this.session.token;
    const exp = now + this.tokenSeconds;
    const token = await createJWT(
      { aud, iat: now, exp, jti: randomUUID() },
      { issuer: this.auditor.did, signer: ES256KSigner(getBytes(this.auditor.privateKey), this.recoverable) },
      { alg: this.recoverable ? "ES256K-R" : "ES256K" },
    );
    this.session = { token, exp, aud };
    return token;
  }

  private async request(path: string, authenticated: boolean): Promise<unknown> {
    const url = `${this.baseUrl}${path}`;
    for (let attempt = 0; ; attempt++) {
      const headers: Record<string, string> = { accept: "application/json" };
      if (authenticated) headers["authorization"] = `Bearer ${await this.token()}`;
      let res: Response;
      let text: string;
      try {
        res = await fetch(url, { headers, signal: AbortSignal.timeout(this.timeoutMs), redirect: "manual" });
        text = await readCapped(res, this.maxBodyBytes);
      } catch (e) {
        if (e instanceof CustodiaError) throw e;
        throw new CliError("GATEWAY_UNAVAILABLE", `the gateway at ${this.baseUrl} cannot be reached: ${describe(e)}`, EXIT.UNAVAILABLE, { url: this.baseUrl });
      }
      if (res.status === 429 && attempt < MAX_RATE_LIMIT_RETRIES) {
        const after = Number(res.headers.get("retry-after"));
        await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 30) * 1000 : 250 * 2 ** attempt);
        continue;
      }
      let body: unknown;
      try {
        body = text.length === 0 ? null : (JSON.parse(text) as unknown);
      } catch {
        if (res.status >= 500) throw new CliError("GATEWAY_UNAVAILABLE", `the gateway answered ${res.status} to ${path}`, EXIT.UNAVAILABLE, { path, status: res.status });
        throw new CustodiaError("GATEWAY_MISBEHAVED", `the gateway's answer to ${path} is not JSON`, { path, status: res.status });
      }
      if (res.ok) return body;
      const err = body as { code?: unknown; message?: unknown } | null;
      const code = typeof err?.code === "string" && (ERROR_CODES as readonly string[]).includes(err.code) ? (err.code as ErrorCode) : undefined;
      const said = typeof err?.message === "string" ? `: ${err.message.slice(0, 300)}` : "";
      if (res.status >= 500) {
        throw new CliError("GATEWAY_UNAVAILABLE", `the gateway answered ${res.status}${code ? ` ${code}` : ""} to ${path}${said}`, EXIT.UNAVAILABLE, { path, status: res.status, ...(code ? { gatewayCode: code } : {}) });
      }
      if (res.status === 401 || res.status === 403) {
        throw new CliError(code ?? "FORBIDDEN", `the gateway refused the auditor ${this.auditor.did}${said} (is it registered as an active AUDITOR member?)`, EXIT.REJECTED, { path, status: res.status });
      }
      if (res.status === 429) throw new CliError("RATE_LIMITED", `the gateway kept rate-limiting the auditor at ${path}`, EXIT.UNAVAILABLE, { path });
      throw new CustodiaError("GATEWAY_MISBEHAVED", `the gateway refused ${path} with ${res.status}${code ? ` ${code}` : ""}${said}`, { path, status: res.status, ...(code ? { gatewayCode: code } : {}) });
    }
  }
}

/**
 * Checks that the DID names the key (so a token is not signed for someone else's DID, which the
 * gateway would refuse with a less helpful message) and says whether tokens are ES256K-R
 * (did:ethr) or ES256K (did:key). WALLET_INVALID otherwise.
 */
function checkAuditorKey(key: AuditorKey): boolean {
  const bad = (why: string): never => {
    throw new CliError("WALLET_INVALID", `the auditor wallet ${why}`, EXIT.LOCAL);
  };
  if (typeof key.privateKey !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(key.privateKey)) bad("holds no 32-byte hex private key");
  let account: string;
  let compressed: string;
  try {
    account = computeAddress(key.privateKey);
    compressed = SigningKey.computePublicKey(key.privateKey, true);
  } catch {
    return bad("holds no valid secp256k1 private key");
  }
  if (typeof key.did !== "string") return bad("names no DID");
  const ethr = /^did:ethr:(?:[A-Za-z0-9]+:)?(0x[0-9a-fA-F]{40})$/.exec(key.did);
  if (ethr) {
    if (ethr[1]!.toLowerCase() !== account.toLowerCase()) bad(`DID ${key.did} does not name the key's account ${account}`);
    return true;
  }
  if (key.did.startsWith("did:key:")) {
    const expected = `did:key:z${encodeBase58(concat([new Uint8Array([0xe7, 0x01]), compressed]))}`;
    if (key.did !== expected) bad(`DID ${key.did} is not the key's did:key`);
    return false;
  }
  return bad(`DID ${key.did.slice(0, 80)} is neither a did:ethr nor a secp256k1 did:key`);
}

/** Reads a body up to `max` bytes; a larger one is refused without reading it all. */
async function readCapped(res: Response, max: number): Promise<string> {
  const declared = Number(res.headers.get("content-length"));
  if (Number.isFinite(declared) && declared > max) {
    await res.body?.cancel();
    throw new CustodiaError("GATEWAY_MISBEHAVED", `the gateway's answer is ${declared} bytes, more than ${max}`, { status: res.status });
  }
  if (!res.body) return "";
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      await reader.cancel();
      throw new CustodiaError("GATEWAY_MISBEHAVED", `the gateway's answer is more than ${max} bytes`, { status: res.status });
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks).toString("utf8");
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: unknown; message?: unknown } } | null)?.cause;
  if (typeof cause?.code === "string") return cause.code;
  if (e instanceof Error && e.name === "TimeoutError") return "timed out";
  return e instanceof Error ? e.message : String(e);
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
