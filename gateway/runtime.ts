import { existsSync, mkdirSync, readFileSync, writeFileSync, renameSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { FastifyInstance, FastifyServerOptions } from "fastify";
import { Level } from "level";
import type { Provider, Wallet } from "ethers";
import { getAddress } from "ethers";
import { didHash, ethrDid, type Address } from "../core/domain.js";
import { CustodiaError } from "../core/errors.js";
import { fromHex } from "../core/hash.js";
import type { LedgerPort } from "../core/ledger.js";
import type { Network } from "../contracts/network.js";
import { buildGateway, subjectTagOf, type GatewayDeps, type LogName } from "./app.js";
import { logIdFor } from "../core/logs.js";
import { LevelJtiStore } from "./auth/jti-store.js";
import { didResolver } from "./auth/resolver.js";
import { secp256k1DidKey } from "../core/did.js";
import { canonicalGatewayUrl, loopbackUrls } from "../core/gateway-url.js";
import { TokenVerifier } from "./auth/tokens.js";
import { gatewayConfig, type GatewayConfig } from "./config.js";
import { LedgerView, DEFAULT_VIEW_OPTIONS, type JsonSublevel } from "./ledger-view.js";
import { WsHeadFeed } from "./head-feed.js";
import { Anchorer } from "./log/anchorer.js";
import { DurableLog } from "./log/durable-log.js";
import { moveStore } from "./log/move-store.js";
import { Vault, vaultCodec } from "./vault/index.js";
import type { VaultCodec, VaultPort } from "./ports.js";
import { CachedVault } from "./vault-cache.js";
import { ExplanationStore } from "./explanations.js";
import { startControllerSync, type ControllerLedger } from "./controller-sync.js";
import { OffThreadWallet } from "../contracts/off-thread-wallet.js";

export interface GatewayRuntimeOptions {
  /** Gateway state lives in <dataDir>/gateway (LevelDB) next to the ledger's files. */
  dataDir: string;
  /** The ledger as this gateway's account (a registered GATEWAY member). */
  ledger: LedgerPort;
  /**
   * The JSON-RPC provider and the ERC-1056 registry, for did:ethr resolution. Absent (a Fabric
   * ledger has no registry): callers authenticate with did:key only.
   */
  provider?: Provider;
  didRegistry?: Address;
  /**
   * The gateway's key: signs checkpoints, receipts and its DID's tokens. On an EVM ledger it is
   * also the ledger account; on Fabric the ledger account is the MSP identity's, and this key is
   * bound to it by the gateway's member record (its DID hash).
   */
  wallet: Wallet;
  /** The EIP-712 domain's chain id and verifying contract (on Fabric: as the chaincode was initialised). */
  chainId: number;
  contract: Address;
  /** First block of event scans. */
  deployBlock: number;
  /** The ledger node's WebSocket endpoint: new-block notifications (see GatewayConfig.pushHeads). */
  ledgerWsUrl?: string;
  config?: Partial<GatewayConfig>;
  /** 32-byte vault master key; else CUSTODIA_MASTER_KEY, else generated into <dataDir>/master.key. */
  masterKey?: Uint8Array;
  clock?: () => number;
  logger?: FastifyServerOptions["logger"];
  onError?: (e: unknown) => void;
}

export interface GatewayRuntime {
  app: FastifyInstance;
  deps: GatewayDeps;
  did: string;
  /** Listens on config host/port; resolves the base URL. */
  listen(): Promise<string>;
  /**
   * Adds an address clients reach this gateway at (a reverse proxy's known only at run time),
   * as CUSTODIA_PUBLIC_URL does at start: the gateway proves its identity for it too.
   */
  addPublicUrl(url: string): void;
  close(): Promise<void>;
}

/** The ledger half of the runtime options, taken from a started EVM network. */
export function networkRuntimeOptions(net: Network): Pick<GatewayRuntimeOptions, "ledger" | "provider" | "wallet" | "chainId" | "contract" | "didRegistry" | "deployBlock" | "ledgerWsUrl"> {
  return {
    ...(net.wsUrl ? { ledgerWsUrl: net.wsUrl } : {}),
    ledger: net.gateway,
    provider: net.provider,
    wallet: net.gatewayWallet,
    chainId: net.deployment.chainId,
    contract: net.deployment.custodia,
    didRegistry: net.deployment.didRegistry,
    deployBlock: net.deployment.deployBlock,
  };
}

// Defined in core so the auditor computes the same id without importing gateway code.
export { logIdFor } from "../core/logs.js";

function loadMasterKey(dataDir: string, given?: Uint8Array): Uint8Array {
  if (given) return given;
  const fromEnv = process.env["CUSTODIA_MASTER_KEY"];
  if (fromEnv) {
    try {
      return fromHex(fromEnv, 32);
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", "CUSTODIA_MASTER_KEY must be 32 bytes of hex", undefined, { cause: e });
    }
  }
  const path = join(dataDir, "master.key");
  if (existsSync(path)) return fromHex(readFileSync(path, "utf8").trim(), 32);
  const key = randomBytes(32);
  writeFileSync(`${path}.tmp`, Buffer.from(key).toString("hex") + "\n", { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
  return new Uint8Array(key);
}

export async function createGatewayRuntime(opts: GatewayRuntimeOptions): Promise<GatewayRuntime> {
  const config = gatewayConfig(opts.config);
  const clock = opts.clock ?? Date.now;
  const onError = opts.onError ?? (() => undefined);
  mkdirSync(opts.dataDir, { recursive: true });
  const masterKey = loadMasterKey(opts.dataDir, opts.masterKey);
  const fabric = opts.ledger.kind === "fabric";
  // The gateway's DID: on an EVM ledger did:ethr on the consortium chain, naming its ledger
  // account; on Fabric (no DID registry) the did:key of its key.
  const did = fabric ? secp256k1DidKey(opts.wallet.signingKey.publicKey) : ethrDid(opts.chainId, await opts.wallet.getAddress());
  const account = getAddress(await opts.ledger.account()) as Address;
  // a key that signs on a thread of its own loads it now, not on the first anchor or relayed consent
  if (opts.wallet instanceof OffThreadWallet) opts.wallet.warm();

  const db = new Level<string, unknown>(join(opts.dataDir, "gateway"), { valueEncoding: "json" });
  await db.open();
  const opened: { close(): Promise<void> }[] = [];
  try {
    const sub = (name: string, valueEncoding: "json" | "view" = "json") => db.sublevel(name, { valueEncoding }) as unknown as JsonSublevel;

    let heads: WsHeadFeed | undefined;
    if (config.pushHeads && opts.ledgerWsUrl && !config.strict) {
      heads = await WsHeadFeed.start(opts.ledgerWsUrl, { onError });
      opened.push({ close: () => heads!.close() });
    }
    const view = await LedgerView.open(opts.ledger, sub("view"), { ...DEFAULT_VIEW_OPTIONS, staleAfterMs: config.staleAfterMs, pollMs: config.ledgerPollMs, maxSyncAgeMs: config.maxSyncAgeMs, fromBlock: opts.deployBlock, clock, onError, ...(heads ? { heads } : {}) });
    opened.push({ close: () => view.stop() });

    const vault = await Vault.open(sub("vault", "view") as never, { masterKey });
    opened.push(vault);

    const anchorsDb = sub("anchors", "view");
    mkdirSync(join(opts.dataDir, "logs"), { recursive: true });
    const logs = {} as Record<LogName, DurableLog>;
    const anchorers = {} as Record<LogName, Anchorer>;
    for (const name of ["access", "decisions"] as const) {
      // Each log lives in a LevelDB of its own, ./logs/<name> (see ./log/move-store.ts for why);
      // earlier versions kept them in the "logs" sublevel, from where they are moved first.
      const logsDb = new Level<string, Uint8Array>(join(opts.dataDir, "logs", name), { keyEncoding: "utf8", valueEncoding: "view" });
      await logsDb.open();
      opened.push({ close: () => logsDb.close() });
      const move = await moveStore(sub("logs", "view") as never, logsDb as never, { prefix: `${name}/` });
      // its leaf hashes in ./logs/<name>.leaves (rebuilt on open): the tree keeps ~1 byte an entry in memory
      logs[name] = await DurableLog.open(logsDb as never, { logId: logIdFor(opts.chainId, opts.contract, account, name), name, maxBatch: config.logMaxBatch, maxDelayMs: config.logMaxDelayMs, legacyTag: subjectTagOf, leafFile: join(opts.dataDir, "logs", `${name}.leaves`) });
      opened.push(logs[name]);
      // Once, after a move or a takeover: its deletions (the old meta, per-entry records, the
      // move's marks) span the whole key range, and would keep compaction merging until dropped.
      if (move.moved > 0 || logs[name].tookOver) await (logsDb as unknown as { compactRange(start: string, end: string): Promise<void> }).compactRange("", "\uffff");
      anchorers[name] = new Anchorer({ log: logs[name], ledger: opts.ledger, signer: opts.wallet, store: anchorsDb.sublevel(name, { valueEncoding: "view" }) as never, everyEntries: config.anchorEveryEntries, everyMs: config.anchorEveryMs, clock, onError, signerBinding: fabric ? { didHash: didHash(did) } : "account" });
    }

    // Each subject's history is indexed by the logs themselves (entry tags, rebuilt on open); the
    // per-entry index records of earlier versions are obsolete once their logs are rewritten.
    await sub("subjects").clear();
    const explanations = new ExplanationStore(sub("explanations"));

    const resolver = didResolver({ chainId: opts.chainId, timeoutMs: config.staleAfterMs, ...(opts.provider && opts.didRegistry ? { provider: opts.provider, registry: opts.didRegistry } : {}) });
    const tokens = new TokenVerifier(resolver, { audience: did, maxLifetimeSec: config.maxTokenLifetimeSec, clockSkewSec: config.clockSkewSec, cacheSize: 50_000 }, () => Math.floor(clock() / 1000));
    const jti = new LevelJtiStore(sub("jti"), () => Math.floor(clock() / 1000), config.clockSkewSec);

    // the addresses it proves its identity for: the configured ones now, the loopback ones at listen()
    const servedUrls = { public: new Set<string>(config.publicUrls), loopback: new Set<string>() };
    const deps: GatewayDeps = {
      config,
      identity: { did, wallet: opts.wallet, account },
      chain: { chainId: opts.chainId, contract: opts.contract },
      ledger: opts.ledger,
      view,
      vault: new CachedVault(vault as unknown as VaultPort),
      vaultCodec: vaultCodec() as unknown as VaultCodec,
      logs,
      anchorers,
      explanations,
      tokens,
      jti,
      clock,
      logger: opts.logger ?? false,
      servedUrls,
    };
    const app = await buildGateway(deps);

    await view.start();
    // did:ethr key rotations in the ERC-1056 registry are carried into the consent contract
    const ledgerWithRotation = opts.ledger as Partial<ControllerLedger>;
    if (opts.provider && opts.didRegistry && opts.didRegistry !== "0x0000000000000000000000000000000000000000" && typeof ledgerWithRotation.syncController === "function" && typeof ledgerWithRotation.controllerOf === "function") {
      const sync = startControllerSync({ provider: opts.provider, registry: opts.didRegistry, ledger: ledgerWithRotation as ControllerLedger, fromBlock: opts.deployBlock, pollMs: config.ledgerPollMs, onError });
      opened.push({ close: () => sync.stop() });
    }
    for (const name of ["access", "decisions"] as const) {
      await anchorers[name].start().catch((e: unknown) => {
        // An alarm (reported already) means the log no longer holds what was anchored from it, or
        // the ledger names another gateway: serving on would hand out receipts for indexes the
        // ledger has anchored other entries at. Anything else (a ledger down) is retried.
        if (anchorers[name].alarmReason() !== null) throw e;
        onError(e);
      });
    }
    const pruner = setInterval(() => void jti.prune().catch(onError), 60_000);
    pruner.unref();

    let closed = false;
    return {
      app,
      deps,
      did,
      listen: async () => {
        await app.listen({ host: config.host, port: config.port });
        const addr = app.server.address();
        const port = typeof addr === "object" && addr ? addr.port : config.port;
        const bound = app.addresses().flatMap((a) => (typeof a === "object" ? [{ address: a.address, port: a.port }] : []));
        const loopback = loopbackUrls(bound);
        for (const u of loopback) servedUrls.loopback.add(u);
        // an address a client on this machine can use (not 0.0.0.0 or "::")
        return loopback[0] ?? canonicalGatewayUrl(`http://${config.host.includes(":") ? `[${config.host}]` : config.host}:${port}`);
      },
      addPublicUrl: (url) => void servedUrls.public.add(canonicalGatewayUrl(url)),
      close: async () => {
        if (closed) return;
        closed = true;
        clearInterval(pruner);
        await app.close();
        for (const name of ["access", "decisions"] as const) await anchorers[name].stop();
        for (const o of opened.reverse()) await o.close();
        await db.close();
      },
    };
  } catch (e) {
    for (const o of opened.reverse()) await o.close().catch(() => undefined);
    await db.close();
    throw e;
  }
}
