/**
 * Segment shares per protected-attribute group and the disparity ratio.
 *
 * For an attribute (ageBand, gender, region) with groups g (subjects whose value is missing or
 * empty are counted in `missing` and left out of the ratios):
 *   share(s | g) = |subjects of group g in segment s| / |group g|
 *   ratio(s)     = min_g share(s | g) / max_g share(s | g)   (1 when max is 0 or there is one group)
 * A ratio below `threshold` (default 0.8, the "four-fifths" rule of thumb) is flagged. The report
 * lists groups and segments in sorted order (UTF-16 code units), so it is deterministic.
 */
import { fail } from "./matrix.js";
import { compareStrings, type Profile } from "./features.js";

export interface SegmentDisparity {
  readonly segment: string;
  readonly shares: Readonly<Record<string, number>>;
  readonly ratio: number;
  readonly flagged: boolean;
}

export interface FairnessReport {
  readonly attribute: string;
  readonly groups: readonly { value: string; size: number }[];
  readonly missing: number;
  readonly segments: readonly SegmentDisparity[];
  /** Smallest ratio over segments (1 with no segments). */
  readonly minRatio: number;
  readonly threshold: number;
}

export interface FairnessOptions {
  threshold?: number;
}

/** Disparity of `segments[i]` across the values `groups[i]` of one attribute. Errors: LENGTH_MISMATCH, EMPTY_INPUT, BAD_OPTION. */
export function segmentFairness(
  attribute: string,
  segments: readonly string[],
  groups: readonly (string | undefined | null)[],
  opts: FairnessOptions = {},
): FairnessReport {
  const threshold = opts.threshold ?? 0.8;
  if (typeof threshold !== "number" || !(threshold >= 0 && threshold <= 1)) fail("BAD_OPTION", "threshold must be in [0, 1]", { option: "threshold" });
  if (segments.length !== groups.length) fail("LENGTH_MISMATCH", "one group value per segment label is required");
  if (segments.length === 0) fail("EMPTY_INPUT", "no subjects");
  const groupSize = new Map<string, number>();
  const cell = new Map<string, Map<string, number>>(); // segment -> group -> count
  const segNames = new Set<string>();
  let missing = 0;
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    segNames.add(s);
    const g = groups[i];
    if (g === undefined || g === null || g === "") {
      missing++;
      continue;
    }
    groupSize.set(g, (groupSize.get(g) ?? 0) + 1);
    let row = cell.get(s);
    if (row === undefined) cell.set(s, (row = new Map()));
    row.set(g, (row.get(g) ?? 0) + 1);
  }
  const gs = [...groupSize.keys()].sort(compareStrings);
  const out: SegmentDisparity[] = [];
  let minRatio = 1;
  for (const s of [...segNames].sort(compareStrings)) {
    const shares: Record<string, number> = {};
    let lo = Infinity;
    let hi = 0;
    for (const g of gs) {
      const v = (cell.get(s)?.get(g) ?? 0) / groupSize.get(g)!;
      shares[g] = v;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    const ratio = hi > 0 && gs.length > 1 ? lo / hi : 1;
    if (ratio < minRatio) minRatio = ratio;
    out.push({ segment: s, shares, ratio, flagged: ratio < threshold });
  }
  return { attribute, groups: gs.map((value) => ({ value, size: groupSize.get(value)! })), missing, segments: out, minRatio, threshold };
}

export const PROTECTED_ATTRIBUTES = ["ageBand", "gender", "region"] as const;
export type ProtectedAttribute = (typeof PROTECTED_ATTRIBUTES)[number];

/**
 * One report per protected attribute that at least one profile carries. `profiles[i]` is the
 * profile of the subject labelled `segments[i]`.
 */
export function fairnessReports(segments: readonly string[], profiles: readonly Profile[], opts: FairnessOptions = {}): FairnessReport[] {
  if (segments.length !== profiles.length) fail("LENGTH_MISMATCH", "one profile per segment label is required");
  const out: FairnessReport[] = [];
  for (const a of PROTECTED_ATTRIBUTES) {
    const values = profiles.map((p) => p[a]);
    if (values.every((v) => v === undefined || v === null || v === "")) continue;
    out.push(segmentFairness(a, segments, values, opts));
  }
  return out;
}
