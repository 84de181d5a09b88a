import { hash, timingSafeEqual } from "node:crypto";
import { canonicalBytes } from "./jcs.js";
import { CustodiaError } from "./errors.js";

/** SHA-256 of bytes. */
export function sha256(data: Uint8Array): Uint8Array {
  // one-shot hashing (no Hash object per call): this runs for every log entry. The digest is a
  // fresh Buffer: viewed as a plain Uint8Array, not copied.
  const digest = hash("sha256", data, "buffer") as Buffer;
  return new Uint8Array(digest.buffer, digest.byteOffset, digest.byteLength);
}

/** SHA-256 of the RFC 8785 canonical form of a JSON value: the hash of every structured record. */
export function hashCanonical(value: unknown): Uint8Array {
  return sha256(canonicalBytes(value));
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
}

/** 0x-prefixed lowercase hex, the form the ledgers use for bytes32. */
export function toHex0x(bytes: Uint8Array): `0x${string}` {
  return `0x${toHex(bytes)}`;
}

/** Parses hex with or without 0x; throws INVALID_ARGUMENT on anything else. */
export function fromHex(hex: string, expectedLength?: number): Uint8Array {
  const body = hex.startsWith("0x") || hex.startsWith("0X") ? hex.slice(2) : hex;
  if (body.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(body)) {
    throw new CustodiaError("INVALID_ARGUMENT", "not a hex string");
  }
  const out = new Uint8Array(Buffer.from(body, "hex"));
  if (expectedLength !== undefined && out.length !== expectedLength) {
    throw new CustodiaError("INVALID_ARGUMENT", `expected ${expectedLength} bytes, got ${out.length}`);
  }
  return out;
}

/** Constant-time equality for hashes; different lengths are simply unequal. */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}
