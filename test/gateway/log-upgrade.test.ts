import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomUUID } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Level } from "level";
import { ES256KSigner, createJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { didHash, categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../../gateway/runtime.js";
import { decodeBatchRecord } from "../../gateway/log/durable-log.js";
import { pad16 } from "../../gateway/log/kv.js";
import { expectCode } from "./log/helpers.js";

type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

/**
 * A gateway whose access log was written by an earlier version (in the gateway's main LevelDB, one
 * record per entry, and a per-subject index of its own) starts on this version: the log is moved
 * into its own store and rewritten into batch records, its size and root are unchanged, and each
 * customer's history is listed from the entries' tags. And a gateway whose log lost its newest
 * record (anchored) refuses to start.
 */
describe("a gateway restarted on storage changed under it", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-upgrade-"));
  let net: Network;
  let rt: GatewayRuntime;
  const partner = new Wallet(Wallet.createRandom().privateKey);
  const subject = new Wallet(Wallet.createRandom().privateKey);
  const didOf = (w: Wallet): string => `did:ethr:0x7a69:${w.address}`;

  async function tokenOf(w: Wallet): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return createJWT({ aud: rt.did, iat: now, exp: now + 120, jti: randomUUID() }, { issuer: didOf(w), signer: ES256KSigner(getBytes(w.privateKey), true) }, { alg: "ES256K-R" });
  }

  async function call(method: "GET" | "POST", url: string, who: Wallet, payload?: unknown): Promise<Json> {
    const res = await rt.app.inject({ method, url, headers: { authorization: `Bearer ${await tokenOf(who)}` }, ...(payload === undefined ? {} : { payload: payload as never }) });
    expect(res.statusCode, res.body).toBe(200);
    return res.json() as Json;
  }

  const open = (): Promise<GatewayRuntime> => createGatewayRuntime({ dataDir, ...networkRuntimeOptions(net), config: { port: 0, ledgerPollMs: 100, anchorEveryMs: 200 } });

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
    const org = toHex0x(sha256(new TextEncoder().encode("org")));
    await net.admin.registerMember({ account: partner.address as Address, didHash: didHash(didOf(partner)), role: "PARTNER", orgHash: org });
    const now = await net.admin.blockTime();
    await net.admin.registerAgreement({ partner: partner.address as Address, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions"]), validFrom: now - 60, validUntil: now + 86400, termsHash: org });
    const domain = await net.admin.eip712Domain();
    const message: ConsentGrantMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), categories: categoryMask(["transactions"]), expiresAt: 0, receiptHash: org, nonce: 0, deadline: now + 3600 };
    await net.gateway.grantConsent(message, await signTyped(subject, domain, "ConsentGrant", message));
    rt = await open();
  });

  afterAll(async () => {
    await rt?.close().catch(() => undefined);
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("rewrites the log on start, keeps its size and root, and lists the customer's history", async () => {
    const other = new Wallet(Wallet.createRandom().privateKey);
    for (const s of [subject, other, subject, subject]) {
      await call("POST", "/v1/data/query", partner, { subjects: [s.address], purpose: "profiling", categories: ["transactions"] });
    }
    const before = await call("GET", "/v1/me/accesses", subject);
    expect(before.entries.map((e: Json) => e.index)).toEqual([0, 2, 3]);
    const { size, root } = { size: rt.deps.logs.access.size, root: rt.deps.logs.access.root() };
    await rt.close();

    // the storage as the earlier versions left it: both logs in the "logs" sublevel of the
    // gateway's LevelDB (no stores of their own), entries one per record, the meta (v1) rewritten
    // with every batch, the subject index beside
    const db = new Level<string, unknown>(join(dataDir, "gateway"), { valueEncoding: "json" });
    await db.open();
    const logs = db.sublevel<string, Uint8Array>("logs", { valueEncoding: "view" });
    const ops: Array<{ type: "put"; key: string; value: Uint8Array }> = [];
    for (const name of ["access", "decisions"]) {
      const store = new Level<string, Uint8Array>(join(dataDir, "logs", name), { keyEncoding: "utf8", valueEncoding: "view" });
      await store.open();
      for await (const [key, record] of store.iterator()) {
        if (key.startsWith(`${name}/b/`)) {
          const start = Number(key.slice(`${name}/b/`.length));
          decodeBatchRecord(record)!.forEach((e, j) => ops.push({ type: "put", key: `${name}/e/${pad16(start + j)}`, value: e.bytes }));
        } else {
          expect(key).toBe(`${name}/_meta`);
          const meta = JSON.parse(new TextDecoder().decode(record)) as { logId: string; size: number; root: string };
          const v1 = name === "access" ? { v: 1, logId: meta.logId, size, root } : { ...meta, v: 1 };
          ops.push({ type: "put", key: `${name}/meta`, value: new TextEncoder().encode(JSON.stringify(v1)) });
        }
      }
      await store.close();
    }
    expect(ops.filter((op) => op.key.endsWith("/meta")).length).toBe(2);
    await logs.batch(ops);
    rmSync(join(dataDir, "logs"), { recursive: true, force: true });
    const index = db.sublevel<string, number>("subjects", { valueEncoding: "json" });
    await index.put(`${subject.address.toLowerCase()}:access:000000000000`, 1);
    await db.close();

    rt = await open();
    expect(rt.deps.logs.access.size).toBe(size);
    expect(rt.deps.logs.access.root()).toBe(root);
    const after = await call("GET", "/v1/me/accesses", subject);
    expect(after.entries.map((e: Json) => [e.index, e.leafHash])).toEqual(before.entries.map((e: Json) => [e.index, e.leafHash]));
    expect((await call("GET", "/v1/me/accesses", other)).entries.map((e: Json) => e.index)).toEqual([1]);
    // new entries continue the log and the history
    await call("POST", "/v1/data/query", partner, { subjects: [subject.address], purpose: "profiling", categories: ["transactions"] });
    expect((await call("GET", "/v1/me/accesses", subject)).entries.map((e: Json) => e.index)).toEqual([0, 2, 3, size]);
    await rt.close();

    // nothing of the earlier layout is left: the old place is empty, the log store holds no
    // per-entry record and no mark of the move
    const check = new Level<string, unknown>(join(dataDir, "gateway"), { valueEncoding: "json" });
    await check.open();
    const leftover: string[] = [];
    for await (const key of check.sublevel("logs").keys()) leftover.push(key);
    for await (const key of check.sublevel("subjects").keys()) leftover.push(key);
    await check.close();
    for (const name of ["access", "decisions"]) {
      const moved = new Level<string, Uint8Array>(join(dataDir, "logs", name), { keyEncoding: "utf8", valueEncoding: "view" });
      await moved.open();
      for await (const key of moved.keys()) if (!new RegExp(`^${name}/(b/\\d{16}|_meta)$`).test(key)) leftover.push(key);
      await moved.close();
    }
    expect(leftover).toEqual([]);
    rt = await open();
  });

  it("refuses to start on a log whose newest record was deleted whole; an alarm raised while running shows on /health (503) and stops data leaving", async () => {
    for (let i = 0; i < 3; i++) await call("POST", "/v1/data/query", partner, { subjects: [subject.address], purpose: "profiling", categories: ["transactions"] });
    const health = async (): Promise<Json> => (await rt.app.inject({ method: "GET", url: "/health" })).json() as Json;
    const deadline = Date.now() + 10_000;
    while ((await health()).logs.access.anchored !== rt.deps.logs.access.size && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const anchored = await health();
    expect(anchored.status).toBe("ok");
    expect(anchored.logs.access).toEqual({ size: rt.deps.logs.access.size, anchored: rt.deps.logs.access.size, alarm: null });
    await rt.close();

    const store = new Level<string, Uint8Array>(join(dataDir, "logs", "access"), { keyEncoding: "utf8", valueEncoding: "view" });
    await store.open();
    const [last, record] = (await store.iterator({ gte: "access/b/", lt: "access/b0", reverse: true, limit: 1 }).all())[0]!;
    await store.del(last);
    await store.close();
    // the log's store cannot tell (nothing in it records the length); the anchor can, and the
    // gateway does not serve on a log that lost anchored entries
    await expectCode(open(), "INTERNAL", "ledger_ahead_of_log");

    await store.open();
    await store.put(last, record);
    await store.close();
    rt = await open();
    expect((await health()).status).toBe("ok");
    // an alarm raised while running (reconciliation after a failed anchor finding the ledger in
    // disagreement) stops anchoring; /health says so
    const anchorer = rt.deps.anchorers.access as unknown as { raise(reason: string, message: string, details: object): never };
    // raised while a request is being decided and logged: its entry stays on the record, its data does not leave
    const log = rt.deps.logs.access as unknown as { appendCanonical(text: string, tag?: string): Promise<unknown> };
    const append = log.appendCanonical.bind(log);
    log.appendCanonical = (text, tag) => {
      log.appendCanonical = append;
      expect(() => anchorer.raise("anchor_root_mismatch", "raised by the test", {})).toThrow("raised by the test");
      return append(text, tag);
    };
    const sizeBefore = rt.deps.logs.access.size;
    const midway = await rt.app.inject({ method: "GET", url: `/v1/data/${subject.address}?purpose=profiling&categories=transactions`, headers: { authorization: `Bearer ${await tokenOf(partner)}` } });
    expect(midway.statusCode).toBe(503);
    expect(midway.json()).toMatchObject({ code: "LOG_ALARM" });
    expect(rt.deps.logs.access.size).toBe(sizeBefore + 1);
    const res = await rt.app.inject({ method: "GET", url: "/health" });
    expect(res.statusCode).toBe(503);
    const after = res.json() as Json;
    expect(after.status).toBe("alarm");
    expect(after.logs.access.alarm).toBe("anchor_root_mismatch");
    expect(after.logs.decisions.alarm).toBeNull();
    // fail closed: a receipt handed out now could not be checked against the ledger, so no data
    // leaves, and nothing is appended for the refused requests
    const size = rt.deps.logs.access.size;
    const refusals = [
      await rt.app.inject({ method: "POST", url: "/v1/data/query", headers: { authorization: `Bearer ${await tokenOf(partner)}` }, payload: { subjects: [subject.address], purpose: "profiling", categories: ["transactions"] } }),
      await rt.app.inject({ method: "GET", url: `/v1/data/${subject.address}?purpose=profiling&categories=transactions`, headers: { authorization: `Bearer ${await tokenOf(partner)}` } }),
    ];
    for (const r of refusals) {
      expect(r.statusCode).toBe(503);
      expect(r.json()).toMatchObject({ code: "LOG_ALARM" });
      expect(Object.keys(r.json() as object).sort()).toEqual(["code", "message"]); // an error, and nothing else
    }
    expect(rt.deps.logs.access.size).toBe(size);
  });
});
