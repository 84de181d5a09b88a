import { ContractFactory, getAddress, type Signer } from "ethers";
// CommonJS package: Node ESM sees only its default export.
import ethrDidRegistry from "ethr-did-registry";
import type { Address } from "../core/domain.js";
import { CustodiaError } from "../core/errors.js";
import { loadArtifact } from "./artifacts.js";

const { EthereumDIDRegistry } = ethrDidRegistry;

/** Where a Custodia network's contracts live; written to ./data/deployment.json by the embedded network. */
export interface Deployment {
  chainId: number;
  custodia: Address;
  /** ERC-1056 EthereumDIDRegistry used for did:ethr key rotation. */
  didRegistry: Address;
  deployBlock: number;
  admin: Address;
  deployedAt: string;
}

async function deploy(signer: Signer, abi: readonly unknown[], bytecode: string, args: unknown[]): Promise<{ address: Address; block: number }> {
  try {
    const factory = new ContractFactory(abi as never, bytecode, signer);
    const contract = await factory.deploy(...args);
    const receipt = await contract.deploymentTransaction()!.wait();
    if (!receipt || receipt.status !== 1) throw new Error("deployment transaction failed");
    return { address: getAddress(await contract.getAddress()) as Address, block: receipt.blockNumber };
  } catch (e) {
    const short = (e as { shortMessage?: string }).shortMessage ?? (e as Error).message.slice(0, 200);
    throw new CustodiaError("LEDGER_UNAVAILABLE", `contract deployment failed: ${short}`, undefined, { cause: e });
  }
}

/**
 * Deploys the ERC-1056 DID registry (unless one is given) and the Custodia contract with `admin`
 * as its first ADMIN member.
 */
export async function deployCustodia(signer: Signer, options: { admin?: string; didRegistry?: string } = {}): Promise<Deployment> {
  const provider = signer.provider;
  if (!provider) throw new CustodiaError("CONFIG_INVALID", "deployer signer has no provider");
  const admin = getAddress(options.admin ?? (await signer.getAddress())) as Address;
  const didRegistry = options.didRegistry
    ? (getAddress(options.didRegistry) as Address)
    : (await deploy(signer, EthereumDIDRegistry.abi, EthereumDIDRegistry.bytecode, [])).address;
  const artifact = loadArtifact("Custodia");
  const { address, block } = await deploy(signer, artifact.abi, artifact.bytecode, [admin, didRegistry]);
  const { chainId } = await provider.getNetwork();
  return { chainId: Number(chainId), custodia: address, didRegistry, deployBlock: block, admin, deployedAt: new Date().toISOString() };
}
