/**
 * The Fabric Gateway adapter's own machinery: configuration from the environment, error mapping,
 * block parsing, deadlines, commit-status failures, event streaming with checkpoints and
 * heartbeats. Network behaviour is exercised over real gRPC against the fake gateway endpoint
 * (support/memory-gateway.ts), which is a stand-in and not Fabric.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import { CommitError, GatewayError } from "@hyperledger/fabric-gateway";
import { Wallet } from "ethers";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { CustodiaError } from "../../core/errors.js";
import { sha256, toHex0x } from "../../core/hash.js";
import type { Address, Bytes32 } from "../../core/domain.js";
import type { LedgerEvent } from "../../core/ledger.js";
import { FabricLedger, fabricConfigFromEnv, mapFabricError, missingFabricEnv, type FabricConfig } from "../../chaincode/adapter/fabric-ledger.js";
import { chainHeight, chaincodeEventsOf, parseBlock } from "../../chaincode/adapter/fabric-blocks.js";
import { fabricAccount } from "../../chaincode/src/identity.js";
import { expectCode } from "../ledger/conformance.js";
import { MemoryGatewayServer, encodeBlock } from "./support/memory-gateway.js";
import { MemoryPeer, TX_MVCC_READ_CONFLICT, TX_VALID, type MemoryBlock } from "./support/memory-peer.js";
import { TestCa, type TestIdentity } from "./support/x509.js";

const h = (label: string): Bytes32 => toHex0x(sha256(new TextEncoder().encode(label)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe("configuration from the environment", () => {
  it("names every missing setting", () => {
    expect(missingFabricEnv({})).toEqual(["FABRIC_PEER_ENDPOINT", "FABRIC_TLS_CERT", "FABRIC_MSP_ID", "FABRIC_CERT", "FABRIC_KEY", "FABRIC_CHANNEL", "FABRIC_CHAINCODE"]);
    let caught: unknown;
    try {
      fabricConfigFromEnv({ FABRIC_PEER_ENDPOINT: "localhost:7051" });
    } catch (e) {
      caught = e;
    }
    expect(caught).toBeInstanceOf(CustodiaError);
    expect((caught as CustodiaError).code).toBe("CONFIG_INVALID");
    expect((caught as CustodiaError).details?.["missing"]).toContain("FABRIC_MSP_ID");
  });

  it("reads a complete configuration, TLS or explicitly plaintext", () => {
    const env = {
      FABRIC_PEER_ENDPOINT: "localhost:7051",
      FABRIC_TLS_CERT: "/crypto/peer0/tls/ca.crt",
      FABRIC_PEER_HOST_ALIAS: "peer0.org1.example.com",
      FABRIC_MSP_ID: "Org1MSP",
      FABRIC_CERT: "/crypto/users/Admin/msp/signcerts",
      FABRIC_KEY: "/crypto/users/Admin/msp/keystore",
      FABRIC_CHANNEL: "mychannel",
      FABRIC_CHAINCODE: "custodia",
      FABRIC_START_BLOCK: "5",
    };
    expect(fabricConfigFromEnv(env)).toEqual({
      peerEndpoint: "localhost:7051",
      tlsCertPath: "/crypto/peer0/tls/ca.crt",
      hostAlias: "peer0.org1.example.com",
      channel: "mychannel",
      chaincode: "custodia",
      identity: { mspId: "Org1MSP", certPath: "/crypto/users/Admin/msp/signcerts", keyPath: "/crypto/users/Admin/msp/keystore" },
      startBlock: 5,
    });
    const { FABRIC_TLS_CERT: _tls, ...plain } = env;
    expect(missingFabricEnv(plain)).toEqual(["FABRIC_TLS_CERT"]);
    expect(fabricConfigFromEnv({ ...plain, FABRIC_INSECURE: "true" }).insecure).toBe(true);
    expect(() => fabricConfigFromEnv({ ...env, FABRIC_START_BLOCK: "-1" })).toThrow(/FABRIC_START_BLOCK/);
  });

  it("refuses to connect without TLS material unless plaintext is explicit", () => {
    const config: FabricConfig = { peerEndpoint: "127.0.0.1:1", channel: "c", chaincode: "cc", identity: new TestCa("Org1MSP").newIdentity() };
    expect(() => FabricLedger.connect(config)).toThrow(/TLS root certificate/);
  });
});

describe("error mapping", () => {
  const serviceError = (code: number): grpc.ServiceError => Object.assign(new Error("x"), { code, details: "x", metadata: new grpc.Metadata() });
  const gatewayError = (code: number, details: string[] = []): GatewayError =>
    new GatewayError({ code, message: `${code} failed`, details: details.map((message) => ({ address: "peer0:7051", mspId: "Org1MSP", message })), cause: serviceError(code) });

  it("keeps the chaincode's rule code, error name and arguments", () => {
    const e = mapFabricError(gatewayError(grpc.status.ABORTED, ['chaincode response 500, CUSTODIA:NONCE_INVALID: NonceInvalid {"expected":"1","given":"0","subject":"0xabc"}']));
    expect(e.code).toBe("NONCE_INVALID");
    expect(e.details).toEqual({ error: "NonceInvalid", args: { expected: "1", given: "0", subject: "0xabc" } });
    expect(mapFabricError(new Error("evaluate call to endorser returned error: chaincode response 500, CUSTODIA:LEDGER_NOT_DEPLOYED: NotInitialised {}")).code).toBe("LEDGER_NOT_DEPLOYED");
  });

  it("maps transport failures and invalid commits", () => {
    expect(mapFabricError(gatewayError(grpc.status.UNAVAILABLE)).code).toBe("LEDGER_UNAVAILABLE");
    expect(mapFabricError(gatewayError(grpc.status.DEADLINE_EXCEEDED)).code).toBe("LEDGER_UNAVAILABLE");
    expect(mapFabricError(gatewayError(grpc.status.PERMISSION_DENIED)).code).toBe("UNAUTHORIZED");
    expect(mapFabricError(gatewayError(grpc.status.NOT_FOUND)).code).toBe("LEDGER_NOT_DEPLOYED");
    expect(mapFabricError(gatewayError(grpc.status.ABORTED, ["chaincode response 500, Expected 2 parameters, but 1 have been supplied"])).code).toBe("LEDGER_REVERTED");
    const commit = mapFabricError(new CommitError({ code: 11, transactionId: "tx1", message: "MVCC_READ_CONFLICT" }));
    expect(commit.code).toBe("LEDGER_REVERTED");
    expect(commit.details).toEqual({ txId: "tx1", validationCode: 11 });
    expect(mapFabricError(new Error("connect ECONNREFUSED 127.0.0.1:7051")).code).toBe("LEDGER_UNAVAILABLE");
    const own = new CustodiaError("CONFIG_INVALID", "x");
    expect(mapFabricError(own)).toBe(own);
  });
});

describe("blocks", () => {
  it("parses number, time and the valid transactions' events of one chaincode", async () => {
    const peer = await MemoryPeer.create({ chaincodeName: "custodia" });
    const ca = new TestCa("Org1MSP");
    const tx = (txId: string, seconds: number, validationCode: number, chaincodeName = "custodia") => ({
      txId,
      chaincodeName,
      fn: "F",
      creator: ca.newIdentity(),
      timestamp: seconds,
      timestampMs: seconds * 1000,
      validationCode,
      payload: Buffer.alloc(0),
      event: { name: "DataCommitted", payload: Buffer.from(`{"n":"${txId}"}`) },
    });
    const block: MemoryBlock = {
      number: 7,
      timestamp: 1_700_000_030,
      transactions: [tx("a", 1_700_000_010, TX_VALID), tx("b", 1_700_000_030, TX_MVCC_READ_CONFLICT), tx("c", 1_700_000_020, TX_VALID, "other"), tx("d", 1_700_000_025, TX_VALID)],
    };
    const parsed = parseBlock(encodeBlock(peer, block).serializeBinary());
    expect(parsed.number).toBe(7);
    expect(parsed.timestamp).toBe(1_700_000_030);
    expect(parsed.transactions.map((t) => [t.txId, t.validationCode, t.type])).toEqual([
      ["a", 0, 3],
      ["b", 11, 3],
      ["c", 0, 3],
      ["d", 0, 3],
    ]);
    expect(chaincodeEventsOf(parsed, "custodia").map((e) => [e.txId, e.logIndex, e.eventName, Buffer.from(e.payload).toString()])).toEqual([
      ["a", 0, "DataCommitted", '{"n":"a"}'],
      ["d", 1, "DataCommitted", '{"n":"d"}'],
    ]);
    const genesis = parseBlock(encodeBlock(peer, peer.block(0)!));
    expect(genesis).toMatchObject({ number: 0, transactions: [{ type: 1 }] });
    expect(genesis.timestamp).toBe(peer.block(0)!.timestamp);
    expect(chainHeight(new (await import("@hyperledger/fabric-protos")).common.BlockchainInfo().serializeBinary())).toBe(0);
  });
});

describe("the adapter against the fake gateway", () => {
  let peer: MemoryPeer;
  let server: MemoryGatewayServer;
  let ca: TestCa;
  let admin: FabricLedger;
  const open: FabricLedger[] = [];
  const connect = (identity: TestIdentity, over: Partial<FabricConfig> = {}, endpoint = server.address): FabricLedger => {
    const l = FabricLedger.connect({ peerEndpoint: endpoint, insecure: true, channel: "custodia", chaincode: "custodia", identity, pollMs: 20, ...over });
    open.push(l);
    return l;
  };

  beforeAll(async () => {
    peer = await MemoryPeer.create();
    server = await new MemoryGatewayServer(peer).start();
    ca = new TestCa("Org1MSP");
    admin = connect(ca.newIdentity("admin"));
    await admin.initLedger({ chainId: 31337, verifyingContract: Wallet.createRandom().address });
  });
  afterAll(async () => {
    for (const l of open) await l.close();
    await server.stop();
  });

  it("signs as the configured identity, also when cert and key are MSP directories", async () => {
    const id = ca.newIdentity("dirs");
    const dir = mkdtempSync(join(tmpdir(), "custodia-msp-"));
    try {
      mkdirSync(join(dir, "signcerts"));
      mkdirSync(join(dir, "keystore"));
      writeFileSync(join(dir, "signcerts", "cert.pem"), id.certificate);
      writeFileSync(join(dir, "keystore", "priv_sk"), id.privateKey);
      const ledger = connect(id, { identity: { mspId: "Org1MSP", certPath: join(dir, "signcerts"), keyPath: join(dir, "keystore") } });
      const who = await ledger.whoAmI();
      expect(who.account).toBe(fabricAccount("Org1MSP", who.id));
      expect(await ledger.account()).toBe(who.account);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // a key that does not match the certificate is refused by the endpoint
    const mismatched = { ...ca.newIdentity(), privateKey: ca.newIdentity().privateKey };
    await expectCode(connect(mismatched).account(), "UNAUTHORIZED");
  });

  it("reports an unreachable peer and a slow one as LEDGER_UNAVAILABLE", async () => {
    const nowhere = connect(ca.newIdentity(), { timeouts: { evaluateMs: 2_000, endorseMs: 2_000 } }, "127.0.0.1:1");
    await expectCode(nowhere.blockNumber(), "LEDGER_UNAVAILABLE");
    await expectCode(nowhere.registerMember({ account: Wallet.createRandom().address as Address, didHash: h("d"), role: "AUDITOR", orgHash: h("o") }), "LEDGER_UNAVAILABLE");
    const slowServer = await new MemoryGatewayServer(peer, { delayMs: 300 }).start();
    try {
      const slow = connect(ca.newIdentity(), { timeouts: { evaluateMs: 50 } }, slowServer.address);
      const e = await expectCode(slow.blockNumber(), "LEDGER_UNAVAILABLE");
      expect(e.details?.["grpcCode"]).toBe(grpc.status.DEADLINE_EXCEEDED);
    } finally {
      await slowServer.stop();
    }
  });

  it("rejects a transaction committed invalid (MVCC conflict) with LEDGER_REVERTED", async () => {
    const slowServer = await new MemoryGatewayServer(peer, { delayMs: 50 }).start();
    try {
      const a = connect(ca.newIdentity("admin"), {}, slowServer.address);
      const partner = await connect(ca.newIdentity()).account();
      await admin.registerMember({ account: partner, didHash: h("p"), role: "PARTNER", orgHash: h("p") });
      const t = await admin.blockTime();
      const terms = { partner, purposes: 1, categories: 1, validFrom: t, validUntil: t + 3600, termsHash: h("t") };
      // both endorsed against the same agreement counter before either commits
      const results = await Promise.allSettled([a.registerAgreement(terms), a.registerAgreement(terms)]);
      const rejected = results.filter((r): r is PromiseRejectedResult => r.status === "rejected");
      expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
      expect(rejected).toHaveLength(1);
      expect(rejected[0]!.reason).toBeInstanceOf(CustodiaError);
      expect((rejected[0]!.reason as CustodiaError).code).toBe("LEDGER_REVERTED");
      expect((rejected[0]!.reason as CustodiaError).details?.["validationCode"]).toBe(TX_MVCC_READ_CONFLICT);
      // the invalid transaction is on the ledger, without effect and without an event
      const head = await admin.blockNumber();
      expect(parseBlock(encodeBlock(peer, peer.block(head)!)).transactions[0]!.validationCode).toBe(TX_MVCC_READ_CONFLICT);
      expect(await admin.events(head, head)).toEqual([]);
    } finally {
      await slowServer.stop();
    }
  });

  it("reads bounded event ranges from delivered blocks, and checkpoints' blocks from qscc", async () => {
    const gw = connect(ca.newIdentity());
    const gatewayAccount = await gw.account();
    await admin.registerMember({ account: gatewayAccount, didHash: h("g"), role: "GATEWAY", orgHash: h("g") });
    const logId = h(`log ${Math.random()}`);
    const first = await gw.anchorCheckpoint({ logId, treeSize: 1, root: h("r1") });
    const second = await gw.anchorCheckpoint({ logId, treeSize: 2, root: h("r2") });
    const deliveries = server.calls["deliver"] ?? 0;
    const only = await admin.events(first.blockNumber, first.blockNumber);
    expect(only.map((e) => [e.type, e.blockNumber, e.txId, e.logIndex])).toEqual([["CheckpointAnchored", first.blockNumber, first.txId, 0]]);
    expect(server.calls["deliver"]).toBe(deliveries + 1);
    expect(await admin.events(second.blockNumber + 1)).toEqual([]);
    const history = await admin.checkpoints(logId);
    expect(history.map((c) => [c.treeSize, c.blockNumber])).toEqual([
      [1, first.blockNumber],
      [2, second.blockNumber],
    ]);
    expect(history[0]!.timestamp).toBe(await admin.blockTime(first.blockNumber));
  });

  it("watches through the chaincode-event stream, with heartbeats and at-least-once redelivery", async () => {
    const relayer = connect(ca.newIdentity());
    const domain = await admin.eip712Domain();
    const partner = Wallet.createRandom().address as Address;
    const grant = async (): Promise<number> => {
      const subject = Wallet.createRandom();
      const message: ConsentGrantMessage = { subject: subject.address as Address, partner, purpose: 1, categories: 1, expiresAt: 0, receiptHash: h("r"), nonce: 0, deadline: (await admin.blockTime()) + 3600 };
      return (await relayer.grantConsent(message, await signTyped(subject, domain, "ConsentGrant", message))).blockNumber;
    };
    const streams = server.calls["chaincodeEvents"] ?? 0;
    const from = (await admin.blockNumber()) + 1;
    const batches: { events: LedgerEvent[]; through: number }[] = [];
    const errors: unknown[] = [];
    let failOnce = true;
    const watcher = admin.watch(
      from,
      (events, through) => {
        if (events.length > 0 && failOnce) {
          failOnce = false;
          throw new Error("consumer hiccup");
        }
        batches.push({ events, through });
      },
      { pollMs: 20, onError: (e) => errors.push(e) },
    );
    try {
      // idle: heartbeats report the head
      const head = from - 1;
      for (let i = 0; i < 100 && !batches.some((b) => b.through >= head); i++) await sleep(10);
      expect(batches.some((b) => b.events.length === 0 && b.through === head)).toBe(true);
      const b1 = await grant();
      const b2 = await grant();
      const deadline = Date.now() + 5_000;
      while (!batches.some((b) => b.through >= b2 && b.events.length > 0 && b.events.some((e) => e.blockNumber === b2)) && Date.now() < deadline) await sleep(10);
      const delivered = batches.flatMap((b) => b.events);
      expect(delivered.map((e) => [e.type, e.blockNumber])).toEqual([
        ["ConsentGranted", b1],
        ["ConsentGranted", b2],
      ]);
      expect(errors.map((e) => (e as Error).message)).toContain("consumer hiccup");
      // every batch reaches at least as far as its events, and throughBlock never goes back
      for (const b of batches) for (const e of b.events) expect(b.through).toBeGreaterThanOrEqual(e.blockNumber);
      const throughs = batches.map((b) => b.through);
      expect([...throughs].sort((x, y) => x - y)).toEqual(throughs);
      expect(server.calls["chaincodeEvents"]).toBeGreaterThan(streams);
    } finally {
      await watcher.stop();
    }
  });

  it("keeps a watcher alive while the peer is down, reporting LEDGER_UNAVAILABLE", async () => {
    const nowhere = connect(ca.newIdentity(), { timeouts: { evaluateMs: 1_000 } }, "127.0.0.1:1");
    const errors: CustodiaError[] = [];
    const watcher = nowhere.watch(0, () => undefined, { pollMs: 20, onError: (e) => errors.push(e as CustodiaError) });
    for (let i = 0; i < 200 && errors.length < 2; i++) await sleep(10);
    await watcher.stop();
    expect(errors.length).toBeGreaterThanOrEqual(2);
    expect(errors.every((e) => e instanceof CustodiaError && e.code === "LEDGER_UNAVAILABLE")).toBe(true);
  });
});
