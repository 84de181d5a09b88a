/**
 * One wallet signature, two ledgers. The chaincode is initialised with the EIP-712 domain of a real
 * Custodia deployment on Hardhat's in-process EVM, so a consent a customer's wallet signs ONCE is
 * accepted by both the Solidity contract and the chaincode, and every tampered copy is refused by
 * both, for the same reason.
 */
import hre from "hardhat";
import { BrowserProvider, Signature, Wallet, concat, toBeHex, type BaseWallet } from "ethers";
import { beforeAll, describe, expect, it } from "vitest";
import { CATEGORIES, categoryMask, purposeId, purposeMask, type Address, type Bytes32 } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type DataCommitmentMessage, type Eip712Domain } from "../../core/eip712.js";
import type { ErrorCode } from "../../core/errors.js";
import { sha256, toHex0x } from "../../core/hash.js";
import type { LedgerEvent, LedgerPort } from "../../core/ledger.js";
import { deployCustodia } from "../../contracts/deploy.js";
import { EvmLedger } from "../../contracts/evm-ledger.js";
import { expectCode } from "../ledger/conformance.js";
import { startMemoryNetwork, type MemoryFabricLedger } from "./support/memory-ledger.js";

const HOUR = 3600;
const PROFILING = purposeId("profiling");
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

const h = (label: string): Bytes32 => toHex0x(sha256(new TextEncoder().encode(label)));

describe("one wallet signature on the EVM contract and on the chaincode", () => {
  let evm: EvmLedger;
  let fabric: MemoryFabricLedger;
  let ledgers: [string, LedgerPort][];
  let domain: Eip712Domain;
  /** One partner account, a member on both ledgers (its Fabric identity's account, registered on the EVM too). */
  let partner: Address;

  beforeAll(async () => {
    await hre.run("compile", { quiet: true });
    const provider = new BrowserProvider(hre.network.provider as never, undefined, { cacheTimeout: -1 });
    const adminWallet = Wallet.createRandom().connect(provider);
    await provider.send("hardhat_setBalance", [adminWallet.address, "0x56BC75E2D63100000"]);
    const deployment = await deployCustodia(adminWallet);
    evm = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock, pollMs: 20 });
    domain = await evm.eip712Domain();

    // the chaincode gets the EVM deployment's domain at InitLedger
    const network = await startMemoryNetwork({ chainId: domain.chainId, verifyingContract: domain.verifyingContract });
    fabric = network.admin;
    partner = await network.newLedger().account();
    ledgers = [
      ["EVM", evm],
      ["Fabric", fabric],
    ];
    const t = await evm.blockTime();
    for (const [, ledger] of ledgers) {
      await ledger.registerMember({ account: partner, didHash: h("did:web:partner.example"), role: "PARTNER", orgHash: h("Partner Bank") });
      await ledger.registerAgreement({
        partner,
        purposes: purposeMask(["profiling"]),
        categories: categoryMask(["transactions", "demographic"]),
        validFrom: t - HOUR,
        validUntil: t + 365 * 24 * HOUR,
        termsHash: h("terms"),
      });
    }
  });

  async function grantOnce(subject: BaseWallet, over: Partial<ConsentGrantMessage> = {}): Promise<{ message: ConsentGrantMessage; signature: string }> {
    const message: ConsentGrantMessage = {
      subject: subject.address as Address,
      partner,
      purpose: PROFILING,
      categories: categoryMask(["transactions", "demographic"]),
      expiresAt: 0,
      receiptHash: h(`receipt ${subject.address}`),
      nonce: 0,
      deadline: (await evm.blockTime()) + HOUR,
      ...over,
    };
    return { message, signature: await signTyped(subject, domain, "ConsentGrant", message) };
  }

  async function bothReject(message: ConsentGrantMessage, signature: string, code: ErrorCode): Promise<void> {
    for (const [, ledger] of ledgers) await expectCode(ledger.grantConsent(message, signature), code);
  }

  it("shares the domain: the chaincode reports the EVM deployment's", async () => {
    expect(await fabric.eip712Domain()).toEqual(domain);
  });

  it("accepts the same signed consent on both ledgers, with the same effect and event", async () => {
    const subject = Wallet.createRandom();
    const { message, signature } = await grantOnce(subject);
    const results = [];
    for (const [, ledger] of ledgers) {
      const before = await ledger.blockNumber();
      const tx = await ledger.grantConsent(message, signature);
      const consent = await ledger.getConsent(message.subject, partner, PROFILING);
      const permission = await ledger.checkPermission({ subject: message.subject, partner, purpose: PROFILING, categories: CATEGORIES.transactions, time: await ledger.blockTime() });
      const event = (await ledger.events(before + 1)).find((e): e is Extract<LedgerEvent, { type: "ConsentGranted" }> => e.type === "ConsentGranted" && e.subject === message.subject);
      expect(event?.blockNumber).toBe(tx.blockNumber);
      results.push({ consent: { ...consent, grantedAt: consent.grantedAt > 0 }, permission, event: event && { subject: event.subject, partner: event.partner, purpose: event.purpose, categories: event.categories, expiresAt: event.expiresAt, receiptHash: event.receiptHash, nonce: event.nonce } });
    }
    expect(results[0]!.permission).toMatchObject({ allowed: true, reason: "OK", agreementId: 1n });
    expect(results[1]).toEqual(results[0]);
    // and a replay of that one signature is refused by both
    await bothReject(message, signature, "NONCE_INVALID");
  });

  it("refuses the same tampered copies on both ledgers", async () => {
    const subject = Wallet.createRandom();
    const { message, signature } = await grantOnce(subject);
    const sig = Signature.from(signature);
    const otherDomain = await signTyped(subject, { ...domain, chainId: BigInt(domain.chainId) + 1n }, "ConsentGrant", message);
    const tampered: [string, ConsentGrantMessage, string][] = [
      ["wider categories", { ...message, categories: message.categories | CATEGORIES.location }, signature],
      ["another partner", { ...message, partner: subject.address as Address }, signature],
      ["a later deadline", { ...message, deadline: BigInt(message.deadline) + 1n }, signature],
      ["a signature for another chain", message, otherDomain],
      // the malleable twin (n - s, flipped v): ecrecover accepts it, OpenZeppelin and the chaincode do not
      ["a high-s signature", message, concat([sig.r, toBeHex(SECP256K1_N - BigInt(sig.s), 32), sig.v === 27 ? "0x1c" : "0x1b"])],
      ["v as 0/1", message, concat([sig.r, sig.s, sig.v === 27 ? "0x00" : "0x01"])],
      ["the EIP-2098 compact form", message, sig.compactSerialized],
      ["a truncated signature", message, signature.slice(0, 130)],
      ["another key's signature", message, await signTyped(Wallet.createRandom(), domain, "ConsentGrant", message)],
    ];
    for (const [label, m, s] of tampered) {
      for (const [name, ledger] of ledgers) {
        const e = await expectCode(ledger.grantConsent(m, s), "SIGNATURE_INVALID");
        expect(e.details?.["error"], `${name}: ${label}`).toBe("SignatureInvalid");
      }
    }
    // nothing was recorded anywhere, and the genuine message still works on both
    for (const [, ledger] of ledgers) {
      expect((await ledger.getConsent(message.subject, partner, PROFILING)).grantedAt).toBe(0);
      await ledger.grantConsent(message, signature);
    }
  });

  it("accepts one signed revocation and one signed data commitment on both ledgers", async () => {
    const subject = Wallet.createRandom();
    const g = await grantOnce(subject);
    for (const [, ledger] of ledgers) await ledger.grantConsent(g.message, g.signature);
    const revoke: ConsentRevokeMessage = { subject: subject.address as Address, partner, purpose: PROFILING, nonce: 1, deadline: (await evm.blockTime()) + HOUR };
    const revokeSig = await signTyped(subject, domain, "ConsentRevoke", revoke);
    const commit: DataCommitmentMessage = { subject: subject.address as Address, commitment: h(`record ${subject.address}`), nonce: 0n, deadline: (await evm.blockTime()) + HOUR };
    const commitSig = await signTyped(subject, domain, "DataCommitment", commit);
    for (const [, ledger] of ledgers) {
      await ledger.revokeConsent(revoke, revokeSig);
      expect(await ledger.checkPermission({ subject: revoke.subject, partner, purpose: PROFILING, categories: CATEGORIES.transactions, time: await ledger.blockTime() })).toMatchObject({
        allowed: false,
        reason: "CONSENT_REVOKED",
      });
      await ledger.commitData(commit, commitSig);
      expect(await ledger.dataNonce(commit.subject)).toBe(1n);
      // the erasure request must be signed as such: the commitment signature does not authorise it
      await expectCode(ledger.recordErasure({ ...commit, nonce: 1n }, commitSig), "SIGNATURE_INVALID");
    }
  });
});
