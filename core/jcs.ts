import canonicalizeImpl from "canonicalize";
import { CustodiaError } from "./errors.js";

/**
 * RFC 8785 JSON Canonicalization Scheme. Delegates to the `canonicalize` package (the reference
 * implementation by the RFC's authors) and turns its silent `undefined` for non-JSON input into
 * a coded error, so a hash is never computed over nothing.
 */
export function canonicalize(value: unknown): string {
  let out: string | undefined;
  try {
    out = canonicalizeImpl(value);
  } catch (e) {
    throw new CustodiaError("INVALID_ARGUMENT", `value cannot be canonicalized: ${(e as Error).message}`, undefined, { cause: e });
  }
  if (out === undefined) throw new CustodiaError("INVALID_ARGUMENT", "value has no JSON representation");
  return out;
}

const utf8 = new TextEncoder();

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8.encode(canonicalize(value));
}
