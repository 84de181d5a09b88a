/**
 * Reliability item 3 — ledger faults. A gateway (in-process, real LevelDB, following the node's
 * pushed new-block announcements as the embedded network does) over the embedded anvil node, with
 * partners querying continuously. The node is stopped under load and restarted on its state
 * directory; later it is frozen (SIGSTOP: connections accepted, nothing answered, as in a network
 * partition that drops packets) and thawed. While the ledger is away the gateway must turn to 503
 * (LEDGER_UNAVAILABLE or LEDGER_STALE) within its staleness bound and grant nothing on a view
 * older than that bound; when the node is back it catches up and serves again, and the restarted
 * node still holds what it had (consents granted before the stop, a revocation mined just before).
 *
 * Stale grants counted here (RELIABILITY.md has the definitions): an allowed decision for a
 * request sent more than staleAfterMs after the node went away and answered before it was back;
 * and an allowed decision made at a block older than the ledger head read right before the request
 * was sent (recorded as a figure; the race test covers it).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { purposeId, type Address } from "../../core/domain.js";
import { startEmbeddedNode, type EmbeddedNode } from "../../contracts/embedded-node.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../../gateway/runtime.js";
import { SEED, recordFigures, rng } from "./config.js";
import { CATEGORIES, PURPOSE, grantOnLedger, jwt, operatorToken, revokeOnLedger, setupCast, sleep, vaultRecords, waitFor, type Cast } from "./support.js";

const STALE_AFTER_MS = 1_500;
/** Scheduling slack on 2 shared cores, on top of the staleness bound. */
const MARGIN_MS = 1_500;
/** The RPC timeout of the gateway's JSON-RPC provider (contracts/evm-ledger.ts jsonRpcProvider). */
const RPC_TIMEOUT_MS = 5_000;
const WORKERS = 6;

interface Observation {
  sentAt: number;
  doneAt: number;
  /** Ledger head read right before sending; null when the node did not answer within 250 ms. */
  headBefore: number | null;
  status: number;
  code: string | undefined;
  allowed: { block: number; hasData: boolean }[];
  denied: number;
  freshToken: boolean;
}

describe("reliability: the ledger node stopped and frozen under load", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-rel-faults-"));
  let net: Network;
  let cast: Cast;
  let rt: GatewayRuntime;
  let node: EmbeddedNode | undefined;
  /** Longest answer to a request sent while the node was frozen, and the first 503, measured by the first test. */
  let slowestWhileFrozenMs: number | undefined;
  let first503WhileFrozenMs: number | null | undefined;

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    node = net.node;
    cast = await setupCast(net, { partners: 2, subjects: 10, consent: () => true, relayers: 2 });
    rt = await createGatewayRuntime({
      dataDir,
      ...networkRuntimeOptions(net),
      config: { port: 0, staleAfterMs: STALE_AFTER_MS, ledgerPollMs: 100, anchorEveryMs: 300, rateLimitMax: 1_000_000, authFailureLimit: 1_000_000 },
    });
    const ingest = await rt.app.inject({ method: "POST", url: "/v1/vault/records", headers: { authorization: `Bearer ${await operatorToken(net)}` }, payload: vaultRecords(cast.subjects) as never });
    expect(ingest.statusCode, ingest.body).toBe(200);
  });

  afterAll(async () => {
    if (node) {
      try {
        process.kill(node.pid, "SIGCONT");
      } catch {
        // not running
      }
    }
    // the gateway first, while its node still answers: an anchor in flight then completes instead
    // of waiting out its transaction's timeouts against a stopped node
    await rt?.close().catch(() => undefined);
    await node?.stop().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("turns to 503 within its staleness bound, grants nothing on a view older than it, and serves again on the restarted node's kept state", async () => {
    const random = rng(SEED);
    const rpcUrl = net.rpcUrl;
    const port = node!.port;
    const tokens = await Promise.all(cast.partners.map((p) => jwt(p, cast.aud)));
    const observations: Observation[] = [];
    const pushingAtStartOfTest = rt.deps.view.pushing;

    /** eth_blockNumber with a short deadline: a dead or frozen node gives null. */
    async function headNow(): Promise<number | null> {
      try {
        const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }), signal: AbortSignal.timeout(250) });
        return Number(((await res.json()) as { result: string }).result);
      } catch {
        return null;
      }
    }

    async function query(): Promise<void> {
      const k = Math.floor(random() * cast.partners.length);
      // mostly session tokens verified while the ledger was up; some fresh ones (their DID must be resolved)
      const freshToken = random() < 0.15;
      const token = freshToken ? await jwt(cast.partners[k]!, cast.aud) : tokens[k]!;
      const headBefore = await headNow();
      const sentAt = Date.now();
      const single = random() < 0.4;
      const subjects = [...new Set(Array.from({ length: single ? 1 : 3 }, () => cast.subjects[Math.floor(random() * cast.subjects.length)]!.address))];
      const res = single
        ? await rt.app.inject({ method: "GET", url: `/v1/data/${subjects[0]}?purpose=${PURPOSE}&categories=${CATEGORIES.join(",")}`, headers: { authorization: `Bearer ${token}` } })
        : await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${token}` }, payload: { subjects, purpose: PURPOSE, categories: CATEGORIES } });
      const body = res.json() as { code?: string; results?: { decision: string; block: number; data?: unknown }[]; decision?: string; block?: number; data?: unknown };
      const results = res.statusCode === 200 ? (body.results ?? [body as { decision: string; block: number; data?: unknown }]) : [];
      observations.push({
        sentAt,
        doneAt: Date.now(),
        headBefore,
        status: res.statusCode,
        code: body.code,
        allowed: results.filter((r) => r.decision === "allow").map((r) => ({ block: r.block, hasData: r.data !== undefined })),
        denied: results.filter((r) => r.decision === "deny").length,
        freshToken,
      });
    }

    let loading = true;
    const workers = Array.from({ length: WORKERS }, async () => {
      while (loading) await query();
    });
    const served = (os: Observation[]) => os.filter((o) => o.status === 200);

    try {
      // ---- up
      await sleep(1_500);
      const upServed = served(observations).length;

      // ---- a revocation mined just before the node goes down, straight on the ledger
      const victim = cast.subjects[0]!;
      const victimPartner = cast.partners[0]!;
      const revokedAt = await revokeOnLedger(cast, cast.relayers[0]!, victim, victimPartner);
      const headBeforeStop = await net.admin.blockNumber();

      // ---- stopped (graceful: the node writes its state, as an operator's restart would)
      await node!.stop();
      const down = Date.now();
      await sleep(STALE_AFTER_MS + MARGIN_MS);
      const sizePastBound = rt.deps.logs.access.size;
      await sleep(1_000);
      const healthDown = (await rt.app.inject({ method: "GET", url: "/health" })).json() as { ledger: { fresh: boolean } };
      const sizeBeforeRestart = rt.deps.logs.access.size;

      // ---- restarted on its state directory, same port
      const restartAt = Date.now();
      node = await startEmbeddedNode({ dataDir: join(dataDir, "ledger"), port });
      const back = Date.now();
      const recovered = await waitFor(() => served(observations.filter((o) => o.sentAt >= back)).length > 0, 15_000, 50);
      const recoveryMs = (observations.find((o) => o.sentAt >= back && o.status === 200)?.doneAt ?? Date.now()) - back;

      // ---- frozen (SIGSTOP): connections accepted, nothing answered. First the head feed
      // reconnects (it backs off while the node is down), so the freeze hits the usual mode.
      const feedBack = pushingAtStartOfTest ? await waitFor(() => rt.deps.view.pushing, 15_000, 50) : false;
      const feedBackMs = Date.now() - back;
      await sleep(1_000);
      const pushingBeforeFreeze = rt.deps.view.pushing;
      const pushingAtStart = pushingAtStartOfTest;
      const freezeAt = Date.now();
      process.kill(node.pid, "SIGSTOP");
      await sleep(2 * RPC_TIMEOUT_MS + 1_500);
      const thawAt = Date.now();
      process.kill(node.pid, "SIGCONT");
      const thawRecovered = await waitFor(() => served(observations.filter((o) => o.sentAt >= thawAt)).length > 0, 20_000, 50);
      await sleep(500);
      loading = false;
      await Promise.all(workers);

      // ---- what the partners saw. Requests answered before the node was back:
      const away = (from: number, to: number) => observations.filter((o) => o.sentAt >= from && o.doneAt < to);
      const downObs = away(down, restartAt);
      const frozenObs = away(freezeAt, thawAt);
      // ...those sent when the view could no longer be within the bound (no sync succeeds once the node is away)
      const pastBound = (os: Observation[], from: number) => os.filter((o) => o.sentAt > from + STALE_AFTER_MS + 100);
      const first503 = (os: Observation[], from: number) => {
        const o = os.filter((x) => x.status === 503).sort((a, b) => a.doneAt - b.doneAt)[0];
        return o ? o.doneAt - from : null;
      };
      const servedPastBound = [...pastBound(downObs, down), ...pastBound(frozenObs, freezeAt)].flatMap((o) => o.allowed);
      const behindHead = observations.filter((o) => o.headBefore !== null).flatMap((o) => o.allowed.filter((a) => a.block < o.headBefore!));
      const staleGrants = servedPastBound.length + behindHead.length;
      const answersPastBound = [...new Set([...pastBound(downObs, down), ...pastBound(frozenObs, freezeAt)].map((o) => `${o.status} ${o.code ?? ""}`.trim()))].sort();
      const time503Down = first503(downObs, down);
      const time503Frozen = first503(frozenObs, freezeAt);
      const sentWhileFrozen = observations.filter((o) => o.sentAt >= freezeAt && o.sentAt < thawAt);
      slowestWhileFrozenMs = Math.max(0, ...sentWhileFrozen.map((o) => o.doneAt - o.sentAt));
      first503WhileFrozenMs = time503Frozen;

      // ---- the restarted node kept its state: the earlier grants and the revocation
      const headAfter = await net.admin.blockNumber();
      const victimConsent = await net.admin.getConsent(victim.address as Address, victimPartner.address as Address, purposeId(PURPOSE));
      const keptGrant = await net.admin.getConsent(cast.subjects[1]!.address as Address, victimPartner.address as Address, purposeId(PURPOSE));
      const token = await jwt(victimPartner, cast.aud);
      const afterRes = await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${token}` }, payload: { subjects: [victim.address, cast.subjects[1]!.address], purpose: PURPOSE, categories: CATEGORIES } });
      const after = afterRes.json() as { results: { subject: string; decision: string; reason: string }[] };
      // and a grant made after all this is served (relayed elsewhere: wait until the gateway has its block)
      const regrantBlock = await grantOnLedger(cast, cast.relayers[1]!, victim, victimPartner);
      await rt.deps.view.syncThrough(regrantBlock);
      const regrantedRes = await rt.app.inject({ method: "GET", url: `/v1/data/${victim.address}?purpose=${PURPOSE}&categories=${CATEGORIES.join(",")}`, headers: { authorization: `Bearer ${token}` } });

      const errors5xxOutsideFaults = observations.filter((o) => o.status >= 500 && !(o.status === 503 && (o.code === "LEDGER_UNAVAILABLE" || o.code === "LEDGER_STALE"))).length;
      recordFigures({
        item: "ledger-faults",
        figures: { requests: observations.length, errors5xx: errors5xxOutsideFaults, staleGrants },
        details: {
          staleAfterMs: STALE_AFTER_MS,
          first503AfterStopMs: time503Down,
          first503AfterFreezeMs: time503Frozen,
          slowestAnswerWhileFrozenMs: slowestWhileFrozenMs,
          recoveryAfterRestartMs: recoveryMs,
          answeredWhileStopped: downObs.length,
          answeredWhileFrozen: frozenObs.length,
          answersPastBound,
          servedPastBound: servedPastBound.length,
          decidedBehindHead: behindHead.length,
          servedBeforeFault: upServed,
          headBeforeStop,
          pushingAtStart,
          pushingBeforeFreeze,
          feedBackAfterRestartMs: feedBack ? feedBackMs : null,
          headAfterRestart: headAfter,
        },
      });

      expect(upServed, "nothing was served before the fault").toBeGreaterThan(0);
      // stopped: 503s begin within the bound; past it every answer is a 503 and nothing is logged
      expect(time503Down, "no 503 while the node was stopped").not.toBeNull();
      expect(time503Down!).toBeLessThanOrEqual(STALE_AFTER_MS + MARGIN_MS);
      expect(pastBound(downObs, down).length).toBeGreaterThan(0);
      expect(pastBound(downObs, down).filter((o) => !(o.status === 503 && (o.code === "LEDGER_UNAVAILABLE" || o.code === "LEDGER_STALE"))).map((o) => `${o.status} ${o.code}`)).toEqual([]);
      expect(sizeBeforeRestart, "access entries were written while the node was down, past the bound").toBe(sizePastBound);
      expect(healthDown.ledger.fresh).toBe(false);
      // frozen: the same — but the first 503 is only guaranteed after the RPC timeout of a sync
      // that hung, and of the one queued behind it (the KNOWN DEFECT test below wants the bound)
      expect(time503Frozen, "no 503 while the node was frozen").not.toBeNull();
      expect(time503Frozen!).toBeLessThanOrEqual(2 * RPC_TIMEOUT_MS + MARGIN_MS);
      expect(pastBound(frozenObs, freezeAt).filter((o) => o.status !== 503).map((o) => `${o.status} ${o.code}`)).toEqual([]);
      // nothing granted on a view older than the bound
      expect(servedPastBound).toEqual([]);
      expect(errors5xxOutsideFaults).toBe(0);
      // back: serving again, on the state the node kept
      expect(recovered, "the gateway did not serve again within 15 s of the node's restart").toBe(true);
      expect(thawRecovered, "the gateway did not serve again within 20 s of the node's thaw").toBe(true);
      expect(headAfter).toBeGreaterThanOrEqual(headBeforeStop);
      expect(victimConsent.revokedAt, `the revocation mined in block ${revokedAt} was lost`).toBeGreaterThan(0);
      expect(keptGrant.grantedAt).toBeGreaterThan(0);
      expect(keptGrant.revokedAt).toBe(0);
      expect(after.results.find((r) => r.subject === victim.address), afterRes.body).toMatchObject({ decision: "deny", reason: "CONSENT_REVOKED" });
      expect(after.results.find((r) => r.subject === cast.subjects[1]!.address), afterRes.body).toMatchObject({ decision: "allow" });
      expect(regrantedRes.statusCode, regrantedRes.body).toBe(200);
      expect((regrantedRes.json() as { decision: string }).decision).toBe("allow");
    } finally {
      loading = false;
      await Promise.all(workers);
    }
  }, 120_000);

  /*
   * Found by this suite, now fixed: with a node that accepts connections and never answers (frozen;
   * a partition that drops packets), a decision that asked the node waited for the JSON-RPC timeout
   * (5 s), or for a hung sync and the one queued behind it, instead of failing closed at
   * staleAfterMs. The ledger view now bounds every wait for a sync by staleAfterMs.
   */
  it("while the node is frozen, 503s begin within staleAfterMs + margin and no request waits longer", () => {
    expect(slowestWhileFrozenMs, "the measurement above did not run").toBeDefined();
    expect(first503WhileFrozenMs).not.toBeNull();
    expect(first503WhileFrozenMs!).toBeLessThanOrEqual(STALE_AFTER_MS + MARGIN_MS);
    expect(slowestWhileFrozenMs!).toBeLessThanOrEqual(STALE_AFTER_MS + MARGIN_MS);
  });
});
