/**
 * Reliability item 2 — crashes. The gateway runs in its own process over the embedded anvil node
 * and is SIGKILLed at seeded random moments while partners are being served; each kill is
 * followed by an audit of the log straight from its LevelDB files and a restart. Nothing that was
 * acknowledged may be lost or changed, nothing may be logged twice, the log must hash to its
 * recorded root, and after the last restart every entry must be anchored on the ledger with the
 * ledger's root equal to the local one (for every checkpoint ever anchored, not only the last).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { rootFromLeafHashes } from "../../core/merkle.js";
import { toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { logIdFor } from "../../gateway/runtime.js";
import { SEED, SIZES, recordFigures, rng } from "./config.js";
import { CATEGORIES, PURPOSE, jwt, lostReceipts, operatorToken, readLogFromDisk, ReceiptBook, setupCast, sleep, spawnGateway, vaultRecords, waitFor, type Cast, type DiskLog, type GatewayChild } from "./support.js";

const KILLS = Math.max(1, Math.round(SIZES.kills));
/** Anchoring often, so kills land before, during and after anchoring transactions. */
const GATEWAY_CONFIG = { anchorEveryMs: 250, anchorEveryEntries: 200, ledgerPollMs: 200, rateLimitMax: 1_000_000, authFailureLimit: 1_000_000 };
const WORKERS = 8;

interface Receipt {
  index: number;
  leafHash: string;
}

describe("reliability: SIGKILL the gateway under load", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-rel-crash-"));
  let net: Network;
  let cast: Cast;
  let gw: GatewayChild | undefined;

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    // a third of the (subject, partner) pairs have no consent: denials are logged and acknowledged too
    cast = await setupCast(net, { partners: 3, subjects: 24, consent: (s, p) => (s + p) % 3 !== 0 });
  });

  afterAll(async () => {
    await gw?.kill().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged entry across ${KILLS} SIGKILLs at random moments (seed ${SEED}), once each, and anchors them all`, async () => {
    // kill moments come from their own generator, so a seed repeats them whatever the load does
    const killRandom = rng(SEED);
    const random = rng(SEED ^ 0x5bd1e995);
    const acknowledged = new ReceiptBook();
    const counts = { requests: 0, errors5xx: 0, connectionErrors: 0, byStatus: {} as Record<number, number> };
    const killMoments: number[] = [];
    const perKill: { kill: number; logSize: number; acknowledged: number; lost: number; duplicates: number; rootOk: boolean; gaps: number }[] = [];
    let maxAnchorLagMs = 0;
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const note = (r: Receipt): void => acknowledged.set(r.index, r.leafHash);

    /** One partner request: a single subject (GET) or several (POST query); receipts of 2xx and of logged denials. */
    async function request(url: string, token: string): Promise<void> {
      const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
      let res: Response;
      if (random() < 0.5) {
        res = await fetch(`${url}/v1/data/${pick(cast.subjects).address}?purpose=${PURPOSE}&categories=${CATEGORIES.join(",")}`, { headers });
      } else {
        const subjects = [...new Set(Array.from({ length: 4 }, () => pick(cast.subjects).address))];
        res = await fetch(`${url}/v1/data/query`, { method: "POST", headers, body: JSON.stringify({ subjects, purpose: PURPOSE, categories: CATEGORIES }) });
      }
      const text = await res.text();
      counts.requests++;
      counts.byStatus[res.status] = (counts.byStatus[res.status] ?? 0) + 1;
      if (res.status >= 500) counts.errors5xx++;
      if (res.status === 200) {
        const body = JSON.parse(text) as { results?: { receipt: Receipt }[]; receipt?: Receipt };
        for (const r of body.results ?? [body as { receipt: Receipt }]) note(r.receipt);
      } else if (res.status === 403 && res.headers.get("x-custodia-receipt")) {
        note(JSON.parse(res.headers.get("x-custodia-receipt")!) as Receipt);
      }
    }

    async function audit(kill: number): Promise<DiskLog> {
      const disk = await readLogFromDisk(dataDir, "access");
      const { lost, examples } = lostReceipts(disk, acknowledged);
      perKill.push({ kill, logSize: disk.size, acknowledged: acknowledged.size, lost: lost + acknowledged.conflicts, duplicates: disk.duplicateRequestIds, rootOk: disk.computedRoot === disk.recordedRoot, gaps: disk.gaps });
      expect(examples, `after kill ${kill}: acknowledged entries missing or changed`).toEqual([]);
      expect(acknowledged.conflicts, `after kill ${kill}: an acknowledged index was acknowledged again for another entry`).toBe(0);
      expect(disk.duplicateRequestIds, `after kill ${kill}: a request logged twice`).toBe(0);
      expect(disk.gaps, `after kill ${kill}: entries missing below the recorded size`).toBe(0);
      expect(disk.computedRoot, `after kill ${kill}: the log does not hash to its recorded root`).toBe(disk.recordedRoot);
      return disk;
    }

    for (let round = 0; round < KILLS; round++) {
      gw = await spawnGateway(dataDir, net.rpcUrl, GATEWAY_CONFIG);
      if (round === 0) {
        const ingest = await fetch(`${gw.url}/v1/vault/records`, { method: "POST", headers: { authorization: `Bearer ${await operatorToken(net)}`, "content-type": "application/json" }, body: JSON.stringify(vaultRecords(cast.subjects)) });
        expect(ingest.status, await ingest.text()).toBe(200);
      }
      const tokens = await Promise.all(cast.partners.map((p) => jwt(p, cast.aud)));
      const url = gw.url;
      let stop = false;
      const before = counts.requests;
      const worker = async (): Promise<void> => {
        while (!stop) {
          const k = Math.floor(random() * cast.partners.length);
          try {
            await request(url, tokens[k]!);
          } catch {
            // the process died under this request: unacknowledged, it may or may not be logged
            counts.connectionErrors++;
          }
        }
      };
      const workers = Array.from({ length: WORKERS }, worker);
      const moment = Math.round(SIZES.killMinMs + killRandom() * (SIZES.killMaxMs - SIZES.killMinMs));
      killMoments.push(moment);
      // The moment counts from the first answer: a restarted gateway's first request (cold code,
      // a DID resolution, a ledger sync, an fsync) can take longer than the shortest moment on a
      // loaded machine, and a kill before any answer would test nothing.
      const firstBy = Date.now() + 30_000;
      while (counts.requests === before && Date.now() < firstBy) await sleep(5);
      await sleep(moment);
      const s = await gw.stats().catch(() => null);
      if (s) maxAnchorLagMs = Math.max(maxAnchorLagMs, s.anchorers.access?.maxAnchorLagMs ?? 0, s.anchorers.decisions?.maxAnchorLagMs ?? 0);
      await gw.kill();
      stop = true;
      await Promise.all(workers);
      expect(counts.requests - before, `round ${round}: no request was answered before the kill`).toBeGreaterThan(0);
      await audit(round + 1);
    }

    // The last restart: the inherited tail gets anchored, and the ledger agrees with the log.
    gw = await spawnGateway(dataDir, net.rpcUrl, GATEWAY_CONFIG);
    const logId = logIdFor(net.deployment.chainId, net.deployment.custodia, net.gatewayWallet.address, "access");
    const size = (await gw.stats()).logs["access"]!;
    const anchored = await waitFor(async () => ((await net.admin.latestCheckpoint(logId))?.treeSize ?? 0) >= size, 30_000, 200);
    const final = await gw.stats();
    maxAnchorLagMs = Math.max(maxAnchorLagMs, final.anchorers.access?.maxAnchorLagMs ?? 0, final.anchorers.decisions?.maxAnchorLagMs ?? 0);
    await gw.stop();
    gw = undefined;
    const disk = await audit(KILLS + 1);
    const checkpoints = await net.admin.checkpoints(logId);
    const leafViews = Array.from({ length: disk.size }, (_, i) => disk.leaves.subarray(i * 32, i * 32 + 32));
    const wrongAnchors = checkpoints.filter((cp) => cp.treeSize > disk.size || toHex0x(rootFromLeafHashes(leafViews, cp.treeSize)) !== cp.root.toLowerCase());
    const unanchored = disk.size - (checkpoints.at(-1)?.treeSize ?? 0);
    const lost = lostReceipts(disk, acknowledged).lost + acknowledged.conflicts;

    recordFigures({
      item: "crash",
      figures: { kills: KILLS, requests: counts.requests, errors5xx: counts.errors5xx, lostEntries: lost, duplicateEntries: disk.duplicateRequestIds, maxAnchorLagMs },
      details: { killMomentsMs: killMoments, acknowledged: acknowledged.size, logSize: disk.size, checkpoints: checkpoints.length, unanchored, wrongAnchors: wrongAnchors.length, connectionErrors: counts.connectionErrors, statuses: counts.byStatus, perKill },
    });

    expect(anchored, `the log (${size} entries) was not fully anchored within 30 s`).toBe(true);
    expect(unanchored).toBe(0);
    expect(wrongAnchors.map((cp) => `size ${cp.treeSize}: ledger ${cp.root}`)).toEqual([]);
    expect(await net.admin.checkpointRoot(logId, disk.size)).toBe(disk.computedRoot);
    expect(lost).toBe(0);
    expect(counts.errors5xx, JSON.stringify(counts.byStatus)).toBe(0);
    expect(acknowledged.size).toBeGreaterThan(0);
    expect(disk.size).toBeGreaterThanOrEqual(acknowledged.size);
  }, 120_000 + KILLS * 30_000);
});
