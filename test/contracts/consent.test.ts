/**
 * Consent on Hardhat's in-process chain: signed and direct grant/revoke, nonces, signatures,
 * core/contract EIP-712 agreement, ERC-1056 key rotation and checkPermission.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { Signature, Wallet, ZeroHash, concat, toBeHex, type Contract } from "ethers";
import { CATEGORIES, PERMISSION_REASONS, type PermissionReason } from "../../core/domain.js";
import { consentKey, signTyped, typedDataDigest, type ConsentGrantMessage } from "../../core/eip712.js";
import {
  deployCustodiaFixture,
  fixturePoint,
  fundedWallet,
  increaseTime,
  latestTimestamp,
  onlyEvent,
  randomWallet,
  send,
  setNextTimestamp,
  view,
  type CustodiaFixture,
} from "../helpers/hardhat.js";
import { expectRevert } from "../helpers/revert.js";
import {
  DAY,
  ZERO_ADDRESS,
  grantMessage,
  relayGrant,
  relayRevoke,
  revokeMessage,
  seedNetwork,
  type SeededNetwork,
} from "../helpers/custodia.js";

let fx: CustodiaFixture;
let net: SeededNetwork;
let point: { restore(): Promise<void> };
let subject: Wallet;
let partner: string;

beforeAll(async () => {
  fx = await deployCustodiaFixture();
  net = await seedNetwork(fx);
  subject = randomWallet(fx.provider);
  partner = net.addresses.partner;
  point = await fixturePoint(fx.provider);
});
beforeEach(() => point.restore());

interface ConsentView {
  categories: bigint;
  expiresAt: bigint;
  grantedAt: bigint;
  revokedAt: bigint;
  nonce: bigint;
}
const consentOf = async (s: string, p: string, purpose: number): Promise<ConsentView> => {
  const c = await view<ConsentView>(fx.contract, "consent", s, p, purpose);
  return { categories: c.categories, expiresAt: c.expiresAt, grantedAt: c.grantedAt, revokedAt: c.revokedAt, nonce: c.nonce };
};
const blockTime = async (blockNumber: number): Promise<bigint> => BigInt((await fx.provider.getBlock(blockNumber))!.timestamp);

async function permission(s: string, p: string, purpose: number, categories: number, at: number | bigint) {
  const [allowed, reason, id] = (await fx.contract
    .getFunction("checkPermission")
    .staticCall(s, p, purpose, categories, at)) as unknown as [boolean, bigint, bigint];
  return { allowed, reason: PERMISSION_REASONS[Number(reason)] as PermissionReason, agreementId: id };
}

describe("EIP-712 digest agreement with core", () => {
  it("a signature over core's typedDataDigest (raw, no wallet typed-data path) is accepted", async () => {
    const grant = await grantMessage(fx, subject.address, partner);
    const digest = typedDataDigest(fx.domain, "ConsentGrant", grant);
    const raw = subject.signingKey.sign(digest).serialized;
    expect(raw).toBe(await signTyped(subject, fx.domain, "ConsentGrant", grant));
    const r = await send(net.relayer, "grantConsent", grant, raw);
    expect(onlyEvent(fx.iface, r, "ConsentGranted").args[0]).toBe(subject.address);
    const revoke = await revokeMessage(fx, subject.address, partner);
    const rawRevoke = subject.signingKey.sign(typedDataDigest(fx.domain, "ConsentRevoke", revoke)).serialized;
    await send(net.relayer, "revokeConsent", revoke, rawRevoke);
  });

  it("the consent key is core's consentKey (nonces are per key)", async () => {
    // Same subject, two partners, three purposes: every key starts at nonce 0.
    const keys = new Set([consentKey(subject.address, partner, 0), consentKey(subject.address, partner, 2), consentKey(subject.address, net.addresses.partner2, 0)]);
    expect(keys.size).toBe(3);
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose: 0 }));
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose: 2 }));
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, net.addresses.partner2, { purpose: 0 }));
    for (const [p, purpose] of [[partner, 0], [partner, 2], [net.addresses.partner2, 0]] as const) {
      expect((await consentOf(subject.address, p, purpose)).nonce).toBe(1n);
    }
  });
});

describe("grantConsent (signed, relayed)", () => {
  it("stores one packed consent and emits ConsentGranted", async () => {
    const now = await latestTimestamp(fx.provider);
    const grant = await grantMessage(fx, subject.address, partner, { purpose: 2, categories: 0b101, expiresAt: BigInt(now + 30 * DAY) });
    const r = await relayGrant(fx, net.relayer, subject, grant);
    const ev = onlyEvent(fx.iface, r, "ConsentGranted");
    expect(ev.args.toArray()).toEqual([subject.address, partner, 2n, 5n, grant.expiresAt, grant.receiptHash, 0n]);
    expect(await consentOf(subject.address, partner, 2)).toEqual({
      categories: 5n,
      expiresAt: BigInt(grant.expiresAt),
      grantedAt: await blockTime(r.blockNumber),
      revokedAt: 0n,
      nonce: 1n,
    });
  });

  it("replaying the same signature fails with NonceInvalid", async () => {
    const grant = await grantMessage(fx, subject.address, partner);
    const sig = await signTyped(subject, fx.domain, "ConsentGrant", grant);
    await send(net.relayer, "grantConsent", grant, sig);
    await expectRevert(send(net.relayer, "grantConsent", grant, sig), fx.iface, "NonceInvalid", [subject.address, 1n, 0n]);
  });

  it("a future nonce fails with NonceInvalid", async () => {
    const grant = await grantMessage(fx, subject.address, partner, { nonce: 5 });
    await expectRevert(relayGrant(fx, net.relayer, subject, grant), fx.iface, "NonceInvalid", [subject.address, 0n, 5n]);
  });

  it("a signature by another key fails with SignatureInvalid(subject, signer)", async () => {
    const other = randomWallet(fx.provider);
    const grant = await grantMessage(fx, subject.address, partner);
    await expectRevert(relayGrant(fx, net.relayer, other, grant), fx.iface, "SignatureInvalid", [subject.address, other.address]);
  });

  it("a field changed after signing fails with SignatureInvalid", async () => {
    const grant = await grantMessage(fx, subject.address, partner, { categories: CATEGORIES.contact });
    const sig = await signTyped(subject, fx.domain, "ConsentGrant", grant);
    for (const tampered of [
      { ...grant, categories: 0x7f },
      { ...grant, purpose: 2 },
      { ...grant, receiptHash: ZeroHash as `0x${string}` },
      { ...grant, deadline: BigInt(grant.deadline) + 1n },
    ]) {
      const args = await expectRevert(send(net.relayer, "grantConsent", tampered, sig), fx.iface, "SignatureInvalid");
      expect(args[0]).toBe(subject.address);
      expect(args[1]).not.toBe(subject.address);
    }
    // A message signed for another deployment (domain) is rejected too.
    const foreign = await signTyped(subject, { ...fx.domain, chainId: 1 }, "ConsentGrant", grant);
    await expectRevert(send(net.relayer, "grantConsent", grant, foreign), fx.iface, "SignatureInvalid");
  });

  it("unparseable signatures fail with SignatureInvalid(subject, 0)", async () => {
    const grant = await grantMessage(fx, subject.address, partner);
    const sig = Signature.from(await signTyped(subject, fx.domain, "ConsentGrant", grant));
    // The malleable twin (n - s, flipped v) recovers the same key on raw ecrecover; OZ rejects it.
    const n = BigInt("0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141");
    const highS = concat([sig.r, toBeHex(n - BigInt(sig.s), 32), sig.v === 27 ? "0x1c" : "0x1b"]);
    for (const bad of ["0x", sig.compactSerialized, "0x" + "00".repeat(65), "0x" + "11".repeat(66), highS]) {
      await expectRevert(send(net.relayer, "grantConsent", grant, bad), fx.iface, "SignatureInvalid", [subject.address, ZERO_ADDRESS]);
    }
  });

  it("an expired deadline fails with SignatureExpired; the deadline second itself is accepted", async () => {
    const now = await latestTimestamp(fx.provider);
    const late = await grantMessage(fx, subject.address, partner, { deadline: BigInt(now + 10) });
    await increaseTime(20, fx.provider);
    await expectRevert(relayGrant(fx, net.relayer, subject, late), fx.iface, "SignatureExpired", [late.deadline]);

    const t = (await latestTimestamp(fx.provider)) + 5;
    const onTime = await grantMessage(fx, subject.address, partner, { deadline: BigInt(t) });
    const sig = await signTyped(subject, fx.domain, "ConsentGrant", onTime);
    await setNextTimestamp(t, fx.provider);
    await send(net.relayer, "grantConsent", onTime, sig);
  });

  it("validates purpose, categories, partner and expiry", async () => {
    const now = await latestTimestamp(fx.provider);
    const cases: [Partial<ConsentGrantMessage>, string, unknown[]][] = [
      [{ purpose: 32 }, "ConsentInvalidPurpose", [32]],
      [{ purpose: 255 }, "ConsentInvalidPurpose", [255]],
      [{ categories: 0 }, "ConsentInvalidCategories", [0]],
      [{ categories: 0x80 }, "ConsentInvalidCategories", [0x80]],
      [{ categories: 0xffff }, "ConsentInvalidCategories", [0xffff]],
      [{ partner: ZERO_ADDRESS }, "ConsentInvalidPartner", [ZERO_ADDRESS]],
      [{ expiresAt: BigInt(now) }, "ConsentInvalidExpiry", [BigInt(now)]],
      [{ expiresAt: 1n }, "ConsentInvalidExpiry", [1n]],
      [{ expiresAt: 2n ** 40n }, "ConsentInvalidExpiry", [2n ** 40n]],
    ];
    for (const [override, error, args] of cases) {
      const grant = await grantMessage(fx, subject.address, partner, override);
      await expectRevert(relayGrant(fx, net.relayer, subject, grant), fx.iface, error, args);
    }
    // The largest uint40 expiry and purpose 31 are fine.
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose: 31, expiresAt: 2n ** 40n - 1n }));
  });

  it("a second grant updates categories and expiry, and a grant after a revoke re-activates", async () => {
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { categories: 1 }));
    const now = await latestTimestamp(fx.provider);
    const update = await grantMessage(fx, subject.address, partner, { categories: 3, expiresAt: BigInt(now + DAY), nonce: 1 });
    const r = await relayGrant(fx, net.relayer, subject, update);
    expect(onlyEvent(fx.iface, r, "ConsentGranted").args.nonce).toBe(1n);
    let c = await consentOf(subject.address, partner, 0);
    expect([c.categories, c.expiresAt, c.revokedAt, c.nonce]).toEqual([3n, BigInt(now + DAY), 0n, 2n]);

    await relayRevoke(fx, net.relayer, subject, await revokeMessage(fx, subject.address, partner, { nonce: 2 }));
    expect((await consentOf(subject.address, partner, 0)).revokedAt).not.toBe(0n);
    const again = await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { categories: 4, nonce: 3 }));
    c = await consentOf(subject.address, partner, 0);
    expect([c.categories, c.expiresAt, c.grantedAt, c.revokedAt, c.nonce]).toEqual([4n, 0n, await blockTime(again.blockNumber), 0n, 4n]);
  });
});

describe("grantConsentDirect", () => {
  it("the caller is the subject; it bumps the nonce so outstanding signed messages die", async () => {
    const wallet = await fundedWallet(fx.provider);
    const direct = fx.contract.connect(wallet) as Contract;
    const outstanding = await grantMessage(fx, wallet.address, partner, { categories: 1 });
    const sig = await signTyped(wallet, fx.domain, "ConsentGrant", outstanding);
    const receipt = ZeroHash;
    const r = await send(direct, "grantConsentDirect", partner, 0, 0x7f, 0, receipt);
    expect(onlyEvent(fx.iface, r, "ConsentGranted").args.toArray()).toEqual([wallet.address, partner, 0n, 0x7fn, 0n, receipt, 0n]);
    const c = await consentOf(wallet.address, partner, 0);
    expect([c.categories, c.grantedAt, c.nonce]).toEqual([0x7fn, await blockTime(r.blockNumber), 1n]);
    await expectRevert(send(net.relayer, "grantConsent", outstanding, sig), fx.iface, "NonceInvalid", [wallet.address, 1n, 0n]);
  });

  it("applies the same validation as the signed path", async () => {
    const now = await latestTimestamp(fx.provider);
    await expectRevert(send(net.relayer, "grantConsentDirect", partner, 32, 1, 0, ZeroHash), fx.iface, "ConsentInvalidPurpose", [32]);
    await expectRevert(send(net.relayer, "grantConsentDirect", partner, 0, 0, 0, ZeroHash), fx.iface, "ConsentInvalidCategories", [0]);
    await expectRevert(send(net.relayer, "grantConsentDirect", partner, 0, 0x81, 0, ZeroHash), fx.iface, "ConsentInvalidCategories", [0x81]);
    await expectRevert(send(net.relayer, "grantConsentDirect", ZERO_ADDRESS, 0, 1, 0, ZeroHash), fx.iface, "ConsentInvalidPartner", [ZERO_ADDRESS]);
    await expectRevert(send(net.relayer, "grantConsentDirect", partner, 0, 1, now - 1, ZeroHash), fx.iface, "ConsentInvalidExpiry", [now - 1]);
  });
});

describe("revokeConsent / revokeConsentDirect", () => {
  it("a signed revoke sets revokedAt, keeps the grant fields and emits ConsentRevoked", async () => {
    const grant = await grantMessage(fx, subject.address, partner, { purpose: 2, categories: 5 });
    const g = await relayGrant(fx, net.relayer, subject, grant);
    const revoke = await revokeMessage(fx, subject.address, partner, { purpose: 2 });
    const r = await relayRevoke(fx, net.relayer, subject, revoke);
    expect(onlyEvent(fx.iface, r, "ConsentRevoked").args.toArray()).toEqual([subject.address, partner, 2n, 1n]);
    expect(await consentOf(subject.address, partner, 2)).toEqual({
      categories: 5n,
      expiresAt: 0n,
      grantedAt: await blockTime(g.blockNumber),
      revokedAt: await blockTime(r.blockNumber),
      nonce: 2n,
    });
  });

  it("re-revoking or revoking a never-granted consent fails with ConsentNotActive", async () => {
    await expectRevert(relayRevoke(fx, net.relayer, subject, await revokeMessage(fx, subject.address, partner, { nonce: 0 })), fx.iface, "ConsentNotActive", [subject.address, partner, 0]);
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner));
    await relayRevoke(fx, net.relayer, subject, await revokeMessage(fx, subject.address, partner));
    await expectRevert(relayRevoke(fx, net.relayer, subject, await revokeMessage(fx, subject.address, partner, { nonce: 2 })), fx.iface, "ConsentNotActive", [subject.address, partner, 0]);
  });

  it("rejects a replayed, foreign-signed, tampered or expired revoke", async () => {
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner));
    const revoke = await revokeMessage(fx, subject.address, partner);
    const other = randomWallet(fx.provider);
    await expectRevert(relayRevoke(fx, net.relayer, other, revoke), fx.iface, "SignatureInvalid", [subject.address, other.address]);
    const sig = await signTyped(subject, fx.domain, "ConsentRevoke", revoke);
    const tampered = await expectRevert(send(net.relayer, "revokeConsent", { ...revoke, purpose: 2 }, sig), fx.iface, "SignatureInvalid");
    expect(tampered[1]).not.toBe(subject.address);
    await send(net.relayer, "revokeConsent", revoke, sig);
    await expectRevert(send(net.relayer, "revokeConsent", revoke, sig), fx.iface, "NonceInvalid", [subject.address, 2n, 1n]);

    const now = await latestTimestamp(fx.provider);
    const late = await revokeMessage(fx, subject.address, partner, { nonce: 2, deadline: BigInt(now + 5) });
    await increaseTime(10, fx.provider);
    await expectRevert(relayRevoke(fx, net.relayer, subject, late), fx.iface, "SignatureExpired", [late.deadline]);
  });

  it("revokeConsentDirect revokes the caller's consent and bumps the nonce", async () => {
    const wallet = await fundedWallet(fx.provider);
    const direct = fx.contract.connect(wallet) as Contract;
    await expectRevert(send(direct, "revokeConsentDirect", partner, 0), fx.iface, "ConsentNotActive", [wallet.address, partner, 0]);
    await relayGrant(fx, net.relayer, wallet, await grantMessage(fx, wallet.address, partner));
    const outstanding = await revokeMessage(fx, wallet.address, partner);
    const sig = await signTyped(wallet, fx.domain, "ConsentRevoke", outstanding);
    const r = await send(direct, "revokeConsentDirect", partner, 0);
    expect(onlyEvent(fx.iface, r, "ConsentRevoked").args.toArray()).toEqual([wallet.address, partner, 0n, 1n]);
    const c = await consentOf(wallet.address, partner, 0);
    expect([c.revokedAt, c.nonce]).toEqual([await blockTime(r.blockNumber), 2n]);
    await expectRevert(send(direct, "revokeConsentDirect", partner, 0), fx.iface, "ConsentNotActive", [wallet.address, partner, 0]);
    await expectRevert(send(net.relayer, "revokeConsent", outstanding, sig), fx.iface, "NonceInvalid", [wallet.address, 2n, 1n]);
  });
});

describe("ERC-1056 key rotation", () => {
  it("once a rotation is synced, the new key signs for the identity and the old key no longer does", async () => {
    const withRegistry = await deployCustodiaFixture({ didRegistry: true });
    const registry = withRegistry.didRegistry!;
    expect(await view(withRegistry.contract, "didRegistry")).toBe(await registry.getAddress());
    const identity = await fundedWallet(withRegistry.provider);
    const newKey = randomWallet(withRegistry.provider);
    const relayer = withRegistry.contract.connect(withRegistry.signers[3]!) as Contract;
    const domain = withRegistry.domain;
    const signed = async (signer: Wallet, msg: ConsentGrantMessage) =>
      send(relayer, "grantConsent", msg, await signTyped(signer, domain, "ConsentGrant", msg));

    // Before rotation the new key is just a stranger.
    const g0 = await grantMessage(withRegistry, identity.address, partner);
    await expectRevert(signed(newKey, g0), withRegistry.iface, "SignatureInvalid", [identity.address, newKey.address]);
    expect(await view(withRegistry.contract, "controllerOf", identity.address)).toBe(identity.address);

    // Rotated in the registry but not yet synced: the contract still answers to the old key.
    await send(registry.connect(identity) as Contract, "changeOwner", identity.address, newKey.address);
    expect(await view(registry, "identityOwner", identity.address)).toBe(newKey.address);
    await expectRevert(signed(newKey, g0), withRegistry.iface, "SignatureInvalid", [identity.address, newKey.address]);

    // Anyone may sync; from then on the new key signs and the old key is retired.
    const sync = await send(relayer, "syncController", identity.address);
    expect(onlyEvent(withRegistry.iface, sync, "ControllerSynced").args).toEqual([identity.address, newKey.address]);
    expect(await view(withRegistry.contract, "controllerOf", identity.address)).toBe(newKey.address);
    const r = await signed(newKey, g0);
    expect(onlyEvent(withRegistry.iface, r, "ConsentGranted").args[0]).toBe(identity.address);
    await expectRevert(signed(identity, await grantMessage(withRegistry, identity.address, partner, { nonce: 1 })), withRegistry.iface, "SignatureInvalid", [identity.address, identity.address]);
    // ...for direct calls too
    await expectRevert(send(withRegistry.contract.connect(identity) as Contract, "revokeConsentDirect", partner, 1), withRegistry.iface, "SignatureInvalid", [identity.address, identity.address]);
    // The new key revokes on the identity's behalf; a third key still fails.
    const revoke = await revokeMessage(withRegistry, identity.address, partner, { nonce: 1 });
    await send(relayer, "revokeConsent", revoke, await signTyped(newKey, domain, "ConsentRevoke", revoke));
    const stranger = randomWallet(withRegistry.provider);
    await expectRevert(signed(stranger, await grantMessage(withRegistry, identity.address, partner, { nonce: 2 })), withRegistry.iface, "SignatureInvalid", [identity.address, stranger.address]);

    // Rotating back to the identity's own key, once synced, restores it.
    await withRegistry.provider.send("hardhat_setBalance", [newKey.address, "0x56BC75E2D63100000"]);
    await send(registry.connect(newKey) as Contract, "changeOwner", identity.address, identity.address);
    await send(relayer, "syncController", identity.address);
    expect(await view(withRegistry.contract, "controllerOf", identity.address)).toBe(identity.address);
    await signed(identity, await grantMessage(withRegistry, identity.address, partner, { nonce: 2 }));

    // Without a registry there is nothing to sync, and an owner signature is refused.
    await expectRevert(send(net.relayer, "syncController", identity.address), fx.iface, "ControllerNoRegistry", []);
    await expectRevert(relayGrant(fx, net.relayer, newKey, await grantMessage(fx, identity.address, partner)), fx.iface, "SignatureInvalid", [identity.address, newKey.address]);
  });
});

describe("checkPermission", () => {
  const purpose = 2; // covered by the seeded agreement (purposes {0, 2})
  const cats = CATEGORIES.contact | CATEGORIES.transactions;

  it("allows a covered request with consent, returning the agreement id", async () => {
    const r = await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose, categories: 0x7f }));
    const t = await blockTime(r.blockNumber);
    expect(await permission(subject.address, partner, purpose, cats, t)).toEqual({ allowed: true, reason: "OK", agreementId: 1n });
    expect(await permission(subject.address, partner, purpose, cats, t - 1n)).toEqual({ allowed: false, reason: "NO_CONSENT", agreementId: 1n });
  });

  it("reports membership failures first", async () => {
    const stranger = randomWallet(fx.provider).address;
    const now = await latestTimestamp(fx.provider);
    expect((await permission(subject.address, stranger, purpose, cats, now)).reason).toBe("PARTNER_NOT_MEMBER");
    expect((await permission(subject.address, net.addresses.gateway, purpose, cats, now)).reason).toBe("NOT_A_PARTNER");
    expect((await permission(subject.address, net.addresses.auditor, purpose, cats, now)).reason).toBe("NOT_A_PARTNER");
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose }));
    await send(net.admin, "deactivateMember", partner);
    expect(await permission(subject.address, partner, purpose, cats, now + 10)).toEqual({ allowed: false, reason: "PARTNER_INACTIVE", agreementId: 0n });
  });

  it("requires an active agreement covering time, purpose and categories", async () => {
    const { validFrom, validUntil } = net.agreement;
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose: 1 }));
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose }));
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, net.addresses.partner2, { purpose }));
    const now = await latestTimestamp(fx.provider);
    const no = { allowed: false, reason: "NO_AGREEMENT", agreementId: 0n };
    expect(await permission(subject.address, net.addresses.partner2, purpose, cats, now)).toEqual(no); // no agreement at all
    expect(await permission(subject.address, partner, 1, cats, now)).toEqual(no); // purpose not covered
    expect(await permission(subject.address, partner, purpose, CATEGORIES.location, now)).toEqual(no); // category not covered
    expect(await permission(subject.address, partner, purpose, CATEGORIES.contact | CATEGORIES.location, now)).toEqual(no);
    expect(await permission(subject.address, partner, purpose, cats, validFrom - 1)).toEqual(no); // not yet valid
    expect((await permission(subject.address, partner, purpose, cats, validFrom)).reason).toBe("NO_CONSENT"); // agreement ok, consent later
    expect(await permission(subject.address, partner, purpose, cats, validUntil)).toEqual(no); // window is [from, until)
    expect((await permission(subject.address, partner, purpose, cats, validUntil - 1)).reason).toBe("OK");

    // A later agreement covers what the first does not; ending the first leaves only the second.
    await send(net.admin, "registerAgreement", partner, 1 << 1, CATEGORIES.location | CATEGORIES.contact, now - 10, now + DAY, ZeroHash);
    expect(await permission(subject.address, partner, 1, CATEGORIES.location, now)).toEqual({ allowed: true, reason: "OK", agreementId: 2n });
    await send(net.admin, "endAgreement", 1n);
    expect(await permission(subject.address, partner, purpose, cats, now)).toEqual(no); // ended
    expect((await permission(subject.address, partner, 1, CATEGORIES.contact, now)).agreementId).toBe(2n);
  });

  it("reports CONSENT_REVOKED from the revocation second on", async () => {
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose }));
    const r = await relayRevoke(fx, net.relayer, subject, await revokeMessage(fx, subject.address, partner, { purpose }));
    const t = await blockTime(r.blockNumber);
    expect((await permission(subject.address, partner, purpose, cats, t - 1n)).reason).toBe("OK");
    expect(await permission(subject.address, partner, purpose, cats, t)).toEqual({ allowed: false, reason: "CONSENT_REVOKED", agreementId: 1n });
  });

  it("reports CONSENT_EXPIRED once the expiry has passed", async () => {
    const now = await latestTimestamp(fx.provider);
    const expiresAt = now + 100;
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose, expiresAt: BigInt(expiresAt) }));
    expect((await permission(subject.address, partner, purpose, cats, await latestTimestamp(fx.provider))).reason).toBe("OK");
    await increaseTime(200, fx.provider);
    const later = await latestTimestamp(fx.provider);
    expect(await permission(subject.address, partner, purpose, cats, later)).toEqual({ allowed: false, reason: "CONSENT_EXPIRED", agreementId: 1n });
    expect((await permission(subject.address, partner, purpose, cats, expiresAt)).reason).toBe("CONSENT_EXPIRED");
    expect((await permission(subject.address, partner, purpose, cats, expiresAt - 1)).reason).toBe("OK");
  });

  it("reports CONSENT_CATEGORIES when consent does not cover every requested category", async () => {
    await relayGrant(fx, net.relayer, subject, await grantMessage(fx, subject.address, partner, { purpose, categories: CATEGORIES.contact }));
    const now = await latestTimestamp(fx.provider);
    expect((await permission(subject.address, partner, purpose, CATEGORIES.contact, now)).reason).toBe("OK");
    expect(await permission(subject.address, partner, purpose, cats, now)).toEqual({ allowed: false, reason: "CONSENT_CATEGORIES", agreementId: 1n });
  });

  it("reverts on a malformed question (purpose > 31, empty or unknown categories)", async () => {
    const call = (p: number, c: number) => fx.contract.getFunction("checkPermission").staticCall(subject.address, partner, p, c, 0);
    await expectRevert(call(32, 1), fx.iface, "ConsentInvalidPurpose", [32]);
    await expectRevert(call(0, 0), fx.iface, "ConsentInvalidCategories", [0]);
    await expectRevert(call(0, 0x100), fx.iface, "ConsentInvalidCategories", [0x100]);
  });

});
