/**
 * The command-line tools against real parts: the test gateway (Hardhat's in-process chain,
 * LevelDB on disk) listening on 127.0.0.1, a recording HTTP proxy in front of it, and a JSON-RPC
 * endpoint over the same in-process chain (Hardhat has no HTTP endpoint in-process; this one
 * forwards each call to its EIP-1193 provider). Both servers keep every byte they receive, so a
 * test can prove what the commands sent. Commands run in-process through runCli with a
 * capturing io and an empty environment.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Wallet } from "ethers";
import { hre } from "../helpers/hardhat.js";
import { runCli } from "../../cli/main.js";
import type { CliIo, ExitCode } from "../../cli/io.js";
import { CHAIN_ID, startTestGateway, type TestGateway } from "../gateway/harness.js";

export interface CliRun {
  code: ExitCode;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON when it is one JSON object (with --json). */
  json: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

/**
 * Runs `custodia <argv>` in-process with captured output and the given environment; `terminal`
 * stands in for someone typing at a terminal (its askSecret answers the passphrase prompts).
 */
export async function cli(argv: readonly string[], env: NodeJS.ProcessEnv = {}, terminal?: Pick<CliIo, "askSecret">): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t), env, isTTY: false, ...terminal };
  const code = await runCli(argv, io);
  let json: unknown;
  try {
    json = stdout.trim() ? JSON.parse(stdout) : undefined;
  } catch {
    json = undefined;
  }
  return { code, stdout, stderr, json };
}

/** An HTTP server that keeps every byte its clients send. */
export interface Recorder {
  url: string;
  /** Everything received on every connection, in arrival order. */
  bytes(): Buffer;
  requests: { method: string; url: string; body: string }[];
  reset(): void;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function recordingServer(handler: (req: IncomingMessage, body: Buffer, res: ServerResponse) => Promise<void>): Promise<Recorder> & { server: Server } {
  const chunks: Buffer[] = [];
  const requests: Recorder["requests"] = [];
  const server = createServer((req, res) => {
    const body: Buffer[] = [];
    req.on("data", (c: Buffer) => body.push(c));
    req.on("end", () => {
      const b = Buffer.concat(body);
      requests.push({ method: req.method ?? "", url: req.url ?? "", body: b.toString("utf8") });
      handler(req, b, res).catch((e: unknown) => {
        res.statusCode = 599;
        res.end(String(e));
      });
    });
  });
  server.on("connection", (socket) => socket.on("data", (c: Buffer) => chunks.push(Buffer.from(c))));
  const p = listen(server).then((url) => ({
    url,
    bytes: () => Buffer.concat(chunks),
    requests,
    reset: () => {
      chunks.length = 0;
      requests.length = 0;
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  }));
  return Object.assign(p, { server });
}

/** What a proxy hook may do with a request: answer it itself (the gateway never sees it). */
export type Intercept = (req: { method: string; url: string; body: string }) => { status: number; body: unknown } | undefined;
/** ...or rewrite the gateway's answer. */
export type Rewrite = (req: { method: string; url: string }, body: string) => string;

export interface Proxy extends Recorder {
  intercept: Intercept | undefined;
  rewrite: Rewrite | undefined;
}

/** A recording reverse proxy to `target`; hooks can intercept requests or rewrite answers. */
export async function recordingProxy(target: string): Promise<Proxy> {
  const hooks: { intercept: Intercept | undefined; rewrite: Rewrite | undefined } = { intercept: undefined, rewrite: undefined };
  const rec = await recordingServer(async (req, body, res) => {
    const r = { method: req.method ?? "GET", url: req.url ?? "/", body: body.toString("utf8") };
    const caught = hooks.intercept?.(r);
    if (caught) {
      res.writeHead(caught.status, { "content-type": "application/json" });
      res.end(JSON.stringify(caught.body));
      return;
    }
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && k !== "host" && k !== "connection" && k !== "content-length") headers[k] = v;
    const up = await fetch(`${target}${r.url}`, { method: r.method, headers, ...(body.length ? { body } : {}) });
    let text = await up.text();
    if (hooks.rewrite) text = hooks.rewrite(r, text);
    const out: Record<string, string> = {};
    up.headers.forEach((v, k) => {
      if (k !== "content-length" && k !== "transfer-encoding" && k !== "connection" && k !== "content-encoding") out[k] = v;
    });
    res.writeHead(up.status, out);
    res.end(text);
  });
  // the hooks are read on each request, so tests set and clear them on the returned object
  return Object.defineProperties(rec, {
    intercept: { get: () => hooks.intercept, set: (f: Intercept | undefined) => void (hooks.intercept = f), enumerable: true },
    rewrite: { get: () => hooks.rewrite, set: (f: Rewrite | undefined) => void (hooks.rewrite = f), enumerable: true },
  }) as Proxy;
}

/** A JSON-RPC endpoint over Hardhat's in-process provider (the chain the test gateway uses). */
export async function hardhatRpc(): Promise<Recorder> {
  const provider = hre.network.provider;
  const one = async (call: { id?: unknown; method: string; params?: unknown[] }): Promise<unknown> => {
    try {
      const result = await provider.request({ method: call.method, params: call.params ?? [] });
      return { jsonrpc: "2.0", id: call.id ?? null, result };
    } catch (e) {
      const err = e as { code?: number; message?: string; data?: unknown };
      return { jsonrpc: "2.0", id: call.id ?? null, error: { code: typeof err.code === "number" ? err.code : -32603, message: err.message ?? String(e), ...(err.data !== undefined ? { data: err.data } : {}) } };
    }
  };
  return recordingServer(async (_req, body, res) => {
    const parsed = JSON.parse(body.toString("utf8")) as Parameters<typeof one>[0] | Parameters<typeof one>[0][];
    const out = Array.isArray(parsed) ? await Promise.all(parsed.map(one)) : await one(parsed);
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify(out));
  });
}

export interface CliEnv {
  g: TestGateway;
  /** The gateway itself. */
  gatewayUrl: string;
  /** The recording proxy in front of it (what the commands talk to by default). */
  proxy: Proxy;
  /** JSON-RPC over the in-process chain, recording too. */
  rpc: Recorder;
  /** A data dir like `npm start` leaves: deployment.json, keys.json (mode 0600). */
  dataDir: string;
  /** `custodia --data-dir <dataDir> --gateway <proxy> --rpc <rpc> <argv>`. */
  run(argv: readonly string[]): Promise<CliRun>;
  close(): Promise<void>;
}

export async function startCliEnv(options: Parameters<typeof startTestGateway>[0] = {}): Promise<CliEnv> {
  const g = await startTestGateway(options);
  const gatewayUrl = await g.rt.listen();
  const proxy = await recordingProxy(gatewayUrl);
  // the operator's own reverse proxy: the gateway proves its identity for the proxy's address
  g.rt.addPublicUrl(proxy.url);
  const rpc = await hardhatRpc();
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-cli-"));
  writeFileSync(join(dataDir, "deployment.json"), JSON.stringify({ ...g.deployment, chainId: CHAIN_ID }), { mode: 0o644 });
  const keysPath = join(dataDir, "keys.json");
  writeFileSync(keysPath, JSON.stringify({ admin: (g.admin.signer as Wallet).privateKey, gateway: g.operator.wallet!.privateKey }), { mode: 0o600 });
  chmodSync(keysPath, 0o600);
  return {
    g,
    gatewayUrl,
    proxy,
    rpc,
    dataDir,
    run: (argv) => cli(["--data-dir", dataDir, "--gateway", proxy.url, "--rpc", rpc.url, ...argv]),
    close: async () => {
      await proxy.close();
      await rpc.close();
      await g.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
