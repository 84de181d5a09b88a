import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getBytes } from "ethers";
import { categoryMask, ethrDid, purposeId, type Address } from "../../core/domain.js";
import { canonicalBytes } from "../../core/jcs.js";
import { toHex0x } from "../../core/hash.js";
import { MerkleTree, leafHash, proofToHex } from "../../core/merkle.js";
import { EXIT } from "../../cli/io.js";
import { saveWallet, loadWallet, type LoadedWallet } from "../../cli/wallet-store.js";
import type { Anchorer } from "../../gateway/log/anchorer.js";
import { CHAIN_ID, sampleRecords, type Identity } from "../gateway/harness.js";
import { startCliEnv, type CliEnv } from "./cli-env.js";

type Json = any; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * The customer's and the partner's commands end to end: a real gateway on Hardhat's in-process
 * chain behind a recording proxy, the ledger over JSON-RPC, wallets on disk. The tests run in
 * order and share the network; the last one reads everything the commands sent.
 */
/**
 * Where a private key shows up in what was sent (`text`) or printed (`outputs`): as hex (with or
 * without 0x, any case), base64 or base64url at any byte alignment, raw bytes, or inside any
 * base64/base64url run once decoded (a JWT payload, say). Returns the form found, or null.
 */
function findKey(text: string, outputs: readonly string[], privateKey: string): string | null {
  const decoded = [...text.matchAll(/[A-Za-z0-9+/_-]{16,}={0,2}/g)].map((m) => Buffer.from(m[0].replace(/-/g, "+").replace(/_/g, "/"), "base64").toString("latin1")).join("\n");
  const haystacks = [text, decoded, outputs.join("\n")].map((h) => h.toLowerCase());
  const raw = Buffer.from(privateKey.slice(2), "hex");
  const forms = [privateKey.slice(2).toLowerCase(), raw.toString("base64"), raw.toString("base64url"), raw.toString("latin1")];
  for (let shift = 0; shift < 3; shift++) {
    const b64 = Buffer.concat([Buffer.alloc(shift), raw]).toString("base64");
    const middle = b64.slice(Math.ceil((shift * 4) / 3) + 1, -4);
    forms.push(middle, middle.replace(/\+/g, "-").replace(/\//g, "_"));
  }
  for (const form of forms) {
    // hex is case-insensitive; base64 forms are matched case-insensitively too (stricter, never looser)
    if (haystacks.some((h) => h.includes(form.toLowerCase()))) return form;
  }
  return null;
}

describe("custodia customer and partner commands against a real gateway", () => {
  let env: CliEnv;
  let dir: string;
  let partner: Identity;
  let partnerWallet: string;
  let alice: LoadedWallet; // did:ethr, made by `wallet create`
  let bob: LoadedWallet; // did:key
  let aliceWallet: string;
  let bobWallet: string;
  const outputs: string[] = [];

  const as = async (wallet: string, argv: string[]) => {
    const r = await env.run(["--wallet", wallet, ...argv]);
    outputs.push(r.stdout, r.stderr);
    return r;
  };
  const anchor = async (log: "access" | "decisions") => (env.g.rt.deps.anchorers[log] as Anchorer).anchorNow();

  beforeAll(async () => {
    // anchoring only when a test asks, so "pending anchor" is deterministic
    env = await startCliEnv({ config: { anchorEveryMs: 3_600_000, anchorEveryEntries: 1_000_000 } });
    dir = mkdtempSync(join(tmpdir(), "custodia-cli-wallets-"));
    partner = await env.g.partner(["profiling", "direct-marketing"], ["transactions", "behavioural", "demographic"]);
    partnerWallet = join(dir, "partner.json");
    saveWallet(partnerWallet, { privateKey: partner.wallet!.privateKey as `0x${string}`, address: partner.address!, did: partner.did, method: "ethr" });
    aliceWallet = join(dir, "alice.json");
    bobWallet = join(dir, "bob.json");
    expect((await as(aliceWallet, ["wallet", "create"])).code).toBe(EXIT.OK);
    expect((await as(bobWallet, ["wallet", "create", "--method", "key"])).code).toBe(EXIT.OK);
    alice = loadWallet(aliceWallet);
    bob = loadWallet(bobWallet);
    expect(alice.did).toBe(ethrDid(CHAIN_ID, alice.address)); // the chain id came from <data-dir>/deployment.json
    await env.g.ingest([...sampleRecords(alice.address), ...sampleRecords(bob.address)]);
  });
  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("grants from the wallet: the ledger holds exactly what was signed, and the receipt checks out", async () => {
    const r = await as(aliceWallet, ["--json", "consent", "grant", "--partner", partner.address!, "--purpose", "profiling", "--categories", "transactions,behavioural"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json).toMatchObject({ action: "grant", subject: alice.address, partner: partner.address, purpose: "profiling", categories: ["transactions", "behavioural"], expiresAt: null, nonce: 0 });
    expect(r.json.receipt).toMatchObject({ issuer: env.g.rt.did, subject: alice.did, action: "grant", txId: r.json.txId, signatureValid: true, contentMatches: true });
    const onLedger = await env.g.admin.getConsent(alice.address, partner.address!, purposeId("profiling"));
    expect(onLedger).toMatchObject({ categories: categoryMask(["transactions", "behavioural"]), expiresAt: 0, revokedAt: 0, nonce: 1 });
    expect(onLedger.grantedAt).toBeGreaterThan(0);
    // the human form says the same
    const list = await as(aliceWallet, ["consent", "list"]);
    expect(list.code).toBe(EXIT.OK);
    expect(list.stdout).toMatch(new RegExp(`active\\s+${partner.address}\\s+profiling\\s+transactions,behavioural`));
  });

  it("lists the consent, and the partner gets exactly the consented categories", async () => {
    const list = await as(aliceWallet, ["--json", "consent", "list"]);
    expect(list.json.consents).toEqual([expect.objectContaining({ partner: partner.address, purpose: "profiling", categories: ["transactions", "behavioural"], status: "active", revokedAt: null, nonce: 1 })]);
    const q = await as(partnerWallet, ["--json", "partner", "query", "--subject", alice.address, "--purpose", "profiling", "--categories", "transactions"]);
    expect(q.code, q.stdout + q.stderr).toBe(EXIT.OK);
    expect(q.json.results[0]).toMatchObject({ subject: alice.address, decision: "allow", reason: "OK" });
    expect(JSON.stringify(q.json.results[0].data)).toContain("grocery");
    expect(JSON.stringify(q.json.results[0].data)).not.toContain("@example.com");
    // beyond the consent: denied, exit 4, still printed with its receipt
    const beyond = await as(partnerWallet, ["--json", "partner", "query", "--subject", alice.address, "--purpose", "profiling", "--categories", "demographic"]);
    expect(beyond.code).toBe(EXIT.REJECTED);
    expect(beyond.json.results[0]).toMatchObject({ decision: "deny", reason: "CONSENT_CATEGORIES" });
    expect(beyond.json.results[0].receipt.index).toBeGreaterThanOrEqual(0);
    expect(beyond.json.results[0].data).toBeUndefined();
  });

  it("revokes: the next partner query is denied, and a second revocation is refused", async () => {
    const r = await as(aliceWallet, ["--json", "consent", "revoke", "--partner", partner.address!, "--purpose", "profiling"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json).toMatchObject({ action: "revoke", nonce: 1, receipt: { signatureValid: true, contentMatches: true } });
    expect((await env.g.admin.getConsent(alice.address, partner.address!, purposeId("profiling"))).revokedAt).toBeGreaterThan(0);
    const q = await as(partnerWallet, ["partner", "query", "--subject", alice.address, "--purpose", "profiling", "--categories", "transactions"]);
    expect(q.code).toBe(EXIT.REJECTED);
    expect(q.stdout).toContain("CONSENT_REVOKED");
    expect(q.stderr).toMatch(/^error \[ACCESS_DENIED\]: 1 of 1 subjects were denied/);
    const again = await as(aliceWallet, ["--json", "consent", "revoke", "--partner", partner.address!, "--purpose", "profiling"]);
    expect(again.code).toBe(EXIT.REJECTED);
    expect(again.json.error.code).toBe("CONSENT_NOT_ACTIVE");
    expect((await as(aliceWallet, ["--json", "consent", "list"])).json.consents[0]).toMatchObject({ status: "revoked", nonce: 2 });
  });

  it("grants from a did:key wallet, naming the partner by DID, with an expiry", async () => {
    const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    const r = await as(bobWallet, ["--json", "consent", "grant", "--partner", partner.did, "--purpose", "profiling", "--categories", "transactions,behavioural", "--expires", expires]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json.expiresAt).toBe(`${expires}T00:00:00.000Z`);
    expect((await env.g.admin.getConsent(bob.address, partner.address!, purposeId("profiling"))).expiresAt).toBe(Date.parse(expires) / 1000);
  });

  it("shows the customer's history with every proof verified here and the root anchored on the ledger", async () => {
    await anchor("access");
    const r = await as(aliceWallet, ["--json", "history"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json.entries.length).toBe(3); // allow, deny (categories), deny (revoked)
    expect(r.json.entries.map((e: Json) => e.status)).toEqual(["verified", "verified", "verified"]);
    expect(r.json.anchor).toMatchObject({ checked: true, anchoredSize: r.json.treeSize });
    expect(r.json.entries.map((e: Json) => e.entry.decision).sort()).toEqual(["allow", "deny", "deny"]);
    // a new access, not anchored yet: proven, marked pending; the older ones still verified, now through a consistency proof
    await as(partnerWallet, ["partner", "query", "--subject", alice.address, "--purpose", "direct-marketing", "--categories", "transactions"]);
    const later = await as(aliceWallet, ["--json", "history"]);
    expect(later.code).toBe(EXIT.OK);
    expect(later.json.anchor.anchoredSize).toBeLessThan(later.json.treeSize);
    const statuses = later.json.entries.map((e: Json) => [e.entry.purpose, e.status]);
    expect(statuses.filter(([, s]: string[]) => s === "verified")).toHaveLength(3);
    expect(statuses.filter(([p, s]: string[]) => p === "direct-marketing" && s === "pending anchor")).toHaveLength(1);
    const human = await as(aliceWallet, ["history"]);
    expect(human.stdout).toMatch(/3 verified, 1 pending anchor, 0 FAILED/);
  });

  it("without a reachable ledger, proofs are still checked but nothing is called verified", async () => {
    const r = await env.run(["--wallet", aliceWallet, "--rpc", "http://127.0.0.1:9", "--json", "history"]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.json.anchor.checked).toBe(false);
    expect(r.json.entries.every((e: Json) => e.status === "pending anchor")).toBe(true);
  });

  it("marks an entry the gateway altered FAILED with its code, and exits 1", async () => {
    await anchor("access");
    env.proxy.rewrite = (req, body) => {
      if (!req.url.startsWith("/v1/me/accesses")) return body;
      const page = JSON.parse(body);
      page.entries[0].entry.purpose = "research"; // content changed, leaf and proof left as they were
      const p = page.entries[1].proof.inclusion;
      if (p.length > 0) p[0] = `0x${"00".repeat(32)}`; // a proof element changed
      return JSON.stringify(page);
    };
    try {
      const r = await as(aliceWallet, ["--json", "history"]);
      expect(r.code).toBe(EXIT.VERIFY_FAILED);
      expect(r.json.ok).toBe(false);
      expect(r.json.entries[0]).toMatchObject({ status: "FAILED", code: "DATA_TAMPERED" });
      expect(r.json.entries[1]).toMatchObject({ status: "FAILED", code: "PROOF_ROOT_MISMATCH" });
      expect(r.json.entries.slice(2).every((e: Json) => e.status === "verified")).toBe(true);
      const human = await as(aliceWallet, ["history"]);
      expect(human.code).toBe(EXIT.VERIFY_FAILED);
      expect(human.stdout).toContain("FAILED [DATA_TAMPERED]");
      expect(human.stderr).toMatch(/^error \[VERIFY_FAILED\]: 2 entries failed verification/);
    } finally {
      env.proxy.rewrite = undefined;
    }
  });

  it("catches a gateway that rebuilds its tree around an altered entry: proofs fit, the anchored root does not", async () => {
    const log = env.g.rt.deps.logs.access;
    const all = await log.getEntries(0, log.size);
    env.proxy.rewrite = (req, body) => {
      if (!req.url.startsWith("/v1/me/accesses")) return body;
      const page = JSON.parse(body);
      const target = page.entries[0].index as number;
      const forgedEntry = { ...page.entries[0].entry, decision: "deny", reason: "NO_CONSENT" }; // hide a release
      const leaves = all.map((e) => (e.index === target ? leafHash(canonicalBytes(forgedEntry)) : getBytes(e.leafHash)));
      const tree = MerkleTree.fromLeafHashes(leaves);
      const root = toHex0x(tree.root());
      page.root = root;
      for (const e of page.entries) {
        if (e.index === target) {
          e.entry = forgedEntry;
          e.leafHash = toHex0x(leaves[target]!);
        }
        e.proof = { treeSize: tree.size, root, inclusion: proofToHex(tree.inclusionProof(e.index, tree.size)) };
      }
      return JSON.stringify(page);
    };
    try {
      const r = await as(aliceWallet, ["--json", "history"]);
      expect(r.code).toBe(EXIT.VERIFY_FAILED);
      expect(r.json.anchor.failure.code).toBe("PROOF_ROOT_MISMATCH");
      expect(r.json.entries.every((e: Json) => e.status === "FAILED")).toBe(true);
    } finally {
      env.proxy.rewrite = undefined;
    }
  });

  it("shows the customer's segment decision with its explanation, verified, and catches an altered explanation", async () => {
    // two more consenting customers so a segmentation has enough subjects
    for (let i = 0; i < 2; i++) {
      const c = await env.g.customer();
      await env.g.ingest(sampleRecords(c.address!, 4 + i));
      expect((await env.g.grant(c, partner, "profiling", ["transactions", "behavioural"])).status).toBe(200);
    }
    const run = await as(partnerWallet, ["--json", "partner", "segment", "--purpose", "profiling", "--k", "2", "--seed", "3"]);
    expect(run.code, run.stdout + run.stderr).toBe(EXIT.OK);
    expect(run.json.included).toBe(3); // bob and the two above; alice revoked
    expect(run.json.decisions.map((d: Json) => d.subject)).toContain(bob.address);
    expect(run.json.decisions.map((d: Json) => d.subject)).not.toContain(alice.address);
    await anchor("decisions");
    const mine = await as(bobWallet, ["--json", "decisions"]);
    expect(mine.code, mine.stdout + mine.stderr).toBe(EXIT.OK);
    expect(mine.json.entries).toHaveLength(1);
    expect(mine.json.entries[0]).toMatchObject({ status: "verified", entry: { kind: "decision", subject: bob.address, runId: run.json.runId } });
    expect(mine.json.entries[0].explanation.segment).toBe(mine.json.entries[0].entry.segment);
    env.proxy.rewrite = (req, body) => {
      if (!req.url.startsWith("/v1/me/decisions")) return body;
      const page = JSON.parse(body);
      page.decisions[0].explanation.segment = "segment-99";
      return JSON.stringify(page);
    };
    try {
      const bad = await as(bobWallet, ["--json", "decisions"]);
      expect(bad.code).toBe(EXIT.VERIFY_FAILED);
      expect(bad.json.entries[0]).toMatchObject({ status: "FAILED", code: "DATA_TAMPERED" });
    } finally {
      env.proxy.rewrite = undefined;
    }
  });

  it("erases only with --yes; afterwards the partner is refused and the erasure is in the history", async () => {
    const unconfirmed = await as(bobWallet, ["--json", "erase"]);
    expect(unconfirmed.code).toBe(EXIT.USAGE);
    expect(unconfirmed.json.error.code).toBe("INVALID_ARGUMENT");
    expect(await env.g.rt.deps.vault.status(bob.address)).toBe("active");
    // the vault's commitment to bob's records, signed in the wallet and recorded on the ledger
    const shown = await as(bobWallet, ["--json", "data"]);
    expect(shown.code, shown.stdout + shown.stderr).toBe(EXIT.OK);
    expect(shown.json).toMatchObject({ subject: bob.address, status: "active", ledger: { committed: false } });
    const commitment = shown.json.commitment as `0x${string}`;
    expect(commitment).toMatch(/^0x[0-9a-f]{64}$/);
    const committed = await as(bobWallet, ["--json", "data", "commit"]);
    expect(committed.code, committed.stdout + committed.stderr).toBe(EXIT.OK);
    expect(committed.json).toMatchObject({ commitment });
    expect(await env.g.admin.getCommitment(commitment)).toMatchObject({ subject: bob.address, erasedAt: 0 });
    const again = await as(bobWallet, ["--json", "data", "commit"]);
    expect(again.code).toBe(EXIT.REJECTED);
    expect(again.json.error.code).toBe("COMMITMENT_EXISTS");

    const r = await as(bobWallet, ["--json", "erase", "--yes"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json).toMatchObject({ erased: true, subject: bob.address, receipt: { log: "access" }, ledger: { txId: expect.stringMatching(/^0x/) } });
    expect(await env.g.rt.deps.vault.status(bob.address)).toBe("erased");
    // the erasure is on the ledger, against the commitment the wallet signed
    expect((await env.g.admin.getCommitment(commitment))!.erasedAt).toBeGreaterThan(0);
    const after = await as(bobWallet, ["--json", "data"]);
    expect(after.json).toMatchObject({ status: "erased", commitment, ledger: { committed: true } });
    expect(after.json.ledger.erasedAt).toBeGreaterThan(0);
    const q = await as(partnerWallet, ["--json", "partner", "query", "--subject", bob.address, "--purpose", "profiling", "--categories", "transactions"]);
    expect(q.code).toBe(EXIT.REJECTED);
    expect(q.json.results[0]).toMatchObject({ decision: "deny", reason: "SUBJECT_ERASED" });
    const twice = await as(bobWallet, ["--json", "erase", "--yes"]);
    expect(twice.code).toBe(EXIT.REJECTED);
    expect(twice.json.error.code).toBe("SUBJECT_ERASED");
    const h = await as(bobWallet, ["--json", "history"]);
    expect(h.code).toBe(EXIT.OK);
    expect(h.json.entries.some((e: Json) => e.entry.kind === "erasure" && e.index === r.json.receipt.index)).toBe(true);
  });

  it("validates every input before any request, with exit 2 and the valid values", async () => {
    const before = env.proxy.requests.length;
    const rpcBefore = env.rpc.requests.length;
    const cases: [string[], string, RegExp?][] = [
      [["consent", "grant", "--partner", partner.address!, "--purpose", "marketing", "--categories", "transactions"], "INVALID_PURPOSE", /valid purposes: service-provision, profiling, direct-marketing/],
      [["consent", "grant", "--partner", partner.address!, "--purpose", "profiling", "--categories", "transactions,shoe-size"], "INVALID_CATEGORIES", /valid categories: contact, demographic, transactions/],
      [["consent", "grant", "--partner", "0x1234", "--purpose", "profiling", "--categories", "transactions"], "INVALID_ADDRESS"],
      [["consent", "grant", "--partner", partner.address!.replace(/[a-f]/, (c) => c.toUpperCase()), "--purpose", "profiling", "--categories", "transactions"], "INVALID_ADDRESS", /checksum/],
      [["consent", "grant", "--partner", "did:web:example.com", "--purpose", "profiling", "--categories", "transactions"], "INVALID_DID"],
      [["consent", "grant", "--partner", partner.address!, "--purpose", "profiling", "--categories", "transactions", "--expires", "2001-01-01"], "INVALID_ARGUMENT", /future/],
      [["consent", "grant", "--partner", partner.address!, "--purpose", "profiling", "--categories", "transactions", "--expires", "next tuesday"], "INVALID_ARGUMENT"],
      [["consent", "revoke", "--partner", partner.address!, "--purpose", "nope"], "INVALID_PURPOSE"],
      [["history", "--limit", "0"], "INVALID_ARGUMENT"],
      [["partner", "query", "--purpose", "profiling", "--categories", "transactions"], "INVALID_ARGUMENT", /at least one customer/],
      [["partner", "query", "--subject", "0xzz", "--purpose", "profiling", "--categories", "transactions"], "INVALID_ADDRESS"],
      [["partner", "segment", "--purpose", "profiling", "--k", "1"], "INVALID_ARGUMENT"],
    ];
    for (const [argv, code, message] of cases) {
      const r = await as(aliceWallet, ["--json", ...argv]);
      expect(r.code, argv.join(" ")).toBe(EXIT.USAGE);
      expect(r.json.error.code, argv.join(" ")).toBe(code);
      if (message) expect(r.json.error.message).toMatch(message);
    }
    const missing = await as(aliceWallet, ["consent", "grant", "--purpose", "profiling", "--categories", "transactions"]);
    expect(missing.code).toBe(EXIT.USAGE);
    expect(missing.stderr).toContain("--partner");
    expect(env.proxy.requests.length).toBe(before);
    expect(env.rpc.requests.length).toBe(rpcBefore);
  });

  it("refuses a customer acting as a partner, with the gateway's code (exit 4)", async () => {
    const r = await as(aliceWallet, ["--json", "partner", "query", "--subject", bob.address, "--purpose", "profiling", "--categories", "transactions"]);
    expect(r.code).toBe(EXIT.REJECTED);
    expect(r.json.error.code).toBe("FORBIDDEN");
  });

  it("reports a gateway that is down or failing with exit 3, and a garbled answer as GATEWAY_MISBEHAVED", async () => {
    const down = await env.run(["--wallet", aliceWallet, "--gateway", "http://127.0.0.1:9", "--json", "consent", "list"]);
    expect(down.code).toBe(EXIT.UNAVAILABLE);
    expect(down.json.error.code).toBe("GATEWAY_UNAVAILABLE");
    const human = await env.run(["--wallet", aliceWallet, "--gateway", "http://127.0.0.1:9", "consent", "list"]);
    expect(human.stderr).toMatch(/^error \[GATEWAY_UNAVAILABLE\]: cannot reach the gateway at http:\/\/127\.0\.0\.1:9/);
    env.proxy.intercept = (req) => (req.url.startsWith("/v1/me/consents") ? { status: 503, body: { code: "LEDGER_STALE", message: "the ledger view is stale" } } : undefined);
    try {
      const stale = await as(aliceWallet, ["--json", "consent", "list"]);
      expect(stale.code).toBe(EXIT.UNAVAILABLE);
      expect(stale.json.error.code).toBe("LEDGER_STALE");
    } finally {
      env.proxy.intercept = undefined;
    }
    env.proxy.rewrite = (req, body) => (req.url.startsWith("/v1/me/consents") ? "<html>oops</html>" : body);
    try {
      const garbled = await as(aliceWallet, ["--json", "consent", "list"]);
      expect(garbled.code).toBe(EXIT.UNAVAILABLE);
      expect(garbled.json.error.code).toBe("GATEWAY_MISBEHAVED");
    } finally {
      env.proxy.rewrite = undefined;
    }
  });

  it("refuses a gateway that serves another contract than the configured one, before signing anything", async () => {
    const before = env.proxy.requests.filter((r) => r.method === "POST").length;
    const r = await as(aliceWallet, ["--json", "--contract", "0x000000000000000000000000000000000000dEaD", "consent", "grant", "--partner", partner.address!, "--purpose", "direct-marketing", "--categories", "transactions"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.json.error.code).toBe("CONFIG_INVALID");
    expect(env.proxy.requests.filter((x) => x.method === "POST").length).toBe(before);
  });

  it("never sends a private key anywhere: every byte to the gateway and the ledger, and every output, is clean", () => {
    const sent = Buffer.concat([env.proxy.bytes(), env.rpc.bytes()]);
    const text = sent.toString("latin1");
    // the recording works: what was sent names the customers, carries signatures and tokens
    expect(text).toContain(alice.address);
    expect(text).toContain(bob.did);
    expect(text).toMatch(/Bearer [A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+/);
    expect(env.proxy.requests.some((r) => r.url === "/v1/consents" && r.body.includes(alice.address))).toBe(true);
    expect(env.proxy.requests.some((r) => r.url === "/v1/me/erasure")).toBe(true);

    expect(findKey(text, outputs, alice.privateKey)).toBeNull();
    expect(findKey(text, outputs, bob.privateKey)).toBeNull();
    // and the search finds a key where there is one: planted in hex, base64url inside a JWT-like
    // payload, and base64 at an odd byte alignment inside a longer value
    const raw = Buffer.from(alice.privateKey.slice(2), "hex");
    const jwtish = Buffer.from(JSON.stringify({ iss: "x", k: raw.toString("base64url") })).toString("base64url");
    const shifted = Buffer.concat([Buffer.from([7]), raw, Buffer.from([9, 9])]).toString("base64");
    for (const plant of [` key=${alice.privateKey.slice(2)} `, `Bearer e30.${jwtish}.sig`, `"blob":"${shifted}"`]) {
      expect(findKey(text + plant, outputs, alice.privateKey), plant.slice(0, 20)).not.toBeNull();
    }
    expect(findKey(text, [...outputs, `oops ${alice.privateKey}`], alice.privateKey)).not.toBeNull();
  });

  it("uses the configured wallet path and gateway from the environment as well as flags", async () => {
    const { cli } = await import("./cli-env.js");
    const r = await cli(["--json", "consent", "list"], { CUSTODIA_WALLET: aliceWallet, CUSTODIA_GATEWAY_URL: env.proxy.url, CUSTODIA_DATA_DIR: env.dataDir });
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    expect(r.json.subject).toBe(alice.address);
    expect((r.json.consents as Json[]).map((c) => [c.partner, c.purpose, c.status])).toEqual([[partner.address as Address, "profiling", "revoked"]]);
  });
});
