/**
 * Data commitments and erasure records on Hardhat's in-process chain: signed (relayed) and direct
 * variants, the shared per-subject data nonce, and every rejection.
 */
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { ZeroHash, type Contract, type Wallet } from "ethers";
import { signTyped, type DataCommitmentMessage, type TypedKind } from "../../core/eip712.js";
import {
  deployCustodiaFixture,
  fixturePoint,
  fundedWallet,
  increaseTime,
  latestTimestamp,
  onlyEvent,
  randomWallet,
  send,
  view,
  type CustodiaFixture,
} from "../helpers/hardhat.js";
import { expectRevert } from "../helpers/revert.js";
import { ZERO_ADDRESS, dataMessage, randomBytes32 } from "../helpers/custodia.js";

let fx: CustodiaFixture;
let relayer: Contract;
let subject: Wallet;
let point: { restore(): Promise<void> };

beforeAll(async () => {
  fx = await deployCustodiaFixture();
  relayer = fx.contract.connect(fx.signers[3]!) as Contract;
  subject = randomWallet(fx.provider);
  point = await fixturePoint(fx.provider);
});
beforeEach(() => point.restore());

type Kind = Extract<TypedKind, "DataCommitment" | "ErasureRequest">;
const METHOD: Record<Kind, string> = { DataCommitment: "commitData", ErasureRequest: "recordErasure" };

async function relay(kind: Kind, signer: Wallet, msg: DataCommitmentMessage) {
  return send(relayer, METHOD[kind], msg, await signTyped(signer, fx.domain, kind, msg));
}
async function commitmentOf(c: string): Promise<[string, bigint, bigint]> {
  return [...((await fx.contract.getFunction("commitmentOf").staticCall(c)) as unknown as [string, bigint, bigint])] as [string, bigint, bigint];
}
const blockTime = async (n: number): Promise<bigint> => BigInt((await fx.provider.getBlock(n))!.timestamp);
const nonceOf = (a: string) => view<bigint>(fx.contract, "dataNonce", a);

describe("commitData (signed)", () => {
  it("records the commitment, bumps the data nonce and emits DataCommitted", async () => {
    const msg = await dataMessage(fx, subject.address);
    const r = await relay("DataCommitment", subject, msg);
    expect(onlyEvent(fx.iface, r, "DataCommitted").args.toArray()).toEqual([subject.address, msg.commitment]);
    expect(await commitmentOf(msg.commitment)).toEqual([subject.address, await blockTime(r.blockNumber), 0n]);
    expect(await nonceOf(subject.address)).toBe(1n);
    expect(await commitmentOf(randomBytes32())).toEqual([ZERO_ADDRESS, 0n, 0n]);
  });

  it("rejects replay, another signer, a tampered field, an expired deadline and a zero commitment", async () => {
    const msg = await dataMessage(fx, subject.address);
    const sig = await signTyped(subject, fx.domain, "DataCommitment", msg);
    const other = randomWallet(fx.provider);
    await expectRevert(relay("DataCommitment", other, msg), fx.iface, "SignatureInvalid", [subject.address, other.address]);
    const tampered = await expectRevert(send(relayer, "commitData", { ...msg, commitment: randomBytes32() }, sig), fx.iface, "SignatureInvalid");
    expect(tampered[1]).not.toBe(subject.address);
    // A DataCommitment signature is not an ErasureRequest signature (distinct type hashes).
    await expectRevert(send(relayer, "recordErasure", msg, sig), fx.iface, "SignatureInvalid");
    await send(relayer, "commitData", msg, sig);
    await expectRevert(send(relayer, "commitData", msg, sig), fx.iface, "NonceInvalid", [subject.address, 1n, 0n]);
    await expectRevert(relay("DataCommitment", subject, { ...msg, nonce: 7n }), fx.iface, "NonceInvalid", [subject.address, 1n, 7n]);

    await expectRevert(relay("DataCommitment", subject, { ...msg, commitment: ZeroHash as `0x${string}`, nonce: 1n }), fx.iface, "DataInvalidCommitment", []);
    const now = await latestTimestamp(fx.provider);
    const late = await dataMessage(fx, subject.address, { nonce: 1n, deadline: BigInt(now + 5) });
    await increaseTime(10, fx.provider);
    await expectRevert(relay("DataCommitment", subject, late), fx.iface, "SignatureExpired", [late.deadline]);
  });

  it("a commitment can be recorded only once, by anyone", async () => {
    const msg = await dataMessage(fx, subject.address);
    await relay("DataCommitment", subject, msg);
    await expectRevert(relay("DataCommitment", subject, { ...msg, nonce: 1n }), fx.iface, "DataCommitmentExists", [msg.commitment]);
    const other = randomWallet(fx.provider);
    await expectRevert(relay("DataCommitment", other, await dataMessage(fx, other.address, { commitment: msg.commitment })), fx.iface, "DataCommitmentExists", [msg.commitment]);
  });
});

describe("commitDataDirect", () => {
  it("records a commitment for msg.sender without touching the data nonce", async () => {
    const wallet = await fundedWallet(fx.provider);
    const direct = fx.contract.connect(wallet) as Contract;
    const c = randomBytes32();
    const r = await send(direct, "commitDataDirect", c);
    expect(onlyEvent(fx.iface, r, "DataCommitted").args.toArray()).toEqual([wallet.address, c]);
    expect(await commitmentOf(c)).toEqual([wallet.address, await blockTime(r.blockNumber), 0n]);
    expect(await nonceOf(wallet.address)).toBe(0n);
    await expectRevert(send(direct, "commitDataDirect", c), fx.iface, "DataCommitmentExists", [c]);
    await expectRevert(send(direct, "commitDataDirect", ZeroHash), fx.iface, "DataInvalidCommitment", []);
  });
});

describe("recordErasure (signed)", () => {
  it("marks the commitment erased, shares the nonce with commits and emits DataErased", async () => {
    const commit = await dataMessage(fx, subject.address);
    await relay("DataCommitment", subject, commit);
    const erase = { ...commit, nonce: 1n };
    const r = await relay("ErasureRequest", subject, erase);
    expect(onlyEvent(fx.iface, r, "DataErased").args.toArray()).toEqual([subject.address, commit.commitment]);
    const [owner, committedAt, erasedAt] = await commitmentOf(commit.commitment);
    expect(owner).toBe(subject.address);
    expect(committedAt).toBeGreaterThan(0n);
    expect(erasedAt).toBe(await blockTime(r.blockNumber));
    expect(await nonceOf(subject.address)).toBe(2n);
    await expectRevert(relay("ErasureRequest", subject, { ...commit, nonce: 2n }), fx.iface, "DataCommitmentErased", [commit.commitment]);
    // Erased commitments stay recorded: they cannot be committed again.
    await expectRevert(relay("DataCommitment", subject, { ...commit, nonce: 2n }), fx.iface, "DataCommitmentExists", [commit.commitment]);
  });

  it("rejects unknown commitments, another subject's commitment, bad signatures, replay and expiry", async () => {
    const commit = await dataMessage(fx, subject.address);
    await relay("DataCommitment", subject, commit);

    const unknown = randomBytes32();
    await expectRevert(relay("ErasureRequest", subject, { ...commit, commitment: unknown, nonce: 1n }), fx.iface, "DataCommitmentUnknown", [unknown]);
    await expectRevert(relay("ErasureRequest", subject, { ...commit, commitment: ZeroHash as `0x${string}`, nonce: 1n }), fx.iface, "DataInvalidCommitment", []);

    const intruder = randomWallet(fx.provider);
    await expectRevert(relay("ErasureRequest", intruder, await dataMessage(fx, intruder.address, { commitment: commit.commitment })), fx.iface, "DataNotOwner", [commit.commitment, intruder.address]);
    await expectRevert(relay("ErasureRequest", intruder, { ...commit, nonce: 1n }), fx.iface, "SignatureInvalid", [subject.address, intruder.address]);

    const erase = { ...commit, nonce: 1n };
    const sig = await signTyped(subject, fx.domain, "ErasureRequest", erase);
    await expectRevert(send(relayer, "recordErasure", erase, "0x1234"), fx.iface, "SignatureInvalid", [subject.address, ZERO_ADDRESS]);
    await send(relayer, "recordErasure", erase, sig);
    await expectRevert(send(relayer, "recordErasure", erase, sig), fx.iface, "NonceInvalid", [subject.address, 2n, 1n]);

    const now = await latestTimestamp(fx.provider);
    const late = { ...erase, nonce: 2n, deadline: BigInt(now + 5) };
    await increaseTime(10, fx.provider);
    await expectRevert(relay("ErasureRequest", subject, late), fx.iface, "SignatureExpired", [late.deadline]);
  });
});

describe("recordErasureDirect", () => {
  it("erases msg.sender's own commitment and rejects every other case", async () => {
    const wallet = await fundedWallet(fx.provider);
    const direct = fx.contract.connect(wallet) as Contract;
    const mine = randomBytes32();
    await send(direct, "commitDataDirect", mine);
    const theirs = await dataMessage(fx, subject.address);
    await relay("DataCommitment", subject, theirs);

    await expectRevert(send(direct, "recordErasureDirect", theirs.commitment), fx.iface, "DataNotOwner", [theirs.commitment, wallet.address]);
    const unknown = randomBytes32();
    await expectRevert(send(direct, "recordErasureDirect", unknown), fx.iface, "DataCommitmentUnknown", [unknown]);
    await expectRevert(send(direct, "recordErasureDirect", ZeroHash), fx.iface, "DataInvalidCommitment", []);

    const r = await send(direct, "recordErasureDirect", mine);
    expect(onlyEvent(fx.iface, r, "DataErased").args.toArray()).toEqual([wallet.address, mine]);
    expect((await commitmentOf(mine))[2]).toBe(await blockTime(r.blockNumber));
    expect(await nonceOf(wallet.address)).toBe(0n);
    await expectRevert(send(direct, "recordErasureDirect", mine), fx.iface, "DataCommitmentErased", [mine]);
  });
});
