/**
 * The chaincode beyond the shared conformance suite: Fabric-specific behaviour (initialisation,
 * identity-bound accounts, transaction time, argument decoding, the direct variants, determinism,
 * canonical state and events) and the stand-in peer's own fidelity (fabric-shim's key encoding,
 * key order, no read-your-writes, failed transactions leave nothing).
 */
import { createRequire } from "node:module";
import { Wallet } from "ethers";
import { beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES, categoryMask, purposeId, type Address, type Bytes32 } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type Eip712Domain } from "../../core/eip712.js";
import { canonicalize } from "../../core/jcs.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { fabricAccount } from "../../chaincode/src/identity.js";
import { parseRuleError } from "../../chaincode/src/protocol.js";
import { expectCode } from "../ledger/conformance.js";
import { chaincodeFromContracts } from "./support/load-chaincode.js";
import {
  createCompositeKey,
  EndorsementFailure,
  MemoryPeer,
  MemoryWorldState,
  SimulationStub,
  splitCompositeKey,
  TX_MVCC_READ_CONFLICT,
  TX_PHANTOM_READ_CONFLICT,
  TX_VALID,
} from "./support/memory-peer.js";
import { MemoryFabricLedger, startMemoryNetwork, type MemoryNetwork } from "./support/memory-ledger.js";
import { TestCa } from "./support/x509.js";

const require = createRequire(import.meta.url);
const HOUR = 3600;
const h = (label: string): Bytes32 => toHex0x(sha256(new TextEncoder().encode(label)));
const DOMAIN_INPUT = { chainId: 31337, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };

describe("stand-in peer fidelity", () => {
  it("encodes and splits composite keys exactly as fabric-shim does", () => {
    const ChaincodeStub = require("fabric-shim/lib/stub.js") as { prototype: Record<string, (...a: unknown[]) => unknown> };
    const cases: [string, string[]][] = [
      ["member", ["0xAbC0000000000000000000000000000000000001"]],
      ["checkpoint", ["0x" + "ab".repeat(32), "00000000000000000010"]],
      ["config", []],
      ["ünïcode", ["ключ", "🔑"]],
    ];
    for (const [type, attrs] of cases) {
      const ours = createCompositeKey(type, attrs);
      expect(ours).toBe(ChaincodeStub.prototype["createCompositeKey"]!.call({}, type, attrs));
      expect(ours.startsWith("\u0000")).toBe(true);
      expect(splitCompositeKey(ours)).toEqual(ChaincodeStub.prototype["splitCompositeKey"]!.call({}, ours));
    }
    expect(() => createCompositeKey("member", [""])).toThrow(/non-zero length/);
    expect(() => createCompositeKey("member", ["a\u0000b"])).toThrow(/U\+0000/);
  });

  it("scans partial composite keys in UTF-8 byte order, over committed state only", async () => {
    const world = new MemoryWorldState();
    // U+FF5E sorts before U+1F511 in UTF-8 but after it in UTF-16
    world.apply(new Map([
      [createCompositeKey("t", ["\u{1F511}"]), Buffer.from("2")],
      [createCompositeKey("t", ["\uFF5E"]), Buffer.from("1")],
      [createCompositeKey("u", ["x"]), Buffer.from("other type")],
      ["simple", Buffer.from("simple key")],
    ]));
    const caller = new TestCa("Org1MSP").newIdentity();
    const stub = new SimulationStub(world, { txId: "t1", channelId: "c", peerMspId: "Org1MSP", timestampMs: Date.now(), creator: caller, args: ["f"] });
    await stub.putState(createCompositeKey("t", ["a"]), Buffer.from("pending"));
    const seen: string[] = [];
    for await (const kv of stub.getStateByPartialCompositeKey("t", [])) seen.push(Buffer.from(kv.value).toString());
    expect(seen).toEqual(["1", "2"]);
    const simple: string[] = [];
    for await (const kv of stub.getStateByRange("", "")) simple.push(kv.key);
    expect(simple).toEqual(["simple"]);
  });

  it("does not let a transaction read its own writes", async () => {
    const world = new MemoryWorldState();
    const key = createCompositeKey("k", ["1"]);
    world.apply(new Map([[key, Buffer.from("committed")]]));
    const stub = new SimulationStub(world, { txId: "t", channelId: "c", peerMspId: "Org1MSP", timestampMs: Date.now(), creator: new TestCa("Org1MSP").newIdentity(), args: ["f"] });
    await stub.putState(key, Buffer.from("written"));
    await stub.putState(createCompositeKey("k", ["2"]), Buffer.from("new"));
    expect(Buffer.from(await stub.getState(key)).toString()).toBe("committed");
    expect((await stub.getState(createCompositeKey("k", ["2"]))).length).toBe(0);
    await stub.deleteState(key);
    expect(Buffer.from(await stub.getState(key)).toString()).toBe("committed");
    expect(world.get(key)?.toString()).toBe("committed");
  });
});

describe("stand-in peer validation at commit", () => {
  it("invalidates stale reads (MVCC) and changed range results (phantoms), without effect", async () => {
    const net = await startMemoryNetwork(DOMAIN_INPUT);
    const admin = net.admin.identity;
    const partner = net.newLedger();
    const account = await partner.account();
    await net.admin.registerMember({ account, didHash: h("p"), role: "PARTNER", orgHash: h("p") });
    const t = await net.admin.blockTime();
    const args = [account, "1", "1", String(t), String(t + HOUR), h("terms")];
    // two endorsements of the same write, and one of a scan over the partner's agreements
    const first = await net.peer.endorse(admin, "RegisterAgreement", args);
    const second = await net.peer.endorse(admin, "RegisterAgreement", args);
    const scan = await net.peer.endorse(admin, "AgreementsOf", [account]);
    expect(net.peer.commit(first).validationCode).toBe(TX_VALID);
    const stale = net.peer.commit(second);
    expect(stale.validationCode).toBe(TX_MVCC_READ_CONFLICT);
    expect(net.peer.commit(scan).validationCode).toBe(TX_PHANTOM_READ_CONFLICT);
    expect(await net.admin.agreementsOf(account)).toEqual([1n]);
    // the invalid transaction is in its block, but its event is not reported
    expect(net.peer.block(stale.blockNumber)!.transactions[0]!.event?.name).toBe("AgreementRegistered");
    expect(await net.admin.events(stale.blockNumber, stale.blockNumber)).toEqual([]);
  });
});

describe("Custodia chaincode on the stand-in peer", () => {
  let net: MemoryNetwork;
  let domain: Eip712Domain;

  beforeAll(async () => {
    net = await startMemoryNetwork(DOMAIN_INPUT);
    domain = await net.admin.eip712Domain();
  });

  describe("initialisation and identity", () => {
    it("initialises once, stores the domain and makes the caller the first ADMIN", async () => {
      expect(domain).toMatchObject({ name: "Custodia", version: "1", chainId: 31337n, verifyingContract: DOMAIN_INPUT.verifyingContract });
      const admin = await net.admin.account();
      expect(await net.admin.getMember(admin)).toMatchObject({ role: "ADMIN", active: true, didHash: `0x${"0".repeat(64)}` });
      const genesis = await net.admin.events(0);
      expect(genesis[0]).toMatchObject({ type: "MemberRegistered", account: admin, role: "ADMIN", blockNumber: 1 });
      await expectCode(net.newLedger().initLedger(DOMAIN_INPUT), "UNAUTHORIZED");
    });

    it("refuses everything but identity and reads before InitLedger", async () => {
      const peer = await MemoryPeer.create();
      const ledger = new MemoryFabricLedger(peer, new TestCa("Org1MSP").newIdentity());
      expect(await ledger.account()).toMatch(/^0x[0-9a-fA-F]{40}$/);
      await expectCode(ledger.eip712Domain(), "LEDGER_NOT_DEPLOYED");
      await expectCode(ledger.registerMember({ account: Wallet.createRandom().address as Address, didHash: h("d"), role: "PARTNER", orgHash: h("o") }), "LEDGER_NOT_DEPLOYED");
      expect(await ledger.getMember(await ledger.account())).toBeNull();
      expect(peer.height).toBe(1);
    });

    it("derives each caller's account from its MSP id and certificate subject and issuer", async () => {
      const ca = new TestCa("Org2MSP");
      const id = ca.newIdentity("carol");
      const who = await net.admin.as(id).whoAmI();
      expect(who.mspId).toBe("Org2MSP");
      expect(who.id).toBe("x509::/C=US/O=org2.example.com/OU=client/CN=carol::/C=US/O=org2.example.com/CN=ca.org2.example.com");
      expect(who.account).toBe(fabricAccount("Org2MSP", who.id));
      // a renewed certificate (new key, same subject and issuer) is the same account; another MSP is not
      expect(await net.admin.as(ca.newIdentity("carol")).account()).toBe(who.account);
      expect(fabricAccount("Org1MSP", who.id)).not.toBe(who.account);
    });

    it("rejects reads at a past block (no historical state on a peer)", async () => {
      const e = await expectCode(net.admin.getMember(await net.admin.account(), { block: 1 }), "INVALID_ARGUMENT");
      expect(e.details).toMatchObject({ capability: "historicalReads" });
    });
  });

  describe("transactions, blocks and state", () => {
    it("commits one transaction per block with one Solidity-named event, canonical JSON everywhere", async () => {
      const before = net.peer.height;
      const account = Wallet.createRandom().address as Address;
      const tx = await net.admin.registerMember({ account, didHash: h("did"), role: "AUDITOR", orgHash: h("org") });
      expect(tx.blockNumber).toBe(before);
      const block = net.peer.block(tx.blockNumber)!;
      expect(block.transactions).toHaveLength(1);
      expect(block.transactions[0]!.txId).toBe(tx.txId);
      const event = block.transactions[0]!.event!;
      expect(event.name).toBe("MemberRegistered");
      const payload = event.payload.toString("utf8");
      expect(payload).toBe(canonicalize(JSON.parse(payload)));
      expect(JSON.parse(payload)).toMatchObject({ type: "MemberRegistered", account, role: "AUDITOR", didHash: h("did"), orgHash: h("org"), time: block.timestamp });
      for (const { key, value } of net.peer.world.range("", "")) {
        expect(key.startsWith("\u0000"), "composite keys only").toBe(true);
        expect(value.toString("utf8")).toBe(canonicalize(JSON.parse(value.toString("utf8"))));
      }
    });

    it("leaves no writes, block or event behind a failed transaction", async () => {
      const height = net.peer.height;
      const size = net.peer.world.size;
      const outsider = net.newLedger();
      await expectCode(outsider.registerMember({ account: Wallet.createRandom().address as Address, didHash: h("d"), role: "ADMIN", orgHash: h("o") }), "UNAUTHORIZED");
      expect(net.peer.height).toBe(height);
      expect(net.peer.world.size).toBe(size);
    });

    it("endorses deterministically: the same proposal gives the same write set and event", async () => {
      const chaincode = await chaincodeFromContracts();
      const admin = net.admin.identity;
      const args = ["RegisterMember", Wallet.createRandom().address, h("did"), "GATEWAY", h("org")];
      const runs = [];
      for (let i = 0; i < 2; i++) {
        const stub = new SimulationStub(net.peer.world, { txId: "f".repeat(64), channelId: "custodia", peerMspId: "Org1MSP", timestampMs: 1_800_000_000_000, creator: admin, args });
        const r = await chaincode.Invoke(stub);
        expect(r.status).toBe(200);
        runs.push({ writes: [...stub.writes].map(([k, v]) => [k, v?.toString("hex")]), event: stub.event && [stub.event.name, stub.event.payload.toString("hex")] });
      }
      expect(runs[1]).toEqual(runs[0]);
      expect(runs[0]!.writes).toHaveLength(1);
    });

    it("lists a partner's agreements in numeric id order (zero-padded composite keys)", async () => {
      const partner = net.newLedger();
      const account = await partner.account();
      await net.admin.registerMember({ account, didHash: h("p"), role: "PARTNER", orgHash: h("p") });
      const t = await net.admin.blockTime();
      const ids: bigint[] = [];
      for (let i = 0; i < 11; i++) {
        ids.push((await net.admin.registerAgreement({ partner: account, purposes: 1, categories: 1, validFrom: t, validUntil: t + HOUR, termsHash: h(`t${i}`) })).id);
      }
      expect(ids[10]! - ids[0]!).toBe(10n);
      expect(await net.admin.agreementsOf(account)).toEqual(ids);
    });

    it("uses the transaction timestamp as now", async () => {
      let clock = Date.now();
      const peer = await MemoryPeer.create({ clock: () => clock });
      const ca = new TestCa("Org1MSP");
      const admin = new MemoryFabricLedger(peer, ca.newIdentity());
      await admin.initLedger(DOMAIN_INPUT);
      const d = await admin.eip712Domain();
      const subject = Wallet.createRandom();
      const partner = Wallet.createRandom().address as Address;
      const now = Math.floor(clock / 1000);
      const message: ConsentGrantMessage = { subject: subject.address as Address, partner, purpose: 1, categories: 1, expiresAt: 0, receiptHash: h("r"), nonce: 0, deadline: now + 10 };
      const signature = await signTyped(subject, d, "ConsentGrant", message);
      clock += 11_000; // the deadline is inclusive: now + 10 still passes, now + 11 does not
      await expectCode(admin.grantConsent(message, signature), "SIGNATURE_EXPIRED");
      clock -= 1_000;
      const tx = await admin.grantConsent(message, signature);
      expect((await admin.getConsent(message.subject, partner, 1)).grantedAt).toBe(now + 10);
      expect(await admin.blockTime(tx.blockNumber)).toBe(now + 10);
    });
  });

  describe("argument decoding (the ABI types of ICustodia)", () => {
    it("accepts only canonical decimals within range, and valid addresses and bytes32", async () => {
      const peer = net.peer;
      const caller = net.admin.identity;
      const subject = Wallet.createRandom().address;
      const partner = Wallet.createRandom().address;
      const code = async (fn: string, args: string[]): Promise<string | undefined> => {
        try {
          await peer.evaluate(caller, fn, args);
          return undefined;
        } catch (e) {
          return e instanceof EndorsementFailure ? parseRuleError(e.message)?.code : "not an endorsement failure";
        }
      };
      expect(await code("CheckPermission", [subject, partner, "1", "1", "1700000000"])).toBeUndefined();
      for (const purpose of ["01", "-1", "1e0", " 1", "256", "0x1", ""]) expect(await code("CheckPermission", [subject, partner, purpose, "1", "1"]), purpose).toBe("INVALID_ARGUMENT");
      expect(await code("CheckPermission", [subject, partner, "32", "1", "1"])).toBe("INVALID_PURPOSE");
      expect(await code("CheckPermission", [subject, partner, "1", "128", "1"])).toBe("INVALID_CATEGORIES");
      expect(await code("CheckPermission", [subject, partner, "1", "1", (2n ** 64n).toString()])).toBe("INVALID_ARGUMENT");
      expect(await code("CheckPermission", [subject.toLowerCase(), partner, "1", "1", "1"])).toBeUndefined();
      // mixed case must be a valid EIP-55 checksum (flip the case of one letter of a checksummed address)
      expect(await code("Member", ["0x5fbDB2315678afecb367f032d93F642f64180aa3"])).toBe("INVALID_ADDRESS");
      for (const bad of ["0x1234", "abcd" + subject.slice(2), subject + "00", "vitalik.eth"]) expect(await code("Member", [bad]), bad).toBe("INVALID_ADDRESS");
      for (const bad of ["0x12", h("x").toUpperCase(), h("x").slice(2)]) expect(await code("CommitmentOf", [bad]), bad).toBe("INVALID_ARGUMENT");
    });
  });

  describe("direct variants (the caller's own account is the subject)", () => {
    it("grants and revokes directly, consuming the nonce of outstanding signed messages", async () => {
      const member = net.newLedger();
      const self = await member.account();
      const partner = Wallet.createRandom().address as Address;
      const purpose = purposeId("research");
      const chaincode = member.peer;
      await chaincode.submit(member.identity, "GrantConsentDirect", [partner, String(purpose), String(CATEGORIES.transactions), "0", h("receipt")]);
      expect(await member.getConsent(self, partner, purpose)).toMatchObject({ categories: CATEGORIES.transactions, nonce: 1, revokedAt: 0 });
      await chaincode.submit(member.identity, "RevokeConsentDirect", [partner, String(purpose)]);
      expect(await member.getConsent(self, partner, purpose)).toMatchObject({ nonce: 2 });
      await expect(chaincode.submit(member.identity, "RevokeConsentDirect", [partner, String(purpose)])).rejects.toThrow(/CUSTODIA:CONSENT_NOT_ACTIVE: ConsentNotActive/);
    });

    it("commits and erases directly without touching the data nonce; only the owner erases", async () => {
      const owner = net.newLedger();
      const other = net.newLedger();
      const self = await owner.account();
      const c = h(`direct ${self}`);
      await owner.peer.submit(owner.identity, "CommitDataDirect", [c]);
      expect(await owner.getCommitment(c)).toMatchObject({ subject: self, erasedAt: 0 });
      expect(await owner.dataNonce(self)).toBe(0n);
      await expect(other.peer.submit(other.identity, "RecordErasureDirect", [c])).rejects.toThrow(/CUSTODIA:UNAUTHORIZED: DataNotOwner/);
      await owner.peer.submit(owner.identity, "RecordErasureDirect", [c]);
      expect((await owner.getCommitment(c))!.erasedAt).toBeGreaterThan(0);
      await expect(owner.peer.submit(owner.identity, "CommitDataDirect", [`0x${"0".repeat(64)}`])).rejects.toThrow(/CUSTODIA:INVALID_ARGUMENT: DataInvalidCommitment/);
    });
  });

  describe("rule errors", () => {
    it("carry the core code, the Solidity error name and its arguments", async () => {
      const subject = Wallet.createRandom();
      const partner = Wallet.createRandom().address as Address;
      const t = await net.admin.blockTime();
      const message: ConsentGrantMessage = { subject: subject.address as Address, partner, purpose: 2, categories: categoryMask(["contact"]), expiresAt: 0, receiptHash: h("r"), nonce: 5, deadline: t + HOUR };
      const e = await expectCode(net.admin.grantConsent(message, await signTyped(subject, domain, "ConsentGrant", message)), "NONCE_INVALID");
      expect(e.details).toEqual({ error: "NonceInvalid", args: { subject: subject.address, expected: "0", given: "5" } });
      const anchorer = net.newLedger();
      const e2 = await expectCode(anchorer.anchorCheckpoint({ logId: h("log"), treeSize: 1, root: h("root") }), "UNAUTHORIZED");
      expect(e2.details).toEqual({ error: "MembershipUnauthorized", args: { account: await anchorer.account(), needed: "GATEWAY" } });
    });
  });
});
