import { describe, expect, it } from "vitest";
import { Wallet, solidityPackedKeccak256, TypedDataEncoder } from "ethers";
import { consentKey, custodiaDomain, recoverTyped, signTyped, typedDataDigest, CONSENT_GRANT_TYPES, type ConsentGrantMessage } from "../../core/eip712.js";
import { CustodiaError } from "../../core/errors.js";
import type { Address, Bytes32 } from "../../core/domain.js";

const domain = custodiaDomain(31337, "0x5FbDB2315678afecb367f032d93F642f64180aa3");
const wallet = Wallet.createRandom();
const grant: ConsentGrantMessage = {
  subject: wallet.address as Address,
  partner: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
  purpose: 1,
  categories: 0b101,
  expiresAt: 0,
  receiptHash: `0x${"ab".repeat(32)}` as Bytes32,
  nonce: 0,
  deadline: 2_000_000_000,
};

describe("EIP-712 typed data", () => {
  it("declares the ConsentGrant type exactly as the contract's typehash expects", () => {
    expect(TypedDataEncoder.from(CONSENT_GRANT_TYPES as never).encodeType("ConsentGrant")).toBe(
      "ConsentGrant(address subject,address partner,uint8 purpose,uint16 categories,uint64 expiresAt,bytes32 receiptHash,uint32 nonce,uint64 deadline)",
    );
  });

  it("recovers the wallet that signed, and a different key for any changed field", async () => {
    const sig = await signTyped(wallet, domain, "ConsentGrant", grant);
    expect(recoverTyped(domain, "ConsentGrant", grant, sig)).toBe(wallet.address);
    for (const tampered of [{ ...grant, categories: 0b111 }, { ...grant, nonce: 1 }, { ...grant, deadline: 2_000_000_001 }]) {
      expect(recoverTyped(domain, "ConsentGrant", tampered, sig)).not.toBe(wallet.address);
    }
    const otherChain = custodiaDomain(1, domain.verifyingContract);
    expect(recoverTyped(otherChain, "ConsentGrant", grant, sig)).not.toBe(wallet.address);
  });

  it("binds the digest to the domain and the message", () => {
    const d = typedDataDigest(domain, "ConsentGrant", grant);
    expect(d).toMatch(/^0x[0-9a-f]{64}$/);
    expect(typedDataDigest(domain, "ConsentGrant", { ...grant, purpose: 2 })).not.toBe(d);
    expect(typedDataDigest(custodiaDomain(31337, grant.partner), "ConsentGrant", grant)).not.toBe(d);
  });

  it("reports a malformed signature with SIGNATURE_INVALID", () => {
    try {
      recoverTyped(domain, "ConsentGrant", grant, "0xdeadbeef");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(CustodiaError);
      expect((e as CustodiaError).code).toBe("SIGNATURE_INVALID");
    }
  });

  it("keys a consent by keccak256(subject, partner, uint8 purpose), packed", () => {
    expect(consentKey(grant.subject, grant.partner, 1)).toBe(solidityPackedKeccak256(["address", "address", "uint8"], [grant.subject, grant.partner, 1]));
    expect(consentKey(grant.subject, grant.partner, 1)).not.toBe(consentKey(grant.partner, grant.subject, 1));
  });
});
