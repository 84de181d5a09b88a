import { Wallet } from "ethers";
import { startMemoryNetwork } from "../chaincode/support/memory-ledger.js";
import { describeLedgerConformance } from "./conformance.js";

// The chaincode (its tsc output, chaincode/dist) through the Fabric adapter's port implementation,
// on the in-memory stand-in for a peer (test/chaincode/support/memory-peer.ts): fabric-shim's real
// contract dispatch and ClientIdentity, a simulated world state with Fabric's key encoding and
// read/write semantics, one transaction per block. A unit-test stand-in, not a Fabric network; the
// real-network run is fabric.conformance.test.ts.
describeLedgerConformance("Fabric chaincode on the in-memory stand-in peer", async () => {
  // any EIP-712 domain works; cross-ledger.test.ts uses a real EVM deployment's
  const network = await startMemoryNetwork({ chainId: 31337, verifyingContract: Wallet.createRandom().address });
  return {
    admin: network.admin,
    historicalReads: network.admin.historicalReads,
    newAccount: async () => network.newLedger(),
  };
});
