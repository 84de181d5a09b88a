/**
 * fast-check arbitraries of hostile input, shared by the HTTP and the command-line fuzzers:
 * strings of any UTF-16 code units (lone surrogates, NUL, bidi controls), numbers at and past
 * every limit, truncated and mutated DIDs, JSON text that is not quite JSON, and values derived
 * from a JSON Schema (the gateway's OpenAPI document) that are valid, or valid but for one part.
 */
import fc from "fast-check";

/** Any single UTF-16 code unit, NUL and lone surrogates included. */
const codeUnit = fc.integer({ min: 0, max: 0xffff }).map((c) => String.fromCharCode(c));

/** Strings chosen to hurt: empty, control characters, lone surrogates, RTL override, injections, lookalikes. */
export const NASTY_STRINGS: readonly string[] = [
  "",
  " ",
  "\u0000",
  "a\u0000b",
  "\ud800",
  "\udfff",
  "\udc00\ud800",
  "\ufeff",
  "\u202eabc",
  "\u0301",
  "ℌ𝔢𝔩𝔩𝔬",
  "🚀👩‍👩‍👧",
  "İı",
  "%00",
  "%",
  "%zz",
  "%2e%2e%2f",
  "../../../../etc/passwd",
  "null",
  "undefined",
  "true",
  "NaN",
  "Infinity",
  "-0",
  "1e308",
  "1e400",
  "9007199254740993",
  "-9007199254740993",
  "0x",
  `0x${"g".repeat(40)}`,
  `0x${"0".repeat(40)}`,
  `0X${"A".repeat(40)}`,
  `0x${"ab".repeat(20)}`,
  `0x${"AB".repeat(20)}`,
  `0x${"1".repeat(64)}`,
  `0x${"f".repeat(130)}`,
  "' OR 1=1 --",
  "<script>alert(1)</script>",
  "${jndi:ldap://x/a}",
  "{{7*7}}",
  "__proto__",
  "constructor",
  "prototype",
  "did:",
  "did:ethr:",
  "did:ethr:0x7a69:",
  "did:ethr:0x7a69:0x1234",
  `did:ethr:0x7a69:0x${"z".repeat(40)}`,
  `did:ethr:0xffffffffffffffffffff:0x${"1".repeat(40)}`,
  "did:key:",
  "did:key:z",
  "did:key:zzzz",
  `did:key:z${"1".repeat(200)}`,
  "did:web:evil.example",
  "did:ethr:0x7a69:0x\u0000",
  "profiling",
  "profiling,",
  ",",
  "transactions,transactions",
  "TRANSACTIONS",
  "x".repeat(1_000),
];

/** A string of any code units, or a nasty one, or a long one. */
export const hostileString: fc.Arbitrary<string> = fc.oneof(
  { weight: 4, arbitrary: fc.string({ unit: codeUnit, maxLength: 40 }) },
  { weight: 4, arbitrary: fc.constantFrom(...NASTY_STRINGS) },
  { weight: 2, arbitrary: fc.string({ unit: "binary", maxLength: 20 }) },
  { weight: 1, arbitrary: fc.integer({ min: 1_000, max: 100_000 }).map((n) => "a".repeat(n)) },
);

/** Numbers at and beyond every limit (as JSON can carry them: no NaN or Infinity). */
export const hostileNumber: fc.Arbitrary<number> = fc.oneof(
  fc.constantFrom(0, -0, -1, 1, 0.5, -0.5, 1e308, -1e308, 5e-324, 2 ** 31, 2 ** 31 - 1, 2 ** 32, 2 ** 32 - 1, 2 ** 40, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 255, 256, 65535, 65536, 12, 13),
  fc.double({ noNaN: true, noDefaultInfinity: true }),
  fc.integer(),
);

/** Numbers written as text, including forms JSON does not have or cannot hold. */
export const hostileNumberText: fc.Arbitrary<string> = fc.oneof(
  hostileNumber.map((n) => (Object.is(n, -0) ? "-0" : String(n))),
  fc.constantFrom("1e400", "-1e400", "NaN", "Infinity", "-Infinity", "01", "0x10", "1_000", "9007199254740993", "1.0", "1e2", " 1", "1 ", "+1", ".5", "5.", "", "٣", "１"),
);

/** Any JSON value, hostile strings and numbers included, to a small depth. */
export const hostileJson: fc.Arbitrary<unknown> = fc.letrec<{ v: unknown }>((tie) => ({
  v: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    fc.constant(null),
    fc.boolean(),
    hostileNumber,
    hostileString,
    fc.array(tie("v"), { maxLength: 5 }),
    fc.dictionary(fc.oneof(hostileString, fc.constantFrom("__proto__", "constructor", "subjects", "purpose", "message", "action")), tie("v"), { maxKeys: 5 }),
  ),
})).v;

/** A JSON Schema as @fastify/swagger writes it into the OpenAPI document (the parts we read). */
export interface JsonSchema {
  type?: string | string[];
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  enum?: unknown[];
  const?: unknown;
  pattern?: string;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  items?: JsonSchema;
  minItems?: number;
  maxItems?: number;
  uniqueItems?: boolean;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
}

/** A value the schema accepts (lengths and counts kept small); anything JSON where it says nothing. */
export function fromSchema(schema: JsonSchema | undefined, depth = 0): fc.Arbitrary<unknown> {
  if (!schema || depth > 6) return hostileJson;
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives && alternatives.length > 0) return fc.oneof(...alternatives.map((s) => fromSchema(s, depth + 1)));
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum && schema.enum.length > 0) return fc.constantFrom(...schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case "string": {
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      const min = schema.minLength ?? 0;
      return fc.string({ minLength: min, maxLength: Math.max(min, Math.min(schema.maxLength ?? 24, 24)) });
    }
    case "integer": {
      const min = Math.max(schema.minimum ?? -(2 ** 31), Number.MIN_SAFE_INTEGER);
      const max = Math.min(schema.maximum ?? 2 ** 31, Number.MAX_SAFE_INTEGER);
      return fc.oneof(fc.constantFrom(min, max), fc.integer({ min: Math.max(min, -(2 ** 31)), max: Math.min(max, 2 ** 31 - 1) }));
    }
    case "number":
      return fc.double({ min: schema.minimum ?? -1e9, max: schema.maximum ?? 1e9, noNaN: true });
    case "boolean":
      return fc.boolean();
    case "null":
      return fc.constant(null);
    case "array": {
      const min = schema.minItems ?? 0;
      const max = Math.max(min, Math.min(schema.maxItems ?? 4, 4));
      const items = fromSchema(schema.items, depth + 1);
      return schema.uniqueItems ? fc.uniqueArray(items, { minLength: min, maxLength: max, selector: (v) => JSON.stringify(v) }) : fc.array(items, { minLength: min, maxLength: max });
    }
    case "object": {
      const props = schema.properties ?? {};
      const required = schema.required ?? [];
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [k, s] of Object.entries(props)) model[k] = fromSchema(s, depth + 1);
      return fc.record(model, { requiredKeys: required.filter((k) => k in props) });
    }
    default:
      return hostileJson;
  }
}

/** Where in a value to strike, and with what. */
interface Mutation {
  at: number;
  how: "replace" | "delete" | "extra" | "wrap" | "stringify" | "nest";
  value: unknown;
  key: string;
}

function nodes(v: unknown, out: { parent: Record<string, unknown> | unknown[]; key: string | number }[] = [], parent?: Record<string, unknown> | unknown[], key?: string | number): typeof out {
  if (parent !== undefined && key !== undefined) out.push({ parent, key });
  if (Array.isArray(v)) v.forEach((x, i) => nodes(x, out, v, i));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) nodes(x, out, v as Record<string, unknown>, k);
  return out;
}

/** Applies one mutation to a (copied) value: a part replaced, dropped, added, wrapped, stringified or nested deep. */
function mutate(value: unknown, m: Mutation): unknown {
  const root = { v: structuredClone(value) as unknown };
  const all = nodes(root.v, [], root as unknown as Record<string, unknown>, "v");
  const target = all[m.at % all.length]!;
  const holder = target.parent as Record<string | number, unknown>;
  const current = holder[target.key];
  switch (m.how) {
    case "replace":
      holder[target.key] = m.value;
      break;
    case "delete":
      if (Array.isArray(holder)) holder.splice(target.key as number, 1);
      else if (target.parent !== (root as unknown)) delete holder[target.key];
      else root.v = undefined;
      break;
    case "extra":
      if (current && typeof current === "object" && !Array.isArray(current)) (current as Record<string, unknown>)[m.key] = m.value;
      else if (Array.isArray(current)) current.push(m.value);
      else holder[target.key] = { [m.key]: m.value };
      break;
    case "wrap":
      holder[target.key] = [current];
      break;
    case "stringify":
      holder[target.key] = typeof current === "string" ? Number(current) : JSON.stringify(current);
      break;
    case "nest": {
      let deep: unknown = current;
      for (let i = 0; i < 64; i++) deep = [deep];
      holder[target.key] = deep;
      break;
    }
  }
  return root.v;
}

/** Values for a schema: mostly valid-but-for-one-part, some fully valid, some anything at all. */
export function schemaValues(schema: JsonSchema | undefined): fc.Arbitrary<unknown> {
  const valid = fromSchema(schema);
  const mutation: fc.Arbitrary<Mutation> = fc.record({
    at: fc.nat(),
    how: fc.constantFrom("replace", "replace", "replace", "delete", "extra", "wrap", "stringify", "nest"),
    value: fc.oneof(hostileJson, hostileNumber, hostileString),
    key: fc.oneof(hostileString, fc.constantFrom("__proto__", "constructor", "extra")),
  });
  return fc.oneof(
    { weight: 3, arbitrary: valid },
    { weight: 5, arbitrary: fc.tuple(valid, mutation).map(([v, m]) => mutate(v, m)) },
    { weight: 2, arbitrary: hostileJson },
  );
}

/** JSON text that breaks parsers: truncated, deeply nested, duplicated keys, numbers out of range, bad escapes. */
export function brokenJsonText(valid: fc.Arbitrary<unknown>): fc.Arbitrary<string> {
  return fc.oneof(
    fc.tuple(valid, fc.nat()).map(([v, n]) => {
      const t = JSON.stringify(v) ?? "";
      return t.slice(0, t.length === 0 ? 0 : n % t.length);
    }),
    fc.integer({ min: 100, max: 200_000 }).map((n) => "[".repeat(n) + "]".repeat(n)),
    fc.integer({ min: 100, max: 100_000 }).map((n) => '{"a":'.repeat(n) + "1" + "}".repeat(n)),
    fc.constantFrom(
      '{"purpose":"profiling","purpose":"research"}',
      '{"subjects":["0x0000000000000000000000000000000000000000"],"subjects":7}',
      '{"a":1e400}',
      '{"a":-0}',
      '{"a":"\\ud800"}',
      '{"a":"\\u0000"}',
      '{"a":"\\x41"}',
      '{"a":01}',
      "{'a':1}",
      '{"__proto__":{"polluted":true}}',
      '{"constructor":{"prototype":{"polluted":true}}}',
      "[]",
      "null",
      '""',
      "0",
      "true",
      "\ufeff{}",
      "{}garbage",
      "",
    ),
    hostileString,
  );
}
