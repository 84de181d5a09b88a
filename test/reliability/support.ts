/**
 * What the reliability tests share, on real parts only: a cast of members, agreements and
 * consents on the embedded anvil network (contracts/network.ts), DID-JWTs signed with real keys,
 * a gateway in its own process (./fixtures/gateway-child.ts) that can be SIGKILLed and asked for
 * its memory and anchoring figures, and an independent audit of a gateway's log read straight
 * from its LevelDB files (hashes and root recomputed with core/merkle, not by the log's own code).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import autocannon from "autocannon";
import WebSocket, { WebSocketServer } from "ws";
import { ES256KSigner, createJWT } from "did-jwt";
import { Level } from "level";
import { Wallet, getBytes, toBeHex } from "ethers";
import { categoryMask, consentRecord, didHash, ethrDid, purposeId, type Address, type Bytes32 } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type Eip712Domain } from "../../core/eip712.js";
import { hashCanonical, sha256, toHex0x } from "../../core/hash.js";
import { leafHash, rootFromLeafHashes } from "../../core/merkle.js";
import type { Network } from "../../contracts/network.js";
import { readyUrl } from "../helpers/child-process.js";
import type { EvmLedger } from "../../contracts/evm-ledger.js";
import type { GatewayConfig } from "../../gateway/config.js";
import type { AnchorerStats } from "../../gateway/log/anchorer.js";
import { decodeRecord } from "../../gateway/log/durable-log.js";

export const CHAIN_ID = 31337;
const FIXTURE = fileURLToPath(new URL("./fixtures/gateway-child.ts", import.meta.url));

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Polls `check` every `stepMs` until it returns a value other than undefined/false, or the deadline passes. */
export async function waitFor<T>(check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, stepMs = 100): Promise<T | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined && v !== false) return v;
    if (Date.now() >= deadline) return undefined;
    await sleep(stepMs);
  }
}

/* ------------------------------------------------------------------ identities and tokens */

/** The did:ethr of an account on the embedded chain (the DID its membership is registered under). */
export const didOf = (w: { address: string }): string => ethrDid(CHAIN_ID, w.address);

/**
 * A DID-JWT for the gateway `aud`, signed by `w`. Members and customers sign ES256K-R under their
 * did:ethr; the gateway operator signs ES256K under the gateway DID (as the bench does).
 */
export async function jwt(w: { privateKey: string; address: string }, aud: string, options: { iss?: string; lifetimeSec?: number; recoverable?: boolean } = {}): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const recoverable = options.recoverable ?? true;
  return createJWT({ aud, iat: now, exp: now + (options.lifetimeSec ?? 240), jti: randomUUID() }, { issuer: options.iss ?? didOf(w), signer: ES256KSigner(getBytes(w.privateKey), recoverable) }, { alg: recoverable ? "ES256K-R" : "ES256K" });
}

/** A single-use operator token (vault ingest) for the network's gateway. */
export function operatorToken(net: Network): Promise<string> {
  return jwt(net.gatewayWallet, ethrDid(net.deployment.chainId, net.gatewayWallet.address), { recoverable: false });
}

/* ------------------------------------------------------------------ the cast on the ledger */

export const PURPOSE = "profiling";
export const CATEGORIES = ["transactions"];
const ORG = toHex0x(sha256(new TextEncoder().encode("custodia reliability suite"))) as Bytes32;

/** A fresh key (a plain Wallet, not an HD one). */
export const randomWallet = (): Wallet => new Wallet(Wallet.createRandom().privateKey);

export interface Cast {
  net: Network;
  /** The gateway's DID: every token's audience. */
  aud: string;
  domain: Eip712Domain;
  /** PARTNER members, each with an agreement over profiling and direct marketing. */
  partners: Wallet[];
  auditor: Wallet;
  subjects: Wallet[];
  /** Extra funded accounts that relay signed consents (never the gateway's account). */
  relayers: EvmLedger[];
}

/**
 * Registers `partners` partners (agreement: profiling + direct marketing over transactions,
 * contact and demographic, valid for 30 days) and an auditor, creates `subjects` customers, and
 * grants profiling/transactions consent wherever `consent(subjectIndex, partnerIndex)` says, on
 * the ledger, relayed by a few accounts in parallel.
 */
export async function setupCast(net: Network, options: { partners: number; subjects: number; consent: (s: number, p: number) => boolean; relayers?: number }): Promise<Cast> {
  const aud = ethrDid(net.deployment.chainId, net.gatewayWallet.address);
  const relayerWallets = Array.from({ length: options.relayers ?? 4 }, () => randomWallet().connect(net.provider));
  // funded by the node itself (anvil_setBalance): no transaction from an account whose nonces an adapter tracks
  for (const r of relayerWallets) await net.provider.send("anvil_setBalance", [r.address, toBeHex(10n ** 19n)]);
  const relayers = relayerWallets.map((w) => net.admin.connect(w));
  const partners = Array.from({ length: options.partners }, randomWallet);
  const auditor = randomWallet();
  const now = await net.admin.blockTime();
  for (const p of partners) {
    await net.admin.registerMember({ account: p.address as Address, didHash: didHash(didOf(p)), role: "PARTNER", orgHash: ORG });
    await net.admin.registerAgreement({ partner: p.address as Address, purposes: (1 << purposeId("profiling")) | (1 << purposeId("direct-marketing")), categories: categoryMask(["transactions", "contact", "demographic"]), validFrom: now - 3600, validUntil: now + 30 * 86400, termsHash: ORG });
  }
  await net.admin.registerMember({ account: auditor.address as Address, didHash: didHash(didOf(auditor)), role: "AUDITOR", orgHash: ORG });
  const cast: Cast = { net, aud, domain: await net.admin.eip712Domain(), partners, auditor, subjects: Array.from({ length: options.subjects }, randomWallet), relayers };
  const grants: [Wallet, Wallet][] = [];
  cast.subjects.forEach((s, i) => partners.forEach((p, j) => options.consent(i, j) && grants.push([s, p])));
  await Promise.all(
    relayers.map(async (relayer, k) => {
      for (let i = k; i < grants.length; i += relayers.length) await grantOnLedger(cast, relayer, grants[i]![0], grants[i]![1]);
    }),
  );
  return cast;
}

/** The subject-signed grant of profiling/transactions consent to `partner`, with the consent's current nonce. */
export async function grantMessage(cast: Cast, subject: Wallet, partner: { address: string }): Promise<{ message: ConsentGrantMessage; signature: string }> {
  const purpose = purposeId(PURPOSE);
  const current = await cast.net.admin.getConsent(subject.address as Address, partner.address as Address, purpose);
  const message: ConsentGrantMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose, categories: categoryMask(CATEGORIES), expiresAt: 0, receiptHash: ORG, nonce: current.nonce, deadline: Math.floor(Date.now() / 1000) + 3600 };
  return { message, signature: await signTyped(subject, cast.domain, "ConsentGrant", message) };
}

/** The subject-signed revocation of that consent. */
export async function revokeMessage(cast: Cast, subject: Wallet, partner: { address: string }): Promise<{ message: ConsentRevokeMessage; signature: string }> {
  const purpose = purposeId(PURPOSE);
  const current = await cast.net.admin.getConsent(subject.address as Address, partner.address as Address, purpose);
  const message: ConsentRevokeMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose, nonce: current.nonce, deadline: Math.floor(Date.now() / 1000) + 3600 };
  return { message, signature: await signTyped(subject, cast.domain, "ConsentRevoke", message) };
}

/** Grants straight on the ledger through `relayer` (not through any gateway). */
export async function grantOnLedger(cast: Cast, relayer: EvmLedger, subject: Wallet, partner: { address: string }): Promise<number> {
  const g = await grantMessage(cast, subject, partner);
  return (await relayer.grantConsent(g.message, g.signature)).blockNumber;
}

/** Revokes straight on the ledger through `relayer`. */
export async function revokeOnLedger(cast: Cast, relayer: EvmLedger, subject: Wallet, partner: { address: string }): Promise<number> {
  const r = await revokeMessage(cast, subject, partner);
  return (await relayer.revokeConsent(r.message, r.signature)).blockNumber;
}

/** The body of POST /v1/consents for a grant (with its ISO/IEC TS 27560 record) or a revocation. */
export async function consentSubmission(cast: Cast, subject: Wallet, partner: Wallet, action: "grant" | "revoke"): Promise<Record<string, unknown>> {
  if (action === "revoke") {
    const r = await revokeMessage(cast, subject, partner);
    return { action, message: r.message, signature: r.signature };
  }
  const purpose = purposeId(PURPOSE);
  const record = consentRecord({
    recordId: randomUUID(),
    subjectDid: didOf(subject),
    controllers: [{ id: cast.aud }],
    recipient: didOf(partner),
    purpose,
    categories: categoryMask(CATEGORIES),
    noticeHash: ORG,
    expiresAt: 0,
    givenAt: Math.floor(Date.now() / 1000),
    withdrawalMethod: "wallet",
  });
  const current = await cast.net.admin.getConsent(subject.address as Address, partner.address as Address, purpose);
  const message: ConsentGrantMessage = { subject: subject.address as Address, partner: partner.address as Address, purpose, categories: categoryMask(CATEGORIES), expiresAt: 0, receiptHash: toHex0x(hashCanonical(record)) as Bytes32, nonce: current.nonce, deadline: Math.floor(Date.now() / 1000) + 3600 };
  return { action, message, signature: await signTyped(subject, cast.domain, "ConsentGrant", message), record };
}

/** A profile and a few transactions per subject, in the vault's JSON form. */
export function vaultRecords(subjects: readonly { address: string }[], transactions = 3): unknown[] {
  return subjects.flatMap((s, k) => [
    { kind: "profile", subject: s.address, email: `s${k}@example.com`, ageBand: "25-34", region: "EU-West", income: 40_000 + k },
    ...Array.from({ length: transactions }, (_, i) => ({ kind: "transaction", subject: s.address, id: `t${i}`, at: 1_700_000_000 + i * 86_400, amount: 10 + i, currency: "EUR", category: "grocery", channel: "online" })),
  ]);
}

/* ------------------------------------------------------------------ the gateway in its own process */

export interface ChildStats {
  pid: number;
  rss: number;
  heapUsed: number;
  gcBeforeSample: boolean;
  anchorers: Record<"access" | "decisions", AnchorerStats | null>;
  logs: Record<string, number>;
  view: { syncedBlock: number; fresh: boolean; pushing: boolean };
}

export interface GatewayChild {
  url: string;
  proc: ChildProcess;
  /** Memory, anchoring and log figures, asked over IPC. */
  stats(): Promise<ChildStats>;
  /** SIGKILL; resolves once the process is gone. */
  kill(): Promise<void>;
  /** SIGTERM (graceful close), SIGKILL after 20 s. */
  stop(): Promise<void>;
  /** What the process wrote to stderr (last 20 kB). */
  stderr(): string;
}

/** Starts ./fixtures/gateway-child.ts on the network in `dataDir` and waits for "READY <url>". */
export function spawnGateway(dataDir: string, rpcUrl: string, config: Partial<GatewayConfig> = {}): Promise<GatewayChild> {
  const proc = spawn(process.execPath, ["--expose-gc", "--import", "tsx", FIXTURE], {
    env: { ...process.env, DATA_DIR: dataDir, RPC: rpcUrl, GATEWAY_CONFIG: JSON.stringify(config) },
    stdio: ["ignore", "pipe", "pipe", "ipc"],
  });
  let err = "";
  proc.stderr!.on("data", (c: Buffer) => {
    err = (err + c.toString()).slice(-20_000);
  });
  let nextId = 1;
  const waiting = new Map<number, (s: ChildStats) => void>();
  proc.on("message", (m: { type?: string; id?: number } & ChildStats) => {
    if (m?.type === "stats" && m.id !== undefined) {
      waiting.get(m.id)?.(m);
      waiting.delete(m.id);
    }
  });
  const gone = (): boolean => proc.exitCode !== null || proc.signalCode !== null;
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  const child = (url: string): GatewayChild => ({
    url,
    proc,
    stats: () =>
      new Promise<ChildStats>((resolve, reject) => {
        if (gone()) return reject(new Error("the gateway process is not running"));
        const id = nextId++;
        const timer = setTimeout(() => {
          waiting.delete(id);
          reject(new Error("the gateway process did not answer the stats request"));
        }, 30_000);
        waiting.set(id, (s) => {
          clearTimeout(timer);
          resolve(s);
        });
        proc.send({ type: "stats", id });
      }),
    kill: async () => {
      if (!gone()) proc.kill("SIGKILL");
      await exited;
    },
    stop: async () => {
      if (!gone()) proc.kill("SIGTERM");
      const t = setTimeout(() => proc.kill("SIGKILL"), 20_000);
      await exited;
      clearTimeout(t);
    },
    stderr: () => err,
  });
  return readyUrl(proc, { timeoutMs: 90_000, stderr: () => err, killOnTimeout: true }).then(child);
}

/* ------------------------------------------------------------------ a slow notification path */

export interface HeadsProxy {
  /** ws:// URL to give the gateway as its ledger WebSocket endpoint. */
  url: string;
  /** Delay added to each new-block notification from now on, ms. */
  delayMs: number;
  close(): Promise<void>;
}

/**
 * A WebSocket relay between a gateway and the node that holds back `eth_subscription`
 * notifications (new-block announcements) by `delayMs`, and passes everything else — the
 * subscription handshake, answers, protocol pings — at once: a feed that is live but late, as on a
 * congested link or with a busy event loop. JSON-RPC over HTTP is untouched.
 */
export async function delayedHeadsProxy(upstream: string, delayMs: number): Promise<HeadsProxy> {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await new Promise<void>((r) => server.once("listening", () => r()));
  const sockets = new Set<WebSocket>();
  const proxy: HeadsProxy = {
    url: `ws://127.0.0.1:${(server.address() as { port: number }).port}`,
    delayMs,
    close: async () => {
      for (const s of sockets) s.terminate();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
  server.on("connection", (client) => {
    const node = new WebSocket(upstream, { perMessageDeflate: false });
    sockets.add(client);
    sockets.add(node);
    const pending: string[] = [];
    node.on("open", () => {
      for (const m of pending.splice(0)) node.send(m);
    });
    client.on("message", (raw) => {
      const m = raw.toString();
      if (node.readyState === WebSocket.OPEN) node.send(m);
      else pending.push(m);
    });
    node.on("message", (raw) => {
      const m = raw.toString();
      const forward = (): void => void (client.readyState === WebSocket.OPEN && client.send(m));
      if (m.includes('"eth_subscription"') && proxy.delayMs > 0) setTimeout(forward, proxy.delayMs).unref();
      else forward();
    });
    const end = (): void => {
      client.terminate();
      node.terminate();
    };
    client.on("close", end);
    node.on("close", end);
    client.on("error", end);
    node.on("error", end);
  });
  return proxy;
}

/* ------------------------------------------------------------------ load */

/** autocannon as a promise, without its progress output. */
export function runAutocannon(opts: autocannon.Options): Promise<autocannon.Result> {
  return new Promise((resolve, reject) => {
    autocannon(opts, (err, res) => (err ? reject(err) : resolve(res)));
  });
}

/* ------------------------------------------------------------------ the log, read from disk */

/** A gateway log as found in its LevelDB files, checked independently of gateway/log. */
export interface DiskLog {
  /**
   * The log's size: the end of its last batch record (meta v2: each record names the root of the
   * log after it), or the size its meta record holds (v1: rewritten with every batch).
   */
  size: number;
  /** The root the last record names (v2; the meta's while nothing is past it), and the one recomputed from the stored entries. */
  recordedRoot: string;
  computedRoot: string;
  /** Leaf hashes of entries [0, size), 32 bytes each, concatenated. */
  leaves: Uint8Array;
  /** Entries [0, size) that repeat an earlier entry's requestId (the same request logged twice). */
  duplicateRequestIds: number;
  /** Entries [0, size) whose leaf hash repeats an earlier one. */
  duplicateLeaves: number;
  /** Index keys missing below the recorded size (a gap: entries lost after being counted). */
  gaps: number;
  /** Entries at or beyond a v1 meta's size (an uncommitted batch; the next open deletes them). */
  beyondSize: number;
}

/** The 0x hex leaf hash of entry `index` in a DiskLog. */
export function diskLeaf(log: DiskLog, index: number): string | undefined {
  if (!Number.isSafeInteger(index) || index < 0 || index >= log.size) return undefined;
  return toHex0x(log.leaves.subarray(index * 32, index * 32 + 32));
}

/**
 * Reads log `name` from `<dataDir>/logs/<name>` (the gateway must not be running: LevelDB allows one
 * process), recomputes every leaf hash (RFC 9162: SHA-256(0x00 ‖ entry)) and the root, and counts
 * gaps and repeated entries. Never writes. `onEntry` sees each parsed entry of [0, size).
 */
export async function readLogFromDisk(dataDir: string, name: "access" | "decisions", onEntry?: (index: number, entry: Record<string, unknown>) => void): Promise<DiskLog> {
  const db = new Level<string, Uint8Array>(join(dataDir, "logs", name), { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  try {
    const metaBytes = (await db.get(`${name}/_meta`)) ?? (await db.get(`${name}/meta`));
    const meta = metaBytes ? (JSON.parse(new TextDecoder().decode(metaBytes)) as { v: number; size: number; root: string }) : { v: 2, size: 0, root: toHex0x(sha256(new Uint8Array(0))) };
    const prefix = `${name}/b/`;
    const stored: Array<[number, Uint8Array]> = [];
    let end = 0;
    let lastRoot: string | undefined;
    for await (const [key, value] of db.iterator({ gte: prefix, lt: `${name}/b0` })) {
      const start = Number(key.slice(prefix.length));
      const record = decodeRecord(value);
      if (record === null) throw new Error(`undecodable batch record ${key}`);
      record.entries.forEach((e, j) => stored.push([start + j, e.bytes]));
      end = start + record.entries.length;
      lastRoot = record.root ? toHex0x(record.root) : undefined;
    }
    const v1 = meta.v === 1;
    const size = v1 ? meta.size : Math.max(end, meta.size);
    const recordedRoot = !v1 && end > meta.size && lastRoot !== undefined ? lastRoot : meta.root;
    const leaves = new Uint8Array(size * 32);
    const leafViews: Uint8Array[] = [];
    const requestIds = new Set<string>();
    const leafSeen = new Set<string>();
    let duplicateRequestIds = 0;
    let duplicateLeaves = 0;
    let beyondSize = 0;
    let expected = 0;
    let gaps = 0;
    const decoder = new TextDecoder("utf-8", { fatal: true });
    for (const [index, value] of stored) {
      if (index >= size) {
        beyondSize++;
        continue;
      }
      if (index !== expected) gaps += index - expected;
      expected = index + 1;
      const leaf = leafHash(value);
      leaves.set(leaf, index * 32);
      const hex = toHex0x(leaf);
      if (leafSeen.has(hex)) duplicateLeaves++;
      leafSeen.add(hex);
      const entry = JSON.parse(decoder.decode(value)) as Record<string, unknown>;
      const rid = typeof entry["requestId"] === "string" ? (entry["requestId"] as string) : undefined;
      if (rid !== undefined) {
        if (requestIds.has(rid)) duplicateRequestIds++;
        requestIds.add(rid);
      }
      onEntry?.(index, entry);
    }
    gaps += size - expected;
    for (let i = 0; i < size; i++) leafViews.push(leaves.subarray(i * 32, i * 32 + 32));
    const computedRoot = toHex0x(rootFromLeafHashes(leafViews));
    return { size, recordedRoot: recordedRoot.toLowerCase(), computedRoot, leaves, duplicateRequestIds, duplicateLeaves, gaps, beyondSize };
  } finally {
    await db.close();
  }
}

/**
 * The receipts a load generator was given (log index -> leaf hash), 32 bytes per index in one
 * growing buffer: a long soak acknowledges millions of entries.
 */
export class ReceiptBook implements Iterable<[number, string]> {
  private hashes = new Uint8Array(32 * 1024);
  private seen = new Uint8Array(1024);
  private count = 0;
  /**
   * Receipts for an index already acknowledged with another leaf hash: the log reused an index
   * it had acknowledged (an acknowledged entry lost, replaced by another).
   */
  conflicts = 0;

  get size(): number {
    return this.count;
  }

  set(index: number, leafHash: string): void {
    if (!Number.isSafeInteger(index) || index < 0 || !/^0x[0-9a-fA-F]{64}$/.test(leafHash)) throw new Error(`malformed receipt: ${index} ${leafHash}`);
    if (index >= this.seen.length) {
      let n = this.seen.length;
      while (n <= index) n *= 2;
      const seen = new Uint8Array(n);
      seen.set(this.seen);
      const hashes = new Uint8Array(n * 32);
      hashes.set(this.hashes);
      this.seen = seen;
      this.hashes = hashes;
    }
    const bytes = Buffer.from(leafHash.slice(2), "hex");
    if (this.seen[index]) {
      if (!bytes.equals(this.hashes.subarray(index * 32, index * 32 + 32))) this.conflicts++;
      return;
    }
    this.count++;
    this.seen[index] = 1;
    this.hashes.set(bytes, index * 32);
  }

  *[Symbol.iterator](): IterableIterator<[number, string]> {
    for (let i = 0; i < this.seen.length; i++) if (this.seen[i]) yield [i, toHex0x(this.hashes.subarray(i * 32, i * 32 + 32))];
  }
}

/** Compares receipts a client was given with the log on disk: how many are missing or differ. */
export function lostReceipts(log: DiskLog, receipts: Iterable<[number, string]>): { lost: number; examples: string[] } {
  let lost = 0;
  const examples: string[] = [];
  for (const [index, leaf] of receipts) {
    const stored = diskLeaf(log, index);
    if (stored !== leaf.toLowerCase()) {
      lost++;
      if (examples.length < 5) examples.push(`#${index}: receipt ${leaf}, log ${stored ?? "(absent)"}`);
    }
  }
  return { lost, examples };
}
