/**
 * The audit report's page script, inlined into the HTML (`renderReport` adds its SHA-256 to the
 * page's Content-Security-Policy, so no other script can run there).
 *
 * It reads the embedded JSON (`#report-data`), aggregates it in single passes over typed arrays,
 * and draws four inline SVG charts plus their summary tables. Aggregation happens before drawing,
 * so a chart has a bounded number of marks whatever the number of entries (100k accesses draw at
 * most 48 buckets × 8 series). The data came from a possibly hostile gateway: every string goes
 * into the page through `textContent` or `setAttribute`, never as markup, and counts are kept in
 * `Map`s so keys such as `__proto__` are plain keys.
 *
 * Each chart's `<svg data-chart="…">` gets `data-rendered="true"` and `data-marks` (its number of
 * bars or points, elements of class `mark`) once drawn, so tests and tools can check it.
 *
 * Kept as plain JavaScript text (not a TypeScript function turned into a string): a transpiler's
 * helpers would otherwise leak into the page. Written without backquotes or dollar-brace so it
 * lives safely in this raw template string.
 */
export const REPORT_SCRIPT = String.raw`(function () {
"use strict";
var t0 = performance.now();
var SVGNS = "http://www.w3.org/2000/svg";
// Okabe & Ito's colour-blind-safe palette; yellow last, as it is the weakest on white paper.
var PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442"];
var OTHER = "#8C8C8C";
var DENY = "#D55E00";
// Bounds on what one chart draws; beyond them the tail is grouped as "other" or summarised.
var LIMIT = { series: 7, reasons: 12, runs: 25, rows: 200, points: 400, buckets: 48 };
var MAX_TIME = 253402300799; // 9999-12-31T23:59:59Z, the last instant an ISO date can show
var STEPS = [[60, "minute"], [300, "5 minutes"], [900, "15 minutes"], [3600, "hour"], [10800, "3 hours"], [21600, "6 hours"], [43200, "12 hours"], [86400, "day"], [604800, "week"], [2592000, "30 days"], [7776000, "90 days"], [31536000, "365 days"]];
var YEAR = 31536000;
var W = 960;
var SEP = "\u0000";

/* ------------------------------------------------------------- helpers */

function el(tag, attrs, parent) {
  var e = document.createElementNS(SVGNS, tag);
  for (var k in attrs) e.setAttribute(k, String(attrs[k]));
  if (parent) parent.appendChild(e);
  return e;
}
function text(parent, x, y, value, attrs) {
  var t = el("text", attrs || {}, parent);
  t.setAttribute("x", String(x));
  t.setAttribute("y", String(y));
  t.textContent = value;
  return t;
}
function tip(mark, value) {
  var t = document.createElementNS(SVGNS, "title");
  t.textContent = value;
  mark.appendChild(t);
}
function html(tag, value, parent, cls) {
  var e = document.createElement(tag);
  if (value !== undefined && value !== null) e.textContent = value;
  if (cls) e.className = cls;
  if (parent) parent.appendChild(e);
  return e;
}
/** Any JSON value as display text, without ever calling a hostile object's own toString. */
function str(v) {
  if (typeof v === "string") return v;
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (v === undefined || v === null) return "";
  return JSON.stringify(v);
}
function num(v) { return typeof v === "number" && isFinite(v) ? v : NaN; }
function validTime(t) { return typeof t === "number" && isFinite(t) && t >= 0 && t <= MAX_TIME; }
function fmt(n) { return isFinite(n) ? n.toLocaleString("en-US", { maximumFractionDigits: 1 }) : "\u2014"; }
function pct(part, whole) { return whole > 0 ? (part / whole * 100).toLocaleString("en-US", { maximumFractionDigits: 1 }) + "%" : "\u2014"; }
function fmtTime(t, step) {
  if (!validTime(t)) return "\u2014";
  var iso = new Date(t * 1000).toISOString();
  return step >= 86400 ? iso.slice(0, 10) : iso.slice(0, 16).replace("T", " ");
}
function short(s, n) {
  if (/^0x[0-9a-fA-F]{40}$/.test(s)) return s.slice(0, 6) + "\u2026" + s.slice(-4);
  return s.length > n ? s.slice(0, n - 1) + "\u2026" : s;
}
function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
/** Segment names sort as numbers when both are numbers ("2" before "10"). */
function natural(a, b) { return /^\d+$/.test(a) && /^\d+$/.test(b) ? Number(a) - Number(b) || cmp(a, b) : cmp(a, b); }
function niceStep(raw) {
  if (!(raw > 0)) return 1;
  var p = Math.pow(10, Math.floor(Math.log10(raw)));
  var f = raw / p;
  return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
}
/** Ticks from 0 to a nice top covering max; integer steps for counts. */
function ticks(max) {
  var step = Math.max(1, niceStep(max / 5));
  var top = Math.max(step, Math.ceil(max / step) * step);
  var out = [];
  for (var v = 0; v <= top + step / 2; v += step) out.push(v);
  return { top: top, values: out };
}
function colourOf(i) { return i < PALETTE.length ? PALETTE[i] : OTHER; }
/** The top LIMIT items keep their own colour; when there are more, the rest become one "other". */
function topOrOther(sorted, limit) { return sorted.length <= limit ? { shown: sorted, rest: [] } : { shown: sorted.slice(0, limit), rest: sorted.slice(limit) }; }

function legend(fig, items) {
  var box = fig.querySelector(".legend");
  for (var i = 0; i < items.length; i++) {
    var it = items[i];
    var span = html("span", null, box, "item");
    if (it.title) span.setAttribute("title", it.title);
    var sw = el("svg", { width: 14, height: 14, viewBox: "0 0 14 14", "aria-hidden": "true" }, span);
    if (it.shape === "point") {
      el("line", { x1: 0, x2: 14, y1: 7, y2: 7, stroke: it.color, "stroke-width": 2 }, sw);
      el("circle", { cx: 7, cy: 7, r: 4, fill: it.color, stroke: "#fff", "stroke-width": 1 }, sw);
    } else {
      el("rect", { x: 0.5, y: 0.5, width: 13, height: 13, rx: 2, fill: it.color, stroke: "#333", "stroke-width": 0.5 }, sw);
    }
    html("span", it.label, span);
  }
}
function note(fig, value) { html("p", value, fig.querySelector(".notes"), "note"); }
function subtitle(fig, value) { fig.querySelector(".sub").textContent = value; }
function done(svg, marks, label) {
  svg.setAttribute("aria-label", label);
  svg.setAttribute("data-marks", String(marks));
  svg.setAttribute("data-rendered", "true");
}
function emptyState(svg, title, message) {
  svg.setAttribute("viewBox", "0 0 " + W + " 120");
  el("rect", { x: 1, y: 1, width: W - 2, height: 118, fill: "#fafafa", stroke: "#d0d0d0", "stroke-dasharray": "6 4", rx: 8 }, svg);
  text(svg, W / 2, 66, message, { "text-anchor": "middle", class: "empty" });
  done(svg, 0, title + ": " + message);
}
/** A summary table: header cells, rows of cells; numeric columns right-aligned. */
function table(fig, caption, head, numeric, rows, totalRow) {
  if (rows.length === 0) return;
  var t = html("table", null, fig.querySelector(".tables"), "summary");
  html("caption", caption, t).className = "note";
  var tr = html("tr", null, html("thead", null, t));
  for (var i = 0; i < head.length; i++) html("th", head[i], tr, numeric[i] ? "num" : "");
  var body = html("tbody", null, t);
  var shown = Math.min(rows.length, LIMIT.rows);
  for (var r = 0; r < shown; r++) {
    var row = html("tr", null, body);
    for (var c = 0; c < head.length; c++) html("td", rows[r][c], row, numeric[c] ? "num" : (c === 0 ? "mono" : ""));
  }
  if (rows.length > shown) {
    var more = html("tr", null, body);
    var td = html("td", "\u2026 and " + fmt(rows.length - shown) + " more rows (the full data is in this file's report-data block)", more, "note");
    td.setAttribute("colspan", String(head.length));
  }
  if (totalRow) {
    var tot = html("tr", null, body, "total");
    for (var k = 0; k < head.length; k++) html("td", totalRow[k], tot, numeric[k] ? "num" : "");
  }
}
/** A label under the x axis at x, kept inside the drawing near its edges. */
function xLabel(svg, x, y, value) {
  var half = value.length * 3.4;
  if (x + half > W - 2) return text(svg, W - 2, y, value, { "text-anchor": "end", "font-size": 12 });
  if (x - half < 2) return text(svg, 2, y, value, { "text-anchor": "start", "font-size": 12 });
  return text(svg, x, y, value, { "text-anchor": "middle", "font-size": 12 });
}
/** Horizontal grid and labels of a vertical count axis. */
function yAxis(svg, box, tk, label, fmtTick) {
  for (var i = 0; i < tk.values.length; i++) {
    var v = tk.values[i];
    var y = box.t + box.h - (v / tk.top) * box.h;
    el("line", { x1: box.l, x2: box.l + box.w, y1: y, y2: y, class: "grid" }, svg);
    text(svg, box.l - 6, y + 4, fmtTick(v), { "text-anchor": "end", "font-size": 12 });
  }
  text(svg, 0, 0, label, { class: "axis-label", "text-anchor": "middle", "font-size": 13, transform: "translate(16 " + (box.t + box.h / 2) + ") rotate(-90)" });
}
/** Vertical grid and labels of a horizontal value axis (bars drawn left to right). */
function xAxis(svg, box, tk, label, fmtTick) {
  for (var i = 0; i < tk.values.length; i++) {
    var v = tk.values[i];
    var x = box.l + (v / tk.top) * box.w;
    el("line", { x1: x, x2: x, y1: box.t, y2: box.t + box.h, class: "grid" }, svg);
    text(svg, x, box.t + box.h + 18, fmtTick(v), { "text-anchor": "middle", "font-size": 12 });
  }
  text(svg, box.l + box.w / 2, box.t + box.h + 42, label, { class: "axis-label", "text-anchor": "middle", "font-size": 13 });
}
function axisLines(svg, box) {
  el("line", { x1: box.l, x2: box.l, y1: box.t, y2: box.t + box.h, class: "axis" }, svg);
  el("line", { x1: box.l, x2: box.l + box.w, y1: box.t + box.h, y2: box.t + box.h, class: "axis" }, svg);
}
/** The smallest step from STEPS giving at most max intervals over span; whole years beyond. */
function stepFor(span, max) {
  for (var i = 0; i < STEPS.length; i++) if (span / STEPS[i][0] <= max) return { size: STEPS[i][0], label: STEPS[i][1] };
  var years = Math.ceil(span / YEAR / max);
  return { size: years * YEAR, label: years + " \u00d7 365 days" };
}

/**
 * Time buckets for the accesses chart: the smallest step from STEPS for which the buckets
 * (aligned to multiples of the step, from the first access's to the last's) number at most
 * LIMIT.buckets; whole multiples of 365 days beyond that.
 */
function bucketFor(tmin, tmax) {
  for (var k = 0; k < STEPS.length; k++) {
    var s = STEPS[k][0];
    if (Math.floor(tmax / s) - Math.floor(tmin / s) + 1 <= LIMIT.buckets) return { size: s, label: STEPS[k][1] };
  }
  var years = Math.ceil((Math.floor(tmax / YEAR) - Math.floor(tmin / YEAR) + 1) / LIMIT.buckets);
  return { size: years * YEAR, label: years + " \u00d7 365 days" };
}

/* ------------------------------------------- accesses: one pass for all */

function aggregateAccesses(data) {
  var list = Array.isArray(data.accesses) ? data.accesses : [];
  var pairs = new Map(), reasons = new Map();
  var allow = 0, deny = 0, other = 0, plotted = 0, tmin = Infinity, tmax = -Infinity;
  for (var i = 0; i < list.length; i++) {
    var a = list[i];
    if (a === null || typeof a !== "object") { other++; continue; }
    var partner = str(a.partner), purpose = str(a.purpose), key = partner + SEP + purpose;
    var p = pairs.get(key);
    if (!p) { p = { key: key, partner: partner, purpose: purpose, allow: 0, deny: 0, plotted: 0 }; pairs.set(key, p); }
    if (a.decision === "allow") { allow++; p.allow++; }
    else {
      deny++; p.deny++;
      var r = str(a.reason);
      reasons.set(r, (reasons.get(r) || 0) + 1);
    }
    if (validTime(a.time)) {
      p.plotted++; plotted++;
      if (a.time < tmin) tmin = a.time;
      if (a.time > tmax) tmax = a.time;
    }
  }
  return { list: list, pairs: pairs, reasons: reasons, allow: allow, deny: deny, malformed: other, plotted: plotted, tmin: tmin, tmax: tmax };
}

/* ------------------------------------ 1. accesses per partner and purpose */

function renderAccesses(fig, agg) {
  var svg = fig.querySelector("svg");
  var title = "Accesses per partner and purpose over time";
  var total = agg.allow + agg.deny;
  subtitle(fig, total === 0 ? "The access log has no entries." : fmt(total) + " accesses: " + fmt(agg.allow) + " allowed (" + pct(agg.allow, total) + "), " + fmt(agg.deny) + " denied (" + pct(agg.deny, total) + ").");
  var pairs = Array.from(agg.pairs.values());
  pairs.sort(function (a, b) { return (b.allow + b.deny) - (a.allow + a.deny) || cmp(a.key, b.key); });
  table(fig, "Accesses per partner and purpose (allowed vs denied)", ["partner", "purpose", "allowed", "denied", "total"], [false, false, true, true, true],
    pairs.map(function (p) { return [p.partner, p.purpose, fmt(p.allow), fmt(p.deny), fmt(p.allow + p.deny)]; }),
    ["all partners", "", fmt(agg.allow), fmt(agg.deny), fmt(total)]);
  if (agg.malformed > 0) note(fig, fmt(agg.malformed) + " access entries are not objects and are left out.");
  if (total - agg.plotted > 0) note(fig, fmt(total - agg.plotted) + " accesses carry a time outside the plottable range; they are counted in the table only.");
  if (agg.plotted === 0) return emptyState(svg, title, "No accesses yet");

  var ranked = pairs.filter(function (p) { return p.plotted > 0; });
  ranked.sort(function (a, b) { return b.plotted - a.plotted || cmp(a.key, b.key); });
  var split = topOrOther(ranked, LIMIT.series);
  var index = new Map();
  for (var i = 0; i < split.shown.length; i++) index.set(split.shown[i].key, i);
  var nS = split.shown.length + (split.rest.length > 0 ? 1 : 0), otherIdx = split.shown.length;

  var step = bucketFor(agg.tmin, agg.tmax);
  var first = Math.floor(agg.tmin / step.size);
  var nb = Math.floor(agg.tmax / step.size) - first + 1;
  var cells = new Float64Array(nb * nS);
  var list = agg.list;
  for (var j = 0; j < list.length; j++) {
    var a = list[j];
    if (a === null || typeof a !== "object" || !validTime(a.time)) continue;
    var s = index.get(str(a.partner) + SEP + str(a.purpose));
    cells[(Math.floor(a.time / step.size) - first) * nS + (s === undefined ? otherIdx : s)]++;
  }
  var maxStack = 0;
  for (var b = 0; b < nb; b++) {
    var sum = 0;
    for (var q = 0; q < nS; q++) sum += cells[b * nS + q];
    if (sum > maxStack) maxStack = sum;
  }

  var H = 360, box = { l: 72, t: 12, w: W - 72 - 16, h: H - 12 - 64 };
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  var tk = ticks(maxStack);
  yAxis(svg, box, tk, "accesses per " + step.label, fmt);
  var band = box.w / nb, barW = Math.max(1, band * 0.78), off = (band - barW) / 2;
  var labelEvery = Math.ceil(nb / 8);
  var labels = [];
  for (var i2 = 0; i2 < split.shown.length; i2++) labels.push(short(split.shown[i2].partner, 24) + " \u00b7 " + short(split.shown[i2].purpose, 24));
  if (split.rest.length > 0) labels.push("other (" + split.rest.length + " partner \u00b7 purpose pairs)");
  var marks = 0;
  var g = el("g", { class: "marks" }, svg);
  for (var bb = 0; bb < nb; bb++) {
    var start = (first + bb) * step.size, cum = 0;
    for (var ss = 0; ss < nS; ss++) {
      var v = cells[bb * nS + ss];
      if (v <= 0) continue;
      var y = box.t + box.h - ((cum + v) / tk.top) * box.h;
      var r = el("rect", { class: "mark", x: box.l + bb * band + off, y: y, width: barW, height: (v / tk.top) * box.h, fill: colourOf(ss < split.shown.length ? ss : PALETTE.length), stroke: "#fff", "stroke-width": barW > 6 ? 0.5 : 0 }, g);
      tip(r, fmtTime(start, step.size) + " UTC (" + step.label + "): " + labels[ss] + " \u2014 " + fmt(v) + " accesses");
      cum += v;
      marks++;
    }
    if (bb % labelEvery === 0) {
      var cx = box.l + bb * band + band / 2;
      el("line", { x1: cx, x2: cx, y1: box.t + box.h, y2: box.t + box.h + 5, class: "axis" }, svg);
      xLabel(svg, cx, box.t + box.h + 19, fmtTime(start, step.size));
    }
  }
  axisLines(svg, box);
  text(svg, box.l + box.w / 2, box.t + box.h + 44, "time (UTC), one bar per " + step.label, { class: "axis-label", "text-anchor": "middle", "font-size": 13 });
  var items = [];
  for (var li = 0; li < labels.length; li++) {
    var pr = li < split.shown.length ? split.shown[li] : null;
    items.push({ label: labels[li], color: colourOf(pr ? li : PALETTE.length), title: pr ? pr.partner + " \u00b7 " + pr.purpose : undefined });
  }
  legend(fig, items);
  done(svg, marks, title + ": " + fmt(agg.plotted) + " accesses in " + nb + " bars, one per " + step.label + ", " + split.shown.length + (split.rest.length ? " top" : "") + " partner and purpose pairs stacked.");
}

/* ----------------------------------------------------- 2. denials by reason */

function renderDenials(fig, agg) {
  var svg = fig.querySelector("svg");
  var title = "Denials by reason";
  var rs = Array.from(agg.reasons.entries());
  rs.sort(function (a, b) { return b[1] - a[1] || cmp(a[0], b[0]); });
  subtitle(fig, rs.length === 0 ? "No access was denied." : fmt(agg.deny) + " denied accesses for " + fmt(rs.length) + " distinct reason" + (rs.length === 1 ? "." : "s."));
  table(fig, "Denied accesses per reason", ["reason", "denied", "share of denials"], [false, true, true],
    rs.map(function (r) { return [r[0], fmt(r[1]), pct(r[1], agg.deny)]; }), ["all reasons", fmt(agg.deny), agg.deny ? "100%" : "\u2014"]);
  if (rs.length === 0) return emptyState(svg, title, agg.allow > 0 ? "No denials: every access was allowed" : "No accesses yet");

  var split = topOrOther(rs, LIMIT.reasons);
  var bars = split.shown.map(function (r) { return { label: r[0], count: r[1], other: false }; });
  if (split.rest.length > 0) {
    var restSum = 0;
    for (var i = 0; i < split.rest.length; i++) restSum += split.rest[i][1];
    bars.push({ label: "other (" + fmt(split.rest.length) + " reasons)", count: restSum, other: true });
  }
  var max = 0;
  for (var k = 0; k < bars.length; k++) if (bars[k].count > max) max = bars[k].count;
  var row = 28, box = { l: 236, t: 10, w: W - 236 - 70, h: bars.length * row };
  var H = box.t + box.h + 58;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  var tk = ticks(max);
  xAxis(svg, box, tk, "denied accesses", fmt);
  text(svg, 0, 0, "reason", { class: "axis-label", "text-anchor": "middle", "font-size": 13, transform: "translate(16 " + (box.t + box.h / 2) + ") rotate(-90)" });
  var g = el("g", { class: "marks" }, svg);
  for (var b = 0; b < bars.length; b++) {
    var bar = bars[b], y = box.t + b * row + 4, w = (bar.count / tk.top) * box.w;
    var r = el("rect", { class: "mark", x: box.l, y: y, width: w, height: row - 8, fill: bar.other ? OTHER : DENY }, g);
    tip(r, bar.label + ": " + fmt(bar.count) + " denied accesses (" + pct(bar.count, agg.deny) + " of denials)");
    var lab = text(svg, box.l - 8, y + row / 2, short(bar.label, 28), { "text-anchor": "end", "font-size": 12 });
    tip(lab, bar.label);
    text(svg, box.l + w + 6, y + row / 2, fmt(bar.count), { "font-size": 12 });
  }
  axisLines(svg, box);
  var items = [{ label: "denied accesses", color: DENY }];
  if (split.rest.length > 0) items.push({ label: "other reasons, grouped", color: OTHER });
  legend(fig, items);
  done(svg, bars.length, title + ": " + bars.map(function (x) { return x.label + " " + x.count; }).join(", ") + ".");
}

/* ------------------------------------------------------ 3. segment shares */

function runOrder(a, b) {
  var ba = isNaN(num(a.block)) ? -Infinity : a.block, bb = isNaN(num(b.block)) ? -Infinity : b.block;
  var ta = isNaN(num(a.time)) ? -Infinity : a.time, tb = isNaN(num(b.time)) ? -Infinity : b.time;
  return bb - ba || tb - ta || cmp(str(a.runId), str(b.runId));
}
function segmentsOf(run) {
  var s = run.segments, out = [];
  if (s === null || typeof s !== "object" || Array.isArray(s)) return out;
  var keys = Object.keys(s);
  for (var i = 0; i < keys.length; i++) {
    var v = num(s[keys[i]]);
    if (v > 0) out.push([keys[i], v]);
  }
  return out;
}

function renderSegments(fig, data) {
  var svg = fig.querySelector("svg");
  var title = "Segment shares per segmentation run";
  var runs = (Array.isArray(data.decisions) ? data.decisions : []).filter(function (r) { return r !== null && typeof r === "object"; });
  runs.sort(runOrder);
  var segs = runs.map(segmentsOf);
  var sums = segs.map(function (list) { var t = 0; for (var i = 0; i < list.length; i++) t += list[i][1]; return t; });
  subtitle(fig, runs.length === 0 ? "The decisions log has no segmentation runs." : fmt(runs.length) + " segmentation run" + (runs.length === 1 ? "" : "s") + "; each bar shows how one run's subjects were split across segments.");
  table(fig, "Segmentation runs (latest first)", ["run", "partner", "purpose", "block", "time (UTC)", "subjects", "segments"], [false, false, false, true, false, true, true],
    runs.map(function (r, i) { return [str(r.runId), str(r.partner), str(r.purpose), fmt(num(r.block)), fmtTime(r.time, 60), fmt(sums[i]), fmt(segs[i].length)]; }), null);
  if (runs.length === 0) return emptyState(svg, title, "No segmentation runs yet");

  var n = Math.min(runs.length, LIMIT.runs);
  if (runs.length > n) note(fig, "The chart shows the latest " + n + " of " + fmt(runs.length) + " runs.");
  var totals = new Map();
  for (var i = 0; i < n; i++) for (var j = 0; j < segs[i].length; j++) totals.set(segs[i][j][0], (totals.get(segs[i][j][0]) || 0) + segs[i][j][1]);
  var names = Array.from(totals.keys());
  names.sort(function (a, b) { return totals.get(b) - totals.get(a) || natural(a, b); });
  var split = topOrOther(names, LIMIT.series);
  // the largest segments get their own colour; they stack and list in name order
  split.shown.sort(natural);
  var index = new Map();
  for (var k = 0; k < split.shown.length; k++) index.set(split.shown[k], k);

  var row = 30, box = { l: 236, t: 10, w: W - 236 - 110, h: n * row };
  var H = box.t + box.h + 58;
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  xAxis(svg, box, { top: 100, values: [0, 25, 50, 75, 100] }, "share of the run's subjects", function (v) { return v + "%"; });
  text(svg, 0, 0, "run (latest first)", { class: "axis-label", "text-anchor": "middle", "font-size": 13, transform: "translate(16 " + (box.t + box.h / 2) + ") rotate(-90)" });
  var g = el("g", { class: "marks" }, svg), marks = 0;
  for (var r = 0; r < n; r++) {
    var run = runs[r], y = box.t + r * row + 4, total = sums[r];
    var runLabel = "run " + str(run.runId) + " (" + str(run.partner) + ", " + str(run.purpose) + ", block " + fmt(num(run.block)) + ")";
    var lab = text(svg, box.l - 8, y + row / 2, short(str(run.runId), 14) + " \u00b7 " + short(str(run.purpose), 16), { "text-anchor": "end", "font-size": 12 });
    tip(lab, runLabel);
    text(svg, box.l + box.w + 8, y + row / 2, total > 0 ? fmt(total) + " subjects" : "no subjects", { "font-size": 12, class: "run-total" });
    if (!(total > 0)) continue;
    var parts = new Float64Array(split.shown.length + 1);
    for (var s = 0; s < segs[r].length; s++) {
      var idx = index.get(segs[r][s][0]);
      parts[idx === undefined ? split.shown.length : idx] += segs[r][s][1];
    }
    var x = box.l;
    for (var p = 0; p < parts.length; p++) {
      if (!(parts[p] > 0)) continue;
      var w = (parts[p] / total) * box.w;
      var isOther = p === split.shown.length;
      var m = el("rect", { class: "mark", x: x, y: y, width: w, height: row - 8, fill: isOther ? OTHER : colourOf(p), stroke: "#fff", "stroke-width": 1 }, g);
      tip(m, runLabel + ": " + (isOther ? "other segments" : "segment " + split.shown[p]) + " \u2014 " + fmt(parts[p]) + " subjects (" + pct(parts[p], total) + ")");
      x += w;
      marks++;
    }
  }
  axisLines(svg, box);
  var items = split.shown.map(function (name, i) { return { label: "segment " + short(name, 24), color: colourOf(i), title: name }; });
  if (split.rest.length > 0) items.push({ label: "other segments (" + split.rest.length + ")", color: OTHER });
  legend(fig, items);
  done(svg, marks, title + ": " + n + " runs shown, " + names.length + " segments.");
}

/* ----------------------------------------------------- 4. anchors timeline */

function renderAnchors(fig, data) {
  var svg = fig.querySelector("svg");
  var title = "Anchors timeline: tree size per log";
  var byLog = new Map(), skipped = 0;
  var list = Array.isArray(data.anchors) ? data.anchors : [];
  for (var i = 0; i < list.length; i++) {
    var a = list[i];
    if (a === null || typeof a !== "object" || !validTime(a.timestamp) || !(num(a.treeSize) >= 0)) { skipped++; continue; }
    var log = str(a.log);
    if (!byLog.has(log)) byLog.set(log, []);
    byLog.get(log).push({ t: a.timestamp, size: a.treeSize, block: num(a.blockNumber) });
  }
  var pending = new Map();
  var pend = data.pending;
  if (pend !== null && typeof pend === "object" && !Array.isArray(pend)) {
    var keys = Object.keys(pend);
    for (var k = 0; k < keys.length; k++) pending.set(keys[k], num(pend[keys[k]]));
  }
  var logs = Array.from(new Set(Array.from(byLog.keys()).concat(Array.from(pending.keys()))));
  logs.sort(cmp);
  var pendingTotal = 0;
  pending.forEach(function (v) { if (v > 0) pendingTotal += v; });
  subtitle(fig, (byLog.size === 0 ? "No checkpoint is anchored on the ledger yet" : fmt(list.length - skipped) + " anchored checkpoints in " + byLog.size + " log" + (byLog.size === 1 ? "" : "s")) + "; " + fmt(pendingTotal) + " entries not yet anchored.");
  table(fig, "Anchored checkpoints per log", ["log", "anchors", "latest tree size", "latest anchor (UTC)", "block", "pending (un-anchored)"], [false, true, true, false, true, true],
    logs.map(function (name) {
      var pts = byLog.get(name) || [];
      var last = null;
      for (var i = 0; i < pts.length; i++) if (!last || pts[i].t > last.t || (pts[i].t === last.t && pts[i].size > last.size)) last = pts[i];
      return [name, fmt(pts.length), last ? fmt(last.size) : "\u2014", last ? fmtTime(last.t, 60) : "\u2014", last ? fmt(last.block) : "\u2014", pending.has(name) ? fmt(pending.get(name)) : "0"];
    }), null);
  if (skipped > 0) note(fig, fmt(skipped) + " anchors have an unreadable time or tree size and are left out of the chart.");
  if (byLog.size === 0) return emptyState(svg, title, pendingTotal > 0 ? "No anchors yet \u2014 " + fmt(pendingTotal) + " entries wait to be anchored" : "No anchors yet");

  var anchored = logs.filter(function (n) { return byLog.has(n); });
  var split = topOrOther(anchored, LIMIT.series);
  var tmin = Infinity, tmax = -Infinity, smax = 0;
  byLog.forEach(function (pts) {
    pts.sort(function (x, y) { return x.t - y.t || x.size - y.size; });
    for (var i = 0; i < pts.length; i++) {
      if (pts[i].t < tmin) tmin = pts[i].t;
      if (pts[i].t > tmax) tmax = pts[i].t;
      if (pts[i].size > smax) smax = pts[i].size;
    }
  });
  if (tmax - tmin < 60) { tmin -= 1800; tmax += 1800; }
  var pad = (tmax - tmin) * 0.03;
  tmin -= pad;
  tmax += pad;
  var H = 360, box = { l: 86, t: 12, w: W - 86 - 24, h: H - 12 - 64 };
  svg.setAttribute("viewBox", "0 0 " + W + " " + H);
  var tk = ticks(smax);
  yAxis(svg, box, tk, "tree size (entries)", fmt);
  var step = stepFor(tmax - tmin, 6);
  var xOf = function (t) { return box.l + ((t - tmin) / (tmax - tmin)) * box.w; };
  var yOf = function (s) { return box.t + box.h - (s / tk.top) * box.h; };
  for (var tt = Math.ceil(tmin / step.size) * step.size; tt <= tmax; tt += step.size) {
    var x = xOf(tt);
    el("line", { x1: x, x2: x, y1: box.t, y2: box.t + box.h, class: "grid" }, svg);
    xLabel(svg, x, box.t + box.h + 19, fmtTime(tt, step.size));
  }
  text(svg, box.l + box.w / 2, box.t + box.h + 44, "anchor time (UTC)", { class: "axis-label", "text-anchor": "middle", "font-size": 13 });
  var g = el("g", { class: "marks" }, svg), marks = 0;
  for (var li = 0; li < anchored.length; li++) {
    var name = anchored[li], pts = byLog.get(name), colour = li < split.shown.length ? colourOf(li) : OTHER;
    // at most LIMIT.points points per log, evenly spread, first and last kept
    var keep = pts.length <= LIMIT.points ? pts : (function () {
      var out = [];
      for (var i = 0; i < LIMIT.points; i++) out.push(pts[Math.round((i * (pts.length - 1)) / (LIMIT.points - 1))]);
      return out;
    })();
    el("polyline", { class: "line", fill: "none", stroke: colour, "stroke-width": 2, "stroke-linejoin": "round", points: keep.map(function (p) { return xOf(p.t).toFixed(1) + "," + yOf(p.size).toFixed(1); }).join(" ") }, g);
    for (var pi = 0; pi < keep.length; pi++) {
      var pt = keep[pi];
      var c = el("circle", { class: "mark", cx: xOf(pt.t), cy: yOf(pt.size), r: keep.length > 100 ? 2.5 : 4, fill: colour, stroke: "#fff", "stroke-width": 1 }, g);
      tip(c, name + ": tree size " + fmt(pt.size) + " anchored " + fmtTime(pt.t, 60) + " UTC (block " + fmt(pt.block) + ")");
      marks++;
    }
    if (keep.length < pts.length) note(fig, "Log " + name + ": " + keep.length + " of its " + fmt(pts.length) + " anchors are drawn as points.");
  }
  axisLines(svg, box);
  var items = split.shown.map(function (name, i) {
    var p = pending.get(name);
    return { label: short(name, 30) + (p > 0 ? " (" + fmt(p) + " pending)" : ""), color: colourOf(i), shape: "point", title: name };
  });
  if (split.rest.length > 0) items.push({ label: "other logs (" + split.rest.length + ")", color: OTHER, shape: "point" });
  legend(fig, items);
  done(svg, marks, title + ": " + fmt(marks) + " anchors drawn across " + anchored.length + " logs, largest tree " + fmt(smax) + " entries.");
}

/* ------------------------------------------------------------------ run */

var data = JSON.parse(document.getElementById("report-data").textContent);
var agg = aggregateAccesses(data);
var charts = [["accesses", function (f) { renderAccesses(f, agg); }], ["denials", function (f) { renderDenials(f, agg); }], ["segments", function (f) { renderSegments(f, data); }], ["anchors", function (f) { renderAnchors(f, data); }]];
for (var c = 0; c < charts.length; c++) {
  var fig = document.getElementById("chart-" + charts[c][0]);
  try {
    charts[c][1](fig);
  } catch (e) {
    fig.querySelector("svg").setAttribute("data-rendered", "false");
    console.error("custodia report: the " + charts[c][0] + " chart could not be drawn: " + (e && e.message));
  }
}
document.body.setAttribute("data-render-ms", String(Math.round(performance.now() - t0)));
document.body.setAttribute("data-charts", "done");
})();
`;
