/**
 * `custodia audit report`: one self-contained HTML file an auditor can open from disk, mail or
 * print. The verdict, the network facts and the failures are plain HTML (readable without
 * scripts); the four charts and their summary tables are drawn by the page's own inline script
 * from the input embedded as JSON. No fetches, no CDN, no fonts: a Content-Security-Policy allows
 * only that one script (by hash) and no network at all.
 *
 * Everything in the input except the verdict comes from a gateway that may be hostile. Strings
 * placed here are HTML-escaped; the JSON block escapes `<` and `>` so no value can close its
 * script element; the page script writes strings only as text.
 */
import { CustodiaError } from "../../core/errors.js";
import { sha256 } from "../../core/hash.js";
import type { ReportInput } from "./verify.js";
import { REPORT_SCRIPT } from "./report/client.js";
import { REPORT_CSS } from "./report/style.js";

export type { ReportInput } from "./verify.js";

/** The charts, in page order; each is `<svg data-chart="<name>">` inside `#chart-<name>`. */
export const REPORT_CHARTS = ["accesses", "denials", "segments", "anchors"] as const;
export type ReportChart = (typeof REPORT_CHARTS)[number];

/** Failure rows written into the page; the rest are counted (all stay in the embedded JSON). */
export const MAX_FAILURE_ROWS = 1000;

const CHART_TITLES: Record<ReportChart, string> = {
  accesses: "Accesses per partner and purpose over time",
  denials: "Denials by reason",
  segments: "Segment shares per segmentation run",
  anchors: "Anchors timeline: tree size per log",
};

/** Escapes text for HTML element content and quoted attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON for a `<script type="application/json">` block. `<` and `>` become `\u003c` / `\u003e`
 * (still the same JSON value), so neither `</script>` nor `<!--` can appear in the element's text.
 */
export function jsonForScript(value: unknown): string {
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (e) {
    throw new CustodiaError("INVALID_ARGUMENT", `report input cannot be written as JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (json === undefined) throw new CustodiaError("INVALID_ARGUMENT", "report input cannot be written as JSON");
  return json.replace(/</g, "\\u003c").replace(/>/g, "\\u003e");
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** Checks the input's outline (the page script copes with odd entries, not with a missing list). */
function assertReportInput(input: unknown): asserts input is ReportInput {
  const bad = (what: string): never => {
    throw new CustodiaError("INVALID_ARGUMENT", `report input: ${what}`);
  };
  if (!isRecord(input)) bad("must be an object");
  const i = input as Record<string, unknown>;
  if (typeof i["generatedAt"] !== "string") bad("generatedAt must be an ISO date string");
  const net = i["network"];
  if (!isRecord(net)) bad("network must be an object");
  const n = net as Record<string, unknown>;
  if (typeof n["chainId"] !== "number" || typeof n["contract"] !== "string" || typeof n["gateway"] !== "string") bad("network needs chainId (number), contract and gateway (strings)");
  if (typeof i["ok"] !== "boolean") bad("ok must be a boolean");
  for (const list of ["failures", "accesses", "decisions", "anchors"]) if (!Array.isArray(i[list])) bad(`${list} must be an array`);
  if (!isRecord(i["pending"])) bad("pending must be an object of log → count");
  for (const f of i["failures"] as unknown[]) if (!isRecord(f)) bad("every failure must be an object");
}

const text = (v: unknown): string => escapeHtml(typeof v === "string" ? v : v === undefined || v === null ? "" : typeof v === "object" ? JSON.stringify(v) : String(v));
const count = (n: number): string => n.toLocaleString("en-US");

function verdictHtml(input: ReportInput): { clean: boolean; html: string; title: string } {
  const n = input.failures.length;
  // a verdict of ok with failures listed is contradictory: show it as failed
  const clean = input.ok && n === 0;
  const headline = clean ? "Audit clean" : n === 0 ? "Audit failed" : `${count(n)} failure${n === 1 ? "" : "s"}`;
  const detail = clean
    ? "audit verify found no failures in the logs, proofs and anchors it checked."
    : n === 0
      ? "audit verify did not pass, without naming a failure."
      : `audit verify did not pass: ${count(n)} failure${n === 1 ? "" : "s"}, listed below.`;
  return {
    clean,
    title: clean ? "CLEAN" : `FAILED (${count(n)} failure${n === 1 ? "" : "s"})`,
    html: `<header class="verdict ${clean ? "clean" : "failed"}" role="status">
<div class="sign" aria-hidden="true">${clean ? "&#10003;" : "&#10007;"}</div>
<div><h1>${headline}</h1><p>${detail}</p></div>
</header>`,
  };
}

function factsHtml(input: ReportInput): string {
  let pending = 0;
  for (const v of Object.values(input.pending)) if (typeof v === "number" && Number.isFinite(v) && v > 0) pending += v;
  const rows: [string, string][] = [
    ["Generated", text(input.generatedAt)],
    ["Chain id", text(input.network.chainId)],
    ["Contract", input.network.contract ? `<code>${text(input.network.contract)}</code>` : "&#8212;"],
    ["Gateway", input.network.gateway ? `<code>${text(input.network.gateway)}</code>` : "&#8212; (not reached)"],
    ["Access entries", count(input.accesses.length)],
    ["Segmentation runs", count(input.decisions.length)],
    ["Anchored checkpoints", count(input.anchors.length)],
    ["Entries not yet anchored", count(pending)],
  ];
  return `<dl class="facts">\n${rows.map(([k, v]) => `<dt>${k}</dt><dd>${v}</dd>`).join("\n")}\n</dl>`;
}

function failuresHtml(input: ReportInput): string {
  const list = input.failures;
  if (list.length === 0) return "";
  const rows = list
    .slice(0, MAX_FAILURE_ROWS)
    .map((f) => `<tr><td><code>${text(f.code)}</code></td><td>${text(f.log)}</td><td class="num">${f.index === undefined ? "&#8212;" : text(f.index)}</td><td>${text(f.message)}</td></tr>`)
    .join("\n");
  const more = list.length > MAX_FAILURE_ROWS ? `\n<tr><td colspan="4" class="note">&#8230; and ${count(list.length - MAX_FAILURE_ROWS)} more failures (all are in this file's report-data block)</td></tr>` : "";
  return `<section id="failures">
<h2>Failures</h2>
<table class="failures">
<thead><tr><th>code</th><th>log</th><th class="num">index</th><th>message</th></tr></thead>
<tbody>
${rows}${more}
</tbody>
</table>
</section>`;
}

function chartHtml(name: ReportChart): string {
  const title = CHART_TITLES[name];
  return `<figure class="chart" id="chart-${name}">
<figcaption><h2>${title}</h2><p class="sub"></p></figcaption>
<svg class="plot" xmlns="http://www.w3.org/2000/svg" data-chart="${name}" role="img" aria-label="${title}" viewBox="0 0 960 120"></svg>
<div class="legend"></div><div class="notes"></div><div class="tables"></div>
</figure>`;
}

/**
 * Renders the audit report as one HTML document (a pure function of its input). The input is
 * embedded whole in `<script type="application/json" id="report-data">`, so the file also carries
 * the data behind every chart. Throws INVALID_ARGUMENT when the input's outline is wrong.
 */
export function renderReport(input: ReportInput): string {
  assertReportInput(input);
  const verdict = verdictHtml(input);
  const scriptHash = Buffer.from(sha256(new TextEncoder().encode(REPORT_SCRIPT))).toString("base64");
  const csp = `default-src 'none'; script-src 'sha256-${scriptHash}'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'`;
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="referrer" content="no-referrer">
<title>Custodia audit report: ${verdict.title}, ${text(input.generatedAt)}</title>
<style>${REPORT_CSS}</style>
</head>
<body data-verdict="${verdict.clean ? "clean" : "failed"}" data-failures="${input.failures.length}">
${verdict.html}
${factsHtml(input)}
${failuresHtml(input)}
<noscript><p class="note">The charts and summary tables are drawn by this page's own script; allow scripts for this file to see them.</p></noscript>
<main>
${REPORT_CHARTS.map(chartHtml).join("\n")}
</main>
<footer>Custodia audit report, generated ${text(input.generatedAt)}. Times are UTC. The data behind every chart is embedded in this file (the <code>report-data</code> block).</footer>
<script type="application/json" id="report-data">${jsonForScript(input)}</script>
<script>${REPORT_SCRIPT}</script>
</body>
</html>
`;
}
