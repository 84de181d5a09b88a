import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Wallet } from "ethers";
import { categoryMask, purposeId, type Address, type ConsentRecord } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage } from "../../core/eip712.js";
import { isCustodiaError } from "../../core/errors.js";
import type { EvmLedger } from "../../contracts/evm-ledger.js";
import { EXIT } from "../../cli/io.js";
import { loadWallet, type LoadedWallet } from "../../cli/wallet-store.js";
import type { Identity } from "../gateway/harness.js";
import { startCliEnv, type CliEnv } from "./cli-env.js";

type Submission = { action: "grant"; message: ConsentGrantMessage & { expiresAt: number; deadline: number }; signature: string; record: ConsentRecord };

async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return "ACCEPTED";
  } catch (e) {
    return isCustodiaError(e) ? e.code : `not a CustodiaError: ${String(e)}`;
  }
}

/**
 * The gateway cannot forge a consent. A customer signs a grant in the CLI wallet; a malicious
 * gateway holds on to it (the proxy plays that gateway: it keeps the submission and answers 503)
 * and, with the operator's own ledger account and the admin's, tries to get consents onto the
 * ledger that the customer never signed. The contract refuses each with the exact code, and no
 * consent appears but the one the customer signed.
 */
describe("a gateway cannot forge a customer's consent", () => {
  let env: CliEnv;
  let dir: string;
  let partner: Identity;
  let other: Identity;
  let customer: LoadedWallet;
  let walletPath: string;
  let held: Submission;
  let asGateway: EvmLedger;
  let asAdmin: EvmLedger;
  const purpose = purposeId("profiling");

  const grant = (ledger: EvmLedger, m: ConsentGrantMessage, sig: string) => codeOf(ledger.grantConsent(m, sig));
  const consentOf = (p: Address) => env.g.admin.getConsent(customer.address, p, purpose);

  beforeAll(async () => {
    env = await startCliEnv();
    dir = mkdtempSync(join(tmpdir(), "custodia-forgery-"));
    partner = await env.g.partner(["profiling"], ["transactions"]);
    other = await env.g.partner(["profiling"], ["transactions", "location", "financial"]);
    walletPath = join(dir, "customer.json");
    expect((await env.run(["--wallet", walletPath, "wallet", "create"])).code).toBe(EXIT.OK);
    customer = loadWallet(walletPath);
    asGateway = env.g.rt.deps.ledger as EvmLedger;
    asAdmin = env.g.admin;

    // the "gateway" keeps the customer's signed grant and tells the wallet it is unavailable
    const expires = new Date(Date.now() + 30 * 86_400_000).toISOString().slice(0, 10);
    env.proxy.intercept = (req) => {
      if (req.method === "POST" && req.url === "/v1/consents") {
        held = JSON.parse(req.body) as Submission;
        return { status: 503, body: { code: "LEDGER_UNAVAILABLE", message: "try later" } };
      }
      return undefined;
    };
    const r = await env.run(["--wallet", walletPath, "--json", "consent", "grant", "--partner", partner.address!, "--purpose", "profiling", "--categories", "transactions", "--expires", expires]);
    env.proxy.intercept = undefined;
    expect(r.code).toBe(EXIT.UNAVAILABLE);
    expect(held.message).toMatchObject({ subject: customer.address, partner: partner.address, purpose, categories: categoryMask(["transactions"]), nonce: 0 });
    expect((await consentOf(partner.address!)).grantedAt).toBe(0);
  });
  afterAll(async () => {
    await env?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("refuses a grant the gateway signs with its own key, on the ledger and over its own HTTP relay", async () => {
    const forged: ConsentGrantMessage = { ...held.message };
    const ownSig = await signTyped(env.g.operator.wallet!, env.g.domain, "ConsentGrant", forged);
    expect(await grant(asGateway, forged, ownSig)).toBe("SIGNATURE_INVALID");
    const adminSig = await signTyped(asAdmin.signer as Wallet, env.g.domain, "ConsentGrant", forged);
    expect(await grant(asAdmin, forged, adminSig)).toBe("SIGNATURE_INVALID");
    // the gateway role may relay for any subject over HTTP; the contract still says no
    const res = await env.g.app.inject({ method: "POST", url: "/v1/consents", headers: { authorization: `Bearer ${await env.g.operator.token()}` }, payload: { ...held, signature: ownSig } });
    expect(res.statusCode).toBe(422);
    expect(res.json().code).toBe("SIGNATURE_INVALID");
    expect((await consentOf(partner.address!)).grantedAt).toBe(0);
  });

  it("refuses the customer's signature on any altered message: other partner, more categories, later expiry, later deadline", async () => {
    const m = held.message;
    const altered: [string, ConsentGrantMessage][] = [
      ["other partner", { ...m, partner: other.address! }],
      ["more categories", { ...m, categories: categoryMask(["transactions", "location", "financial"]) }],
      ["later expiry", { ...m, expiresAt: m.expiresAt + 365 * 86_400 }],
      ["never expires", { ...m, expiresAt: 0 }],
      ["another purpose", { ...m, purpose: purposeId("direct-marketing") }],
      ["later deadline", { ...m, deadline: m.deadline + 86_400 }],
      ["another record", { ...m, receiptHash: `0x${"ab".repeat(32)}` }],
    ];
    for (const [what, message] of altered) {
      expect(await grant(asGateway, message, held.signature), what).toBe("SIGNATURE_INVALID");
      expect(await grant(asAdmin, message, held.signature), what).toBe("SIGNATURE_INVALID");
    }
    expect((await consentOf(partner.address!)).grantedAt).toBe(0);
    expect((await consentOf(other.address!)).grantedAt).toBe(0);
    expect((await env.g.admin.getConsent(customer.address, partner.address!, purposeId("direct-marketing"))).grantedAt).toBe(0);
  });

  it("relays the signed grant unchanged (the only thing it can do), and then cannot replay it", async () => {
    expect(await grant(asGateway, held.message, held.signature)).toBe("ACCEPTED");
    const c = await consentOf(partner.address!);
    expect(c).toMatchObject({ categories: categoryMask(["transactions"]), expiresAt: held.message.expiresAt, revokedAt: 0, nonce: 1 });
    expect(await grant(asGateway, held.message, held.signature)).toBe("NONCE_INVALID");
    // the signed nonce cannot be moved forward either: that changes the message
    expect(await grant(asGateway, { ...held.message, nonce: 1 }, held.signature)).toBe("SIGNATURE_INVALID");
  });

  it("cannot forge a revocation, and cannot bring a revoked consent back by replaying the old grant", async () => {
    const current = await consentOf(partner.address!);
    const revoke: ConsentRevokeMessage = { subject: customer.address, partner: partner.address!, purpose, nonce: current.nonce, deadline: held.message.deadline };
    const ownSig = await signTyped(env.g.operator.wallet!, env.g.domain, "ConsentRevoke", revoke);
    expect(await codeOf(asGateway.revokeConsent(revoke, ownSig))).toBe("SIGNATURE_INVALID");
    expect((await consentOf(partner.address!)).revokedAt).toBe(0);

    const r = await env.run(["--wallet", walletPath, "--json", "consent", "revoke", "--partner", partner.address!, "--purpose", "profiling"]);
    expect(r.code, r.stdout + r.stderr).toBe(EXIT.OK);
    const revoked = await consentOf(partner.address!);
    expect(revoked.revokedAt).toBeGreaterThan(0);
    expect(await grant(asGateway, held.message, held.signature)).toBe("NONCE_INVALID");
    expect(await grant(asAdmin, held.message, held.signature)).toBe("NONCE_INVALID");
    expect(await consentOf(partner.address!)).toEqual(revoked);
  });

  it("leaves exactly one grant and one revocation on the ledger for this customer", async () => {
    const events = (await env.g.admin.events(env.g.deployment.deployBlock)).flatMap((e) => ((e.type === "ConsentGranted" || e.type === "ConsentRevoked") && e.subject === customer.address ? [[e.type, e.partner]] : []));
    expect(events).toEqual([
      ["ConsentGranted", partner.address],
      ["ConsentRevoked", partner.address],
    ]);
  });
});
