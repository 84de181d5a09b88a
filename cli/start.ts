/**
 * `npm start`: runs a Custodia network on its embedded defaults — a persistent local EVM node,
 * the contracts deployed once, state under ./data — or against an external JSON-RPC endpoint.
 */
import { isCustodiaError } from "../core/errors.js";
import { networkConfigFromEnv, startNetwork } from "../contracts/network.js";

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
`;

async function main(): Promise<void> {
  if (process.argv.includes("--help") || process.argv.includes("-h")) {
    process.stdout.write(HELP);
    return;
  }
  const cfg = networkConfigFromEnv();
  const log = (line: string): void => void process.stdout.write(`custodia: ${line}\n`);
  const network = await startNetwork({ ...cfg, log });
  log(`ledger:     ${network.rpcUrl} (chain ${network.deployment.chainId})`);
  log(`contract:   ${network.deployment.custodia}`);
  log(`admin:      ${network.adminWallet.address}`);
  log(`gateway:    ${network.gatewayWallet.address}`);
  log(`data:       ${cfg.dataDir}`);
  log("running; press Ctrl-C to stop (the ledger state is written to disk on the way out)");

  let stopping = false;
  const stop = async (signal: string): Promise<void> => {
    if (stopping) return;
    stopping = true;
    log(`${signal}: stopping`);
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
