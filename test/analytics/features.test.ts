import { describe, expect, it } from "vitest";
import { buildFeatures, fitScaler, inverseRow, inverseTransform, transform, type Profile, type Transaction } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

const DAY = 86_400;
const asOf = 1_000 * DAY;
const profiles: Profile[] = [
  { subject: "b", joinedAt: asOf - 20 * DAY },
  { subject: "a", joinedAt: asOf - 50 * DAY, ageBand: "25-34" },
  { subject: "c", joinedAt: asOf - 7 * DAY },
];
const txs: Transaction[] = [
  { subject: "a", at: asOf - 10 * DAY, amount: 10, category: "grocery", channel: "online" },
  { subject: "a", at: asOf - 2 * DAY, amount: 30, category: "fashion", channel: "app" },
  { subject: "b", at: asOf - 5 * DAY, amount: 0, category: "grocery", channel: "store" },
  { subject: "b", at: asOf - 5 * DAY, amount: 20, category: "grocery", channel: "kiosk" },
];

describe("buildFeatures", () => {
  it("computes the documented columns on a hand-worked example, rows sorted by subject", () => {
    const X = buildFeatures(txs, profiles, { asOf, topCategories: 1 });
    expect(X.subjects).toEqual(["a", "b", "c"]);
    expect(X.names).toEqual([
      "recency_days",
      "frequency",
      "monetary",
      "tenure_days",
      "avg_basket",
      "cat_share:grocery",
      "cat_share:other",
      "channel_share:online",
      "channel_share:store",
      "channel_share:app",
      "channel_share:other",
    ]);
    expect(X.rows).toBe(3);
    expect(X.cols).toBe(11);
    const rows = [0, 1, 2].map((i) => Array.from(X.data.subarray(i * 11, i * 11 + 11)));
    expect(rows[0]).toEqual([2, 2, 40, 50, 20, 0.5, 0.5, 0.5, 0, 0.5, 0]);
    expect(rows[1]).toEqual([5, 2, 20, 20, 10, 1, 0, 0, 0.5, 0, 0.5]);
    // no transactions: recency = tenure, everything else 0
    expect(rows[2]).toEqual([7, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0]);
  });

  it("does not depend on input order and honours explicit categories/channels", () => {
    const a = buildFeatures(txs, profiles, { asOf });
    const b = buildFeatures([...txs].reverse(), [...profiles].reverse(), { asOf });
    expect(b.data).toEqual(a.data);
    const c = buildFeatures(txs, profiles, { asOf, categories: ["fashion"], channels: ["app"] });
    expect(c.names.slice(5)).toEqual(["cat_share:fashion", "cat_share:other", "channel_share:app", "channel_share:other"]);
  });

  it("handles a single subject", () => {
    const X = buildFeatures([], [{ subject: "solo", joinedAt: asOf - DAY }], { asOf });
    expect(X.rows).toBe(1);
    expect(X.data[0]).toBe(1);
  });

  it("rejects bad input with exact reasons", () => {
    expectReason(() => buildFeatures([], [], { asOf }), "EMPTY_INPUT");
    const bad = (patch: Partial<Transaction>): Transaction[] => [{ ...txs[0]!, ...patch }];
    expectReason(() => buildFeatures(bad({ amount: Number.NaN }), profiles, { asOf }), "NAN_AMOUNT");
    expectReason(() => buildFeatures(bad({ amount: Infinity }), profiles, { asOf }), "INFINITE_AMOUNT");
    expectReason(() => buildFeatures(bad({ amount: -Infinity }), profiles, { asOf }), "INFINITE_AMOUNT");
    const neg = expectReason(() => buildFeatures(bad({ amount: -5 }), profiles, { asOf }), "NEGATIVE_AMOUNT");
    expect(neg.details?.index).toBe(0);
    expectReason(() => buildFeatures(bad({ subject: "zz" }), profiles, { asOf }), "UNKNOWN_SUBJECT");
    expectReason(() => buildFeatures(bad({ at: asOf + 1 }), profiles, { asOf }), "AFTER_AS_OF");
    expectReason(() => buildFeatures(bad({ at: Number.NaN }), profiles, { asOf }), "BAD_TIMESTAMP");
    expectReason(() => buildFeatures(bad({ category: "" }), profiles, { asOf }), "BAD_CATEGORY");
    expectReason(() => buildFeatures([], [...profiles, { subject: "a", joinedAt: 0 }], { asOf }), "DUPLICATE_SUBJECT");
    expectReason(() => buildFeatures([], [{ subject: "x", joinedAt: asOf + 1 }], { asOf }), "JOINED_AFTER_AS_OF");
    expectReason(() => buildFeatures([], [{ subject: "", joinedAt: 0 }], { asOf }), "BAD_SUBJECT");
    expectReason(() => buildFeatures([], profiles, { asOf: Number.NaN }), "BAD_TIMESTAMP");
    expectReason(() => buildFeatures([], profiles, { asOf, channels: ["app", "app"] }), "BAD_OPTION");
  });
});

describe("scalers", () => {
  const X = { data: Float64Array.from([1, 5, 10, 2, 5, 20, 3, 5, 30, 4, 5, 1000]), rows: 4, cols: 3 };

  it("z-score: population mean/std, constant column handled, exact inverse", () => {
    const s = fitScaler(X, "zscore");
    expect(s.center[0]).toBe(2.5);
    expect(s.scale[0]).toBeCloseTo(Math.sqrt(1.25), 14);
    expect(s.center[1]).toBe(5);
    expect(s.scale[1]).toBe(1); // constant column: no division by zero
    const T = transform(s, X);
    for (let i = 0; i < 4; i++) expect(T.data[i * 3 + 1]).toBe(0);
    const back = inverseTransform(s, T);
    for (let q = 0; q < X.data.length; q++) expect(back.data[q]).toBeCloseTo(X.data[q]!, 9);
    const r = inverseRow(s, T.data.subarray(3, 6));
    [2, 5, 20].forEach((v, f) => expect(r[f]).toBeCloseTo(v, 9));
  });

  it("robust: median and IQR (linear quantiles), outlier-insensitive", () => {
    const s = fitScaler(X, "robust");
    expect(s.center[0]).toBe(2.5);
    expect(s.scale[0]).toBe(1.5); // q75 3.25 − q25 1.75
    expect(s.center[2]).toBe(25);
    expect(s.scale[2]).toBe(255); // q75 = 30 + 0.25·970 = 272.5, q25 = 10 + 0.75·10 = 17.5
  });

  it("rejects width mismatches and bad kinds", () => {
    const s = fitScaler(X);
    expectReason(() => transform(s, { data: new Float64Array(2), rows: 1, cols: 2 }), "SHAPE_MISMATCH");
    expectReason(() => fitScaler(X, "minmax" as "zscore"), "BAD_OPTION");
    expectReason(() => fitScaler({ data: new Float64Array(0), rows: 0, cols: 3 }), "EMPTY_INPUT");
    expectReason(() => fitScaler({ data: Float64Array.from([1, Number.NaN]), rows: 1, cols: 2 }), "NAN_VALUE");
  });
});
