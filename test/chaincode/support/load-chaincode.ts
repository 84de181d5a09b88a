/**
 * Loads the chaincode from its tsc output (chaincode/dist), never from the TypeScript sources:
 * vitest compiles TS with esbuild, which emits no decorator metadata, so only the tsc build has the
 * `design:paramtypes` fabric-contract-api reads. (vitest's module runner only rewrites the import
 * and export statements of that JavaScript; the decorator and metadata calls run as tsc wrote them,
 * and metadata.test.ts checks that they did.)
 */
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), "../../..");
export const CHAINCODE_DIR = resolve(REPO_ROOT, "chaincode");
export const CHAINCODE_MAIN = resolve(CHAINCODE_DIR, "dist/chaincode/src/index.js");

/** A contract class as fabric-contract-api sees it. */
export type ContractClass = new () => { getName(): string };

export interface ChaincodeModule {
  contracts: ContractClass[];
  serializers?: { transaction: string; serializers: Record<string, unknown> };
  CustodiaContract: ContractClass;
  fabricAccount(mspId: string, clientId: string): string;
}

/** The fabric-shim machinery that turns contract classes into a chaincode (as `fabric-chaincode-node` does). */
export interface ChaincodeFromContract {
  Invoke(stub: unknown): Promise<{ status: number; message?: string; payload?: Uint8Array }>;
  metadata: {
    contracts: Record<string, { name: string; info: Record<string, unknown>; transactions: TransactionMetadata[] }>;
    info: Record<string, unknown>;
    components: { schemas: Record<string, unknown> };
  };
}

export interface TransactionMetadata {
  name: string;
  tag: string[];
  parameters?: { name: string; description: string; schema: Record<string, unknown> }[];
  returns?: Record<string, unknown>;
}

const require = createRequire(import.meta.url);

// fabric-contract-api and fabric-shim log every decorator and every failed transaction at info and
// error level (the tests provoke hundreds of failures on purpose). Their loggers read this variable
// when they are created, so it is set as soon as any test imports this module.
process.env["CORE_CHAINCODE_LOGGING_LEVEL"] ??= "CRITICAL";

let loaded: Promise<ChaincodeModule> | undefined;

/** The compiled chaincode module; fails with instructions when it was not built. */
export function loadChaincode(): Promise<ChaincodeModule> {
  if (!existsSync(CHAINCODE_MAIN)) {
    return Promise.reject(
      new Error(`The chaincode build output is missing (${CHAINCODE_MAIN}). Build it first: npm run build:chaincode (= npx tsc -p chaincode/tsconfig.json).`),
    );
  }
  loaded ??= import(/* @vite-ignore */ pathToFileURL(CHAINCODE_MAIN).href) as Promise<ChaincodeModule>;
  return loaded;
}

/**
 * fabric-shim's ChaincodeFromContract over the compiled module, set up as fabric-chaincode-node's
 * bootstrap (Bootstrap.getInfoFromContract) sets it up: the module's contracts and serializers,
 * with the default JSON serializer added, and the package name and version as title and version.
 */
export async function chaincodeFromContracts(): Promise<ChaincodeFromContract> {
  const mod = await loadChaincode();
  const Ctor = require("fabric-shim/lib/contract-spi/chaincodefromcontract.js") as new (
    contracts: ContractClass[],
    serializers: unknown,
    metadata: unknown,
    title: string,
    version: string,
  ) => ChaincodeFromContract;
  const { JSONSerializer } = require("fabric-contract-api") as { JSONSerializer: unknown };
  const pkg = require(resolve(CHAINCODE_DIR, "package.json")) as { name: string; version: string };
  const serializers = mod.serializers
    ? { transaction: mod.serializers.transaction, serializers: { ...mod.serializers.serializers, jsonSerializer: JSONSerializer } }
    : { transaction: "jsonSerializer", serializers: { jsonSerializer: JSONSerializer } };
  return new Ctor([...mod.contracts], serializers, {}, pkg.name, pkg.version);
}
