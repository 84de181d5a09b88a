/**
 * Reliability item 1 — load. The gateway runs in its own process (so its RSS is its own) over the
 * embedded anvil node, with several partners and many subjects. A short unthrottled autocannon
 * burst measures its maximum for this workload; the soak then runs at 80 % of that rate
 * (autocannon `overallRate`) for the configured time while customers grant and revoke consents
 * through the gateway underneath. Afterwards: zero 5xx, memory flat (RSS and post-GC heap sampled
 * over IPC, start/end and slope), anchoring kept up (largest entry-to-anchor lag from the
 * gateway's anchorer), and every acknowledged entry in the log on disk, once.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type autocannon from "autocannon";
import { purposeId, type Address } from "../../core/domain.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { DEFAULT_GATEWAY_CONFIG } from "../../gateway/config.js";
import { logIdFor } from "../../gateway/runtime.js";
import { MODE, SEED, SIZES, recordFigures, rng } from "./config.js";
import { CATEGORIES, PURPOSE, ReceiptBook, consentSubmission, jwt, lostReceipts, operatorToken, readLogFromDisk, runAutocannon, setupCast, sleep, spawnGateway, vaultRecords, waitFor, type Cast, type ChildStats, type GatewayChild } from "./support.js";

/** Production anchoring (1,000 entries / 10 s); limits high enough that no 429 shapes the load. */
const GATEWAY_CONFIG = { rateLimitMax: 1_000_000_000, authFailureLimit: 1_000_000_000 };
const MB = 1024 * 1024;

/** Least-squares slope of y over x. */
function slope(points: readonly { x: number; y: number }[]): number {
  if (points.length < 2) return 0;
  const n = points.length;
  const mx = points.reduce((s, p) => s + p.x, 0) / n;
  const my = points.reduce((s, p) => s + p.y, 0) / n;
  const num = points.reduce((s, p) => s + (p.x - mx) * (p.y - my), 0);
  const den = points.reduce((s, p) => s + (p.x - mx) ** 2, 0);
  return den === 0 ? 0 : num / den;
}

/** How long the ledger node takes to answer eth_blockNumber, ms (null: no answer within 10 s). */
async function ledgerProbe(rpcUrl: string): Promise<number | null> {
  const t = Date.now();
  try {
    await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }), signal: AbortSignal.timeout(10_000) }).then((r) => r.json());
    return Date.now() - t;
  } catch {
    return null;
  }
}

/** Resident memory of a process, bytes (Linux /proc; null elsewhere). */
function rssOf(pid: number | undefined): number | null {
  if (pid === undefined) return null;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) * 1024 : null;
  } catch {
    return null;
  }
}

describe("reliability: soak at 80 % of the measured maximum", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-rel-soak-"));
  let net: Network;
  let cast: Cast;
  let gw: GatewayChild | undefined;

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    // two thirds of the (subject, partner) pairs start with consent; the churn below changes them
    cast = await setupCast(net, { partners: SIZES.soakPartners, subjects: SIZES.soakSubjects, consent: (s, p) => (s + p) % 3 !== 0 });
    gw = await spawnGateway(dataDir, net.rpcUrl, GATEWAY_CONFIG);
    const ingest = await fetch(`${gw.url}/v1/vault/records`, { method: "POST", headers: { authorization: `Bearer ${await operatorToken(net)}`, "content-type": "application/json" }, body: JSON.stringify(vaultRecords(cast.subjects)) });
    expect(ingest.status, await ingest.text()).toBe(200);
  });

  afterAll(async () => {
    await gw?.kill().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`serves ${SIZES.soakSeconds} s at ${Math.round(SIZES.soakLoad * 100)} % of its maximum with zero 5xx, flat memory, anchoring keeping up and nothing lost`, async () => {
    const child = gw!;
    const random = rng(SEED);
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
    const acknowledged = new ReceiptBook();
    const unreadable = { bodies: 0 };

    // Partner session tokens, renewed every minute (a token lives at most 300 s).
    let tokens = await Promise.all(cast.partners.map((p) => jwt(p, cast.aud, { lifetimeSec: 280 })));
    const renew = setInterval(() => void Promise.all(cast.partners.map((p) => jwt(p, cast.aud, { lifetimeSec: 280 }))).then((t) => (tokens = t)), 60_000);

    const note = (r: { index: number; leafHash: string } | undefined): void => {
      if (r && typeof r.index === "number") acknowledged.set(r.index, r.leafHash);
      else unreadable.bodies++;
    };
    const requests: autocannon.Request[] = [
      {
        // 70 %: one subject's data; 30 %: a query for 5 subjects. Any partner, any subject.
        setupRequest: (req) => {
          const k = Math.floor(random() * cast.partners.length);
          const headers = { authorization: `Bearer ${tokens[k]!}`, "content-type": "application/json" };
          if (random() < 0.7) return { ...req, method: "GET", path: `/v1/data/${pick(cast.subjects).address}?purpose=${PURPOSE}&categories=${CATEGORIES.join(",")}`, headers, body: undefined };
          const subjects = [...new Set(Array.from({ length: 5 }, () => pick(cast.subjects).address))];
          return { ...req, method: "POST", path: "/v1/data/query", headers, body: JSON.stringify({ subjects, purpose: PURPOSE, categories: CATEGORIES }) };
        },
        onResponse: (status, body, _context, headers) => {
          try {
            if (status === 200) {
              const b = JSON.parse(body) as { results?: { receipt: { index: number; leafHash: string } }[]; receipt?: { index: number; leafHash: string } };
              if (b.results) for (const r of b.results) note(r.receipt);
              else note(b.receipt);
            } else if (status === 403) {
              const h = (headers as Record<string, string | undefined> | undefined)?.["x-custodia-receipt"];
              if (h) note(JSON.parse(h) as { index: number; leafHash: string });
            }
          } catch {
            unreadable.bodies++;
          }
        },
      },
    ];
    const statusCounts = (r: autocannon.Result): Record<string, number> => Object.fromEntries(Object.entries(r.statusCodeStats ?? {}).map(([k, v]) => [k, (v as { count: number }).count]));

    // 1. the maximum for this workload: an unthrottled burst (it also warms the gateway up)
    const burst = await runAutocannon({ url: child.url, connections: SIZES.soakConnections, duration: SIZES.soakMeasureSeconds, requests });
    const maxRps = burst.requests.total / SIZES.soakMeasureSeconds;
    const targetRate = Math.max(1, Math.floor(maxRps * SIZES.soakLoad));

    // 2. the soak, with consents changing underneath and the gateway's memory sampled
    const startStats = await child.stats();
    const t0 = Date.now();
    const samples: { t: number; rss: number; heap: number; logSize: number; unanchored: number; ledgerMs: number | null; nodeRss: number | null }[] = [];
    const sample = async (s: ChildStats): Promise<void> => {
      samples.push({ t: (Date.now() - t0) / 1000, rss: s.rss, heap: s.heapUsed, logSize: s.logs["access"] ?? 0, unanchored: s.anchorers.access?.unanchored ?? 0, ledgerMs: await ledgerProbe(net.rpcUrl), nodeRss: rssOf(net.node?.pid) });
    };
    await sample(startStats);
    let soaking = true;
    const sampler = (async () => {
      while (soaking) {
        await sleep(SIZES.soakSampleSeconds * 1000);
        if (soaking) await sample(await child.stats());
      }
    })();
    const churn = { requests: 0, ok: 0, errors5xx: 0, other: {} as Record<string, number>, ledgerReadErrors: 0 };
    const churner = (async () => {
      const churnRandom = rng(SEED ^ 0x2545f491);
      while (soaking) {
        const subject = cast.subjects[Math.floor(churnRandom() * cast.subjects.length)]!;
        const partner = cast.partners[Math.floor(churnRandom() * cast.partners.length)]!;
        let body: Record<string, unknown>;
        try {
          // the test's own ledger reads (current state, nonce): not the gateway's, counted apart
          const c = await net.admin.getConsent(subject.address as Address, partner.address as Address, purposeId(PURPOSE));
          body = await consentSubmission(cast, subject, partner, c.grantedAt > 0 && c.revokedAt === 0 ? "revoke" : "grant");
        } catch {
          churn.ledgerReadErrors++;
          await sleep(500);
          continue;
        }
        const res = await fetch(`${child.url}/v1/consents`, { method: "POST", headers: { authorization: `Bearer ${await jwt(subject, cast.aud)}`, "content-type": "application/json" }, body: JSON.stringify(body) });
        const text = await res.text();
        churn.requests++;
        if (res.status === 200) churn.ok++;
        else {
          if (res.status >= 500) churn.errors5xx++;
          const key = `${res.status} ${text.slice(0, 120)}`;
          churn.other[key] = (churn.other[key] ?? 0) + 1;
        }
        await sleep(150);
      }
    })();
    const soak = await runAutocannon({ url: child.url, connections: SIZES.soakConnections, duration: SIZES.soakSeconds, overallRate: targetRate, requests });
    const soakSeconds = (Date.now() - t0) / 1000;
    soaking = false;
    await Promise.all([sampler, churner]);
    clearInterval(renew);
    const endStats = await child.stats();
    await sample(endStats);

    // 3. anchoring catches up, and the log on disk holds every acknowledged entry once
    const logId = logIdFor(net.deployment.chainId, net.deployment.custodia, net.gatewayWallet.address, "access");
    const sizeAtEnd = endStats.logs["access"]!;
    const caughtUp = await waitFor(async () => ((await net.admin.latestCheckpoint(logId))?.treeSize ?? 0) >= sizeAtEnd, DEFAULT_GATEWAY_CONFIG.anchorEveryMs + 20_000, 250);
    const anchorStats = (await child.stats()).anchorers;
    const maxAnchorLagMs = Math.max(anchorStats.access?.maxAnchorLagMs ?? 0, anchorStats.decisions?.maxAnchorLagMs ?? 0);
    await child.stop();
    gw = undefined;
    const disk = await readLogFromDisk(dataDir, "access");
    const lost = lostReceipts(disk, acknowledged);

    // memory: after the burst (warm) to the end, and per entry the log grew by
    const grown = Math.max(1, endStats.logs["access"]! - startStats.logs["access"]!);
    const pts = samples.map((s) => ({ x: s.t / 60, y: s.rss / MB }));
    const heapPts = samples.map((s) => ({ x: s.t / 60, y: s.heap / MB }));
    const errors5xx = (burst["5xx"] ?? 0) + (soak["5xx"] ?? 0) + churn.errors5xx;
    const requestsTotal = burst.requests.total + soak.requests.total + churn.requests;
    const details = {
      maxRps: Math.round(maxRps),
      targetRps: targetRate,
      achievedRps: Math.round(soak.requests.total / SIZES.soakSeconds),
      latencyP50Ms: soak.latency.p50,
      latencyP99Ms: soak.latency.p99,
      connections: SIZES.soakConnections,
      partners: cast.partners.length,
      subjects: cast.subjects.length,
      statuses: { burst: statusCounts(burst), soak: statusCounts(soak) },
      socketErrors: burst.errors + soak.errors,
      timeouts: burst.timeouts + soak.timeouts,
      consentChanges: churn.ok,
      consentChangeFailures: churn.other,
      churnLedgerReadErrors: churn.ledgerReadErrors,
      ledgerProbeMaxMs: Math.max(...samples.map((x) => x.ledgerMs ?? 10_000)),
      nodeRssStartMB: samples[0]?.nodeRss != null ? Math.round(samples[0].nodeRss / MB) : null,
      nodeRssEndMB: samples.at(-1)?.nodeRss != null ? Math.round(samples.at(-1)!.nodeRss! / MB) : null,
      rssStartMB: Math.round(startStats.rss / MB),
      rssEndMB: Math.round(endStats.rss / MB),
      rssSlopeMBPerMin: Number(slope(pts).toFixed(2)),
      heapStartMB: Math.round(startStats.heapUsed / MB),
      heapEndMB: Math.round(endStats.heapUsed / MB),
      heapSlopeMBPerMin: Number(slope(heapPts).toFixed(2)),
      heapBytesPerEntry: Math.round((endStats.heapUsed - startStats.heapUsed) / grown),
      logEntries: disk.size,
      acknowledged: acknowledged.size,
      unreadableBodies: unreadable.bodies,
      maxUnanchored: Math.max(...samples.map((s) => s.unanchored)),
      anchoredWithinMs: caughtUp ? "yes" : "no",
      // [seconds, gateway RSS MB, gateway heap MB, log entries, unanchored, ledger answer ms, node RSS MB]
      timeline: samples.map((x) => [Math.round(x.t), Math.round(x.rss / MB), Math.round(x.heap / MB), x.logSize, x.unanchored, x.ledgerMs, x.nodeRss === null ? null : Math.round(x.nodeRss / MB)]),
    };
    recordFigures({
      item: "soak",
      figures: { soakSeconds: Math.round(soakSeconds), requests: requestsTotal, errors5xx, lostEntries: lost.lost + acknowledged.conflicts, duplicateEntries: disk.duplicateRequestIds, maxAnchorLagMs },
      details,
    });

    expect(errors5xx, JSON.stringify(details.statuses)).toBe(0);
    expect(details.socketErrors + details.timeouts, "connections dropped or timed out").toBe(0);
    expect(soak["4xx"] > 0 ? Object.keys(statusCounts(soak)).filter((s) => s !== "200" && s !== "403") : [], "only allowed and denied answers (no 429: the limits are set high)").toEqual([]);
    expect(churn.ok, JSON.stringify(churn.other)).toBe(churn.requests);
    expect(churn.errors5xx).toBe(0);
    expect(churn.ok).toBeGreaterThan(0);
    expect(soak.requests.total).toBeGreaterThan(0);
    // the load held its rate (autocannon sends at most the rate; a falling-behind gateway shows
    // here). Only in the full run: the short one shares 2 cores with the rest of `npm test`, whose
    // files start and stop under it.
    if (MODE === "full") expect(details.achievedRps).toBeGreaterThanOrEqual(Math.floor(targetRate * 0.8));
    expect(unreadable.bodies).toBe(0);
    expect(lost.examples).toEqual([]);
    expect(acknowledged.conflicts).toBe(0);
    expect(disk.duplicateRequestIds).toBe(0);
    expect(disk.computedRoot).toBe(disk.recordedRoot);
    expect(disk.size).toBeGreaterThanOrEqual(acknowledged.size);
    expect(caughtUp, "the log was not anchored up to its size after the load stopped").toBe(true);
    // anchoring keeps up: no entry waits much longer than the anchoring period
    expect(maxAnchorLagMs).toBeLessThanOrEqual(DEFAULT_GATEWAY_CONFIG.anchorEveryMs + 10_000);
    // memory flat: the live heap grows by no more than the in-memory Merkle tree's share per
    // entry (two 32-byte hashes) with generous slack; RSS stays within a bound of its start
    expect(details.heapBytesPerEntry).toBeLessThanOrEqual(512);
    expect(endStats.rss).toBeLessThanOrEqual(startStats.rss * 1.5 + 64 * MB + grown * 512);
  }, SIZES.soakSeconds * 1000 + SIZES.soakMeasureSeconds * 1000 + 180_000);
});
