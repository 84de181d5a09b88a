import hre from "hardhat";
import { BrowserProvider, Wallet, makeError, type Eip1193Provider, type JsonRpcError, type JsonRpcPayload, type JsonRpcResult } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import type { Address, Bytes32 } from "../../../core/domain.js";
import { CustodiaError } from "../../../core/errors.js";
import { sha256, toHex0x } from "../../../core/hash.js";
import { deployCustodia } from "../../../contracts/deploy.js";
import { EvmLedger } from "../../../contracts/evm-ledger.js";
import { Anchorer, checkpointMessage, verifyCheckpointSignature, type AnchorerOptions, type SignedCheckpoint } from "../../../gateway/log/anchorer.js";
import { DurableLog, batchKey, encodeBatchRecord } from "../../../gateway/log/durable-log.js";
import { canonicalBytes } from "../../../core/jcs.js";
import { leafHash, rootFromLeafHashes } from "../../../core/merkle.js";
import { expectCode, randomLogId, tempDb, type TempDb } from "./helpers.js";

/* ------------------------------------------------------------------ the chain */

/**
 * Hardhat's in-process chain behind a switch at the transport: "down" fails every JSON-RPC request
 * the way an unreachable node does (an ethers NETWORK_ERROR, not a JSON-RPC error response);
 * "receipts-down" lets transactions through but loses their receipts (the transaction lands, the
 * caller sees a failure).
 */
let mode: "up" | "down" | "receipts-down" = "up";

class SwitchedProvider extends BrowserProvider {
  override async _send(payload: JsonRpcPayload | JsonRpcPayload[]): Promise<Array<JsonRpcResult | JsonRpcError>> {
    const methods = (Array.isArray(payload) ? payload : [payload]).map((p) => p.method);
    if (mode === "down" || (mode === "receipts-down" && methods.includes("eth_getTransactionReceipt"))) {
      throw makeError("connect ECONNREFUSED 127.0.0.1:8545", "NETWORK_ERROR", { event: "request" });
    }
    return super._send(payload);
  }
}

let provider: BrowserProvider;
let admin: EvmLedger;

function h(label: string): Bytes32 {
  return toHex0x(sha256(new TextEncoder().encode(label)));
}

async function newGateway(): Promise<{ wallet: Wallet; ledger: EvmLedger }> {
  const wallet = Wallet.createRandom().connect(provider) as unknown as Wallet;
  await provider.send("hardhat_setBalance", [wallet.address, "0x56BC75E2D63100000"]);
  await admin.registerMember({ account: wallet.address as Address, didHash: h(`did:${wallet.address}`), role: "GATEWAY", orgHash: h("org gateway") });
  return { wallet, ledger: admin.connect(wallet) };
}

beforeAll(async () => {
  await hre.run("compile", { quiet: true });
  // cacheTimeout -1: ethers would otherwise reuse a 250 ms-old nonce between back-to-back sends.
  provider = new SwitchedProvider(hre.network.provider as unknown as Eip1193Provider, undefined, { cacheTimeout: -1 });
  const adminWallet = Wallet.createRandom().connect(provider);
  await provider.send("hardhat_setBalance", [adminWallet.address, "0x56BC75E2D63100000"]);
  const deployment = await deployCustodia(adminWallet);
  admin = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock, pollMs: 20 });
});

afterAll(async () => {
  await admin?.close();
});

/* ---------------------------------------------------------------- fixtures */

interface Env {
  t: TempDb;
  logId: Bytes32;
  log: DurableLog;
  gateway: { wallet: Wallet; ledger: EvmLedger };
  errors: unknown[];
  anchorer(over?: Partial<AnchorerOptions>): Anchorer;
  reopenLog(): Promise<DurableLog>;
}

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  mode = "up";
  while (cleanups.length > 0) await cleanups.pop()!();
});

async function setup(): Promise<Env> {
  const t = await tempDb("custodia-anchor-");
  const logId = randomLogId();
  const logs = t.db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" });
  const store = t.db.sublevel<string, unknown>("anchors", { valueEncoding: "json" });
  const gateway = await newGateway();
  const errors: unknown[] = [];
  const anchorers: Anchorer[] = [];
  const env: Env = {
    t,
    logId,
    log: await DurableLog.open(logs, { logId, name: "access" }),
    gateway,
    errors,
    anchorer: (over = {}) => {
      const a = new Anchorer({
        log: env.log,
        ledger: gateway.ledger,
        signer: gateway.wallet,
        store,
        everyEntries: 1000,
        everyMs: 60_000,
        retryInitialMs: 40,
        retryMaxMs: 160,
        onError: (e) => errors.push(e),
        ...over,
      });
      anchorers.push(a);
      return a;
    },
    reopenLog: async () => {
      await env.log.close();
      env.log = await DurableLog.open(logs, { logId, name: "access" });
      return env.log;
    },
  };
  cleanups.push(async () => {
    for (const a of anchorers) await a.stop();
    await env.log.close();
    await t.dispose();
  });
  return env;
}

async function appendN(log: DurableLog, n: number, tag = "e"): Promise<void> {
  await Promise.all(Array.from({ length: n }, (_, i) => log.append({ tag, i })));
}

/** The ledger agrees with the log and every stored checkpoint is signed by the gateway. */
async function expectAnchoredOnChain(env: Env, a: Anchorer, treeSize: number): Promise<void> {
  const head = await env.gateway.ledger.latestCheckpoint(env.logId);
  expect(head?.treeSize).toBe(treeSize);
  expect(head?.gateway).toBe(env.gateway.wallet.address);
  expect(await env.gateway.ledger.checkpointRoot(env.logId, treeSize)).toBe(env.log.root(treeSize));
  expect(a.lastAnchored()?.treeSize).toBe(treeSize);
  const cps = await a.checkpoints();
  expect(cps.at(-1)?.treeSize).toBe(treeSize);
  const onChain = await env.gateway.ledger.checkpoints(env.logId);
  for (const cp of cps) {
    verifyCheckpointSignature(cp);
    expect(cp.gateway).toBe(env.gateway.wallet.address);
    expect(cp.root).toBe(env.log.root(cp.treeSize));
    expect(onChain.find((c) => c.treeSize === cp.treeSize)?.root).toBe(cp.root);
  }
}

/* ------------------------------------------------------------------- tests */

describe("Anchorer on a real chain", () => {
  it("anchors every N entries, leaves fewer than N for later, and anchorNow covers the rest", async () => {
    const env = await setup();
    const a = env.anchorer({ everyEntries: 10 });
    await a.start();
    expect(a.lastAnchored()).toBeNull();
    await appendN(env.log, 9);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.lastAnchored()).toBeNull(); // 9 < N
    await appendN(env.log, 3);
    await vi.waitFor(() => expect(a.lastAnchored()?.treeSize).toBe(12), { timeout: 10_000, interval: 10 });
    await appendN(env.log, 5);
    await new Promise((r) => setTimeout(r, 100));
    expect(a.lastAnchored()?.treeSize).toBe(12); // 5 < N, and the 60 s timer is far away
    expect(a.stats().unanchored).toBe(5);
    await appendN(env.log, 5);
    await vi.waitFor(() => expect(a.lastAnchored()?.treeSize).toBe(22), { timeout: 10_000, interval: 10 });
    await appendN(env.log, 3);

    const cp = await a.anchorNow();
    expect(cp?.treeSize).toBe(25);
    expect(await a.anchorNow()).toBeNull();
    expect((await a.checkpoints()).map((c) => c.treeSize)).toEqual([12, 22, 25]);
    await expectAnchoredOnChain(env, a, 25);
    expect(a.stats()).toMatchObject({ anchored: 3, anchoredSize: 25, unanchored: 0, failures: 0, alarm: null });
    expect(env.errors).toEqual([]);
  });

  it("anchors T ms after the oldest un-anchored entry when fewer than N arrived", async () => {
    const env = await setup();
    const a = env.anchorer({ everyEntries: 1000, everyMs: 200 });
    await a.start();
    const t0 = Date.now();
    await appendN(env.log, 3);
    await new Promise((r) => setTimeout(r, 80));
    expect(a.lastAnchored()).toBeNull();
    await vi.waitFor(() => expect(a.lastAnchored()?.treeSize).toBe(3), { timeout: 10_000, interval: 10 });
    expect(Date.now() - t0).toBeGreaterThanOrEqual(190);
    await appendN(env.log, 2);
    await vi.waitFor(() => expect(a.lastAnchored()?.treeSize).toBe(5), { timeout: 10_000, interval: 10 });
    await expectAnchoredOnChain(env, a, 5);
    const s = a.stats();
    expect(s.anchored).toBe(2);
    expect(s.maxAnchorLagMs).toBeGreaterThanOrEqual(190);
  });

  it("measures anchor lag and stamps checkpoints with the injected clock", async () => {
    const env = await setup();
    let now = 1_000_000;
    const a = env.anchorer({ clock: () => now });
    await a.start();
    await appendN(env.log, 4); // durable at 1,000,000
    now += 750;
    await appendN(env.log, 4); // durable at 1,000,750
    now += 500;
    const cp = await a.anchorNow();
    expect(cp).toMatchObject({ treeSize: 8, timestamp: 1_001_250 });
    expect(a.stats()).toMatchObject({ lastAnchorLagMs: 1250, maxAnchorLagMs: 1250, oldestUnanchoredMs: null });
    await appendN(env.log, 1);
    now += 100;
    expect(a.stats().oldestUnanchoredMs).toBe(100);
    await a.anchorNow();
    expect(a.stats()).toMatchObject({ lastAnchorLagMs: 100, maxAnchorLagMs: 1250 });
  });

  it("after a restart anchors the tail that was never anchored", async () => {
    const env = await setup();
    const first = env.anchorer();
    await first.start();
    await appendN(env.log, 12);
    expect((await first.anchorNow())?.treeSize).toBe(12);
    await first.stop();
    await appendN(env.log, 7, "tail"); // nobody anchors these
    await env.reopenLog();

    const second = env.anchorer();
    await second.start(); // start anchors the tail before it returns
    expect(second.lastAnchored()?.treeSize).toBe(19);
    await expectAnchoredOnChain(env, second, 19);
    expect((await second.checkpoints()).map((c) => c.treeSize)).toEqual([12, 19]);
    expect((await second.records()).map((r) => r.source)).toEqual(["anchored", "anchored"]);
  });

  it("retries while the ledger is down without losing entries, then anchors them all", async () => {
    const env = await setup();
    const a = env.anchorer({ everyEntries: 5 });
    await a.start();
    mode = "down";
    await appendN(env.log, 12);
    await vi.waitFor(() => expect(a.stats().failures).toBeGreaterThanOrEqual(3), { timeout: 10_000, interval: 10 });
    await expectCode(a.anchorNow(), "LEDGER_UNAVAILABLE");
    await appendN(env.log, 8); // the log keeps working
    expect(env.log.size).toBe(20);
    expect(a.lastAnchored()).toBeNull();
    expect(a.stats()).toMatchObject({ anchoredSize: 0, unanchored: 20 });
    expect(env.errors.length).toBeGreaterThanOrEqual(3);
    expect(env.errors.every((e) => e instanceof CustodiaError && e.code === "LEDGER_UNAVAILABLE")).toBe(true);

    mode = "up";
    await vi.waitFor(() => expect(a.lastAnchored()?.treeSize).toBe(20), { timeout: 10_000, interval: 10 });
    await expectAnchoredOnChain(env, a, 20);
    expect(a.stats()).toMatchObject({ consecutiveFailures: 0, unanchored: 0, retryPending: false });
  });

  it("records a checkpoint whose transaction landed although its receipt was lost", async () => {
    const env = await setup();
    // No background retry: it would reconcile (or anchor 8) before the explicit anchorNow below
    // whenever the steps between took longer than the retry delay, as on a loaded CI machine.
    const a = env.anchorer({ retryInitialMs: 600_000, retryMaxMs: 600_000 });
    await a.start();
    await appendN(env.log, 6);
    mode = "receipts-down";
    await expectCode(a.anchorNow(), "LEDGER_UNAVAILABLE");
    expect(a.lastAnchored()).toBeNull();
    expect(a.stats().retryPending).toBe(true);
    expect((await env.gateway.ledger.latestCheckpoint(env.logId))?.treeSize).toBe(6); // it did land
    mode = "up";
    await appendN(env.log, 2);
    expect((await a.anchorNow())?.treeSize).toBe(8);
    expect(a.stats()).toMatchObject({ retryPending: false, consecutiveFailures: 0 });
    expect((await a.records()).map((r) => [r.checkpoint.treeSize, r.source])).toEqual([
      [6, "reconciled"],
      [8, "anchored"],
    ]);
    await expectAnchoredOnChain(env, a, 8);
  });

  it("reconciles at start with a checkpoint that landed before the local record was written", async () => {
    const env = await setup();
    await appendN(env.log, 9);
    // What a crash between "transaction mined" and "record written" leaves behind.
    await env.gateway.ledger.anchorCheckpoint({ logId: env.logId, treeSize: 9, root: env.log.root(9) });
    const a = env.anchorer();
    await a.start();
    expect(a.lastAnchored()?.treeSize).toBe(9);
    expect((await a.records()).map((r) => r.source)).toEqual(["reconciled"]);
    expect(await a.anchorNow()).toBeNull();
    await expectAnchoredOnChain(env, a, 9);
    expect(env.errors).toEqual([]);
  });

  it("raises the tampering alarm when the ledger's root differs from the log's", async () => {
    const env = await setup();
    await appendN(env.log, 9);
    await env.gateway.ledger.anchorCheckpoint({ logId: env.logId, treeSize: 5, root: h("forged") });
    const a = env.anchorer();
    const alarm = await expectCode(a.start(), "INTERNAL", "anchor_root_mismatch");
    expect(alarm.details).toMatchObject({ alarm: true, treeSize: 5, ledgerRoot: h("forged"), localRoot: env.log.root(5) });
    expect(env.errors).toContain(alarm);
    expect(a.stats().alarm).toBe(alarm);
    expect(a.stats().running).toBe(false);
    await expectCode(a.anchorNow(), "INTERNAL", "anchor_root_mismatch");
    expect(await a.checkpoints()).toEqual([]);
  });

  it("raises an alarm when the ledger anchors more entries than the log holds", async () => {
    const env = await setup();
    await appendN(env.log, 3);
    await env.gateway.ledger.anchorCheckpoint({ logId: env.logId, treeSize: 50, root: h("beyond") });
    await expectCode(env.anchorer().start(), "INTERNAL", "ledger_ahead_of_log");
  });

  it("raises an alarm when the log no longer holds what it anchored: cut short by whole records, or rewritten below the anchor", async () => {
    // cut short: the newest record deleted, which the log's own store cannot tell
    const cut = await setup();
    await appendN(cut.log, 3, "a");
    await appendN(cut.log, 3, "b");
    const first = cut.anchorer();
    expect((await first.anchorNow())?.treeSize).toBe(6);
    await first.stop();
    const logs = cut.t.db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" });
    await logs.del(batchKey("access", 3));
    expect((await cut.reopenLog()).size).toBe(3);
    const short = await expectCode(cut.anchorer().start(), "INTERNAL", "ledger_ahead_of_log");
    expect(short.details).toMatchObject({ ledgerSize: 6, logSize: 3 });

    // rewritten consistently (entries and the root their record names): the store accepts it
    const rewritten = await setup();
    await appendN(rewritten.log, 3, "a");
    await appendN(rewritten.log, 3, "b");
    const a = rewritten.anchorer();
    await a.anchorNow();
    await a.stop();
    const entries = [0, 1, 2].map((i) => canonicalBytes({ tag: "a", i })).concat([0, 1, 2].map((i) => canonicalBytes({ tag: "forged", i })));
    const store = rewritten.t.db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" });
    await store.put(batchKey("access", 3), encodeBatchRecord(entries.slice(3).map((bytes) => ({ tag: "", bytes })), rootFromLeafHashes(entries.map((b) => leafHash(b)))));
    expect((await rewritten.reopenLog()).size).toBe(6);
    const mismatch = await expectCode(rewritten.anchorer().start(), "INTERNAL", "anchor_root_mismatch");
    expect(mismatch.details).toMatchObject({ treeSize: 6, localRoot: rewritten.log.root(6) });
  });

  it("refuses a signer that is not the ledger account", async () => {
    const env = await setup();
    const a = env.anchorer({ signer: Wallet.createRandom() });
    await expectCode(a.start(), "CONFIG_INVALID", "signer_not_ledger_account");
  });
});

describe("verifyCheckpointSignature", () => {
  const wallet = Wallet.createRandom();
  async function signed(): Promise<SignedCheckpoint> {
    const unsigned = { logId: randomLogId(), treeSize: 42, root: h("root"), timestamp: 1_700_000_000_000, gateway: wallet.address as Address };
    return { ...unsigned, signature: await wallet.signMessage(checkpointMessage(unsigned)) };
  }

  it("accepts the gateway's signature over the canonical checkpoint", async () => {
    const cp = await signed();
    verifyCheckpointSignature(cp);
    expect(checkpointMessage(cp)).toBe(
      `{"gateway":"${cp.gateway}","logId":"${cp.logId}","root":"${cp.root}","timestamp":1700000000000,"treeSize":42}`,
    );
  });

  it("rejects altered fields, other signers and malformed checkpoints with codes", async () => {
    const cp = await signed();
    await expectCode(() => verifyCheckpointSignature({ ...cp, treeSize: 43 }), "SIGNATURE_INVALID", "signer_mismatch");
    await expectCode(() => verifyCheckpointSignature({ ...cp, root: h("other") }), "SIGNATURE_INVALID", "signer_mismatch");
    await expectCode(() => verifyCheckpointSignature({ ...cp, timestamp: cp.timestamp + 1 }), "SIGNATURE_INVALID", "signer_mismatch");
    await expectCode(() => verifyCheckpointSignature({ ...cp, gateway: Wallet.createRandom().address as Address }), "SIGNATURE_INVALID", "signer_mismatch");
    await expectCode(() => verifyCheckpointSignature({ ...cp, signature: `0x${"11".repeat(65)}` }), "SIGNATURE_INVALID");
    await expectCode(() => verifyCheckpointSignature({ ...cp, signature: "0x1234" }), "SIGNATURE_INVALID", "signature_malformed");
    await expectCode(() => verifyCheckpointSignature({ ...cp, gateway: cp.gateway.toLowerCase() as Address }), "INVALID_ARGUMENT", "checkpoint_malformed");
    await expectCode(() => verifyCheckpointSignature({ ...cp, root: cp.root.toUpperCase().replace("0X", "0x") as Bytes32 }), "INVALID_ARGUMENT", "checkpoint_malformed");
    await expectCode(() => verifyCheckpointSignature({ ...cp, treeSize: -1 }), "INVALID_ARGUMENT", "checkpoint_malformed");
  });
});
