import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Contract, Wallet, getBytes } from "ethers";
import { ES256KSigner, createJWT } from "did-jwt";
import type { Address } from "../../core/domain.js";
import { signTyped } from "../../core/eip712.js";
import { verifyJWT } from "did-jwt";
import { Resolver } from "did-resolver";
import { getResolver as ethrResolver } from "ethr-did-resolver";
import { hashFromHex, proofFromHex, verifyConsistency, verifyInclusion } from "../../core/merkle.js";
import { fundedWallet, hardhatProvider } from "../helpers/hardhat.js";
import type { Anchorer } from "../../gateway/log/anchorer.js";
import { logIdFor } from "../../gateway/runtime.js";
import { CHAIN_ID, sampleRecords, startTestGateway, type Identity, type TestGateway } from "./harness.js";
import { Ajv } from "ajv";
import { DataResultT } from "../../gateway/schemas.js";

const validateDataResult = new Ajv({ strict: false }).compile({ ...DataResultT, additionalProperties: false, properties: { ...DataResultT.properties, receipt: { ...DataResultT.properties.receipt, additionalProperties: false } } });

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("gateway flows over HTTP (in-process chain, LevelDB on disk)", () => {
  let g: TestGateway;
  let partner: Identity;
  let auditor: Identity;

  async function call(method: "GET" | "POST", url: string, who: Identity | null, payload?: unknown): Promise<{ status: number; body: Json; headers: Record<string, unknown> }> {
    const res = await g.app.inject({ method, url, headers: who ? { authorization: `Bearer ${await who.token()}` } : {}, ...(payload === undefined ? {} : { payload: payload as never }) });
    return { status: res.statusCode, body: res.body ? (res.json() as Json) : {}, headers: res.headers };
  }

  beforeAll(async () => {
    g = await startTestGateway();
    partner = await g.partner(["profiling", "direct-marketing"], ["transactions", "demographic", "contact"]);
    auditor = await g.member("AUDITOR");
  });
  afterAll(async () => g?.close());

  it("reports health with the gateway DID and a fresh ledger view", async () => {
    const r = await call("GET", "/health", null);
    expect(r.status).toBe(200);
    expect(r.body.gateway.did).toBe(g.rt.did);
    expect(r.body.ledger.fresh).toBe(true);
  });

  it("serves an OpenAPI document listing every route", async () => {
    const r = await call("GET", "/docs/json", null);
    expect(r.status).toBe(200);
    for (const p of ["/v1/consents", "/v1/data/query", "/v1/me/accesses", "/v1/audit/logs/{log}/proofs/inclusion", "/v1/vault/records"]) expect(Object.keys(r.body.paths)).toContain(p);
  });

  it("lets a customer grant consent from a wallet signature and returns a verifiable VC-JWT receipt", async () => {
    const c = await g.customer();
    const r = await g.grant(c, partner, "profiling", ["transactions"]);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body["blockNumber"]).toBeGreaterThan(0);
    const resolver = new Resolver(ethrResolver({ networks: [{ name: `0x${CHAIN_ID.toString(16)}`, chainId: CHAIN_ID, provider: hardhatProvider() as never, registry: g.deployment.didRegistry }] }));
    const vc = await verifyJWT(r.body["receipt"] as string, { resolver });
    expect(vc.issuer).toBe(g.rt.did);
    const subject = (vc.payload as Json).vc.credentialSubject;
    expect(subject.consentRecord.piiPrincipalId).toBe(c.did);
    expect(subject.ledger.txId).toBe(r.body["txId"]);
    const mine = await call("GET", "/v1/me/consents", c);
    expect(mine.body.consents).toHaveLength(1);
    expect(mine.body.consents[0]).toMatchObject({ partner: partner.address, categories: 4, revokedAt: 0 });
  });

  it("refuses a consent whose record does not match what the wallet signed", async () => {
    const c = await g.customer();
    const gm = await g.grantMessage(c, partner.address!, "profiling", ["transactions"]);
    const tampered = { ...gm.record, piiCategories: ["transactions", "location"] };
    const r = await call("POST", "/v1/consents", c, { action: "grant", message: { ...gm.message, expiresAt: 0, deadline: Number(gm.message.deadline) }, signature: gm.signature, record: tampered });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("BAD_REQUEST");
  });

  it("refuses a customer relaying someone else's consent, and a forged signature", async () => {
    const victim = await g.customer();
    const mallory = await g.customer();
    const gm = await g.grantMessage(victim, partner.address!, "profiling", ["transactions"]);
    const asMallory = await call("POST", "/v1/consents", mallory, { action: "grant", message: { ...gm.message, expiresAt: 0, deadline: Number(gm.message.deadline) }, signature: gm.signature, record: gm.record });
    expect(asMallory.body.code).toBe("FORBIDDEN");
    const forged = await g.grantMessage(victim, partner.address!, "profiling", ["transactions"]);
    const otherSig = await (await g.grantMessage(mallory, partner.address!, "profiling", ["transactions"])).signature;
    const r = await call("POST", "/v1/consents", victim, { action: "grant", message: { ...forged.message, expiresAt: 0, deadline: Number(forged.message.deadline) }, signature: otherSig, record: forged.record });
    expect(r.status).toBe(422);
    expect(r.body.code).toBe("SIGNATURE_INVALID");
  });

  it("gives a partner exactly the consented categories, logged before the data leaves, with a provable receipt", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    expect((await g.grant(c, partner, "profiling", ["transactions", "demographic"])).status).toBe(200);
    const r = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const res = r.body.results[0];
    expect(res.decision).toBe("allow");
    expect(JSON.stringify(res.data)).toContain("grocery");
    expect(JSON.stringify(res.data)).not.toContain("@example.com"); // contact was not asked for
    expect(JSON.stringify(res.data)).not.toContain("25-34"); // demographic consented but not requested
    // the receipt is in the log, and an auditor can prove it
    const proof = await call("GET", `/v1/audit/logs/access/proofs/inclusion?index=${res.receipt.index}&size=${res.receipt.treeSize}`, auditor);
    expect(proof.status).toBe(200);
    expect(proof.body.leafHash).toBe(res.receipt.leafHash);
    verifyInclusion(res.receipt.index, res.receipt.treeSize, hashFromHex(res.receipt.leafHash), proofFromHex(proof.body.proof), hashFromHex(proof.body.root));
    const entries = await call("GET", `/v1/audit/logs/access/entries?start=${res.receipt.index}&end=${res.receipt.index + 1}`, auditor);
    expect(entries.body.entries[0].entry).toMatchObject({ kind: "access", decision: "allow", subject: c.address, partner: partner.address, purpose: "profiling", block: r.body.block });
  });

  it("answers a single-subject request with the same result as a query, as JSON that fits the published schema", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    await g.grant(c, partner, "profiling", ["transactions"]);
    const results = [];
    for (let i = 0; i < 2; i++) {
      // twice: the second answer reuses the projection's cached JSON text
      const single = await g.app.inject({ method: "GET", url: `/v1/data/${c.address}?purpose=profiling&categories=transactions`, headers: { authorization: `Bearer ${await partner.token()}` } });
      expect(single.statusCode, single.body).toBe(200);
      expect(single.headers["content-type"]).toBe("application/json; charset=utf-8");
      // the text built by hand is compact JSON exactly as a serialiser would write it
      expect(JSON.stringify(JSON.parse(single.body))).toBe(single.body);
      results.push(single.json() as Json);
    }
    const query = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    const viaQuery = query.body.results[0] as Json;
    for (const r of results) {
      expect(validateDataResult(r), JSON.stringify(validateDataResult.errors)).toBe(true);
      // the same members in the schema serialiser's order (POST /v1/data/query goes through it)
      expect(Object.keys(r)).toEqual(Object.keys(viaQuery));
      expect(Object.keys(r.receipt)).toEqual(Object.keys(viaQuery.receipt));
      expect({ ...r, receipt: null, block: null }).toEqual({ ...viaQuery, receipt: null, block: null });
      expect(r.data.transactions.length).toBeGreaterThan(0);
      const logged = await call("GET", `/v1/audit/logs/access/entries?start=${r.receipt.index}&end=${r.receipt.index + 1}`, auditor);
      expect(logged.body.entries[0].leafHash).toBe(r.receipt.leafHash);
    }
    expect(results[1]!.receipt.index).toBe(results[0]!.receipt.index + 1);
  });

  it("denies and logs requests beyond the consent or the agreement, with the reason", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    await g.grant(c, partner, "profiling", ["transactions"]);
    const cases: [unknown, string][] = [
      [{ subjects: [c.address], purpose: "profiling", categories: ["demographic"] }, "CONSENT_CATEGORIES"],
      [{ subjects: [c.address], purpose: "direct-marketing", categories: ["transactions"] }, "NO_CONSENT"],
      [{ subjects: [c.address], purpose: "research", categories: ["transactions"] }, "NO_AGREEMENT"],
      [{ subjects: [c.address], purpose: "profiling", categories: ["location"] }, "NO_AGREEMENT"],
    ];
    for (const [q, reason] of cases) {
      const r = await call("POST", "/v1/data/query", partner, q);
      expect(r.status).toBe(200);
      expect(r.body.results[0]).toMatchObject({ decision: "deny", reason });
      expect(r.body.results[0].data).toBeUndefined();
      const e = await call("GET", `/v1/audit/logs/access/entries?start=${r.body.results[0].receipt.index}&end=${r.body.results[0].receipt.index + 1}`, auditor);
      expect(e.body.entries[0].entry).toMatchObject({ decision: "deny", reason });
    }
    const single = await call("GET", `/v1/data/${c.address}?purpose=research&categories=transactions`, partner);
    expect(single.status).toBe(403);
    expect(single.body.code).toBe("ACCESS_DENIED");
    expect(JSON.parse(single.headers["x-custodia-receipt"] as string).index).toBeGreaterThanOrEqual(0);
  });

  it("enforces a revocation on the next request, without waiting for a poll", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    await g.grant(c, partner, "profiling", ["transactions"]);
    const before = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    expect(before.body.results[0].decision).toBe("allow");
    const rev = await g.revoke(c, partner, "profiling");
    expect(rev.status).toBe(200);
    const revokedIn = rev.body["blockNumber"] as number;
    const after = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    expect(after.body.results[0]).toMatchObject({ decision: "deny", reason: "CONSENT_REVOKED" });
    expect(after.body.block).toBeGreaterThanOrEqual(revokedIn);
    expect(after.body.results[0].data).toBeUndefined();
  });

  it("erases a subject: crypto-shredded, later requests answer 410 and are logged", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    await g.grant(c, partner, "profiling", ["transactions"]);
    const erase = await call("POST", "/v1/me/erasure", c, {});
    expect(erase.status, JSON.stringify(erase.body)).toBe(200);
    const single = await call("GET", `/v1/data/${c.address}?purpose=profiling&categories=transactions`, partner);
    expect(single.status).toBe(410);
    expect(single.body.code).toBe("SUBJECT_ERASED");
    const logged = JSON.parse(single.headers["x-custodia-receipt"] as string);
    const e = await call("GET", `/v1/audit/logs/access/entries?start=${logged.index}&end=${logged.index + 1}`, auditor);
    expect(e.body.entries[0].entry).toMatchObject({ decision: "deny", reason: "SUBJECT_ERASED", subject: c.address });
    const again = await call("POST", "/v1/me/erasure", c, {});
    expect(again.body.code).toBe("SUBJECT_ERASED");
    // re-ingesting an erased subject is refused: they re-onboard under a new DID
    await expect(g.ingest(sampleRecords(c.address!))).rejects.toThrow(/410|SUBJECT_ERASED/);
  });

  it("keeps a subject erased before any ingest erased: later data for it is refused", async () => {
    const c = await g.customer();
    await g.grant(c, partner, "profiling", ["transactions"]);
    expect((await call("POST", "/v1/me/erasure", c, {})).status).toBe(200);
    await expect(g.ingest(sampleRecords(c.address!))).rejects.toThrow(/SUBJECT_ERASED/);
    const q = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    expect(q.body.results[0]).toMatchObject({ decision: "deny", reason: "SUBJECT_ERASED" });
  });

  it("answers 400, not 500, for addresses and DIDs with a bad checksum", async () => {
    const c = await g.customer();
    const good = c.address!; // EIP-55 checksummed
    const i = [...good].findIndex((ch, k) => k > 1 && /[a-fA-F]/.test(ch));
    const flipped = good[i] === good[i]!.toUpperCase() ? good[i]!.toLowerCase() : good[i]!.toUpperCase();
    const bad = good.slice(0, i) + flipped + good.slice(i + 1);
    const r = await call("POST", "/v1/data/query", partner, { subjects: [bad], purpose: "profiling", categories: ["transactions"] });
    expect(r.status).toBe(400);
    expect(r.body.code).toBe("INVALID_ADDRESS");
    const forged = await c.token({ iss: `did:ethr:0x7a69:${bad}` });
    const res = await g.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${forged}` } });
    expect(res.statusCode).toBe(400);
    expect(res.json().code).toBe("INVALID_DID");
  });

  it("follows a did:ethr key rotation: the gateway syncs the contract and the old key stops consenting", async () => {
    const owner = await fundedWallet(hardhatProvider());
    const newKey = Wallet.createRandom();
    const did = `did:ethr:0x7a69:${owner.address}`;
    // after the rotation, tokens for the DID must be signed by its new key (did-jwt resolves the owner)
    const token = async (): Promise<string> => {
      const now = g.nowSec();
      return createJWT({ aud: g.rt.did, iat: now, exp: now + 60, jti: randomUUID() }, { issuer: did, signer: ES256KSigner(getBytes(newKey.privateKey), true) }, { alg: "ES256K-R" });
    };
    const customer: Identity = { did, address: owner.address as Address, wallet: owner, token };

    const registry = new Contract(g.deployment.didRegistry, ["function changeOwner(address identity, address newOwner)"], owner);
    await (await registry.getFunction("changeOwner")(owner.address, newKey.address)).wait();
    const deadline = Date.now() + 10_000;
    while ((await g.admin.controllerOf(customer.address!)) !== newKey.address && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(await g.admin.controllerOf(customer.address!)).toBe(newKey.address);

    const gm = await g.grantMessage(customer, partner.address!, "profiling", ["transactions"]); // signed by the old key
    const submit = async (signature: string) =>
      g.app.inject({ method: "POST", url: "/v1/consents", headers: { authorization: `Bearer ${await token()}` }, payload: { action: "grant", message: { ...gm.message, expiresAt: 0, deadline: Number(gm.message.deadline) }, signature, record: gm.record } });
    const byOldKey = await submit(gm.signature);
    expect(byOldKey.statusCode).toBe(422);
    expect(byOldKey.json().code).toBe("SIGNATURE_INVALID");
    const byNewKey = await submit(await signTyped(newKey, g.domain, "ConsentGrant", gm.message));
    expect(byNewKey.statusCode, byNewKey.body).toBe(200);
  });

  it("shows customers their own access history with proofs that verify", async () => {
    const c = await g.customer();
    await g.ingest(sampleRecords(c.address!));
    await g.grant(c, partner, "profiling", ["transactions"]);
    await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "research", categories: ["transactions"] });
    const h = await call("GET", "/v1/me/accesses", c);
    expect(h.status).toBe(200);
    expect(h.body.entries.map((e: Json) => e.entry.decision)).toEqual(["allow", "deny"]);
    for (const e of h.body.entries) {
      expect(e.entry.subject).toBe(c.address);
      verifyInclusion(e.index, e.proof.treeSize, hashFromHex(e.leafHash), proofFromHex(e.proof.inclusion), hashFromHex(e.proof.root));
    }
  });

  it("lists a long history whole, oldest first, each entry with a proof that verifies (proofs across the tree's pruned blocks)", async () => {
    const c = await g.customer();
    await g.grant(c, partner, "profiling", ["transactions"]);
    const other = await g.customer();
    const mine: number[] = [];
    for (let i = 0; i < 70; i++) {
      // another subject's entries in between, so this history spans more than one block of 64 leaves
      await call("POST", "/v1/data/query", partner, { subjects: [other.address], purpose: "profiling", categories: ["transactions"] });
      const r = await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
      mine.push(r.body.results[0].receipt.index as number);
    }
    const h = await call("GET", "/v1/me/accesses?limit=1000", c);
    expect(h.status).toBe(200);
    expect(h.body.entries.map((e: Json) => e.index)).toEqual(mine);
    for (const e of h.body.entries) {
      expect(e.entry.subject).toBe(c.address);
      verifyInclusion(e.index, e.proof.treeSize, hashFromHex(e.leafHash), proofFromHex(e.proof.inclusion), hashFromHex(e.proof.root));
    }
  });

  it("anchors the logs on the ledger, and consistency proofs link any two sizes", async () => {
    const log = g.rt.deps.logs.access;
    const size1 = log.size;
    expect(size1).toBeGreaterThan(2);
    const cp = await (g.rt.deps.anchorers.access as Anchorer).anchorNow();
    const anchoredSize = cp?.treeSize ?? g.rt.deps.anchorers.access.lastAnchored()!.treeSize;
    const onChain = await g.admin.checkpointRoot(logIdFor(CHAIN_ID, g.deployment.custodia, g.operator.address!, "access"), anchoredSize);
    expect(onChain).toBe(log.root(anchoredSize));
    const c = await g.customer();
    await call("POST", "/v1/data/query", partner, { subjects: [c.address], purpose: "profiling", categories: ["transactions"] });
    const size2 = log.size;
    const cons = await call("GET", `/v1/audit/logs/access/proofs/consistency?from=${anchoredSize}&to=${size2}`, c);
    expect(cons.status).toBe(200);
    verifyConsistency(anchoredSize, size2, proofFromHex(cons.body.proof), hashFromHex(onChain!), hashFromHex(cons.body.rootTo));
    await (g.rt.deps.anchorers.access as Anchorer).anchorNow(); // the entry just logged: one more checkpoint
    const cps = await call("GET", "/v1/audit/logs/access/checkpoints", auditor);
    expect(cps.body.checkpoints.length).toBeGreaterThanOrEqual(2);
    expect(cps.body.next).toBeNull();
    // page by page, one at a time: the same checkpoints, in tree-size order
    const paged: { treeSize: number }[] = [];
    for (let after: number | null = -1, pages = 0; after !== null && pages < 100; pages++) {
      const page = await call("GET", `/v1/audit/logs/access/checkpoints?limit=1${after >= 0 ? `&after=${after}` : ""}`, auditor);
      expect(page.status).toBe(200);
      paged.push(...page.body.checkpoints);
      after = page.body.next;
    }
    expect(paged).toEqual(cps.body.checkpoints);
    expect(paged.map((c) => c.treeSize)).toEqual([...paged.map((c) => c.treeSize)].sort((a, b) => a - b));
    for (const bad of ["limit=0", "limit=10001", "after=-1", "after=x"]) {
      const r = await call("GET", `/v1/audit/logs/access/checkpoints?${bad}`, auditor);
      expect(r.status, bad).toBe(400);
      expect(r.body.code).toBe("BAD_REQUEST");
    }
  });
});
