import { describe, expect, it } from "vitest";
import { MerkleTree, canonicalBytes, fromHex, hashCanonical, leafHash, toHex0x, verifyInclusion } from "../../core/index.js";
import { generateCustomers, inputHash, modelHashOf, roundForHash, runIdOf, segmentRun, subjectInput, toDecisionRecord, type Transaction } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

const data = generateCustomers({ n: 400, seed: 3 });
const opts = { asOf: data.asOf, k: 6, seed: 5, nInit: 2, silhouetteSample: 300 };

describe("segmentRun", () => {
  const run = segmentRun(data.transactions, data.profiles, opts);

  it("is deterministic: same seed, same hashes and labels", () => {
    const again = segmentRun([...data.transactions].reverse(), [...data.profiles].reverse(), opts);
    expect(again.modelHash).toBe(run.modelHash);
    expect(again.modelCard.dataCommitment).toBe(run.modelCard.dataCommitment);
    expect(again.decisions).toEqual(run.decisions);
    const other = segmentRun(data.transactions, data.profiles, { ...opts, seed: 6 });
    expect(other.modelHash).not.toBe(run.modelHash); // the seed is a model parameter
    expect(other.modelCard.dataCommitment).toBe(run.modelCard.dataCommitment); // same input data
  });

  it("produces one decision per subject with recomputable hashes", () => {
    expect(run.decisions.length).toBe(400);
    expect(run.decisions.map((d) => d.subject)).toEqual([...run.features.subjects]);
    const i = 17;
    const dec = run.decisions[i]!;
    const input = subjectInput(dec.subject, run.features.names, run.features.data.subarray(i * run.features.cols, (i + 1) * run.features.cols));
    expect(dec.inputHash).toBe(inputHash(input));
    expect(dec.inputHash).toBe(toHex0x(hashCanonical(input)));
    expect(dec.explanationHash).toBe(toHex0x(hashCanonical(dec.explanation)));
    expect(dec.modelHash).toBe(run.modelHash);
    expect(dec.segment).toBe(dec.explanation.segment);
    expect(dec.explanation.margin!).toBeGreaterThanOrEqual(0);
    expect(dec.explanation.topFeatures.length).toBe(3);
    expect(/^0x[0-9a-f]{64}$/.test(dec.explanationHash)).toBe(true);
  });

  it("commits to the input with an RFC 9162 Merkle root that proves any subject's inclusion", () => {
    const leaves = run.decisions.map((d, i) =>
      leafHash(canonicalBytes(subjectInput(d.subject, run.features.names, run.features.data.subarray(i * run.features.cols, (i + 1) * run.features.cols)))),
    );
    const tree = MerkleTree.fromLeafHashes(leaves);
    expect(toHex0x(tree.root())).toBe(run.modelCard.dataCommitment);
    verifyInclusion(123, 400, leaves[123]!, tree.inclusionProof(123), fromHex(run.modelCard.dataCommitment));
  });

  it("publishes a model card whose modelHash can be recomputed from the card", () => {
    const card = run.modelCard;
    expect(modelHashOf(card)).toBe(run.modelHash);
    expect(modelHashOf(JSON.parse(JSON.stringify(card)))).toBe(run.modelHash);
    expect(modelHashOf({ ...card, centroids: card.centroids.map((c, j) => (j === 0 ? [c[0]! + 1e-3, ...c.slice(1)] : c)) })).not.toBe(run.modelHash);
    expect(card.params).toMatchObject({ k: 6, seed: 5, nInit: 2, kSelection: "fixed", scaler: "zscore" });
    expect(card.featureNames).toEqual(run.features.names);
    expect(card.metrics.sizes.reduce((a, b) => a + b, 0)).toBe(400);
    for (let j = 1; j < 6; j++) expect(card.metrics.sizes[j]!).toBeLessThanOrEqual(card.metrics.sizes[j - 1]!); // canonical order
    expect(card.metrics.silhouette!).toBeGreaterThan(0.3);
    expect(card.segments.map((s) => s.segment)).toEqual(["segment-1", "segment-2", "segment-3", "segment-4", "segment-5", "segment-6"]);
    expect(card.fairness.map((f) => f.attribute)).toEqual(["ageBand", "gender", "region"]);
    expect(card.drift).toBeUndefined();
    // profiles are in original units: frequency centre of a segment is a plausible count
    expect(card.segments.every((s) => s.centre.frequency! >= 1)).toBe(true);
  });

  it("maps decisions to core DecisionRecords with a deterministic run id", () => {
    const runId = runIdOf(run.modelCard);
    expect(runId).toBe(toHex0x(hashCanonical({ modelHash: run.modelHash, dataCommitment: run.modelCard.dataCommitment })));
    const addr = "0x" + "ab".repeat(20);
    const rec = toDecisionRecord({ ...run.decisions[0]!, subject: addr }, runId, "2026-01-01T00:00:00.000Z");
    expect(rec).toEqual({
      kind: "decision",
      runId,
      subject: addr,
      modelHash: run.modelHash,
      inputHash: run.decisions[0]!.inputHash,
      segment: run.decisions[0]!.segment,
      explanationHash: run.decisions[0]!.explanationHash,
      at: "2026-01-01T00:00:00.000Z",
    });
    expectReason(() => toDecisionRecord(run.decisions[0]!, runId, "2026-01-01T00:00:00Z"), "BAD_SUBJECT");
  });

  it("reports PSI drift against a reference run", () => {
    const same = segmentRun(data.transactions, data.profiles, { ...opts, reference: run.features });
    expect(same.modelCard.drift!.every((d) => d.psi === 0)).toBe(true);
    const shifted = generateCustomers({ n: 400, seed: 4, personas: 2 });
    const later = segmentRun(shifted.transactions, shifted.profiles, { ...opts, asOf: shifted.asOf, categories: ["grocery", "fashion", "beauty", "home"], reference: run.features });
    expect(later.modelCard.drift!.some((d) => d.status === "significant")).toBe(true);
  });

  it("chooses k by silhouette when k is not given", () => {
    const r = segmentRun(data.transactions, data.profiles, { asOf: data.asOf, kRange: [3, 7], seed: 1, nInit: 1, silhouetteSample: 300 });
    expect(r.modelCard.params.kSelection).toBe("silhouette");
    expect(r.modelCard.metrics.kScores!.map((s) => s.k)).toEqual([3, 4, 5, 6, 7]);
    const best = [...r.modelCard.metrics.kScores!].sort((a, b) => b.silhouette - a.silhouette || a.k - b.k)[0]!;
    expect(r.modelCard.params.k).toBe(best.k);
  });

  it("handles one subject (k = 1) and rejects k > n and bad transactions", () => {
    const one = segmentRun([{ subject: "solo", at: data.asOf - 5, amount: 3, category: "c", channel: "app" }], [{ subject: "solo", joinedAt: data.asOf - 100 }], {
      asOf: data.asOf,
      k: 1,
    });
    expect(one.decisions.length).toBe(1);
    expect(one.decisions[0]!.explanation.runnerUp).toBeNull();
    expect(one.modelCard.metrics.silhouette).toBeNull();
    expectReason(() => segmentRun(data.transactions.slice(0, 3), data.profiles.slice(0, 1), { asOf: data.asOf, k: 2 }), "K_TOO_LARGE");
    const bad: Transaction[] = [...data.transactions];
    bad[5] = { ...bad[5]!, amount: -1 };
    expectReason(() => segmentRun(bad, data.profiles, opts), "NEGATIVE_AMOUNT");
  });

  it("survives identical subjects (constant features) without NaN", () => {
    const profiles = Array.from({ length: 12 }, (_, i) => ({ subject: `s${String(i).padStart(2, "0")}`, joinedAt: data.asOf - 86_400 * 30 }));
    const r = segmentRun([], profiles, { asOf: data.asOf, k: 3, seed: 1 });
    expect(r.modelCard.metrics.inertia).toBe(0);
    expect(r.modelCard.metrics.sizes.every((s) => s > 0)).toBe(true);
    expect(r.modelCard.metrics.silhouette).toBe(0);
    expect(r.decisions.every((d) => d.explanation.margin === 0)).toBe(true);
  });

  it("rounds numbers deterministically for hashing", () => {
    expect(roundForHash(0.1 + 0.2)).toBe(0.3);
    expect(Object.is(roundForHash(-0), 0)).toBe(true);
    expect(roundForHash(123456789.123456789)).toBe(123456789.123);
    expectReason(() => roundForHash(Number.NaN), "NAN_VALUE");
    expectReason(() => roundForHash(Infinity), "NAN_VALUE");
  });
});
