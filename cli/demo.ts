/**
 * `npm run demo`: the whole network at work, end to end, on the embedded defaults. It starts its
 * own network exactly as `npm start` does (startNetwork + createGatewayRuntime + listen) in a
 * fresh temporary data directory, then:
 *
 *   1. the admin registers two partners with different agreements and an auditor;
 *   2. the operator ingests synthetic customer records into the vault;
 *   3. a few hundred customers, each with a wallet (did:ethr and did:key), sign consents in their
 *      wallets — some for one partner only, some for both — and the gateway relays them;
 *   4. some customers revoke;
 *   5. the partners ask for data: allowed where agreement and consent cover it, denied otherwise;
 *   6. one partner runs a segmentation; one customer erases their data;
 *   7. a customer checks their own history and decisions against the ledger;
 *   8. once everything is anchored, the independent auditor verifies both logs against the ledger.
 *
 * Every step goes through the same code the `custodia` commands use (cli/commands/*), over HTTP
 * and JSON-RPC. Usage: `npm run demo -- [--customers 300] [--data-dir dir] [--json]`.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { Command, CommanderError } from "commander";
import { computeAddress } from "ethers";
import { generateCustomers } from "../analytics/synthetic.js";
import { ethrDid, type Address, type PurposeKey } from "../core/domain.js";
import { startNetwork, type Network } from "../contracts/network.js";
import { EvmLedger } from "../contracts/evm-ledger.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../gateway/runtime.js";
import { GatewayClient, type GatewayHealth } from "./gateway-http.js";
import { EXIT, exitCodeOf, printError, printResult, processIo, progress, type CliIo, type ExitCode } from "./io.js";
import { addAgreement, addMember } from "./commands/admin.js";
import { queryData, runSegmentation } from "./commands/partner.js";
import { commitMine, eraseMine, grantConsent, readOwnLog, revokeConsent, type OwnLogReport } from "./commands/wallet.js";
import { newWallet, saveWallet, type LoadedWallet } from "./wallet-store.js";
// The independent auditor (cli/audit/, written separately): the demo ends with its verification.
import { formatVerifyReport, verifyAudit, type VerifyReport } from "./audit/verify.js";
import { GatewayClient as AuditClient } from "./audit/gateway-client.js";

/** What `npm run demo` may be told. */
export interface DemoOptions {
  /** Customers with wallets (at least 10). */
  customers: number;
  /** Data directory; default a fresh temporary one, removed at the end unless `keep`. */
  dataDir?: string;
  keep?: boolean;
  /** Seed of the synthetic data and the segmentation. */
  seed?: number;
  /** Requests in flight at once while customers act. */
  concurrency?: number;
  json?: boolean;
}

/** What the demo did and found, printed at the end (one object with --json). */
export interface DemoSummary {
  ok: boolean;
  dataDir: string;
  kept: boolean;
  network: { rpcUrl: string; chainId: number; contract: string; gateway: string; gatewayDid: string };
  customers: { total: number; didEthr: number; didKey: number };
  partners: { name: string; account: Address; purposes: PurposeKey[]; categories: string[] }[];
  auditor: Address;
  ingested: { records: number; subjects: number };
  consents: { granted: number; onlyOnePartner: number; bothPartners: number; revoked: number };
  queries: { allowed: number; denied: number; deniedByReason: Record<string, number> };
  segmentation: { runId: string; included: number; excluded: number; segments: Record<string, number> };
  erasure: { subject: Address; ledgerTx: string | null; deniedAfterwards: string };
  customerCheck: { subject: Address; history: Pick<OwnLogReport, "verified" | "pending" | "failed">; decisions: Pick<OwnLogReport, "verified" | "pending" | "failed"> };
  logs: Record<string, { size: number; anchored: number }>;
  audit: { ok: boolean; failures: number; logs: { name: string; size: number; anchoredSize: number; entriesVerified: number; pending: number }[] };
  timingsMs: Record<string, number>;
}

const PARTNER_A = { name: "Northwind Retail", purposes: ["profiling", "direct-marketing"] as PurposeKey[], categories: ["transactions", "behavioural", "demographic", "contact"] };
const PARTNER_B = { name: "Contoso Credit", purposes: ["credit-checking", "fraud-prevention"] as PurposeKey[], categories: ["financial", "transactions"] };

/** Runs `fn` over `items` with at most `limit` in flight; results in input order. */
async function pool<T, R>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<R>, onDone?: () => void): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
      onDone?.();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}


/** Which consents customer i gives in the demo: most to partner A, a third to partner B, one in ten to B only. */
function plan(i: number): { a: boolean; b: boolean; revokeA: boolean; demographic: boolean } {
  const a = i % 10 !== 9;
  const b = i % 3 === 0 || i % 10 === 9;
  return { a, b, revokeA: a && i % 7 === 3, demographic: i % 4 === 0 };
}

async function waitForAnchors(client: GatewayClient, timeoutMs: number): Promise<GatewayHealth["logs"]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const h = await new GatewayClient(client.baseUrl, { wallet: null }).health();
    if (Object.values(h.logs).every((l) => l.anchored === l.size) || Date.now() > deadline) return h.logs;
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs the demo; resolves to the exit code (0 when the audit at the end is clean) and the summary. */
export async function runDemo(options: DemoOptions, io: CliIo = processIo()): Promise<{ code: ExitCode; summary: DemoSummary }> {
  const n = options.customers;
  const json = options.json === true;
  const seed = options.seed ?? 7;
  const concurrency = options.concurrency ?? 24;
  const ownDir = options.dataDir === undefined;
  const dataDir = resolve(options.dataDir ?? mkdtempSync(join(tmpdir(), "custodia-demo-")));
  const keep = options.keep === true || !ownDir;
  const say = (line: string): void => {
    if (!json) io.stderr(`demo: ${line}\n`);
  };
  const timings: Record<string, number> = {};
  let t0 = Date.now();
  const lap = (name: string): void => {
    timings[name] = Date.now() - t0;
    t0 = Date.now();
  };

  let network: Network | undefined;
  let gateway: GatewayRuntime | undefined;
  try {
    /* ------------------------------------------------ the network, as npm start */
    say(`starting the embedded network in ${dataDir}`);
    network = await startNetwork({ dataDir, ledgerPort: 0 });
    gateway = await createGatewayRuntime({
      dataDir,
      ...networkRuntimeOptions(network),
      // anchor every second, so the audit at the end covers everything without a long wait
      config: { port: 0, anchorEveryMs: 1_000, ledgerPollMs: 250 },
      logger: false,
    });
    const url = await gateway.listen();
    const chainId = network.deployment.chainId;
    const contract = network.deployment.custodia;
    const settings = { chainId, contract };
    const probe = new GatewayClient(url, { wallet: null });
    const health = await probe.health();
    const clientFor = (w: LoadedWallet): GatewayClient => new GatewayClient(url, { wallet: w, health });
    say(`ledger ${network.rpcUrl} (chain ${chainId}), contract ${contract}, gateway ${url}`);
    lap("network");

    /* ------------------------------------------------ members and agreements */
    const partnerA = newWallet("ethr", chainId);
    const partnerB = newWallet("ethr", chainId);
    const auditor = newWallet("ethr", chainId);
    const walletsDir = join(dataDir, "wallets");
    for (const [name, w] of [["partner-a", partnerA], ["partner-b", partnerB], ["auditor", auditor]] as const) saveWallet(join(walletsDir, `${name}.json`), w, { force: true, chainId });
    const admin = network.admin;
    await Promise.all([
      addMember(admin, { account: partnerA.address, did: partnerA.did, role: "PARTNER", org: PARTNER_A.name }),
      addMember(admin, { account: partnerB.address, did: partnerB.did, role: "PARTNER", org: PARTNER_B.name }),
      addMember(admin, { account: auditor.address, did: auditor.did, role: "AUDITOR", org: "Independent Audit LLP" }),
    ]);
    const now = await admin.blockTime();
    await Promise.all(
      [
        [partnerA, PARTNER_A],
        [partnerB, PARTNER_B],
      ].map(([w, spec]) => {
        const p = spec as typeof PARTNER_A;
        return addAgreement(admin, { partner: (w as LoadedWallet).address, purposes: p.purposes, categories: p.categories as never, validFrom: now - 60, validUntil: now + 365 * 86_400, terms: new TextEncoder().encode(`${p.name} data-sharing agreement, v1`) });
      }),
    );
    say(`registered partners ${partnerA.address} (${PARTNER_A.name}), ${partnerB.address} (${PARTNER_B.name}) and auditor ${auditor.address}`);
    lap("members");

    /* ------------------------------------------------ customers and their data */
    const customers = Array.from({ length: n }, (_, i) => newWallet(i % 3 === 2 ? "key" : "ethr", chainId));
    // a kept network can be explored afterwards with these wallets (see the summary)
    if (keep) customers.forEach((w, i) => saveWallet(join(walletsDir, `customer-${i + 1}.json`), w, { force: true, chainId }));
    const data = generateCustomers({ n, seed });
    const subjectOf = new Map(data.profiles.map((p, i) => [p.subject, customers[i]!.address]));
    const records: unknown[][] = customers.map(() => []);
    data.profiles.forEach((p, i) => {
      records[i]!.push({ kind: "profile", subject: customers[i]!.address, joinedAt: p.joinedAt, ...(p.ageBand ? { ageBand: p.ageBand } : {}), ...(p.gender ? { gender: p.gender } : {}), ...(p.region ? { region: p.region } : {}), email: `customer${i + 1}@example.com`, income: 20_000 + ((i * 7919) % 90_000) });
    });
    const txCount = new Map<string, number>();
    for (const t of data.transactions) {
      const subject = subjectOf.get(t.subject)!;
      const k = txCount.get(subject) ?? 0;
      txCount.set(subject, k + 1);
      records[data.profiles.findIndex((p) => p.subject === t.subject)]!.push({ kind: "transaction", subject, id: `t${k}`, at: t.at, amount: t.amount, currency: "EUR", category: t.category, channel: t.channel });
    }
    const operator: LoadedWallet = { privateKey: network.gatewayWallet.privateKey as `0x${string}`, address: computeAddress(network.gatewayWallet.privateKey) as Address, did: ethrDid(chainId, network.gatewayWallet.address), method: "ethr" };
    const opClient = clientFor(operator);
    const batches: unknown[][] = [];
    for (let i = 0; i < n; i += 50) batches.push(records.slice(i, i + 50).flat());
    const bar = progress(io, "ingest   ", batches.length, !json);
    let ingested = 0;
    for (const b of batches) {
      ingested += (await opClient.ingest(b)).records;
      bar.tick();
    }
    bar.done();
    say(`ingested ${ingested} records for ${n} customers`);
    lap("ingest");

    /* ------------------------------------------------ consents, signed in the wallets */
    const plans = customers.map((_, i) => plan(i));
    const grants = plans.reduce((s, p) => s + (p.a ? 1 : 0) + (p.b ? 1 : 0), 0);
    const gbar = progress(io, "consents ", grants, !json);
    await pool(
      customers,
      concurrency,
      async (w, i) => {
        const c = clientFor(w);
        const p = plans[i]!;
        if (p.a) {
          await grantConsent(c, w, { partner: partnerA.address, partnerDid: partnerA.did, purpose: "profiling", categories: p.demographic ? ["transactions", "behavioural", "demographic"] : ["transactions", "behavioural"], expiresAt: 0 }, settings);
          gbar.tick();
        }
        if (p.b) {
          await grantConsent(c, w, { partner: partnerB.address, partnerDid: partnerB.did, purpose: "credit-checking", categories: ["financial", "transactions"], expiresAt: 0 }, settings);
          gbar.tick();
        }
      },
    );
    gbar.done();
    const revokers = customers.filter((_, i) => plans[i]!.revokeA);
    const rbar = progress(io, "revokes  ", revokers.length, !json);
    await pool(revokers, concurrency, (w) => revokeConsent(clientFor(w), w, { partner: partnerA.address, purpose: "profiling" }, settings), () => rbar.tick());
    rbar.done();
    const both = plans.filter((p) => p.a && p.b).length;
    say(`${grants} consents granted (${both} customers consent to both partners, ${n - both} to one), ${revokers.length} revoked`);
    lap("consents");

    /* ------------------------------------------------ partners ask */
    const aClient = clientFor(partnerA);
    const bClient = clientFor(partnerB);
    const everyone = customers.map((c) => c.address);
    const deniedByReason: Record<string, number> = {};
    let allowed = 0;
    let denied = 0;
    const count = (r: Awaited<ReturnType<typeof queryData>>): void => {
      allowed += r.allowed;
      denied += r.denied;
      for (const x of r.results) if (x.decision === "deny") deniedByReason[x.reason] = (deniedByReason[x.reason] ?? 0) + 1;
    };
    for (let i = 0; i < everyone.length; i += 1000) {
      count(await queryData(aClient, everyone.slice(i, i + 1000), "profiling", ["transactions"]));
      count(await queryData(bClient, everyone.slice(i, i + 1000), "credit-checking", ["financial"]));
    }
    count(await queryData(aClient, everyone.slice(0, 5), "direct-marketing", ["contact"])); // agreement yes, consent no
    count(await queryData(bClient, everyone.slice(0, 5), "profiling", ["transactions"])); // no agreement
    count(await queryData(aClient, everyone.slice(0, 5), "profiling", ["location"])); // beyond the agreement's categories
    say(`partner queries: ${allowed} subjects allowed, ${denied} denied (${Object.entries(deniedByReason).map(([k, v]) => `${k} ${v}`).join(", ")})`);
    lap("queries");

    const seg = await runSegmentation(aClient, "profiling", { seed });
    const segments: Record<string, number> = {};
    for (const d of seg.decisions) segments[d.segment] = (segments[d.segment] ?? 0) + 1;
    say(`segmentation ${seg.runId.slice(0, 18)}…: ${seg.included} customers in ${Object.keys(segments).length} segments, ${seg.excluded} left out`);
    lap("segmentation");

    /* ------------------------------------------------ erasure, and a customer's own check */
    const erasedIndex = plans.findIndex((p) => p.a && !p.revokeA);
    const erased = customers[erasedIndex]!;
    // the wallet commits to the vault's record of its data, then erases it: both on the ledger
    await commitMine(clientFor(erased), erased, settings);
    const erasure = await eraseMine(clientFor(erased), erased, settings);
    const after = await queryData(aClient, [erased.address], "profiling", ["transactions"]);
    count(after);
    say(`customer ${erased.address} erased their data (recorded on the ledger in block ${erasure.ledger?.blockNumber ?? "?"}); the next request for it: ${after.results[0]!.reason}`);
    lap("erasure");

    const logs = await waitForAnchors(probe, 30_000);
    lap("anchoring");
    const checker = customers[plans.findIndex((p, i) => p.a && !p.revokeA && i !== erasedIndex)]!;
    const reader = new EvmLedger({ provider: network.provider, address: contract, deployBlock: network.deployment.deployBlock });
    const history = await readOwnLog(clientFor(checker), checker, "access", { settings, ledger: reader });
    const decisions = await readOwnLog(clientFor(checker), checker, "decisions", { settings, ledger: reader });
    say(`customer ${checker.address} checked their record: history ${history.verified} verified / ${history.failed} failed, decisions ${decisions.verified} verified / ${decisions.failed} failed`);
    lap("customerCheck");

    /* ------------------------------------------------ the independent audit */
    // Call site of the auditor's verification (cli/audit/verify.ts): read-only ledger access and
    // the gateway's audit API, signed in as the auditor registered above.
    const report: VerifyReport = await verifyAudit({
      ledger: reader,
      source: new AuditClient({ baseUrl: url, auditor: { privateKey: auditor.privateKey, did: auditor.did } }),
      network: { chainId, contract },
      ...(json ? {} : { progress: (label: string, total: number) => progress(io, label.padEnd(9), total) }),
    });
    if (!json) io.stderr(formatVerifyReport(report).replace(/\n?$/, "\n"));
    lap("audit");

    const summary: DemoSummary = {
      ok: report.ok && history.failed === 0 && decisions.failed === 0,
      dataDir,
      kept: keep,
      network: { rpcUrl: network.rpcUrl, chainId, contract, gateway: url, gatewayDid: health.gateway.did },
      customers: { total: n, didEthr: customers.filter((c) => c.method === "ethr").length, didKey: customers.filter((c) => c.method === "key").length },
      partners: [
        { name: PARTNER_A.name, account: partnerA.address, purposes: PARTNER_A.purposes, categories: PARTNER_A.categories },
        { name: PARTNER_B.name, account: partnerB.address, purposes: PARTNER_B.purposes, categories: PARTNER_B.categories },
      ],
      auditor: auditor.address,
      ingested: { records: ingested, subjects: n },
      consents: { granted: grants, onlyOnePartner: plans.filter((p) => p.a !== p.b).length, bothPartners: both, revoked: revokers.length },
      queries: { allowed, denied, deniedByReason },
      segmentation: { runId: seg.runId, included: seg.included, excluded: seg.excluded, segments },
      erasure: { subject: erased.address, ledgerTx: erasure.ledger?.txId ?? null, deniedAfterwards: after.results[0]!.reason },
      customerCheck: {
        subject: checker.address,
        history: { verified: history.verified, pending: history.pending, failed: history.failed },
        decisions: { verified: decisions.verified, pending: decisions.pending, failed: decisions.failed },
      },
      logs,
      audit: { ok: report.ok, failures: report.failures.length, logs: report.logs.map((l) => ({ name: l.name, size: l.size, anchoredSize: l.anchoredSize, entriesVerified: l.entriesVerified, pending: l.pending })) },
      timingsMs: timings,
    };
    printResult(io, json, summary, () => describeSummary(summary));
    return { code: summary.ok ? EXIT.OK : EXIT.VERIFY_FAILED, summary };
  } finally {
    await gateway?.close().catch(() => undefined);
    await network?.close().catch(() => undefined);
    if (!keep) rmSync(dataDir, { recursive: true, force: true });
  }
}

function describeSummary(s: DemoSummary): string {
  const total = Object.values(s.timingsMs).reduce((a, b) => a + b, 0);
  return [
    "",
    `Custodia demo ${s.ok ? "finished: everything verified" : "finished WITH FAILURES"} in ${(total / 1000).toFixed(1)} s`,
    `  network      chain ${s.network.chainId}, contract ${s.network.contract}, gateway ${s.network.gatewayDid}`,
    `  customers    ${s.customers.total} wallets (${s.customers.didEthr} did:ethr, ${s.customers.didKey} did:key), ${s.ingested.records} records in the vault`,
    ...s.partners.map((p) => `  partner      ${p.name} ${p.account}: ${p.purposes.join(", ")} over ${p.categories.join(", ")}`),
    `  consents     ${s.consents.granted} granted from wallets (${s.consents.bothPartners} customers to both partners, ${s.consents.onlyOnePartner} to one), ${s.consents.revoked} revoked`,
    `  requests     ${s.queries.allowed} subjects released, ${s.queries.denied} denied: ${Object.entries(s.queries.deniedByReason).map(([k, v]) => `${k} ${v}`).join(", ")}`,
    `  segmentation ${s.segmentation.included} customers in ${Object.keys(s.segmentation.segments).length} segments (${Object.entries(s.segmentation.segments).map(([k, v]) => `${k}: ${v}`).join(", ")}), ${s.segmentation.excluded} left out`,
    `  erasure      ${s.erasure.subject}: later requests answer ${s.erasure.deniedAfterwards}`,
    `  own record   ${s.customerCheck.subject}: history ${s.customerCheck.history.verified} verified, decisions ${s.customerCheck.decisions.verified} verified, ${s.customerCheck.history.failed + s.customerCheck.decisions.failed} failed`,
    `  logs         ${Object.entries(s.logs).map(([k, v]) => `${k} ${v.size} entries (${v.anchored} anchored)`).join(", ")}`,
    `  audit verify ${s.audit.ok ? "clean" : `${s.audit.failures} FAILURES`}: ${s.audit.logs.map((l) => `${l.name} ${l.entriesVerified}/${l.size} verified`).join(", ")}`,
    `  timings      ${Object.entries(s.timingsMs).map(([k, v]) => `${k} ${(v / 1000).toFixed(1)}s`).join(", ")}`,
    ...(s.kept
      ? [
          `  data         kept in ${s.dataDir} (wallets in ${join(s.dataDir, "wallets")}); to explore it:`,
          `               CUSTODIA_DATA_DIR=${s.dataDir} npm start`,
          `               custodia --data-dir ${s.dataDir} --wallet ${join(s.dataDir, "wallets", "customer-1.json")} history`,
        ]
      : ["  data         temporary, removed (pass --data-dir to keep it)"]),
  ].join("\n");
}

/** `npm run demo -- [options]`. */
export async function demoMain(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  const program = new Command("demo")
    .description("run a whole Custodia network end to end on the embedded defaults, then audit it")
    .option("--customers <n>", "customers with wallets (10-5000)", "300")
    .option("--data-dir <dir>", "keep the network in this directory (default: a temporary one, removed afterwards)")
    .option("--keep", "keep the temporary data directory")
    .option("--seed <n>", "seed of the synthetic data and the segmentation", "7")
    .option("--concurrency <n>", "customer requests in flight at once", "24")
    .option("--json", "print the summary as one JSON object")
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr });
  try {
    program.parse([...argv], { from: "user" });
  } catch (e) {
    return e instanceof CommanderError && e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
  }
  const o = program.opts<{ customers: string; dataDir?: string; keep?: boolean; seed: string; concurrency: string; json?: boolean }>();
  const int = (v: string, min: number, max: number): number | undefined => (/^\d+$/.test(v) && Number(v) >= min && Number(v) <= max ? Number(v) : undefined);
  const customers = int(o.customers, 10, 5000);
  const seed = int(o.seed, 0, 2 ** 31 - 1);
  const concurrency = int(o.concurrency, 1, 256);
  if (customers === undefined || seed === undefined || concurrency === undefined) {
    io.stderr("error [INVALID_ARGUMENT]: --customers must be 10-5000, --seed 0-2147483647, --concurrency 1-256\n");
    return EXIT.USAGE;
  }
  try {
    const { code } = await runDemo({ customers, seed, concurrency, json: o.json === true, keep: o.keep === true, ...(o.dataDir ? { dataDir: o.dataDir } : {}) }, io);
    return code;
  } catch (e) {
    printError(io, e, o.json === true);
    return exitCodeOf(e);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  demoMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`error [INTERNAL]: ${e instanceof Error ? e.message : String(e)}\n`);
      process.exitCode = 3;
    },
  );
}
