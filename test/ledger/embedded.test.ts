import { mkdtempSync, rmSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Wallet } from "ethers";
import { afterAll, describe, expect, it } from "vitest";
import { categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { expectCode } from "./conformance.js";

/**
 * The embedded ledger of `npm start`: a real anvil node persisting its state under the data
 * directory. Restarting it must find the same contracts and the consents granted before.
 */
describe("embedded ledger node", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-embedded-"));
  const open: Network[] = [];
  const up = async (): Promise<Network> => {
    const n = await startNetwork({ dataDir, ledgerPort: 0 });
    open.push(n);
    return n;
  };
  afterAll(async () => {
    for (const n of open) await n.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  const subject = Wallet.createRandom();
  const purpose = purposeId("profiling");
  let partner: Address;
  let contract: string;

  async function grant(n: Network, p: Address): Promise<number> {
    const domain = await n.admin.eip712Domain();
    const current = await n.admin.getConsent(subject.address as Address, p, purpose);
    const message: ConsentGrantMessage = {
      subject: subject.address as Address,
      partner: p,
      purpose,
      categories: categoryMask(["transactions"]),
      expiresAt: 0,
      receiptHash: toHex0x(sha256(new TextEncoder().encode("receipt"))),
      nonce: current.nonce,
      deadline: (await n.admin.blockTime()) + 3600,
    };
    return (await n.gateway.grantConsent(message, await signTyped(subject, domain, "ConsentGrant", message))).blockNumber;
  }

  it("deploys once and records the deployment", async () => {
    const n = await up();
    contract = n.deployment.custodia;
    const recorded = JSON.parse(readFileSync(join(dataDir, "deployment.json"), "utf8")) as { custodia: string; chainId: number };
    expect(recorded.custodia).toBe(contract);
    expect(recorded.chainId).toBe(31337);
    expect((await n.admin.getMember(n.gatewayWallet.address as Address))?.role).toBe("GATEWAY");
    partner = Wallet.createRandom().address as Address;
    await grant(n, partner);
    await n.close();
    open.pop();
  });

  it("finds the same contracts and the consent after a graceful restart", async () => {
    const n = await up();
    expect(n.deployment.custodia).toBe(contract);
    const c = await n.admin.getConsent(subject.address as Address, partner, purpose);
    expect(c.grantedAt).toBeGreaterThan(0);
    expect(c.nonce).toBe(1);
    // the operator keys survive too: the gateway is still a member, not re-registered
    const events = await n.admin.events(0);
    expect(events.filter((e) => e.type === "MemberRegistered" && e.account === n.gatewayWallet.address)).toHaveLength(1);
    await n.close();
    open.pop();
  });

  it("keeps what was written before a SIGKILL once the interval dump ran", async () => {
    const n = await up();
    const partner2 = Wallet.createRandom().address as Address;
    const block = await grant(n, partner2);
    // the node dumps its state every second; wait for a dump that includes the grant's block
    const dumped = (): boolean => {
      try {
        return (JSON.parse(readFileSync(n.node!.statePath, "utf8")) as { best_block_number?: number }).best_block_number! >= block;
      } catch {
        return false; // not written yet, or caught halfway through a write
      }
    };
    const dumpBy = Date.now() + 15_000;
    while (!dumped() && Date.now() < dumpBy) await new Promise((r) => setTimeout(r, 100));
    expect(dumped(), "the node dumped its state within 15 s").toBe(true);
    await n.node!.kill();
    n.provider.destroy();
    open.pop();
    const again = await up();
    expect((await again.admin.getConsent(subject.address as Address, partner2, purpose)).grantedAt).toBeGreaterThan(0);
    expect(await again.admin.blockNumber()).toBeGreaterThanOrEqual(block);
  });

  it("refuses to start on a node that lacks the recorded deployment", async () => {
    // A fresh data dir for the node but the old deployment record: must fail loudly, not redeploy.
    const other = mkdtempSync(join(tmpdir(), "custodia-embedded-"));
    try {
      const first = await startNetwork({ dataDir: other, ledgerPort: 0 });
      await first.close();
      rmSync(join(other, "ledger"), { recursive: true, force: true });
      await expectCode(startNetwork({ dataDir: other, ledgerPort: 0 }), "LEDGER_NOT_DEPLOYED");
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });
});
