import { SigningKey, computeAddress, decodeBase58, encodeBase58, getAddress, getBytes, hexlify } from "ethers";
import { flatString, type Address } from "./domain.js";
import { CustodiaError } from "./errors.js";

/** DID methods Custodia resolves (the gateway authenticates them; auditors and wallets read them). */
export const SUPPORTED_DID_METHODS = ["key", "ethr"] as const;

const SECP256K1_PUB = [0xe7, 0x01];
const ED25519_PUB = [0xed, 0x01];

export interface DidInfo {
  did: string;
  method: "key" | "ethr";
  /** The ledger account a DID controls (secp256k1 keys), null for keys with no account (Ed25519). */
  account: Address | null;
  keyType: "secp256k1" | "ed25519" | "ethr";
}

/** The did:key of a secp256k1 key (multicodec 0xe7 0x01 + compressed public key, base58btc). */
export function secp256k1DidKey(publicKey: string): string {
  const compressed = getBytes(SigningKey.computePublicKey(publicKey, true));
  return `did:key:z${encodeBase58(Uint8Array.from([...SECP256K1_PUB, ...compressed]))}`;
}

/**
 * What a DID is, read off the identifier alone: its method and the ledger account it maps to.
 * did:ethr names its account (or public key); a secp256k1 did:key maps to the address of its key;
 * an Ed25519 did:key has no ledger account, so it can authenticate but not act on ledger data.
 */
export function parseDid(did: string): DidInfo {
  if (typeof did !== "string" || did.length > 512 || !did.startsWith("did:")) {
    throw new CustodiaError("INVALID_DID", "not a DID");
  }
  const method = did.slice(4, did.indexOf(":", 4) === -1 ? undefined : did.indexOf(":", 4));
  if (method === "ethr") {
    const id = did.slice(did.lastIndexOf(":") + 1);
    try {
      if (/^0x[0-9a-fA-F]{40}$/.test(id)) return { did, method, account: flatString(getAddress(id) as Address), keyType: "ethr" };
      if (/^0x0[23][0-9a-fA-F]{64}$/.test(id)) return { did, method, account: flatString(computeAddress(id) as Address), keyType: "ethr" };
    } catch (e) {
      throw new CustodiaError("INVALID_DID", "did:ethr carries a bad address checksum or an invalid public key", undefined, { cause: e });
    }
    throw new CustodiaError("INVALID_DID", "did:ethr must end in an address or a compressed public key");
  }
  if (method === "key") {
    const id = did.slice("did:key:".length);
    if (!id.startsWith("z") || id.length < 10 || id.length > 128) throw new CustodiaError("INVALID_DID", "did:key must be base58btc multibase");
    let bytes: Uint8Array;
    try {
      const hex = decodeBase58(id.slice(1)).toString(16);
      bytes = Uint8Array.from(Buffer.from(hex.length % 2 ? `0${hex}` : hex, "hex"));
    } catch (e) {
      throw new CustodiaError("INVALID_DID", "did:key is not valid base58btc", undefined, { cause: e });
    }
    if (bytes[0] === SECP256K1_PUB[0] && bytes[1] === SECP256K1_PUB[1] && bytes.length === 35) {
      try {
        const pub = SigningKey.computePublicKey(hexlify(bytes.slice(2)), false);
        return { did, method, account: flatString(computeAddress(pub) as Address), keyType: "secp256k1" };
      } catch (e) {
        throw new CustodiaError("INVALID_DID", "did:key carries an invalid secp256k1 key", undefined, { cause: e });
      }
    }
    if (bytes[0] === ED25519_PUB[0] && bytes[1] === ED25519_PUB[1] && bytes.length === 34) {
      return { did, method, account: null, keyType: "ed25519" };
    }
    throw new CustodiaError("DID_UNSUPPORTED", "did:key with an unsupported key type (secp256k1 and Ed25519 are supported)");
  }
  throw new CustodiaError("DID_UNSUPPORTED", `DID method "${method}" is not supported (did:key and did:ethr are)`);
}
