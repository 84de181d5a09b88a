/**
 * CSV import of real transactions and profiles (RFC 4180 dialect: comma separator, optional
 * double-quoted fields with "" as an escaped quote, quoted fields may span lines, LF or CRLF,
 * optional UTF-8 BOM, blank lines ignored). The first record is the header; columns are found by
 * name (trimmed, case-insensitive), in any order, extra columns ignored.
 *
 *   transactions: subject, at, amount, category, channel
 *   profiles:     subject, joinedAt, [ageBand], [gender], [region]
 *
 * `at` / `joinedAt` are Unix seconds or an ISO 8601 date-time (with an explicit zone or "Z"; a bare
 * date means UTC midnight). Amounts are plain decimal numbers (no thousands separators).
 *
 * Errors are INVALID_ARGUMENT with details { reason, line, column? } where `line` is the 1-based
 * physical line on which the offending record starts: CSV_EMPTY, CSV_MISSING_COLUMN,
 * CSV_DUPLICATE_COLUMN, CSV_COLUMN_COUNT, CSV_UNTERMINATED_QUOTE, CSV_BAD_QUOTE, CSV_BAD_NUMBER,
 * CSV_BAD_TIMESTAMP, CSV_EMPTY_FIELD, NEGATIVE_AMOUNT.
 */
import { readFile } from "node:fs/promises";
import { fail } from "./matrix.js";
import type { Profile, Transaction } from "./features.js";

export interface CsvRecord {
  /** 1-based line on which the record starts. */
  readonly line: number;
  readonly fields: string[];
}

/** Splits CSV text into records (see module comment). */
export function parseCsv(text: string): CsvRecord[] {
  if (typeof text !== "string") fail("CSV_EMPTY", "CSV input must be a string", { line: 0 });
  const s = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const out: CsvRecord[] = [];
  const len = s.length;
  let pos = 0;
  let line = 1;
  while (pos < len) {
    const startLine = line;
    const fields: string[] = [];
    let endOfRecord = false;
    while (!endOfRecord) {
      let field = "";
      if (s[pos] === '"') {
        const fieldLine = line;
        pos++;
        for (;;) {
          if (pos >= len) fail("CSV_UNTERMINATED_QUOTE", `unterminated quoted field starting on line ${fieldLine}`, { line: fieldLine, column: fields.length + 1 });
          const ch = s[pos]!;
          if (ch === '"') {
            if (s[pos + 1] === '"') {
              field += '"';
              pos += 2;
              continue;
            }
            pos++;
            break;
          }
          if (ch === "\n") line++;
          field += ch;
          pos++;
        }
        const next = s[pos];
        if (next !== undefined && next !== "," && next !== "\n" && next !== "\r") {
          fail("CSV_BAD_QUOTE", `unexpected character after a closing quote on line ${line}`, { line, column: fields.length + 1 });
        }
      } else {
        const start = pos;
        while (pos < len) {
          const ch = s[pos]!;
          if (ch === "," || ch === "\n" || ch === "\r") break;
          if (ch === '"') fail("CSV_BAD_QUOTE", `quote inside an unquoted field on line ${line}`, { line, column: fields.length + 1 });
          pos++;
        }
        field = s.slice(start, pos);
      }
      fields.push(field);
      const ch = s[pos];
      if (ch === ",") {
        pos++;
      } else {
        if (ch === "\r") pos++;
        if (s[pos] === "\n") pos++;
        if (ch !== undefined) line++;
        endOfRecord = true;
      }
    }
    if (!(fields.length === 1 && fields[0] === "")) out.push({ line: startLine, fields });
  }
  return out;
}

interface Columns {
  [name: string]: number;
}

function header(records: CsvRecord[], required: readonly string[], optional: readonly string[]): Columns {
  const head = records[0];
  if (head === undefined) fail("CSV_EMPTY", "CSV has no header", { line: 1 });
  const cols: Columns = {};
  const wanted = [...required, ...optional];
  const seen = new Set<string>();
  head.fields.forEach((raw, i) => {
    const key = raw.trim().toLowerCase();
    if (seen.has(key) && key !== "") fail("CSV_DUPLICATE_COLUMN", `column ${raw.trim()} appears twice`, { line: head.line, column: i + 1 });
    seen.add(key);
    const match = wanted.find((w) => w.toLowerCase() === key);
    if (match !== undefined) cols[match] = i;
  });
  for (const r of required) {
    if (cols[r] === undefined) fail("CSV_MISSING_COLUMN", `missing column ${r}`, { line: head.line, column: r });
  }
  return cols;
}

function rows(records: CsvRecord[], width: number): CsvRecord[] {
  const body = records.slice(1);
  for (const r of body) {
    if (r.fields.length !== width) {
      fail("CSV_COLUMN_COUNT", `line ${r.line} has ${r.fields.length} fields, expected ${width}`, { line: r.line, expected: width, got: r.fields.length });
    }
  }
  return body;
}

const NUMBER_RE = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$/;
const ISO_RE = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?([Zz]|[+-]\d{2}:?\d{2}))?$/;

function text(r: CsvRecord, cols: Columns, name: string): string {
  const v = r.fields[cols[name]!]!.trim();
  if (v === "") fail("CSV_EMPTY_FIELD", `empty ${name} on line ${r.line}`, { line: r.line, column: name });
  return v;
}

function optionalText(r: CsvRecord, cols: Columns, name: string): string | undefined {
  if (cols[name] === undefined) return undefined;
  const v = r.fields[cols[name]!]!.trim();
  return v === "" ? undefined : v;
}

function number(r: CsvRecord, cols: Columns, name: string): number {
  const v = text(r, cols, name);
  const x = NUMBER_RE.test(v) ? Number(v) : NaN;
  if (!Number.isFinite(x)) fail("CSV_BAD_NUMBER", `bad number ${JSON.stringify(v)} for ${name} on line ${r.line}`, { line: r.line, column: name });
  return x;
}

function timestamp(r: CsvRecord, cols: Columns, name: string): number {
  const v = text(r, cols, name);
  let x = NaN;
  if (NUMBER_RE.test(v)) x = Number(v);
  else if (ISO_RE.test(v)) x = Date.parse(v.length === 10 ? `${v}T00:00:00Z` : v) / 1000;
  if (!Number.isFinite(x)) fail("CSV_BAD_TIMESTAMP", `bad timestamp ${JSON.stringify(v)} for ${name} on line ${r.line}`, { line: r.line, column: name });
  return x;
}

/** Transactions from CSV text (see module comment). */
export function parseTransactionsCsv(csv: string): Transaction[] {
  const records = parseCsv(csv);
  const cols = header(records, ["subject", "at", "amount", "category", "channel"], []);
  return rows(records, records[0]!.fields.length).map((r) => {
    const amount = number(r, cols, "amount");
    if (amount < 0) fail("NEGATIVE_AMOUNT", `negative amount on line ${r.line}`, { line: r.line, column: "amount" });
    return {
      subject: text(r, cols, "subject"),
      at: timestamp(r, cols, "at"),
      amount,
      category: text(r, cols, "category"),
      channel: text(r, cols, "channel"),
    };
  });
}

/** Profiles from CSV text (see module comment). */
export function parseProfilesCsv(csv: string): Profile[] {
  const records = parseCsv(csv);
  const cols = header(records, ["subject", "joinedAt"], ["ageBand", "gender", "region"]);
  return rows(records, records[0]!.fields.length).map((r) => {
    const p: Profile = { subject: text(r, cols, "subject"), joinedAt: timestamp(r, cols, "joinedAt") };
    const ageBand = optionalText(r, cols, "ageBand");
    const gender = optionalText(r, cols, "gender");
    const region = optionalText(r, cols, "region");
    if (ageBand !== undefined) p.ageBand = ageBand;
    if (gender !== undefined) p.gender = gender;
    if (region !== undefined) p.region = region;
    return p;
  });
}

/** Reads and parses a transactions CSV file (UTF-8). */
export async function readTransactionsCsv(path: string): Promise<Transaction[]> {
  return parseTransactionsCsv(await readFile(path, "utf8"));
}

/** Reads and parses a profiles CSV file (UTF-8). */
export async function readProfilesCsv(path: string): Promise<Profile[]> {
  return parseProfilesCsv(await readFile(path, "utf8"));
}
