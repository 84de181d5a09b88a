import { describe, expect, it } from "vitest";
import { bytesEqual, fromHex, sha256, toHex, toHex0x } from "../../core/hash.js";
import { CustodiaError } from "../../core/errors.js";

describe("hashing helpers", () => {
  it("computes SHA-256 (FIPS 180-2 'abc' vector)", () => {
    expect(toHex(sha256(new TextEncoder().encode("abc")))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("round-trips hex with and without 0x", () => {
    const b = new Uint8Array([0, 1, 254, 255]);
    expect(toHex0x(b)).toBe("0x0001feff");
    expect(fromHex("0x0001feff")).toEqual(b);
    expect(fromHex("0001FEFF")).toEqual(b);
  });

  it("rejects malformed hex and wrong lengths with INVALID_ARGUMENT", () => {
    for (const bad of ["0x0", "zz", "0x12g4"]) {
      expect(() => fromHex(bad)).toThrow(CustodiaError);
    }
    expect(() => fromHex("0x00", 32)).toThrow(/expected 32 bytes/);
  });

  it("compares byte strings in full, unequal lengths included", () => {
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2]))).toBe(true);
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 3]))).toBe(false);
    expect(bytesEqual(new Uint8Array([1, 2]), new Uint8Array([1, 2, 3]))).toBe(false);
  });
});
