/**
 * `npm run test:reliability`: runs the reliability suite (vitest.reliability.config.ts) in the FULL
 * mode unless CUSTODIA_RELIABILITY=short says otherwise, with one seed for every file, collects
 * each file's figures from a results directory and prints them: a table of the details, then, as
 * the last line on stdout, one JSON object
 *
 *   {"soakSeconds":..,"requests":..,"errors5xx":..,"kills":..,"lostEntries":..,"duplicateEntries":..,
 *    "maxAnchorLagMs":..,"fuzzCases":..,"fuzzFailures":..,"staleGrants":..}
 *
 * requests, errors5xx, lostEntries, duplicateEntries, fuzzCases, fuzzFailures and staleGrants are
 * summed over the files, maxAnchorLagMs is the largest. Exits with vitest's code, or 1 when a
 * file reported no figures. Extra arguments go to vitest (e.g. a file filter).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { FIGURE_KEYS, type Figures, type ItemReport } from "./config.js";

const ITEMS = ["soak", "crash", "ledger-faults", "fuzz-http", "fuzz-cli", "race"] as const;
const SUMMED: readonly (keyof Figures)[] = ["requests", "errors5xx", "lostEntries", "duplicateEntries", "fuzzCases", "fuzzFailures", "staleGrants"];

const mode = process.env["CUSTODIA_RELIABILITY"] === "short" ? "short" : "full";
const seed = process.env["CUSTODIA_REL_SEED"] || String(Math.floor(Math.random() * 2 ** 31));
const results = mkdtempSync(join(tmpdir(), "custodia-reliability-"));
const started = Date.now();
process.stdout.write(`reliability: ${mode} run, seed ${seed}, node ${process.version}\n`);

const code = await new Promise<number>((resolve) => {
  const child = spawn("npx", ["vitest", "run", "--config", "vitest.reliability.config.ts", ...process.argv.slice(2)], {
    stdio: "inherit",
    env: { ...process.env, CUSTODIA_RELIABILITY: mode, CUSTODIA_REL_SEED: seed, CUSTODIA_REL_RESULTS: results },
  });
  child.once("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});

const reports = new Map<string, ItemReport>();
if (existsSync(results)) for (const f of readdirSync(results)) if (f.endsWith(".json")) reports.set(f.replace(/\.json$/, ""), JSON.parse(readFileSync(join(results, f), "utf8")) as ItemReport);
rmSync(results, { recursive: true, force: true });

const line: Record<keyof Figures, number | null> = Object.fromEntries(FIGURE_KEYS.map((k) => [k, null])) as Record<keyof Figures, number | null>;
for (const r of reports.values()) {
  for (const [k, v] of Object.entries(r.figures) as [keyof Figures, number][]) {
    if (typeof v !== "number") continue;
    if (SUMMED.includes(k)) line[k] = (line[k] ?? 0) + v;
    else if (k === "maxAnchorLagMs") line[k] = Math.max(line[k] ?? 0, v);
    else line[k] = v;
  }
}
const missing = ITEMS.filter((i) => !reports.has(i));

process.stdout.write(`\nreliability figures (${mode}, seed ${seed}, ${Math.round((Date.now() - started) / 1000)} s):\n`);
for (const item of ITEMS) {
  const r = reports.get(item);
  process.stdout.write(`  ${item.padEnd(14)} ${r ? JSON.stringify({ ...r.figures, ...r.details }) : "(no figures: the file failed before recording them, or was filtered out)"}\n`);
}
if (missing.length > 0) process.stdout.write(`missing: ${missing.join(", ")}\n`);
process.stdout.write(`${JSON.stringify(line)}\n`);
process.exit(code !== 0 ? code : missing.length > 0 && process.argv.length <= 2 ? 1 : 0);
