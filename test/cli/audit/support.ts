/**
 * Test support for `custodia audit verify`: a JSON-RPC endpoint over Hardhat's in-process chain
 * (the CLI builds its ledger from a URL, as it would against a real node), a captured CliIo, a
 * thin HTTP proxy that plays a hostile gateway in front of the real one, the auditor's wallet
 * file, and varied vault records for segmentation traffic.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { randomUUID } from "node:crypto";
import { join } from "node:path";
import type { AddressInfo } from "node:net";
import { computeAddress } from "ethers";
import type { CliIo } from "../../../cli/io.js";
import { saveWallet } from "../../../cli/wallet-store.js";
import type { Address } from "../../../core/domain.js";
import { hre } from "../../helpers/hardhat.js";

/** A listening server and how to stop it. */
export interface Listening {
  url: string;
  close(): Promise<void>;
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  server.closeAllConnections();
  return new Promise((resolve) => server.close(() => resolve()));
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

/**
 * A JSON-RPC 2.0 endpoint on 127.0.0.1 answering from Hardhat's in-process network (single and
 * batched calls), so `jsonRpcProvider(url)` reads the very chain the test gateway writes to,
 * archive reads at past blocks included.
 */
export async function startRpcBridge(): Promise<Listening> {
  type Call = { id?: unknown; method?: unknown; params?: unknown };
  const answer = async (call: Call): Promise<unknown> => {
    try {
      const result = await hre.network.provider.request({ method: String(call.method), params: (call.params as unknown[]) ?? [] });
      return { jsonrpc: "2.0", id: call.id ?? null, result };
    } catch (e) {
      const err = e as { code?: unknown; message?: unknown; data?: unknown };
      return { jsonrpc: "2.0", id: call.id ?? null, error: { code: typeof err.code === "number" ? err.code : -32603, message: String(err.message ?? e), ...(err.data !== undefined ? { data: err.data } : {}) } };
    }
  };
  const server = createServer((req, res) => {
    void (async () => {
      const body = JSON.parse(await readBody(req)) as Call | Call[];
      const out = Array.isArray(body) ? await Promise.all(body.map(answer)) : await answer(body);
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(out));
    })().catch((e: unknown) => res.writeHead(500).end(String(e)));
  });
  const url = await listen(server);
  return { url, close: () => closeServer(server) };
}

/** What a proxy override sees: the path with query, the upstream status and parsed JSON body. */
export interface Upstream {
  path: string;
  status: number;
  body: unknown;
}

/**
 * A hostile gateway: forwards every request (with its Authorization header) to the real gateway
 * and lets `rewrite` replace the JSON answer of any route. Returning undefined passes it through.
 * `seen` is told every request's path and Authorization header. The real gateway proves its
 * identity for the proxy's address only once the test adds it (`rt.addPublicUrl`): a hostile
 * operator's own proxy; without it, the proxy is an impostor relaying to the real gateway.
 */
export async function startHostileProxy(upstreamUrl: string, rewrite: (u: Upstream) => unknown | Promise<unknown>, seen?: (path: string, authorization: string | undefined) => void): Promise<Listening> {
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    void (async () => {
      const path = req.url ?? "/";
      seen?.(path, req.headers.authorization);
      const headers: Record<string, string> = {};
      if (req.headers.authorization) headers["authorization"] = req.headers.authorization;
      const up = await fetch(`${upstreamUrl}${path}`, { headers });
      const text = await up.text();
      const body = text ? (JSON.parse(text) as unknown) : null;
      const replaced = await rewrite({ path, status: up.status, body });
      res.writeHead(up.status, { "content-type": "application/json" }).end(JSON.stringify(replaced === undefined ? body : replaced));
    })().catch((e: unknown) => res.writeHead(502).end(JSON.stringify({ code: "INTERNAL", message: String(e) })));
  });
  const url = await listen(server);
  return { url, close: () => closeServer(server) };
}

/** A CliIo that records everything written. */
export function captureIo(isTTY = false): CliIo & { out(): string; err(): string } {
  let out = "";
  let err = "";
  return {
    stdout: (t) => void (out += t),
    stderr: (t) => void (err += t),
    env: {},
    isTTY,
    out: () => out,
    err: () => err,
  };
}

/** Writes a wallet file (the CLI's own format, mode 0600) into `dir`; returns its path. */
export function writeWallet(dir: string, privateKey: string, did: string): string {
  const path = join(dir, `wallet-${randomUUID()}.json`);
  const method = did.startsWith("did:key:") ? "key" : "ethr";
  saveWallet(path, { privateKey: privateKey as `0x${string}`, did, method, address: computeAddress(privateKey) as Address }, { chainId: 31337 });
  return path;
}

/** A profile and transactions whose pattern depends on `i`, so a segmentation has something to separate. */
export function variedRecords(subject: string, i: number): unknown[] {
  const frequent = i % 2 === 0;
  const out: unknown[] = [{ kind: "profile", subject, joinedAt: 1_600_000_000 + i * 1000, ageBand: "25-34", region: "EU" }];
  const n = frequent ? 12 : 3;
  for (let t = 0; t < n; t++) {
    out.push({ kind: "transaction", subject, id: `t${t}`, at: 1_700_000_000 + t * (frequent ? 86_400 : 2_000_000) + i, amount: frequent ? 8 + (t % 5) + i : 400 + 10 * t + i, currency: "EUR", category: frequent ? "grocery" : "electronics", channel: frequent ? "online" : "store" });
  }
  return out;
}
