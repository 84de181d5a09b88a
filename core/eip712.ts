import { solidityPackedKeccak256, TypedDataEncoder, getAddress, verifyTypedData } from "ethers";
import type { Address, Bytes32 } from "./domain.js";
import { CustodiaError } from "./errors.js";

/**
 * EIP-712 typed data shared by the wallet (signs), the gateway (relays), the Solidity contracts
 * (verify on-chain) and the Fabric chaincode (verifies the same digest). One definition here, so
 * a signature made once is accepted by either ledger for the same domain.
 */
export const EIP712_NAME = "Custodia";
export const EIP712_VERSION = "1";

export interface Eip712Domain {
  name: string;
  version: string;
  chainId: bigint | number;
  verifyingContract: Address;
}

export function custodiaDomain(chainId: bigint | number, verifyingContract: string): Eip712Domain {
  return { name: EIP712_NAME, version: EIP712_VERSION, chainId, verifyingContract: getAddress(verifyingContract) as Address };
}

export const CONSENT_GRANT_TYPES = {
  ConsentGrant: [
    { name: "subject", type: "address" },
    { name: "partner", type: "address" },
    { name: "purpose", type: "uint8" },
    { name: "categories", type: "uint16" },
    { name: "expiresAt", type: "uint64" },
    { name: "receiptHash", type: "bytes32" },
    { name: "nonce", type: "uint32" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

export const CONSENT_REVOKE_TYPES = {
  ConsentRevoke: [
    { name: "subject", type: "address" },
    { name: "partner", type: "address" },
    { name: "purpose", type: "uint8" },
    { name: "nonce", type: "uint32" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

export const DATA_COMMITMENT_TYPES = {
  DataCommitment: [
    { name: "subject", type: "address" },
    { name: "commitment", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

export const ERASURE_REQUEST_TYPES = {
  ErasureRequest: [
    { name: "subject", type: "address" },
    { name: "commitment", type: "bytes32" },
    { name: "nonce", type: "uint256" },
    { name: "deadline", type: "uint64" },
  ],
} as const;

export interface ConsentGrantMessage {
  subject: Address;
  partner: Address;
  purpose: number;
  categories: number;
  /** Unix seconds, 0 = until withdrawn. */
  expiresAt: bigint | number;
  /** SHA-256 (JCS) of the ISO/IEC TS 27560 consent record. */
  receiptHash: Bytes32;
  nonce: number;
  /** Unix seconds after which the signature may no longer be submitted. */
  deadline: bigint | number;
}

export interface ConsentRevokeMessage {
  subject: Address;
  partner: Address;
  purpose: number;
  nonce: number;
  deadline: bigint | number;
}

export interface DataCommitmentMessage {
  subject: Address;
  commitment: Bytes32;
  nonce: bigint | number;
  deadline: bigint | number;
}

export type ErasureRequestMessage = DataCommitmentMessage;

export type TypedKind = "ConsentGrant" | "ConsentRevoke" | "DataCommitment" | "ErasureRequest";

export const TYPES_BY_KIND = {
  ConsentGrant: CONSENT_GRANT_TYPES,
  ConsentRevoke: CONSENT_REVOKE_TYPES,
  DataCommitment: DATA_COMMITMENT_TYPES,
  ErasureRequest: ERASURE_REQUEST_TYPES,
} as const;

type MessageOf<K extends TypedKind> = K extends "ConsentGrant"
  ? ConsentGrantMessage
  : K extends "ConsentRevoke"
    ? ConsentRevokeMessage
    : DataCommitmentMessage;

function mutableTypes(kind: TypedKind): Record<string, { name: string; type: string }[]> {
  return TYPES_BY_KIND[kind] as unknown as Record<string, { name: string; type: string }[]>;
}

/** The EIP-712 digest a wallet signs and a ledger recovers from. */
export function typedDataDigest<K extends TypedKind>(domain: Eip712Domain, kind: K, message: MessageOf<K>): Bytes32 {
  return TypedDataEncoder.hash(domain, mutableTypes(kind), message as unknown as Record<string, unknown>) as Bytes32;
}

/** Anything that can sign EIP-712 typed data: an ethers Wallet or a JSON-RPC signer. */
export interface TypedDataSigner {
  signTypedData(domain: Eip712Domain, types: Record<string, { name: string; type: string }[]>, value: Record<string, unknown>): Promise<string>;
}

export function signTyped<K extends TypedKind>(signer: TypedDataSigner, domain: Eip712Domain, kind: K, message: MessageOf<K>): Promise<string> {
  return signer.signTypedData(domain, mutableTypes(kind), message as unknown as Record<string, unknown>);
}

/** Recovers the signer of a typed message; throws SIGNATURE_INVALID on a malformed signature. */
export function recoverTyped<K extends TypedKind>(domain: Eip712Domain, kind: K, message: MessageOf<K>, signature: string): Address {
  try {
    return verifyTypedData(domain, mutableTypes(kind), message as unknown as Record<string, unknown>, signature) as Address;
  } catch (e) {
    throw new CustodiaError("SIGNATURE_INVALID", "signature cannot be parsed or recovered", undefined, { cause: e });
  }
}

/** The ledger key of a consent: keccak256(abi.encodePacked(subject, partner, uint8 purpose)). */
export function consentKey(subject: string, partner: string, purpose: number): Bytes32 {
  return solidityPackedKeccak256(["address", "address", "uint8"], [subject, partner, purpose]) as Bytes32;
}
