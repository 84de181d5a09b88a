import { createHash } from "node:crypto";
import { decodeJWT, verifyJWT, type JWTPayload } from "did-jwt";
import type { Resolvable } from "did-resolver";
import { CustodiaError, type ErrorCode } from "../../core/errors.js";
import { parseDid, type DidInfo } from "../../core/did.js";
import { didHash, type Bytes32 } from "../../core/domain.js";

export interface TokenPolicy {
  /** The gateway's own DID: every token's `aud` must name it. */
  audience: string;
  /** Longest accepted token lifetime (exp - iat), seconds. */
  maxLifetimeSec: number;
  /** Tolerated clock difference between caller and gateway, seconds. */
  clockSkewSec: number;
  /** Verified tokens kept in memory (until they expire). */
  cacheSize: number;
}

export const DEFAULT_TOKEN_POLICY: Omit<TokenPolicy, "audience"> = {
  maxLifetimeSec: 300,
  clockSkewSec: 30,
  cacheSize: 50_000,
};

export interface VerifiedToken {
  did: DidInfo;
  jti: string;
  iat: number;
  exp: number;
  /** didHash of the issuer (what member records carry), computed once per token. */
  didHash: Bytes32;
}

/** Remembers the single-use tokens already spent, until they expire. Durable in the gateway. */
export interface JtiStore {
  /** Resolves true if (issuer, jti) was unused and is now spent; false if it was spent before. */
  spend(issuer: string, jti: string, exp: number): Promise<boolean>;
}

const MAX_TOKEN_LENGTH = 8 * 1024;
/**
 * Verified tokens are cached under the last CACHE_KEY_CHARS characters of their signature: hashing
 * a whole token (hundreds of characters, a fresh string on every request) for the map lookup cost
 * more than the rest of a cached request's authentication. A hit counts only if the whole token
 * is the one verified: equal to the stored token (up to CACHE_TOKEN_MAX characters) or, for a
 * longer one, to its stored SHA-256, so a cache full of padded tokens holds at most
 * cacheSize × 1 KiB of them.
 */
const CACHE_KEY_CHARS = 64;
const CACHE_TOKEN_MAX = 1024;

interface CacheEntry {
  /** The token itself (up to CACHE_TOKEN_MAX characters), else undefined. */
  token: string | undefined;
  /** SHA-256 of a longer token, base64. */
  digest: string | undefined;
  verified: VerifiedToken;
}

function cacheKey(token: string): string {
  return token.length <= CACHE_KEY_CHARS ? token : token.slice(-CACHE_KEY_CHARS);
}

function digestOf(token: string): string {
  return createHash("sha256").update(token).digest("base64");
}

function isEntryOf(e: CacheEntry, token: string): boolean {
  return token.length <= CACHE_TOKEN_MAX ? e.token === token : e.token === undefined && e.digest === digestOf(token);
}

function fail(code: ErrorCode, message: string): never {
  throw new CustodiaError(code, message);
}

/** did-jwt reports failures as "prefix: text" strings; map them once, here, to our codes. */
function mapDidJwtError(e: unknown): CustodiaError {
  if (e instanceof CustodiaError) return e;
  const msg = e instanceof Error ? e.message : String(e);
  if (msg.startsWith("resolver_error") || msg.includes("unsupportedDidMethod") || msg.includes("notFound")) {
    return new CustodiaError("DID_UNRESOLVABLE", "the token's DID cannot be resolved", undefined, { cause: e });
  }
  if (msg.includes("expired")) return new CustodiaError("TOKEN_EXPIRED", "token has expired", undefined, { cause: e });
  if (msg.includes("not valid before")) return new CustodiaError("TOKEN_NOT_YET_VALID", "token is not valid yet", undefined, { cause: e });
  if (msg.includes("audience")) return new CustodiaError("TOKEN_AUDIENCE", "token is not addressed to this gateway", undefined, { cause: e });
  return new CustodiaError("TOKEN_INVALID", "token signature or format is invalid", undefined, { cause: e });
}

/**
 * Verifies bearer DID-JWTs. Cheap structural checks run first (so a flood of junk never reaches
 * DID resolution); the signature is then checked by did-jwt against the resolved DID document, and
 * the verified token is cached until it expires, so a session token costs one verification.
 */
export class TokenVerifier {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly resolver: Resolvable,
    private readonly policy: TokenPolicy,
    private readonly nowSec: () => number = () => Math.floor(Date.now() / 1000),
  ) {}

  /**
   * The token as verified before, if it still is in the cache (synchronous: the hot path of a
   * session). undefined when it must go through verify(); TOKEN_EXPIRED once a cached token has
   * expired; the same refusals as verify() for an empty or over-long token.
   */
  cached(token: string): VerifiedToken | undefined {
    if (typeof token !== "string" || token.length === 0) fail("UNAUTHENTICATED", "a bearer DID-JWT is required");
    if (token.length > MAX_TOKEN_LENGTH) fail("TOKEN_INVALID", "token is too long");
    const key = cacheKey(token);
    const entry = this.cache.get(key);
    if (entry === undefined || !isEntryOf(entry, token)) return undefined;
    if (this.nowSec() > entry.verified.exp + this.policy.clockSkewSec) {
      this.cache.delete(key);
      fail("TOKEN_EXPIRED", "token has expired");
    }
    return entry.verified;
  }

  async verify(token: string): Promise<VerifiedToken> {
    const hit = this.cached(token);
    if (hit) return hit;
    const now = this.nowSec();
    const key = cacheKey(token);
    const claims = this.precheck(token, now);
    let verifiedIssuer: string;
    try {
      const result = await verifyJWT(token, {
        resolver: this.resolver,
        audience: this.policy.audience,
        skewTime: this.policy.clockSkewSec,
        // the injected clock, and a key from the DID's authentication relationship
        policies: { now },
        proofPurpose: "authentication",
      });
      verifiedIssuer = result.issuer;
    } catch (e) {
      throw mapDidJwtError(e);
    }
    if (verifiedIssuer !== claims.iss) fail("TOKEN_INVALID", "token issuer mismatch");
    const verified: VerifiedToken = { did: parseDid(claims.iss), jti: claims.jti, iat: claims.iat, exp: claims.exp, didHash: didHash(claims.iss) };
    this.remember(key, token.length <= CACHE_TOKEN_MAX ? { token, digest: undefined, verified } : { token: undefined, digest: digestOf(token), verified });
    return verified;
  }

  private precheck(token: string, now: number): { iss: string; jti: string; iat: number; exp: number } {
    if (!/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(token)) fail("TOKEN_INVALID", "not a compact JWS");
    let header: { alg?: unknown };
    let payload: JWTPayload;
    try {
      ({ header, payload } = decodeJWT(token));
    } catch {
      fail("TOKEN_INVALID", "token cannot be decoded");
    }
    if (header.alg !== "ES256K" && header.alg !== "ES256K-R" && header.alg !== "EdDSA" && header.alg !== "Ed25519") {
      fail("TOKEN_INVALID", `signature algorithm ${String(header.alg)} is not accepted`);
    }
    const { iss, jti, iat, exp, nbf, aud } = payload as JWTPayload & { jti?: unknown };
    if (typeof iss !== "string") fail("TOKEN_INVALID", "token has no issuer DID");
    parseDid(iss); // unknown methods are refused before any resolution
    if (typeof jti !== "string" || jti.length < 8 || jti.length > 128) fail("TOKEN_INVALID", "token needs a jti of 8 to 128 characters");
    if (typeof iat !== "number" || typeof exp !== "number" || !Number.isInteger(iat) || !Number.isInteger(exp)) fail("TOKEN_INVALID", "token needs integer iat and exp");
    const audiences = Array.isArray(aud) ? aud : [aud];
    if (!audiences.includes(this.policy.audience)) fail("TOKEN_AUDIENCE", "token is not addressed to this gateway");
    if (exp - iat > this.policy.maxLifetimeSec) fail("TOKEN_LIFETIME", `token lifetime exceeds ${this.policy.maxLifetimeSec} s`);
    if (exp <= iat) fail("TOKEN_INVALID", "token expires before it is issued");
    if (now > exp + this.policy.clockSkewSec) fail("TOKEN_EXPIRED", "token has expired");
    if (iat > now + this.policy.clockSkewSec) fail("TOKEN_NOT_YET_VALID", "token is issued in the future");
    if (typeof nbf === "number" && nbf > now + this.policy.clockSkewSec) fail("TOKEN_NOT_YET_VALID", "token is not valid yet");
    return { iss, jti, iat, exp };
  }

  private remember(key: string, entry: CacheEntry): void {
    // Full: drop the oldest entry (Map keeps insertion order), O(1). Expired entries are dropped
    // when they are next looked up, or age out of the front of the map.
    if (this.cache.size >= this.policy.cacheSize) {
      const first = this.cache.keys().next();
      if (!first.done) this.cache.delete(first.value);
    }
    this.cache.delete(key); // a token sharing the key is replaced, and the new one goes to the back
    this.cache.set(key, entry);
  }
}
