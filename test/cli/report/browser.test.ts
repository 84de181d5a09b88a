/**
 * The audit report in a real browser: Debian's headless Chromium (through playwright-core) opens
 * the report from a file:// URL and the charts must have drawn what the data implies, with no
 * console or page errors, no request beyond the file itself, and no hostile payload running.
 */
import { existsSync, mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { REPORT_CHARTS, renderReport, type ReportInput } from "../../../cli/audit/report.js";
import { PAYLOADS, emptyReportInput, expectedMarks, hostileReportInput, sampleReportInput } from "./helpers.js";

/*
 * The browser globals the page callbacks below use. The project's tsconfig has no DOM library
 * (everything else here runs on Node), so they are declared for this module only.
 */
interface DomNode {
  textContent: string | null;
  innerText: string;
  attributes: Iterable<{ name: string }>;
  getAttribute(name: string): string | null;
  getBoundingClientRect(): { width: number; height: number };
  querySelector(selector: string): DomNode | null;
  querySelectorAll(selector: string): Iterable<DomNode> & { length: number };
  closest(selector: string): DomNode | null;
}
declare const document: Pick<DomNode, "querySelector" | "querySelectorAll"> & { scripts: { length: number }; images: { length: number }; body: DomNode };
declare const window: Record<string, unknown>;
declare function getComputedStyle(element: DomNode): { fontSize: string; backgroundColor: string };

const CHROMIUM = "/usr/bin/chromium";
const HOOK_TIMEOUT = 30_000;

interface Opened {
  page: Page;
  /** Console errors and uncaught page errors, in order. */
  errors: string[];
  /** Every URL the page asked for. */
  requests: string[];
  url: string;
}

interface ChartState {
  name: string;
  rendered: string | null;
  marksAttr: number;
  marks: number;
  role: string | null;
  label: string;
  /** Smallest width and height of any mark on screen. */
  minWidth: number;
  minHeight: number;
  legendItems: number;
  emptyText: string | null;
  titles: number;
}

describe("audit report in headless Chromium (file://)", () => {
  let browser: Browser;
  let dir: string;
  const opened: Page[] = [];

  // A missing or broken Chromium fails every test with this message (a failing hook would only
  // show the tests as skipped).
  let unavailable: string | undefined;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "custodia-report-"));
    if (!existsSync(CHROMIUM)) {
      unavailable = `${CHROMIUM} is missing: the audit report's browser test needs Debian's chromium package (CI installs it: .ci/run does \`apt-get install chromium\`).`;
      return;
    }
    try {
      browser = await chromium.launch({
        executablePath: CHROMIUM,
        args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
      });
    } catch (e) {
      unavailable = `${CHROMIUM} did not start: ${e instanceof Error ? e.message : String(e)}`;
    }
  }, HOOK_TIMEOUT);

  afterAll(async () => {
    for (const p of opened) await p.close().catch(() => undefined);
    await browser?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  }, HOOK_TIMEOUT);

  async function open(input: ReportInput, name: string): Promise<Opened> {
    if (unavailable !== undefined) throw new Error(unavailable);
    const file = join(dir, `${name}.html`);
    writeFileSync(file, renderReport(input));
    const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
    opened.push(page);
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(`console: ${m.text()}`);
    });
    page.on("pageerror", (e) => errors.push(`page: ${e.message}`));
    page.on("request", (r) => requests.push(r.url()));
    const url = pathToFileURL(file).href;
    await page.goto(url);
    await page.waitForSelector('body[data-charts="done"]', { timeout: 20_000 });
    return { page, errors, requests, url };
  }

  function charts(page: Page): Promise<ChartState[]> {
    return page.evaluate((names) =>
      names.map((name) => {
        const svg = document.querySelector(`svg[data-chart="${name}"]`);
        if (!svg) return { name, rendered: null, marksAttr: -1, marks: -1, role: null, label: "", minWidth: 0, minHeight: 0, legendItems: 0, emptyText: null, titles: 0 };
        const marks = [...svg.querySelectorAll(".mark")];
        const boxes = marks.map((m) => m.getBoundingClientRect());
        return {
          name,
          rendered: svg.getAttribute("data-rendered"),
          marksAttr: Number(svg.getAttribute("data-marks")),
          marks: marks.length,
          role: svg.getAttribute("role"),
          label: svg.getAttribute("aria-label") ?? "",
          minWidth: boxes.length ? Math.min(...boxes.map((b) => b.width)) : 0,
          minHeight: boxes.length ? Math.min(...boxes.map((b) => b.height)) : 0,
          legendItems: svg.closest("figure")!.querySelectorAll(".legend .item").length,
          emptyText: svg.querySelector("text.empty")?.textContent ?? null,
          titles: marks.filter((m) => m.querySelector(":scope > title")?.textContent).length,
        };
      }),
    [...REPORT_CHARTS]);
  }

  it("has Debian's Chromium to drive", () => {
    expect(unavailable, unavailable).toBeUndefined();
  });

  it("draws every chart of a sample report with the marks its data implies", async () => {
    const input = sampleReportInput(7);
    const want = expectedMarks(input);
    // the sample exercises grouping: more partner·purpose pairs than colours
    expect(new Set(input.accesses.map((a) => `${a.partner} ${a.purpose}`)).size).toBeGreaterThan(7);
    const { page, errors, requests, url } = await open(input, "sample");
    const state = await charts(page);
    for (const c of state) {
      expect(c.rendered, c.name).toBe("true");
      expect(c.marksAttr, c.name).toBe(want[c.name as keyof typeof want]);
      expect(c.marks, c.name).toBe(c.marksAttr);
      expect(c.marks, c.name).toBeGreaterThan(0);
      expect(c.minWidth, c.name).toBeGreaterThan(0);
      expect(c.minHeight, c.name).toBeGreaterThan(0);
      expect(c.titles, `${c.name}: every mark has a <title>`).toBe(c.marks);
      expect(c.role, c.name).toBe("img");
      expect(c.label.length, c.name).toBeGreaterThan(20);
      expect(c.legendItems, c.name).toBeGreaterThan(0);
      expect(c.emptyText, c.name).toBeNull();
    }
    // axes are labelled
    const axisLabels = await page.$$eval("svg[data-chart] text.axis-label", (els) => els.map((e) => e.textContent));
    expect(axisLabels).toEqual(expect.arrayContaining(["time (UTC), one bar per 3 hours", "accesses per 3 hours", "denied accesses", "tree size (entries)", "anchor time (UTC)"]));
    // the summary table's totals are the data's allowed vs denied counts
    const allow = input.accesses.filter((a) => a.decision === "allow").length;
    const totals = await page.$$eval("#chart-accesses tr.total td", (tds) => tds.map((t) => t.textContent));
    expect(totals).toEqual(["all partners", "", allow.toLocaleString("en-US"), (input.accesses.length - allow).toLocaleString("en-US"), input.accesses.length.toLocaleString("en-US")]);
    // the verdict is big and says so in words
    const verdict = await page.$eval("header.verdict h1", (h) => ({ text: h.textContent, size: parseFloat(getComputedStyle(h).fontSize) }));
    expect(verdict).toEqual({ text: "Audit clean", size: expect.any(Number) });
    expect(verdict.size).toBeGreaterThanOrEqual(28);
    expect(errors).toEqual([]);
    expect(requests).toEqual([url]);
    const png = join(dir, "sample.png");
    await page.screenshot({ path: png, fullPage: true });
    expect(statSync(png).size).toBeGreaterThan(60_000);
  });

  it("does not run hostile payloads from the data, and shows them as text", async () => {
    const input = hostileReportInput();
    const { page, errors, requests, url } = await open(input, "hostile");
    const facts = await page.evaluate(() => ({
      pwned: window["__pwned"],
      scripts: document.scripts.length,
      images: document.images.length,
      onHandlers: [...document.querySelectorAll("*")].filter((e) => [...e.attributes].some((a) => a.name.startsWith("on"))).length,
      stray: document.querySelectorAll("body svg:not(.plot):not(.legend svg)").length,
      verdict: document.body.getAttribute("data-verdict"),
      text: document.body.innerText,
      titles: [...document.querySelectorAll("svg[data-chart] title")].map((t) => t.textContent).join("\n"),
    }));
    expect(facts.pwned).toBeUndefined();
    expect(facts.scripts).toBe(2);
    expect(facts.images).toBe(0);
    expect(facts.onHandlers).toBe(0);
    expect(facts.stray).toBe(0);
    expect(facts.verdict).toBe("failed");
    // payloads appear verbatim as text: in the header, failures and summary tables, and mark titles
    for (const p of PAYLOADS) expect(facts.text, p).toContain(p);
    expect(facts.titles).toContain(PAYLOADS[0]);
    const state = await charts(page);
    const want = expectedMarks(input);
    for (const c of state) {
      expect(c.rendered, c.name).toBe("true");
      expect(c.marks, c.name).toBe(want[c.name as keyof typeof want]);
    }
    // `__proto__` and `constructor` were counted as reasons like any other
    const reasons = await page.$$eval("#chart-denials tbody tr:not(.total) td:first-child", (tds) => tds.map((t) => t.textContent));
    expect(reasons).toEqual(expect.arrayContaining(["__proto__", "constructor", PAYLOADS[0]]));
    expect(errors).toEqual([]);
    expect(requests).toEqual([url]);
  });

  it("shows an empty state, not a broken chart, when there is nothing yet", async () => {
    const { page, errors } = await open(emptyReportInput(), "empty");
    const state = await charts(page);
    expect(state.map((c) => [c.name, c.rendered, c.marksAttr, c.marks, c.emptyText])).toEqual([
      ["accesses", "true", 0, 0, "No accesses yet"],
      ["denials", "true", 0, 0, "No accesses yet"],
      ["segments", "true", 0, 0, "No segmentation runs yet"],
      ["anchors", "true", 0, 0, "No anchors yet"],
    ]);
    for (const c of state) expect(c.label, c.name).toContain(c.emptyText!);
    expect(await page.$$eval("svg text.empty", (els) => els.map((e) => e.getBoundingClientRect().width > 0))).toEqual([true, true, true, true]);
    expect(errors).toEqual([]);
  });

  it("says so when accesses exist but none was denied, and when entries wait for their first anchor", async () => {
    const input = sampleReportInput(8, { accesses: 40, anchorEvery: 1000, runs: 0 });
    for (const a of input.accesses) {
      a.decision = "allow";
      a.reason = "OK";
    }
    input.anchors = [];
    input.pending = { access: 40 };
    const { page, errors } = await open(input, "no-denials");
    const state = Object.fromEntries((await charts(page)).map((c) => [c.name, c]));
    expect(state["accesses"]!.marks).toBe(expectedMarks(input).accesses);
    expect(state["accesses"]!.marks).toBeGreaterThan(0);
    expect(state["denials"]!.emptyText).toBe("No denials: every access was allowed");
    expect(state["anchors"]!.emptyText).toBe("No anchors yet \u2014 40 entries wait to be anchored");
    expect(state["segments"]!.emptyText).toBe("No segmentation runs yet");
    expect(errors).toEqual([]);
  });

  it("shows failures big and red, with their table", async () => {
    const input = sampleReportInput(9, { accesses: 200 });
    input.ok = false;
    input.failures = [
      { code: "PROOF_ROOT_MISMATCH", log: "access", index: 41, message: "entry 41 does not hash to the anchored root" },
      { code: "VERIFY_FAILED", log: "decisions", message: "anchored tree size is larger than the log" },
      { code: "GATEWAY_MISBEHAVED", log: "access", index: 7, message: "entries out of order" },
    ];
    const { page, errors } = await open(input, "failed");
    const header = await page.$eval("header.verdict", (h) => ({ text: h.querySelector("h1")!.textContent, bg: getComputedStyle(h).backgroundColor, height: h.getBoundingClientRect().height }));
    expect(header.text).toBe("3 failures");
    expect(header.bg).toBe("rgb(179, 0, 27)");
    expect(header.height).toBeGreaterThan(60);
    const rows = await page.$$eval("table.failures tbody tr", (trs) => trs.map((tr) => [...tr.querySelectorAll("td")].map((td) => td.textContent)));
    expect(rows).toEqual([
      ["PROOF_ROOT_MISMATCH", "access", "41", "entry 41 does not hash to the anchored root"],
      ["VERIFY_FAILED", "decisions", "\u2014", "anchored tree size is larger than the log"],
      ["GATEWAY_MISBEHAVED", "access", "7", "entries out of order"],
    ]);
    expect(errors).toEqual([]);
  });

  it("draws 100k accesses at once with a bounded number of marks, and prints", async () => {
    const input = sampleReportInput(10, { accesses: 100_000, spanSec: 30 * 86_400, anchorEvery: 100, runs: 40 });
    const want = expectedMarks(input);
    const t = Date.now();
    const { page, errors } = await open(input, "large");
    const loadMs = Date.now() - t;
    const renderMs = Number(await page.getAttribute("body", "data-render-ms"));
    const state = Object.fromEntries((await charts(page)).map((c) => [c.name, c]));
    for (const name of REPORT_CHARTS) {
      expect(state[name]!.rendered, name).toBe("true");
      expect(state[name]!.marks, name).toBe(want[name]);
    }
    expect(state["accesses"]!.marks).toBeLessThanOrEqual(48 * 8);
    // 1,000 anchors of the access log are drawn as 400 points; the 25 latest of 40 runs are drawn
    expect(state["anchors"]!.marks).toBe(400 + 40);
    expect(await page.$$eval("#chart-segments text.run-total", (ts) => ts.length)).toBe(25);
    expect(await page.evaluate(() => document.querySelectorAll("*").length)).toBeLessThan(8000);
    expect(renderMs).toBeLessThan(3000);
    expect(loadMs).toBeLessThan(15_000);
    await page.emulateMedia({ media: "print" });
    const pdf = await page.pdf({ format: "A4", printBackground: true });
    expect(pdf.subarray(0, 5).toString()).toBe("%PDF-");
    expect(pdf.length).toBeGreaterThan(50_000);
    expect(errors).toEqual([]);
  });
});
