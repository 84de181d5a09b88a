import type { FastifyReply, FastifyRequest } from "fastify";
import type { Address, Member, RoleName } from "../../core/domain.js";
import { CustodiaError } from "../../core/errors.js";
import type { LedgerView } from "../ledger-view.js";
import type { JtiStore, TokenVerifier, VerifiedToken } from "./tokens.js";

/** Who is calling, as established by the auth hook. */
export interface Principal {
  did: string;
  /** Ledger account the DID controls (null for Ed25519 did:key). */
  account: Address | null;
  /** Membership role on the ledger, or CUSTOMER for any other DID. */
  role: RoleName | "CUSTOMER";
  jti: string;
}

export type Access = RoleName | "CUSTOMER";

/** Per-route auth settings, in the route's `config.auth`. */
export interface RouteAuth {
  /** Roles allowed; CUSTOMER means any authenticated DID acting for itself. */
  roles: readonly Access[];
  /**
   * "once": the token's jti is spent on this request (state-changing calls: replay is refused).
   * "session": the token may be presented again until it expires (reads; served from the cache).
   */
  tokenUse: "once" | "session";
}

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal | null;
  }
  interface FastifyContextConfig {
    auth?: RouteAuth;
  }
}

export interface AuthDeps {
  tokens: TokenVerifier;
  jti: JtiStore;
  view: LedgerView;
  /** Failed authentications tolerated per client IP per window before 429. */
  failureLimit: number;
  failureWindowMs: number;
  /**
   * Requests served per principal (its DID) per window before 429; a route without
   * authentication counts per client IP. Junk tokens never become a principal: they are
   * counted by the failure limit instead.
   */
  requestLimit: number;
  requestWindowMs: number;
  clock: () => number;
  /**
   * How a DID is bound to a member record. "account" (EVM): the member's account is the address the
   * DID's key controls, and the record carries this DID's hash. "did" (Fabric, where member accounts
   * derive from MSP identities, not from DID keys): the record carrying this DID's hash; the caller
   * then acts as that member's account. Default "account".
   */
  memberBinding?: "account" | "did";
}

/**
 * Fixed-window counters per key (a client address, a principal's DID), synchronous: a request is
 * counted and judged in the hook that authenticates it, with no store round trip.
 */
export class FixedWindows {
  private readonly windows = new Map<string, { start: number; count: number }>();
  constructor(
    readonly limit: number,
    private readonly windowMs: number,
    private readonly clock: () => number,
    private readonly maxKeys = 100_000,
  ) {}

  /** Seconds until `key` may be served again (0: it is within its limit now). */
  waitSec(key: string): number {
    const w = this.windows.get(key);
    if (!w || w.count < this.limit) return 0;
    const left = w.start + this.windowMs - this.clock();
    return left > 0 ? Math.ceil(left / 1000) : 0;
  }

  /** Counts one event for `key`; returns waitSec(key) after it. */
  count(key: string): number {
    const now = this.clock();
    let w = this.windows.get(key);
    if (!w || now - w.start >= this.windowMs) {
      if (!w && this.windows.size >= this.maxKeys) this.prune(now);
      w = { start: now, count: 0 };
      this.windows.set(key, w);
    }
    w.count++;
    return w.count > this.limit ? Math.max(1, Math.ceil((w.start + this.windowMs - now) / 1000)) : 0;
  }

  /** Drops ended windows; if every window is live, starts afresh (the map stays bounded). */
  private prune(now: number): void {
    for (const [k, w] of this.windows) if (now - w.start >= this.windowMs) this.windows.delete(k);
    if (this.windows.size >= this.maxKeys) this.windows.clear();
  }
}

function rateLimited(message: string, limit: number, retryAfterSec: number): CustodiaError {
  return new CustodiaError("RATE_LIMITED", message, { retryAfterSec, limit });
}

const NOT_BEARER = "the Authorization header must be `Bearer <token>`";
const WHITESPACE = /\s/;

/**
 * What follows `Bearer ` (the scheme in any case, one space) in the Authorization header. The
 * token is not scanned here: a cached token is known to be whitespace-free (it was verified), and
 * anything else goes through requireToken() first.
 */
function bearer(request: FastifyRequest): string {
  const h = request.headers.authorization;
  if (!h) throw new CustodiaError("UNAUTHENTICATED", "send a DID-JWT as `Authorization: Bearer <token>`");
  if (h.length < 8 || h.charCodeAt(6) !== 0x20 || (!h.startsWith("Bearer") && h.slice(0, 6).toLowerCase() !== "bearer")) {
    throw new CustodiaError("UNAUTHENTICATED", NOT_BEARER);
  }
  return h.slice(7);
}

/** A token that is not cached must at least be one word. */
function requireToken(raw: string): void {
  if (WHITESPACE.test(raw)) throw new CustodiaError("UNAUTHENTICATED", NOT_BEARER);
}

function memberOf(deps: AuthDeps, token: VerifiedToken): Member | null {
  if (deps.memberBinding === "did") return deps.view.memberByDidHash(token.didHash);
  return token.did.account ? deps.view.member(token.did.account) : null;
}

/**
 * The onRequest hook: verifies the DID-JWT, spends single-use tokens, resolves the caller's role
 * from the membership contract (through the ledger view), and applies the per-principal rate
 * limit. A member's role binds its DID: the account must be active and registered with the hash
 * of this very DID. A session token already verified, presented while the view is fresh, is
 * handled synchronously (no promise on the hot path); everything else takes the asynchronous path.
 */
export function authHook(deps: AuthDeps) {
  const failures = new FixedWindows(deps.failureLimit, deps.failureWindowMs, deps.clock);
  const requests = new FixedWindows(deps.requestLimit, deps.requestWindowMs, deps.clock);

  /** Counted before a single-use token is spent: a refused request leaves the token usable. */
  const limit = (token: VerifiedToken): void => {
    const wait = requests.count(token.did.did);
    if (wait > 0) throw rateLimited("too many requests; slow down", requests.limit, wait);
  };

  const authorize = (request: FastifyRequest, auth: RouteAuth, token: VerifiedToken, m: Member | null): void => {
    let role: Principal["role"] = "CUSTOMER";
    let account = token.did.account;
    if (m && m.active && m.didHash === token.didHash) {
      role = m.role;
      account = m.account;
    }
    request.principal = { did: token.did.did, account, role, jti: token.jti };
    if (!auth.roles.includes(role)) {
      throw new CustodiaError("FORBIDDEN", `this endpoint is for ${auth.roles.join(", ")}; the caller is ${role}`);
    }
  };

  const slow = async (request: FastifyRequest, auth: RouteAuth, raw: string, cached: VerifiedToken | undefined): Promise<void> => {
    let token = cached;
    if (!token) {
      try {
        token = await deps.tokens.verify(raw);
      } catch (e) {
        // an unreachable ledger is not the caller's failure
        if (!(e instanceof CustodiaError) || (e.code !== "LEDGER_UNAVAILABLE" && e.code !== "LEDGER_STALE")) failures.count(request.ip);
        throw e;
      }
    }
    limit(token);
    if (auth.tokenUse === "once" && !(await deps.jti.spend(token.did.did, token.jti, token.exp))) {
      throw new CustodiaError("TOKEN_REPLAYED", "this single-use token was already used");
    }
    // A member role is read from the ledger view: never from a stale one (a deactivated admin or
    // gateway must not keep its rights while the ledger is unreachable).
    let m = memberOf(deps, token);
    if (m && !deps.view.isFresh()) {
      await deps.view.freshBlock();
      m = memberOf(deps, token);
    }
    authorize(request, auth, token, m);
  };

  // Errors thrown here reach Fastify's hook runner, which answers them like a rejected hook.
  return (request: FastifyRequest, _reply: FastifyReply, done: (err?: Error) => void): void => {
    request.principal = null;
    const auth = request.routeOptions.config?.auth;
    if (!auth) {
      const wait = requests.count(`ip:${request.ip}`);
      if (wait > 0) throw rateLimited("too many requests from this address; slow down", requests.limit, wait);
      done();
      return;
    }
    const blockedFor = failures.waitSec(request.ip);
    if (blockedFor > 0) throw rateLimited("too many failed authentications from this address; wait a minute", failures.limit, blockedFor);
    let raw: string;
    let cached: VerifiedToken | undefined;
    try {
      raw = bearer(request);
      cached = deps.tokens.cached(raw);
      if (!cached) requireToken(raw);
    } catch (e) {
      failures.count(request.ip);
      throw e;
    }
    if (cached && auth.tokenUse === "session") {
      const m = memberOf(deps, cached);
      if (!m || deps.view.isFresh()) {
        limit(cached);
        authorize(request, auth, cached, m);
        done();
        return;
      }
    }
    slow(request, auth, raw, cached).then(() => done(), done);
  };
}
