/**
 * Custodia on Hardhat's in-process chain: EIP-712 domain, membership, agreements, checkpoints.
 * Consent and data live in consent.test.ts / data.test.ts.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ZeroHash, type Contract } from "ethers";
import { custodiaDomain } from "../../core/eip712.js";
import { Role } from "../../core/domain.js";
import { deployCustodiaFixture, fixturePoint, latestTimestamp, onlyEvent, send, view, type CustodiaFixture } from "../helpers/hardhat.js";
import { expectRevert } from "../helpers/revert.js";
import { DAY, ZERO_ADDRESS, randomBytes32, seedNetwork, type SeededNetwork } from "../helpers/custodia.js";

let fx: CustodiaFixture;
let net: SeededNetwork;
let point: { restore(): Promise<void> };

beforeAll(async () => {
  fx = await deployCustodiaFixture();
  net = await seedNetwork(fx);
  point = await fixturePoint(fx.provider);
});
beforeEach(() => point.restore());

const address = (i: number): Promise<string> => fx.signers[i]!.getAddress();
const as = (i: number): Contract => fx.contract.connect(fx.signers[i]!) as Contract;

describe("EIP-712 domain", () => {
  it("eip712Domain() matches core's custodiaDomain", async () => {
    const d = (await fx.contract.getFunction("eip712Domain").staticCall()) as unknown as [
      string, string, string, bigint, string, string, bigint[],
    ];
    const expected = custodiaDomain(fx.chainId, fx.address);
    expect(d[0]).toBe("0x0f"); // name, version, chainId, verifyingContract
    expect(d[1]).toBe(expected.name);
    expect(d[2]).toBe(expected.version);
    expect(d[3]).toBe(BigInt(expected.chainId));
    expect(d[4]).toBe(expected.verifyingContract);
    expect(d[5]).toBe(ZeroHash);
    expect([...d[6]]).toEqual([]);
    expect(fx.domain).toEqual(expected);
  });
});

describe("membership", () => {
  it("the constructor registers the admin as an active ADMIN and stores no DID registry", async () => {
    const m = await view<{ role: bigint; active: boolean; didHash: string }>(fx.contract, "member", net.addresses.admin);
    expect(m.role).toBe(BigInt(Role.ADMIN));
    expect(m.active).toBe(true);
    expect(m.didHash).toBe(ZeroHash);
    expect(await view(fx.contract, "didRegistry")).toBe(ZERO_ADDRESS);
  });

  it("registerMember stores the member and emits MemberRegistered", async () => {
    const account = await address(10);
    const did = randomBytes32();
    const org = randomBytes32();
    const r = await send(net.admin, "registerMember", account, did, Role.AUDITOR, org);
    const ev = onlyEvent(fx.iface, r, "MemberRegistered");
    expect(ev.args.toArray()).toEqual([account, BigInt(Role.AUDITOR), did, org]);
    const m = await view<{ didHash: string; orgHash: string; role: bigint; active: boolean }>(fx.contract, "member", account);
    expect([m.didHash, m.orgHash, m.role, m.active]).toEqual([did, org, BigInt(Role.AUDITOR), true]);
  });

  it("an unregistered account reads as role NONE, inactive", async () => {
    const m = await view<{ role: bigint; active: boolean }>(fx.contract, "member", await address(11));
    expect([m.role, m.active]).toEqual([0n, false]);
  });

  it("registerMember rejects a zero account, role NONE and an existing member", async () => {
    await expectRevert(send(net.admin, "registerMember", ZERO_ADDRESS, ZeroHash, Role.PARTNER, ZeroHash), fx.iface, "MembershipInvalidAccount", [ZERO_ADDRESS]);
    await expectRevert(send(net.admin, "registerMember", await address(10), ZeroHash, Role.NONE, ZeroHash), fx.iface, "MembershipInvalidRole", [0]);
    await expectRevert(send(net.admin, "registerMember", net.addresses.partner, ZeroHash, Role.AUDITOR, ZeroHash), fx.iface, "MembershipExists", [net.addresses.partner]);
  });

  it("only an active ADMIN may register or deactivate", async () => {
    const target = await address(10);
    for (const [caller, who] of [
      [net.relayer, net.addresses.relayer],
      [net.gateway, net.addresses.gateway],
      [net.partner, net.addresses.partner],
      [net.auditor, net.addresses.auditor],
    ] as const) {
      await expectRevert(send(caller, "registerMember", target, ZeroHash, Role.PARTNER, ZeroHash), fx.iface, "MembershipUnauthorized", [who, Role.ADMIN]);
      await expectRevert(send(caller, "deactivateMember", net.addresses.partner), fx.iface, "MembershipUnauthorized", [who, Role.ADMIN]);
    }
    // A deactivated admin loses its rights.
    const admin2 = await address(12);
    await send(net.admin, "registerMember", admin2, ZeroHash, Role.ADMIN, ZeroHash);
    await send(as(12), "registerMember", target, ZeroHash, Role.AUDITOR, ZeroHash);
    await send(net.admin, "deactivateMember", admin2);
    await expectRevert(send(as(12), "registerMember", await address(13), ZeroHash, Role.AUDITOR, ZeroHash), fx.iface, "MembershipUnauthorized", [admin2, Role.ADMIN]);
  });

  it("deactivateMember flips active, emits MemberDeactivated, and rejects unknown / inactive accounts", async () => {
    const r = await send(net.admin, "deactivateMember", net.addresses.auditor);
    expect(onlyEvent(fx.iface, r, "MemberDeactivated").args.toArray()).toEqual([net.addresses.auditor]);
    const m = await view<{ role: bigint; active: boolean }>(fx.contract, "member", net.addresses.auditor);
    expect([m.role, m.active]).toEqual([BigInt(Role.AUDITOR), false]);
    await expectRevert(send(net.admin, "deactivateMember", net.addresses.auditor), fx.iface, "MembershipInactive", [net.addresses.auditor]);
    const stranger = await address(14);
    await expectRevert(send(net.admin, "deactivateMember", stranger), fx.iface, "MembershipUnknown", [stranger]);
    // Deactivated accounts cannot be registered again.
    await expectRevert(send(net.admin, "registerMember", net.addresses.auditor, ZeroHash, Role.AUDITOR, ZeroHash), fx.iface, "MembershipExists", [net.addresses.auditor]);
  });
});

describe("agreements", () => {
  it("the seeded agreement is readable and listed", async () => {
    const a = await view<{ partner: string; purposes: bigint; categories: bigint; validFrom: bigint; validUntil: bigint; active: boolean; termsHash: string }>(
      fx.contract, "agreement", 1n);
    expect(a.partner).toBe(net.addresses.partner);
    expect(a.purposes).toBe(BigInt(net.agreement.purposes));
    expect(a.categories).toBe(BigInt(net.agreement.categories));
    expect(a.validFrom).toBe(BigInt(net.agreement.validFrom));
    expect(a.validUntil).toBe(BigInt(net.agreement.validUntil));
    expect(a.active).toBe(true);
    expect(a.termsHash).toBe(net.agreement.termsHash);
    expect([...(await view<bigint[]>(fx.contract, "agreementsOf", net.addresses.partner))]).toEqual([1n]);
    expect([...(await view<bigint[]>(fx.contract, "agreementsOf", net.addresses.partner2))]).toEqual([]);
    expect((await view<{ partner: string }>(fx.contract, "agreement", 99n)).partner).toBe(ZERO_ADDRESS);
  });

  it("registerAgreement returns sequential ids and emits AgreementRegistered", async () => {
    const now = await latestTimestamp(fx.provider);
    const terms = randomBytes32();
    const args = [net.addresses.partner2, 0b101, 0x7f, now, now + DAY, terms] as const;
    expect(await net.admin.getFunction("registerAgreement").staticCall(...args)).toBe(2n);
    const r = await send(net.admin, "registerAgreement", ...args);
    const ev = onlyEvent(fx.iface, r, "AgreementRegistered");
    expect(ev.args.toArray()).toEqual([2n, net.addresses.partner2, 5n, 0x7fn, BigInt(now), BigInt(now + DAY), terms]);
    await send(net.admin, "registerAgreement", net.addresses.partner2, 1, 1, now, now + 1, terms);
    expect([...(await view<bigint[]>(fx.contract, "agreementsOf", net.addresses.partner2))]).toEqual([2n, 3n]);
  });

  it("registerAgreement requires an active PARTNER", async () => {
    const now = await latestTimestamp(fx.provider);
    const stranger = await address(15);
    for (const p of [stranger, net.addresses.gateway, net.addresses.auditor]) {
      await expectRevert(send(net.admin, "registerAgreement", p, 1, 1, now, now + DAY, ZeroHash), fx.iface, "AgreementNotPartner", [p]);
    }
    await send(net.admin, "deactivateMember", net.addresses.partner2);
    await expectRevert(send(net.admin, "registerAgreement", net.addresses.partner2, 1, 1, now, now + DAY, ZeroHash), fx.iface, "AgreementNotPartner", [net.addresses.partner2]);
  });

  it("registerAgreement rejects empty purposes/categories, unknown category bits and an empty window", async () => {
    const now = await latestTimestamp(fx.provider);
    const p = net.addresses.partner;
    for (const [purposes, categories, from, until] of [
      [0, 1, now, now + DAY],
      [1, 0, now, now + DAY],
      [1, 0x80, now, now + DAY],
      [1, 0xff, now, now + DAY],
      [1, 1, now, now],
      [1, 1, now + 1, now],
    ]) {
      await expectRevert(send(net.admin, "registerAgreement", p, purposes, categories, from, until, ZeroHash), fx.iface, "AgreementInvalid", []);
    }
  });

  it("registerAgreement and endAgreement require an active ADMIN", async () => {
    const now = await latestTimestamp(fx.provider);
    await expectRevert(send(net.partner, "registerAgreement", net.addresses.partner, 1, 1, now, now + DAY, ZeroHash), fx.iface, "MembershipUnauthorized", [net.addresses.partner, Role.ADMIN]);
    await expectRevert(send(net.relayer, "endAgreement", 1n), fx.iface, "MembershipUnauthorized", [net.addresses.relayer, Role.ADMIN]);
    await expectRevert(send(net.gateway, "endAgreement", 1n), fx.iface, "MembershipUnauthorized", [net.addresses.gateway, Role.ADMIN]);
  });

  it("endAgreement ends once and rejects unknown ids", async () => {
    const r = await send(net.admin, "endAgreement", 1n);
    expect(onlyEvent(fx.iface, r, "AgreementEnded").args.toArray()).toEqual([1n, net.addresses.partner]);
    expect((await view<{ active: boolean }>(fx.contract, "agreement", 1n)).active).toBe(false);
    await expectRevert(send(net.admin, "endAgreement", 1n), fx.iface, "AgreementAlreadyEnded", [1n]);
    await expectRevert(send(net.admin, "endAgreement", 0n), fx.iface, "AgreementUnknown", [0n]);
    await expectRevert(send(net.admin, "endAgreement", 2n), fx.iface, "AgreementUnknown", [2n]);
  });
});

describe("checkpoints", () => {
  const logId = "0x" + "ab".repeat(32);

  it("the first gateway owns a log; anchors emit an increasing index and keep history", async () => {
    const root1 = randomBytes32();
    const root2 = randomBytes32();
    const r1 = await send(net.gateway, "anchorCheckpoint", logId, 10n, root1);
    expect(onlyEvent(fx.iface, r1, "CheckpointAnchored").args.toArray()).toEqual([logId, net.addresses.gateway, 10n, root1, 0n]);
    const r2 = await send(net.gateway, "anchorCheckpoint", logId, 25n, root2);
    expect(onlyEvent(fx.iface, r2, "CheckpointAnchored").args.toArray()).toEqual([logId, net.addresses.gateway, 25n, root2, 1n]);
    expect([...(await fx.contract.getFunction("latestCheckpoint").staticCall(logId))]).toEqual([net.addresses.gateway, 25n, 2n]);
    expect(await view(fx.contract, "checkpointRoot", logId, 10n)).toBe(root1);
    expect(await view(fx.contract, "checkpointRoot", logId, 25n)).toBe(root2);
    expect(await view(fx.contract, "checkpointRoot", logId, 11n)).toBe(ZeroHash);
    const other = randomBytes32();
    expect([...(await fx.contract.getFunction("latestCheckpoint").staticCall(other))]).toEqual([ZERO_ADDRESS, 0n, 0n]);
  });

  it("requires an active GATEWAY", async () => {
    for (const [c, who] of [
      [net.relayer, net.addresses.relayer],
      [net.admin, net.addresses.admin],
      [net.partner, net.addresses.partner],
      [net.auditor, net.addresses.auditor],
    ] as const) {
      await expectRevert(send(c, "anchorCheckpoint", logId, 1n, randomBytes32()), fx.iface, "MembershipUnauthorized", [who, Role.GATEWAY]);
    }
    await send(net.gateway, "anchorCheckpoint", logId, 1n, randomBytes32());
    await send(net.admin, "deactivateMember", net.addresses.gateway);
    await expectRevert(send(net.gateway, "anchorCheckpoint", logId, 2n, randomBytes32()), fx.iface, "MembershipUnauthorized", [net.addresses.gateway, Role.GATEWAY]);
    // The log stays owned by the deactivated gateway.
    await expectRevert(send(net.gateway2, "anchorCheckpoint", logId, 2n, randomBytes32()), fx.iface, "CheckpointLogOwned", [logId, net.addresses.gateway]);
  });

  it("rejects a zero root, another gateway's log and non-increasing tree sizes", async () => {
    await expectRevert(send(net.gateway, "anchorCheckpoint", logId, 1n, ZeroHash), fx.iface, "CheckpointInvalidRoot", []);
    await expectRevert(send(net.gateway, "anchorCheckpoint", logId, 0n, randomBytes32()), fx.iface, "CheckpointNotIncreasing", [logId, 0n, 0n]);
    await send(net.gateway, "anchorCheckpoint", logId, 5n, randomBytes32());
    await expectRevert(send(net.gateway2, "anchorCheckpoint", logId, 6n, randomBytes32()), fx.iface, "CheckpointLogOwned", [logId, net.addresses.gateway]);
    await expectRevert(send(net.gateway, "anchorCheckpoint", logId, 5n, randomBytes32()), fx.iface, "CheckpointNotIncreasing", [logId, 5n, 5n]);
    await expectRevert(send(net.gateway, "anchorCheckpoint", logId, 4n, randomBytes32()), fx.iface, "CheckpointNotIncreasing", [logId, 5n, 4n]);
    // Logs are independent: gateway2 may own another one.
    const other = randomBytes32();
    await send(net.gateway2, "anchorCheckpoint", other, 1n, randomBytes32());
    expect((await fx.contract.getFunction("latestCheckpoint").staticCall(other))[0]).toBe(net.addresses.gateway2);
  });
});
