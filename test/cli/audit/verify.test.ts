/**
 * `custodia audit verify` end to end: a real gateway (listening on 127.0.0.1) on Hardhat's
 * in-process chain with real traffic — consents, partner queries allowed and denied, a revocation,
 * an erasure, a segmentation — anchored on the ledger, then audited through `runCli` as a
 * registered AUDITOR over HTTP and JSON-RPC. Hostile gateways are a thin proxy rewriting the real
 * gateway's answers; a buggy gateway is one that wrote wrong decisions into its own durable log.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Wallet } from "ethers";
import { runCli } from "../../../cli/main.js";
import type { VerifyReport } from "../../../cli/audit/verify.js";
import type { FindingCode } from "../../../cli/audit/findings.js";
import { checkpointMessage, type SignedCheckpoint } from "../../../core/checkpoint.js";
import { consentKey } from "../../../core/eip712.js";
import { toHex0x } from "../../../core/hash.js";
import { MerkleTree } from "../../../core/merkle.js";
import type { Address } from "../../../core/domain.js";
import type { Anchorer } from "../../../gateway/log/anchorer.js";
import { startTestGateway, type Identity, type TestGateway } from "../../gateway/harness.js";
import { captureIo, startHostileProxy, startRpcBridge, variedRecords, writeWallet, type Listening } from "./support.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

describe("custodia audit verify", () => {
  let g: TestGateway;
  let gatewayUrl: string;
  let rpc: Listening;
  let partner: Identity;
  let auditorWallet: string;
  let dataDir: string;
  const customers: Identity[] = [];
  let revokedBlock = 0;
  const proxies: Listening[] = [];

  async function call(method: "GET" | "POST", url: string, who: Identity, payload?: unknown): Promise<{ status: number; body: Json }> {
    const res = await g.app.inject({ method, url, headers: { authorization: `Bearer ${await who.token()}` }, ...(payload === undefined ? {} : { payload: payload as never }) });
    return { status: res.statusCode, body: res.json() as Json };
  }

  async function query(subjects: Identity[], purpose: string, categories: string[]): Promise<Json> {
    const r = await call("POST", "/v1/data/query", partner, { subjects: subjects.map((c) => c.address), purpose, categories });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    return r.body;
  }

  const anchor = (log: "access" | "decisions") => (g.rt.deps.anchorers[log] as Anchorer).anchorNow();

  /** Runs `custodia <network flags> ...args` with a captured io. */
  async function cli(args: string[], o: { gateway?: string; rpc?: string; wallet?: string; tty?: boolean; askChainId?: boolean } = {}) {
    const io = captureIo(o.tty);
    const chain = o.askChainId ? [] : ["--chain-id", "31337"];
    const code = await runCli(
      ["--gateway", o.gateway ?? gatewayUrl, "--rpc", o.rpc ?? rpc.url, "--contract", g.deployment.custodia, ...chain, "--data-dir", dataDir, "--wallet", o.wallet ?? auditorWallet, ...args],
      io,
    );
    return { code, out: io.out(), err: io.err(), report: () => JSON.parse(io.out()) as VerifyReport };
  }

  /** A hostile operator's own proxy in front of its gateway: the gateway proves its identity for it. */
  async function operatorProxy(rewrite: Parameters<typeof startHostileProxy>[1]): Promise<Listening> {
    const proxy = await startHostileProxy(gatewayUrl, rewrite);
    g.rt.addPublicUrl(proxy.url);
    return proxy;
  }

  const codesOf = (r: VerifyReport): FindingCode[] => [...new Set(r.failures.map((f) => f.code))].sort();

  beforeAll(async () => {
    // anchoring only when a test says so, so anchor sizes are known
    g = await startTestGateway({ config: { anchorEveryMs: 3_600_000, anchorEveryEntries: 1_000_000 } });
    gatewayUrl = await g.rt.listen();
    rpc = await startRpcBridge();
    dataDir = mkdtempSync(join(tmpdir(), "custodia-audit-cli-"));
    partner = await g.partner(["profiling"], ["transactions", "behavioural", "contact"]);
    const auditor = await g.member("AUDITOR");
    auditorWallet = writeWallet(dataDir, auditor.wallet!.privateKey, auditor.did);
    for (let i = 0; i < 6; i++) {
      const c = await g.customer();
      await g.ingest(variedRecords(c.address!, i));
      expect((await g.grant(c, partner, "profiling", ["transactions", "behavioural"])).status).toBe(200);
      customers.push(c);
    }
    await query(customers, "profiling", ["transactions"]); // 6 allowed
    await query([customers[0]!], "research", ["transactions"]); // NO_AGREEMENT
    await query([customers[1]!], "profiling", ["contact"]); // CONSENT_CATEGORIES
    await anchor("access");
    const rev = await g.revoke(customers[4]!, partner, "profiling");
    expect(rev.status).toBe(200);
    revokedBlock = rev.body["blockNumber"] as number;
    expect((await query([customers[4]!], "profiling", ["transactions"])).results[0].reason).toBe("CONSENT_REVOKED");
    expect((await call("POST", "/v1/me/erasure", customers[5]!, {})).status).toBe(200);
    expect((await query([customers[5]!], "profiling", ["transactions"])).results[0].reason).toBe("SUBJECT_ERASED");
    const seg = await call("POST", "/v1/segmentations", partner, { purpose: "profiling", k: 2, seed: 7 });
    expect(seg.status, JSON.stringify(seg.body).slice(0, 300)).toBe(200);
    expect(seg.body.included).toBe(4);
    await anchor("access");
    await anchor("decisions");
    await query([customers[0]!], "profiling", ["transactions"]); // after the last anchor: pending
  });

  afterAll(async () => {
    for (const p of proxies) await p.close();
    await rpc?.close();
    await g?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it("documents itself: `audit --help` lists verify, `audit verify --help` its options and exit codes", async () => {
    const io = captureIo();
    expect(await runCli(["audit", "--help"], io)).toBe(0);
    expect(io.out()).toMatch(/verify\b.*verify the gateway's logs/s);
    const io2 = captureIo();
    expect(await runCli(["audit", "verify", "--help"], io2)).toBe(0);
    for (const s of ["--log <name>", "--from-block <n>", "pending", "Exit codes"]) expect(io2.out()).toContain(s);
  });

  it("passes a clean gateway: exit 0 and a summary a person can read, with a progress bar on a terminal", async () => {
    const r = await cli(["audit", "verify"], { tty: true });
    expect(r.code, r.out + r.err).toBe(0);
    expect(r.out).toContain("OK: everything anchored verifies against the ledger.");
    expect(r.out).toMatch(/access log[\s\S]*entries verified: +11 of 12/);
    expect(r.out).toMatch(/re-checked on ledger: +9 at their decision block, 1 by reason \(SUBJECT_ERASED\)/);
    expect(r.out).toMatch(/segmentation runs: +1, 4 decisions, 4 consents re-checked/);
    expect(r.out).toMatch(/pending \(not anchored\): 1/);
    expect(r.err).toContain("access: entries [");
    expect(r.err).not.toContain("error");
  });

  it("with --json prints one VerifyReport carrying the ReportInput the report command draws", async () => {
    const r = await cli(["--json", "audit", "verify"]);
    expect(r.code, r.out).toBe(0);
    const rep = r.report();
    expect(rep.ok).toBe(true);
    expect(rep.failures).toEqual([]);
    expect(rep.gateway).toEqual({ did: g.rt.did, account: g.operator.address });
    const access = rep.logs.find((l) => l.name === "access")!;
    expect(access).toMatchObject({ size: 12, anchors: 2, anchoredSize: 11, entriesVerified: 11, pending: 1, checkpointsChecked: 2, proofsChecked: { consistency: 1 } });
    expect(access.accesses).toEqual({ allowed: 6, denied: 4, erasures: 1, checkedOnLedger: 9, checkedByReason: 1 });
    expect(access.proofsChecked.inclusion).toBeGreaterThanOrEqual(4);
    const decisions = rep.logs.find((l) => l.name === "decisions")!;
    expect(decisions).toMatchObject({ size: 5, anchors: 1, entriesVerified: 5, pending: 0, decisions: { runs: 1, decisions: 4, checkedOnLedger: 4 } });

    const d = rep.data;
    expect(d.ok).toBe(true);
    expect(d.network).toEqual({ chainId: 31337, contract: g.deployment.custodia, gateway: g.operator.address });
    expect(Date.parse(d.generatedAt)).toBeGreaterThan(0);
    expect(d.accesses.map((a) => a.index)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 10]); // 9 is the erasure record
    expect(d.accesses.filter((a) => a.decision === "deny").map((a) => a.reason)).toEqual(["NO_AGREEMENT", "CONSENT_CATEGORIES", "CONSENT_REVOKED", "SUBJECT_ERASED"]);
    expect(d.accesses[0]).toMatchObject({ partner: partner.address, purpose: "profiling", categories: 4, decision: "allow", reason: "OK" });
    expect(d.decisions).toHaveLength(1);
    expect(d.decisions[0]).toMatchObject({ partner: partner.address, purpose: "profiling" });
    expect(Object.values(d.decisions[0]!.segments).reduce((a, b) => a + b, 0)).toBe(4);
    expect(d.anchors.map((a) => [a.log, a.treeSize])).toEqual([["access", 8], ["access", 11], ["decisions", 5]]);
    for (const a of d.anchors) expect(a.timestamp).toBe(await g.admin.blockTime(a.blockNumber));
    expect(d.pending).toEqual({ access: 1, decisions: 0 });
  });

  it("audit report writes the verified history as one HTML page carrying the verifier's data", async () => {
    const out = join(dataDir, "report.html");
    const r = await cli(["--json", "audit", "report", "--out", out]);
    expect(r.code, r.out + r.err).toBe(0);
    const summary = JSON.parse(r.out) as { ok: boolean; file: string; accesses: number };
    expect(summary).toMatchObject({ ok: true, file: out, accesses: 10 });
    const html = readFileSync(out, "utf8");
    const data = JSON.parse(/<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)![1]!) as { accesses: unknown[]; ok: boolean };
    expect(data.ok).toBe(true);
    expect(data.accesses).toEqual((await cli(["--json", "audit", "verify"])).report().data.accesses);
    // a path that cannot be written: a clear usage error, exit 2
    const bad = await cli(["audit", "report", "--out", join(dataDir, "no-such-dir", "r.html")]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^error \[INVALID_ARGUMENT\]: cannot write the report/);
  });

  it("with --from-block reads only the anchors from that block on, and still re-hashes every entry", async () => {
    const anchors = (await cli(["--json", "audit", "verify", "--log", "access"])).report().data.anchors;
    // (and without --chain-id: the chain id is asked of the node)
    const r = await cli(["--json", "audit", "verify", "--log", "access", "--from-block", String(anchors[1]!.blockNumber)], { askChainId: true });
    expect(r.code, r.out).toBe(0);
    expect(r.report().logs[0]).toMatchObject({ anchors: 1, anchoredSize: 11, entriesVerified: 11, checkpointsChecked: 2, proofsChecked: { consistency: 0 } });
    expect(r.report().data.anchors.map((a) => a.treeSize)).toEqual([11]);
    const bad = await cli(["audit", "verify", "--from-block", "12abc"]);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^error \[INVALID_ARGUMENT\]: --from-block must be a block number/);
  });

  it("fails a gateway that claims another network, or gives no identity at all", async () => {
    const other = await operatorProxy((u) => (u.path === "/health" ? { ...(u.body as Json), ledger: { ...(u.body as Json).ledger, contract: Wallet.createRandom().address } } : undefined));
    proxies.push(other);
    const r = await cli(["--json", "audit", "verify"], { gateway: other.url });
    expect(r.code).toBe(1);
    expect(codesOf(r.report())).toEqual(["GATEWAY_NETWORK_MISMATCH"]);
    expect(r.report().failures[0]!.log).toBe("gateway");
    // an impostor naming another member's account (whose logs were never anchored) as its own
    const impostor = await operatorProxy((u) => {
      if (u.path === "/health") return { ...(u.body as Json), gateway: { ...(u.body as Json).gateway, account: partner.address } };
      if (u.path === "/v1/audit/logs") return { ...(u.body as Json), gateway: partner.address };
      return undefined;
    });
    proxies.push(impostor);
    const i = await cli(["--json", "audit", "verify", "--log", "access"], { gateway: impostor.url });
    expect(i.code).toBe(1);
    expect(i.report().failures.filter((f) => f.log === "gateway").map((f) => f.code)).toEqual(["GATEWAY_NOT_REGISTERED"]);
    const anonymous = await operatorProxy((u) => (u.path === "/health" ? { status: "ok" } : undefined));
    proxies.push(anonymous);
    const a = await cli(["--json", "audit", "verify"], { gateway: anonymous.url });
    expect(a.code).toBe(1);
    expect(a.report()).toMatchObject({ ok: false, logs: [], gateway: { did: null, account: null } });
    expect(codesOf(a.report())).toEqual(["GATEWAY_ANSWER_INVALID"]);
  });

  it("sends no token to an impostor relaying a registered gateway's answers, and reports it", async () => {
    const authorizations: (string | undefined)[] = [];
    // not the operator's proxy: the real gateway refuses to prove its identity for this address
    const impostor = await startHostileProxy(gatewayUrl, () => undefined, (_path, authorization) => void authorizations.push(authorization));
    proxies.push(impostor);
    const r = await cli(["--json", "audit", "verify"], { gateway: impostor.url });
    expect(r.code).toBe(1);
    expect(codesOf(r.report())).toEqual(["GATEWAY_UNVERIFIED"]);
    expect(r.report().failures[0]).toMatchObject({ log: "gateway", message: expect.stringMatching(/did not prove it is the gateway .*does not serve/) });
    expect(authorizations.length).toBeGreaterThanOrEqual(2); // /health, the identity question
    expect(authorizations.every((a) => a === undefined)).toBe(true);
  });

  it("catches a gateway serving a signed checkpoint that is not the one anchored, and one signed by another key", async () => {
    const log = g.rt.deps.logs.access;
    // a root the ledger never anchored for this size (the log's root one entry earlier), properly signed
    const resign = async (cp: SignedCheckpoint, signer: { signMessage(m: string): Promise<string> }): Promise<SignedCheckpoint> => {
      const { signature: _, ...unsigned } = { ...cp, root: log.root(cp.treeSize - 1) as `0x${string}` };
      return { ...unsigned, signature: await signer.signMessage(checkpointMessage(unsigned)) };
    };
    for (const [signer, expected] of [[g.operator.wallet, "CHECKPOINT_NOT_ANCHORED"], [Wallet.createRandom(), "CHECKPOINT_SIGNATURE_INVALID"]] as const) {
      const proxy = await operatorProxy(async (u) => {
        if (!u.path.startsWith("/v1/audit/logs/access/checkpoints")) return undefined;
        const body = u.body as { checkpoints: SignedCheckpoint[] };
        return { ...body, checkpoints: await Promise.all(body.checkpoints.map((c, i) => (i === 0 ? resign(c, signer!) : c))) };
      });
      proxies.push(proxy);
      const r = await cli(["--json", "audit", "verify", "--log", "access"], { gateway: proxy.url });
      expect(r.code).toBe(1);
      const rep = r.report();
      expect(rep.ok).toBe(false);
      expect(codesOf(rep)).toEqual(expected === "CHECKPOINT_NOT_ANCHORED" ? ["CHECKPOINT_NOT_ANCHORED", "CHECKPOINT_MISSING"].sort() : ["CHECKPOINT_MISSING", "CHECKPOINT_SIGNATURE_INVALID"]);
      expect(rep.failures.find((f) => f.code === "CHECKPOINT_MISSING")!.details).toEqual({ treeSize: 8 });
      expect(rep.data.failures.map((f) => f.code)).toContain(expected);
    }
  });

  it("reads the checkpoint listing page by page, and reports a gateway whose pages go in circles", async () => {
    const all = (await g.app.inject({ method: "GET", url: "/v1/audit/logs/access/checkpoints?limit=1", headers: { authorization: `Bearer ${await g.operator.token()}` } })).json() as { checkpoints: SignedCheckpoint[]; next: number | null };
    // the gateway's own paging: one checkpoint, and where the next page starts
    expect(all.checkpoints).toHaveLength(1);
    expect(all.next).toBe(all.checkpoints[0]!.treeSize);
    // a gateway answering one checkpoint per page: the verifier still sees them all
    const paged = await operatorProxy((u) => {
      if (!u.path.startsWith("/v1/audit/logs/access/checkpoints")) return undefined;
      const body = u.body as { checkpoints: SignedCheckpoint[]; next: number | null };
      return { ...body, checkpoints: body.checkpoints.slice(0, 1), next: body.checkpoints.length > 1 ? body.checkpoints[0]!.treeSize : null };
    });
    proxies.push(paged);
    const ok = await cli(["--json", "audit", "verify", "--log", "access"], { gateway: paged.url });
    expect(ok.code, ok.out + ok.err).toBe(0);
    // one whose `next` never advances
    const circling = await operatorProxy((u) => (u.path.startsWith("/v1/audit/logs/access/checkpoints") ? { ...(u.body as object), next: 1 } : undefined));
    proxies.push(circling);
    const bad = await cli(["--json", "audit", "verify", "--log", "access"], { gateway: circling.url });
    expect(bad.code).toBe(1);
    expect(bad.report().failures.find((f) => f.code === "GATEWAY_ANSWER_INVALID")?.message).toMatch(/pages do not advance/);
  });

  it("catches inclusion and consistency proofs for a different tree", async () => {
    const size = g.rt.deps.logs.access.size;
    const other = MerkleTree.fromLeafHashes(Array.from({ length: size }, () => new Uint8Array(randomBytes(32))));
    const proxy = await operatorProxy((u) => {
      const q = new URL(u.path, "http://x").searchParams;
      if (u.path.startsWith("/v1/audit/logs/access/proofs/inclusion")) {
        return { ...(u.body as Json), proof: other.inclusionProof(Number(q.get("index")), Number(q.get("size"))).map(toHex0x) };
      }
      if (u.path.startsWith("/v1/audit/logs/access/proofs/consistency")) {
        return { ...(u.body as Json), proof: other.consistencyProof(Number(q.get("from")), Number(q.get("to"))).map(toHex0x) };
      }
      return undefined;
    });
    proxies.push(proxy);
    const r = await cli(["--json", "audit", "verify", "--log", "access"], { gateway: proxy.url });
    expect(r.code).toBe(1);
    const rep = r.report();
    expect(codesOf(rep)).toEqual(["CONSISTENCY_PROOF_INVALID", "INCLUSION_PROOF_INVALID"]);
    expect(rep.failures.find((f) => f.code === "CONSISTENCY_PROOF_INVALID")!.details).toMatchObject({ from: 8, to: 11, reason: "PROOF_ROOT_MISMATCH" });
    // the entries themselves still verify: nothing is said about them
    expect(rep.logs[0]!.entriesVerified).toBe(11);
  });

  it("ends with exit 3 and a clear message when the ledger or the gateway cannot be reached", async () => {
    const port = await freePort();
    for (const askChainId of [false, true]) {
      const ledgerDown = await cli(["audit", "verify"], { rpc: `http://127.0.0.1:${port}`, askChainId });
      expect(ledgerDown.code).toBe(3);
      expect(ledgerDown.err).toMatch(/^error \[LEDGER_UNAVAILABLE\]: the ledger at http:\/\/127\.0\.0\.1:\d+ cannot be reached/);
    }
    const gatewayDown = await cli(["--json", "audit", "verify"], { gateway: `http://127.0.0.1:${port}` });
    expect(gatewayDown.code).toBe(3);
    expect(JSON.parse(gatewayDown.out).error).toMatchObject({ code: "GATEWAY_UNAVAILABLE" });
    expect(JSON.parse(gatewayDown.out).error.message).toMatch(/the gateway at http:\/\/127\.0\.0\.1:\d+ cannot be reached: ECONNREFUSED/);
  });

  it("is refused (exit 4) for a wallet that is not an auditor, and needs a wallet (exit 5)", async () => {
    const stranger = await g.customer();
    const refused = await cli(["audit", "verify"], { wallet: writeWallet(dataDir, stranger.wallet!.privateKey, stranger.did) });
    expect(refused.code).toBe(4);
    expect(refused.err).toMatch(/^error \[FORBIDDEN\]: the gateway refused the auditor did:ethr:/);
    const missing = await cli(["audit", "verify"], { wallet: join(dataDir, "no-such-wallet.json") });
    expect(missing.code).toBe(5);
    expect(missing.err).toMatch(/^error \[WALLET_MISSING\]/);
    const mismatched = await cli(["audit", "verify"], { wallet: writeWallet(dataDir, Wallet.createRandom().privateKey, stranger.did) });
    expect(mismatched.code).toBe(5);
    expect(mismatched.err).toMatch(/^error \[WALLET_INVALID\]/);
    const badLog = await cli(["audit", "verify", "--log", "everything"]);
    expect(badLog.code).toBe(2);
    expect(badLog.err).toMatch(/^error \[INVALID_ARGUMENT\]: --log must be one of access, decisions/);
  });

  it("catches an allowed access whose consent was revoked at that block (a gateway that logged a wrong decision)", async () => {
    const subject = customers[4]!.address!;
    const agreementId = (await g.admin.agreementsOf(partner.address!))[0]!.toString();
    const receipt = await g.rt.deps.logs.access.append({
      kind: "access",
      requestId: "buggy-allow",
      actor: partner.did,
      partner: partner.address,
      subject,
      purpose: "profiling",
      categories: 4,
      decision: "allow",
      reason: "OK",
      block: revokedBlock,
      time: await g.admin.blockTime(revokedBlock),
      consentKey: consentKey(subject, partner.address!, 1),
      agreementId,
      at: new Date().toISOString(),
    });
    await anchor("access");
    const r = await cli(["--json", "audit", "verify", "--log", "access"]);
    expect(r.code).toBe(1);
    const rep = r.report();
    expect(rep.failures).toHaveLength(1);
    expect(rep.failures[0]).toMatchObject({ code: "ACCESS_NOT_PERMITTED", log: "access", index: receipt.index, details: { block: revokedBlock, ledgerReason: "CONSENT_REVOKED" } });
    // the same verdict from state rebuilt out of the ledger's events (no archive reads)
    const replayed = await cli(["--json", "audit", "verify", "--log", "access", "--replay"]);
    expect(replayed.code).toBe(1);
    expect(replayed.report().failures).toEqual(rep.failures);
    // the human form lists it and says the run failed
    const human = await cli(["audit", "verify", "--log", "access"]);
    expect(human.code).toBe(1);
    expect(human.out).toContain(`[ACCESS_NOT_PERMITTED] access #${receipt.index}:`);
    expect(human.err).toBe("error [VERIFY_FAILED]: the audit found 1 failure\n");
  });

  it("catches a decision about a subject without consent", async () => {
    const [card] = await g.rt.deps.logs.decisions.getEntries(0, 1);
    const c = card!.entry as Json;
    expect(c.kind).toBe("model-card");
    const outsider = await g.customer(); // never consented
    const segment = Object.keys((await cli(["--json", "audit", "verify", "--log", "decisions"])).report().data.decisions[0]!.segments)[0]!;
    const receipt = await g.rt.deps.logs.decisions.append({
      kind: "decision",
      runId: c.runId,
      subject: outsider.address,
      modelHash: c.card.modelHash,
      inputHash: toHex0x(new Uint8Array(randomBytes(32))),
      segment,
      explanationHash: toHex0x(new Uint8Array(randomBytes(32))),
      at: new Date().toISOString(),
    });
    await anchor("decisions");
    const r = await cli(["--json", "audit", "verify", "--log", "decisions"]);
    expect(r.code).toBe(1);
    const rep = r.report();
    expect(rep.failures).toHaveLength(1);
    expect(rep.failures[0]).toMatchObject({ code: "DECISION_WITHOUT_CONSENT", log: "decisions", index: receipt.index, details: { card: 0, block: c.block, ledgerReason: "NO_CONSENT" } });
    const replayed = await cli(["--json", "audit", "verify", "--log", "decisions", "--replay"]);
    expect(replayed.report().failures).toEqual(rep.failures);
  });

  it("checks what every entry says: denials, blocks, times, consent keys, kinds, model cards", async () => {
    const access = g.rt.deps.logs.access;
    const c0 = customers[0]!.address!;
    const head = await g.admin.blockNumber();
    const headTime = await g.admin.blockTime(head);
    const agreementId = (await g.admin.agreementsOf(partner.address!))[0]!.toString();
    const base = { kind: "access", actor: partner.did, partner: partner.address, subject: c0, purpose: "profiling", categories: 4, block: head, time: headTime, consentKey: consentKey(c0, partner.address!, 1), agreementId, at: new Date().toISOString() };
    const expected = new Map<number, FindingCode>();
    const put = async (entry: unknown, code: FindingCode) => expected.set((await access.append(entry)).index, code);
    await put({ ...base, requestId: "deny-but-allowed", decision: "deny", reason: "NO_CONSENT" }, "DENIAL_NOT_SUPPORTED");
    await put({ ...base, requestId: "future-block", decision: "allow", reason: "OK", block: head + 1000 }, "ENTRY_BLOCK_AFTER_ANCHOR");
    await put({ ...base, requestId: "backdated", decision: "allow", reason: "OK", time: headTime - 3600 }, "ENTRY_TIME_INVALID");
    await put({ ...base, requestId: "wrong-key", decision: "allow", reason: "OK", consentKey: consentKey(customers[1]!.address!, partner.address!, 1) }, "ACCESS_RECORD_MISMATCH");
    await put({ kind: "telemetry", note: "not an access" }, "ENTRY_MALFORMED");
    await put({ ...base, requestId: "bad-partner", decision: "allow", reason: "OK", partner: "0x1234" as Address }, "ENTRY_MALFORMED");
    const decisions = g.rt.deps.logs.decisions;
    const [card] = await decisions.getEntries(0, 1);
    const c = card!.entry as Json;
    const expectedDecisions = new Map<number, FindingCode>();
    expectedDecisions.set((await decisions.append({ ...c, runId: toHex0x(new Uint8Array(32).fill(7)) })).index, "MODEL_CARD_INVALID");
    expectedDecisions.set((await decisions.append({ kind: "decision", runId: toHex0x(new Uint8Array(32).fill(9)), subject: c0, modelHash: c.card.modelHash, inputHash: c.runId, segment: "x", explanationHash: c.runId, at: "now" })).index, "DECISION_WITHOUT_CARD");
    expectedDecisions.set((await decisions.append({ kind: "decision", runId: c.runId, subject: c0, modelHash: toHex0x(new Uint8Array(32).fill(1)), inputHash: c.runId, segment: "x", explanationHash: c.runId, at: "now" })).index, "DECISION_CARD_MISMATCH");
    await anchor("access");
    await anchor("decisions");

    const r = await cli(["--json", "audit", "verify"]);
    expect(r.code).toBe(1);
    const rep = r.report();
    const found = (log: string) => new Map(rep.failures.filter((f) => f.log === log && f.code !== "ACCESS_NOT_PERMITTED" && f.code !== "DECISION_WITHOUT_CONSENT").map((f) => [f.index, f.code]));
    expect(found("access")).toEqual(expected);
    expect(found("decisions")).toEqual(expectedDecisions);
    // earlier findings are still there: nothing is forgotten once anchored
    expect(codesOf(rep)).toContain("ACCESS_NOT_PERMITTED");
    expect(codesOf(rep)).toContain("DECISION_WITHOUT_CONSENT");
  });

  it("catches a decision backdated to the block before a revocation, one before the contracts existed, and a gateway that stops anchoring", async () => {
    const access = g.rt.deps.logs.access;
    const subject = customers[4]!.address!; // its consent was revoked at revokedBlock
    const agreementId = (await g.admin.agreementsOf(partner.address!))[0]!.toString();
    // two minutes pass on the ledger: a decision "now" on the block before the revocation is stale
    const provider = g.admin.provider as unknown as { send(method: string, params: unknown[]): Promise<unknown> };
    await provider.send("evm_increaseTime", [120]);
    await provider.send("evm_mine", []);
    const now = await g.admin.blockTime();
    const base = { kind: "access", actor: partner.did, partner: partner.address, subject, purpose: "profiling", categories: 4, decision: "allow", reason: "OK", consentKey: consentKey(subject, partner.address!, 1), agreementId, at: new Date().toISOString() };
    const backdated = await access.append({ ...base, requestId: "backdated-past-revocation", block: revokedBlock - 1, time: now });
    const ancient = await access.append({ ...base, requestId: "before-deployment", block: g.deployment.deployBlock - 1, time: now });
    await anchor("access");
    // the deployment block comes from the deployment record, as on an embedded network
    writeFileSync(join(dataDir, "deployment.json"), JSON.stringify({ chainId: 31337, custodia: g.deployment.custodia, deployBlock: g.deployment.deployBlock }));
    const byIndex = async (extra: string[] = []) => {
      const r = await cli(["--json", "audit", "verify", "--log", "access", ...extra]);
      expect(r.code).toBe(1);
      return new Map(r.report().failures.filter((f) => f.index === backdated.index || f.index === ancient.index).map((f) => [f.index, f.code]));
    };
    const expected = new Map<number | undefined, string>([
      [backdated.index, "ENTRY_BLOCK_STALE"],
      [ancient.index, "ENTRY_BLOCK_BEFORE_DEPLOYMENT"],
    ]);
    expect(await byIndex()).toEqual(expected);
    // replayed state and --from-block together: history still comes from the deployment on
    const anchors = (await cli(["--json", "audit", "verify", "--log", "access"])).report().data.anchors;
    const replayed = await cli(["--json", "audit", "verify", "--log", "access", "--replay", "--from-block", String(anchors.at(-1)!.blockNumber)]);
    expect(codesOf(replayed.report())).not.toContain("ANCHOR_NOT_GATEWAY");
    expect(await byIndex(["--replay"])).toEqual(expected);

    // a gateway that stops anchoring: the oldest pending entry waited too long
    await (g.rt.deps.anchorers.access as Anchorer).stop();
    const waiting = await access.append({ ...base, requestId: "never-anchored", block: await g.admin.blockNumber(), time: await g.admin.blockTime(), at: new Date(Date.now() - 3_600_000).toISOString() });
    const overdue = await cli(["--json", "audit", "verify", "--log", "access"]);
    expect(overdue.report().failures).toContainEqual(expect.objectContaining({ code: "ANCHOR_OVERDUE", index: waiting.index }));
  });
});

/** A port nothing listens on: bound once, then released. */
async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((resolve) => s.listen(0, "127.0.0.1", resolve));
  const port = (s.address() as { port: number }).port;
  await new Promise((resolve) => s.close(resolve));
  return port;
}
