import hre from "hardhat";
import { BrowserProvider, Wallet } from "ethers";
import { deployCustodia } from "../../contracts/deploy.js";
import { EvmLedger } from "../../contracts/evm-ledger.js";
import { describeLedgerConformance } from "./conformance.js";

// The EVM adapter on Hardhat's in-process network: a real EVM, real transactions and signatures.
describeLedgerConformance("EVM adapter on Hardhat's in-process network", async () => {
  await hre.run("compile", { quiet: true });
  // cacheTimeout -1: ethers would otherwise reuse a 250 ms-old nonce between back-to-back sends.
  const provider = new BrowserProvider(hre.network.provider as never, undefined, { cacheTimeout: -1 });
  const fund = async (address: string): Promise<void> => {
    await provider.send("hardhat_setBalance", [address, "0x56BC75E2D63100000"]);
  };
  const adminWallet = Wallet.createRandom().connect(provider);
  await fund(adminWallet.address);
  const deployment = await deployCustodia(adminWallet);
  const admin = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock, pollMs: 20 });
  return {
    admin,
    historicalReads: true,
    newAccount: async () => {
      const w = Wallet.createRandom().connect(provider);
      await fund(w.address);
      return admin.connect(w);
    },
  };
});
