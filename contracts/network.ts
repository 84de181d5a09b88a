import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Wallet, getAddress, type JsonRpcProvider } from "ethers";
import { CustodiaError } from "../core/errors.js";
import { sha256, toHex0x } from "../core/hash.js";
import { didHash, ethrDid, type Address } from "../core/domain.js";
import { deployCustodia, type Deployment } from "./deploy.js";
import { startEmbeddedNode, EMBEDDED_CHAIN_ID, type EmbeddedNode } from "./embedded-node.js";
import { EvmLedger, jsonRpcProvider } from "./evm-ledger.js";
import { OffThreadWallet } from "./off-thread-wallet.js";

/**
 * Brings up the EVM side of a Custodia network: either the embedded node (default) or an external
 * JSON-RPC endpoint, the operator keys, and the contracts — deployed once, recorded in
 * `<dataDir>/deployment.json`, and found again on every later start.
 */
export interface NetworkConfig {
  dataDir: string;
  /** External JSON-RPC endpoint; when absent the embedded node is started. */
  rpcUrl?: string;
  /**
   * WebSocket endpoint of the same node, for new-block notifications (the gateway then need not
   * ask the node on every request). Embedded node: its own port. External: only when given.
   */
  wsUrl?: string;
  chainId?: number;
  /** Port of the embedded node (0 = any free port). */
  ledgerPort?: number;
  /** Hex private key of the consortium admin; generated and kept in <dataDir>/keys.json if absent. */
  adminKey?: string;
  /** Hex private key of this gateway's ledger account; generated likewise if absent. */
  gatewayKey?: string;
  /** An existing Custodia deployment to use instead of deploying (external networks). */
  contract?: string;
  log?: (line: string) => void;
}

export interface Network {
  provider: JsonRpcProvider;
  deployment: Deployment;
  /** The ledger as the consortium admin. */
  admin: EvmLedger;
  /** The ledger as this gateway (registered as a GATEWAY member). */
  gateway: EvmLedger;
  adminWallet: Wallet;
  gatewayWallet: Wallet;
  rpcUrl: string;
  /** The node's WebSocket endpoint, when known (see NetworkConfig.wsUrl). */
  wsUrl: string | undefined;
  node: EmbeddedNode | undefined;
  /** Stops the embedded node (state written to disk); external nodes are left alone. */
  close(): Promise<void>;
}

export interface KeyFile {
  admin: string;
  gateway: string;
}

/** Reads configuration from the environment, with the embedded defaults. */
export function networkConfigFromEnv(env: NodeJS.ProcessEnv = process.env): NetworkConfig {
  const num = (name: string): number | undefined => {
    const v = env[name];
    if (v === undefined || v === "") return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new CustodiaError("CONFIG_INVALID", `${name} must be a non-negative integer, got "${v}"`);
    return n;
  };
  const cfg: NetworkConfig = { dataDir: env["CUSTODIA_DATA_DIR"] || "./data" };
  if (env["CUSTODIA_RPC_URL"]) cfg.rpcUrl = env["CUSTODIA_RPC_URL"];
  if (env["CUSTODIA_LEDGER_WS_URL"]) cfg.wsUrl = env["CUSTODIA_LEDGER_WS_URL"];
  const chainId = num("CUSTODIA_CHAIN_ID");
  if (chainId !== undefined) cfg.chainId = chainId;
  const port = num("CUSTODIA_LEDGER_PORT");
  if (port !== undefined) cfg.ledgerPort = port;
  if (env["CUSTODIA_ADMIN_KEY"]) cfg.adminKey = env["CUSTODIA_ADMIN_KEY"];
  if (env["CUSTODIA_GATEWAY_KEY"]) cfg.gatewayKey = env["CUSTODIA_GATEWAY_KEY"];
  if (env["CUSTODIA_CONTRACT"]) cfg.contract = env["CUSTODIA_CONTRACT"];
  return cfg;
}

function writeJsonAtomic(path: string, value: unknown, mode = 0o600): void {
  const tmp = `${path}.tmp`;
  writeFileSync(tmp, JSON.stringify(value, null, 2) + "\n", { mode });
  renameSync(tmp, path);
}

/** The operator keys in <dataDir>/keys.json (created, mode 0600, when absent); config keys win. */
export function loadOrCreateKeys(dataDir: string, cfg: Pick<NetworkConfig, "adminKey" | "gatewayKey">): KeyFile {
  const path = join(dataDir, "keys.json");
  let stored: Partial<KeyFile> = {};
  if (existsSync(path)) {
    try {
      stored = JSON.parse(readFileSync(path, "utf8")) as Partial<KeyFile>;
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", `${path} is not valid JSON`, undefined, { cause: e });
    }
  }
  const keys: KeyFile = {
    admin: cfg.adminKey ?? stored.admin ?? Wallet.createRandom().privateKey,
    gateway: cfg.gatewayKey ?? stored.gateway ?? Wallet.createRandom().privateKey,
  };
  if (keys.admin !== stored.admin || keys.gateway !== stored.gateway) writeJsonAtomic(path, keys);
  return keys;
}

/**
 * A wallet of one of the network's keys. The gateway's signs on a thread of its own: it anchors
 * checkpoints and relays consents while serving requests, and a signature on its event loop held
 * every request in flight.
 */
function wallet(key: string, name: string, provider: JsonRpcProvider, offThread = false): Wallet {
  try {
    return offThread ? new OffThreadWallet(key, provider) : new Wallet(key, provider);
  } catch (e) {
    throw new CustodiaError("CONFIG_INVALID", `the ${name} key is not a valid secp256k1 private key`, undefined, { cause: e });
  }
}

export async function startNetwork(cfg: NetworkConfig): Promise<Network> {
  const log = cfg.log ?? (() => undefined);
  mkdirSync(cfg.dataDir, { recursive: true });
  let node: EmbeddedNode | undefined;
  let rpcUrl = cfg.rpcUrl;
  let chainId = cfg.chainId;
  if (!rpcUrl) {
    node = await startEmbeddedNode({ dataDir: join(cfg.dataDir, "ledger"), port: cfg.ledgerPort ?? 8545, chainId: chainId ?? EMBEDDED_CHAIN_ID });
    rpcUrl = node.url;
    chainId = node.chainId;
    log(`embedded ledger node listening on ${rpcUrl} (state in ${node.statePath})`);
  }
  try {
    if (chainId === undefined) {
      const probe = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }) }).then((r) => r.json() as Promise<{ result?: string }>).catch(() => ({}) as { result?: string });
      if (!probe.result) throw new CustodiaError("LEDGER_UNAVAILABLE", `cannot reach the ledger at ${rpcUrl}`);
      chainId = Number(BigInt(probe.result));
    }
    const provider = jsonRpcProvider(rpcUrl, chainId);
    const keys = loadOrCreateKeys(cfg.dataDir, cfg);
    const adminWallet = wallet(keys.admin, "admin", provider);
    const gatewayWallet = wallet(keys.gateway, "gateway", provider, true);

    if (node) await fundFromDevAccount(provider, [adminWallet.address, gatewayWallet.address]);

    const deployment = await loadOrDeploy(cfg, provider, adminWallet, log);
    const admin = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock });
    const gateway = admin.connect(gatewayWallet);

    const member = await admin.getMember(gatewayWallet.address as Address);
    if (!member) {
      await admin.registerMember({
        account: gatewayWallet.address as Address,
        didHash: didHash(ethrDid(chainId, gatewayWallet.address)),
        role: "GATEWAY",
        orgHash: toHex0x(sha256(new TextEncoder().encode("Custodia embedded operator"))),
      });
      log(`registered gateway account ${gatewayWallet.address}`);
    }

    return {
      provider,
      deployment,
      admin,
      gateway,
      adminWallet,
      gatewayWallet,
      rpcUrl,
      wsUrl: cfg.wsUrl ?? (node ? rpcUrl.replace(/^http/, "ws") : undefined),
      node,
      close: async () => {
        provider.destroy();
        if (node) await node.stop();
      },
    };
  } catch (e) {
    if (node) await node.stop();
    throw e;
  }
}

/** Gives the operator accounts ether from the embedded node's unlocked dev account (embedded only). */
async function fundFromDevAccount(provider: JsonRpcProvider, accounts: string[]): Promise<void> {
  const dev = await provider.getSigner(0);
  for (const account of accounts) {
    const balance = await provider.getBalance(account);
    if (balance < 10n ** 20n) {
      const tx = await dev.sendTransaction({ to: account, value: 10n ** 21n });
      await tx.wait();
    }
  }
}

async function loadOrDeploy(cfg: NetworkConfig, provider: JsonRpcProvider, adminWallet: Wallet, log: (l: string) => void): Promise<Deployment> {
  const path = join(cfg.dataDir, "deployment.json");
  const { chainId } = await provider.getNetwork();
  if (existsSync(path)) {
    let recorded: Deployment;
    try {
      recorded = JSON.parse(readFileSync(path, "utf8")) as Deployment;
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", `${path} is not valid JSON`, undefined, { cause: e });
    }
    const code = await provider.getCode(recorded.custodia);
    if (recorded.chainId !== Number(chainId) || code === "0x") {
      // Never redeploy silently over a recorded deployment: consents would seem to vanish.
      throw new CustodiaError(
        "LEDGER_NOT_DEPLOYED",
        `the deployment recorded in ${path} (chain ${recorded.chainId}, ${recorded.custodia}) is not on the ledger at hand; ` +
          `point CUSTODIA_RPC_URL at the right node, or move ${cfg.dataDir} aside to start a new network`,
      );
    }
    log(`using Custodia contracts at ${recorded.custodia} (deployed in block ${recorded.deployBlock})`);
    return recorded;
  }
  if (cfg.contract) {
    const ledger = new EvmLedger({ provider, address: cfg.contract });
    const code = await provider.getCode(ledger.address);
    if (code === "0x") throw new CustodiaError("LEDGER_NOT_DEPLOYED", `no contract at CUSTODIA_CONTRACT=${cfg.contract}`);
    const deployment: Deployment = { chainId: Number(chainId), custodia: ledger.address, didRegistry: getAddress("0x0000000000000000000000000000000000000000") as Address, deployBlock: 0, admin: getAddress(adminWallet.address) as Address, deployedAt: new Date().toISOString() };
    writeJsonAtomic(path, deployment, 0o644);
    return deployment;
  }
  const deployment = await deployCustodia(adminWallet);
  writeJsonAtomic(path, deployment, 0o644);
  log(`deployed Custodia at ${deployment.custodia} and the ERC-1056 DID registry at ${deployment.didRegistry}`);
  return deployment;
}
