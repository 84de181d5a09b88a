import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ES256KSigner, createJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { didHash, categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type Eip712Domain } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { startEmbeddedNode } from "../../contracts/embedded-node.js";
import { WsHeadFeed } from "../../gateway/head-feed.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../../gateway/runtime.js";

/**
 * Push mode (opt-in, CUSTODIA_PUSH_HEADS=1): the gateway follows blocks announced by the node over
 * WebSocket instead of asking the node on every request. Consent changes sent straight to the ledger (not through this gateway) must
 * still be enforced within one block.
 */
describe("gateway following pushed block announcements", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-push-"));
  let net: Network;
  let rt: GatewayRuntime;
  let partner: Wallet;
  let domain: Eip712Domain;
  const subject = Wallet.createRandom();
  const partnerDid = (): string => `did:ethr:0x7a69:${partner.address}`;
  const org = toHex0x(sha256(new TextEncoder().encode("org")));

  async function query(): Promise<{ status: number; body: Record<string, any> }> { // eslint-disable-line @typescript-eslint/no-explicit-any
    const now = Math.floor(Date.now() / 1000);
    const jwt = await createJWT({ aud: rt.did, iat: now, exp: now + 120, jti: randomUUID() }, { issuer: partnerDid(), signer: ES256KSigner(getBytes(partner.privateKey), true) }, { alg: "ES256K-R" });
    const res = await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${jwt}` }, payload: { subjects: [subject.address], purpose: "profiling", categories: ["transactions"] } });
    return { status: res.statusCode, body: res.json() };
  }

  /** Another block on top: a plain transfer by the admin, unrelated to the consent. */
  async function mineOne(): Promise<number> {
    const receipt = await (await net.adminWallet.sendTransaction({ to: Wallet.createRandom().address, value: 1n })).wait();
    return receipt!.blockNumber;
  }

  /**
   * Push mode's promise is "never more than the notification delay behind": wait (bounded) for the
   * announcement of `block` — not for a sync — so that a loaded machine delaying the node's
   * WebSocket message does not fail the test, while a decision made after it must include `block`.
   */
  async function announced(block: number): Promise<void> {
    for (const until = Date.now() + 5_000; rt.deps.view.announcedBlock < block; ) {
      if (Date.now() > until) throw new Error(`block ${block} was not announced within 5 s`);
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  const health = async (): Promise<{ ledger: { sync: string; syncedBlock: number } }> => (await rt.app.inject({ method: "GET", url: "/health" })).json();

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    partner = new Wallet(Wallet.createRandom().privateKey, net.provider);
    await net.admin.registerMember({ account: partner.address as Address, didHash: didHash(partnerDid()), role: "PARTNER", orgHash: org });
    const now = await net.admin.blockTime();
    await net.admin.registerAgreement({ partner: partner.address as Address, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions"]), validFrom: now - 60, validUntil: now + 86400, termsHash: org });
    domain = await net.admin.eip712Domain();
    rt = await createGatewayRuntime({ dataDir, ...networkRuntimeOptions(net), config: { port: 0, ledgerPollMs: 1_000, staleAfterMs: 5_000, pushHeads: true } });
  });

  afterAll(async () => {
    await rt?.close().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("reports push mode when the node's WebSocket feed is live", async () => {
    expect(net.wsUrl).toMatch(/^ws:\/\/127\.0\.0\.1:\d+$/);
    expect((await health()).ledger.sync).toBe("push");
  });

  it("enforces grants and revocations sent straight to the ledger within one block, round after round", async () => {
    const now = await net.admin.blockTime();
    for (let round = 0; round < 6; round++) {
      // the admin relays the customer's own signed messages: this gateway is not involved
      const grant: ConsentGrantMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), categories: categoryMask(["transactions"]), expiresAt: 0, receiptHash: org, nonce: 2 * round, deadline: now + 3600 };
      const granted = await net.admin.grantConsent(grant, await signTyped(subject, domain, "ConsentGrant", grant));
      await announced(await mineOne());
      const allowed = await query();
      expect(allowed.status, JSON.stringify(allowed.body)).toBe(200);
      expect(allowed.body.results[0].decision).toBe("allow");
      expect(allowed.body.block).toBeGreaterThanOrEqual(granted.blockNumber);

      const revoke: ConsentRevokeMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), nonce: 2 * round + 1, deadline: now + 3600 };
      const revoked = await net.admin.revokeConsent(revoke, await signTyped(subject, domain, "ConsentRevoke", revoke));
      await announced(await mineOne());
      const denied = await query();
      expect(denied.status).toBe(200);
      expect(denied.body.results[0].decision).toBe("deny");
      expect(denied.body.block).toBeGreaterThanOrEqual(revoked.blockNumber);
    }
    expect((await health()).ledger.sync).toBe("push");
  });

  it("answers 503 while the node is down and returns to push mode once it is back", async () => {
    const port = net.node!.port;
    await net.node!.stop();
    const down = await query();
    expect(down.status).toBe(503);
    expect(down.body.code).toBe("LEDGER_UNAVAILABLE");
    expect((await health()).ledger.sync).toBe("request");
    const node = await startEmbeddedNode({ dataDir: join(dataDir, "ledger"), port });
    try {
      // the feed reconnects with backoff; decisions work meanwhile by asking the node
      expect((await query()).status).toBe(200);
      const deadline = Date.now() + 10_000;
      while ((await health()).ledger.sync !== "push" && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      expect((await health()).ledger.sync).toBe("push");
    } finally {
      await node.stop();
    }
  });
});

describe("WsHeadFeed", () => {
  it("follows announced blocks and is not live without a node", async () => {
    const dir = mkdtempSync(join(tmpdir(), "custodia-feed-"));
    const node = await startEmbeddedNode({ dataDir: dir, port: 0 });
    const errors: unknown[] = [];
    const feed = await WsHeadFeed.start(node.url.replace(/^http/, "ws"), { onError: (e) => errors.push(e), pingMs: 200 });
    try {
      expect(feed.live).toBe(true);
      const seen: number[] = [];
      feed.onHead((b) => seen.push(b));
      for (let i = 0; i < 3; i++) await fetch(node.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: i, method: "evm_mine", params: [] }) });
      const deadline = Date.now() + 5_000;
      while (seen.length < 3 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(seen).toEqual([seen[0]!, seen[0]! + 1, seen[0]! + 2]);
      expect(feed.head).toBe(seen[2]);
      // live only once it knows the node's current head, mined before it subscribed or not
      const rpc = async (method: string): Promise<string> => ((await (await fetch(node.url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params: [] }) })).json()) as { result: string }).result;
      await rpc("evm_mine");
      await rpc("evm_mine");
      const late = await WsHeadFeed.start(node.url.replace(/^http/, "ws"), { onError: (e) => errors.push(e) });
      expect(late.head).toBe(Number(await rpc("eth_blockNumber")));
      await late.close();
      await node.stop();
      const until = Date.now() + 3_000;
      while (feed.live && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(feed.live).toBe(false);
    } finally {
      await feed.close();
      await node.stop().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("does not become live on an endpoint that refuses the subscription", async () => {
    const feed = await WsHeadFeed.start("ws://127.0.0.1:9", { onError: () => undefined }, 300);
    try {
      expect(feed.live).toBe(false);
      expect(feed.head).toBe(-1);
    } finally {
      await feed.close();
    }
  });
});
