import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ES256KSigner, createJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { ethrDid, didHash, categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { readyUrl } from "../helpers/child-process.js";
import { logIdFor } from "../../gateway/runtime.js";

const KILLS = Number(process.env["CUSTODIA_CRASH_KILLS"] ?? 3);
const FIXTURE = fileURLToPath(new URL("./fixtures/gateway-process.ts", import.meta.url));

interface Receipt {
  index: number;
  leafHash: string;
}

/**
 * The gateway process is SIGKILLed while partners are being served. Every access that got a 2xx
 * must be in the log after restart, with the same leaf hash, nothing twice, and all anchored.
 */
describe("gateway crash under load (SIGKILL, real processes)", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-crash-"));
  let net: Network;
  let child: ChildProcess | undefined;
  const partner = Wallet.createRandom();
  const auditor = Wallet.createRandom();
  const subjects = Array.from({ length: 5 }, () => Wallet.createRandom());
  let aud: string;

  const jwt = async (w: Wallet | ReturnType<typeof Wallet.createRandom>): Promise<string> => {
    const now = Math.floor(Date.now() / 1000);
    return createJWT({ aud, iat: now, exp: now + 240, jti: randomUUID() }, { issuer: `did:ethr:0x7a69:${w.address}`, signer: ES256KSigner(getBytes(w.privateKey), true) }, { alg: "ES256K-R" });
  };

  async function startGateway(): Promise<string> {
    const proc = spawn(process.execPath, ["--import", "tsx", FIXTURE], { env: { ...process.env, DATA_DIR: dataDir, RPC: net.rpcUrl, ANCHOR_EVERY_MS: "250", ANCHOR_EVERY_ENTRIES: "200" }, stdio: ["ignore", "pipe", "pipe"] });
    child = proc;
    let err = "";
    proc.stderr!.on("data", (c: Buffer) => (err += c.toString()));
    return readyUrl(proc, { timeoutMs: 60_000, stderr: () => err });
  }

  async function kill(): Promise<void> {
    const c = child!;
    if (c.exitCode !== null || c.signalCode !== null) return;
    await new Promise<void>((r) => {
      c.once("exit", () => r());
      c.kill("SIGKILL");
    });
  }

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    aud = ethrDid(net.deployment.chainId, net.gatewayWallet.address);
    const org = toHex0x(sha256(new TextEncoder().encode("org")));
    await net.admin.registerMember({ account: partner.address as Address, didHash: didHash(`did:ethr:0x7a69:${partner.address}`), role: "PARTNER", orgHash: org });
    await net.admin.registerMember({ account: auditor.address as Address, didHash: didHash(`did:ethr:0x7a69:${auditor.address}`), role: "AUDITOR", orgHash: org });
    const now = await net.admin.blockTime();
    await net.admin.registerAgreement({ partner: partner.address as Address, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions"]), validFrom: now - 60, validUntil: now + 86400, termsHash: org });
    const domain = await net.admin.eip712Domain();
    for (const s of subjects) {
      const m: ConsentGrantMessage = { subject: s.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), categories: categoryMask(["transactions"]), expiresAt: 0, receiptHash: org, nonce: 0, deadline: now + 3600 };
      await net.gateway.grantConsent(m, await signTyped(s, domain, "ConsentGrant", m));
    }
  });

  afterAll(async () => {
    if (child) await kill().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it(`keeps every acknowledged access across ${KILLS} SIGKILLs, once each, and anchors them all`, async () => {
    const acknowledged = new Map<number, Receipt>();
    const requestIds = new Set<string>();
    for (let round = 0; round < KILLS; round++) {
      const url = await startGateway();
      const token = await jwt(partner);
      let stop = false;
      let served = 0;
      const worker = async (): Promise<void> => {
        while (!stop) {
          try {
            const res = await fetch(`${url}/v1/data/query`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify({ subjects: subjects.map((s) => s.address), purpose: "profiling", categories: ["transactions"] }) });
            if (res.ok) {
              const body = (await res.json()) as { results: { receipt: Receipt }[] };
              for (const r of body.results) acknowledged.set(r.receipt.index, r.receipt);
              served++;
            }
          } catch {
            // the process died under us: unacknowledged requests may or may not be logged
          }
        }
      };
      const workers = Array.from({ length: 8 }, worker);
      // the kill lands 400–1,000 ms after the first answer, so that it always falls under load
      const firstBy = Date.now() + 30_000;
      while (served === 0 && Date.now() < firstBy) await new Promise((r) => setTimeout(r, 5));
      await new Promise((r) => setTimeout(r, 400 + Math.floor(Math.random() * 600)));
      await kill();
      stop = true;
      await Promise.all(workers);
      expect(served).toBeGreaterThan(0);
    }

    // restart once more and audit through the API
    const url = await startGateway();
    const auditorToken = await jwt(auditor);
    const logs = (await (await fetch(`${url}/v1/audit/logs`, { headers: { authorization: `Bearer ${auditorToken}` } })).json()) as { logs: { name: string; size: number }[] };
    const size = logs.logs.find((l) => l.name === "access")!.size;
    expect(size).toBeGreaterThanOrEqual(acknowledged.size);
    const stored: Receipt[] = [];
    for (let start = 0; start < size; start += 1000) {
      const page = (await (await fetch(`${url}/v1/audit/logs/access/entries?start=${start}&end=${Math.min(size, start + 1000)}`, { headers: { authorization: `Bearer ${auditorToken}` } })).json()) as { entries: { index: number; leafHash: string; entry: { requestId: string } }[] };
      for (const e of page.entries) {
        stored.push({ index: e.index, leafHash: e.leafHash });
        expect(requestIds.has(e.entry.requestId), `duplicate entry ${e.entry.requestId}`).toBe(false);
        requestIds.add(e.entry.requestId);
      }
    }
    expect(stored).toHaveLength(size);
    for (const [index, r] of acknowledged) expect(stored[index]?.leafHash, `acknowledged entry ${index}`).toBe(r.leafHash);

    // every entry ends up anchored: the restarted gateway anchors the tail it inherited
    const logId = logIdFor(net.deployment.chainId, net.deployment.custodia, net.gatewayWallet.address, "access");
    const deadline = Date.now() + 20_000;
    let head = await net.admin.latestCheckpoint(logId);
    while ((head?.treeSize ?? 0) < size && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 200));
      head = await net.admin.latestCheckpoint(logId);
    }
    expect(head?.treeSize).toBe(size);
    const rootRes = (await (await fetch(`${url}/v1/audit/logs`, { headers: { authorization: `Bearer ${auditorToken}` } })).json()) as { logs: { name: string; root: string }[] };
    expect(await net.admin.checkpointRoot(logId, size)).toBe(rootRes.logs.find((l) => l.name === "access")!.root);
  });
});
