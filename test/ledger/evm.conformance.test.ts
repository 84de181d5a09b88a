import { Wallet } from "ethers";
import { deployCustodia } from "../../contracts/deploy.js";
import { EvmLedger } from "../../contracts/evm-ledger.js";
import { compileOnce, fundedWallet, hardhatProvider } from "../helpers/hardhat.js";
import { describeLedgerConformance } from "./conformance.js";

// The EVM adapter on Hardhat's in-process network: a real EVM, real transactions and signatures,
// the contracts deployed by the same code `npm start` uses (with the real ERC-1056 registry).
describeLedgerConformance("EVM adapter on Hardhat's in-process network", async () => {
  await compileOnce();
  const provider = hardhatProvider();
  const adminWallet: Wallet = await fundedWallet(provider);
  const deployment = await deployCustodia(adminWallet);
  const admin = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock, pollMs: 20 });
  return {
    admin,
    historicalReads: true,
    newAccount: async () => admin.connect(await fundedWallet(provider)),
  };
});
