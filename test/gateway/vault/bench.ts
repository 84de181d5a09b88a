/**
 * Vault ingest throughput: `npx tsx test/gateway/vault/bench.ts [records] [subjects]`.
 * Builds a transactions CSV (default 100 000 rows over 1 000 subjects), then times parsing,
 * a first ingest into a fresh LevelDB, a re-ingest of the same rows (merge, nothing changes)
 * and reading every subject back. Not a test; prints one line per phase.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { getAddress } from "ethers";
import { Level } from "level";
import { Vault, parseCsvRecords } from "../../../gateway/vault/index.js";

async function main(): Promise<void> {
  const total = Number(process.argv[2] ?? 100_000);
  const subjectCount = Number(process.argv[3] ?? 1_000);
  const subjects = Array.from({ length: subjectCount }, () => getAddress(`0x${randomBytes(20).toString("hex")}`));
  const channels = ["online", "store", "app", "phone"];
  const lines = ["subject,id,at,amount,currency,category,channel"];
  for (let i = 0; i < total; i++) {
    const s = subjects[i % subjectCount]!;
    lines.push(`${s},tx-${i},${1_700_000_000 + i},${(i % 9973) / 100},EUR,"Groceries, ""fresh""",${channels[i % 4]}`);
  }
  const csv = lines.join("\r\n");

  const dir = mkdtempSync(join(tmpdir(), "custodia-vault-bench-"));
  const db = new Level(dir);
  try {
    const vault = await Vault.open(db.sublevel("vault"), { masterKey: new Uint8Array(randomBytes(32)) });
    const rate = (n: number, ms: number): string => `${Math.round((n / ms) * 1000).toLocaleString("en")} records/s`;

    let t = performance.now();
    const records = parseCsvRecords(csv);
    const parseMs = performance.now() - t;
    console.log(`parse CSV    ${records.length} rows (${(csv.length / 1e6).toFixed(1)} MB) in ${parseMs.toFixed(0)} ms: ${rate(records.length, parseMs)}`);

    t = performance.now();
    await vault.ingest(records);
    const ingestMs = performance.now() - t;
    console.log(`ingest       ${records.length} records, ${subjectCount} subjects in ${ingestMs.toFixed(0)} ms: ${rate(records.length, ingestMs)}`);

    t = performance.now();
    await vault.ingest(records);
    const reMs = performance.now() - t;
    console.log(`re-ingest    ${records.length} unchanged records in ${reMs.toFixed(0)} ms: ${rate(records.length, reMs)}`);

    t = performance.now();
    let n = 0;
    for (const s of subjects) n += (await vault.read(s)).transactions.length;
    const readMs = performance.now() - t;
    console.log(`read all     ${n} records in ${readMs.toFixed(0)} ms: ${rate(n, readMs)}`);
    console.log(`end to end   parse + first ingest: ${rate(records.length, parseMs + ingestMs)}`);
    await vault.close();
  } finally {
    await db.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
