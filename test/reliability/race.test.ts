/**
 * Reliability item 5 — concurrency. Grants and revocations for a subject race with partners'
 * queries for that subject: in each round every subject's consent flips (through the gateway, or
 * straight on the ledger by another relayer, as a wallet may do), while queries for it are fired
 * at seeded random moments around the change. Afterwards every access entry of the log is
 * checked against the ledger itself:
 *
 * - no allowed access on a consent whose last change at or before the entry's block is a
 *   revocation (the ledger's ConsentGranted/ConsentRevoked events);
 * - every decision equals the contract's checkPermission evaluated at the entry's block and time
 *   (an archive read on the node);
 * - and, per request, whether it was decided at a block older than the head the partner could
 *   already see when it sent it ("decided behind the head"), and whether such an allowed access
 *   came after a revocation mined before the request was sent.
 *
 * The gateway follows the node's pushed new-block announcements, as the embedded network does.
 */
import { cpSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Wallet } from "ethers";
import { purposeId, type Address } from "../../core/domain.js";
import type { LedgerEvent } from "../../core/ledger.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../../gateway/runtime.js";
import { SEED, SIZES, recordFigures, rng } from "./config.js";
import { CATEGORIES, PURPOSE, consentSubmission, delayedHeadsProxy, grantOnLedger, jwt, operatorToken, revokeOnLedger, setupCast, sleep, vaultRecords, type Cast, type HeadsProxy } from "./support.js";

const ROUNDS = Math.max(1, Math.round(SIZES.raceRounds));
const QUERIES = Math.max(1, Math.round(SIZES.raceQueries));
const SUBJECTS = Math.max(1, Math.round(SIZES.raceSubjects));
/** Queries of a round are sent within this window; the consent change starts in its first half. */
const WINDOW_MS = 300;

interface Sent {
  subject: Address;
  headBefore: number;
  status: number;
  results: { decision: string; block: number; index: number }[];
}

type ConsentEvent = Extract<LedgerEvent, { type: "ConsentGranted" | "ConsentRevoked" }>;

async function headOf(rpcUrl: string): Promise<number> {
  const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_blockNumber", params: [] }) });
  return Number(((await res.json()) as { result: string }).result);
}

describe("reliability: grants and revocations racing with data requests", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-rel-race-"));
  let net: Network;
  let cast: Cast;
  let rt: GatewayRuntime;

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    cast = await setupCast(net, { partners: 2, subjects: SUBJECTS, consent: () => true, relayers: SUBJECTS });
    rt = await createGatewayRuntime({ dataDir, ...networkRuntimeOptions(net), config: { port: 0, rateLimitMax: 1_000_000, authFailureLimit: 1_000_000 } });
    const ingest = await rt.app.inject({ method: "POST", url: "/v1/vault/records", headers: { authorization: `Bearer ${await operatorToken(net)}` }, payload: vaultRecords(cast.subjects) as never });
    expect(ingest.statusCode, ingest.body).toBe(200);
  });

  afterAll(async () => {
    await rt?.close().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`allows no access on a revoked consent over ${ROUNDS} rounds of ${SUBJECTS} racing consent changes (seed ${SEED})`, async () => {
    const random = rng(SEED);
    const partner = cast.partners[0]!;
    const token = await jwt(partner, cast.aud, { lifetimeSec: 280 });
    let tokenAt = Date.now();
    const sent: Sent[] = [];
    const changes = { viaGateway: 0, onLedger: 0, failed: [] as string[] };
    const sizeBefore = rt.deps.logs.access.size;
    const fromBlock = await net.admin.blockNumber();
    let partnerToken = token;

    async function change(subject: Wallet, k: number): Promise<void> {
      const c = await net.admin.getConsent(subject.address as Address, partner.address as Address, purposeId(PURPOSE));
      const action = c.grantedAt > 0 && c.revokedAt === 0 ? "revoke" : "grant";
      if (random() < 0.5) {
        const res = await rt.app.inject({ method: "POST", url: "/v1/consents", headers: { authorization: `Bearer ${await jwt(subject, cast.aud)}` }, payload: (await consentSubmission(cast, subject, partner, action)) as never });
        if (res.statusCode !== 200) changes.failed.push(`${action} via gateway: ${res.statusCode} ${res.body.slice(0, 200)}`);
        else changes.viaGateway++;
      } else {
        try {
          await (action === "revoke" ? revokeOnLedger : grantOnLedger)(cast, cast.relayers[k]!, subject, partner);
          changes.onLedger++;
        } catch (e) {
          changes.failed.push(`${action} on ledger: ${(e as Error).message.slice(0, 200)}`);
        }
      }
    }

    async function query(subject: Address): Promise<void> {
      const headBefore = await headOf(net.rpcUrl);
      const res = await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${partnerToken}` }, payload: { subjects: [subject], purpose: PURPOSE, categories: CATEGORIES } });
      const body = res.json() as { results?: { decision: string; block: number; receipt: { index: number } }[] };
      sent.push({ subject, headBefore, status: res.statusCode, results: (body.results ?? []).map((r) => ({ decision: r.decision, block: r.block, index: r.receipt.index })) });
    }

    for (let round = 0; round < ROUNDS; round++) {
      if (Date.now() - tokenAt > 120_000) {
        partnerToken = await jwt(partner, cast.aud, { lifetimeSec: 280 });
        tokenAt = Date.now();
      }
      await Promise.all(
        cast.subjects.flatMap((subject, k) => [
          sleep(random() * (WINDOW_MS / 2)).then(() => change(subject, k)),
          ...Array.from({ length: QUERIES }, () => sleep(random() * WINDOW_MS).then(() => query(subject.address as Address))),
        ]),
      );
    }

    // ---- the ledger's own account of every consent change, and the gateway's log
    const events = (await net.admin.events(fromBlock)).filter((e): e is ConsentEvent => (e.type === "ConsentGranted" || e.type === "ConsentRevoked") && e.partner === partner.address);
    const stateAt = (subject: string, block: number): "granted" | "revoked" | "none" => {
      let last: ConsentEvent | undefined;
      for (const e of events) if (e.subject === subject && e.purpose === purposeId(PURPOSE) && e.blockNumber <= block) last = e;
      // before the window every subject's consent was granted (setup)
      return last ? (last.type === "ConsentGranted" ? "granted" : "revoked") : "granted";
    };
    const log = rt.deps.logs.access;
    const entries = await log.getEntries(sizeBefore, log.size);
    const raced = new Set(cast.subjects.map((s) => s.address));
    let allowedOnRevoked = 0;
    let mismatches = 0;
    const mismatchExamples: string[] = [];
    let checked = 0;
    for (const { index, entry } of entries) {
      const e = entry as { kind: string; subject: Address; partner: Address; decision: string; reason: string; block: number; time: number; categories: number };
      if (e.kind !== "access" || !raced.has(e.subject) || e.partner !== partner.address) continue;
      checked++;
      if (e.decision === "allow" && stateAt(e.subject, e.block) !== "granted") allowedOnRevoked++;
      const ledger = await net.admin.checkPermission({ subject: e.subject, partner: e.partner, purpose: purposeId(PURPOSE), categories: e.categories, time: e.time }, { block: e.block });
      if (ledger.allowed !== (e.decision === "allow") || ledger.reason !== e.reason) {
        mismatches++;
        if (mismatchExamples.length < 5) mismatchExamples.push(`#${index} block ${e.block}: gateway ${e.decision}/${e.reason}, ledger ${ledger.allowed}/${ledger.reason}`);
      }
    }
    // per request: decided behind a head the partner could already see; allowed after a revocation mined before it was sent
    let behindHead = 0;
    let allowedAfterEarlierRevocation = 0;
    for (const s of sent) {
      for (const r of s.results) {
        if (r.decision !== "allow" || r.block >= s.headBefore) continue;
        behindHead++;
        if (stateAt(s.subject, s.headBefore) !== "granted") allowedAfterEarlierRevocation++;
      }
    }
    const answered = sent.filter((s) => s.status === 200);
    const errors5xx = sent.filter((s) => s.status >= 500).length;
    const loggedIndexes = new Set(entries.map((e) => e.index));
    const unlogged = answered.flatMap((s) => s.results).filter((r) => !loggedIndexes.has(r.index)).length;

    recordFigures({
      item: "race",
      figures: { requests: sent.length + changes.viaGateway, errors5xx, staleGrants: allowedOnRevoked + behindHead },
      details: {
        rounds: ROUNDS,
        subjectsPerRound: SUBJECTS,
        queriesPerSubject: QUERIES,
        consentChanges: changes.viaGateway + changes.onLedger,
        viaGateway: changes.viaGateway,
        onLedger: changes.onLedger,
        checkedEntries: checked,
        allowed: answered.flatMap((s) => s.results).filter((r) => r.decision === "allow").length,
        denied: answered.flatMap((s) => s.results).filter((r) => r.decision === "deny").length,
        allowedOnRevokedAtItsBlock: allowedOnRevoked,
        decisionsUnlikeLedger: mismatches,
        decidedBehindHead: behindHead,
        allowedAfterRevocationMinedBeforeRequest: allowedAfterEarlierRevocation,
        unlogged,
      },
    });

    expect(changes.failed).toEqual([]);
    expect(changes.viaGateway + changes.onLedger).toBe(ROUNDS * SUBJECTS);
    expect(errors5xx).toBe(0);
    expect(answered.length).toBe(sent.length);
    expect(checked).toBe(sent.length);
    expect(unlogged).toBe(0);
    // the safety properties: nothing allowed on a consent revoked at or before the decision's block,
    // and every decision is the contract's own at that block
    expect(allowedOnRevoked).toBe(0);
    expect(mismatchExamples).toEqual([]);
    // both outcomes occurred: the race was real
    expect(answered.flatMap((s) => s.results).some((r) => r.decision === "allow")).toBe(true);
    expect(answered.flatMap((s) => s.results).some((r) => r.decision === "deny")).toBe(true);
  }, 60_000 + ROUNDS * 5_000);

  /*
   * Found by this suite: with pushed block announcements, a decision waited only for the blocks the
   * node had *announced*; a revocation mined (and confirmed to the wallet) before a partner's request
   * was not enforced on it while its announcement was on the way. Push mode is now opt-in
   * (CUSTODIA_PUSH_HEADS=1, its trade-off documented); by default each decision burst asks the
   * node. Here the announcements are made slow on purpose, and the gateway is given the node's
   * WebSocket endpoint: by default it must not rely on it.
   */
  describe("with a late block announcement", () => {
    let proxy: HeadsProxy | undefined;
    let late: GatewayRuntime | undefined;
    const lateDir = mkdtempSync(join(tmpdir(), "custodia-rel-race-late-"));
    const subject = (): Wallet => cast.subjects[0]!;
    const partner = (): Wallet => cast.partners[1]!;

    beforeAll(async () => {
      proxy = await delayedHeadsProxy(net.rpcUrl.replace(/^http/, "ws"), 0);
      // The same gateway, restarted on a copy of its stores (the racing rounds are over), following
      // the node through the slow relay; it anchors nothing during the test. A copy and not fresh
      // stores: a gateway whose logs are behind what it anchored refuses to start.
      await rt.close();
      for (const part of ["gateway", "logs", "master.key"]) cpSync(join(dataDir, part), join(lateDir, part), { recursive: true });
      late = await createGatewayRuntime({ dataDir: lateDir, ...networkRuntimeOptions(net), ledgerWsUrl: proxy.url, config: { port: 0, anchorEveryMs: 3_600_000, anchorEveryEntries: 1_000_000 } });
      expect(late.deps.view.pushing, "push mode is opt-in").toBe(false);
      const c = await net.admin.getConsent(subject().address as Address, partner().address as Address, purposeId(PURPOSE));
      if (!(c.grantedAt > 0 && c.revokedAt === 0)) await grantOnLedger(cast, cast.relayers[0]!, subject(), partner());
      await late.deps.view.syncThrough(await net.admin.blockNumber());
      const before = await late.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${await jwt(partner(), cast.aud)}` }, payload: { subjects: [subject().address], purpose: PURPOSE, categories: CATEGORIES } });
      expect(before.statusCode, before.body).toBe(200);
      expect((before.json() as { results: { decision: string }[] }).results[0]!.decision).toBe("allow");
    });

    afterAll(async () => {
      await late?.close().catch(() => undefined);
      await proxy?.close().catch(() => undefined);
      rmSync(lateDir, { recursive: true, force: true });
    });

    it("a revocation mined before the request is enforced on it, even when its block is announced late", async () => {
      proxy!.delayMs = 800;
      // the wallet revokes through another relayer and sees the revocation mined...
      const revokedIn = await revokeOnLedger(cast, cast.relayers[0]!, subject(), partner());
      expect(late!.deps.view.pushing).toBe(false);
      // ...and the partner asks right after
      const res = await late!.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${await jwt(partner(), cast.aud)}` }, payload: { subjects: [subject().address], purpose: PURPOSE, categories: CATEGORIES } });
      expect(res.statusCode, res.body).toBe(200);
      const result = (res.json() as { results: { decision: string; block: number }[] }).results[0]!;
      expect(result.block, `decided at block ${result.block}; the revocation was mined in block ${revokedIn} before the request was sent`).toBeGreaterThanOrEqual(revokedIn);
      expect(result.decision).toBe("deny");
    }, 30_000);
  });
});
