import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { canonicalize } from "../../core/jcs.js";
import { hashCanonical, toHex } from "../../core/hash.js";
import { CustodiaError } from "../../core/errors.js";

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
});
