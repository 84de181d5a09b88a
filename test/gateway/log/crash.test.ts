import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import { Level } from "level";
import { afterEach, describe, expect, it } from "vitest";
import { canonicalBytes } from "../../../core/jcs.js";
import { toHex0x } from "../../../core/hash.js";
import { leafHash, rootFromLeafHashes } from "../../../core/merkle.js";
import { DurableLog } from "../../../gateway/log/durable-log.js";
import { randomLogId, tempDb, type TempDb } from "./helpers.js";

const FIXTURE = fileURLToPath(new URL("./fixtures/crash-writer.ts", import.meta.url));
const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

/** Runs the writer until it has printed `atLeast` receipts, then SIGKILLs it; returns index -> leafHash. */
function runAndKill(dir: string, logId: string, atLeast: number): Promise<{ printed: Map<number, string>; openedAt: number }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", FIXTURE, dir, logId], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
    const printed = new Map<number, string>();
    let openedAt = -1;
    let buf = "";
    let err = "";
    let killed = false;
    child.stdout.setEncoding("utf8");
    child.stdout.on("data", (chunk: string) => {
      buf += chunk;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        const [a, b] = line.split(" ");
        if (a === "open") openedAt = Number(b);
        else printed.set(Number(a), b!);
      }
      if (!killed && printed.size >= atLeast) {
        killed = true;
        child.kill("SIGKILL");
      }
    });
    child.stderr.on("data", (c: Buffer) => (err += c.toString()));
    child.on("error", reject);
    child.on("exit", (code, signal) => {
      // A partial last line is simply not counted: it was not completely printed.
      if (signal === "SIGKILL" && killed) resolve({ printed, openedAt });
      else reject(new Error(`writer exited with ${code ?? signal}: ${err.slice(0, 2000)}`));
    });
  });
}

let t: TempDb | undefined;
afterEach(async () => {
  await t?.dispose();
  t = undefined;
});

describe("DurableLog: crash safety", () => {
  it("every receipt printed before SIGKILL survives with its leaf hash, and the log verifies", async () => {
    t = await tempDb("custodia-crash-");
    await t.db.close();
    const logId = randomLogId();

    const all = new Map<number, string>();
    let sizeBefore = 0;
    // Twice: the second writer resumes the log the first one left behind when it was killed.
    for (const target of [3000, 1500]) {
      const { printed, openedAt } = await runAndKill(t.dir, logId, target);
      expect(openedAt).toBe(sizeBefore);
      expect(Math.min(...printed.keys())).toBeGreaterThanOrEqual(sizeBefore);
      for (const [i, h] of printed) all.set(i, h);

      const db = new Level<string, Uint8Array>(t.dir, { valueEncoding: "view" });
      await db.open();
      try {
        const log = await DurableLog.open(db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" }), { logId, name: "access" });
        const maxPrinted = Math.max(...printed.keys());
        expect(log.size).toBeGreaterThan(maxPrinted);
        for (const [i, h] of all) expect(log.leafHash(i)).toBe(h);
        // Recompute the tree from the stored entries themselves.
        const leaves: Uint8Array[] = [];
        for (let start = 0; start < log.size; start += 10_000) {
          for (const e of await log.getEntries(start, Math.min(log.size, start + 10_000))) leaves.push(leafHash(canonicalBytes(e.entry)));
        }
        expect(leaves.length).toBe(log.size);
        expect(toHex0x(rootFromLeafHashes(leaves))).toBe(log.root());
        sizeBefore = log.size;
        await log.close();
      } finally {
        await db.close();
      }
    }
  });
});
