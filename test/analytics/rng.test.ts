import { describe, expect, it } from "vitest";
import { Rng } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("Rng (xoshiro128**)", () => {
  it("is deterministic per seed and differs across seeds", () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const c = new Rng(43);
    const xs = Array.from({ length: 8 }, () => a.nextU32());
    expect(Array.from({ length: 8 }, () => b.nextU32())).toEqual(xs);
    expect(Array.from({ length: 8 }, () => c.nextU32())).not.toEqual(xs);
    // high bits of large seeds matter too
    expect(new Rng(2 ** 40).nextU32()).not.toBe(new Rng(0).nextU32());
  });

  it("produces values in range with plausible moments", () => {
    const r = new Rng(7);
    let sum = 0;
    let sq = 0;
    const N = 20_000;
    let inRange = true;
    for (let i = 0; i < N; i++) {
      const u = r.next();
      const z = r.normal();
      sum += z;
      sq += z * z;
      const k = r.nextInt(7);
      inRange &&= u >= 0 && u < 1 && Number.isInteger(k) && k >= 0 && k < 7;
    }
    expect(inRange).toBe(true);
    expect(Math.abs(sum / N)).toBeLessThan(0.05);
    expect(Math.abs(sq / N - 1)).toBeLessThan(0.05);
  });

  it("samples distinct sorted indices", () => {
    const s = new Rng(1).sampleIndices(100, 30);
    expect(s.length).toBe(30);
    expect(new Set(s).size).toBe(30);
    for (let i = 1; i < s.length; i++) expect(s[i]!).toBeGreaterThan(s[i - 1]!);
    expect(Array.from(new Rng(1).sampleIndices(5, 10))).toEqual([0, 1, 2, 3, 4]);
  });

  it("rejects bad seeds with BAD_SEED", () => {
    for (const s of [-1, 1.5, Number.NaN, 2 ** 60]) expectReason(() => new Rng(s), "BAD_SEED");
  });
});
