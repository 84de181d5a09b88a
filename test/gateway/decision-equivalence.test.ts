import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import { Level } from "level";
import { Wallet } from "ethers";
import { ALL_CATEGORIES, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { deployCustodia } from "../../contracts/deploy.js";
import { EvmLedger } from "../../contracts/evm-ledger.js";
import { LedgerView, DEFAULT_VIEW_OPTIONS, type JsonSublevel } from "../../gateway/ledger-view.js";
import { LedgerHistory } from "../../core/ledger-state.js";
import { compileOnce, fundedWallet, hardhatProvider } from "../helpers/hardhat.js";

/**
 * The gateway decides from an index fed by ledger events; the contract decides from its storage.
 * On random memberships, agreements and consent histories, both must give the same answer for
 * every query: same allow/deny, same reason, same agreement.
 */
describe("gateway decisions equal the contract's checkPermission", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-equiv-"));
  let db: Level<string, unknown>;
  let admin: EvmLedger;
  let view: LedgerView;
  const partners: Address[] = [];
  const subjects = [Wallet.createRandom(), Wallet.createRandom(), Wallet.createRandom()];
  let t0 = 0;
  let deployBlock = 0;

  beforeAll(async () => {
    await compileOnce();
    const provider = hardhatProvider();
    const w = await fundedWallet(provider);
    const d = await deployCustodia(w);
    admin = new EvmLedger({ provider, address: d.custodia, signer: w, deployBlock: d.deployBlock });
    deployBlock = d.deployBlock;
    const domain = await admin.eip712Domain();
    const h = (s: string) => toHex0x(sha256(new TextEncoder().encode(s)));
    t0 = await admin.blockTime();
    // a seeded, varied ledger history
    const rng = fc.sample(fc.integer({ min: 0, max: 1_000_000 }), { numRuns: 400, seed: 7 });
    let r = 0;
    const next = (n: number): number => rng[r++ % rng.length]! % n;
    for (let i = 0; i < 4; i++) {
      const p = Wallet.createRandom().address as Address;
      partners.push(p);
      await admin.registerMember({ account: p, didHash: h(p), role: i === 3 ? "AUDITOR" : "PARTNER", orgHash: h("o") });
      for (let a = 0; a < 2; a++) {
        if (i === 3) break;
        const from = t0 - 3600 + next(7200);
        const reg = await admin.registerAgreement({ partner: p, purposes: 1 + next(127), categories: 1 + next(ALL_CATEGORIES), validFrom: from, validUntil: from + 600 + next(7200), termsHash: h("t") });
        if (next(4) === 0) await admin.endAgreement(reg.id);
      }
    }
    await admin.deactivateMember(partners[2]!);
    for (const s of subjects) {
      for (const p of partners) {
        for (const purpose of [0, 1, 2, 3]) {
          if (next(3) === 0) continue;
          const now = await admin.blockTime();
          const g: ConsentGrantMessage = { subject: s.address as Address, partner: p, purpose, categories: 1 + next(ALL_CATEGORIES), expiresAt: next(2) ? 0 : now + 60 + next(3600), receiptHash: h("r"), nonce: (await admin.getConsent(s.address as Address, p, purpose)).nonce, deadline: now + 3600 };
          await admin.grantConsent(g, await signTyped(s, domain, "ConsentGrant", g));
          if (next(3) === 0) {
            const rv: ConsentRevokeMessage = { subject: s.address as Address, partner: p, purpose, nonce: g.nonce + 1, deadline: now + 3600 };
            await admin.revokeConsent(rv, await signTyped(s, domain, "ConsentRevoke", rv));
          }
        }
      }
    }
    db = new Level(join(dir, "db"), { valueEncoding: "json" });
    view = await LedgerView.open(admin, db.sublevel("view", { valueEncoding: "json" }) as unknown as JsonSublevel, { ...DEFAULT_VIEW_OPTIONS, fromBlock: d.deployBlock, clock: Date.now });
    await view.sync();
  });

  afterAll(async () => {
    await view?.stop();
    await db?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("agrees on random queries (subject, partner, purpose, categories, time)", async () => {
    const block = view.syncedBlock;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 0, max: subjects.length - 1 }),
        fc.integer({ min: 0, max: partners.length }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: ALL_CATEGORIES }),
        fc.integer({ min: -7200, max: 14_400 }),
        async (si, pi, purpose, categories, dt) => {
          const subject = subjects[si]!.address as Address;
          const partner = pi === partners.length ? (Wallet.createRandom().address as Address) : partners[pi]!;
          const q = { subject, partner, purpose, categories, time: t0 + dt };
          const onLedger = await admin.checkPermission(q, { block });
          const local = view.decideAt(subject, partner, q);
          expect({ allowed: local.allowed, reason: local.reason, agreementId: local.agreementId }).toEqual(onLedger);
        },
      ),
      { numRuns: 400, seed: 42 },
    );
  });

  it("state rebuilt from events alone (the auditor's LedgerHistory) equals the contract at every past block", async () => {
    const history = await LedgerHistory.load(admin, deployBlock);
    const head = view.syncedBlock;
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: deployBlock, max: head }),
        fc.integer({ min: 0, max: subjects.length - 1 }),
        fc.integer({ min: 0, max: partners.length }),
        fc.integer({ min: 0, max: 6 }),
        fc.integer({ min: 1, max: ALL_CATEGORIES }),
        fc.integer({ min: -7200, max: 14_400 }),
        async (block, si, pi, purpose, categories, dt) => {
          const subject = subjects[si]!.address as Address;
          const partner = pi === partners.length ? (Wallet.createRandom().address as Address) : partners[pi]!;
          const q = { subject, partner, purpose, categories, time: t0 + dt };
          expect(history.checkPermission(q, block)).toEqual(await admin.checkPermission(q, { block }));
          expect(history.member(partner, block)).toEqual(await admin.getMember(partner, { block }));
        },
      ),
      { numRuns: 300, seed: 43 },
    );
  });

  it("rebuilds the same index from LevelDB after a restart", async () => {
    await view.stop();
    const again = await LedgerView.open(admin, db.sublevel("view", { valueEncoding: "json" }) as unknown as JsonSublevel, { ...DEFAULT_VIEW_OPTIONS, fromBlock: 0, clock: Date.now });
    expect(again.syncedBlock).toBe(view.syncedBlock);
    for (const s of subjects) expect(again.consentsOf(s.address as Address)).toEqual(view.consentsOf(s.address as Address));
    for (const p of partners) expect(again.agreementsOf(p)).toEqual(view.agreementsOf(p));
    // with no new block since, a sync still learns the stored block's time (decisions never
    // take a time earlier than the block they are decided on)
    await again.sync();
    expect(again.syncedBlock).toBe(view.syncedBlock);
    expect(again.syncedBlockTime).toBe(await admin.blockTime(again.syncedBlock));
  });
});
