/**
 * The audit report's stylesheet, inlined into the page (the report must open from file:// with no
 * network). Light background and dark text so it prints as it shows; colours of marks come from
 * the page script's colour-blind-safe palette and are forced to print.
 */
export const REPORT_CSS = `
:root { color-scheme: light; --ink: #1a1a1a; --muted: #555; --rule: #d0d0d0; --ok: #0b6e3a; --bad: #b3001b; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0 auto; max-width: 1040px; padding: 24px 28px 48px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif; color: var(--ink); background: #fff; }
h1, h2, h3 { line-height: 1.2; margin: 0; }
h2 { font-size: 19px; margin-bottom: 2px; }
code, .mono { font-family: ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: 12.5px; overflow-wrap: anywhere; }
.verdict { display: flex; align-items: center; gap: 20px; padding: 18px 24px; border-radius: 10px; color: #fff; margin-bottom: 18px; }
.verdict.clean { background: var(--ok); }
.verdict.failed { background: var(--bad); }
.verdict .sign { font-size: 56px; font-weight: 800; line-height: 1; width: 64px; text-align: center; }
.verdict h1 { font-size: 34px; letter-spacing: 0.01em; }
.verdict p { margin: 4px 0 0; font-size: 15px; opacity: 0.95; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 18px; margin: 0 0 20px; padding: 12px 16px; border: 1px solid var(--rule); border-radius: 8px; }
.facts dt { color: var(--muted); }
.facts dd { margin: 0; overflow-wrap: anywhere; }
section, figure.chart { margin: 0 0 30px; }
figure.chart { break-inside: avoid; page-break-inside: avoid; }
figure.chart figcaption .sub { color: var(--muted); margin: 0 0 6px; }
svg.plot { display: block; width: 100%; height: auto; background: #fff; }
svg.plot text { font-family: inherit; fill: #333; }
svg.plot .axis-label { font-weight: 600; fill: #222; }
svg.plot .empty { font-size: 18px; fill: var(--muted); }
svg.plot .grid { stroke: #e4e4e4; }
svg.plot .axis { stroke: #666; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0 4px; font-size: 13px; }
.legend .item { display: inline-flex; align-items: center; gap: 6px; }
.legend svg { flex: none; }
.note { color: var(--muted); font-size: 13px; margin: 4px 0; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; font-size: 13px; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--rule); vertical-align: top; }
th { background: #f3f3f3; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #999; }
table.failures td { overflow-wrap: anywhere; }
table.failures th { background: #fbe3e6; }
footer { color: var(--muted); font-size: 12px; border-top: 1px solid var(--rule); padding-top: 8px; }
@media print {
  body { padding: 0; max-width: none; font-size: 11pt; }
  .verdict { border: 3px solid #000; }
  a { color: inherit; text-decoration: none; }
}
`;
