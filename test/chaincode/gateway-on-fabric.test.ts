/**
 * The whole gateway with Fabric as its ledger: the production runtime on the production Fabric
 * adapter (FabricLedger: fabric-gateway over gRPC), against the fake gateway endpoint in front of
 * the in-memory stand-in peer running the compiled chaincode (test/chaincode/support). The server
 * side is a stand-in (no Fabric peer can run here); everything the gateway does is the real code.
 *
 * On Fabric, member accounts derive from MSP identities, not from DID keys: members are bound to
 * their DIDs by the DID hash in their member record, the gateway's DID is the did:key of its
 * checkpoint key, and there is no ERC-1056 registry, so callers use did:key.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ES256KSigner, createJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { categoryMask, consentRecord, didHash, ethrDid, purposeById, purposeId, type Address, type Bytes32 } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type Eip712Domain } from "../../core/eip712.js";
import { hashCanonical, sha256, toHex0x } from "../../core/hash.js";
import { FabricLedger } from "../../chaincode/adapter/fabric-ledger.js";
import { secp256k1DidKey } from "../../core/did.js";
import { createGatewayRuntime, type GatewayRuntime } from "../../gateway/runtime.js";
import { Anchorer } from "../../gateway/log/anchorer.js";
import { GatewayClient } from "../../cli/audit/gateway-client.js";
import { verifyAudit } from "../../cli/audit/verify.js";
import type { DurableLog } from "../../gateway/log/durable-log.js";
import { MemoryGatewayServer } from "./support/memory-gateway.js";
import { MemoryPeer } from "./support/memory-peer.js";
import { TestCa } from "./support/x509.js";

interface Caller {
  wallet: Wallet;
  did: string;
  token(): Promise<string>;
}

describe("the gateway with Hyperledger Fabric as its ledger", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-gw-fabric-"));
  const org = toHex0x(sha256(new TextEncoder().encode("org"))) as Bytes32;
  const open: FabricLedger[] = [];
  let server: MemoryGatewayServer;
  let admin: FabricLedger;
  let rt: GatewayRuntime;
  let domain: Eip712Domain;
  let partnerAccount: Address;
  let partner: Caller;
  let operator: Caller;
  const customer = ((): Caller => {
    const wallet = Wallet.createRandom() as unknown as Wallet;
    return caller(wallet);
  })();

  function caller(wallet: Wallet): Caller {
    const did = secp256k1DidKey(wallet.signingKey.publicKey);
    return {
      wallet,
      did,
      token: async () => {
        const now = Math.floor(Date.now() / 1000);
        return createJWT({ aud: rt.did, iat: now, exp: now + 120, jti: randomUUID() }, { issuer: did, signer: ES256KSigner(getBytes(wallet.privateKey)) }, { alg: "ES256K" });
      },
    };
  }

  const call = async (who: Caller, method: "GET" | "POST", url: string, payload?: unknown): Promise<{ status: number; body: Record<string, any> }> => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const res = await rt.app.inject({ method, url, headers: { authorization: `Bearer ${await who.token()}` }, ...(payload === undefined ? {} : { payload: payload as never }) });
    return { status: res.statusCode, body: res.json() };
  };

  const query = () => call(partner, "POST", "/v1/data/query", { subjects: [customer.wallet.address], purpose: "profiling", categories: ["transactions"] });

  beforeAll(async () => {
    const peer = await MemoryPeer.create({ chaincodeName: "custodia", channelId: "custodia" });
    server = await new MemoryGatewayServer(peer).start();
    const ca = new TestCa("Org1MSP");
    admin = FabricLedger.connect({ peerEndpoint: server.address, insecure: true, channel: "custodia", chaincode: "custodia", identity: ca.newIdentity("admin"), pollMs: 20 });
    open.push(admin);
    await admin.initLedger({ chainId: 31337, verifyingContract: Wallet.createRandom().address });
    domain = await admin.eip712Domain();

    // the gateway: a Fabric client identity to submit with, and its own key for checkpoints and receipts
    const gatewayLedger = admin.as(ca.newIdentity("gateway"));
    open.push(gatewayLedger);
    const gatewayKey = Wallet.createRandom() as unknown as Wallet;
    operator = caller(gatewayKey);
    await admin.registerMember({ account: await gatewayLedger.account(), didHash: didHash(operator.did), role: "GATEWAY", orgHash: org });

    // a partner organisation: its member account is its MSP identity's; it authenticates with its DID
    const partnerLedger = admin.as(ca.newIdentity("partner"));
    open.push(partnerLedger);
    partnerAccount = await partnerLedger.account();
    partner = caller(Wallet.createRandom() as unknown as Wallet);
    expect(partnerAccount).not.toBe(partner.wallet.address);
    await admin.registerMember({ account: partnerAccount, didHash: didHash(partner.did), role: "PARTNER", orgHash: org });
    const now = await admin.blockTime();
    await admin.registerAgreement({ partner: partnerAccount, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions", "contact"]), validFrom: now - 3600, validUntil: now + 86400, termsHash: org });

    rt = await createGatewayRuntime({
      dataDir,
      ledger: gatewayLedger,
      wallet: gatewayKey,
      chainId: Number(domain.chainId),
      contract: domain.verifyingContract as Address,
      deployBlock: 0,
      config: { port: 0, ledgerPollMs: 50, anchorEveryEntries: 1_000_000, anchorEveryMs: 3_600_000 },
    });
    const ingest = await call(operator, "POST", "/v1/vault/records", [
      { kind: "profile", subject: customer.wallet.address, email: "c@example.com", ageBand: "25-34", region: "EU-West" },
      { kind: "transaction", subject: customer.wallet.address, id: "t1", at: 1_700_000_000, amount: 42, currency: "EUR", category: "grocery", channel: "online" },
    ]);
    expect(ingest.status, JSON.stringify(ingest.body)).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await rt?.close().catch(() => undefined);
    for (const l of open.reverse()) await l.close().catch(() => undefined);
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("names itself by the did:key of its checkpoint key and reports the ledger's MSP-derived account", async () => {
    const health = (await rt.app.inject({ method: "GET", url: "/health" })).json();
    expect(health.gateway.did).toBe(operator.did);
    expect(health.gateway.account).toBe(await rt.deps.ledger.account());
    expect(health.gateway.account).not.toBe(operator.wallet.address);
    expect(health.ledger.fresh).toBe(true);
  });

  it("gives members their on-ledger role through the DID in their member record, and anyone else the customer role", async () => {
    expect((await call(partner, "GET", "/v1/me")).body).toMatchObject({ did: partner.did, account: partnerAccount, role: "PARTNER" });
    expect((await call(operator, "GET", "/v1/me")).body).toMatchObject({ role: "GATEWAY" });
    expect((await call(customer, "GET", "/v1/me")).body).toMatchObject({ did: customer.did, account: customer.wallet.address, role: "CUSTOMER" });
  });

  it("refuses did:ethr callers: there is no DID registry on a Fabric ledger", async () => {
    const w = Wallet.createRandom();
    const now = Math.floor(Date.now() / 1000);
    const jwt = await createJWT({ aud: rt.did, iat: now, exp: now + 60, jti: randomUUID() }, { issuer: ethrDid(31337, w.address), signer: ES256KSigner(getBytes(w.privateKey), true) }, { alg: "ES256K-R" });
    const res = await rt.app.inject({ method: "GET", url: "/v1/me", headers: { authorization: `Bearer ${jwt}` } });
    expect(res.statusCode).toBe(401);
    expect(["DID_UNSUPPORTED", "DID_UNRESOLVABLE"]).toContain(res.json().code);
  });

  it("relays a wallet-signed grant to the chaincode, serves the partner, and enforces the revocation on the next request", async () => {
    expect((await query()).body.results[0]).toMatchObject({ decision: "deny" });

    const p = purposeById(purposeId("profiling"));
    const mask = categoryMask(["transactions"]);
    const record = consentRecord({
      recordId: randomUUID(),
      subjectDid: customer.did,
      controllers: [{ id: rt.did }],
      recipient: partner.did, // named by its DID: its account is an MSP identity's
      purpose: p.id,
      categories: mask,
      noticeHash: org,
      expiresAt: 0,
      givenAt: Math.floor(Date.now() / 1000),
      withdrawalMethod: "wallet",
    });
    const deadline = (await admin.blockTime()) + 3600;
    const grant: ConsentGrantMessage = { subject: customer.wallet.address as Address, partner: partnerAccount, purpose: p.id, categories: mask, expiresAt: 0, receiptHash: toHex0x(hashCanonical(record)) as Bytes32, nonce: 0, deadline };
    const granted = await call(customer, "POST", "/v1/consents", { action: "grant", message: grant, signature: await signTyped(customer.wallet, domain, "ConsentGrant", grant), record });
    expect(granted.status, JSON.stringify(granted.body)).toBe(200);
    expect((await admin.getConsent(customer.wallet.address as Address, partnerAccount, p.id)).grantedAt).toBeGreaterThan(0);

    const allowed = await query();
    expect(allowed.status).toBe(200);
    expect(allowed.body.results[0].decision).toBe("allow");
    expect(JSON.stringify(allowed.body.results[0].data)).toContain("grocery");
    // categories beyond the consent stay closed
    const wider = await call(partner, "POST", "/v1/data/query", { subjects: [customer.wallet.address], purpose: "profiling", categories: ["transactions", "contact"] });
    expect(wider.body.results[0].decision).toBe("deny");

    const revoke: ConsentRevokeMessage = { subject: customer.wallet.address as Address, partner: partnerAccount, purpose: p.id, nonce: 1, deadline };
    const revoked = await call(customer, "POST", "/v1/consents", { action: "revoke", message: revoke, signature: await signTyped(customer.wallet, domain, "ConsentRevoke", revoke) });
    expect(revoked.status, JSON.stringify(revoked.body)).toBe(200);
    const denied = await query();
    expect(denied.body.results[0].decision).toBe("deny");
    expect(denied.body.results[0]).not.toHaveProperty("data");
  });

  it("anchors its logs on the chaincode under its MSP account, with checkpoints signed by its DID's key", async () => {
    const cp = await (rt.deps.anchorers.access as Anchorer).anchorNow();
    expect(cp).not.toBeNull();
    expect(cp!.gateway).toBe(operator.wallet.address);
    const log = rt.deps.logs.access as DurableLog;
    expect(await admin.checkpointRoot(log.logId, log.size)).toBe(log.root());
    const head = await admin.latestCheckpoint(log.logId);
    expect(head?.gateway).toBe(await rt.deps.ledger.account());
  });

  it("passes an independent audit read from the chaincode: anchors, entries, proofs and every decision re-checked", async () => {
    await (rt.deps.anchorers.access as Anchorer).anchorNow();
    const auditorKey = Wallet.createRandom();
    const auditorDid = secp256k1DidKey(auditorKey.signingKey.publicKey);
    const auditorLedger = admin.as(new TestCa("Org2MSP").newIdentity("auditor"));
    open.push(auditorLedger);
    await admin.registerMember({ account: await auditorLedger.account(), didHash: didHash(auditorDid), role: "AUDITOR", orgHash: org });
    await rt.deps.view.sync();
    const url = await rt.listen();
    const report = await verifyAudit({
      ledger: auditorLedger,
      source: new GatewayClient({ baseUrl: url, auditor: { privateKey: auditorKey.privateKey, did: auditorDid } }),
      network: { chainId: Number(domain.chainId), contract: domain.verifyingContract as Address },
      logs: ["access"],
    });
    expect(report.failures, JSON.stringify(report.failures)).toEqual([]);
    expect(report.ok).toBe(true);
    const allowed = report.data.accesses.filter((a) => a.decision === "allow");
    expect(allowed.length).toBeGreaterThan(0);
    expect(report.data.anchors.length).toBeGreaterThan(0);
  });

  it("refuses to anchor with a key that is not bound to the anchoring account", async () => {
    const stranger = Wallet.createRandom() as unknown as Wallet;
    const anchorer = new Anchorer({
      log: rt.deps.logs.access as DurableLog,
      ledger: rt.deps.ledger,
      signer: stranger,
      store: { batch: async () => undefined, get: async () => undefined, iterator: () => { throw new Error("unused"); } } as never,
      everyEntries: 1,
      everyMs: 1_000,
      signerBinding: { didHash: didHash(secp256k1DidKey(stranger.signingKey.publicKey)) },
    });
    await expect(anchorer.anchorNow()).rejects.toMatchObject({ code: "CONFIG_INVALID", details: { reason: "signer_not_bound_to_account" } });
  });
});
