/**
 * Shared Hardhat test harness: compiles the contracts, drives Hardhat's in-process network through
 * ethers 6 and deploys Custodia (optionally with the ERC-1056 stand-in registry).
 *
 * Usage (vitest):
 *
 *   const fx = await deployCustodiaFixture({ didRegistry: true });
 *   // ...shared setup (members, agreements)...
 *   const point = await fixturePoint(fx.provider);
 *   beforeEach(() => point.restore());
 *   const receipt = await send(fx.contract.connect(fx.signers[1]), "anchorCheckpoint", logId, 1n, root);
 *   const [ev] = eventsOf(fx.iface, receipt, "CheckpointAnchored");
 *
 * Every helper takes plain ethers objects, so ledger adapters can reuse them against the same chain.
 * Hardhat's accounts are unlocked: `provider.getSigner(i)` signs and sends without keys; for
 * subjects prefer `fundedWallet()` / `randomWallet()` (fresh keys, no nonce interference).
 */
import hre from "hardhat";
import {
  BrowserProvider,
  Contract,
  ContractFactory,
  Interface,
  Wallet,
  toBeHex,
  type BaseContract,
  type ContractRunner,
  type Eip1193Provider,
  type JsonRpcSigner,
  type Log,
  type LogDescription,
  type TransactionReceipt,
} from "ethers";
import { custodiaDomain, type Eip712Domain } from "../../core/eip712.js";

export { hre };

let compiled: Promise<void> | undefined;

/** Compiles once per process (a no-op when the artifacts are up to date). */
export function compileOnce(): Promise<void> {
  compiled ??= hre.run("compile", { quiet: true }) as Promise<void>;
  return compiled;
}

let sharedProvider: BrowserProvider | undefined;

/**
 * An ethers provider over Hardhat's in-process EIP-1193 provider. Polling is irrelevant (automine),
 * and the provider is cached: every helper in one process talks to the same chain.
 */
export function hardhatProvider(): BrowserProvider {
  sharedProvider ??= new BrowserProvider(hre.network.provider as unknown as Eip1193Provider, undefined, {
    cacheTimeout: -1,
  });
  return sharedProvider;
}

/** Deploys the artifact `name` with constructor `args` from `deployer`; resolves once mined. */
export async function deployArtifact(name: string, deployer: ContractRunner, args: unknown[] = []): Promise<Contract> {
  await compileOnce();
  const artifact = await hre.artifacts.readArtifact(name);
  const factory = new ContractFactory(artifact.abi, artifact.bytecode, deployer);
  const deployed = await factory.deploy(...args);
  await deployed.waitForDeployment();
  return new Contract(await deployed.getAddress(), artifact.abi, deployer);
}

export interface CustodiaFixture {
  provider: BrowserProvider;
  chainId: bigint;
  /** Custodia, connected to `admin` (use `.connect(x)` for other callers). */
  contract: Contract;
  address: string;
  /** Custodia's ABI: decode events (`iface.parseLog`) and custom errors (`iface.parseError`). */
  iface: Interface;
  /** Hardhat's 20 unlocked accounts; signers[0] deploys and is the admin by default. */
  signers: JsonRpcSigner[];
  admin: JsonRpcSigner;
  /** The EIP-712 domain as core computes it for this deployment. */
  domain: Eip712Domain;
  /** The ERC-1056 stand-in registry (contracts/test/MockDIDRegistry.sol), when requested. */
  didRegistry?: Contract;
}

export interface DeployOptions {
  /** Index of the Hardhat account registered as the first ADMIN (default 0). */
  admin?: number;
  /** true: deploy MockDIDRegistry and wire it; a string: use that registry address; default none. */
  didRegistry?: boolean | string;
}

/** Compiles, deploys Custodia (and optionally the DID registry stand-in) and returns the handles. */
export async function deployCustodiaFixture(options: DeployOptions = {}): Promise<CustodiaFixture> {
  await compileOnce();
  const provider = hardhatProvider();
  const accounts = (await provider.send("eth_accounts", [])) as string[];
  const signers = await Promise.all(accounts.map((_, i) => provider.getSigner(i)));
  const deployer = signers[0]!;
  const admin = signers[options.admin ?? 0]!;

  let didRegistry: Contract | undefined;
  let registryAddress = "0x0000000000000000000000000000000000000000";
  if (options.didRegistry === true) {
    didRegistry = await deployArtifact("MockDIDRegistry", deployer);
    registryAddress = await didRegistry.getAddress();
  } else if (typeof options.didRegistry === "string") {
    registryAddress = options.didRegistry;
  }

  const deployed = await deployArtifact("Custodia", deployer, [await admin.getAddress(), registryAddress]);
  const address = await deployed.getAddress();
  const contract = deployed.connect(admin) as Contract;
  const { chainId } = await provider.getNetwork();
  const fixture: CustodiaFixture = {
    provider,
    chainId,
    contract,
    address,
    iface: contract.interface,
    signers,
    admin,
    domain: custodiaDomain(chainId, address),
  };
  if (didRegistry) fixture.didRegistry = didRegistry;
  return fixture;
}

/* ------------------------------------------------------------------ transactions */

/**
 * Sends `contract.method(...args)` from the contract's runner and waits for the receipt.
 * Rejects with the ethers error (revert data intact) when the call reverts.
 */
export async function send(contract: BaseContract, method: string, ...args: unknown[]): Promise<TransactionReceipt> {
  const tx = await contract.getFunction(method)(...args);
  const receipt = (await tx.wait()) as TransactionReceipt | null;
  if (!receipt) throw new Error(`${method}: no receipt`);
  return receipt;
}

/** Calls a view function and returns its (first) result. */
export async function view<T = unknown>(contract: BaseContract, method: string, ...args: unknown[]): Promise<T> {
  return (await contract.getFunction(method).staticCall(...args)) as T;
}

/** The events of `receipt` decoded with `iface`, optionally only those named `name`. */
export function eventsOf(iface: Interface, receipt: TransactionReceipt, name?: string): LogDescription[] {
  const out: LogDescription[] = [];
  for (const log of receipt.logs as readonly Log[]) {
    let parsed: LogDescription | null = null;
    try {
      parsed = iface.parseLog({ topics: [...log.topics], data: log.data });
    } catch {
      parsed = null;
    }
    if (parsed && (name === undefined || parsed.name === name)) out.push(parsed);
  }
  return out;
}

/** The single event `name` in `receipt`; throws unless exactly one was emitted. */
export function onlyEvent(iface: Interface, receipt: TransactionReceipt, name: string): LogDescription {
  const events = eventsOf(iface, receipt, name);
  if (events.length !== 1) throw new Error(`expected exactly one ${name} event, got ${events.length}`);
  return events[0]!;
}

/* ------------------------------------------------------------------ accounts */

/** A fresh random wallet connected to `provider`, with no funds (enough for signing). */
export function randomWallet(provider: BrowserProvider = hardhatProvider()): Wallet {
  return Wallet.createRandom().connect(provider) as unknown as Wallet;
}

/** A fresh random wallet funded with `ether` (default 100) via hardhat_setBalance. */
export async function fundedWallet(provider: BrowserProvider = hardhatProvider(), ether = 100n): Promise<Wallet> {
  const wallet = randomWallet(provider);
  await provider.send("hardhat_setBalance", [wallet.address, toBeHex(ether * 10n ** 18n)]);
  return wallet;
}

/* ------------------------------------------------------------------ chain state */

/** Takes an EVM snapshot; returns its id. A snapshot is consumed when reverted to. */
export async function takeSnapshot(provider: BrowserProvider = hardhatProvider()): Promise<string> {
  return (await provider.send("evm_snapshot", [])) as string;
}

/** Reverts to snapshot `id` (consuming it); throws if Hardhat refuses. */
export async function revertTo(id: string, provider: BrowserProvider = hardhatProvider()): Promise<void> {
  const ok = (await provider.send("evm_revert", [id])) as boolean;
  if (!ok) throw new Error(`evm_revert(${id}) failed`);
}

/**
 * A reusable fixture point: `await point.restore()` returns the chain to the state when
 * `fixturePoint()` was called and keeps the point usable (it re-snapshots after each revert).
 */
export async function fixturePoint(provider: BrowserProvider = hardhatProvider()): Promise<{ restore(): Promise<void> }> {
  let id = await takeSnapshot(provider);
  return {
    async restore() {
      await revertTo(id, provider);
      id = await takeSnapshot(provider);
    },
  };
}

/** Timestamp of the latest block. */
export async function latestTimestamp(provider: BrowserProvider = hardhatProvider()): Promise<number> {
  const block = await provider.getBlock("latest");
  if (!block) throw new Error("no latest block");
  return block.timestamp;
}

/** Advances the clock by `seconds` and mines a block at the new time. */
export async function increaseTime(seconds: number, provider: BrowserProvider = hardhatProvider()): Promise<void> {
  await provider.send("evm_increaseTime", [seconds]);
  await provider.send("evm_mine", []);
}

/** The next mined block gets exactly `timestamp` (must be later than the latest block). */
export async function setNextTimestamp(timestamp: number, provider: BrowserProvider = hardhatProvider()): Promise<void> {
  await provider.send("evm_setNextBlockTimestamp", [timestamp]);
}
