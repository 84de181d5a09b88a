import type { Address } from "../../core/domain.js";
import {
  recoverTyped,
  type ConsentGrantMessage,
  type ConsentRevokeMessage,
  type DataCommitmentMessage,
  type Eip712Domain,
} from "../../core/eip712.js";
import { RuleError } from "./errors.js";
import { ZERO_ADDRESS } from "./codec.js";

/** secp256k1n / 2: OpenZeppelin's ECDSA rejects larger `s` (malleable signatures). */
const HALF_N = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
const SIGNATURE_65 = /^0x[0-9a-fA-F]{130}$/;

type Signed =
  | { kind: "ConsentGrant"; message: ConsentGrantMessage }
  | { kind: "ConsentRevoke"; message: ConsentRevokeMessage }
  | { kind: "DataCommitment" | "ErasureRequest"; message: DataCommitmentMessage };

/**
 * The signer of an EIP-712 message, or null, with exactly the acceptance rules of the Solidity
 * contract (OpenZeppelin ECDSA.tryRecover): a 65-byte r‖s‖v signature only (no EIP-2098 compact
 * form), s in the lower half order, v 27 or 28. Recovery itself is core's `recoverTyped` over the
 * same domain and types the wallet signed, so one signature is valid on both ledgers or neither.
 */
export function recoverSigner(domain: Eip712Domain, signed: Signed, signature: string): Address | null {
  if (typeof signature !== "string" || !SIGNATURE_65.test(signature)) return null;
  const s = BigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (s > HALF_N || (v !== 27 && v !== 28)) return null;
  try {
    switch (signed.kind) {
      case "ConsentGrant":
        return recoverTyped(domain, "ConsentGrant", signed.message, signature);
      case "ConsentRevoke":
        return recoverTyped(domain, "ConsentRevoke", signed.message, signature);
      default:
        return recoverTyped(domain, signed.kind, signed.message, signature);
    }
  } catch {
    return null;
  }
}

/** Throws SignatureInvalid(subject, recovered) unless `signature` was made by `subject`. */
export function requireSignedBy(subject: Address, domain: Eip712Domain, signed: Signed, signature: string): void {
  const recovered = recoverSigner(domain, signed, signature);
  if (recovered !== null && recovered === subject) return;
  throw new RuleError("SIGNATURE_INVALID", "SignatureInvalid", { subject, recovered: recovered ?? ZERO_ADDRESS });
}

/** Throws SignatureExpired(deadline) once `now` is past `deadline` (the deadline is inclusive). */
export function requireNotExpired(deadline: bigint, now: number): void {
  if (BigInt(now) > deadline) throw new RuleError("SIGNATURE_EXPIRED", "SignatureExpired", { deadline: deadline.toString() });
}
