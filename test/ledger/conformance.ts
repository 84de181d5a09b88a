/**
 * The ledger-port conformance suite. Any adapter (EVM, Fabric, the chaincode's in-memory stand-in)
 * runs it through `describeLedgerConformance`. It speaks only the port and core's error codes, so
 * one suite pins one set of semantics for every ledger.
 */
import { Wallet, type BaseWallet } from "ethers";
import { beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES, categoryMask, purposeId, purposeMask, type Address, type Bytes32 } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type DataCommitmentMessage, type Eip712Domain } from "../../core/eip712.js";
import { CustodiaError, type ErrorCode } from "../../core/errors.js";
import { sha256, toHex0x } from "../../core/hash.js";
import type { LedgerEvent, LedgerPort } from "../../core/ledger.js";

export interface ConformanceEnv {
  /** The consortium admin. */
  admin: LedgerPort;
  /**
   * Ledger handles for accounts that are not members yet; the suite registers the roles it needs.
   * Each call returns a fresh, funded identity.
   */
  newAccount(): Promise<LedgerPort>;
  /** Whether reads at a past block are supported (EVM archive reads; Fabric has none). */
  historicalReads: boolean;
}

export type ConformanceSetup = () => Promise<ConformanceEnv>;

const HOUR = 3600;
const PROFILING = purposeId("profiling");
const MARKETING = purposeId("direct-marketing");
const RESEARCH = purposeId("research");
const TXN_DEMO = categoryMask(["transactions", "demographic"]);

function h(label: string): Bytes32 {
  return toHex0x(sha256(new TextEncoder().encode(label)));
}

export async function expectCode(p: Promise<unknown>, code: ErrorCode): Promise<CustodiaError> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected a CustodiaError ${code}, but the call succeeded`).toBeInstanceOf(CustodiaError);
  expect((caught as CustodiaError).code).toBe(code);
  return caught as CustodiaError;
}

export function describeLedgerConformance(name: string, setup: ConformanceSetup): void {
  describe(`ledger port conformance: ${name}`, () => {
    let env: ConformanceEnv;
    let admin: LedgerPort;
    let gateway: LedgerPort;
    let partner: LedgerPort;
    let partnerAddr: Address;
    let relayer: LedgerPort;
    let domain: Eip712Domain;
    let agreementId: bigint;

    async function register(role: "GATEWAY" | "PARTNER" | "AUDITOR" | "ADMIN"): Promise<{ ledger: LedgerPort; account: Address }> {
      const ledger = await env.newAccount();
      const account = await ledger.account();
      await admin.registerMember({ account, didHash: h(`did:${account}`), role, orgHash: h(`org ${role}`) });
      return { ledger, account };
    }

    async function now(): Promise<number> {
      return admin.blockTime();
    }

    async function signedGrant(subject: BaseWallet, over: Partial<ConsentGrantMessage> = {}, signer: BaseWallet = subject): Promise<{ message: ConsentGrantMessage; signature: string }> {
      const p = over.partner ?? partnerAddr;
      const purpose = over.purpose ?? PROFILING;
      const current = await admin.getConsent(subject.address as Address, p, purpose);
      const message: ConsentGrantMessage = {
        subject: subject.address as Address,
        partner: p,
        purpose,
        categories: TXN_DEMO,
        expiresAt: 0,
        receiptHash: h(`receipt ${subject.address} ${p} ${purpose}`),
        nonce: current.nonce,
        deadline: (await now()) + HOUR,
        ...over,
      };
      return { message, signature: await signTyped(signer, domain, "ConsentGrant", message) };
    }

    async function signedRevoke(subject: BaseWallet, over: Partial<ConsentRevokeMessage> = {}): Promise<{ message: ConsentRevokeMessage; signature: string }> {
      const p = over.partner ?? partnerAddr;
      const purpose = over.purpose ?? PROFILING;
      const current = await admin.getConsent(subject.address as Address, p, purpose);
      const message: ConsentRevokeMessage = { subject: subject.address as Address, partner: p, purpose, nonce: current.nonce, deadline: (await now()) + HOUR, ...over };
      return { message, signature: await signTyped(subject, domain, "ConsentRevoke", message) };
    }

    async function signedData(kind: "DataCommitment" | "ErasureRequest", subject: BaseWallet, commitment: Bytes32, over: Partial<DataCommitmentMessage> = {}): Promise<{ message: DataCommitmentMessage; signature: string }> {
      const message: DataCommitmentMessage = {
        subject: subject.address as Address,
        commitment,
        nonce: await admin.dataNonce(subject.address as Address),
        deadline: (await now()) + HOUR,
        ...over,
      };
      return { message, signature: await signTyped(subject, domain, kind, message) };
    }

    async function permission(subject: BaseWallet, over: { partner?: Address; purpose?: number; categories?: number; time?: number } = {}, block?: number) {
      return (relayer ?? admin).checkPermission(
        { subject: subject.address as Address, partner: over.partner ?? partnerAddr, purpose: over.purpose ?? PROFILING, categories: over.categories ?? CATEGORIES.transactions, time: over.time ?? (await now()) },
        block === undefined ? undefined : { block },
      );
    }

    beforeAll(async () => {
      env = await setup();
      admin = env.admin;
      domain = await admin.eip712Domain();
      gateway = (await register("GATEWAY")).ledger;
      const p = await register("PARTNER");
      partner = p.ledger;
      partnerAddr = p.account;
      relayer = await env.newAccount();
      const t = await now();
      const r = await admin.registerAgreement({
        partner: partnerAddr,
        purposes: purposeMask(["profiling", "direct-marketing"]),
        categories: categoryMask(["transactions", "demographic", "contact"]),
        validFrom: t - HOUR,
        validUntil: t + 365 * 24 * HOUR,
        termsHash: h("terms v1"),
      });
      agreementId = r.id;
    });

    describe("domain", () => {
      it("exposes the Custodia EIP-712 domain", () => {
        expect(domain.name).toBe("Custodia");
        expect(domain.version).toBe("1");
      });
    });

    describe("membership", () => {
      it("registers a member and reads it back", async () => {
        const { account } = await register("AUDITOR");
        const m = await admin.getMember(account);
        expect(m).toMatchObject({ account, role: "AUDITOR", active: true, didHash: h(`did:${account}`), orgHash: h("org AUDITOR") });
      });

      it("answers null for an account that was never registered", async () => {
        const stranger = await (await env.newAccount()).account();
        expect(await admin.getMember(stranger)).toBeNull();
      });

      it("rejects a second registration of the same account", async () => {
        const { account } = await register("PARTNER");
        await expectCode(admin.registerMember({ account, didHash: h("x"), role: "PARTNER", orgHash: h("y") }), "MEMBER_EXISTS");
      });

      it("lets only an active admin register or deactivate", async () => {
        const target = await (await env.newAccount()).account();
        await expectCode(partner.registerMember({ account: target, didHash: h("x"), role: "PARTNER", orgHash: h("y") }), "UNAUTHORIZED");
        await expectCode(gateway.deactivateMember(partnerAddr), "UNAUTHORIZED");
        await expectCode(relayer.registerMember({ account: target, didHash: h("x"), role: "ADMIN", orgHash: h("y") }), "UNAUTHORIZED");
      });

      it("deactivates a member once; unknown and repeated deactivations are rejected", async () => {
        const { account } = await register("AUDITOR");
        await admin.deactivateMember(account);
        expect((await admin.getMember(account))?.active).toBe(false);
        await expectCode(admin.deactivateMember(account), "MEMBER_INACTIVE");
        await expectCode(admin.deactivateMember(await (await env.newAccount()).account()), "MEMBER_UNKNOWN");
      });

      it("takes every right from a deactivated admin", async () => {
        const second = await register("ADMIN");
        await admin.deactivateMember(second.account);
        const target = await (await env.newAccount()).account();
        await expectCode(second.ledger.registerMember({ account: target, didHash: h("x"), role: "PARTNER", orgHash: h("y") }), "UNAUTHORIZED");
      });
    });

    describe("agreements", () => {
      it("registers an agreement and lists it for its partner", async () => {
        const a = await admin.getAgreement(agreementId);
        expect(a).toMatchObject({ id: agreementId, partner: partnerAddr, purposes: purposeMask(["profiling", "direct-marketing"]), active: true, termsHash: h("terms v1") });
        expect(await admin.agreementsOf(partnerAddr)).toContain(agreementId);
      });

      it("answers null for an unknown agreement", async () => {
        expect(await admin.getAgreement(987654321n)).toBeNull();
      });

      it("refuses agreements for non-partners and with empty or inverted terms", async () => {
        const t = await now();
        const aud = await register("AUDITOR");
        const base = { partner: partnerAddr, purposes: 1, categories: 1, validFrom: t, validUntil: t + HOUR, termsHash: h("t") };
        await expectCode(admin.registerAgreement({ ...base, partner: aud.account }), "AGREEMENT_INVALID");
        await expectCode(admin.registerAgreement({ ...base, purposes: 0 }), "AGREEMENT_INVALID");
        await expectCode(admin.registerAgreement({ ...base, categories: 0 }), "AGREEMENT_INVALID");
        await expectCode(admin.registerAgreement({ ...base, categories: 0x80 }), "AGREEMENT_INVALID");
        await expectCode(admin.registerAgreement({ ...base, validUntil: t }), "AGREEMENT_INVALID");
        await expectCode(partner.registerAgreement(base), "UNAUTHORIZED");
      });

      it("ends an agreement once and denies access under it", async () => {
        const p = await register("PARTNER");
        const t = await now();
        const { id } = await admin.registerAgreement({ partner: p.account, purposes: purposeMask(["research"]), categories: CATEGORIES.transactions, validFrom: t - 10, validUntil: t + HOUR, termsHash: h("r") });
        const subject = Wallet.createRandom();
        const g = await signedGrant(subject, { partner: p.account, purpose: RESEARCH });
        await relayer.grantConsent(g.message, g.signature);
        expect((await permission(subject, { partner: p.account, purpose: RESEARCH })).allowed).toBe(true);
        await expectCode(partner.endAgreement(id), "UNAUTHORIZED");
        await admin.endAgreement(id);
        expect((await admin.getAgreement(id))?.active).toBe(false);
        expect(await permission(subject, { partner: p.account, purpose: RESEARCH })).toMatchObject({ allowed: false, reason: "NO_AGREEMENT" });
        await expectCode(admin.endAgreement(id), "AGREEMENT_ENDED");
        await expectCode(admin.endAgreement(999999n), "AGREEMENT_UNKNOWN");
      });

      it("honours the validity window", async () => {
        const p = await register("PARTNER");
        const t = await now();
        await admin.registerAgreement({ partner: p.account, purposes: purposeMask(["research"]), categories: CATEGORIES.transactions, validFrom: t + HOUR, validUntil: t + 2 * HOUR, termsHash: h("w") });
        const subject = Wallet.createRandom();
        const g = await signedGrant(subject, { partner: p.account, purpose: RESEARCH });
        await relayer.grantConsent(g.message, g.signature);
        expect(await permission(subject, { partner: p.account, purpose: RESEARCH, time: t })).toMatchObject({ allowed: false, reason: "NO_AGREEMENT" });
        expect((await permission(subject, { partner: p.account, purpose: RESEARCH, time: t + HOUR + 1 })).allowed).toBe(true);
        expect(await permission(subject, { partner: p.account, purpose: RESEARCH, time: t + 2 * HOUR })).toMatchObject({ allowed: false, reason: "NO_AGREEMENT" });
      });
    });

    describe("consent", () => {
      it("records a relayed, subject-signed grant and permits access under it", async () => {
        const subject = Wallet.createRandom();
        const { message, signature } = await signedGrant(subject);
        const tx = await relayer.grantConsent(message, signature);
        expect(tx.blockNumber).toBeGreaterThan(0);
        const c = await admin.getConsent(subject.address as Address, partnerAddr, PROFILING);
        expect(c).toMatchObject({ categories: TXN_DEMO, expiresAt: 0, revokedAt: 0, nonce: 1 });
        expect(c.grantedAt).toBeGreaterThan(0);
        expect(await permission(subject)).toEqual({ allowed: true, reason: "OK", agreementId });
      });

      it("rejects a replayed signature", async () => {
        const subject = Wallet.createRandom();
        const { message, signature } = await signedGrant(subject);
        await relayer.grantConsent(message, signature);
        await expectCode(relayer.grantConsent(message, signature), "NONCE_INVALID");
      });

      it("rejects a signature by another key and a tampered message", async () => {
        const subject = Wallet.createRandom();
        const forged = await signedGrant(subject, {}, Wallet.createRandom());
        await expectCode(relayer.grantConsent(forged.message, forged.signature), "SIGNATURE_INVALID");
        const good = await signedGrant(subject);
        await expectCode(relayer.grantConsent({ ...good.message, categories: good.message.categories | CATEGORIES.location }, good.signature), "SIGNATURE_INVALID");
        await expectCode(relayer.grantConsent({ ...good.message, partner: (await relayer.account()) }, good.signature), "SIGNATURE_INVALID");
        await expectCode(relayer.grantConsent(good.message, "0x1234"), "SIGNATURE_INVALID");
        expect((await admin.getConsent(subject.address as Address, partnerAddr, PROFILING)).grantedAt).toBe(0);
      });

      it("rejects a signature past its deadline", async () => {
        const subject = Wallet.createRandom();
        const { message, signature } = await signedGrant(subject, { deadline: (await now()) - 1 });
        await expectCode(relayer.grantConsent(message, signature), "SIGNATURE_EXPIRED");
      });

      it("validates purpose, categories, partner and expiry", async () => {
        const subject = Wallet.createRandom();
        const t = await now();
        const cases: [Partial<ConsentGrantMessage>, ErrorCode][] = [
          [{ purpose: 32 }, "INVALID_PURPOSE"],
          [{ categories: 0 }, "INVALID_CATEGORIES"],
          [{ categories: 0x80 }, "INVALID_CATEGORIES"],
          [{ partner: "0x0000000000000000000000000000000000000000" }, "INVALID_ADDRESS"],
          [{ expiresAt: t - 5 }, "CONSENT_EXPIRY_INVALID"],
        ];
        for (const [over, code] of cases) {
          const { message, signature } = await signedGrant(subject, over);
          await expectCode(relayer.grantConsent(message, signature), code);
        }
      });

      it("denies categories beyond the consent and purposes beyond the agreement", async () => {
        const subject = Wallet.createRandom();
        const g = await signedGrant(subject, { categories: CATEGORIES.transactions });
        await relayer.grantConsent(g.message, g.signature);
        expect(await permission(subject, { categories: TXN_DEMO })).toMatchObject({ allowed: false, reason: "CONSENT_CATEGORIES" });
        const r = await signedGrant(subject, { purpose: RESEARCH });
        await relayer.grantConsent(r.message, r.signature);
        expect(await permission(subject, { purpose: RESEARCH })).toMatchObject({ allowed: false, reason: "NO_AGREEMENT" });
        // categories the consent covers but the agreement does not
        const m = await signedGrant(subject, { purpose: MARKETING, categories: CATEGORIES.location | CATEGORIES.transactions });
        await relayer.grantConsent(m.message, m.signature);
        expect(await permission(subject, { purpose: MARKETING, categories: CATEGORIES.location })).toMatchObject({ allowed: false, reason: "NO_AGREEMENT" });
        expect(await permission(subject, { purpose: MARKETING, categories: CATEGORIES.transactions })).toMatchObject({ allowed: true });
      });

      it("denies without consent, and for members that are not active partners", async () => {
        const subject = Wallet.createRandom();
        // the covering agreement is reported even when consent is missing
        expect(await permission(subject)).toEqual({ allowed: false, reason: "NO_CONSENT", agreementId });
        const stranger = await (await env.newAccount()).account();
        expect(await permission(subject, { partner: stranger })).toMatchObject({ allowed: false, reason: "PARTNER_NOT_MEMBER" });
        const aud = await register("AUDITOR");
        expect(await permission(subject, { partner: aud.account })).toMatchObject({ allowed: false, reason: "NOT_A_PARTNER" });
        const p = await register("PARTNER");
        const t = await now();
        await admin.registerAgreement({ partner: p.account, purposes: purposeMask(["profiling"]), categories: CATEGORIES.transactions, validFrom: t - 10, validUntil: t + HOUR, termsHash: h("p") });
        const g = await signedGrant(subject, { partner: p.account });
        await relayer.grantConsent(g.message, g.signature);
        expect((await permission(subject, { partner: p.account })).allowed).toBe(true);
        await admin.deactivateMember(p.account);
        expect(await permission(subject, { partner: p.account })).toMatchObject({ allowed: false, reason: "PARTNER_INACTIVE" });
      });

      it("expires a consent at its expiry time", async () => {
        const subject = Wallet.createRandom();
        const t = await now();
        const g = await signedGrant(subject, { expiresAt: t + 600 });
        await relayer.grantConsent(g.message, g.signature);
        expect((await permission(subject, { time: t + 599 })).allowed).toBe(true);
        expect(await permission(subject, { time: t + 600 })).toMatchObject({ allowed: false, reason: "CONSENT_EXPIRED" });
      });

      it("revokes as easily as it grants, once, from that block on", async () => {
        const subject = Wallet.createRandom();
        const g = await signedGrant(subject);
        const granted = await relayer.grantConsent(g.message, g.signature);
        const r = await signedRevoke(subject);
        const revoked = await relayer.revokeConsent(r.message, r.signature);
        expect(revoked.blockNumber).toBeGreaterThan(granted.blockNumber);
        expect(await permission(subject)).toMatchObject({ allowed: false, reason: "CONSENT_REVOKED" });
        const c = await admin.getConsent(subject.address as Address, partnerAddr, PROFILING);
        expect(c.revokedAt).toBeGreaterThan(0);
        expect(c.nonce).toBe(2);
        await expectCode(relayer.revokeConsent(r.message, r.signature), "NONCE_INVALID");
        const again = await signedRevoke(subject);
        await expectCode(relayer.revokeConsent(again.message, again.signature), "CONSENT_NOT_ACTIVE");
        if (env.historicalReads) {
          expect((await permission(subject, {}, granted.blockNumber)).allowed).toBe(true);
          expect((await permission(subject, {}, revoked.blockNumber)).allowed).toBe(false);
        }
      });

      it("rejects revocation of a consent never given, and a revocation signed by another key", async () => {
        const subject = Wallet.createRandom();
        const r = await signedRevoke(subject);
        await expectCode(relayer.revokeConsent(r.message, r.signature), "CONSENT_NOT_ACTIVE");
        const g = await signedGrant(subject);
        await relayer.grantConsent(g.message, g.signature);
        const real = await signedRevoke(subject);
        const forged = await signTyped(Wallet.createRandom(), domain, "ConsentRevoke", real.message);
        await expectCode(relayer.revokeConsent(real.message, forged), "SIGNATURE_INVALID");
        expect((await permission(subject)).allowed).toBe(true);
      });

      it("lets a subject grant again after revoking", async () => {
        const subject = Wallet.createRandom();
        for (let i = 0; i < 2; i++) {
          const g = await signedGrant(subject);
          await relayer.grantConsent(g.message, g.signature);
          expect((await permission(subject)).allowed).toBe(true);
          const r = await signedRevoke(subject);
          await relayer.revokeConsent(r.message, r.signature);
          expect((await permission(subject)).allowed).toBe(false);
        }
        expect((await admin.getConsent(subject.address as Address, partnerAddr, PROFILING)).nonce).toBe(4);
      });

      it("keeps nonces per consent, so signatures for different partners do not collide", async () => {
        const subject = Wallet.createRandom();
        const a = await signedGrant(subject, { purpose: PROFILING });
        const b = await signedGrant(subject, { purpose: MARKETING });
        expect(a.message.nonce).toBe(b.message.nonce);
        await relayer.grantConsent(b.message, b.signature);
        await relayer.grantConsent(a.message, a.signature);
        expect((await permission(subject, { purpose: MARKETING })).allowed).toBe(true);
      });
    });

    describe("data commitments and erasure", () => {
      it("records a subject-signed commitment and its erasure", async () => {
        const subject = Wallet.createRandom();
        const c = h(`record ${subject.address}`);
        const commit = await signedData("DataCommitment", subject, c);
        await relayer.commitData(commit.message, commit.signature);
        const rec = await admin.getCommitment(c);
        expect(rec).toMatchObject({ commitment: c, subject: subject.address, erasedAt: 0 });
        expect(rec!.committedAt).toBeGreaterThan(0);
        expect(await admin.dataNonce(subject.address as Address)).toBe(1n);
        await expectCode(relayer.commitData(commit.message, commit.signature), "NONCE_INVALID");
        const dup = await signedData("DataCommitment", subject, c);
        await expectCode(relayer.commitData(dup.message, dup.signature), "COMMITMENT_EXISTS");
        const erase = await signedData("ErasureRequest", subject, c);
        await relayer.recordErasure(erase.message, erase.signature);
        expect((await admin.getCommitment(c))!.erasedAt).toBeGreaterThan(0);
        const again = await signedData("ErasureRequest", subject, c);
        await expectCode(relayer.recordErasure(again.message, again.signature), "COMMITMENT_ERASED");
      });

      it("rejects erasure of unknown or someone else's records, and forged requests", async () => {
        const owner = Wallet.createRandom();
        const other = Wallet.createRandom();
        const c = h(`record ${owner.address}`);
        const commit = await signedData("DataCommitment", owner, c);
        await relayer.commitData(commit.message, commit.signature);
        const unknown = await signedData("ErasureRequest", owner, h("never committed"));
        await expectCode(relayer.recordErasure(unknown.message, unknown.signature), "COMMITMENT_UNKNOWN");
        const foreign = await signedData("ErasureRequest", other, c);
        await expectCode(relayer.recordErasure(foreign.message, foreign.signature), "UNAUTHORIZED");
        const real = await signedData("ErasureRequest", owner, c);
        const forged = await signTyped(other, domain, "ErasureRequest", real.message);
        await expectCode(relayer.recordErasure(real.message, forged), "SIGNATURE_INVALID");
        const zero = await signedData("DataCommitment", owner, `0x${"0".repeat(64)}`);
        await expectCode(relayer.commitData(zero.message, zero.signature), "INVALID_ARGUMENT");
        const late = await signedData("DataCommitment", owner, h("late"), { deadline: (await now()) - 1 });
        await expectCode(relayer.commitData(late.message, late.signature), "SIGNATURE_EXPIRED");
        expect((await admin.getCommitment(c))!.erasedAt).toBe(0);
        expect(await admin.getCommitment(h("never committed"))).toBeNull();
      });
    });

    describe("checkpoints", () => {
      it("anchors strictly increasing tree sizes and keeps the history", async () => {
        const logId = h(`log ${Math.random()}`);
        expect(await admin.latestCheckpoint(logId)).toBeNull();
        await gateway.anchorCheckpoint({ logId, treeSize: 3, root: h("r3") });
        await gateway.anchorCheckpoint({ logId, treeSize: 10, root: h("r10") });
        const head = await admin.latestCheckpoint(logId);
        expect(head).toEqual({ gateway: await gateway.account(), treeSize: 10, count: 2 });
        expect(await admin.checkpointRoot(logId, 3)).toBe(h("r3"));
        expect(await admin.checkpointRoot(logId, 10)).toBe(h("r10"));
        expect(await admin.checkpointRoot(logId, 5)).toBeNull();
        await expectCode(gateway.anchorCheckpoint({ logId, treeSize: 10, root: h("again") }), "CHECKPOINT_NOT_INCREASING");
        await expectCode(gateway.anchorCheckpoint({ logId, treeSize: 4, root: h("smaller") }), "CHECKPOINT_NOT_INCREASING");
        const history = await admin.checkpoints(logId);
        expect(history.map((c) => [c.treeSize, c.root])).toEqual([
          [3, h("r3")],
          [10, h("r10")],
        ]);
        expect(history[1]!.blockNumber).toBeGreaterThan(history[0]!.blockNumber);
        expect(history[0]!.timestamp).toBeGreaterThan(0);
      });

      it("lets only active gateways anchor, each only its own logs", async () => {
        const logId = h(`log ${Math.random()}`);
        await expectCode(partner.anchorCheckpoint({ logId, treeSize: 1, root: h("x") }), "UNAUTHORIZED");
        await expectCode(relayer.anchorCheckpoint({ logId, treeSize: 1, root: h("x") }), "UNAUTHORIZED");
        await gateway.anchorCheckpoint({ logId, treeSize: 1, root: h("x") });
        const other = await register("GATEWAY");
        await expectCode(other.ledger.anchorCheckpoint({ logId, treeSize: 2, root: h("y") }), "CHECKPOINT_LOG_OWNED");
        await expectCode(gateway.anchorCheckpoint({ logId, treeSize: 2, root: `0x${"0".repeat(64)}` }), "INVALID_ARGUMENT");
        await admin.deactivateMember(other.account);
        await expectCode(other.ledger.anchorCheckpoint({ logId: h("fresh"), treeSize: 1, root: h("z") }), "UNAUTHORIZED");
      });
    });

    describe("events", () => {
      it("reports every change with its block, in ledger order", async () => {
        const from = (await admin.blockNumber()) + 1;
        const subject = Wallet.createRandom();
        const g = await signedGrant(subject);
        const granted = await relayer.grantConsent(g.message, g.signature);
        const r = await signedRevoke(subject);
        const revoked = await relayer.revokeConsent(r.message, r.signature);
        const events = (await admin.events(from)).filter((e) => "subject" in e && e.subject === subject.address);
        expect(events.map((e) => [e.type, e.blockNumber])).toEqual([
          ["ConsentGranted", granted.blockNumber],
          ["ConsentRevoked", revoked.blockNumber],
        ]);
        expect(events[0]).toMatchObject({ partner: partnerAddr, purpose: PROFILING, categories: TXN_DEMO, receiptHash: g.message.receiptHash, nonce: 0, txId: granted.txId });
      });

      it("streams new events to a watcher with the block they reach", async () => {
        const from = (await admin.blockNumber()) + 1;
        const seen: LedgerEvent[] = [];
        let through = 0;
        const watcher = admin.watch(from, (evs, block) => {
          seen.push(...evs);
          through = block;
        }, { pollMs: 20 });
        try {
          const subject = Wallet.createRandom();
          const g = await signedGrant(subject);
          const tx = await relayer.grantConsent(g.message, g.signature);
          const deadline = Date.now() + 10_000;
          while (through < tx.blockNumber && Date.now() < deadline) await new Promise((res) => setTimeout(res, 20));
          expect(through).toBeGreaterThanOrEqual(tx.blockNumber);
          expect(seen.some((e) => e.type === "ConsentGranted" && e.subject === subject.address && e.blockNumber === tx.blockNumber)).toBe(true);
        } finally {
          await watcher.stop();
        }
      });
    });
  });
}
