/** The verified-token cache: what it is keyed by, and that it never answers for a token it did not verify. */
import { describe, expect, it } from "vitest";
import { ES256KSigner, createJWT } from "did-jwt";
import { Resolver, type Resolvable } from "did-resolver";
import KeyResolver from "key-did-resolver";
import { Wallet, getBytes } from "ethers";
import { secp256k1DidKey } from "../../core/did.js";
import { TokenVerifier } from "../../gateway/auth/tokens.js";

const AUD = "did:key:zQ3shgateway";

function countingResolver(): { resolver: Resolvable; calls: () => number } {
  const inner = new Resolver({ ...KeyResolver.getResolver() });
  let n = 0;
  return { resolver: { resolve: (did: string, options?: never) => (n++, inner.resolve(did, options)) } as Resolvable, calls: () => n };
}

async function token(wallet: { privateKey: string; signingKey: { publicKey: string } }, claims: Record<string, unknown> = {}): Promise<string> {
  const iss = secp256k1DidKey(wallet.signingKey.publicKey);
  const t = Math.floor(Date.now() / 1000);
  return createJWT({ aud: AUD, iat: t, exp: t + 120, jti: `jti-${Math.random().toString(36).slice(2)}`, ...claims }, { issuer: iss, signer: ES256KSigner(getBytes(wallet.privateKey)) }, { alg: "ES256K" });
}

describe("TokenVerifier cache", () => {
  it("verifies a token once and serves it from the cache after; short tokens by value, long ones by hash", async () => {
    const { resolver, calls } = countingResolver();
    const v = new TokenVerifier(resolver, { audience: AUD, maxLifetimeSec: 300, clockSkewSec: 30, cacheSize: 100 });
    const w = Wallet.createRandom();
    const short = await token(w);
    const long = await token(w, { pad: "x".repeat(3_000) });
    expect(short.length).toBeLessThanOrEqual(1024);
    expect(long.length).toBeGreaterThan(1024);
    for (const t of [short, long]) {
      const first = await v.verify(t);
      const before = calls();
      expect(await v.verify(t)).toBe(first);
      expect(calls()).toBe(before);
    }
    // keyed by the signature's last 64 characters; the short token kept whole, the long one as its digest
    const cache = (v as unknown as { cache: Map<string, { token?: string; digest?: string }> }).cache;
    expect([...cache.keys()]).toEqual([short.slice(-64), long.slice(-64)]);
    expect(cache.get(short.slice(-64))?.token).toBe(short);
    expect(cache.get(long.slice(-64))).toMatchObject({ token: undefined, digest: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/) });
  });

  it("does not take a token with a changed payload and the same signature for a cached one", async () => {
    const { resolver } = countingResolver();
    const v = new TokenVerifier(resolver, { audience: AUD, maxLifetimeSec: 300, clockSkewSec: 30, cacheSize: 100 });
    const w = Wallet.createRandom();
    for (const pad of ["", "y".repeat(3_000)]) {
      const good = await token(w, pad ? { pad } : {});
      await v.verify(good);
      const [h, p, s] = good.split(".");
      const claims = JSON.parse(Buffer.from(p!, "base64url").toString("utf8")) as Record<string, unknown>;
      const forged = [h, Buffer.from(JSON.stringify({ ...claims, jti: `${String(claims["jti"])}x` })).toString("base64url"), s].join(".");
      await expect(v.verify(forged)).rejects.toMatchObject({ code: "TOKEN_INVALID" });
      // same cache key (the signature's tail), another token: neither served for it nor displacing it
      expect(v.cached(forged)).toBeUndefined();
      expect(v.cached(good)).toBeDefined();
    }
  });

  it("answers synchronously only for a token it verified, until that token expires", async () => {
    const { resolver } = countingResolver();
    let now = Math.floor(Date.now() / 1000);
    const v = new TokenVerifier(resolver, { audience: AUD, maxLifetimeSec: 300, clockSkewSec: 30, cacheSize: 100 }, () => now);
    const t = await token(Wallet.createRandom());
    expect(v.cached(t)).toBeUndefined();
    const verified = await v.verify(t);
    expect(v.cached(t)).toBe(verified);
    expect(v.cached(`${t}x`)).toBeUndefined();
    // past exp (120 s, from a clock that may have ticked once since `now`) and the skew (30 s)
    now += 160;
    expect(() => v.cached(t)).toThrow(expect.objectContaining({ code: "TOKEN_EXPIRED" }));
    await expect(v.verify(t)).rejects.toMatchObject({ code: "TOKEN_EXPIRED" });
    expect(() => v.cached("")).toThrow(expect.objectContaining({ code: "UNAUTHENTICATED" }));
    expect(() => v.cached("x".repeat(9_000))).toThrow(expect.objectContaining({ code: "TOKEN_INVALID" }));
  });
});
