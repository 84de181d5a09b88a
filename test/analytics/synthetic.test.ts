import { describe, expect, it } from "vitest";
import { adjustedRandIndex, buildFeatures, fitScaler, generateBlobs, generateCustomers, kmeans, transform } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("synthetic data", () => {
  it("is seeded and deterministic", () => {
    const a = generateCustomers({ n: 50, seed: 1 });
    const b = generateCustomers({ n: 50, seed: 1 });
    const c = generateCustomers({ n: 50, seed: 2 });
    expect(b).toEqual(a);
    expect(c.transactions).not.toEqual(a.transactions);
    expect(generateBlobs({ n: 100, d: 3, k: 2, seed: 4 })).toEqual(generateBlobs({ n: 100, d: 3, k: 2, seed: 4 }));
  });

  it("produces valid customers: sorted subjects, protected attributes, planted personas", () => {
    const data = generateCustomers({ n: 300, seed: 5, outlierRate: 0.02, missingRate: 0.1 });
    const subjects = data.profiles.map((p) => p.subject);
    expect([...subjects].sort()).toEqual(subjects);
    expect(new Set(data.truth).size).toBe(6);
    expect(data.profiles.some((p) => p.ageBand === undefined)).toBe(true);
    expect(data.transactions.every((t) => t.amount >= 0 && t.at <= data.asOf)).toBe(true);
    // buildFeatures accepts it as-is
    expect(buildFeatures(data.transactions, data.profiles, { asOf: data.asOf }).rows).toBe(300);
  });

  it("plants recoverable segments: k-means on scaled features reaches ARI >= 0.9", () => {
    const data = generateCustomers({ n: 1200, seed: 7 });
    const X = buildFeatures(data.transactions, data.profiles, { asOf: data.asOf });
    const Xs = transform(fitScaler(X, "zscore"), X);
    const r = kmeans(Xs, { k: 6, seed: 1, nInit: 4 });
    expect(adjustedRandIndex(r.labels, data.truth)).toBeGreaterThanOrEqual(0.9);
  });

  it("generates well-separated blobs (shared memory optional)", () => {
    const b = generateBlobs({ n: 20_000, d: 8, k: 8, seed: 1, shared: true });
    expect(b.X.data.buffer).toBeInstanceOf(SharedArrayBuffer);
    const r = kmeans(b.X, { k: 8, seed: 2, nInit: 2 });
    expect(adjustedRandIndex(r.labels, b.labels)).toBeGreaterThanOrEqual(0.95);
    expectReason(() => generateBlobs({ n: 2, d: 2, k: 3 }), "BAD_OPTION");
    expectReason(() => generateCustomers({ n: -1 }), "BAD_OPTION");
  });
});
