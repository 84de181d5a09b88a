import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { canonicalize } from "../../core/jcs.js";
import { hashCanonical, toHex } from "../../core/hash.js";
import { CustodiaError } from "../../core/errors.js";
import reference from "canonicalize";

describe("canonical JSON (RFC 8785)", () => {
  it("sorts keys by UTF-16 code units, as in RFC 8785 §3.2.3", () => {
    const input = { "\u20ac": "Euro Sign", "\r": "Carriage Return", "\ufb33": "Hebrew Letter Dalet With Dagesh", "1": "One", "\ud83d\ude00": "Emoji: Grinning Face", "\u0080": "Control", "\u00f6": "Latin Small Letter O With Diaeresis" };
    // Read the order off the string: JSON.parse would put the integer-like key "1" first again.
    const keys = [...canonicalize(input).matchAll(/"((?:[^"\\]|\\.)*)":/g)].map((m) => JSON.parse(`"${m[1]}"`) as string);
    expect(keys).toEqual(["\r", "1", "\u0080", "\u00f6", "\u20ac", "\ud83d\ude00", "\ufb33"]);
  });

  it("serialises numbers the ECMAScript way (RFC 8785 §3.2.2.3)", () => {
    expect(canonicalize([1e21, 1e-7, 0.000001, -0, 333333333.3333333, 1e23, 4.5, 2 ** 53])).toBe("[1e+21,1e-7,0.000001,0,333333333.3333333,1e+23,4.5,9007199254740992]");
  });

  it("escapes only what JSON requires and keeps other unicode literal", () => {
    expect(canonicalize({ s: "\u0000\u001f\"\\/\u00e9\u2028" })).toBe('{"s":"\\u0000\\u001f\\"\\\\/\u00e9\u2028"}');
  });

  it("drops insignificant whitespace and nests deterministically", () => {
    expect(canonicalize({ b: [3, { z: null, a: true }], a: "x" })).toBe('{"a":"x","b":[3,{"a":true,"z":null}]}');
  });

  it("refuses values with no JSON form instead of hashing nothing", () => {
    for (const bad of [Number.NaN, Number.POSITIVE_INFINITY, undefined]) {
      expect(() => canonicalize(bad)).toThrow(CustodiaError);
    }
    try {
      canonicalize(Number.NaN);
    } catch (e) {
      expect((e as CustodiaError).code).toBe("INVALID_ARGUMENT");
    }
  });

  it("hashes equal records equally whatever their key order", () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string(), fc.jsonValue()), (obj) => {
        const reversed = Object.fromEntries(Object.entries(obj).reverse());
        expect(toHex(hashCanonical(reversed))).toBe(toHex(hashCanonical(obj)));
        // and the canonical form is a fixed point
        expect(canonicalize(JSON.parse(canonicalize(obj)))).toBe(canonicalize(obj));
      }),
      { numRuns: 300 },
    );
  });

  it("is byte-equal to the reference implementation on arbitrary JSON, unicode included", () => {
    const value = fc.jsonValue({ maxDepth: 4, stringUnit: "grapheme" });
    fc.assert(
      fc.property(fc.oneof(value, fc.dictionary(fc.string({ unit: "binary" }), value)), (v) => {
        expect(canonicalize(v)).toBe(reference(v));
      }),
      { numRuns: 2_000 },
    );
  });

  it("refuses lone surrogates, BigInt and cycles wherever they are, with a code", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = { back: cyclic };
    const arrayCycle: unknown[] = [];
    arrayCycle.push(arrayCycle);
    for (const bad of ["\ud800", { k: "x\udc00" }, { "\ud83d": 1 }, [1, ["\ude00"]], 10n, { n: 1n }, cyclic, arrayCycle]) {
      let caught: unknown;
      try {
        canonicalize(bad);
      } catch (e) {
        caught = e;
      }
      expect(caught, JSON.stringify(String(bad))).toBeInstanceOf(CustodiaError);
      expect((caught as CustodiaError).code).toBe("INVALID_ARGUMENT");
    }
    // a surrogate pair is fine, and the same object twice (not a cycle) is too
    const shared = { x: 1 };
    expect(canonicalize({ e: "\ud83d\ude00", a: shared, b: [shared] })).toBe('{"a":{"x":1},"b":[{"x":1}],"e":"\ud83d\ude00"}');
  });

  it("follows JSON.stringify for toJSON, undefined, functions and symbols", () => {
    const when = new Date(Date.UTC(2026, 10, 23, 12, 0, 0));
    expect(canonicalize({ z: when, u: undefined, f: () => 1, s: Symbol("x"), list: [undefined, () => 1, Symbol("y"), 2] })).toBe('{"list":[null,null,null,2],"z":"2026-11-23T12:00:00.000Z"}');
    expect(canonicalize({ toJSON: () => ({ b: 2, a: 1 }) })).toBe('{"a":1,"b":2}');
    expect(() => canonicalize(() => 1)).toThrow(CustodiaError);
  });
});
