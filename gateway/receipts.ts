import { ES256KSigner, createJWT, type Signer } from "did-jwt";
import { getBytes, type Wallet } from "ethers";
import { OffThreadWallet } from "../contracts/off-thread-wallet.js";
import { categoriesFromMask, didHash, purposeById, type Address, type Bytes32, type ConsentRecord } from "../core/domain.js";
import type { ConsentGrantMessage, ConsentRevokeMessage } from "../core/eip712.js";
import { CustodiaError } from "../core/errors.js";
import { hashCanonical, sha256, toHex0x } from "../core/hash.js";
import { parseDid } from "../core/did.js";
import { IDENTITY_PROOF_TTL_SEC, IDENTITY_PROOF_TYP } from "../core/gateway-url.js";

/**
 * Checks that the ISO/IEC TS 27560 consent record a wallet sent matches what it signed: its JCS
 * hash is the signed receiptHash, and its rule-bearing fields equal the signed message's. The
 * recipient is named by an identifier ending in the partner's ledger account (e.g. its did:ethr) or, where members' accounts are not their DIDs'
 * (Fabric), by the DID registered for the partner: `partnerDidHash`.
 */
export function checkConsentRecord(record: ConsentRecord, message: ConsentGrantMessage, partnerDidHash?: Bytes32): void {
  const hash = toHex0x(hashCanonical(record));
  if (hash !== message.receiptHash.toLowerCase()) {
    throw new CustodiaError("BAD_REQUEST", "the consent record does not hash to the signed receiptHash", { expected: message.receiptHash, computed: hash });
  }
  let subject: Address | null;
  try {
    subject = parseDid(record.piiPrincipalId).account;
  } catch {
    subject = null;
  }
  if (!subject || subject.toLowerCase() !== message.subject.toLowerCase()) {
    throw new CustodiaError("BAD_REQUEST", "the consent record's piiPrincipalId is not the signing subject's DID");
  }
  const purpose = purposeById(message.purpose);
  if (record.purpose?.id !== purpose.key) throw new CustodiaError("BAD_REQUEST", "the consent record's purpose differs from the signed purpose");
  const cats = categoriesFromMask(message.categories);
  if ([...record.piiCategories].sort().join(",") !== [...cats].sort().join(",")) {
    throw new CustodiaError("BAD_REQUEST", "the consent record's data categories differ from the signed categories");
  }
  const names = (id: string): boolean => id.toLowerCase().endsWith(message.partner.toLowerCase()) || (partnerDidHash !== undefined && didHash(id) === partnerDidHash);
  if (!record.recipients?.some((r) => typeof r?.id === "string" && names(r.id))) {
    throw new CustodiaError("BAD_REQUEST", "the consent record does not name the signed partner as recipient");
  }
}

export interface ReceiptIssuer {
  did: string;
  wallet: Wallet;
}

/**
 * A consent receipt as a W3C Verifiable Credential in JWT form (vc-jwt), signed by the gateway:
 * the ISO/IEC TS 27560 record, the ledger transaction that made it effective, and the event.
 */
export async function issueConsentReceipt(
  issuer: ReceiptIssuer,
  args: {
    record: ConsentRecord | null;
    message: ConsentGrantMessage | ConsentRevokeMessage;
    action: "grant" | "revoke";
    txId: string;
    blockNumber: number;
    chainId: number;
    contract: string;
    nowSec: number;
  },
): Promise<string> {
  const subjectDid = args.record?.piiPrincipalId ?? `did:ethr:0x${args.chainId.toString(16)}:${args.message.subject}`;
  const vc = {
    "@context": ["https://www.w3.org/2018/credentials/v1", "https://w3id.org/dpv"],
    type: ["VerifiableCredential", "ConsentReceipt"],
    credentialSubject: {
      id: subjectDid,
      action: args.action,
      consentRecord: args.record,
      partner: args.message.partner,
      purpose: purposeById(args.message.purpose).dpv,
      ledger: { chainId: args.chainId, contract: args.contract, txId: args.txId, blockNumber: args.blockNumber, nonce: args.message.nonce },
    },
  };
  return createJWT(
    { sub: subjectDid, nbf: args.nowSec, iat: args.nowSec, vc, jti: `urn:custodia:receipt:${args.txId}` },
    { issuer: issuer.did, signer: es256kSigner(issuer.wallet) },
    { alg: "ES256K", typ: "JWT" },
  );
}

/**
 * The gateway's answer to a client asking whether it holds its DID's key for the address the
 * client uses (see core/gateway-url.ts): a JWT over that address and the client's nonce, valid for
 * IDENTITY_PROOF_TTL_SEC.
 */
export function issueIdentityProof(issuer: ReceiptIssuer, args: { audience: string; nonce: string; nowSec: number }): Promise<string> {
  return createJWT(
    { aud: args.audience, nonce: args.nonce, iat: args.nowSec, exp: args.nowSec + IDENTITY_PROOF_TTL_SEC },
    { issuer: issuer.did, signer: es256kSigner(issuer.wallet) },
    // did-jwt types `typ` as "JWT" only, and writes the header it is given as it is
    { alg: "ES256K", typ: IDENTITY_PROOF_TYP as "JWT" },
  );
}

/**
 * did-jwt's ES256K signer for the wallet: ECDSA over the SHA-256 of the signing input, `r‖s` in
 * base64url. A wallet with a signing thread computes the signature there, so a consent relay does
 * not hold the requests in flight; the signature is the same (RFC 6979, low s; tested).
 */
export function es256kSigner(wallet: Wallet): Signer {
  if (!(wallet instanceof OffThreadWallet)) return ES256KSigner(getBytes(wallet.privateKey));
  return async (data: string | Uint8Array) => {
    const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
    const sig = await wallet.signDigest(toHex0x(sha256(bytes)));
    return Buffer.concat([getBytes(sig.r), getBytes(sig.s)]).toString("base64url");
  };
}
