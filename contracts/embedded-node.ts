import { spawn, type ChildProcess } from "node:child_process";
import { createWriteStream, existsSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { CustodiaError } from "../core/errors.js";

/**
 * The embedded ledger: a real EVM node (anvil, from the @foundry-rs/anvil npm package) whose
 * chain state is persisted to `<dataDir>/state.json` on every interval and on shutdown, and loaded
 * again on the next start. Historical states are preserved so auditors can read the ledger as of
 * any past block after a restart.
 */
export interface EmbeddedNodeOptions {
  dataDir: string;
  host?: string;
  /** 0 picks a free port. */
  port?: number;
  chainId?: number;
  /** Seconds between state dumps while running. */
  stateIntervalSec?: number;
  startTimeoutMs?: number;
}

export interface EmbeddedNode {
  readonly url: string;
  readonly port: number;
  readonly chainId: number;
  readonly pid: number;
  readonly statePath: string;
  /** Graceful stop: the node writes its state before exiting. */
  stop(): Promise<void>;
  /** Hard stop (SIGKILL), for fault tests: only the last interval dump survives. */
  kill(): Promise<void>;
}

export const EMBEDDED_CHAIN_ID = 31337;

/** Path of the anvil binary: ANVIL_BIN, else the platform package installed with @foundry-rs/anvil. */
export function anvilBinary(): string {
  const fromEnv = process.env["ANVIL_BIN"];
  if (fromEnv) return fromEnv;
  const arch = process.arch === "x64" ? "amd64" : process.arch;
  const pkg = `@foundry-rs/anvil-${process.platform}-${arch}`;
  try {
    const require = createRequire(import.meta.url);
    const bin = join(dirname(require.resolve(`${pkg}/package.json`)), "bin", process.platform === "win32" ? "anvil.exe" : "anvil");
    if (existsSync(bin)) return bin;
  } catch {
    // fall through to the clear error below
  }
  throw new CustodiaError("CONFIG_INVALID", `no anvil binary for ${process.platform}/${process.arch}: run \`npm install\`, or set ANVIL_BIN`);
}

function waitExit(child: ChildProcess, timeoutMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const t = setTimeout(() => {
      child.kill("SIGKILL");
      resolve();
    }, timeoutMs);
    child.once("exit", () => {
      clearTimeout(t);
      resolve();
    });
  });
}

async function rpcReady(url: string): Promise<boolean> {
  try {
    const res = await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_chainId", params: [] }) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function startEmbeddedNode(options: EmbeddedNodeOptions): Promise<EmbeddedNode> {
  const host = options.host ?? "127.0.0.1";
  const chainId = options.chainId ?? EMBEDDED_CHAIN_ID;
  mkdirSync(options.dataDir, { recursive: true });
  const statePath = join(options.dataDir, "state.json");
  const args = [
    "--host", host,
    "--port", String(options.port ?? 8545),
    "--chain-id", String(chainId),
    "--state", statePath,
    "--state-interval", String(options.stateIntervalSec ?? 1),
    // Not --preserve-historical-states: a dump of every past block's state grows with the chain,
    // and writing it every second stalled the node for seconds after a few thousand blocks (found
    // by the reliability soak). Past state is the auditor's to rebuild from events (LedgerHistory).
  ];
  const log = createWriteStream(join(options.dataDir, "node.log"), { flags: "a" });
  const child = spawn(anvilBinary(), args, { stdio: ["ignore", "pipe", "pipe"] });
  child.stderr!.pipe(log);

  // anvil prints "Listening on <host>:<port>" once it serves; with --port 0 that is how we learn the port.
  const port = await new Promise<number>((resolve, reject) => {
    let buffered = "";
    const timer = setTimeout(() => reject(new CustodiaError("LEDGER_UNAVAILABLE", `embedded node did not start within ${options.startTimeoutMs ?? 30_000} ms (see ${join(options.dataDir, "node.log")})`)), options.startTimeoutMs ?? 30_000);
    child.once("error", (e) => {
      clearTimeout(timer);
      reject(new CustodiaError("LEDGER_UNAVAILABLE", `embedded node failed to start: ${e.message}`, undefined, { cause: e }));
    });
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new CustodiaError("LEDGER_UNAVAILABLE", `embedded node exited during start (code ${code}, signal ${signal}); see ${join(options.dataDir, "node.log")}`));
    });
    child.stdout!.on("data", (chunk: Buffer) => {
      log.write(chunk);
      buffered += chunk.toString("utf8");
      const m = /Listening on [^\s:]+:(\d+)/.exec(buffered);
      if (m) {
        clearTimeout(timer);
        buffered = "";
        resolve(Number(m[1]));
      } else if (buffered.length > 1 << 16) {
        buffered = buffered.slice(-4096);
      }
    });
  }).catch(async (e: unknown) => {
    child.kill("SIGKILL");
    await waitExit(child, 2_000);
    throw e;
  });
  child.removeAllListeners("exit");
  child.stdout!.removeAllListeners("data");
  child.stdout!.pipe(log);

  const url = `http://${host}:${port}`;
  for (let i = 0; i < 100 && !(await rpcReady(url)); i++) await new Promise((r) => setTimeout(r, 50));

  return {
    url,
    port,
    chainId,
    pid: child.pid!,
    statePath,
    stop: async () => {
      child.kill("SIGTERM");
      await waitExit(child, 15_000);
      log.end();
    },
    kill: async () => {
      child.kill("SIGKILL");
      await waitExit(child, 5_000);
      log.end();
    },
  };
}
