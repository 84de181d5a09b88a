/**
 * Segmentation runs as auditable decisions: hashes that pin the model, each subject's input and
 * each explanation, a Merkle commitment to the whole input, and a model card.
 *
 * Number serialisation for hashing: every number that enters a hash is first rounded to 12
 * significant digits (`roundForHash`: Number(x.toPrecision(12)), −0 → 0; NaN/±Infinity are
 * errors) and then serialised by RFC 8785 (core `canonicalize`), i.e. ECMAScript's shortest
 * round-trip form with sorted object keys. Rounding absorbs last-bit differences that are not
 * meaningful (the k-means itself is bit-deterministic for a given seed and input, whatever the
 * number of threads). The model card carries the rounded values, so
 *   modelHash = hashCanonical({ algorithm, params, featureNames, scaler, centroids })
 * can be recomputed from the card alone (`modelHashOf`).
 *
 *   subject input   = { subject, features: { <name>: <rounded raw value>, … } }
 *   inputHash       = hashCanonical(subject input)
 *   explanationHash = hashCanonical(explanation)           (the object returned, already rounded)
 *   dataCommitment  = RFC 9162 Merkle root over leafHash(JCS bytes of each subject input), rows in
 *                     subject order (sorted), so any subject's input can be proven included.
 * All hashes are SHA-256, 0x-hex (core toHex0x).
 *
 * Segments are renumbered canonically after clustering — by size (largest first), then centroid
 * (lexicographic, scaled units) — and named "segment-1" … "segment-k".
 */
import { MerkleTree, canonicalBytes, hashCanonical, leafHash, toHex0x, type DecisionRecord } from "../core/index.js";
import { fail, type Matrix } from "./matrix.js";
import { buildFeatures, compareStrings, fitScaler, inverseRow, transform, type FeatureMatrix, type Profile, type ScalerKind, type Transaction } from "./features.js";
import { kmeans, type KMeansResult } from "./kmeans.js";
import { chooseK, silhouette } from "./silhouette.js";
import { explainRow } from "./explain.js";
import { fairnessReports, type FairnessReport } from "./fairness.js";
import { psiByFeature, type FeatureDrift } from "./drift.js";
import { rfmFromFeatures, type RfmSegment } from "./rfm.js";

export type Hex = `0x${string}`;

export const MODEL_ALGORITHM = "custodia/kmeans++-hamerly@1";
export const HASH_SIGNIFICANT_DIGITS = 12;

/** Rounds for hashing (see module comment). Errors: NAN_VALUE. */
export function roundForHash(x: number): number {
  if (typeof x !== "number" || !Number.isFinite(x)) fail("NAN_VALUE", "only finite numbers can be hashed", { value: String(x) });
  if (x === 0) return 0;
  return Number(x.toPrecision(HASH_SIGNIFICANT_DIGITS));
}

const roundAll = (a: ArrayLike<number>): number[] => Array.from(a, roundForHash);

export interface ModelParams {
  readonly k: number;
  readonly kSelection: "fixed" | "silhouette";
  readonly kRange: readonly [number, number] | null;
  readonly nInit: number;
  readonly maxIter: number;
  readonly tol: number;
  readonly seed: number;
  readonly init: "k-means++ (greedy)";
  readonly scaler: ScalerKind;
}

export interface ModelDefinition {
  readonly algorithm: string;
  readonly params: ModelParams;
  readonly featureNames: readonly string[];
  readonly scaler: { readonly kind: ScalerKind; readonly center: readonly number[]; readonly scale: readonly number[] };
  /** Scaled units, one row per segment in segment order; rounded for hashing. */
  readonly centroids: readonly (readonly number[])[];
}

/** modelHash of a model definition (or of a model card, which contains one). */
export function modelHashOf(def: ModelDefinition): Hex {
  const { algorithm, params, featureNames, scaler, centroids } = def;
  return toHex0x(
    hashCanonical({
      algorithm,
      params,
      featureNames,
      scaler: { kind: scaler.kind, center: roundAll(scaler.center), scale: roundAll(scaler.scale) },
      centroids: centroids.map((c) => roundAll(c)),
    }),
  );
}

export interface SubjectInput {
  readonly subject: string;
  readonly features: Readonly<Record<string, number>>;
}

/** The canonical per-subject input (raw feature values, rounded). */
export function subjectInput(subject: string, names: readonly string[], values: ArrayLike<number>): SubjectInput {
  if (names.length !== values.length) fail("SHAPE_MISMATCH", "one value per feature name is required");
  const features: Record<string, number> = {};
  names.forEach((nm, f) => (features[nm] = roundForHash(values[f]!)));
  return { subject, features };
}

export function inputHash(input: SubjectInput): Hex {
  return toHex0x(hashCanonical(input));
}

export function explanationHash(explanation: SubjectExplanation): Hex {
  return toHex0x(hashCanonical(explanation));
}

/** Merkle root (RFC 9162) over leafHash(JCS(input)) of each input, in order. */
export function dataCommitment(inputs: readonly SubjectInput[]): Hex {
  return toHex0x(MerkleTree.fromLeafHashes(inputs.map((x) => leafHash(canonicalBytes(x)))).root());
}

export interface ExplainedFeature {
  readonly feature: string;
  /** (x_f − c2_f)² − (x_f − c1_f)² in scaled units; positive = pulls towards the own segment. */
  readonly contribution: number;
  /** The subject's value and its segment's centre, original units. */
  readonly value: number;
  readonly segmentCentre: number;
}

export interface SubjectExplanation {
  readonly segment: string;
  readonly runnerUp: string | null;
  readonly distance: number;
  readonly runnerUpDistance: number | null;
  readonly margin: number | null;
  readonly squaredMargin: number | null;
  readonly topFeatures: readonly ExplainedFeature[];
  readonly rfm: { readonly r: number; readonly f: number; readonly m: number; readonly segment: RfmSegment };
}

export interface SubjectDecision {
  readonly subject: string;
  readonly segment: string;
  readonly modelHash: Hex;
  readonly inputHash: Hex;
  readonly explanationHash: Hex;
  readonly explanation: SubjectExplanation;
}

export interface SegmentProfileCard {
  readonly segment: string;
  readonly size: number;
  readonly share: number;
  /** Centre in original units, by feature. */
  readonly centre: Readonly<Record<string, number>>;
  /** The most common RFM segment among its subjects and its share. */
  readonly dominantRfm: { readonly segment: RfmSegment; readonly share: number };
}

export interface ModelCard extends ModelDefinition {
  readonly modelHash: Hex;
  readonly dataCommitment: Hex;
  readonly subjects: number;
  readonly metrics: {
    readonly inertia: number;
    readonly silhouette: number | null;
    readonly sizes: readonly number[];
    readonly iterations: number;
    readonly converged: boolean;
    readonly kScores: readonly { k: number; silhouette: number; inertia: number }[] | null;
  };
  readonly segments: readonly SegmentProfileCard[];
  readonly fairness: readonly FairnessReport[];
  readonly drift?: readonly FeatureDrift[];
}

export interface SegmentRunOptions {
  /** Unix seconds. */
  asOf: number;
  /** Fixed number of segments; when absent k is chosen in kRange by silhouette. */
  k?: number;
  kRange?: readonly [number, number];
  seed?: number;
  nInit?: number;
  maxIter?: number;
  tol?: number;
  workers?: number;
  scaler?: ScalerKind;
  topCategories?: number;
  categories?: readonly string[];
  channels?: readonly string[];
  /** Features listed per explanation (default 3). */
  topFeatures?: number;
  /** Silhouette sample size (default 2000). */
  silhouetteSample?: number;
  fairnessThreshold?: number;
  /** Features of an earlier run: adds PSI drift per feature to the card. */
  reference?: FeatureMatrix;
  psiBins?: number;
}

export interface SegmentRun {
  readonly modelHash: Hex;
  readonly decisions: readonly SubjectDecision[];
  readonly modelCard: ModelCard;
  /** Raw and scaled features (rows = decisions order). */
  readonly features: FeatureMatrix;
  readonly scaled: Matrix;
  /** Clustering after canonical renumbering (labels index segments, 0 = "segment-1"). */
  readonly clustering: KMeansResult;
}

export const segmentName = (j: number): string => `segment-${j + 1}`;

/** Features → scaling → k-means → explanations, hashes and model card. Errors: those of the steps. */
export function segmentRun(transactions: readonly Transaction[], profiles: readonly Profile[], opts: SegmentRunOptions): SegmentRun {
  if (opts === null || typeof opts !== "object") fail("BAD_OPTION", "options must be an object");
  const features = buildFeatures(transactions, profiles, {
    asOf: opts.asOf,
    ...(opts.topCategories !== undefined ? { topCategories: opts.topCategories } : {}),
    ...(opts.categories !== undefined ? { categories: opts.categories } : {}),
    ...(opts.channels !== undefined ? { channels: opts.channels } : {}),
  });
  const scalerKind = opts.scaler ?? "zscore";
  const scaler = fitScaler(features, scalerKind);
  const scaled = transform(scaler, features);
  const seed = opts.seed ?? 0;
  const nInit = opts.nInit ?? 4;
  const maxIter = opts.maxIter ?? 300;
  const tol = opts.tol ?? 1e-4;
  const common = { seed, nInit, maxIter, tol, ...(opts.workers !== undefined ? { workers: opts.workers } : {}) };
  const sampleSize = opts.silhouetteSample ?? 2000;

  let raw: KMeansResult;
  let kScores: { k: number; silhouette: number; inertia: number }[] | null = null;
  let kRange: [number, number] | null = null;
  if (opts.k !== undefined) {
    raw = kmeans(scaled, { ...common, k: opts.k });
  } else {
    kRange = [opts.kRange?.[0] ?? 2, opts.kRange?.[1] ?? 8];
    const ck = chooseK(scaled, { ...common, kMin: kRange[0], kMax: kRange[1], sampleSize });
    raw = ck.result;
    kScores = ck.scores.map((s) => ({ k: s.k, silhouette: roundForHash(s.silhouette), inertia: roundForHash(s.inertia) }));
  }
  const clustering = canonicalOrder(raw);
  const { k, d, centroids, labels } = clustering;
  const n = features.rows;
  const names = features.names;

  const params: ModelParams = {
    k,
    kSelection: opts.k !== undefined ? "fixed" : "silhouette",
    kRange,
    nInit,
    maxIter,
    tol,
    seed,
    init: "k-means++ (greedy)",
    scaler: scalerKind,
  };
  const def: ModelDefinition = {
    algorithm: MODEL_ALGORITHM,
    params,
    featureNames: [...names],
    scaler: { kind: scalerKind, center: roundAll(scaler.center), scale: roundAll(scaler.scale) },
    centroids: Array.from({ length: k }, (_, j) => roundAll(centroids.subarray(j * d, (j + 1) * d))),
  };
  const modelHash = modelHashOf(def);

  const rfm = rfmFromFeatures(features);
  const topN = opts.topFeatures ?? 3;
  const inputs: SubjectInput[] = new Array(n);
  const decisions: SubjectDecision[] = new Array(n);
  const segNames = Array.from({ length: k }, (_, j) => segmentName(j));
  const centresOrig = Array.from({ length: k }, (_, j) => inverseRow(scaler, centroids.subarray(j * d, (j + 1) * d)));
  for (let i = 0; i < n; i++) {
    const rawRow = features.data.subarray(i * d, (i + 1) * d);
    const input = subjectInput(features.subjects[i]!, names, rawRow);
    inputs[i] = input;
    const ex = explainRow(scaled.data.subarray(i * d, (i + 1) * d), centroids, k, labels[i]!, names, topN);
    const own = centresOrig[ex.segment]!;
    const explanation: SubjectExplanation = {
      segment: segNames[ex.segment]!,
      runnerUp: ex.secondSegment === null ? null : segNames[ex.secondSegment]!,
      distance: roundForHash(ex.nearestDistance),
      runnerUpDistance: ex.secondDistance === null ? null : roundForHash(ex.secondDistance),
      margin: ex.margin === null ? null : roundForHash(ex.margin),
      squaredMargin: ex.squaredMargin === null ? null : roundForHash(ex.squaredMargin),
      topFeatures: ex.topFeatures.map((t) => {
        const f = names.indexOf(t.feature);
        return { feature: t.feature, contribution: roundForHash(t.contribution), value: roundForHash(rawRow[f]!), segmentCentre: roundForHash(own[f]!) };
      }),
      rfm: { r: rfm.r[i]!, f: rfm.f[i]!, m: rfm.m[i]!, segment: rfm.segments[i]! },
    };
    decisions[i] = {
      subject: input.subject,
      segment: explanation.segment,
      modelHash,
      inputHash: inputHash(input),
      explanationHash: explanationHash(explanation),
      explanation,
    };
  }

  // Metrics and segment profiles.
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < n; i++) sizes[labels[i]!]!++;
  let sil: number | null = null;
  if (k >= 2 && sizes.filter((s) => s > 0).length >= 2) {
    sil = roundForHash(silhouette(scaled, labels, { sampleSize, seed }));
  }
  const segments: SegmentProfileCard[] = [];
  for (let j = 0; j < k; j++) {
    const mix = new Map<RfmSegment, number>();
    for (let i = 0; i < n; i++) if (labels[i] === j) mix.set(rfm.segments[i]!, (mix.get(rfm.segments[i]!) ?? 0) + 1);
    const top = [...mix.entries()].sort((a, b) => b[1] - a[1] || compareStrings(a[0], b[0]))[0];
    const centre: Record<string, number> = {};
    names.forEach((nm, f) => (centre[nm] = roundForHash(centresOrig[j]![f]!)));
    segments.push({
      segment: segNames[j]!,
      size: sizes[j]!,
      share: roundForHash(sizes[j]! / n),
      centre,
      dominantRfm: top ? { segment: top[0], share: roundForHash(top[1] / sizes[j]!) } : { segment: "Lost", share: 0 },
    });
  }
  const profileBySubject = new Map(profiles.map((p) => [p.subject, p]));
  const fairness = fairnessReports(
    decisions.map((x) => x.segment),
    features.subjects.map((s) => profileBySubject.get(s)!),
    opts.fairnessThreshold !== undefined ? { threshold: opts.fairnessThreshold } : {},
  );
  const drift = opts.reference !== undefined ? psiByFeature(opts.reference, features, opts.psiBins !== undefined ? { bins: opts.psiBins } : {}) : undefined;

  const modelCard: ModelCard = {
    ...def,
    modelHash,
    dataCommitment: dataCommitment(inputs),
    subjects: n,
    metrics: {
      inertia: roundForHash(clustering.inertia),
      silhouette: sil,
      sizes,
      iterations: clustering.iterations,
      converged: clustering.converged,
      kScores,
    },
    segments,
    fairness,
    ...(drift !== undefined ? { drift } : {}),
  };
  return { modelHash, decisions, modelCard, features, scaled, clustering };
}

/**
 * A deterministic run id: hashCanonical({ modelHash, dataCommitment }) — the same model applied
 * to the same input gives the same id.
 */
export function runIdOf(card: Pick<ModelCard, "modelHash" | "dataCommitment">): Hex {
  return toHex0x(hashCanonical({ modelHash: card.modelHash, dataCommitment: card.dataCommitment }));
}

/**
 * The core DecisionRecord for the gateway's decisions log. Its subject is a ledger address, so
 * the decision's subject must be one (0x + 40 hex digits; BAD_SUBJECT otherwise); `at` is ISO 8601.
 */
export function toDecisionRecord(decision: SubjectDecision, runId: string, at: string): DecisionRecord {
  if (!/^0x[0-9a-fA-F]{40}$/.test(decision.subject)) fail("BAD_SUBJECT", "decision subject is not a ledger address", { subject: decision.subject });
  return {
    kind: "decision",
    runId,
    subject: decision.subject as `0x${string}`,
    modelHash: decision.modelHash,
    inputHash: decision.inputHash,
    segment: decision.segment,
    explanationHash: decision.explanationHash,
    at,
  };
}

/** Renumbers clusters: size descending, then centroid lexicographic ascending, then old index. */
export function canonicalOrder(r: KMeansResult): KMeansResult {
  const { k, d, centroids, labels } = r;
  const sizes = new Array<number>(k).fill(0);
  for (let i = 0; i < labels.length; i++) sizes[labels[i]!]!++;
  const order = Array.from({ length: k }, (_, j) => j).sort((a, b) => {
    if (sizes[a] !== sizes[b]) return sizes[b]! - sizes[a]!;
    for (let f = 0; f < d; f++) {
      const x = centroids[a * d + f]!;
      const y = centroids[b * d + f]!;
      if (x !== y) return x - y;
    }
    return a - b;
  });
  const newIndex = new Int32Array(k);
  order.forEach((old, j) => (newIndex[old] = j));
  const c2 = new Float64Array(k * d);
  order.forEach((old, j) => c2.set(centroids.subarray(old * d, (old + 1) * d), j * d));
  const l2 = new Int32Array(labels.length);
  for (let i = 0; i < labels.length; i++) l2[i] = newIndex[labels[i]!]!;
  return { ...r, centroids: c2, labels: l2 };
}
