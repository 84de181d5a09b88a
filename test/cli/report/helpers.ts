/**
 * Test helpers for the audit report: seeded sample inputs, hostile and empty inputs, and an
 * independent statement of how many marks each chart must draw (the rules the report documents,
 * written again here so a drawing defect shows up as a count mismatch).
 */
import { PERMISSION_REASONS, PURPOSES } from "../../../core/domain.js";
import type { ReportInput } from "../../../cli/audit/verify.js";
import { rng } from "../../helpers/rng.js";

type Access = ReportInput["accesses"][number];
type Run = ReportInput["decisions"][number];
type Anchor = ReportInput["anchors"][number];

export { rng };

function address(next: () => number): string {
  let hex = "0x";
  for (let i = 0; i < 40; i++) hex += Math.floor(next() * 16).toString(16);
  return hex;
}

export interface SampleOptions {
  /** Number of access entries (default 1,200). */
  accesses?: number;
  /** Seconds the accesses span (default three days). */
  spanSec?: number;
  /** An anchor of the access log every this many entries (default 250). */
  anchorEvery?: number;
  /** Segmentation runs (default 6). */
  runs?: number;
  /** Distinct denial reasons to draw from (default: the ledger's reasons plus SUBJECT_ERASED). */
  reasons?: string[];
}

/** 2025-03-01T00:00:00Z: samples start here so labels are stable. */
export const SAMPLE_START = 1_740_787_200;

/**
 * A realistic report input from a seed: five partners with two or three purposes each (more
 * partner·purpose pairs than the chart has colours), 80 % allowed accesses, denials spread over
 * the ledger's reasons, segmentation runs of 3–6 segments, anchors of both logs and a pending tail.
 */
export function sampleReportInput(seed: number, opts: SampleOptions = {}): ReportInput {
  const next = rng(seed);
  const n = opts.accesses ?? 1200;
  const span = opts.spanSec ?? 3 * 86_400;
  const every = opts.anchorEvery ?? 250;
  const reasons = opts.reasons ?? [...PERMISSION_REASONS.filter((r) => r !== "OK"), "SUBJECT_ERASED"];
  const purposeKeys = PURPOSES.map((p) => p.key);
  const partners = Array.from({ length: 5 }, () => {
    const purposes = new Set<string>();
    const want = 2 + Math.floor(next() * 2);
    while (purposes.size < want) purposes.add(purposeKeys[Math.floor(next() * purposeKeys.length)]!);
    return { address: address(next), purposes: [...purposes], weight: 1 + next() * 4 };
  });
  const weightSum = partners.reduce((s, p) => s + p.weight, 0);
  const pick = (): (typeof partners)[number] => {
    let x = next() * weightSum;
    for (const p of partners) if ((x -= p.weight) <= 0) return p;
    return partners[partners.length - 1]!;
  };
  const accesses: Access[] = [];
  const anchors: Anchor[] = [];
  for (let i = 0; i < n; i++) {
    // busier during the day: a sinusoidal density over a monotone clock
    const time = SAMPLE_START + Math.floor((i / Math.max(1, n)) * span + Math.sin(i / 37) * 600 + 600);
    const p = pick();
    const deny = next() < 0.2;
    const block = 100 + Math.floor((time - SAMPLE_START) / 12);
    accesses.push({
      index: i,
      time,
      partner: p.address,
      purpose: p.purposes[Math.floor(next() * p.purposes.length)]!,
      categories: 1 + Math.floor(next() * 127),
      decision: deny ? "deny" : "allow",
      reason: deny ? reasons[Math.floor(next() * next() * reasons.length)]! : "OK",
      block,
    });
    if ((i + 1) % every === 0) anchors.push({ log: "access", treeSize: i + 1, blockNumber: block + 1, timestamp: time + 12 });
  }
  accesses.sort((a, b) => a.time - b.time);
  const runs: Run[] = [];
  let decisionsSize = 0;
  const runCount = opts.runs ?? 6;
  for (let r = 0; r < runCount; r++) {
    const p = partners[r % partners.length]!;
    const k = 3 + Math.floor(next() * 4);
    const segments: Record<string, number> = {};
    let subjects = 0;
    for (let s = 0; s < k; s++) {
      const size = 5 + Math.floor(next() * 80);
      segments[String(s)] = size;
      subjects += size;
    }
    const time = SAMPLE_START + Math.floor(((r + 0.5) / runCount) * span);
    const block = 100 + Math.floor((time - SAMPLE_START) / 12);
    runs.push({ runId: `run-${seed}-${r}-${Math.floor(next() * 1e6).toString(36)}`, partner: p.address, purpose: "profiling", block, time, segments });
    decisionsSize += subjects + 1; // its decisions plus the model card
    anchors.push({ log: "decisions", treeSize: decisionsSize, blockNumber: block + 2, timestamp: time + 24 });
  }
  anchors.sort((a, b) => a.timestamp - b.timestamp);
  return {
    generatedAt: new Date((SAMPLE_START + span + 3600) * 1000).toISOString(),
    network: { chainId: 31337, contract: address(next), gateway: "http://127.0.0.1:8080" },
    ok: true,
    failures: [],
    accesses,
    decisions: runs,
    anchors,
    pending: { access: n % every, decisions: 0 },
  };
}

/** An input with nothing in it yet: a new network. */
export function emptyReportInput(): ReportInput {
  return {
    generatedAt: "2025-03-01T00:00:00.000Z",
    network: { chainId: 31337, contract: "0x5FbDB2315678afecb367f032d93F642f64180aa3", gateway: "http://127.0.0.1:8080" },
    ok: true,
    failures: [],
    accesses: [],
    decisions: [],
    anchors: [],
    pending: {},
  };
}

/** Markup that would run if any string reached the page as HTML. */
export const PAYLOADS = [
  "</script><script>window.__pwned=1</script>",
  '<img src=x onerror="window.__pwned=2">',
  '"><svg onload="window.__pwned=3">',
  "<!--<script>window.__pwned=4</script>-->",
] as const;

/**
 * A sample input in which every string a gateway controls carries a payload, plus keys such as
 * `__proto__` and `constructor` that would corrupt plain-object counters.
 */
export function hostileReportInput(): ReportInput {
  const input = sampleReportInput(99, { accesses: 300, runs: 3 });
  const [p0, p1, p2, p3] = PAYLOADS;
  input.network.gateway = `http://evil.example/${p0}`;
  input.network.contract = p1;
  input.generatedAt = p3;
  input.failures = [
    { code: p0, log: p1, index: 3, message: p2 },
    { code: "PROOF_ROOT_MISMATCH", log: "access", message: p3 },
  ];
  input.ok = false;
  input.accesses.forEach((a, i) => {
    if (i % 4 === 0) a.partner = PAYLOADS[i % PAYLOADS.length]!;
    if (i % 5 === 0) a.purpose = i % 10 === 0 ? "__proto__" : p2;
    if (a.decision === "deny") a.reason = [p0, p1, "constructor", "__proto__", p3][i % 5]!;
  });
  input.decisions[0]!.runId = p0;
  input.decisions[1]!.partner = p1;
  input.decisions[2]!.segments = JSON.parse(`{"__proto__": 7, ${JSON.stringify(p2)}: 4, "constructor": 3}`) as Record<string, number>;
  input.anchors.push({ log: p1, treeSize: 12, blockNumber: 300, timestamp: SAMPLE_START + 5000 });
  input.pending = JSON.parse(`{"__proto__": 5, ${JSON.stringify(p0)}: 9, "access": 2}`) as Record<string, number>;
  return input;
}

/* ----------------------------------------------- expected marks, restated */

const MAX_TIME = 253_402_300_799;
const STEPS = [60, 300, 900, 3600, 10_800, 21_600, 43_200, 86_400, 604_800, 2_592_000, 7_776_000, 31_536_000];
const LIMIT = { series: 7, reasons: 12, runs: 25, points: 400, buckets: 48 };

const str = (v: unknown): string => (typeof v === "string" ? v : typeof v === "number" || typeof v === "boolean" ? String(v) : v == null ? "" : JSON.stringify(v));
const validTime = (t: unknown): t is number => typeof t === "number" && Number.isFinite(t) && t >= 0 && t <= MAX_TIME;
const finite = (v: unknown): number => (typeof v === "number" && Number.isFinite(v) ? v : NaN);
const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** The bucket width the accesses chart must use: the smallest step with at most 48 aligned buckets. */
export function expectedBucket(tmin: number, tmax: number): number {
  for (const s of STEPS) if (Math.floor(tmax / s) - Math.floor(tmin / s) + 1 <= LIMIT.buckets) return s;
  const year = 31_536_000;
  return year * Math.ceil((Math.floor(tmax / year) - Math.floor(tmin / year) + 1) / LIMIT.buckets);
}

/** How many marks (bars, bar segments, points) each chart must draw for an input. */
export function expectedMarks(input: ReportInput): Record<"accesses" | "denials" | "segments" | "anchors", number> {
  const accesses = input.accesses.filter((a) => a !== null && typeof a === "object");
  // 1. one bar segment per (time bucket, series) holding at least one access
  const timed = accesses.filter((a) => validTime(a.time));
  let accessMarks = 0;
  if (timed.length > 0) {
    const counts = new Map<string, number>();
    for (const a of timed) {
      const k = `${str(a.partner)}\u0000${str(a.purpose)}`;
      counts.set(k, (counts.get(k) ?? 0) + 1);
    }
    const ranked = [...counts.entries()].sort((a, b) => b[1] - a[1] || cmp(a[0], b[0])).map(([k]) => k);
    const shown = ranked.length <= LIMIT.series ? ranked : ranked.slice(0, LIMIT.series);
    let tmin = Infinity;
    let tmax = -Infinity;
    for (const a of timed) {
      tmin = Math.min(tmin, a.time);
      tmax = Math.max(tmax, a.time);
    }
    const size = expectedBucket(tmin, tmax);
    const cells = new Set<string>();
    for (const a of timed) {
      const k = `${str(a.partner)}\u0000${str(a.purpose)}`;
      cells.add(`${Math.floor(a.time / size)}|${shown.includes(k) ? k : "other"}`);
    }
    accessMarks = cells.size;
  }
  // 2. one bar per denial reason, the tail beyond 12 grouped into one
  const reasons = new Set(accesses.filter((a) => a.decision !== "allow").map((a) => str(a.reason)));
  const denialMarks = reasons.size <= LIMIT.reasons ? reasons.size : LIMIT.reasons + 1;
  // 3. per shown run (latest 25), one segment per coloured segment name plus one for "other"
  const key = (v: unknown): number => (Number.isNaN(finite(v)) ? -Infinity : (v as number));
  const runs = input.decisions
    .filter((r) => r !== null && typeof r === "object")
    .sort((a, b) => key(b.block) - key(a.block) || key(b.time) - key(a.time) || cmp(str(a.runId), str(b.runId)))
    .slice(0, LIMIT.runs);
  const segs = runs.map((r) => (r.segments && typeof r.segments === "object" && !Array.isArray(r.segments) ? Object.entries(r.segments).filter(([, v]) => finite(v) > 0) : []));
  const totals = new Map<string, number>();
  for (const list of segs) for (const [k, v] of list) totals.set(k, (totals.get(k) ?? 0) + v);
  const natural = (a: string, b: string): number => (/^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) || cmp(a, b) : cmp(a, b));
  const names = [...totals.keys()].sort((a, b) => totals.get(b)! - totals.get(a)! || natural(a, b));
  const coloured = new Set(names.length <= LIMIT.series ? names : names.slice(0, LIMIT.series));
  let segmentMarks = 0;
  for (const list of segs) {
    segmentMarks += list.filter(([k]) => coloured.has(k)).length;
    if (list.some(([k]) => !coloured.has(k))) segmentMarks++;
  }
  // 4. one point per anchor with a readable time and size, at most 400 per log
  const perLog = new Map<string, number>();
  for (const a of input.anchors) {
    if (a === null || typeof a !== "object" || !validTime(a.timestamp) || !(finite(a.treeSize) >= 0)) continue;
    perLog.set(str(a.log), (perLog.get(str(a.log)) ?? 0) + 1);
  }
  let anchorMarks = 0;
  for (const n of perLog.values()) anchorMarks += Math.min(n, LIMIT.points);
  return { accesses: accessMarks, denials: denialMarks, segments: segmentMarks, anchors: anchorMarks };
}
