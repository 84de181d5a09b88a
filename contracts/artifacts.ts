import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { CustodiaError } from "../core/errors.js";

/** A compiled contract as Hardhat writes it under artifacts/. */
export interface ContractArtifact {
  contractName: string;
  abi: readonly unknown[];
  bytecode: string;
}

const ARTIFACTS_DIR = fileURLToPath(new URL("../artifacts/contracts/", import.meta.url));
const cache = new Map<string, ContractArtifact>();

/**
 * Loads `artifacts/contracts/<source>/<name>.json`. The artifacts are built from this repository's
 * Solidity by `npm run compile` (also run by `npm test` and `npm start`), never committed.
 */
export function loadArtifact(name: string, source = `${name}.sol`): ContractArtifact {
  const key = `${source}:${name}`;
  const hit = cache.get(key);
  if (hit) return hit;
  let parsed: ContractArtifact;
  try {
    parsed = JSON.parse(readFileSync(`${ARTIFACTS_DIR}${source}/${name}.json`, "utf8")) as ContractArtifact;
  } catch (e) {
    throw new CustodiaError("LEDGER_NOT_DEPLOYED", `contract artifact ${name} not found: run \`npm run compile\` first`, { name }, { cause: e });
  }
  cache.set(key, parsed);
  return parsed;
}
