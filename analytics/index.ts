/**
 * Custodia analytics: pure, deterministic customer segmentation with auditable outputs.
 * Imports only ../core and Node built-ins (worker_threads and os; fs in the CSV reader).
 */
export { Rng, assertSeed } from "./rng.js";
export { assertMatrix, firstNonFinite, row, sqDist, type Matrix, type AnalyticsReason } from "./matrix.js";
export {
  buildFeatures,
  fitScaler,
  transform,
  inverseTransform,
  inverseRow,
  quantileSorted,
  compareStrings,
  BASE_FEATURES,
  DEFAULT_CHANNELS,
  DAY_SECONDS,
  type Transaction,
  type Profile,
  type Channel,
  type FeatureOptions,
  type FeatureMatrix,
  type Scaler,
  type ScalerKind,
} from "./features.js";
export { rfm, rfmFromFeatures, rfmSegment, quintileScores, RFM_SEGMENTS, RFM_GRID, type RfmSegment, type RfmResult, type RfmInput } from "./rfm.js";
export { kmeans, predict, seedCentres, closeKMeansWorkers, CHUNK_ROWS, type KMeansOptions, type KMeansResult } from "./kmeans.js";
export { silhouette, chooseK, type SilhouetteOptions, type ChooseKOptions, type ChooseKResult } from "./silhouette.js";
export { explainRow, explainAll, segmentProfiles, type Explanation, type FeatureContribution, type SegmentProfile } from "./explain.js";
export {
  segmentFairness,
  fairnessReports,
  PROTECTED_ATTRIBUTES,
  type FairnessReport,
  type FairnessOptions,
  type SegmentDisparity,
  type ProtectedAttribute,
} from "./fairness.js";
export { psi, psiByFeature, driftStatus, type PsiOptions, type FeatureDrift, type DriftStatus } from "./drift.js";
export {
  segmentRun,
  canonicalOrder,
  modelHashOf,
  subjectInput,
  inputHash,
  explanationHash,
  dataCommitment,
  roundForHash,
  segmentName,
  runIdOf,
  toDecisionRecord,
  MODEL_ALGORITHM,
  HASH_SIGNIFICANT_DIGITS,
  type Hex,
  type ModelParams,
  type ModelDefinition,
  type ModelCard,
  type SubjectInput,
  type SubjectExplanation,
  type ExplainedFeature,
  type SubjectDecision,
  type SegmentProfileCard,
  type SegmentRunOptions,
  type SegmentRun,
} from "./model.js";
export {
  generateCustomers,
  generateBlobs,
  PERSONAS,
  CATEGORIES,
  CHANNELS,
  AGE_BANDS,
  GENDERS,
  REGIONS,
  DEFAULT_AS_OF,
  type Persona,
  type CustomerOptions,
  type CustomerData,
  type BlobOptions,
  type Blobs,
} from "./synthetic.js";
export { parseCsv, parseTransactionsCsv, parseProfilesCsv, readTransactionsCsv, readProfilesCsv, type CsvRecord } from "./csv.js";
export { adjustedRandIndex } from "./ari.js";
