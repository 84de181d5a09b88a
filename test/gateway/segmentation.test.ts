import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { hashCanonical, toHex0x } from "../../core/hash.js";
import { hashFromHex, leafHash, proofFromHex, verifyInclusion } from "../../core/merkle.js";
import { canonicalBytes } from "../../core/jcs.js";
import type { Anchorer } from "../../gateway/log/anchorer.js";
import { logIdFor } from "../../gateway/runtime.js";
import { CHAIN_ID, startTestGateway, type Identity, type TestGateway } from "./harness.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/** Two planted behaviours: frequent small baskets online, rare large ones in store. */
function customerRecords(subject: string, kind: "frequent" | "rare", i: number): unknown[] {
  const out: unknown[] = [{ kind: "profile", subject, joinedAt: 1_600_000_000 + i * 1000, ageBand: i % 2 ? "25-34" : "45-54", gender: i % 2 ? "female" : "male", region: "EU" }];
  const n = kind === "frequent" ? 30 : 3;
  for (let t = 0; t < n; t++) {
    out.push({ kind: "transaction", subject, id: `t${t}`, at: 1_700_000_000 + t * (kind === "frequent" ? 86_400 : 2_000_000) + i, amount: kind === "frequent" ? 8 + (t % 5) : 400 + 10 * t, currency: "EUR", category: kind === "frequent" ? "grocery" : "electronics", channel: kind === "frequent" ? "online" : "store" });
  }
  return out;
}

describe("consent-gated segmentation through the gateway", () => {
  let g: TestGateway;
  let partner: Identity;
  let auditor: Identity;
  const consenting: Identity[] = [];
  let outsider: Identity;

  async function call(method: "GET" | "POST", url: string, who: Identity, payload?: unknown): Promise<{ status: number; body: Json }> {
    const res = await g.app.inject({ method, url, headers: { authorization: `Bearer ${await who.token()}` }, ...(payload === undefined ? {} : { payload: payload as never }) });
    return { status: res.statusCode, body: res.json() as Json };
  }

  beforeAll(async () => {
    g = await startTestGateway();
    partner = await g.partner(["profiling"], ["transactions", "behavioural", "demographic"]);
    auditor = await g.member("AUDITOR");
    for (let i = 0; i < 10; i++) {
      const c = await g.customer();
      await g.ingest(customerRecords(c.address!, i < 5 ? "frequent" : "rare", i));
      const r = await g.grant(c, partner, "profiling", i % 3 === 0 ? ["transactions", "behavioural", "demographic"] : ["transactions", "behavioural"]);
      expect(r.status).toBe(200);
      consenting.push(c);
    }
    outsider = await g.customer(); // data in the vault, no consent
    await g.ingest(customerRecords(outsider.address!, "rare", 99));
    const narrow = await g.customer(); // consent too narrow: transactions only
    await g.ingest(customerRecords(narrow.address!, "frequent", 98));
    await g.grant(narrow, partner, "profiling", ["transactions"]);
  });
  afterAll(async () => g?.close());

  it("segments only consenting subjects, says how many were left out but not who, and logs every decision", async () => {
    const r = await call("POST", "/v1/segmentations", partner, { purpose: "profiling", k: 2, seed: 7 });
    expect(r.status, JSON.stringify(r.body).slice(0, 500)).toBe(200);
    expect(r.body.included).toBe(10);
    expect(r.body.excluded).toBe(2);
    const subjects = r.body.decisions.map((d: Json) => d.subject);
    expect(subjects.sort()).toEqual(consenting.map((c) => c.address).sort());
    expect(JSON.stringify(r.body)).not.toContain(outsider.address!);
    // the two planted behaviours land in two different segments
    const seg = new Map<string, string>(r.body.decisions.map((d: Json) => [d.subject, d.segment]));
    const frequent = new Set(consenting.slice(0, 5).map((c) => seg.get(c.address!)));
    const rare = new Set(consenting.slice(5).map((c) => seg.get(c.address!)));
    expect(frequent.size).toBe(1);
    expect(rare.size).toBe(1);
    expect([...frequent][0]).not.toBe([...rare][0]);
    expect(r.body.modelCardReceipt.log).toBe("decisions");
  });

  it("anchors the decisions, and every decision of a run verifies against the anchored checkpoint", async () => {
    const r = await call("POST", "/v1/segmentations", partner, { purpose: "profiling", k: 2, seed: 7 });
    const cp = await (g.rt.deps.anchorers.decisions as Anchorer).anchorNow();
    const size = cp?.treeSize ?? g.rt.deps.anchorers.decisions.lastAnchored()!.treeSize;
    const anchoredRoot = await g.admin.checkpointRoot(logIdFor(CHAIN_ID, g.deployment.custodia, g.operator.address!, "decisions"), size);
    expect(anchoredRoot).not.toBeNull();
    for (const d of r.body.decisions) {
      const p = await call("GET", `/v1/audit/logs/decisions/proofs/inclusion?index=${d.receipt.index}&size=${size}`, auditor);
      verifyInclusion(d.receipt.index, size, hashFromHex(d.receipt.leafHash), proofFromHex(p.body.proof), hashFromHex(anchoredRoot!));
      const e = await call("GET", `/v1/audit/logs/decisions/entries?start=${d.receipt.index}&end=${d.receipt.index + 1}`, auditor);
      expect(toHex0x(leafHash(canonicalBytes(e.body.entries[0].entry)))).toBe(d.receipt.leafHash);
      expect(e.body.entries[0].entry).toMatchObject({ kind: "decision", runId: r.body.runId, subject: d.subject, segment: d.segment, modelHash: r.body.modelHash });
    }
    const card = await call("GET", `/v1/audit/logs/decisions/entries?start=${r.body.modelCardReceipt.index}&end=${r.body.modelCardReceipt.index + 1}`, auditor);
    expect(card.body.entries[0].entry).toMatchObject({ kind: "model-card", runId: r.body.runId, included: 10, excluded: 2 });
    expect(card.body.entries[0].entry.card.dataCommitment).toBe(r.body.dataCommitment);
  });

  it("lets each subject read its own decisions and explanations, matching the logged hash", async () => {
    const c = consenting[0]!;
    const mine = await call("GET", "/v1/me/decisions", c);
    expect(mine.status).toBe(200);
    expect(mine.body.decisions.length).toBeGreaterThanOrEqual(1);
    for (const d of mine.body.decisions) {
      expect(d.entry.subject).toBe(c.address);
      expect(d.explanation).not.toBeNull();
      expect(toHex0x(hashCanonical(d.explanation))).toBe(d.entry.explanationHash);
      verifyInclusion(d.index, d.proof.treeSize, hashFromHex(d.leafHash), proofFromHex(d.proof.inclusion), hashFromHex(d.proof.root));
    }
    expect((await call("GET", "/v1/me/decisions", outsider)).body.decisions).toEqual([]);
  });

  it("leaves a revoked subject and an erased subject out of the next run", async () => {
    const revoked = consenting[1]!;
    const erased = consenting[6]!;
    expect((await g.revoke(revoked, partner, "profiling")).status).toBe(200);
    expect((await call("POST", "/v1/me/erasure", erased, {})).status).toBe(200);
    const r = await call("POST", "/v1/segmentations", partner, { purpose: "profiling", k: 2, seed: 7 });
    expect(r.status).toBe(200);
    const subjects = r.body.decisions.map((d: Json) => d.subject);
    expect(subjects).not.toContain(revoked.address);
    expect(subjects).not.toContain(erased.address);
    expect(r.body.included).toBe(8);
    expect(r.body.excluded).toBe(3); // the revoked one joins the two without consent; the erased one is gone
    // the erased subject's explanations went with its data
    const after = (await call("GET", "/v1/me/decisions", erased)).body.decisions as Json[];
    expect(after.length).toBeGreaterThan(0); // the decisions stay on the record...
    expect(after.every((d) => d.explanation === null)).toBe(true); // ...their personal explanations do not
  });

  it("refuses other roles, single-use replays, and too few consenting subjects", async () => {
    expect((await call("POST", "/v1/segmentations", auditor, { purpose: "profiling" })).body.code).toBe("FORBIDDEN");
    const t = await partner.token();
    const first = await g.app.inject({ method: "POST", url: "/v1/segmentations", headers: { authorization: `Bearer ${t}` }, payload: { purpose: "profiling", k: 2 } });
    expect(first.statusCode).toBe(200);
    const again = await g.app.inject({ method: "POST", url: "/v1/segmentations", headers: { authorization: `Bearer ${t}` }, payload: { purpose: "profiling", k: 2 } });
    expect(again.json().code).toBe("TOKEN_REPLAYED");
    const other = await g.partner(["profiling"], ["transactions", "behavioural"]);
    const none = await call("POST", "/v1/segmentations", other, { purpose: "profiling" });
    expect(none.status).toBe(400);
    expect(none.body.code).toBe("BAD_REQUEST");
    expect((await call("POST", "/v1/segmentations", partner, { purpose: "profiling", k: 1 })).status).toBe(400);
  });
});
