import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { canonicalize } from "../../core/jcs.js";
import {
  canonicalAccessEvent,
  flatString,
  type AccessEvent,
  type Address,
  type Bytes32,
  ALL_CATEGORIES,
  CATEGORIES,
  PERMISSION_REASONS,
  PURPOSES,
  assertCategoryMask,
  categoriesFromMask,
  categoryMask,
  coversCategories,
  purposeById,
  purposeId,
  purposeMask,
  purposesFromMask,
  roleName,
} from "../../core/domain.js";
import { CustodiaError, type ErrorCode } from "../../core/errors.js";

function codeOf(fn: () => unknown): ErrorCode | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CustodiaError ? e.code : undefined;
  }
  return undefined;
}

describe("purposes", () => {
  it("have unique ids within the ledger's range and DPV IRIs", () => {
    const ids = PURPOSES.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of PURPOSES) {
      expect(p.id).toBeGreaterThanOrEqual(0);
      expect(p.id).toBeLessThanOrEqual(31);
      expect(p.dpv.startsWith("https://w3id.org/dpv#")).toBe(true);
      expect(purposeId(p.key)).toBe(p.id);
      expect(purposeById(p.id).key).toBe(p.key);
    }
  });

  it("round-trip through a bitmask", () => {
    const keys = ["profiling", "research", "direct-marketing"];
    expect(purposesFromMask(purposeMask(keys)).sort()).toEqual([...keys].sort());
  });

  it("reject unknown purposes with a code", () => {
    expect(codeOf(() => purposeId("selling-data"))).toBe("INVALID_PURPOSE");
    expect(codeOf(() => purposeById(31))).toBe("INVALID_PURPOSE");
    expect(codeOf(() => purposeMask(["profiling", "nope"]))).toBe("INVALID_PURPOSE");
  });
});

describe("data categories", () => {
  it("are distinct bits of a uint16", () => {
    const bits = Object.values(CATEGORIES);
    expect(bits.reduce((a, b) => a | b, 0)).toBe(ALL_CATEGORIES);
    expect(bits.reduce((a, b) => a + b, 0)).toBe(ALL_CATEGORIES);
    expect(ALL_CATEGORIES).toBeLessThan(1 << 16);
  });

  it("round-trip through a mask and cover subsets only", () => {
    const m = categoryMask(["transactions", "contact"]);
    expect(categoriesFromMask(m)).toEqual(["contact", "transactions"]);
    expect(coversCategories(m, CATEGORIES.contact)).toBe(true);
    expect(coversCategories(m, CATEGORIES.contact | CATEGORIES.location)).toBe(false);
  });

  it("reject empty, unknown and out-of-range masks", () => {
    expect(codeOf(() => categoryMask([]))).toBe("INVALID_CATEGORIES");
    expect(codeOf(() => categoryMask(["dna"]))).toBe("INVALID_CATEGORIES");
    for (const bad of [0, -1, 0x80, 1.5, ALL_CATEGORIES + 1]) expect(codeOf(() => assertCategoryMask(bad))).toBe("INVALID_CATEGORIES");
    expect(codeOf(() => assertCategoryMask(ALL_CATEGORIES))).toBeUndefined();
  });
});

describe("roles and reasons", () => {
  it("map ledger role ids to names and refuse NONE", () => {
    expect([1, 2, 3, 4].map(roleName)).toEqual(["ADMIN", "GATEWAY", "PARTNER", "AUDITOR"]);
    expect(codeOf(() => roleName(0))).toBe("INVALID_ARGUMENT");
    expect(codeOf(() => roleName(9))).toBe("INVALID_ARGUMENT");
  });

  it("start the permission reasons with OK, as the ledger enum does", () => {
    expect(PERMISSION_REASONS[0]).toBe("OK");
    expect(new Set(PERMISSION_REASONS).size).toBe(PERMISSION_REASONS.length);
  });
});

describe("flatString", () => {
  it("returns the same text, whatever it holds", () => {
    // lone surrogates, quotes, backslashes, control characters and astral characters survive
    for (const s of ["", "0x" + "ab".repeat(20), '"\\\n\u0000', "\ud800", "a\udc00b", "😀", "x".repeat(10_000)]) expect(flatString(s)).toBe(s);
    fc.assert(fc.property(fc.string({ unit: "binary" }), (s) => flatString(s) === s));
    // a string built piece by piece, as ethers builds addresses
    let built = "0x";
    for (let i = 0; i < 40; i++) built += (i % 16).toString(16);
    expect(flatString(built)).toBe(built);
  });
});

describe("canonicalAccessEvent", () => {
  const hex = (n: number) => fc.stringMatching(new RegExp(`^[0-9a-f]{${n}}$`));
  const event = fc.record({
    kind: fc.constant("access" as const),
    requestId: fc.oneof(fc.uuid(), fc.string({ unit: "grapheme" })),
    actor: fc.oneof(hex(40).map((h) => `did:ethr:0x7a69:0x${h}`), fc.string({ unit: "binary" })),
    partner: hex(40).map((h) => `0x${h}` as Address),
    subject: hex(40).map((h) => `0x${h}` as Address),
    purpose: fc.constantFrom(...(["profiling", "research", "direct-marketing"] as const)),
    categories: fc.integer({ min: 0, max: 2 ** 31 }),
    decision: fc.constantFrom("allow" as const, "deny" as const),
    // ASCII with quotes, backslashes and control characters: the plain-string shortcut must refuse them
    reason: fc.oneof(fc.constantFrom("OK", "NO_CONSENT", "CONSENT_REVOKED"), fc.string(), fc.string({ unit: "binary-ascii" })),
    block: fc.nat(),
    time: fc.nat(),
    consentKey: hex(64).map((h) => `0x${h}` as Bytes32),
    agreementId: fc.bigInt({ min: 0n, max: 2n ** 256n - 1n }).map(String),
    at: fc.date({ noInvalidDate: true }).map((d) => d.toISOString()),
  });

  it("is the generic canonical form of any access event, member for member", () => {
    fc.assert(
      fc.property(event, (e) => {
        expect(canonicalAccessEvent(e)).toBe(canonicalize(e));
      }),
      { numRuns: 2_000 },
    );
  });

  it("leaves what its layout does not cover to the generic canonicaliser, refusals included", () => {
    const e = fc.sample(event, 1)[0]!;
    const extra = { ...e, note: "x" } as unknown as AccessEvent;
    expect(canonicalAccessEvent(extra)).toBe(canonicalize(extra));
    expect(canonicalAccessEvent(extra)).toContain('"note":"x"');
    for (const bad of [{ ...e, actor: "\ud800" }, { ...e, block: Number.NaN }, { ...e, time: 1.5e300 * 1e10 }]) {
      expect(() => canonicalAccessEvent(bad as AccessEvent)).toThrow(CustodiaError);
    }
    const fractional = { ...e, categories: 1.5 };
    expect(canonicalAccessEvent(fractional)).toBe(canonicalize(fractional));
  });
});
