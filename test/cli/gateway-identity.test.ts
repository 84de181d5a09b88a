import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { ES256KSigner, createJWT, decodeJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IDENTITY_PROOF_TYP, canonicalGatewayUrl, isLoopbackPeer, loopbackUrls } from "../../core/gateway-url.js";
import { isCustodiaError } from "../../core/errors.js";
import { GatewayClient } from "../../cli/gateway-http.js";
import { identityProblem, identityQuestion } from "../../cli/gateway-identity.js";
import { EXIT } from "../../cli/io.js";
import { runCli } from "../../cli/main.js";
import { newWallet } from "../../cli/wallet-store.js";
import { captureIo, writeWallet } from "./audit/support.js";
import { gatewayConfig, gatewayConfigFromEnv } from "../../gateway/config.js";
import { CHAIN_ID, startTestGateway, type TestGateway } from "../gateway/harness.js";

/**
 * A tool signs tokens for the DID a gateway's /health names only once the server it talks to has
 * proved it holds that DID's key for the tool's address. Impostors here are real HTTP servers on
 * 127.0.0.1 in front of a real gateway: a relay, a relay that asks in the real gateway's name,
 * one signing with a key of its own, and one replaying a proof it was given earlier.
 */

interface Seen {
  path: string;
  authorization: string | undefined;
}

interface Relay {
  url: string;
  seen: Seen[];
  close(): Promise<void>;
}

/** What a relay answers itself instead of forwarding. */
interface Reply {
  status?: number;
  body: unknown;
}

/** An HTTP server forwarding to `upstream` (headers included); `mapPath` rewrites the path, `answer` answers instead. */
async function relay(upstream: string, hooks: { mapPath?: (path: string, self: string) => string; answer?: (path: string) => Reply | undefined | Promise<Reply | undefined> } = {}): Promise<Relay> {
  const seen: Seen[] = [];
  let self = "";
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = req.url ?? "/";
      seen.push({ path, authorization: req.headers.authorization });
      const replaced = await hooks.answer?.(path);
      if (replaced !== undefined) {
        res.writeHead(replaced.status ?? 200, { "content-type": "application/json" }).end(JSON.stringify(replaced.body));
        return;
      }
      const headers: Record<string, string> = {};
      if (req.headers.authorization) headers["authorization"] = req.headers.authorization;
      const up = await fetch(`${upstream}${hooks.mapPath ? hooks.mapPath(path, self) : path}`, { headers });
      res.writeHead(up.status, { "content-type": "application/json" }).end(await up.text());
    })().catch((e: unknown) => res.writeHead(502).end(JSON.stringify({ code: "INTERNAL", message: String(e) })));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  self = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url: self,
    seen,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string }> {
  try {
    await p;
  } catch (e) {
    if (isCustodiaError(e)) return { code: e.code, message: e.message };
    throw e;
  }
  throw new Error("expected a refusal");
}

describe("the gateway's identity proof", () => {
  let g: TestGateway;
  let gatewayUrl: string;
  const relays: Relay[] = [];
  const wallet = newWallet("ethr", CHAIN_ID);
  const start = async (hooks?: Parameters<typeof relay>[1]): Promise<Relay> => {
    const r = await relay(gatewayUrl, hooks);
    relays.push(r);
    return r;
  };

  beforeAll(async () => {
    // public URLs turn loopback proofs off by default; this gateway keeps them to test both kinds
    g = await startTestGateway({ config: { publicUrls: ["https://Gateway.Bank.example:443/custodia/"], loopbackIdentity: true } });
    gatewayUrl = await g.rt.listen();
  });

  afterAll(async () => {
    for (const r of relays) await r.close();
    await g?.close();
  });

  it("signs the nonce and the address asked, for its own addresses only", async () => {
    const signed = async (url: string, request: { remoteAddress?: string; headers?: Record<string, string> } = {}): Promise<number> => {
      const q = identityQuestion(url);
      // the Host a client sends for that address, unless the case says otherwise
      const res = await g.app.inject({ method: "GET", url: q.path, remoteAddress: request.remoteAddress ?? "127.0.0.1", headers: { host: new URL(q.url).host, ...request.headers } });
      if (res.statusCode !== 200) {
        expect(res.json(), url).toMatchObject({ code: "INVALID_ARGUMENT", message: expect.stringMatching(/does not serve .*CUSTODIA_PUBLIC_URL/) });
        return res.statusCode;
      }
      const body = res.json() as { did: string; url: string; proof: string };
      expect(body.did).toBe(g.rt.did);
      expect(body.url).toBe(q.url);
      expect(identityProblem(body, q, g.rt.did)).toBeNull();
      const proof = decodeJWT(body.proof);
      expect(proof.header).toMatchObject({ alg: "ES256K", typ: IDENTITY_PROOF_TYP });
      expect(proof.payload).toMatchObject({ iss: g.rt.did, aud: q.url, nonce: q.nonce });
      expect(proof.payload.exp! - proof.payload.iat!).toBe(60);
      return 200;
    };
    const port = new URL(gatewayUrl).port;
    // its listening address, asked over loopback; its configured public URL, asked from anywhere
    expect(await signed(gatewayUrl)).toBe(200);
    expect(await signed(`${gatewayUrl}/`)).toBe(200);
    expect(await signed("https://gateway.bank.example/custodia")).toBe(200);
    expect(await signed("https://gateway.bank.example/custodia", { remoteAddress: "203.0.113.5" })).toBe(200);
    // a loopback address names another server on every machine: not for a question from elsewhere,
    // nor one a proxy passed on
    expect(await signed(gatewayUrl, { remoteAddress: "203.0.113.5" })).toBe(400);
    expect(await signed(gatewayUrl, { headers: { "x-forwarded-for": "203.0.113.5" } })).toBe(400);
    for (const header of ["forwarded", "x-real-ip", "via", "x-forwarded-host", "x-forwarded-proto"]) {
      expect(await signed(gatewayUrl, { headers: { [header]: "x" } }), header).toBe(400);
    }
    // sent to another name than the one asked about: a proxy passing on a question for its own host
    expect(await signed(gatewayUrl, { headers: { host: "gateway.bank.example" } })).toBe(400);
    // bound on 127.0.0.1 only: "localhost" may resolve to ::1, where another process may listen
    expect(await signed(`http://localhost:${port}`)).toBe(400);
    const named = await g.app.inject({ method: "GET", url: identityQuestion(`http://localhost:${port}`).path, headers: { host: `localhost:${port}` } });
    expect((named.json() as { message: string }).message).toContain(`on this machine it answers at ${gatewayUrl}`);
    const remote = await g.app.inject({ method: "GET", url: identityQuestion(`http://localhost:${port}`).path, remoteAddress: "203.0.113.5", headers: { host: `localhost:${port}` } });
    expect((remote.json() as { message: string }).message).not.toContain("on this machine");
    for (const url of ["http://127.0.0.1:1", "https://gateway.bank.example", "http://gateway.bank.example/custodia", "https://gateway.bank.example/Custodia"]) {
      expect(await signed(url), url).toBe(400);
    }
  });

  it("refuses malformed questions with a code", async () => {
    const nonce = "ab".repeat(16);
    // the schema refuses a malformed question (BAD_REQUEST); the gateway, an address that is none (INVALID_ARGUMENT)
    for (const [query, why, code] of [
      [`url=${encodeURIComponent(gatewayUrl)}&nonce=${"ab".repeat(15)}`, "a short nonce", "BAD_REQUEST"],
      [`url=${encodeURIComponent(gatewayUrl)}&nonce=${"AB".repeat(16)}`, "an uppercase nonce", "BAD_REQUEST"],
      [`url=${encodeURIComponent(gatewayUrl)}&nonce=${"ab".repeat(65)}`, "a long nonce", "BAD_REQUEST"],
      [`url=${encodeURIComponent(gatewayUrl)}`, "no nonce", "BAD_REQUEST"],
      [`nonce=${nonce}`, "no url", "BAD_REQUEST"],
      [`url=${"a".repeat(2049)}&nonce=${nonce}`, "a long url", "BAD_REQUEST"],
      [`url=ftp%3A%2F%2Fx&nonce=${nonce}`, "another scheme", "INVALID_ARGUMENT"],
      [`url=${encodeURIComponent(`${gatewayUrl}/?a=1`)}&nonce=${nonce}`, "a query", "INVALID_ARGUMENT"],
      [`url=${encodeURIComponent("http://u:p@127.0.0.1:1")}&nonce=${nonce}`, "credentials", "INVALID_ARGUMENT"],
      [`url=not-a-url&nonce=${nonce}`, "not a URL", "INVALID_ARGUMENT"],
    ] as const) {
      const res = await g.app.inject({ method: "GET", url: `/v1/gateway/identity?${query}` });
      expect(res.statusCode, why).toBe(400);
      expect((res.json() as { code: string }).code, why).toBe(code);
    }
  });

  it("a tool checks it once, then signs its tokens, also behind a proxy serving it under a path", async () => {
    // the operator's own proxy, serving the gateway under /custodia
    const seen = await start({ mapPath: (path) => path.replace(/^\/custodia/i, "") });
    g.rt.addPublicUrl(`${seen.url}/custodia/`);
    const client = new GatewayClient(`${seen.url}/custodia/`, { wallet });
    await client.myConsents();
    await client.myConsents();
    expect(seen.seen.filter((s) => s.path.startsWith("/custodia/v1/gateway/identity"))).toHaveLength(1);
    expect(seen.seen.filter((s) => s.authorization !== undefined)).toHaveLength(2);
    // the same proxy under another path is another address
    const other = await refusal(new GatewayClient(`${seen.url}/Custodia`, { wallet }).myConsents());
    expect(other).toMatchObject({ code: "GATEWAY_UNVERIFIED", message: expect.stringMatching(/does not serve/) });
  });

  it("sends no token to a relay the gateway does not serve", async () => {
    const impostor = await start();
    const e = await refusal(new GatewayClient(impostor.url, { wallet }).myConsents());
    expect(e.code).toBe("GATEWAY_UNVERIFIED");
    expect(e.message).toMatch(/does not serve/);
    expect(impostor.seen.map((s) => s.path.split("?")[0])).toEqual(["/health", "/v1/gateway/identity"]);
    expect(impostor.seen.every((s) => s.authorization === undefined)).toBe(true);
  });

  it("sends no token to a relay that asks in the real gateway's name", async () => {
    const impostor = await start({ mapPath: (path, self) => path.replace(encodeURIComponent(self), encodeURIComponent(gatewayUrl)) });
    const e = await refusal(new GatewayClient(impostor.url, { wallet }).myConsents());
    expect(e.code).toBe("GATEWAY_UNVERIFIED");
    expect(e.message).toContain(`its proof is for ${gatewayUrl}`);
    expect(impostor.seen.every((s) => s.authorization === undefined)).toBe(true);
  });

  it("sends no token to a server signing with a key of its own, nor to one replaying a proof", async () => {
    const own = Wallet.createRandom();
    const forger = await start({
      answer: (path) => {
        if (!path.startsWith("/v1/gateway/identity")) return undefined;
        const q = new URL(path, "http://x").searchParams;
        const now = Math.floor(Date.now() / 1000);
        return createJWT({ aud: q.get("url") ?? "", nonce: q.get("nonce"), iat: now, exp: now + 60 }, { issuer: g.rt.did, signer: ES256KSigner(getBytes(own.privateKey)) }, { alg: "ES256K", typ: IDENTITY_PROOF_TYP as "JWT" }).then((proof) => ({ body: { did: g.rt.did, proof } }));
      },
    });
    const forged = await refusal(new GatewayClient(forger.url, { wallet }).myConsents());
    expect(forged).toMatchObject({ code: "GATEWAY_UNVERIFIED", message: expect.stringMatching(/not signed by that DID's key/) });

    // a proof the real gateway gave for this very address earlier, replayed
    let captured: unknown;
    const replayer = await start({ answer: (path) => (path.startsWith("/v1/gateway/identity") && captured !== undefined ? { body: captured } : undefined) });
    g.rt.addPublicUrl(replayer.url);
    const q = identityQuestion(replayer.url);
    captured = (await g.app.inject({ method: "GET", url: q.path, headers: { host: new URL(q.url).host } })).json();
    expect(identityProblem(captured, q, g.rt.did)).toBeNull(); // a good proof, for its own question
    const replayed = await refusal(new GatewayClient(replayer.url, { wallet }).myConsents());
    expect(replayed).toMatchObject({ code: "GATEWAY_UNVERIFIED", message: expect.stringMatching(/another question \(nonce\)/) });
    for (const r of [forger, replayer]) expect(r.seen.every((s) => s.authorization === undefined)).toBe(true);
  });

  it("tells a gateway that cannot be asked now from one that will not prove who it is", async () => {
    const answering = (status: number, body: unknown): Promise<Relay> => start({ answer: (path) => (path.startsWith("/v1/gateway/identity") ? { status, body } : undefined) });
    const cases: [number, unknown, string, RegExp][] = [
      [429, { code: "RATE_LIMITED", message: "slow down" }, "RATE_LIMITED", /slow down/],
      [503, { code: "LEDGER_UNAVAILABLE", message: "down" }, "LEDGER_UNAVAILABLE", /down/],
      [502, "bad gateway", "GATEWAY_UNAVAILABLE", /HTTP 502/],
      [404, { code: "NOT_FOUND", message: "Route GET:/v1/gateway/identity not found" }, "GATEWAY_UNVERIFIED", /no identity proof to give \(404/],
      [302, "moved", "GATEWAY_UNVERIFIED", /HTTP 302/], // a redirect is not followed
      [400, { code: "INVALID_ARGUMENT", message: "no" }, "GATEWAY_UNVERIFIED", /did not prove/],
      [200, { proof: 42 }, "GATEWAY_UNVERIFIED", /no proof in its answer/],
    ];
    for (const [status, body, code, message] of cases) {
      const r = await answering(status, body);
      expect(await refusal(new GatewayClient(r.url, { wallet }).myConsents()), String(status)).toMatchObject({ code, message: expect.stringMatching(message) });
      expect(r.seen.every((s) => s.authorization === undefined), String(status)).toBe(true);
    }
  });

  it("a command stops with GATEWAY_UNVERIFIED and exit 3", async () => {
    const dir = mkdtempSync(join(tmpdir(), "custodia-identity-"));
    try {
      const impostor = await start();
      const path = writeWallet(dir, wallet.privateKey, wallet.did);
      const io = captureIo();
      const exit = await runCli(["--gateway", impostor.url, "--data-dir", dir, "--wallet", path, "consent", "list"], io);
      expect(exit).toBe(EXIT.UNAVAILABLE);
      expect(io.err()).toMatch(/^error \[GATEWAY_UNVERIFIED\]: the server at http:\/\/127\.0\.0\.1:\d+ did not prove it is the gateway did:ethr:/);
      expect(impostor.seen.every((s) => s.authorization === undefined)).toBe(true);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("judges a proof's claims one by one", async () => {
    const q = identityQuestion(gatewayUrl);
    const good = (await g.app.inject({ method: "GET", url: q.path, headers: { host: new URL(q.url).host } })).json() as { proof: string };
    expect(identityProblem(good, q, g.rt.did)).toBeNull();
    const now = Math.floor(Date.now() / 1000);
    expect(identityProblem(good, q, g.rt.did, now + 3_600)).toMatch(/times/); // long expired
    expect(identityProblem(good, { ...q, url: "http://127.0.0.1:1" }, g.rt.did)).toMatch(/proof is for/);
    expect(identityProblem(good, q, g.operator.did.replace(/.$/, (c) => (c === "0" ? "1" : "0")))).toMatch(/issued by/);
    expect(identityProblem({ proof: "x.y.z" }, q, g.rt.did)).toMatch(/not a JWT/);
    expect(identityProblem({}, q, g.rt.did)).toMatch(/no proof/);
    expect(identityProblem(null, q, g.rt.did)).toMatch(/no proof/);
    // signed by the gateway's own key, but claiming a lifetime longer than a proof has
    const sign = (payload: Record<string, unknown>, typ = IDENTITY_PROOF_TYP): Promise<string> =>
      createJWT(payload, { issuer: g.rt.did, signer: ES256KSigner(getBytes((g.operator.wallet as Wallet).privateKey)) }, { alg: "ES256K", typ: typ as "JWT" });
    // the gateway's own key on a token of another kind (a plain JWT) is not a proof
    expect(identityProblem({ proof: await sign({ aud: q.url, nonce: q.nonce, iat: now, exp: now + 60 }, "JWT") }, q, g.rt.did)).toMatch(/another type \(JWT\)/);
    expect(identityProblem({ proof: await sign({ aud: q.url, nonce: q.nonce, iat: now, exp: now + 3_600 }) }, q, g.rt.did)).toMatch(/times/);
    expect(identityProblem({ proof: await sign({ aud: q.url, nonce: q.nonce, iat: now, exp: now + 60 }) }, q, g.rt.did)).toBeNull();
    const recoverable = await createJWT({ aud: q.url, nonce: q.nonce, iat: now, exp: now + 60 }, { issuer: g.rt.did, signer: ES256KSigner(getBytes((g.operator.wallet as Wallet).privateKey), true) }, { alg: "ES256K-R", typ: IDENTITY_PROOF_TYP as "JWT" });
    expect(identityProblem({ proof: recoverable }, q, g.rt.did)).toMatch(/ES256K-R, not ES256K/);
  });
});

describe("gateway addresses", () => {
  it("have one canonical form", () => {
    expect(canonicalGatewayUrl("HTTPS://Gateway.Example:443/a/b///")).toBe("https://gateway.example/a/b");
    expect(canonicalGatewayUrl("http://127.0.0.1:80/")).toBe("http://127.0.0.1");
    expect(canonicalGatewayUrl("http://[::1]:8080")).toBe("http://[::1]:8080");
    for (const bad of ["", "gateway.example", "ftp://x", "http://u@x", "http://x/?q=1", "http://x/#f", "javascript:alert(1)"]) {
      expect(() => canonicalGatewayUrl(bad), bad).toThrow(/not a gateway URL/);
    }
  });

  it("a listening address names what a client on this machine would use, and no more", () => {
    expect(loopbackUrls([{ address: "127.0.0.1", port: 8080 }])).toEqual(["http://127.0.0.1:8080"]);
    expect(loopbackUrls([{ address: "0.0.0.0", port: 8080 }])).toEqual(["http://127.0.0.1:8080"]);
    expect(loopbackUrls([{ address: "::1", port: 8080 }])).toEqual(["http://[::1]:8080"]);
    // both families on one port: "localhost" is this server whichever it resolves to
    expect(loopbackUrls([{ address: "127.0.0.1", port: 1 }, { address: "::1", port: 1 }])).toEqual(["http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1"]);
    expect(loopbackUrls([{ address: "::", port: 1 }])).toEqual(["http://127.0.0.1:1", "http://[::1]:1", "http://localhost:1"]);
    expect(loopbackUrls([{ address: "127.0.0.1", port: 1 }, { address: "::1", port: 2 }])).toEqual(["http://127.0.0.1:1", "http://[::1]:2"]);
    expect(loopbackUrls([{ address: "10.0.0.5", port: 8080 }])).toEqual([]);
    for (const a of ["127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"]) expect(isLoopbackPeer(a), a).toBe(true);
    for (const a of [undefined, "10.0.0.1", "::ffff:10.0.0.1", "128.0.0.1", "::2", "127.0.0.1.5", "fe80::1"]) expect(isLoopbackPeer(a), String(a)).toBe(false);
  });

  it("a gateway with public URLs proves none of its loopback addresses unless told to", async () => {
    const proxied = await startTestGateway({ config: { publicUrls: ["https://gateway.bank.example"] } });
    try {
      const url = await proxied.rt.listen();
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const e = await refusal(new GatewayClient(url, { wallet: newWallet("ethr", CHAIN_ID) }).myConsents());
      expect(e).toMatchObject({ code: "GATEWAY_UNVERIFIED", message: expect.stringMatching(/does not serve/) });
      expect(e.message).not.toContain("on this machine");
    } finally {
      await proxied.close();
    }
  });

  it("come from CUSTODIA_PUBLIC_URL, checked at start", () => {
    expect(gatewayConfig().loopbackIdentity).toBe(true);
    expect(gatewayConfig({ publicUrls: ["https://a.example"] }).loopbackIdentity).toBe(false);
    expect(gatewayConfig({ publicUrls: ["https://a.example"], loopbackIdentity: true }).loopbackIdentity).toBe(true);
    expect(gatewayConfig(gatewayConfigFromEnv({ CUSTODIA_PUBLIC_URL: "https://a.example", CUSTODIA_LOOPBACK_IDENTITY: "1" })).loopbackIdentity).toBe(true);
    expect(gatewayConfig(gatewayConfigFromEnv({ CUSTODIA_LOOPBACK_IDENTITY: "0" })).loopbackIdentity).toBe(false);
    expect(() => gatewayConfigFromEnv({ CUSTODIA_LOOPBACK_IDENTITY: "yes" })).toThrow(/must be 1 or 0/);
    // proved to anyone, a loopback address would let a relay on a client's machine pass as the gateway
    for (const loopback of ["http://127.0.0.1:8080", "http://localhost", "http://[::1]:8080", "https://127.9.9.9"]) {
      expect(() => gatewayConfig({ publicUrls: [loopback] }), loopback).toThrow(/is a loopback address/);
    }
    expect(gatewayConfig(gatewayConfigFromEnv({ CUSTODIA_PUBLIC_URL: " https://a.example/ , https://B.example:8443 " })).publicUrls).toEqual(["https://a.example", "https://b.example:8443"]);
    expect(gatewayConfig(gatewayConfigFromEnv({})).publicUrls).toEqual([]);
    expect(() => gatewayConfig(gatewayConfigFromEnv({ CUSTODIA_PUBLIC_URL: "https://a.example,gateway.example" }))).toThrow(/public URL: not a gateway URL/);
  });
});
