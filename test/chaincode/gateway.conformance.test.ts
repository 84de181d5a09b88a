/**
 * The production Fabric adapter (FabricLedger: @hyperledger/fabric-gateway over @grpc/grpc-js)
 * through the full conformance suite, against the FAKE gateway endpoint of the test support
 * (support/memory-gateway.ts) in front of the in-memory stand-in peer. Everything on the client
 * side is the code that talks to a real peer; the server side is a stand-in, so this complements,
 * and does not replace, test/ledger/fabric.conformance.test.ts on a real network.
 */
import { Wallet } from "ethers";
import { afterAll } from "vitest";
import { FabricLedger } from "../../chaincode/adapter/fabric-ledger.js";
import { describeLedgerConformance } from "../ledger/conformance.js";
import { MemoryGatewayServer } from "./support/memory-gateway.js";
import { MemoryPeer } from "./support/memory-peer.js";
import { TestCa } from "./support/x509.js";

const open: FabricLedger[] = [];
let server: MemoryGatewayServer | undefined;
afterAll(async () => {
  for (const l of open.reverse()) await l.close();
  await server?.stop();
});

describeLedgerConformance("Fabric adapter over gRPC to a fake gateway on the in-memory stand-in peer", async () => {
  const peer = await MemoryPeer.create({ chaincodeName: "custodia", channelId: "custodia" });
  server = await new MemoryGatewayServer(peer).start();
  const ca = new TestCa("Org1MSP");
  const admin = FabricLedger.connect({
    peerEndpoint: server.address,
    insecure: true,
    channel: "custodia",
    chaincode: "custodia",
    identity: ca.newIdentity("admin"),
    pollMs: 20,
  });
  open.push(admin);
  await admin.initLedger({ chainId: 31337, verifyingContract: Wallet.createRandom().address });
  return {
    admin,
    historicalReads: admin.historicalReads,
    newAccount: async () => {
      const ledger = admin.as(ca.newIdentity());
      open.push(ledger);
      return ledger;
    },
  };
});
