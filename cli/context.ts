/**
 * Where the CLI finds the network: the gateway URL, the ledger's JSON-RPC URL, the Custodia
 * contract and chain id. Flags win over environment variables, which win over the embedded
 * network's `<data-dir>/deployment.json` (written by `npm start`), which wins over the defaults.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { getAddress } from "ethers";
import type { Address } from "../core/domain.js";
import { CliError, EXIT, type CliIo } from "./io.js";

/** Options every command accepts (declared once on the root program). */
export interface GlobalOptions {
  gateway?: string;
  rpc?: string;
  contract?: string;
  chainId?: string;
  dataDir?: string;
  wallet?: string;
  json?: boolean;
}

export interface NetworkSettings {
  gatewayUrl: string;
  rpcUrl: string;
  /** From flags, env or deployment.json; undefined when none says (commands needing it fail with USAGE). */
  contract: Address | undefined;
  chainId: number | undefined;
  /** The ERC-1056 registry of the embedded network, when known. */
  didRegistry: Address | undefined;
  deployBlock: number;
  dataDir: string;
  /** Wallet file: --wallet, CUSTODIA_WALLET, or <data-dir>/wallet.json. */
  walletPath: string;
  /**
   * The passphrase of an encrypted wallet (and the one a new wallet is encrypted under):
   * CUSTODIA_WALLET_PASSPHRASE, or the first line of the file CUSTODIA_WALLET_PASSPHRASE_FILE names.
   * Undefined when neither is set.
   */
  walletPassphrase?: string;
}

/** The wallet passphrase from the environment: the variable itself, or a file (its first line). */
function walletPassphrase(env: NodeJS.ProcessEnv): string | undefined {
  const direct = env["CUSTODIA_WALLET_PASSPHRASE"];
  const file = env["CUSTODIA_WALLET_PASSPHRASE_FILE"];
  if (direct !== undefined && file !== undefined) {
    throw new CliError("CONFIG_INVALID", "set CUSTODIA_WALLET_PASSPHRASE or CUSTODIA_WALLET_PASSPHRASE_FILE, not both", EXIT.USAGE);
  }
  let passphrase = direct;
  if (file !== undefined) {
    let text: string;
    try {
      // held to the wallet file's rule: readable by its owner only
      const mode = statSync(file).mode;
      if (process.platform !== "win32" && (mode & 0o077) !== 0) {
        throw new CliError("CONFIG_INVALID", `the passphrase file ${file} can be read by other users (mode ${(mode & 0o777).toString(8)}); run: chmod 600 ${file}`, EXIT.USAGE);
      }
      text = readFileSync(file, "utf8");
    } catch (e) {
      if (e instanceof CliError) throw e;
      throw new CliError("CONFIG_INVALID", `cannot read the passphrase file CUSTODIA_WALLET_PASSPHRASE_FILE names: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, EXIT.USAGE);
    }
    passphrase = text.split(/\r?\n/, 1)[0]!;
  }
  if (passphrase === undefined) return undefined;
  if (passphrase.length === 0) throw new CliError("CONFIG_INVALID", "the wallet passphrase is empty", EXIT.USAGE);
  return passphrase;
}

export const DEFAULT_GATEWAY = "http://127.0.0.1:8080";
export const DEFAULT_RPC = "http://127.0.0.1:8545";

function address(value: string, what: string): Address {
  try {
    return getAddress(value) as Address;
  } catch {
    throw new CliError("INVALID_ADDRESS", `${what} is not an address: ${value}`, EXIT.USAGE);
  }
}

export function resolveSettings(opts: GlobalOptions, io: CliIo): NetworkSettings {
  const env = io.env;
  for (const [what, value] of [["--data-dir", opts.dataDir ?? env["CUSTODIA_DATA_DIR"]], ["--wallet", opts.wallet ?? env["CUSTODIA_WALLET"]]] as const) {
    if (value !== undefined && value.includes("\0")) throw new CliError("CONFIG_INVALID", `${what} is not a usable path (it contains a NUL character)`, EXIT.USAGE);
  }
  const dataDir = resolve(opts.dataDir ?? env["CUSTODIA_DATA_DIR"] ?? "./data");
  let deployment: { chainId?: number; custodia?: string; didRegistry?: string; deployBlock?: number } = {};
  const depPath = join(dataDir, "deployment.json");
  if (existsSync(depPath)) {
    try {
      deployment = JSON.parse(readFileSync(depPath, "utf8")) as typeof deployment;
    } catch {
      throw new CliError("CONFIG_INVALID", `${depPath} is not valid JSON`, EXIT.USAGE);
    }
  }
  const contractRaw = opts.contract ?? env["CUSTODIA_CONTRACT"] ?? deployment.custodia;
  const chainRaw = opts.chainId ?? env["CUSTODIA_CHAIN_ID"] ?? (deployment.chainId !== undefined ? String(deployment.chainId) : undefined);
  let chainId: number | undefined;
  if (chainRaw !== undefined) {
    chainId = Number(chainRaw);
    if (!Number.isSafeInteger(chainId) || chainId <= 0) throw new CliError("CONFIG_INVALID", `chain id must be a positive integer, got "${chainRaw}"`, EXIT.USAGE);
  }
  const ledgerPort = env["CUSTODIA_LEDGER_PORT"];
  const gatewayPort = env["CUSTODIA_GATEWAY_PORT"];
  return {
    gatewayUrl: httpUrl(opts.gateway ?? env["CUSTODIA_GATEWAY_URL"] ?? (gatewayPort ? `http://127.0.0.1:${gatewayPort}` : DEFAULT_GATEWAY), "the gateway URL").replace(/\/+$/, ""),
    rpcUrl: httpUrl(opts.rpc ?? env["CUSTODIA_RPC_URL"] ?? (ledgerPort ? `http://127.0.0.1:${ledgerPort}` : DEFAULT_RPC), "the ledger's JSON-RPC URL"),
    contract: contractRaw ? address(contractRaw, "contract") : undefined,
    chainId,
    didRegistry: deployment.didRegistry ? address(deployment.didRegistry, "DID registry") : undefined,
    deployBlock: deployment.deployBlock ?? 0,
    dataDir,
    walletPath: resolve(opts.wallet ?? env["CUSTODIA_WALLET"] ?? join(dataDir, "wallet.json")),
    walletPassphrase: walletPassphrase(env),
  };
}

/** Both endpoints are spoken to over HTTP(S); anything else is a usage error, before any connection. */
function httpUrl(raw: string, what: string): string {
  let protocol: string | undefined;
  try {
    protocol = new URL(raw).protocol;
  } catch {
    protocol = undefined;
  }
  if (protocol !== "http:" && protocol !== "https:") {
    throw new CliError("CONFIG_INVALID", `${what} must be an http:// or https:// URL, got ${JSON.stringify(raw.slice(0, 100))}`, EXIT.USAGE);
  }
  return raw;
}

/** Asks a JSON-RPC node its chain id; LEDGER_UNAVAILABLE (exit 3) when it cannot be reached. */
export async function askChainId(rpcUrl: string, timeoutMs = 5_000): Promise<number> {
  let body: { result?: unknown };
  try {
    const res = await fetch(rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }), signal: AbortSignal.timeout(timeoutMs) });
    body = (await res.json()) as { result?: unknown };
  } catch (e) {
    throw new CliError("LEDGER_UNAVAILABLE", `the ledger at ${rpcUrl} cannot be reached (${(e as { cause?: { code?: string } }).cause?.code ?? (e as Error).message})`, EXIT.UNAVAILABLE);
  }
  if (typeof body.result !== "string") throw new CliError("LEDGER_UNAVAILABLE", `${rpcUrl} did not answer eth_chainId`, EXIT.UNAVAILABLE);
  return Number(BigInt(body.result));
}
