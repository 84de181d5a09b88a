import { hash, timingSafeEqual } from "node:crypto";
import { canonicalBytes } from "./jcs.js";
import { CustodiaError } from "./errors.js";

/** SHA-256 of bytes, as a fresh 32-byte array. */
export function sha256(data: Uint8Array): Uint8Array {
  // One-shot hashing (no Hash object per call): this runs for every log entry and tree node. The
  // digest comes back as a "binary" (latin1) string and is copied into an array small enough for
  // V8 to keep on its own heap: a Buffer digest is a malloc'd backing store per call, and that
  // allocation (and its release by the GC) cost about three times the hash of a 65-byte node.
  const digest = hash("sha256", data, "binary");
  const out = new Uint8Array(32);
  for (let i = 0; i < 32; i++) out[i] = digest.charCodeAt(i);
  return out;
}

/** SHA-256 of the RFC 8785 canonical form of a JSON value: the hash of every structured record. */
export function hashCanonical(value: unknown): Uint8Array {
  return sha256(canonicalBytes(value));
}

const HEX_CODES = Array.from("0123456789abcdef", (c) => c.charCodeAt(0));

export function toHex(bytes: Uint8Array): string {
  const n = bytes.length;
  if (n > 64) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("hex");
  // Hashes and addresses, written out in JavaScript: a Buffer over a small array would first move
  // the array's bytes out of V8's heap (one allocation and copy per call, ~5x the cost of this).
  const codes = new Array<number>(2 * n);
  for (let i = 0; i < n; i++) {
    const v = bytes[i]!;
    codes[2 * i] = HEX_CODES[v >> 4]!;
    codes[2 * i + 1] = HEX_CODES[v & 15]!;
  }
  return String.fromCharCode.apply(null, codes);
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
