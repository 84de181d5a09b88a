import { existsSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { demoMain } from "../../cli/demo.js";
import { EXIT, type CliIo } from "../../cli/io.js";

/**
 * `npm run demo` end to end with a small population: its own embedded network (a real anvil
 * node, the contracts, the gateway listening on 127.0.0.1), wallets, consents, requests, a
 * segmentation, an erasure, and the independent audit at the end — which must be clean.
 */
describe("npm run demo", () => {
  it("runs the whole story with 20 customers and ends with a clean audit", async () => {
    let stdout = "";
    let stderr = "";
    const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env: {}, isTTY: false };
    const code = await demoMain(["--customers", "20", "--json"], io);
    expect(code, stderr + stdout.slice(0, 2000)).toBe(EXIT.OK);
    const s = JSON.parse(stdout);
    expect(s.ok).toBe(true);
    expect(s.customers).toEqual({ total: 20, didEthr: 14, didKey: 6 });
    expect(s.partners).toHaveLength(2);
    expect(s.partners[0].purposes).not.toEqual(s.partners[1].purposes);
    // consents: to one partner and to both, some revoked
    expect(s.consents.onlyOnePartner).toBeGreaterThan(0);
    expect(s.consents.bothPartners).toBeGreaterThan(0);
    expect(s.consents.revoked).toBeGreaterThan(0);
    // requests allowed and denied, for the reasons the contract gives
    expect(s.queries.allowed).toBeGreaterThan(0);
    expect(s.queries.deniedByReason).toMatchObject({ CONSENT_REVOKED: s.consents.revoked, NO_AGREEMENT: 10, SUBJECT_ERASED: 1 });
    expect(s.queries.deniedByReason.NO_CONSENT).toBeGreaterThan(0);
    // a segmentation over the consenting customers only
    expect(s.segmentation.included).toBe(20 - 2 - s.consents.revoked); // 2 consent to partner B only
    expect(Object.values(s.segmentation.segments as Record<string, number>).reduce((a, b) => a + b, 0)).toBe(s.segmentation.included);
    expect(s.erasure.deniedAfterwards).toBe("SUBJECT_ERASED");
    // the customer's own check and the audit: everything anchored and verified
    expect(s.customerCheck.history.failed + s.customerCheck.decisions.failed).toBe(0);
    expect(s.customerCheck.history.verified).toBeGreaterThan(0);
    expect(s.customerCheck.decisions.verified).toBe(1);
    for (const log of Object.values(s.logs as Record<string, { size: number; anchored: number }>)) expect(log.anchored).toBe(log.size);
    expect(s.audit.ok).toBe(true);
    expect(s.audit.failures).toBe(0);
    for (const l of s.audit.logs) expect(l.entriesVerified).toBe(l.size);
    // its temporary data directory is gone
    expect(s.kept).toBe(false);
    expect(existsSync(s.dataDir)).toBe(false);
  });

  it("refuses bad options with exit 2", async () => {
    let stderr = "";
    const io: CliIo = { stdout: () => undefined, stderr: (t) => void (stderr += t), env: {}, isTTY: false };
    expect(await demoMain(["--customers", "3"], io)).toBe(EXIT.USAGE);
    expect(stderr).toMatch(/error \[INVALID_ARGUMENT\]/);
  });
});
