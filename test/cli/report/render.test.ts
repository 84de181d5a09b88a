import { describe, expect, it } from "vitest";
import { createHash } from "node:crypto";
import { MAX_FAILURE_ROWS, REPORT_CHARTS, escapeHtml, jsonForScript, renderReport, type ReportInput } from "../../../cli/audit/report.js";
import { REPORT_SCRIPT } from "../../../cli/audit/report/client.js";
import { isCustodiaError } from "../../../core/errors.js";
import { PAYLOADS, emptyReportInput, hostileReportInput, sampleReportInput } from "./helpers.js";

/** The text of the report-data block, exactly as the HTML parser will see it. */
function dataBlock(html: string): string {
  const open = '<script type="application/json" id="report-data">';
  const start = html.indexOf(open);
  expect(start).toBeGreaterThan(0);
  const end = html.indexOf("</script>", start);
  return html.slice(start + open.length, end);
}

function occurrences(haystack: string, needle: string): number {
  return haystack.toLowerCase().split(needle.toLowerCase()).length - 1;
}

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return isCustodiaError(e) ? e.code : `not a CustodiaError: ${String(e)}`;
  }
  return "no error";
}

describe("renderReport", () => {
  it("writes one HTML document whose report-data block parses back to the input", () => {
    const input = sampleReportInput(1);
    const html = renderReport(input);
    expect(html.startsWith("<!doctype html>\n<html lang=\"en\">")).toBe(true);
    expect(html.trimEnd().endsWith("</html>")).toBe(true);
    for (const tag of ["<html", "</html>", "<head>", "<body", "</body>", "<title>"]) expect(occurrences(html, tag), tag).toBe(1);
    expect(JSON.parse(dataBlock(html))).toEqual(input);
    for (const name of REPORT_CHARTS) expect(occurrences(html, `data-chart="${name}"`), name).toBe(1);
    expect(html).toContain('role="img"');
  });

  it("is pure: the same input gives the same bytes and is left unchanged", () => {
    const input = sampleReportInput(2);
    const before = structuredClone(input);
    const a = renderReport(input);
    expect(renderReport(input)).toBe(a);
    expect(input).toEqual(before);
  });

  it("loads nothing from anywhere: no src, href or url(), and a policy that allows only its own script", () => {
    const html = renderReport(sampleReportInput(3));
    const markup = html.replace(dataBlock(html), "");
    expect(markup).not.toMatch(/\s(src|href|srcset|action|formaction|poster|background)\s*=/i);
    expect(markup).not.toMatch(/url\(|@import/i);
    expect(markup).not.toMatch(/<(link|iframe|object|embed|img|base)\b/i);
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toBeDefined();
    expect(csp).toContain("default-src 'none'");
    // the hash is of the script actually in the page, so the browser runs it and nothing else
    const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
    expect(scripts).toHaveLength(1);
    const hash = createHash("sha256").update(scripts[0]!, "utf8").digest("base64");
    expect(csp).toContain(`script-src 'sha256-${hash}'`);
    expect(scripts[0]).toBe(REPORT_SCRIPT);
  });

  it("ships a page script that parses and cannot end its own element early", () => {
    expect(() => new Function(REPORT_SCRIPT)).not.toThrow();
    expect(REPORT_SCRIPT).not.toMatch(/<\/script|<!--/i);
  });

  it("escapes hostile strings: no payload reaches the markup, and the data block still parses back", () => {
    const input = hostileReportInput();
    const html = renderReport(input);
    // exactly the two script elements the report writes, whatever the data says
    expect(occurrences(html, "<script")).toBe(2);
    expect(occurrences(html, "</script")).toBe(2);
    for (const p of PAYLOADS) expect(html).not.toContain(p);
    const block = dataBlock(html);
    expect(html).not.toMatch(/<img|<svg onload|<!--/i);
    expect(html.replace(block, "")).not.toMatch(/on(error|load)="/i);
    expect(block).not.toMatch(/[<>]/);
    expect(JSON.parse(block)).toEqual(input);
    // what the header and failures table show is the escaped text, in full
    expect(html).toContain(`<code>${escapeHtml(input.network.gateway)}</code>`);
    expect(html).toContain(`<code>${escapeHtml(PAYLOADS[1])}</code>`);
    expect(escapeHtml(PAYLOADS[1])).toBe("&#60;img src=x onerror=&#34;window.__pwned=2&#34;&#62;");
    expect(html).toContain(`<td><code>${escapeHtml(PAYLOADS[0])}</code></td>`);
  });

  it("keeps __proto__ keys as plain data", () => {
    const input = hostileReportInput();
    const back = JSON.parse(dataBlock(renderReport(input))) as ReportInput;
    expect(Object.keys(back.pending)).toEqual(["__proto__", PAYLOADS[0], "access"]);
    expect(Object.getPrototypeOf(back.pending)).toBe(Object.prototype);
    expect(Object.keys(back.decisions[2]!.segments)).toContain("__proto__");
  });

  it("escapes every markup character of a string and every < and > of the JSON", () => {
    expect(escapeHtml(`<a href="x" title='y'>&amp;</a>`)).toBe("&#60;a href=&#34;x&#34; title=&#39;y&#39;&#62;&#38;amp;&#60;/a&#62;");
    const tricky = { s: "</script><!-- \u2028 >" };
    const json = jsonForScript(tricky);
    expect(json).not.toMatch(/[<>]/);
    expect(JSON.parse(json)).toEqual(tricky);
  });

  it("shows a clean verdict only when the verifier passed with no failure listed", () => {
    const clean = renderReport(emptyReportInput());
    expect(clean).toContain('data-verdict="clean"');
    expect(clean).toContain("<h1>Audit clean</h1>");
    expect(clean).not.toContain('id="failures"');

    const failed = sampleReportInput(4);
    failed.ok = false;
    failed.failures = [
      { code: "PROOF_ROOT_MISMATCH", log: "access", index: 41, message: "entry 41 does not hash to the anchored root" },
      { code: "VERIFY_FAILED", log: "decisions", message: "anchored tree size 90 is larger than the log" },
      { code: "GATEWAY_MISBEHAVED", log: "access", index: 0, message: "entries out of order" },
    ];
    const html = renderReport(failed);
    expect(html).toContain('data-verdict="failed" data-failures="3"');
    expect(html).toContain("<h1>3 failures</h1>");
    expect(html).toContain("<title>Custodia audit report: FAILED (3 failures)");
    const rows = html.slice(html.indexOf('<table class="failures">'), html.indexOf("</table>")).match(/<tr><td>/g) ?? [];
    expect(rows).toHaveLength(3);
    expect(html).toContain('<tr><td><code>PROOF_ROOT_MISMATCH</code></td><td>access</td><td class="num">41</td><td>entry 41 does not hash to the anchored root</td></tr>');
    expect(html).toContain('<td>decisions</td><td class="num">&#8212;</td>');

    const one = renderReport({ ...failed, failures: failed.failures.slice(0, 1) });
    expect(one).toContain("<h1>1 failure</h1>");
    // not ok without a listed failure, and "ok" with failures listed: both are failures
    const notOk = renderReport({ ...emptyReportInput(), ok: false });
    expect(notOk).toContain('data-verdict="failed"');
    expect(notOk).toContain("<h1>Audit failed</h1>");
    const contradictory = renderReport({ ...failed, ok: true });
    expect(contradictory).toContain('data-verdict="failed"');
  });

  it("writes at most MAX_FAILURE_ROWS failure rows but keeps every failure in the data", () => {
    const input = emptyReportInput();
    input.ok = false;
    input.failures = Array.from({ length: MAX_FAILURE_ROWS + 5 }, (_, i) => ({ code: "PROOF_ROOT_MISMATCH", log: "access", index: i, message: `entry ${i}` }));
    const html = renderReport(input);
    expect(html.match(/<tr><td><code>PROOF_ROOT_MISMATCH/g)).toHaveLength(MAX_FAILURE_ROWS);
    expect(html).toContain("and 5 more failures");
    expect(html).toContain(`<h1>${(MAX_FAILURE_ROWS + 5).toLocaleString("en-US")} failures</h1>`);
    expect((JSON.parse(dataBlock(html)) as ReportInput).failures).toHaveLength(MAX_FAILURE_ROWS + 5);
  });

  it("renders an empty input (a new network) with the facts and all four charts' places", () => {
    const input = emptyReportInput();
    const html = renderReport(input);
    expect(JSON.parse(dataBlock(html))).toEqual(input);
    expect(html).toContain("<dt>Access entries</dt><dd>0</dd>");
    expect(html).toContain("<dt>Entries not yet anchored</dt><dd>0</dd>");
    for (const name of REPORT_CHARTS) expect(html).toContain(`id="chart-${name}"`);
    // the verifier leaves the gateway empty when it could not read the gateway's identity
    expect(renderReport({ ...input, ok: false, network: { ...input.network, gateway: "" } })).toContain("<dt>Gateway</dt><dd>&#8212; (not reached)</dd>");
  });

  it("counts only real, positive pending entries in the facts", () => {
    const input = emptyReportInput();
    input.pending = { access: 7, decisions: 3, odd: -4, junk: "12" as unknown as number };
    expect(renderReport(input)).toContain("<dt>Entries not yet anchored</dt><dd>10</dd>");
  });

  it("refuses an input whose outline is wrong, with INVALID_ARGUMENT", () => {
    const base = emptyReportInput();
    const bad: unknown[] = [
      null,
      [],
      "report",
      { ...base, generatedAt: 5 },
      { ...base, network: null },
      { ...base, network: { chainId: "31337", contract: "0x", gateway: "x" } },
      { ...base, ok: "yes" },
      { ...base, accesses: undefined },
      { ...base, decisions: {} },
      { ...base, anchors: "none" },
      { ...base, failures: [null] },
      { ...base, pending: [] },
      { ...base, pending: null },
    ];
    for (const input of bad) expect(codeOf(() => renderReport(input as ReportInput)), JSON.stringify(input)).toBe("INVALID_ARGUMENT");
    const cyclic = { ...base, accesses: [] as unknown[] };
    cyclic.accesses.push(cyclic);
    expect(codeOf(() => renderReport(cyclic as unknown as ReportInput))).toBe("INVALID_ARGUMENT");
  });

  it("stays small: the page without its data is under 50 KB, and 100k accesses render in under 1.5 s", () => {
    const small = renderReport(emptyReportInput());
    expect(small.length - dataBlock(small).length).toBeLessThan(50_000);
    const big = sampleReportInput(5, { accesses: 100_000, spanSec: 30 * 86_400 });
    const t = performance.now();
    const html = renderReport(big);
    expect(performance.now() - t).toBeLessThan(1500);
    expect(html.length - dataBlock(html).length).toBeLessThan(50_000);
  });
});
