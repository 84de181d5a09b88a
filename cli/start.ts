/**
 * `npm start`: runs a Custodia network on its embedded defaults — a persistent local EVM node,
 * the contracts deployed once, state under ./data — or against an external JSON-RPC endpoint.
 */
import { mkdirSync } from "node:fs";
import { OffThreadWallet } from "../contracts/off-thread-wallet.js";
import { didHash, type Address } from "../core/domain.js";
import { CustodiaError, isCustodiaError } from "../core/errors.js";
import { loadOrCreateKeys, networkConfigFromEnv, startNetwork } from "../contracts/network.js";
import { FabricLedger, fabricConfigFromEnv } from "../chaincode/adapter/fabric-ledger.js";
import { gatewayConfigFromEnv } from "../gateway/config.js";
import { createGatewayRuntime, networkRuntimeOptions, type GatewayRuntime } from "../gateway/runtime.js";

const HELP = `Usage: npm start [-- --help]

Starts the Custodia network and keeps it running until Ctrl-C.

Embedded defaults (no configuration needed):
  ledger   a local EVM node on 127.0.0.1:8545, chain id 31337, state in ./data/ledger
  contracts deployed on first start, recorded in ./data/deployment.json, reused afterwards
  keys     operator keys generated into ./data/keys.json (mode 0600)

Environment:
  CUSTODIA_LEDGER       evm (default) or fabric: with fabric, the gateway joins a Fabric channel
                        given by FABRIC_PEER_ENDPOINT, FABRIC_TLS_CERT (or FABRIC_INSECURE=true),
                        FABRIC_MSP_ID, FABRIC_CERT, FABRIC_KEY, FABRIC_CHANNEL, FABRIC_CHAINCODE
                        (see chaincode/README.md); callers then authenticate with did:key
  CUSTODIA_DATA_DIR     where all state lives            (default ./data)
  CUSTODIA_LEDGER_PORT  port of the embedded node        (default 8545)
  CUSTODIA_RPC_URL      use this JSON-RPC endpoint instead of the embedded node
  CUSTODIA_LEDGER_WS_URL  that node's WebSocket endpoint, for pushed new blocks (embedded: automatic)
  CUSTODIA_CHAIN_ID     chain id of that endpoint        (default: asked from the node)
  CUSTODIA_ADMIN_KEY    admin private key (funded) for an external endpoint
  CUSTODIA_GATEWAY_KEY  gateway private key (funded) for an external endpoint
  CUSTODIA_CONTRACT     an existing Custodia contract to join instead of deploying
  CUSTODIA_GATEWAY_HOST, CUSTODIA_GATEWAY_PORT   where the gateway listens (127.0.0.1:8080)
  CUSTODIA_PUBLIC_URL   URLs clients reach it at besides that (comma-separated, e.g. its https
                        address behind a proxy): it proves its DID for these and its own only
  CUSTODIA_LOOPBACK_IDENTITY=1|0  prove its DID for 127.0.0.1:<port> to local questions
                        (default: on unless CUSTODIA_PUBLIC_URL is set)
  CUSTODIA_TRUSTED_PROXIES  IPs/CIDRs of those proxies (theirs only, never client networks):
                        per-address limits then count the client their X-Forwarded-For names
  CUSTODIA_MASTER_KEY   vault master key, 32 bytes hex (default: generated into ./data/master.key)
  CUSTODIA_STRICT=1     ask the ledger on every decision instead of the event-fed index
  CUSTODIA_MAX_SYNC_AGE_MS  reuse a ledger sync this young for decisions (default 0: every
                        decision sees every block mined before its request; keep it below the
                        chain's block interval to keep revocations enforced within one block)
  CUSTODIA_STALE_AFTER_MS, CUSTODIA_ANCHOR_EVERY_ENTRIES, CUSTODIA_ANCHOR_EVERY_MS,
  CUSTODIA_RATE_LIMIT_MAX   gateway tuning (see README)
`;

/**
 * The gateway on a Hyperledger Fabric channel (CUSTODIA_LEDGER=fabric, FABRIC_* settings): the
 * chaincode must be committed and initialised, and this gateway's Fabric identity registered as a
 * GATEWAY member with its DID (printed here when it is not, with the command that does it).
 */
async function startOnFabric(dataDir: string, log: (line: string) => void): Promise<{ rt: GatewayRuntime; close(): Promise<void>; describe(): string[] }> {
  const fabricCfg = fabricConfigFromEnv();
  const ledger = FabricLedger.connect(fabricCfg);
  try {
    mkdirSync(dataDir, { recursive: true });
    const keys = loadOrCreateKeys(dataDir, process.env["CUSTODIA_GATEWAY_KEY"] ? { gatewayKey: process.env["CUSTODIA_GATEWAY_KEY"] } : {});
    // the gateway key signs on a thread of its own, as on the EVM path (contracts/network.ts)
    const wallet = new OffThreadWallet(keys.gateway);
    const domain = await ledger.eip712Domain();
    const account = await ledger.account();
    const rt = await createGatewayRuntime({
      dataDir,
      ledger,
      wallet,
      chainId: Number(domain.chainId),
      contract: domain.verifyingContract as Address,
      deployBlock: fabricCfg.startBlock ?? 0,
      config: gatewayConfigFromEnv(),
      logger: { level: process.env["CUSTODIA_LOG_LEVEL"] ?? "warn" },
      onError: (e) => log(`background: ${(e as Error).message}`),
    });
    const member = await ledger.getMember(account);
    if (!member || !member.active || member.role !== "GATEWAY" || member.didHash !== didHash(rt.did)) {
      log(`this gateway is not yet a GATEWAY member: it decides nothing and anchors nothing until an admin runs`);
      log(`  custodia admin member add --account ${account} --did ${rt.did} --role GATEWAY --org <your org>`);
    }
    return {
      rt,
      close: () => ledger.close(),
      describe: () => [`ledger:     Fabric ${fabricCfg.peerEndpoint}, channel ${fabricCfg.channel}, chaincode ${fabricCfg.chaincode}`, `account:    ${account} (${fabricCfg.identity.mspId})`],
    };
  } catch (e) {
    await ledger.close();
    throw e;
  }
}

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  const cfg = networkConfigFromEnv();
  const log = (line: string): void => void process.stdout.write(`custodia: ${line}\n`);
  const kind = process.env["CUSTODIA_LEDGER"] ?? "evm";
  if (kind !== "evm" && kind !== "fabric") throw new CustodiaError("CONFIG_INVALID", `CUSTODIA_LEDGER must be "evm" or "fabric", got "${kind}"`);
  let gateway: GatewayRuntime;
  let closeLedger: () => Promise<void>;
  let facts: string[];
  if (kind === "fabric") {
    const f = await startOnFabric(cfg.dataDir, log);
    gateway = f.rt;
    closeLedger = f.close;
    facts = f.describe();
  } else {
    const network = await startNetwork({ ...cfg, log });
    gateway = await createGatewayRuntime({
      dataDir: cfg.dataDir,
      ...networkRuntimeOptions(network),
      config: gatewayConfigFromEnv(),
      logger: { level: process.env["CUSTODIA_LOG_LEVEL"] ?? "warn" },
      onError: (e) => log(`background: ${(e as Error).message}`),
    }).catch(async (e: unknown) => {
      await network.close();
      throw e;
    });
    closeLedger = () => network.close();
    facts = [
      `ledger:     ${network.rpcUrl} (chain ${network.deployment.chainId})`,
      `contract:   ${network.deployment.custodia}`,
      `admin:      ${network.adminWallet.address}`,
      `operator:   ${network.gatewayWallet.address}`,
    ];
  }
  const url = await gateway.listen();
  for (const line of facts) log(line);
  log(`gateway:    ${url}  (DID ${gateway.did})`);
  log(`API docs:   ${url}/docs`);
  log(`health:     ${url}/health`);
  log(`data:       ${cfg.dataDir}`);
  log("running; press Ctrl-C to stop (the ledger state is written to disk on the way out)");

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
    await gateway.close();
    await closeLedger();
    process.exit(0);
  };
  process.on("SIGINT", () => void stop("SIGINT"));
  process.on("SIGTERM", () => void stop("SIGTERM"));
}

main().catch((e: unknown) => {
  if (isCustodiaError(e)) process.stderr.write(`custodia: error ${e.code}: ${e.message}\n`);
  else process.stderr.write(`custodia: error INTERNAL: ${(e as Error)?.stack ?? String(e)}\n`);
  process.exit(1);
});
