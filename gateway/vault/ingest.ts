/**
 * Parsing operator uploads into validated vault records. Two formats:
 *
 * JSON: an array of record objects, each with `kind` ("transaction" | "profile") and the fields
 * of that kind (see records.ts); `null` profile fields count as absent, unknown fields are
 * rejected.
 *
 * CSV (RFC 4180: comma separated; fields may be double-quoted, and a quoted field may contain
 * commas, CR/LF and doubled quotes `""`; records end with CRLF, LF or CR; a UTF-8 BOM is
 * ignored; blank lines are skipped). The first record is the header; columns are matched by
 * name (case-insensitive, surrounding spaces ignored), in any order. Two layouts:
 *
 * - transactions: exactly the columns subject,id,at,amount,currency,category,channel
 * - profiles: `subject` plus any of email,phone,ageBand,gender,region,joinedAt,income,
 *   creditScore,marketingOptIn,preferredChannel
 *
 * The layout is the one asked for, else detected: a header naming any transaction-only column
 * (id, at, amount, currency, category, channel) is a transactions file, otherwise a profiles
 * file. Unknown and duplicate columns are rejected (so no unmapped personal data slips in).
 * Cells: an empty cell is an absent value (a missing_field for transactions); integers are
 * decimal digits; numbers are decimals (optionally signed, with exponent); booleans are
 * true/false (case-insensitive); everything else is taken verbatim (no trimming).
 *
 * A batch is all-or-nothing: any problem makes the whole parse throw
 * CustodiaError("INVALID_ARGUMENT", …, { reason, line?, index?, field?, problems, problemCount,
 * truncated }) listing the first `maxProblems` problems, with 1-based lines (for CSV the line
 * where the record starts; for JSON the line where the array element starts).
 */
import { CustodiaError } from "../../core/errors.js";
import {
  DEFAULT_MAX_RECORDS,
  MAX_PROBLEMS,
  PROFILE_FIELDS,
  ProblemList,
  RecordCollector,
  TRANSACTION_FIELDS,
  projectByCategories,
  validateRecords,
  type Problem,
  type Projection,
  type SubjectData,
  type VaultRecord,
} from "./records.js";

export interface IngestOptions {
  /** Max records per batch (default 100 000). */
  maxRows?: number;
  /** Max characters of one CSV cell or JSON string value (default 1024). */
  maxFieldLength?: number;
  /** Max problems listed in the error (default 20). */
  maxProblems?: number;
}

export type CsvLayout = "transactions" | "profiles";
export type IngestFormat = "json" | "csv";

export const DEFAULT_MAX_FIELD_LENGTH = 1024;

const TX_ONLY = new Set<string>(["id", "at", "amount", "currency", "category", "channel"]);
const INTEGER_FIELDS = new Set<string>(["at", "joinedAt"]);
const NUMBER_FIELDS = new Set<string>(["amount", "income", "creditScore"]);
const BOOLEAN_FIELDS = new Set<string>(["marketingOptIn"]);
const INTEGER = /^[0-9]+$/;
const DECIMAL = /^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$/;

function limits(opts: IngestOptions): Required<IngestOptions> {
  const maxRows = opts.maxRows ?? DEFAULT_MAX_RECORDS;
  const maxFieldLength = opts.maxFieldLength ?? DEFAULT_MAX_FIELD_LENGTH;
  const maxProblems = opts.maxProblems ?? MAX_PROBLEMS;
  for (const [k, v] of Object.entries({ maxRows, maxFieldLength, maxProblems })) {
    if (!Number.isSafeInteger(v) || v < 1) throw new CustodiaError("INVALID_ARGUMENT", `${k} must be a positive integer`);
  }
  return { maxRows, maxFieldLength, maxProblems };
}

function decode(input: string | Uint8Array, list: ProblemList): string {
  if (typeof input === "string") return input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  try {
    // strips a UTF-8 BOM
    return new TextDecoder("utf-8", { fatal: true }).decode(input);
  } catch {
    list.add({ reason: "invalid_text", message: "input is not valid UTF-8" });
    list.throwIfAny();
    return "";
  }
}

/** Parses `text` in the given format. */
export function parseRecords(input: string | Uint8Array, format: IngestFormat, opts: IngestOptions & { layout?: CsvLayout } = {}): VaultRecord[] {
  return format === "json" ? parseJsonRecords(input, opts) : parseCsvRecords(input, opts);
}

/**
 * The parsing/projection bundle the HTTP layer injects next to the vault: JSON bodies arrive
 * already parsed (a record array) or as text/bytes; CSV arrives as text with its layout.
 */
export function vaultCodec(opts: IngestOptions = {}): {
  parseJson(body: unknown): VaultRecord[];
  parseCsv(text: string | Uint8Array, layout: CsvLayout): VaultRecord[];
  project(data: SubjectData, categoriesMask: number): Projection;
} {
  const { maxRows, maxFieldLength, maxProblems } = limits(opts);
  // A hot subject's data object is the same one while the vault cache holds it (it is never
  // mutated), and partners ask for the same categories again and again: project each pair once.
  // The projections are frozen, since every response that carries one shares it.
  const projections = new WeakMap<SubjectData, Map<number, Projection>>();
  return {
    parseJson: (body) =>
      typeof body === "string" || body instanceof Uint8Array
        ? parseJsonRecords(body, opts)
        : validateRecords(body as unknown[], {
            maxRecords: maxRows,
            maxProblems,
            priorProblems: (i) => tooLongStrings((body as unknown[])[i], maxFieldLength),
          }),
    parseCsv: (text, layout) => parseCsvRecords(text, { ...opts, layout }),
    project: (data, mask) => {
      let byMask = projections.get(data);
      if (!byMask) projections.set(data, (byMask = new Map()));
      let projection = byMask.get(mask);
      if (!projection) byMask.set(mask, (projection = deepFreeze(projectByCategories(data, mask))));
      return projection;
    },
  };
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const v of Object.values(value)) deepFreeze(v);
  }
  return value;
}

function tooLongStrings(item: unknown, maxFieldLength: number): Problem[] | undefined {
  if (typeof item !== "object" || item === null) return undefined;
  let found: Problem[] | undefined;
  for (const [field, v] of Object.entries(item)) {
    if (typeof v === "string" && v.length > maxFieldLength) {
      (found ??= []).push({ reason: "too_long", field, message: `${field} is longer than ${maxFieldLength} characters` });
    }
  }
  return found;
}

/* ------------------------------------------------------------------ JSON */

/** Parses a JSON array of records. */
export function parseJsonRecords(input: string | Uint8Array, opts: IngestOptions = {}): VaultRecord[] {
  const { maxRows, maxFieldLength, maxProblems } = limits(opts);
  const list = new ProblemList(maxProblems);
  const text = decode(input, list);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (e) {
    list.add({ reason: "invalid_json", message: `not valid JSON: ${(e as Error).message}`, line: jsonErrorLine(text, e as Error) });
    list.throwIfAny("JSON");
  }
  if (!Array.isArray(value)) {
    list.add({ reason: "not_an_array", message: "the document must be a JSON array of records", line: 1 });
    list.throwIfAny("JSON");
  }
  const items = value as unknown[];
  if (items.length > maxRows) {
    list.add({ reason: "too_many_rows", message: `a batch holds at most ${maxRows} records, got ${items.length}` });
    list.throwIfAny("JSON");
  }
  let lines: number[] | undefined;
  const lineOf = (i: number): number | undefined => (lines ??= jsonElementLines(text))[i];
  return validateRecords(items, {
    maxRecords: maxRows,
    maxProblems,
    lineOf,
    priorProblems: (i) => tooLongStrings(items[i], maxFieldLength),
  });
}

/** The 1-based line of the first JSON syntax error (JSON.parse does not always say where). */
function jsonErrorLine(text: string, e: Error): number {
  const m = /line (\d+) column \d+/.exec(e.message);
  if (m) return Number(m[1]);
  const pos = /at position (\d+)/.exec(e.message);
  const offset = pos ? Number(pos[1]) : jsonErrorOffset(text);
  let line = 1;
  for (let i = 0; i < Math.min(offset, text.length); i++) if (text.charCodeAt(i) === 10) line++;
  return line;
}

const JSON_NUMBER = /-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?/y;
const JSON_ESCAPE = /\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4})/y;

/** Offset of the first syntax error of invalid JSON (a small recursive-descent checker). */
function jsonErrorOffset(text: string): number {
  const n = text.length;
  let i = 0;
  const fail = (): never => {
    throw new SyntaxError("json");
  };
  const ws = (): void => {
    for (let c = text.charCodeAt(i); c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d; c = text.charCodeAt(++i));
  };
  const str = (): void => {
    i++;
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        i++;
        return;
      }
      if (c < 0x20) fail();
      if (c === 0x5c) {
        JSON_ESCAPE.lastIndex = i;
        if (!JSON_ESCAPE.test(text)) fail();
        i = JSON_ESCAPE.lastIndex;
      } else i++;
    }
    fail();
  };
  const value = (): void => {
    ws();
    const c = text[i];
    if (c === "{" || c === "[") {
      const close = c === "{" ? "}" : "]";
      i++;
      ws();
      if (text[i] === close) {
        i++;
        return;
      }
      for (;;) {
        if (c === "{") {
          ws();
          if (text[i] !== '"') fail();
          str();
          ws();
          if (text[i] !== ":") fail();
          i++;
        }
        value();
        ws();
        if (text[i] === ",") {
          i++;
          continue;
        }
        if (text[i] === close) {
          i++;
          return;
        }
        fail();
      }
    }
    if (c === '"') return str();
    for (const lit of ["true", "false", "null"]) {
      if (text.startsWith(lit, i)) {
        i += lit.length;
        return;
      }
    }
    JSON_NUMBER.lastIndex = i;
    if (!JSON_NUMBER.test(text)) fail();
    i = JSON_NUMBER.lastIndex;
  };
  try {
    value();
    ws();
    return i;
  } catch {
    return i;
  }
}

/** The 1-based line on which each element of a (valid) top-level JSON array starts. */
function jsonElementLines(text: string): number[] {
  const out: number[] = [];
  let line = 1;
  let depth = 0;
  let inString = false;
  let expecting = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++;
      else if (c === 0x22) inString = false;
      continue;
    }
    if (c === 0x0a) {
      line++;
      continue;
    }
    if (c === 0x20 || c === 0x09 || c === 0x0d) continue;
    if (expecting && depth === 1 && c !== 0x5d) {
      out.push(line);
      expecting = false;
    }
    if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      depth++;
      if (depth === 1) expecting = true;
    } else if (c === 0x5d || c === 0x7d) depth--;
    else if (c === 0x2c && depth === 1) expecting = true;
  }
  return out;
}

/* ------------------------------------------------------------------- CSV */

export interface CsvRow {
  cells: string[];
  /** 1-based line where the record starts. */
  line: number;
  /** A quoting error was found in this record (already reported); `cells` is incomplete. */
  broken: boolean;
}

/**
 * RFC 4180 tokenizer. Calls `onRow` per non-blank record (also for a record with a quoting
 * error, flagged `broken`, after resynchronising at the next line break); syntax problems go to
 * `list`, and an unterminated quote ends the parse. Returns false when the parse was aborted.
 */
export function tokenizeCsv(text: string, list: ProblemList, onRow: (row: CsvRow) => boolean | void): boolean {
  const n = text.length;
  let i = 0;
  let line = 1;
  while (i < n) {
    const c0 = text.charCodeAt(i);
    // blank line
    if (c0 === 0x0a || c0 === 0x0d) {
      i += c0 === 0x0d && text.charCodeAt(i + 1) === 0x0a ? 2 : 1;
      line++;
      continue;
    }
    const start = line;
    const cells: string[] = [];
    let broken = false;
    for (;;) {
      if (text.charCodeAt(i) === 0x22) {
        // quoted field
        let value = "";
        let j = i + 1;
        for (;;) {
          const q = text.indexOf('"', j);
          if (q === -1) {
            list.add({ reason: "unterminated_quote", line: start, message: "a quoted field is not closed before the end of the input" });
            return false;
          }
          value += text.slice(j, q);
          if (text.charCodeAt(q + 1) === 0x22) {
            value += '"';
            j = q + 2;
          } else {
            j = q + 1;
            break;
          }
        }
        line += countLineBreaks(text, i, j);
        cells.push(value);
        i = j;
        const c = text.charCodeAt(i);
        if (c === 0x2c) {
          i++;
          continue;
        }
        if (i >= n || c === 0x0a || c === 0x0d) break;
        list.add({ reason: "invalid_quote", line: start, message: `unexpected character after a closing quote (column ${cells.length})` });
        broken = true;
        break;
      }
      // unquoted field
      let j = i;
      let c = 0;
      for (; j < n; j++) {
        c = text.charCodeAt(j);
        if (c === 0x2c || c === 0x0a || c === 0x0d) break;
        if (c === 0x22) break;
      }
      if (j < n && c === 0x22) {
        list.add({ reason: "invalid_quote", line: start, message: `a quote inside an unquoted field (column ${cells.length + 1})` });
        broken = true;
        i = j;
        break;
      }
      cells.push(text.slice(i, j));
      i = j;
      if (j < n && c === 0x2c) {
        i++;
        continue;
      }
      break;
    }
    if (broken) {
      // resynchronise at the next line break
      while (i < n && text.charCodeAt(i) !== 0x0a && text.charCodeAt(i) !== 0x0d) i++;
    }
    // consume the record terminator
    if (i < n) {
      i += text.charCodeAt(i) === 0x0d && text.charCodeAt(i + 1) === 0x0a ? 2 : 1;
      line++;
    }
    if (onRow({ cells, line: start, broken }) === false) return false;
  }
  return true;
}

function countLineBreaks(text: string, from: number, to: number): number {
  let k = 0;
  for (let i = from; i < to; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x0a) k++;
    else if (c === 0x0d && text.charCodeAt(i + 1) !== 0x0a) k++;
  }
  return k;
}

const CANONICAL_COLUMN = new Map<string, string>(
  [...TRANSACTION_FIELDS, ...PROFILE_FIELDS].map((f) => [f.toLowerCase(), f] as const),
);

/** Parses a CSV upload of one layout (given or detected from the header). */
export function parseCsvRecords(input: string | Uint8Array, opts: IngestOptions & { layout?: CsvLayout } = {}): VaultRecord[] {
  const { maxRows, maxFieldLength, maxProblems } = limits(opts);
  const list = new ProblemList(maxProblems);
  const text = decode(input, list);

  let header: { columns: string[]; layout: CsvLayout } | undefined;
  let sawHeader = false;
  let tooMany: Problem | undefined;
  const lines: number[] = [];
  const collector = new RecordCollector(list, (i) => lines[i]);

  // Rows are validated as they are read, so problems are reported in line order.
  tokenizeCsv(text, list, (row) => {
    if (!sawHeader) {
      sawHeader = true;
      if (row.broken) return false;
      const h = readHeader(row, opts.layout, list);
      if (h === null) return false;
      header = h;
      return true;
    }
    const { columns, layout } = header!;
    const index = lines.length;
    if (index >= maxRows) {
      tooMany = { reason: "too_many_rows", line: row.line, message: `a batch holds at most ${maxRows} rows` };
      return false;
    }
    lines.push(row.line);
    if (row.broken) return true;
    if (row.cells.length !== columns.length) {
      list.add({
        reason: "column_count",
        line: row.line,
        index,
        message: `expected ${columns.length} fields, got ${row.cells.length}`,
      });
      return true;
    }
    const raw: Record<string, unknown> = { kind: layout === "transactions" ? "transaction" : "profile" };
    let problems: Problem[] | undefined;
    for (let c = 0; c < columns.length; c++) {
      const field = columns[c]!;
      const cell = row.cells[c]!;
      if (cell.length === 0) continue;
      if (cell.length > maxFieldLength) {
        (problems ??= []).push({ reason: "too_long", field, message: `${field} is longer than ${maxFieldLength} characters` });
        continue;
      }
      if (INTEGER_FIELDS.has(field)) {
        if (INTEGER.test(cell)) raw[field] = Number(cell);
        else (problems ??= []).push({ reason: "invalid_integer", field, message: `${field} must be a non-negative integer` });
      } else if (NUMBER_FIELDS.has(field)) {
        if (DECIMAL.test(cell)) raw[field] = Number(cell);
        else (problems ??= []).push({ reason: "invalid_number", field, message: `${field} must be a decimal number` });
      } else if (BOOLEAN_FIELDS.has(field)) {
        const b = cell.toLowerCase();
        if (b === "true" || b === "false") raw[field] = b === "true";
        else (problems ??= []).push({ reason: "invalid_boolean", field, message: `${field} must be true or false` });
      } else {
        raw[field] = cell;
      }
    }
    collector.add(raw, index, problems);
    return true;
  });

  if (tooMany !== undefined) {
    // the batch is refused for its size: row problems found before the limit are beside the point
    const only = new ProblemList(maxProblems);
    only.add(tooMany);
    only.throwIfAny("CSV");
  }
  if (!sawHeader) list.add({ reason: "missing_header", line: 1, message: "the CSV has no header row" });
  list.throwIfAny("CSV");
  return collector.records;
}

function readHeader(row: CsvRow, want: CsvLayout | undefined, list: ProblemList): { columns: string[]; layout: CsvLayout } | null {
  const columns: string[] = [];
  const before = list.count;
  for (const cell of row.cells) {
    const name = CANONICAL_COLUMN.get(cell.trim().toLowerCase());
    if (name === undefined) {
      list.add({ reason: "unknown_column", line: row.line, field: cell, message: `unknown column "${cell}"` });
      columns.push(cell);
      continue;
    }
    if (columns.includes(name)) {
      list.add({ reason: "duplicate_column", line: row.line, field: name, message: `column "${name}" appears twice` });
    }
    columns.push(name);
  }
  const layout: CsvLayout = want ?? (columns.some((c) => TX_ONLY.has(c)) ? "transactions" : "profiles");
  const allowed: readonly string[] = layout === "transactions" ? TRANSACTION_FIELDS : PROFILE_FIELDS;
  const required: readonly string[] = layout === "transactions" ? TRANSACTION_FIELDS : ["subject"];
  for (const c of columns) {
    if (CANONICAL_COLUMN.has(c.toLowerCase()) && !allowed.includes(c)) {
      list.add({ reason: "unknown_column", line: row.line, field: c, message: `column "${c}" is not part of the ${layout} layout` });
    }
  }
  for (const r of required) {
    if (!columns.includes(r)) {
      list.add({ reason: "missing_column", line: row.line, field: r, message: `the ${layout} layout requires column "${r}"` });
    }
  }
  return list.count > before ? null : { columns, layout };
}
