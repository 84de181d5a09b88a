import { describe, expect, it } from "vitest";
import { parseCsv, parseProfilesCsv, parseTransactionsCsv } from "../../analytics/index.js";
import { expectReason } from "./helpers.js";

describe("CSV import", () => {
  it("parses quoted fields, escaped quotes, CRLF, embedded newlines and a BOM", () => {
    const recs = parseCsv('\uFEFFa,b,c\r\n1,"x, ""y""",3\r\n\r\n4,"multi\nline",6\n');
    expect(recs).toEqual([
      { line: 1, fields: ["a", "b", "c"] },
      { line: 2, fields: ["1", 'x, "y"', "3"] },
      { line: 4, fields: ["4", "multi\nline", "6"] },
    ]);
  });

  it("reads transactions by header name in any order, with ISO or epoch times", () => {
    const csv = [
      "Amount,channel,SUBJECT,at,category,extra",
      '12.50,app,alice,1700000000,grocery,""',
      "3e1,store,bob,2024-01-02T03:04:05Z,\"home, garden\",x",
      "0,online,carol,2024-01-02,fashion,",
    ].join("\n");
    expect(parseTransactionsCsv(csv)).toEqual([
      { subject: "alice", at: 1_700_000_000, amount: 12.5, category: "grocery", channel: "app" },
      { subject: "bob", at: Date.UTC(2024, 0, 2, 3, 4, 5) / 1000, amount: 30, category: "home, garden", channel: "store" },
      { subject: "carol", at: Date.UTC(2024, 0, 2) / 1000, amount: 0, category: "fashion", channel: "online" },
    ]);
  });

  it("reads profiles with optional protected attributes", () => {
    const csv = "subject,joinedAt,ageBand,gender\nalice,1600000000,25-34,\nbob,1600000001,,male\n";
    expect(parseProfilesCsv(csv)).toEqual([
      { subject: "alice", joinedAt: 1_600_000_000, ageBand: "25-34" },
      { subject: "bob", joinedAt: 1_600_000_001, gender: "male" },
    ]);
  });

  it("reports bad rows with reasons and line numbers", () => {
    const head = "subject,at,amount,category,channel\n";
    const line = (text: string, reason: string, expected: number): void => {
      const e = expectReason(() => parseTransactionsCsv(text), reason);
      expect(e.details?.line).toBe(expected);
    };
    line(head + "a,1,2,c,app\na,1,oops,c,app\n", "CSV_BAD_NUMBER", 3);
    line(head + "a,1,2,c,app\n\na,1,1.2.3,c,app\n", "CSV_BAD_NUMBER", 4);
    line(head + "a,1,-2,c,app\n", "NEGATIVE_AMOUNT", 2);
    line(head + "a,1,2,c\n", "CSV_COLUMN_COUNT", 2);
    line(head + 'a,1,2,"multi\nline",app\nb,yesterday,2,c,app\n', "CSV_BAD_TIMESTAMP", 4);
    line(head + "a,1,2,,app\n", "CSV_EMPTY_FIELD", 2);
    line(head + 'a,1,2,"c,app\n', "CSV_UNTERMINATED_QUOTE", 2);
    line(head + 'a,1,2,"c"x,app\n', "CSV_BAD_QUOTE", 2);
    line(head + 'a,1,2,c"x,app\n', "CSV_BAD_QUOTE", 2);
    line("subject,at,amount,category\n", "CSV_MISSING_COLUMN", 1);
    line("subject,at,amount,category,channel,AT\n", "CSV_DUPLICATE_COLUMN", 1);
    expectReason(() => parseTransactionsCsv(""), "CSV_EMPTY");
    expectReason(() => parseProfilesCsv("subject,joinedAt\nx,NaN\n"), "CSV_BAD_TIMESTAMP");
    expectReason(() => parseTransactionsCsv(head + "a,1,Infinity,c,app\n"), "CSV_BAD_NUMBER");
  });
});
