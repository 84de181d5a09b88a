import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { categoryMask, didHash, purposeMask } from "../../core/domain.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { EXIT } from "../../cli/io.js";
import { loadWallet, type LoadedWallet } from "../../cli/wallet-store.js";
import { startCliEnv, type CliEnv } from "./cli-env.js";

/**
 * The consortium's commands against the ledger over JSON-RPC (the in-process chain the test
 * gateway runs on), with the admin key from the data dir's keys.json as `npm start` leaves it,
 * and the operator's ingest through the gateway.
 */
describe("custodia admin and operator commands", () => {
  let env: CliEnv;
  let dir: string;
  let partner: LoadedWallet;
  let partnerPath: string;
  let agreementId: string;

  beforeAll(async () => {
    env = await startCliEnv();
    dir = mkdtempSync(join(tmpdir(), "custodia-admin-"));
    partnerPath = join(dir, "partner.json");
    expect((await env.run(["--wallet", partnerPath, "wallet", "create"])).code).toBe(EXIT.OK);
    partner = loadWallet(partnerPath);
  });
  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("registers a partner member under its DID, and shows it", async () => {
    const r = await env.run(["--json", "admin", "member", "add", "--did", partner.did, "--role", "partner", "--org", "Acme Retail"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json).toMatchObject({ account: partner.address, role: "PARTNER", didHash: didHash(partner.did) });
    expect(await env.g.admin.getMember(partner.address)).toEqual({ account: partner.address, didHash: didHash(partner.did), role: "PARTNER", orgHash: toHex0x(sha256(new TextEncoder().encode("Acme Retail"))), active: true });
    const show = await env.run(["--json", "admin", "member", "show", "--account", partner.did]);
    expect(show.json).toMatchObject({ account: partner.address, role: "PARTNER", active: true, didMatches: true });
  });

  it("refuses a second registration with the ledger's code (exit 4)", async () => {
    const r = await env.run(["--json", "admin", "member", "add", "--did", partner.did, "--role", "PARTNER", "--org", "Acme Retail"]);
    expect(r.code).toBe(EXIT.REJECTED);
    expect(r.json.error.code).toBe("MEMBER_EXISTS");
  });

  it("registers an agreement with the terms' hash, lists it, and ends it", async () => {
    const terms = join(dir, "terms.txt");
    writeFileSync(terms, "Acme may profile customers who consent.\n");
    const r = await env.run(["--json", "admin", "agreement", "add", "--partner", partner.address, "--purposes", "profiling,direct-marketing", "--categories", "transactions,behavioural", "--until", "2099-01-01", "--terms", terms]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    agreementId = r.json.id;
    const onLedger = await env.g.admin.getAgreement(BigInt(agreementId));
    expect(onLedger).toMatchObject({ partner: partner.address, purposes: purposeMask(["profiling", "direct-marketing"]), categories: categoryMask(["transactions", "behavioural"]), validUntil: Date.parse("2099-01-01") / 1000, termsHash: toHex0x(sha256(new TextEncoder().encode("Acme may profile customers who consent.\n"))), active: true });
    expect(r.json.termsFrom).toBe("file");
    const list = await env.run(["--json", "admin", "agreement", "list", "--partner", partner.address]);
    expect(list.json.agreements).toEqual([expect.objectContaining({ id: agreementId, purposes: ["profiling", "direct-marketing"], categories: ["transactions", "behavioural"], active: true })]);
  });

  it("lets the registered partner act: a customer's consent is honoured under the agreement", async () => {
    await env.g.rt.deps.view.sync();
    const customerPath = join(dir, "customer.json");
    expect((await env.run(["--wallet", customerPath, "wallet", "create", "--method", "key"])).code).toBe(EXIT.OK);
    const customer = loadWallet(customerPath);
    // the operator loads the customer's records with the operator key from keys.json
    const records = join(dir, "records.json");
    writeFileSync(records, JSON.stringify([{ kind: "profile", subject: customer.address, ageBand: "25-34" }, { kind: "transaction", subject: customer.address, id: "t1", at: 1_700_000_000, amount: 12.5, currency: "EUR", category: "grocery", channel: "app" }]));
    const ingest = await env.run(["--json", "operator", "ingest", records]);
    expect(ingest.code, ingest.stdout + ingest.stderr).toBe(EXIT.OK);
    expect(ingest.json).toEqual({ records: 2, subjects: 1 });
    const csv = join(dir, "tx.csv");
    writeFileSync(csv, `subject,id,at,amount,currency,category,channel\n${customer.address},t2,1700000100,3.20,EUR,grocery,store\n`);
    const ingestCsv = await env.run(["--json", "operator", "ingest", csv, "--kind", "transactions"]);
    expect(ingestCsv.code, ingestCsv.stdout + ingestCsv.stderr).toBe(EXIT.OK);
    expect(ingestCsv.json.records).toBe(1);

    expect((await env.run(["--wallet", customerPath, "consent", "grant", "--partner", partner.did, "--purpose", "profiling", "--categories", "transactions"])).code).toBe(EXIT.OK);
    const q = await env.run(["--wallet", partnerPath, "--json", "partner", "query", "--subject", customer.did, "--purpose", "profiling", "--categories", "transactions"]);
    expect(q.code, q.stdout + q.stderr).toBe(EXIT.OK);
    expect(q.json.results[0].data.transactions).toHaveLength(2);
  });

  it("ends the agreement: the partner gets nothing more, and ending twice is refused", async () => {
    const end = await env.run(["--json", "admin", "agreement", "end", agreementId]);
    expect(end.code, end.stdout + end.stderr).toBe(EXIT.OK);
    expect((await env.g.admin.getAgreement(BigInt(agreementId)))!.active).toBe(false);
    const again = await env.run(["--json", "admin", "agreement", "end", agreementId]);
    expect(again.code).toBe(EXIT.REJECTED);
    expect(again.json.error.code).toBe("AGREEMENT_ENDED");
    const unknown = await env.run(["--json", "admin", "agreement", "end", "9999"]);
    expect(unknown.code).toBe(EXIT.REJECTED);
    expect(unknown.json.error.code).toBe("AGREEMENT_UNKNOWN");
  });

  it("deactivates the member", async () => {
    const r = await env.run(["--json", "admin", "member", "deactivate", "--account", partner.address]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect((await env.g.admin.getMember(partner.address))!.active).toBe(false);
    const show = await env.run(["admin", "member", "show", "--account", partner.address]);
    expect(show.stdout).toContain("INACTIVE");
  });

  it("refuses the same commands from a key that is not an admin (exit 4, UNAUTHORIZED)", async () => {
    const r = await env.run(["--json", "admin", "member", "add", "--did", partner.did, "--role", "AUDITOR", "--org", "x", "--key-file", partnerPath]);
    expect(r.code).toBe(EXIT.REJECTED);
    expect(r.json.error.code).toBe("UNAUTHORIZED");
  });

  it("validates inputs before touching the ledger (exit 2)", async () => {
    const before = env.rpc.requests.length;
    const cases: [string[], string, RegExp?][] = [
      [["admin", "member", "add", "--did", partner.did, "--role", "KING", "--org", "x"], "INVALID_ARGUMENT", /valid roles: ADMIN, GATEWAY, PARTNER, AUDITOR/],
      [["admin", "member", "add", "--did", "did:web:acme.example", "--role", "PARTNER", "--org", "x"], "INVALID_DID"],
      [["admin", "member", "add", "--did", partner.did, "--account", "0x000000000000000000000000000000000000dEaD", "--role", "PARTNER", "--org", "x"], "INVALID_ARGUMENT", /names account/],
      [["admin", "agreement", "add", "--partner", partner.address, "--purposes", "profiling,world-domination", "--categories", "transactions", "--terms", "t"], "INVALID_PURPOSE", /valid purposes/],
      [["admin", "agreement", "add", "--partner", partner.address, "--purposes", "profiling", "--categories", "dna", "--terms", "t"], "INVALID_CATEGORIES", /valid categories/],
      [["admin", "agreement", "add", "--partner", partner.address, "--purposes", "profiling", "--categories", "transactions", "--from", "2030-01-01", "--until", "2029-01-01", "--terms", "t"], "INVALID_ARGUMENT", /after/],
      [["admin", "agreement", "add", "--partner", partner.address, "--purposes", "profiling", "--categories", "transactions", "--terms", "./no-such-terms.pdf"], "INVALID_ARGUMENT", /no such file/],
      [["admin", "agreement", "end", "abc"], "INVALID_ARGUMENT"],
      [["admin", "member", "deactivate", "--account", "bob"], "INVALID_ADDRESS"],
      [["operator", "ingest", join(dir, "missing.json")], "INVALID_ARGUMENT"],
      [["operator", "ingest", join(dir, "tx.csv")], "INVALID_ARGUMENT", /--kind/],
    ];
    for (const [argv, code, message] of cases) {
      const r = await env.run(["--json", ...argv]);
      expect(r.code, argv.join(" ")).toBe(EXIT.USAGE);
      expect(r.json.error.code, argv.join(" ")).toBe(code);
      if (message) expect(r.json.error.message, argv.join(" ")).toMatch(message);
    }
    expect(env.rpc.requests.length).toBe(before);
  });

  it("reports an unreachable ledger with exit 3", async () => {
    const r = await env.run(["--rpc", "http://127.0.0.1:9", "--json", "admin", "agreement", "end", "1"]);
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(r.json.error.code).toBe("LEDGER_UNAVAILABLE");
  });

  it("refuses an admin key file that other users can read (exit 5)", async () => {
    const loose = join(dir, "keys.json");
    writeFileSync(loose, JSON.stringify({ admin: `0x${"11".repeat(32)}` }), { mode: 0o644 });
    chmodSync(loose, 0o644);
    const r = await env.run(["--json", "admin", "agreement", "end", "1", "--key-file", loose]);
    expect(r.code).toBe(EXIT.LOCAL);
    expect(r.json.error.code).toBe("WALLET_INVALID");
    const nokey = join(dir, "nokey.json");
    writeFileSync(nokey, JSON.stringify({ gateway: `0x${"11".repeat(32)}` }), { mode: 0o600 });
    const r2 = await env.run(["--json", "admin", "agreement", "end", "1", "--key-file", nokey]);
    expect(r2.code).toBe(EXIT.LOCAL);
    expect(r2.json.error.code).toBe("WALLET_INVALID");
  });

  it("documents every command in --help", async () => {
    for (const argv of [["admin", "--help"], ["admin", "member", "add", "--help"], ["admin", "agreement", "add", "--help"], ["operator", "ingest", "--help"], ["consent", "grant", "--help"], ["partner", "query", "--help"], ["history", "--help"], ["wallet", "create", "--help"]]) {
      const r = await env.run(argv);
      expect(r.code, argv.join(" ")).toBe(EXIT.OK);
      expect(r.stdout, argv.join(" ")).toMatch(/Usage: custodia /);
    }
    const root = await env.run(["--help"]);
    for (const c of ["wallet", "consent", "history", "decisions", "erase", "partner", "admin", "operator"]) expect(root.stdout).toContain(c);
  });
});
