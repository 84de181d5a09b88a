import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Wallet } from "ethers";
import { randomUUID } from "node:crypto";
import { ES256KSigner, createJWT } from "did-jwt";
import { getBytes } from "ethers";
import { didHash, categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { startEmbeddedNode } from "../../contracts/embedded-node.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../../gateway/runtime.js";

/**
 * Fail closed: the gateway on a real anvil node that is stopped underneath it. Decisions answer
 * 503 and release nothing; once the node is back, the gateway catches up and serves again.
 */
describe("gateway with the ledger node down", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-faults-"));
  let net: Network;
  let rt: GatewayRuntime;
  let partner: Wallet;
  const subject = Wallet.createRandom();
  const partnerDid = (): string => `did:ethr:0x7a69:${partner.address}`;

  async function token(): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return createJWT({ aud: rt.did, iat: now, exp: now + 120, jti: randomUUID() }, { issuer: partnerDid(), signer: ES256KSigner(getBytes(partner.privateKey), true) }, { alg: "ES256K-R" });
  }

  async function query(bearer?: string) {
    const res = await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${bearer ?? (await token())}` }, payload: { subjects: [subject.address], purpose: "profiling", categories: ["transactions"] } });
    return { status: res.statusCode, body: res.json() as Record<string, any> }; // eslint-disable-line @typescript-eslint/no-explicit-any
  }

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    partner = new Wallet(Wallet.createRandom().privateKey, net.provider);
    await (await net.adminWallet.sendTransaction({ to: partner.address, value: 10n ** 18n })).wait();
    const org = toHex0x(sha256(new TextEncoder().encode("org")));
    await net.admin.registerMember({ account: partner.address as Address, didHash: didHash(partnerDid()), role: "PARTNER", orgHash: org });
    const now = await net.admin.blockTime();
    await net.admin.registerAgreement({ partner: partner.address as Address, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions"]), validFrom: now - 60, validUntil: now + 86400, termsHash: org });
    const domain = await net.admin.eip712Domain();
    const message: ConsentGrantMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), categories: categoryMask(["transactions"]), expiresAt: 0, receiptHash: org, nonce: 0, deadline: now + 3600 };
    await net.gateway.grantConsent(message, await signTyped(subject, domain, "ConsentGrant", message));
    rt = await createGatewayRuntime({
      dataDir,
      ...networkRuntimeOptions(net),
      config: { port: 0, staleAfterMs: 1_000, ledgerPollMs: 100, anchorEveryMs: 300 },
    });
    await rt.app.inject({ method: "POST", url: "/v1/vault/records", headers: { authorization: `Bearer ${await (async () => { const now2 = Math.floor(Date.now() / 1000); return createJWT({ aud: rt.did, iat: now2, exp: now2 + 60, jti: randomUUID() }, { issuer: rt.did, signer: ES256KSigner(getBytes(net.gatewayWallet.privateKey)) }, { alg: "ES256K" }); })()}` }, payload: [{ kind: "transaction", subject: subject.address, id: "t1", at: 1_700_000_000, amount: 12, currency: "EUR", category: "grocery", channel: "store" }] });
  });

  afterAll(async () => {
    await rt?.close().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("serves while the ledger is up", async () => {
    const r = await query();
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.results[0].decision).toBe("allow");
    expect(JSON.stringify(r.body)).toContain("grocery");
  });

  it("answers 503 and releases no data while the node is down, then serves again when it returns", async () => {
    const cached = await token();
    expect((await query(cached)).status).toBe(200); // verified and cached while the ledger is up
    const sizeBefore = rt.deps.logs.access.size;
    const port = net.node!.port;
    await net.node!.stop(); // graceful: the node writes its state, as an operator's restart would
    const down = await query();
    expect(down.status).toBe(503);
    expect(down.body.code).toBe("LEDGER_UNAVAILABLE");
    expect(JSON.stringify(down.body)).not.toContain("grocery");
    // a token verified before the outage gets no further: the ledger check itself fails closed
    const downCached = await query(cached);
    expect(downCached.status).toBe(503);
    expect(downCached.body.code).toBe("LEDGER_UNAVAILABLE");
    // nothing was decided, so nothing was logged as an access
    expect(rt.deps.logs.access.size).toBe(sizeBefore);
    const health = await rt.app.inject({ method: "GET", url: "/health" });
    await new Promise((r) => setTimeout(r, 1_200));
    expect((await rt.app.inject({ method: "GET", url: "/health" })).json().ledger.fresh).toBe(false);
    expect(health.statusCode).toBe(200);

    const node = await startEmbeddedNode({ dataDir: join(dataDir, "ledger"), port });
    try {
      const back = await query();
      expect(back.status, JSON.stringify(back.body)).toBe(200);
      expect(back.body.results[0].decision).toBe("allow");
      expect(rt.deps.logs.access.size).toBe(sizeBefore + 1);
    } finally {
      await node.stop();
    }
  });
});
