import { createHash, randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { bytesEqual, fromHex, sha256, toHex, toHex0x } from "../../core/hash.js";
import { CustodiaError } from "../../core/errors.js";

describe("hashing helpers", () => {
  it("computes SHA-256 (FIPS 180-2 'abc' vector)", () => {
    expect(toHex(sha256(new TextEncoder().encode("abc")))).toBe("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  });

  it("equals node's own SHA-256 for any input, each result its own array", () => {
    const results: Array<[Uint8Array, string]> = [];
    for (const n of [0, 1, 31, 32, 55, 56, 63, 64, 65, 127, 128, 1000, 5000]) {
      const data = randomBytes(n);
      const got = sha256(data);
      expect(got).toBeInstanceOf(Uint8Array);
      expect(got.length).toBe(32);
      const want = createHash("sha256").update(data).digest("hex");
      expect(toHex(got)).toBe(want);
      results.push([got, want]);
    }
    // no result shares memory with a later one
    for (const [got, want] of results) expect(toHex(got)).toBe(want);
  });

  it("writes hex as Buffer does, for small arrays (written out in JavaScript) and large ones", () => {
    for (let n = 0; n <= 130; n++) {
      const data = new Uint8Array(randomBytes(n));
      expect(toHex(data), String(n)).toBe(Buffer.from(data).toString("hex"));
      // a view into a larger buffer reads only its own bytes
      const wide = randomBytes(n + 8);
      const view = new Uint8Array(wide.buffer, wide.byteOffset + 3, n);
      expect(toHex(view), `view ${n}`).toBe(wide.subarray(3, 3 + n).toString("hex"));
    }
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
