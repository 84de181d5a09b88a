import { CustodiaError } from "./errors.js";

/**
 * RFC 8785 JSON Canonicalization Scheme: object members sorted by their names' UTF-16 code units,
 * no whitespace, strings and numbers serialised as ECMAScript's JSON.stringify does them (which is
 * what RFC 8785 §3.2.2 prescribes). Values without a JSON form are refused with a coded error
 * instead of being silently dropped, so a hash is never computed over nothing: NaN and ±Infinity,
 * strings with a lone surrogate (RFC 8785 §3.2.2.2 forbids them), BigInt, and circular structures.
 * As in JSON.stringify, `toJSON()` is honoured, and `undefined`, functions and symbols are skipped
 * as object members and written as `null` in arrays.
 *
 * Written for the gateway's hot path (log entries are canonicalised before they are hashed): one
 * pass with string concatenation, no sort when members already come in order, member names quoted
 * once. Its output is held byte-equal to the `canonicalize` package (the reference implementation
 * by the RFC's authors) by a property test.
 */
export function canonicalize(value: unknown): string {
  const out = write(value, []);
  if (out === undefined) throw new CustodiaError("INVALID_ARGUMENT", "value has no JSON representation");
  return out;
}

/** String.prototype.isWellFormed (ES2024, native in Node 20); the project's lib setting stays ES2023. */
export const wellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

function refuse(message: string): never {
  throw new CustodiaError("INVALID_ARGUMENT", `value cannot be canonicalized: ${message}`);
}

/** The canonical text of `value`, or undefined where JSON.stringify would omit it. */
function write(value: unknown, stack: object[]): string | undefined {
  switch (typeof value) {
    case "string":
      if (!wellFormed(value)) refuse("lone surrogate is not allowed");
      return JSON.stringify(value);
    case "number":
      if (!Number.isFinite(value)) refuse(Number.isNaN(value) ? "NaN is not allowed" : "Infinity is not allowed");
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "bigint":
      return refuse("BigInt is not allowed");
    case "object":
      break;
    default:
      return undefined; // undefined, function, symbol
  }
  if (value === null) return "null";
  if (stack.includes(value)) refuse("circular reference detected");
  const toJSON = (value as { toJSON?: unknown }).toJSON;
  if (typeof toJSON === "function") {
    stack.push(value);
    const result = write(toJSON.call(value), stack);
    stack.pop();
    return result;
  }
  stack.push(value);
  let out: string;
  if (Array.isArray(value)) {
    out = "[";
    for (let i = 0; i < value.length; i++) {
      if (i > 0) out += ",";
      out += write(value[i], stack) ?? "null";
    }
    out += "]";
  } else {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record);
    if (!ascending(keys)) keys.sort();
    out = "{";
    for (const key of keys) {
      const member = write(record[key], stack);
      if (member === undefined) continue;
      out += (out.length === 1 ? "" : ",") + quotedKey(key) + ":" + member;
    }
    out += "}";
  }
  stack.pop();
  return out;
}

/** Records built in canonical order (the gateway's log entries are) need no sort. */
function ascending(keys: string[]): boolean {
  for (let i = 1; i < keys.length; i++) if (keys[i - 1]! > keys[i]!) return false;
  return true;
}

/** Member names repeat from record to record: quote each once (bounded; cleared when full). */
const quoted = new Map<string, string>();
function quotedKey(key: string): string {
  let q = quoted.get(key);
  if (q === undefined) {
    if (!wellFormed(key)) refuse("lone surrogate is not allowed");
    q = JSON.stringify(key);
    if (key.length <= 64) {
      if (quoted.size >= 4096) quoted.clear();
      quoted.set(key, q);
    }
  }
  return q;
}

const utf8 = new TextEncoder();

export function canonicalBytes(value: unknown): Uint8Array {
  return utf8.encode(canonicalize(value));
}
