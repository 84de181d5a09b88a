import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { InjectOptions } from "fastify";
import { Wallet } from "ethers";
import { sampleRecords, startTestGateway, type Identity, type TestGateway } from "./harness.js";
import { gatewayConfig, gatewayConfigFromEnv } from "../../gateway/config.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("gateway security: tokens, roles, hostile input", () => {
  let g: TestGateway;
  let partner: Identity;
  let auditor: Identity;
  let admin: Identity;
  let customer: Identity;

  beforeAll(async () => {
    g = await startTestGateway();
    partner = await g.partner(["profiling"], ["transactions"]);
    auditor = await g.member("AUDITOR");
    admin = await g.member("ADMIN");
    customer = await g.customer();
    await g.ingest(sampleRecords(customer.address!));
  });
  afterAll(async () => g?.close());

  async function withToken(token: string, url = "/v1/me", method: "GET" | "POST" = "GET", payload?: unknown) {
    const res = await g.app.inject({ method, url, headers: { authorization: `Bearer ${token}` }, ...(payload === undefined ? {} : { payload: payload as never }) });
    return { status: res.statusCode, body: res.json() as Json };
  }

  describe("token attacks", () => {
    const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString("base64url");

    it("accepts a well-formed token from did:ethr, secp256k1 did:key and Ed25519 did:key", async () => {
      for (const id of [customer, await g.customerDidKey(), g.ed25519()]) {
        const r = await withToken(await id.token());
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body.did).toBe(id.did);
      }
    });

    it("rejects a missing or malformed Authorization header", async () => {
      const none = await g.app.inject({ method: "GET", url: "/v1/me" });
      expect(none.statusCode).toBe(401);
      expect(none.json().code).toBe("UNAUTHENTICATED");
      const basic = await g.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Basic dXNlcjpwYXNz" } });
      expect(basic.json().code).toBe("UNAUTHENTICATED");
    });

    it("rejects unsigned (alg none) tokens", async () => {
      const t = await customer.token();
      const [, payload] = t.split(".");
      for (const forged of [`${b64({ alg: "none", typ: "JWT" })}.${payload}.`, `${b64({ alg: "none", typ: "JWT" })}.${payload}.AAAA`, `${b64({ alg: "HS256", typ: "JWT" })}.${payload}.AAAA`]) {
        const r = await withToken(forged);
        expect(r.status).toBe(401);
        expect(r.body.code).toBe("TOKEN_INVALID");
      }
    });

    it("rejects a token signed by a key that is not the DID's", async () => {
      const r = await withToken(await customer.token({ signWith: Wallet.createRandom() }));
      expect(r.status).toBe(401);
      expect(r.body.code).toBe("TOKEN_INVALID");
    });

    it("rejects a payload altered after signing", async () => {
      const t = await customer.token();
      const [h, p, s] = t.split(".");
      const claims = JSON.parse(Buffer.from(p!, "base64url").toString());
      const altered = `${h}.${b64({ ...claims, iss: (await g.customer()).did })}.${s}`;
      expect((await withToken(altered)).body.code).toBe("TOKEN_INVALID");
    });

    it("rejects the wrong audience", async () => {
      const r = await withToken(await customer.token({ aud: "did:web:another-gateway.example" }));
      expect(r.status).toBe(401);
      expect(r.body.code).toBe("TOKEN_AUDIENCE");
    });

    it("rejects expired, not-yet-valid and over-long tokens", async () => {
      const now = g.nowSec();
      expect((await withToken(await customer.token({ iat: now - 400, exp: now - 200 }))).body.code).toBe("TOKEN_EXPIRED");
      expect((await withToken(await customer.token({ iat: now + 600, exp: now + 700 }))).body.code).toBe("TOKEN_NOT_YET_VALID");
      expect((await withToken(await customer.token({ nbf: now + 600 }))).body.code).toBe("TOKEN_NOT_YET_VALID");
      expect((await withToken(await customer.token({ iat: now, exp: now + 86_400 }))).body.code).toBe("TOKEN_LIFETIME");
      // within the clock-skew bound is fine
      expect((await withToken(await customer.token({ iat: now + 10, exp: now + 70 }))).status).toBe(200);
    });

    it("refuses a replayed single-use token, but lets a session token be reused until it expires", async () => {
      const once = await customer.token();
      const first = await withToken(once, "/v1/me/erasure", "POST", { message: undefined });
      expect(first.status, JSON.stringify(first.body)).not.toBe(401);
      const replay = await withToken(once, "/v1/me/erasure", "POST", {});
      expect(replay.status).toBe(401);
      expect(replay.body.code).toBe("TOKEN_REPLAYED");
      const session = await partner.token();
      for (let i = 0; i < 3; i++) expect((await withToken(session, "/v1/me")).status).toBe(200);
    });

    it("refuses two concurrent uses of one single-use token", async () => {
      const c = await g.customer();
      const t = await c.token();
      const results = await Promise.all([0, 1, 2, 3].map(() => withToken(t, "/v1/me/erasure", "POST", {})));
      expect(results.filter((r) => r.body.code === "TOKEN_REPLAYED")).toHaveLength(3);
    });

    it("rejects unknown DID methods and malformed DIDs and tokens", async () => {
      const w = Wallet.createRandom();
      const c = { ...customer, wallet: w };
      expect((await withToken(await customer.token({ iss: "did:web:evil.example" }))).body.code).toBe("DID_UNSUPPORTED");
      expect((await withToken(await customer.token({ iss: "did:ethr:0x7a69:0x1234" }))).body.code).toBe("INVALID_DID");
      expect((await withToken(await customer.token({ iss: "did:key:zzzz" }))).body.code).toBe("INVALID_DID");
      expect((await withToken(await customer.token({ iss: "not-a-did" }))).body.code).toBe("INVALID_DID");
      expect((await withToken(await customer.token({ jti: "short" }))).body.code).toBe("TOKEN_INVALID");
      for (const junk of ["", "a.b", "a.b.c.d", "....", "x".repeat(9000), "eyJ.eyJ.sig", "%%%.%%%.%%%"]) {
        const r = await withToken(junk);
        expect(r.status, junk.slice(0, 20)).toBe(401);
        expect(["TOKEN_INVALID", "UNAUTHENTICATED"]).toContain(r.body.code);
      }
      expect(c).toBeDefined();
    });

    it("does not let a DID registered as a member under another DID claim the role", async () => {
      // same key, but a did:key instead of the registered did:ethr: authenticated, yet only a customer
      const { SigningKey, concat, encodeBase58 } = await import("ethers");
      const did = `did:key:z${encodeBase58(concat([new Uint8Array([0xe7, 0x01]), SigningKey.computePublicKey(auditor.wallet!.privateKey, true)]))}`;
      const me = await withToken(await auditor.token({ iss: did }), "/v1/me");
      expect(me.status).toBe(200);
      expect(me.body).toMatchObject({ did, role: "CUSTOMER", account: auditor.address });
    });
  });

  describe("authorization matrix: every role on every endpoint", () => {
    type Role = "CUSTOMER" | "PARTNER" | "AUDITOR" | "GATEWAY" | "ADMIN";
    const ALL: Role[] = ["CUSTOMER", "PARTNER", "AUDITOR", "GATEWAY", "ADMIN"];
    const endpoints: { method: "GET" | "POST"; url: () => string; body?: (caller: Identity) => unknown; allowed: Role[] }[] = [
      { method: "GET", url: () => "/v1/me", allowed: ALL },
      { method: "GET", url: () => "/v1/me/consents", allowed: ALL },
      { method: "GET", url: () => "/v1/me/accesses", allowed: ALL },
      { method: "POST", url: () => "/v1/consents", body: (caller) => ({ action: "revoke", message: { subject: caller.address, partner: partner.address, purpose: 1, nonce: 0, deadline: 1 }, signature: `0x${"11".repeat(65)}` }), allowed: ALL },
      { method: "POST", url: () => "/v1/me/commitments", body: (caller) => ({ message: { subject: caller.address, commitment: `0x${"22".repeat(32)}`, nonce: "0", deadline: 1 }, signature: `0x${"11".repeat(65)}` }), allowed: ALL },
      { method: "POST", url: () => "/v1/data/query", body: () => ({ subjects: [customer.address], purpose: "profiling", categories: ["transactions"] }), allowed: ["PARTNER"] },
      { method: "GET", url: () => `/v1/data/${customer.address}?purpose=profiling&categories=transactions`, allowed: ["PARTNER"] },
      { method: "POST", url: () => "/v1/vault/records", body: () => [], allowed: ["GATEWAY", "ADMIN"] },
      { method: "POST", url: () => "/v1/segmentations", body: () => ({ purpose: "profiling" }), allowed: ["PARTNER"] },
      { method: "GET", url: () => "/v1/me/decisions", allowed: ALL },
      { method: "GET", url: () => "/v1/me/data", allowed: ALL },
      { method: "POST", url: () => "/v1/me/erasure", body: () => ({}), allowed: ALL },
      { method: "GET", url: () => "/v1/audit/logs", allowed: ALL },
      { method: "GET", url: () => "/v1/audit/logs/access/checkpoints", allowed: ALL },
      { method: "GET", url: () => "/v1/audit/logs/access/entries?start=0&end=1", allowed: ["AUDITOR", "ADMIN"] },
      { method: "GET", url: () => "/v1/audit/logs/access/proofs/inclusion?index=0&size=1", allowed: ["AUDITOR", "ADMIN"] },
      { method: "GET", url: () => "/v1/audit/logs/access/proofs/consistency?from=1&to=1", allowed: ALL },
    ];

    it("answers FORBIDDEN exactly where a role is not allowed, and never 401/403 where it is", async () => {
      // make sure the logs are non-empty so range endpoints have something to answer
      await g.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${await partner.token()}` }, payload: { subjects: [customer.address], purpose: "profiling", categories: ["transactions"] } });
      const who: Record<Role, Identity> = { CUSTOMER: await g.customer(), PARTNER: partner, AUDITOR: auditor, GATEWAY: g.operator, ADMIN: admin };
      const matrix: string[] = [];
      for (const ep of endpoints) {
        for (const role of ALL) {
          const res = await g.app.inject({ method: ep.method, url: ep.url(), headers: { authorization: `Bearer ${await who[role].token()}` }, ...(ep.body ? { payload: ep.body(who[role]) as never } : {}) });
          const code = (res.json() as Json).code;
          if (ep.allowed.includes(role)) {
            expect([401, 403].includes(res.statusCode) && code !== "FORBIDDEN" ? code : res.statusCode === 403 && code === "FORBIDDEN" ? "FORBIDDEN" : "ok", `${role} ${ep.method} ${ep.url()} -> ${res.statusCode} ${res.body}`).toBe("ok");
          } else {
            expect(res.statusCode, `${role} ${ep.method} ${ep.url()}`).toBe(403);
            expect(code).toBe("FORBIDDEN");
          }
          matrix.push(`${role}:${ep.method} ${ep.url().split("?")[0]}=${res.statusCode}`);
        }
      }
      expect(matrix).toHaveLength(endpoints.length * ALL.length);
    });

    it("covers every authenticated route the gateway publishes in its OpenAPI document", async () => {
      const doc = (await g.app.inject({ method: "GET", url: "/docs/json" })).json() as { paths: Record<string, Record<string, { security?: unknown[] }>> };
      const published = Object.entries(doc.paths).flatMap(([path, ops]) =>
        Object.entries(ops)
          .filter(([, op]) => !Array.isArray(op.security) || op.security.length > 0)
          .map(([method]) => `${method.toUpperCase()} ${path.replace(/\{[^}]+\}/g, ":p")}`),
      );
      const tested = new Set(endpoints.map((e) => `${e.method} ${e.url().split("?")[0]!.replace(/0x[0-9a-fA-F]{40}/, ":p").replace(/\/logs\/access\//, "/logs/:p/")}`));
      expect(published.filter((r) => !tested.has(r)).sort()).toEqual([]);
    });

    it("keeps a deactivated partner out at the ledger check (and logs the denial), even with a cached token", async () => {
      const p = await g.partner(["profiling"], ["transactions"]);
      const c = await g.customer();
      await g.ingest(sampleRecords(c.address!));
      await g.grant(c, p, "profiling", ["transactions"]);
      const token = await p.token();
      const q = { subjects: [c.address], purpose: "profiling", categories: ["transactions"] };
      const ok = await withToken(token, "/v1/data/query", "POST", q);
      expect(ok.body.results[0].decision).toBe("allow");
      await g.admin.deactivateMember(p.address!);
      const after = await withToken(token, "/v1/data/query", "POST", q);
      // the role check may still see the cached member; the decision, made on a fresh ledger
      // view, refuses and the refusal is on the record
      expect(after.status).toBe(200);
      expect(after.body.results[0]).toMatchObject({ decision: "deny", reason: "PARTNER_INACTIVE" });
      expect(after.body.results[0].data).toBeUndefined();
    });
  });

  it("sends the security headers on every answer: success, refusal, error and unknown route", async () => {
    const answers = [
      await g.app.inject({ method: "GET", url: "/health" }),
      await g.app.inject({ method: "GET", url: "/v1/me" }),
      await g.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: "Bearer not.a.jwt" } }),
      await g.app.inject({ method: "GET", url: "/no/such/route" }),
      await g.app.inject({ method: "GET", url: "/v1/me/consents", headers: { authorization: `Bearer ${await partner.token()}` } }),
    ];
    expect(answers.map((a) => a.statusCode)).toEqual([200, 401, 401, 404, 200]);
    for (const a of answers) {
      expect(a.headers).toMatchObject({
        "cache-control": "no-store",
        "content-security-policy": "frame-ancestors 'none'",
        "x-content-type-options": "nosniff",
        "x-frame-options": "DENY",
        "strict-transport-security": "max-age=31536000; includeSubDomains",
      });
      // the HTML-page headers and the rate-limit budget stay off JSON answers
      for (const h of ["referrer-policy", "cross-origin-resource-policy", "x-ratelimit-limit", "x-ratelimit-remaining", "retry-after"]) expect(a.headers[h], h).toBeUndefined();
    }
    // the OpenAPI explorer is an HTML page: it keeps its referrer and resources to itself too
    const page = await g.app.inject({ method: "GET", url: "/docs/" });
    expect(page.statusCode).toBe(200);
    expect(page.headers["content-type"]).toMatch(/text\/html/);
    expect(page.headers).toMatchObject({ "cache-control": "no-store", "x-frame-options": "DENY", "referrer-policy": "no-referrer", "cross-origin-resource-policy": "same-origin" });
  });

  describe("hostile input", () => {
    it("answers coded errors for bad bodies, sizes, types and routes, never a stack", async () => {
      const t = await partner.token();
      const cases: { req: InjectOptions; status: number; code: string }[] = [
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, payload: "{not json" }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}` }, payload: { subjects: ["0x123"], purpose: "profiling", categories: ["transactions"] } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}` }, payload: { subjects: [customer.address], purpose: "selling", categories: ["transactions"] } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}` }, payload: { subjects: [customer.address], purpose: "profiling", categories: [] } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}` }, payload: { subjects: [customer.address], purpose: "profiling", categories: ["transactions"], extra: 1 } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}` }, payload: { subjects: Array(1001).fill(customer.address), purpose: "profiling", categories: ["transactions"] } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}`, "content-type": "application/json" }, payload: JSON.stringify({ subjects: [customer.address], purpose: "profiling", categories: ["transactions"], pad: "x".repeat(2 * 1024 * 1024) }) }, status: 413, code: "PAYLOAD_TOO_LARGE" },
        { req: { method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${t}`, "content-type": "application/xml" }, payload: "<a/>" }, status: 415, code: "UNSUPPORTED_MEDIA_TYPE" },
        { req: { method: "GET", url: "/v1/data/0xnothex?purpose=profiling&categories=transactions", headers: { authorization: `Bearer ${t}` } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "GET", url: `/v1/data/${customer.address}?purpose=profiling&categories=dna`, headers: { authorization: `Bearer ${t}` } }, status: 400, code: "INVALID_CATEGORIES" },
        { req: { method: "GET", url: "/v1/nope" }, status: 404, code: "NOT_FOUND" },
        { req: { method: "GET", url: "/v1/audit/logs/secret/checkpoints", headers: { authorization: `Bearer ${t}` } }, status: 400, code: "BAD_REQUEST" },
        { req: { method: "GET", url: "/v1/audit/logs/access/proofs/consistency?from=5&to=999999", headers: { authorization: `Bearer ${t}` } }, status: 400, code: "PROOF_INVALID_SIZE" },
        { req: { method: "GET", url: "/v1/audit/logs/access/proofs/consistency?from=-1&to=2", headers: { authorization: `Bearer ${t}` } }, status: 400, code: "BAD_REQUEST" },
      ];
      for (const c of cases) {
        const res = await g.app.inject(c.req);
        expect(res.statusCode, `${c.req.method} ${c.req.url}: ${res.body.slice(0, 200)}`).toBe(c.status);
        const body = res.json() as Json;
        expect(body.code).toBe(c.code);
        expect(Object.keys(body).sort()).toEqual(["code", "message"]);
        expect(res.body).not.toMatch(/at .*\.(ts|js):\d+/);
      }
    });

    it("rejects CSV uploads without a layout and bad CSV rows with line numbers, storing nothing", async () => {
      const op = g.operator;
      const noKind = await g.app.inject({ method: "POST", url: "/v1/vault/records", headers: { authorization: `Bearer ${await op.token()}`, "content-type": "text/csv" }, payload: "subject,id\n" });
      expect(noKind.json().code).toBe("BAD_REQUEST");
      const c = await g.customer();
      const csv = `subject,id,at,amount,currency,category,channel\n${c.address},t1,1700000000,12.5,EUR,grocery,online\n${c.address},t2,1700000000,-3,EUR,grocery,online\n`;
      const bad = await g.app.inject({ method: "POST", url: "/v1/vault/records?kind=transactions", headers: { authorization: `Bearer ${await op.token()}`, "content-type": "text/csv" }, payload: csv });
      expect(bad.statusCode).toBe(400);
      expect(bad.json().code).toBe("INVALID_ARGUMENT");
      expect(await g.rt.deps.vault.status(c.address!)).toBe("unknown");
      const good = await g.app.inject({ method: "POST", url: "/v1/vault/records?kind=transactions", headers: { authorization: `Bearer ${await op.token()}`, "content-type": "text/csv" }, payload: csv.replace("-3", "3") });
      expect(good.statusCode, good.body).toBe(200);
      expect(await g.rt.deps.vault.status(c.address!)).toBe("active");
    });

    it("rate-limits failed authentications per client address, before any token work", async () => {
      const small = await startTestGateway({ config: { authFailureLimit: 5 } });
      try {
        const c = await small.customer();
        for (let i = 0; i < 5; i++) {
          const r = await small.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer junk.${i}.token` } });
          expect(r.json().code).toBe("TOKEN_INVALID");
        }
        const blocked = await small.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${await c.token()}` } });
        expect(blocked.statusCode).toBe(429);
        expect(blocked.json().code).toBe("RATE_LIMITED");
        // the window is the rate-limit window (60 s by default): come back when it ends
        expect(Number(blocked.headers["retry-after"])).toBeGreaterThan(50);
        expect(Number(blocked.headers["retry-after"])).toBeLessThanOrEqual(60);
        expect(blocked.headers["x-ratelimit-limit"]).toBe("5");
        // another address is unaffected
        const elsewhere = await small.app.inject({ method: "GET", url: "/v1/me", remoteAddress: "10.9.8.7", headers: { authorization: `Bearer ${await c.token()}` } });
        expect(elsewhere.statusCode).toBe(200);
      } finally {
        await small.close();
      }
    });

    it("rate-limits unauthenticated routes per client address", async () => {
      const small = await startTestGateway({ config: { rateLimitMax: 3, rateLimitWindowMs: 60_000 } });
      try {
        const codes: number[] = [];
        for (let i = 0; i < 4; i++) codes.push((await small.app.inject({ method: "GET", url: "/health" })).statusCode);
        expect(codes).toEqual([200, 200, 200, 429]);
        expect((await small.app.inject({ method: "GET", url: "/health", remoteAddress: "10.9.8.7" })).statusCode).toBe(200);
      } finally {
        await small.close();
      }
    });

    it("behind a trusted proxy, counts each client X-Forwarded-For names; from anyone else, the header changes nothing", async () => {
      const small = await startTestGateway({ config: { rateLimitMax: 2, rateLimitWindowMs: 60_000, trustedProxies: ["10.0.0.0/24"] } });
      try {
        const from = (remoteAddress: string, client: string): Promise<number> =>
          small.app.inject({ method: "GET", url: "/health", remoteAddress, headers: { "x-forwarded-for": client } }).then((r) => r.statusCode);
        // two clients through the proxy: a budget each
        expect([await from("10.0.0.1", "198.51.100.1"), await from("10.0.0.7", "198.51.100.1"), await from("10.0.0.1", "198.51.100.1")]).toEqual([200, 200, 429]);
        expect(await from("10.0.0.1", "198.51.100.2")).toBe(200);
        // a caller that is not a trusted proxy does not choose its address by the header
        expect([await from("203.0.113.9", "198.51.100.3"), await from("203.0.113.9", "198.51.100.4"), await from("203.0.113.9", "198.51.100.5")]).toEqual([200, 200, 429]);
      } finally {
        await small.close();
      }
    });

    it("takes trusted proxies as addresses or CIDR ranges, and refuses anything else at start", () => {
      expect(gatewayConfig(gatewayConfigFromEnv({ CUSTODIA_TRUSTED_PROXIES: " 10.0.0.1, 10.1.0.0/16 ,fd00::/8,::1,::ffff:10.0.0.0/104" })).trustedProxies).toEqual(["10.0.0.1", "10.1.0.0/16", "fd00::/8", "::1", "::ffff:10.0.0.0/104"]);
      expect(gatewayConfig().trustedProxies).toEqual([]);
      for (const bad of ["proxy.example", "10.0.0.0/33", "fd00::/129", "10.0.0.0/8/1", "10.0.0.0/x", "", "10.0.0.256", "0.0.0.0/0", "::/0", "::ffff:10.0.0.0/8"]) {
        expect(() => gatewayConfig({ trustedProxies: [bad] }), bad).toThrow(/trusted proxies must be IP addresses or CIDR ranges/);
      }
    });

    it("rate-limits per principal", async () => {
      const small = await startTestGateway({ config: { rateLimitMax: 5, rateLimitWindowMs: 60_000 } });
      try {
        const c = await small.customer();
        const other = await small.customer();
        const codes: number[] = [];
        for (let i = 0; i < 7; i++) codes.push((await small.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${await c.token()}` } })).statusCode);
        expect(codes.slice(0, 5).every((s) => s === 200)).toBe(true);
        const limited = await small.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${await c.token()}` } });
        expect(limited.statusCode).toBe(429);
        expect(limited.json().code).toBe("RATE_LIMITED");
        expect(limited.headers).toMatchObject({ "x-ratelimit-limit": "5", "x-ratelimit-remaining": "0" });
        expect(Number(limited.headers["retry-after"])).toBeGreaterThan(50);
        expect(Number(limited.headers["retry-after"])).toBeLessThanOrEqual(60);
        expect((await small.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${await other.token()}` } })).statusCode).toBe(200);
      } finally {
        await small.close();
      }
    });
  });
});
