import { getAddress } from "ethers";
import type { Address, Bytes32 } from "../../core/domain.js";
import { RuleError } from "./errors.js";

/**
 * Decoding of transaction arguments. Fabric hands every argument over as a string; the EVM gets
 * ABI-typed values. These parsers give the chaincode the same value domain as the ABI types of
 * ICustodia (uint8 ... uint256, address, bytes32) and reject anything else before any rule runs —
 * on the EVM such input never reaches the contract because it cannot be ABI-encoded.
 */

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const BYTES32 = /^0x[0-9a-fA-F]{64}$/;

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000" as Address;
export const ZERO_BYTES32 = `0x${"0".repeat(64)}` as Bytes32;
export const UINT32_MAX = 2n ** 32n - 1n;
export const UINT40_MAX = 2n ** 40n - 1n;

/** A canonical decimal integer in [0, 2^bits). */
export function parseUint(value: string, bits: 8 | 16 | 32 | 40 | 64 | 256, field: string): bigint {
  if (typeof value !== "string" || !DECIMAL.test(value)) {
    throw new RuleError("INVALID_ARGUMENT", "InvalidArgument", { field, reason: `uint${bits} must be a canonical decimal string` });
  }
  const n = BigInt(value);
  if (n >= 1n << BigInt(bits)) throw new RuleError("INVALID_ARGUMENT", "InvalidArgument", { field, reason: `out of uint${bits} range` });
  return n;
}

/** As parseUint, for types that fit a JS number exactly (up to uint40). */
export function parseSmallUint(value: string, bits: 8 | 16 | 32 | 40, field: string): number {
  return Number(parseUint(value, bits, field));
}

/** A 20-byte hex address; mixed case must be a valid EIP-55 checksum. Returns the checksummed form. */
export function parseAddress(value: string, field: string): Address {
  if (typeof value !== "string" || !ADDRESS.test(value)) {
    throw new RuleError("INVALID_ADDRESS", "InvalidAddress", { field, reason: "not a 20-byte 0x-hex address" });
  }
  try {
    return getAddress(value) as Address;
  } catch {
    throw new RuleError("INVALID_ADDRESS", "InvalidAddress", { field, reason: "bad EIP-55 checksum" });
  }
}

/** A 32-byte 0x-hex value, returned lowercase. */
export function parseBytes32(value: string, field: string): Bytes32 {
  if (typeof value !== "string" || !BYTES32.test(value)) {
    throw new RuleError("INVALID_ARGUMENT", "InvalidArgument", { field, reason: "not a 32-byte 0x-hex value" });
  }
  return value.toLowerCase() as Bytes32;
}

/** Composite-key form of an integer: zero-padded so lexicographic key order is numeric order. */
export function keyNumber(n: bigint): string {
  const s = n.toString();
  if (s.length > 20) throw new RuleError("INVALID_ARGUMENT", "InvalidArgument", { reason: "number too large for a key" });
  return s.padStart(20, "0");
}
