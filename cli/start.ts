/**
 * `npm start`: runs a Custodia network on its embedded defaults — a persistent local EVM node,
 * the contracts deployed once, state under ./data — or against an external JSON-RPC endpoint.
 */
import { isCustodiaError } from "../core/errors.js";
import { networkConfigFromEnv, startNetwork } from "../contracts/network.js";
import { gatewayConfigFromEnv } from "../gateway/config.js";
import { createGatewayRuntime, networkRuntimeOptions } from "../gateway/runtime.js";

const HELP = `Usage: npm start [-- --help]

Starts the Custodia network and keeps it running until Ctrl-C.

Embedded defaults (no configuration needed):
  ledger   a local EVM node on 127.0.0.1:8545, chain id 31337, state in ./data/ledger
  contracts deployed on first start, recorded in ./data/deployment.json, reused afterwards
  keys     operator keys generated into ./data/keys.json (mode 0600)

Environment:
  CUSTODIA_DATA_DIR     where all state lives            (default ./data)
  CUSTODIA_LEDGER_PORT  port of the embedded node        (default 8545)
  CUSTODIA_RPC_URL      use this JSON-RPC endpoint instead of the embedded node
  CUSTODIA_CHAIN_ID     chain id of that endpoint        (default: asked from the node)
  CUSTODIA_ADMIN_KEY    admin private key (funded) for an external endpoint
  CUSTODIA_GATEWAY_KEY  gateway private key (funded) for an external endpoint
  CUSTODIA_CONTRACT     an existing Custodia contract to join instead of deploying
  CUSTODIA_GATEWAY_HOST, CUSTODIA_GATEWAY_PORT   where the gateway listens (127.0.0.1:8080)
  CUSTODIA_MASTER_KEY   vault master key, 32 bytes hex (default: generated into ./data/master.key)
  CUSTODIA_STRICT=1     ask the ledger on every decision instead of the event-fed index
  CUSTODIA_MAX_SYNC_AGE_MS  reuse a ledger sync this young for decisions (default 0: every
                        decision sees every block mined before its request; keep it below the
                        chain's block interval to keep revocations enforced within one block)
  CUSTODIA_STALE_AFTER_MS, CUSTODIA_ANCHOR_EVERY_ENTRIES, CUSTODIA_ANCHOR_EVERY_MS,
  CUSTODIA_RATE_LIMIT_MAX   gateway tuning (see README)
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  const cfg = networkConfigFromEnv();
  const log = (line: string): void => void process.stdout.write(`custodia: ${line}\n`);
  const gatewayCfg = gatewayConfigFromEnv();
  const network = await startNetwork({ ...cfg, log });
  const gateway = await createGatewayRuntime({
    dataDir: cfg.dataDir,
    ...networkRuntimeOptions(network),
    config: gatewayCfg,
    logger: { level: process.env["CUSTODIA_LOG_LEVEL"] ?? "warn" },
    onError: (e) => log(`background: ${(e as Error).message}`),
  }).catch(async (e: unknown) => {
    await network.close();
    throw e;
  });
  const url = await gateway.listen();
  log(`ledger:     ${network.rpcUrl} (chain ${network.deployment.chainId})`);
  log(`contract:   ${network.deployment.custodia}`);
  log(`admin:      ${network.adminWallet.address}`);
  log(`operator:   ${network.gatewayWallet.address}`);
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
    await network.close();
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
