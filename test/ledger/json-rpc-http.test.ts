import { execFileSync, spawn } from "node:child_process";
import { once } from "node:events";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { Socket, createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { pathToFileURL } from "node:url";
import { Contract, Interface, SigningKey, Transaction, Wallet, hexlify, keccak256, toUtf8Bytes } from "ethers";
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { Role, didHash, type Address } from "../../core/domain.js";
import { CustodiaError } from "../../core/errors.js";
import { sha256, toHex0x } from "../../core/hash.js";
import { loadArtifact } from "../../contracts/artifacts.js";
import { FastJsonRpcProvider, JsonRpcHttpTransport, JsonRpcTransportError } from "../../contracts/json-rpc-http.js";
import { mapLedgerError } from "../../contracts/ledger-errors.js";
import { startNetwork, type Network } from "../../contracts/network.js";
import { expectCode } from "./conformance.js";

/* ------------------------------------------------------------------ a scripted HTTP server */

interface FakeRequest {
  /** Index of the TCP connection it came on (0 = the first accepted). */
  conn: number;
  line: string;
  headers: Record<string, string>;
  body: string;
  json: { id?: unknown; method?: string; params?: unknown[] } & Record<string, unknown>;
  /** The whole request arrived in one read: the client wrote head and body together. */
  oneRead: boolean;
  socket: Socket;
}

interface FakeNode {
  url: string;
  port: number;
  requests: FakeRequest[];
  sockets: Socket[];
  /** Resolves when the server side of connection `i` has closed; rejects after 3 s. */
  closed(i: number): Promise<void>;
  close(): Promise<void>;
}

type Respond = (req: FakeRequest, node: FakeNode) => void | Promise<void>;

/** A raw TCP server that parses each HTTP request and lets the test write whatever bytes it likes back. */
async function fakeNode(respond: Respond, server: Server = createServer(), scheme = "http"): Promise<FakeNode> {
  const closedAt: Array<Promise<void>> = [];
  const node: FakeNode = {
    url: "",
    port: 0,
    requests: [],
    sockets: [],
    closed: (i) => {
      let timer: NodeJS.Timeout | undefined;
      const limit = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`connection ${i} is still open`)), 3_000)));
      return Promise.race([closedAt[i] ?? Promise.reject(new Error(`no connection ${i}`)), limit]).finally(() => clearTimeout(timer));
    },
    close: async () => {
      for (const s of node.sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const onConnection = (socket: Socket): void => {
    const conn = node.sockets.push(socket) - 1;
    closedAt[conn] = new Promise((resolve) => socket.once("close", () => resolve()));
    socket.setNoDelay(true);
    socket.on("error", () => undefined);
    let buf = Buffer.alloc(0);
    let startedInRead = 0;
    let reads = 0;
    socket.on("data", (data: Buffer) => {
      reads++;
      if (buf.length === 0) startedInRead = reads;
      buf = Buffer.concat([buf, data]);
      for (;;) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const [line, ...rest] = buf.toString("latin1", 0, end).split("\r\n");
        const headers: Record<string, string> = {};
        for (const h of rest) headers[h.slice(0, h.indexOf(":")).toLowerCase()] = h.slice(h.indexOf(":") + 1).trim();
        const length = Number(headers["content-length"] ?? 0);
        if (buf.length < end + 4 + length) return;
        const body = buf.toString("utf8", end + 4, end + 4 + length);
        const req: FakeRequest = { conn, line: line!, headers, body, json: JSON.parse(body), oneRead: startedInRead === reads, socket };
        buf = buf.subarray(end + 4 + length);
        startedInRead = reads;
        node.requests.push(req);
        void respond(req, node);
      }
    });
  };
  server.on(scheme === "https" ? "secureConnection" : "connection", onConnection);
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  node.port = (server.address() as { port: number }).port;
  node.url = `${scheme}://127.0.0.1:${node.port}`;
  return node;
}

const answer = (req: FakeRequest, result: unknown): string => JSON.stringify({ jsonrpc: "2.0", id: req.json.id, result });
const http200 = (body: string, extraHeaders = ""): Buffer =>
  Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n${extraHeaders}\r\n${body}`, "utf8");
const echo: Respond = (req) => {
  req.socket.write(http200(answer(req, req.json.params)));
};
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Writes `bytes` in the given pieces (sizes), pausing so each arrives as its own read. */
async function dribble(socket: Socket, bytes: Buffer, pieces: number[] | "bytes"): Promise<void> {
  const sizes = pieces === "bytes" ? Array.from({ length: bytes.length }, () => 1) : pieces;
  let at = 0;
  for (const n of [...sizes, bytes.length]) {
    if (at >= bytes.length) break;
    socket.write(bytes.subarray(at, Math.min(bytes.length, at + n)));
    at += n;
    await sleep(1);
  }
}

async function rejection(p: Promise<unknown>): Promise<JsonRpcTransportError> {
  try {
    await p;
  } catch (e) {
    return e as JsonRpcTransportError;
  }
  throw new Error("expected a rejection");
}

async function until(check: () => boolean, what: string, timeoutMs = 3_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

let rpcId = 0;
const rpc = (method: string, params: unknown[] = []): { jsonrpc: "2.0"; id: number; method: string; params: unknown[] } => ({ jsonrpc: "2.0", id: ++rpcId, method, params });

const ANY_IFACE = new Interface([]);

/** Runs `source` (an ES module) in a child `node --import tsx` and returns its stdout, exit code and run time. */
async function runChild(source: string, env: NodeJS.ProcessEnv = {}, limitMs = 20_000): Promise<{ out: string; err: string; code: number | null; ms: number }> {
  const started = Date.now();
  const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", source], { cwd: process.cwd(), env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout.on("data", (c: Buffer) => (out += c.toString()));
  child.stderr.on("data", (c: Buffer) => (err += c.toString()));
  const killer = setTimeout(() => child.kill("SIGKILL"), limitMs);
  const [code] = (await once(child, "exit")) as [number | null];
  clearTimeout(killer);
  return { out, err, code, ms: Date.now() - started };
}

const TRANSPORT_MODULE = pathToFileURL(join(process.cwd(), "contracts/json-rpc-http.ts")).href;

/* ------------------------------------------------------------------ transport, scripted server */

describe("JsonRpcHttpTransport against a scripted server", () => {
  const cleanups: Array<() => unknown> = [];
  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });
  async function serve(respond: Respond): Promise<FakeNode> {
    const node = await fakeNode(respond);
    cleanups.push(() => node.close());
    return node;
  }
  function transport(url: string, options?: ConstructorParameters<typeof JsonRpcHttpTransport>[1]): JsonRpcHttpTransport {
    const t = new JsonRpcHttpTransport(url, options);
    cleanups.push(() => t.destroy());
    return t;
  }

  it("sends one POST with the JSON body counted in bytes, head and body in a single write", async () => {
    const node = await serve(echo);
    const t = transport(`http://alice:s3cr%40t@127.0.0.1:${node.port}/rpc/v1?key=abc`);
    const payload = rpc("echo", ["é€😀", 1]);
    const writes = vi.spyOn(Socket.prototype, "write");
    try {
      expect(await t.call(payload)).toEqual({ jsonrpc: "2.0", id: payload.id, result: ["é€😀", 1] });
      await t.call(rpc("echo", [2])); // on the kept-alive socket
      const clientWrites = writes.mock.contexts.filter((s) => (s as Socket).remotePort === node.port && !node.sockets.includes(s as Socket));
      expect(clientWrites).toHaveLength(2);
    } finally {
      writes.mockRestore();
    }
    const req = node.requests[0]!;
    expect(req.line).toBe("POST /rpc/v1?key=abc HTTP/1.1");
    expect(req.headers["host"]).toBe(`127.0.0.1:${node.port}`);
    expect(req.headers["content-type"]).toBe("application/json");
    expect(req.headers["accept"]).toBe("application/json");
    expect(Number(req.headers["content-length"])).toBe(Buffer.byteLength(JSON.stringify(payload)));
    expect(req.headers["authorization"]).toBe(`Basic ${Buffer.from("alice:s3cr@t").toString("base64")}`);
    expect(req.json).toEqual(payload);
    expect(req.oneRead).toBe(true);
  });

  it("rejects URLs and options it cannot serve", () => {
    expect(() => new JsonRpcHttpTransport("ws://127.0.0.1:8545")).toThrow(/http: or https:/);
    expect(() => new JsonRpcHttpTransport("ftp://example.org/")).toThrow(/http: or https:/);
    expect(() => new JsonRpcHttpTransport("not a url")).toThrow(/not a valid URL/);
    expect(() => new JsonRpcHttpTransport("http://127.0.0.1:1", { maxSockets: 0 })).toThrow(/maxSockets/);
  });

  it("reads a content-length body that arrives one byte at a time, then reuses the socket", async () => {
    const node = await serve(async (req) => {
      const head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCoNtEnT-LeNgTh: ";
      const body = answer(req, { text: "ünïcödé €😀", n: req.json.params![0] });
      await dribble(req.socket, Buffer.from(`${head}${Buffer.byteLength(body)}\r\n\r\n${body}`, "utf8"), "bytes");
    });
    const t = transport(node.url);
    const first = rpc("get", [1]);
    expect(await t.call(first)).toEqual({ jsonrpc: "2.0", id: first.id, result: { text: "ünïcödé €😀", n: 1 } });
    expect(((await t.call(rpc("get", [2]))) as { result: { n: number } }).result.n).toBe(2);
    expect(node.sockets).toHaveLength(1);
  });

  it.each([["in one write", [] as number[]], ["in awkward fragments", [3, 14, 1, 1, 20, 2, 1, 9, 1, 7, 1, 1, 30, 1, 1, 5, 1, 1, 1]]])(
    "reads a chunked body with chunk extensions and a trailer %s",
    async (_name, pieces) => {
      const node = await serve(async (req) => {
        const body = Buffer.from(answer(req, { text: "chunked ✓ 😀", n: req.json.params![0] }), "utf8");
        const parts = [body.subarray(0, 7), body.subarray(7, 30), body.subarray(30)];
        const encoded = Buffer.concat([
          Buffer.from("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\ncontent-type: application/json\r\n\r\n"),
          ...parts.flatMap((p, i) => [Buffer.from(`${p.length.toString(16).toUpperCase()};ext${i}=1;q="a b"\r\n`), p, Buffer.from("\r\n")]),
          Buffer.from("0;last\r\nX-Checksum: abc\r\nX-Other: 1\r\n\r\n"),
        ]);
        await dribble(req.socket, encoded, pieces);
      });
      const t = transport(node.url);
      for (const n of [1, 2]) {
        const payload = rpc("get", [n]);
        expect(await t.call(payload)).toEqual({ jsonrpc: "2.0", id: payload.id, result: { text: "chunked ✓ 😀", n } });
      }
      expect(node.sockets).toHaveLength(1);
    },
  );

  it("reads a body delimited by the end of the connection, and never reuses that socket", async () => {
    const node = await serve(async (req) => {
      await dribble(req.socket, Buffer.from(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n${answer(req, req.json.params)}`), [5, 40, 3]);
      req.socket.end();
    });
    const t = transport(node.url);
    for (const n of [1, 2]) expect(((await t.call(rpc("get", [n]))) as { result: unknown }).result).toEqual([n]);
    expect(node.sockets).toHaveLength(2);
  });

  it.each([
    ["connection: close", (body: string) => `HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 2],
    ["HTTP/1.0 without keep-alive", (body: string) => `HTTP/1.0 200 OK\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 2],
    ["HTTP/1.0 with keep-alive", (body: string) => `HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 1],
    ["HTTP/1.1 without a reason phrase", (body: string) => `HTTP/1.1 200\r\ncontent-length: ${body.length}\r\n\r\n${body}`, 1],
  ])("after %s: sockets used for two calls", async (_name, render, expected) => {
    // the server never closes: only the client's own reading of the headers decides reuse
    const node = await serve((req) => void req.socket.write(render(answer(req, req.json.params))));
    const t = transport(node.url);
    for (const n of [1, 2]) expect(((await t.call(rpc("get", [n]))) as { result: unknown }).result).toEqual([n]);
    expect(node.sockets).toHaveLength(expected);
  });

  it("keeps one socket for sequential calls", async () => {
    const node = await serve(echo);
    const t = transport(node.url);
    for (let i = 0; i < 20; i++) expect(((await t.call(rpc("get", [i]))) as { result: unknown }).result).toEqual([i]);
    expect(node.sockets).toHaveLength(1);
    expect(t.stats()).toEqual({ open: 1, idle: 1, busy: 0, queued: 0 });
  });

  it("skips interim 1xx responses", async () => {
    const node = await serve((req) => {
      req.socket.write(Buffer.concat([Buffer.from("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nlink: </a>; rel=preload\r\n\r\n"), http200(answer(req, "final"))]));
    });
    const t = transport(node.url);
    expect(((await t.call(rpc("get"))) as { result: unknown }).result).toBe("final");
    expect(((await t.call(rpc("get"))) as { result: unknown }).result).toBe("final");
    expect(node.sockets).toHaveLength(1);
  });

  it("reuses the most recently freed socket first, and serves waiting calls in order", async () => {
    // answers come back after the delay the call asks for, so the order sockets are freed in is known
    const node = await serve(async (req) => {
      await sleep(Number(req.json.params![1] ?? 0));
      req.socket.write(http200(answer(req, req.json.params![0])));
    });
    const t = transport(node.url, { maxSockets: 3 });
    await Promise.all([t.call(rpc("get", ["a", 150])), t.call(rpc("get", ["b", 20])), t.call(rpc("get", ["c", 80]))]);
    expect(node.sockets).toHaveLength(3);
    const lastFreed = node.requests.find((r) => r.json.params![0] === "a")!.conn;
    for (let i = 0; i < 4; i++) await t.call(rpc("get", [`s${i}`]));
    expect(node.requests.slice(3).map((r) => r.conn)).toEqual([lastFreed, lastFreed, lastFreed, lastFreed]);

    const one = transport(node.url, { maxSockets: 1 });
    const calls = Array.from({ length: 6 }, (_, i) => one.call(rpc("get", [i])));
    expect(one.stats()).toEqual({ open: 1, idle: 0, busy: 1, queued: 5 });
    const results = (await Promise.all(calls)) as Array<{ result: unknown }>;
    expect(results.map((r) => r.result)).toEqual([0, 1, 2, 3, 4, 5]);
    expect(node.requests.slice(7).map((r) => r.json.params![0])).toEqual([0, 1, 2, 3, 4, 5]);
  });

  it.each(["end", "reset"] as const)("retries once on a fresh socket when the server dropped a kept-alive one under the request (%s)", async (how) => {
    const node = await serve((req) => {
      if (req.conn === 0 && node.requests.filter((r) => r.conn === 0).length === 2) {
        if (how === "reset") req.socket.resetAndDestroy();
        else req.socket.destroy();
        return;
      }
      echo(req, node);
    });
    const t = transport(node.url);
    expect(((await t.call(rpc("get", [1]))) as { result: unknown }).result).toEqual([1]);
    const second = rpc("get", [2]);
    expect(await t.call(second)).toEqual({ jsonrpc: "2.0", id: second.id, result: [2] });
    expect(node.sockets).toHaveLength(2);
    expect(node.requests.map((r) => [r.conn, r.json.id])).toEqual([
      [0, second.id - 1],
      [0, second.id],
      [1, second.id],
    ]);
  });

  it.each([
    ["eth_sendRawTransaction", () => rpc("eth_sendRawTransaction", ["0x02f8"])],
    ["eth_sendTransaction", () => rpc("eth_sendTransaction", [{}])],
    ["a batch", () => [rpc("eth_blockNumber"), rpc("eth_chainId")]],
  ])("never sends %s twice", async (_name, make) => {
    const node = await serve((req) => {
      if (node.requests.length === 2) return void req.socket.destroy();
      echo(req, node);
    });
    const t = transport(node.url);
    await t.call(rpc("get", [1]));
    const e = await rejection(t.call(make()));
    expect(e.code).toBe("NETWORK_ERROR");
    expect(e.message).toMatch(/socket hang up/);
    await sleep(50);
    expect(node.requests).toHaveLength(2);
    expect(node.sockets).toHaveLength(1);
  });

  it("does not retry on a socket that never served an answer", async () => {
    const node = await serve((req) => void req.socket.destroy());
    const t = transport(node.url);
    const e = await rejection(t.call(rpc("get")));
    expect(e.code).toBe("NETWORK_ERROR");
    await sleep(50);
    expect(node.requests).toHaveLength(1);
  });

  it("rejects, without retrying, when the server closes in the middle of an answer", async () => {
    const node = await serve((req) => {
      if (node.requests.length === 1) return echo(req, node);
      req.socket.write("HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\":");
      setTimeout(() => req.socket.destroy(), 20);
    });
    const t = transport(node.url);
    await t.call(rpc("get"));
    const e = await rejection(t.call(rpc("get")));
    expect(e.code).toBe("NETWORK_ERROR");
    expect(e.message).toMatch(/in the middle of its answer \(socket hang up\)/);
    expect(mapLedgerError(e, ANY_IFACE).details).toEqual({ ethersCode: "NETWORK_ERROR" });
    await sleep(50);
    expect(node.requests).toHaveLength(2);
  });

  it("notices a server closing an idle socket, and the next call goes over a new one", async () => {
    const node = await serve((req) => {
      echo(req, node);
      setTimeout(() => req.socket.end(), 20);
    });
    const t = transport(node.url);
    await t.call(rpc("get", [1]));
    await until(() => t.stats().open === 0, "the closed socket to be dropped");
    expect(((await t.call(rpc("get", [2]))) as { result: unknown }).result).toEqual([2]);
    expect(node.sockets).toHaveLength(2);
  });

  it("destroys an idle socket on which unasked-for bytes arrive", async () => {
    const node = await serve((req) => {
      echo(req, node);
      if (req.conn === 0) setTimeout(() => req.socket.write(http200(JSON.stringify({ jsonrpc: "2.0", id: req.json.id as number + 1, result: "stray" }))), 30);
    });
    const t = transport(node.url);
    const first = rpc("get", [1]);
    await t.call(first);
    await node.closed(0);
    const second = rpc("get", [2]);
    expect(await t.call(second)).toEqual({ jsonrpc: "2.0", id: second.id, result: [2] });
    expect(node.sockets).toHaveLength(2);
  });

  it("does not reuse a socket when bytes follow the answer", async () => {
    const node = await serve((req) => void req.socket.write(Buffer.concat([http200(answer(req, req.json.params)), Buffer.from("HTTP/1.1 200 OK\r\n")])));
    const t = transport(node.url);
    for (const n of [1, 2]) expect(((await t.call(rpc("get", [n]))) as { result: unknown }).result).toEqual([n]);
    expect(node.sockets).toHaveLength(2);
  });

  it("turns a non-2xx answer that is not JSON-RPC into SERVER_ERROR with the status and at most 200 characters of body", async () => {
    const node = await serve((req) => void req.socket.write(`HTTP/1.1 500 Internal Server Error\r\ncontent-length: 1000\r\n\r\n${"x".repeat(1000)}`));
    const t = transport(node.url);
    const e = await rejection(t.call(rpc("get")));
    expect(e).toBeInstanceOf(JsonRpcTransportError);
    expect(e.code).toBe("SERVER_ERROR");
    expect(e.status).toBe(500);
    expect(e.message).toContain("HTTP 500");
    expect(e.message.match(/x/g)).toHaveLength(200);
    expect(mapLedgerError(e, ANY_IFACE).details).toEqual({ ethersCode: "SERVER_ERROR" });
  });

  it("rejects a 2xx answer whose body is not JSON", async () => {
    const node = await serve((req) => void req.socket.write(http200("<html>gateway</html>")));
    const e = await rejection(transport(node.url).call(rpc("get")));
    expect(e.code).toBe("SERVER_ERROR");
    expect(e.message).toContain("<html>gateway</html>");
  });

  it("takes a JSON-RPC error sent with HTTP 400 as the answer; the provider turns it into ethers' error", async () => {
    const iface = new Interface(loadArtifact("Custodia").abi as never);
    const stranger = Wallet.createRandom().address;
    const revert = iface.encodeErrorResult("MembershipUnknown", [stranger]);
    const node = await serve((req) => {
      const body = JSON.stringify({ jsonrpc: "2.0", id: req.json.id, error: { code: 3, message: "execution reverted", data: revert } });
      req.socket.write(`HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    });
    const t = transport(node.url);
    const payload = rpc("eth_call", [{}, "latest"]);
    expect(await t.call(payload)).toEqual({ jsonrpc: "2.0", id: payload.id, error: { code: 3, message: "execution reverted", data: revert } });

    const provider = new FastJsonRpcProvider(node.url, 31337, { staticNetwork: true, cacheTimeout: -1 });
    cleanups.push(() => provider.destroy());
    const e = await rejection(provider.call({ to: stranger, data: "0x12345678" }));
    expect(e.code).toBe("CALL_EXCEPTION");
    expect((e as unknown as { data: string }).data).toBe(revert);
    const mapped = mapLedgerError(e, iface);
    expect(mapped.code).toBe("MEMBER_UNKNOWN");
    expect(mapped.details).toEqual({ error: "MembershipUnknown", args: [stranger] });
  });

  it("broadcastSigned refuses a node that answers another transaction's hash", async () => {
    const node = await serve((req) => {
      const result = req.json.method === "eth_blockNumber" ? "0x5" : `0x${"ab".repeat(32)}`;
      const body = JSON.stringify({ jsonrpc: "2.0", id: req.json.id, result });
      req.socket.write(`HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: ${body.length}\r\n\r\n${body}`);
    });
    const provider = new FastJsonRpcProvider(node.url, 31337, { staticNetwork: true, cacheTimeout: -1 });
    cleanups.push(() => provider.destroy());
    const wallet = Wallet.createRandom();
    const signed = await wallet.signTransaction({ to: wallet.address, nonce: 0, gasLimit: 21_000, maxFeePerGas: 10n ** 9n, maxPriorityFeePerGas: 1n, chainId: 31337, type: 2 });
    const e = await rejection(provider.broadcastSigned(signed, wallet.address));
    expect(e.code).toBe("BAD_DATA");
    expect(e.message).toMatch(/another transaction hash/);
    expect(node.requests.map((r) => r.json.method).sort()).toEqual(["eth_blockNumber", "eth_sendRawTransaction"]);
  });

  it("tx.wait() sees a receipt that appears without a new block (ethers' block-driven subscriber would wait forever)", async () => {
    // A chain that mines on demand and then goes quiet: the head never moves, and the receipt of
    // the broadcast transaction shows up only from the third lookup on.
    const wallet = Wallet.createRandom();
    const signed = await wallet.signTransaction({ to: wallet.address, value: 0n, nonce: 0, gasLimit: 21_000n, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, chainId: 31337n, type: 2 });
    const hash = Transaction.from(signed).hash!;
    const receipt = {
      transactionHash: hash, transactionIndex: "0x0", blockHash: `0x${"cd".repeat(32)}`, blockNumber: "0x7", from: wallet.address, to: wallet.address,
      cumulativeGasUsed: "0x5208", gasUsed: "0x5208", effectiveGasPrice: "0x1", contractAddress: null, logs: [], logsBloom: `0x${"00".repeat(256)}`, status: "0x1", type: "0x2",
    };
    let lookups = 0;
    const node = await serve((req) => {
      const method = req.json.method as string;
      const result =
        method === "eth_sendRawTransaction" ? hash
        : method === "eth_getTransactionReceipt" ? (++lookups >= 3 ? receipt : null)
        : method === "eth_blockNumber" ? "0x7"
        : method === "eth_getTransactionCount" ? "0x0"
        : null;
      req.socket.write(http200(answer(req, result)));
    });
    const provider = new FastJsonRpcProvider(node.url, 31337, { staticNetwork: true, cacheTimeout: -1, pollingInterval: 250 });
    cleanups.push(() => provider.destroy());
    const started = Date.now();
    const tx = await provider.broadcastTransaction(signed);
    const mined = await tx.wait(1, 5_000);
    expect(mined?.hash).toBe(hash);
    expect(lookups).toBeGreaterThanOrEqual(3);
    expect(Date.now() - started).toBeLessThan(2_500); // far below the 5 s wait it would otherwise hit
    // The lookups stop once nobody waits. A lookup already sent when wait() resolved may still be
    // counted by the server a moment later: let it land, then count. A poller that kept going would
    // add at least two more in 600 ms (its interval is at most 250 ms).
    await sleep(50);
    const after = lookups;
    await sleep(600);
    expect(lookups).toBe(after);
  });

  it("the provider rejects an answer carrying another request's id", async () => {
    const node = await serve((req) => void req.socket.write(http200(JSON.stringify({ jsonrpc: "2.0", id: 999_999, result: "0x1" }))));
    const provider = new FastJsonRpcProvider(node.url, 31337, { staticNetwork: true, cacheTimeout: -1 });
    cleanups.push(() => provider.destroy());
    const e = await rejection(provider.getBlockNumber());
    expect(e.code).toBe("BAD_DATA");
    expect(e.message).toMatch(/missing response for request/);
  });

  it.each([
    ["a garbage status line", "HELLO WORLD\r\n\r\n"],
    ["a malformed header line", "HTTP/1.1 200 OK\r\nno colon here\r\ncontent-length: 2\r\n\r\n{}"],
    ["conflicting content-lengths", "HTTP/1.1 200 OK\r\ncontent-length: 2\r\ncontent-length: 3\r\n\r\n{}"],
    ["a bad chunk size", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"],
    ["chunk data without its CRLF", "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n2\r\n{}XX0\r\n\r\n"],
    ["101 Switching Protocols", "HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n"],
  ])("rejects %s and destroys the socket", async (_name, raw) => {
    const node = await serve((req) => void req.socket.write(raw));
    const t = transport(node.url);
    const e = await rejection(t.call(rpc("get")));
    expect(e.code).toBe("SERVER_ERROR");
    expect(e.message).toMatch(/bad HTTP response/);
    await node.closed(0);
    expect(t.stats().open).toBe(0);
  });

  it("rejects an oversized head", async () => {
    const node = await serve((req) => void req.socket.write(`HTTP/1.1 200 OK\r\nx-big: ${"a".repeat(70 * 1024)}\r\n`));
    const t = transport(node.url);
    const e = await rejection(t.call(rpc("get")));
    expect(e.message).toMatch(/head larger than/);
    await node.closed(0);
  });

  it.each([
    ["a declared content-length", (): string => "HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n"],
    ["a growing chunked body", (): string => `HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n258\r\n${"a".repeat(600)}\r\n258\r\n${"a".repeat(600)}\r\n`],
    ["a body read until close", (): string => `HTTP/1.1 200 OK\r\n\r\n${"a".repeat(2000)}`],
  ])("rejects a body over maxResponseBytes (%s) and destroys the socket", async (_name, raw) => {
    const node = await serve((req) => void req.socket.write(raw()));
    const t = transport(node.url, { maxResponseBytes: 1000, timeoutMs: 10_000 });
    const started = Date.now();
    const e = await rejection(t.call(rpc("get")));
    expect(e.code).toBe("SERVER_ERROR");
    expect(e.message).toMatch(/body larger than 1000 bytes/);
    expect(Date.now() - started).toBeLessThan(5_000); // as soon as the limit is passed, not at the timeout
    await node.closed(0);
  });

  it("times out a node that never answers, and its late answer never reaches the next call", async () => {
    const node = await serve(async (req) => {
      if (req.json.params![0] === "first") return; // held: answered late, below
      // were the timed-out socket reused, this late answer would arrive first on it
      const held = node.requests[0]!;
      if (!held.socket.destroyed) held.socket.write(http200(answer(held, "LATE")));
      await sleep(30);
      req.socket.write(http200(answer(req, "second")));
    });
    const t = transport(node.url, { timeoutMs: 300 });
    const started = Date.now();
    const e = await rejection(t.call(rpc("get", ["first"])));
    const elapsed = Date.now() - started;
    expect(e.code).toBe("TIMEOUT");
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5_000);
    expect(mapLedgerError(e, ANY_IFACE).details).toEqual({ ethersCode: "TIMEOUT" });
    const second = rpc("get", ["second"]);
    expect(await t.call(second)).toEqual({ jsonrpc: "2.0", id: second.id, result: "second" });
    expect(node.sockets).toHaveLength(2);
    await node.closed(0); // the timed-out socket was destroyed
  });

  it("counts the timeout from the call, waiting for a socket included", async () => {
    const node = await serve(async (req) => {
      if (req.json.params![0] !== "slow") return; // the others are never answered
      await sleep(400);
      req.socket.write(http200(answer(req, "slow")));
    });
    // The slow call answers 600 ms inside its own timeout, so a stalled event loop cannot time it out.
    const t = transport(node.url, { timeoutMs: 1_000, maxSockets: 1 });
    const started = Date.now();
    const timed = (p: Promise<unknown>): Promise<[string, number]> => rejection(p).then((e) => [e.code, Date.now() - started]);
    const slow = t.call(rpc("get", ["slow"]));
    const held = [timed(t.call(rpc("get", ["held"]))), timed(t.call(rpc("get", ["held"])))];
    expect(t.stats().queued).toBe(2);
    expect(((await slow) as { result: unknown }).result).toBe("slow");
    for (const [code, ms] of await Promise.all(held)) {
      expect(code).toBe("TIMEOUT");
      expect(ms).toBeGreaterThanOrEqual(990);
      expect(ms).toBeLessThan(1_350); // counted from dispatch (after the slow call) it would be 1,400 and more
    }
    await sleep(50);
    expect(t.stats()).toEqual({ open: 0, idle: 0, busy: 0, queued: 0 });
  });

  it("reports a refused connection as NETWORK_ERROR, which the ledger adapter maps to LEDGER_UNAVAILABLE", async () => {
    const probe = createServer().listen(0, "127.0.0.1");
    await once(probe, "listening");
    const port = (probe.address() as { port: number }).port;
    await new Promise((r) => probe.close(r));
    const e = await rejection(transport(`http://127.0.0.1:${port}`).call(rpc("eth_blockNumber")));
    expect(e.code).toBe("NETWORK_ERROR");
    expect(e.message).toMatch(/ECONNREFUSED/);
    expect((e.cause as NodeJS.ErrnoException).code).toBe("ECONNREFUSED");
    const mapped = mapLedgerError(e, ANY_IFACE);
    expect(mapped.code).toBe("LEDGER_UNAVAILABLE");
    expect(mapped.details).toEqual({ ethersCode: "NETWORK_ERROR" });

    const provider = new FastJsonRpcProvider(`http://127.0.0.1:${port}`, 31337, { staticNetwork: true, cacheTimeout: -1 });
    cleanups.push(() => provider.destroy());
    expect(mapLedgerError(await rejection(provider.getBlockNumber()), ANY_IFACE).code).toBe("LEDGER_UNAVAILABLE");
  });

  it("destroy() rejects the call under way, the waiting ones and later ones with CANCELLED", async () => {
    const node = await serve(() => undefined);
    const t = transport(node.url, { maxSockets: 1 });
    const calls = [t.call(rpc("get")), t.call(rpc("get")), t.call(rpc("get"))].map(rejection);
    await until(() => node.requests.length === 1, "the first request");
    expect(t.stats()).toEqual({ open: 1, idle: 0, busy: 1, queued: 2 });
    t.destroy();
    expect((await Promise.all(calls)).map((e) => e.code)).toEqual(["CANCELLED", "CANCELLED", "CANCELLED"]);
    expect((await rejection(t.call(rpc("get")))).code).toBe("CANCELLED");
    expect(t.stats()).toEqual({ open: 0, idle: 0, busy: 0, queued: 0 });
    await node.closed(0);
    expect(mapLedgerError((await Promise.all(calls))[0], ANY_IFACE).details).toEqual({ ethersCode: "CANCELLED" });
  });

  it("an idle transport does not keep the process alive", async () => {
    // the server keeps every connection open; idleMs is far beyond the child's limit
    const node = await serve(echo);
    const source = `
      import { JsonRpcHttpTransport } from ${JSON.stringify(TRANSPORT_MODULE)};
      const t = new JsonRpcHttpTransport(${JSON.stringify(node.url)}, { idleMs: 60000 });
      const r = await t.call({ jsonrpc: "2.0", id: 7, method: "get", params: ["child"] });
      console.log(JSON.stringify({ r, stats: t.stats() }));
    `;
    const run = await runChild(source, {}, 15_000);
    expect(run.code, run.err).toBe(0);
    expect(JSON.parse(run.out)).toEqual({ r: { jsonrpc: "2.0", id: 7, result: ["child"] }, stats: { open: 1, idle: 1, busy: 0, queued: 0 } });
    expect(node.sockets).toHaveLength(1);
    expect(run.ms).toBeLessThan(15_000);
  });

  describe("over TLS", () => {
    const dir = mkdtempSync(join(tmpdir(), "custodia-tls-"));
    let node: FakeNode;
    const servernames: Array<string | false | null> = [];
    beforeAll(async () => {
      execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1", "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem")], { stdio: "ignore" });
      const server = createTlsServer({ key: readFileSync(join(dir, "key.pem")), cert: readFileSync(join(dir, "cert.pem")) });
      server.on("secureConnection", (s: TLSSocket) => servernames.push(s.servername));
      node = await fakeNode(echo, server as unknown as Server, "https");
    });
    afterAll(async () => {
      await node?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it("speaks TLS to an https: URL, with the host name as SNI", async () => {
      const url = `https://localhost:${node.port}/rpc`;
      const source = `
        import { JsonRpcHttpTransport } from ${JSON.stringify(TRANSPORT_MODULE)};
        const t = new JsonRpcHttpTransport(${JSON.stringify(url)});
        console.log(JSON.stringify(await t.call({ jsonrpc: "2.0", id: 1, method: "get", params: ["tls"] })));
      `;
      // the child trusts the test certificate; this process does not
      const run = await runChild(source, { NODE_EXTRA_CA_CERTS: join(dir, "cert.pem") });
      expect(run.code, run.err).toBe(0);
      expect(JSON.parse(run.out)).toEqual({ jsonrpc: "2.0", id: 1, result: ["tls"] });
      expect(servernames).toContain("localhost");
      expect(node.requests.at(-1)!.line).toBe("POST /rpc HTTP/1.1");
    });

    it("refuses a certificate it cannot verify", async () => {
      const t = transport(`https://localhost:${node.port}`);
      const e = await rejection(t.call(rpc("get")));
      expect(e.code).toBe("NETWORK_ERROR");
      expect(e.message).toMatch(/certificate/);
    });
  });
});

/* ------------------------------------------------------------------ against a real node */

describe("FastJsonRpcProvider on the embedded anvil node", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-fastrpc-"));
  let net: Network;
  const raw = async (method: string, params: unknown[] = []): Promise<any> => // eslint-disable-line @typescript-eslint/no-explicit-any
    ((await (await fetch(net.rpcUrl, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }) })).json()) as { result: unknown }).result;

  beforeAll(async () => {
    net = await startNetwork({ dataDir, ledgerPort: 0 });
  });
  afterAll(async () => {
    await net?.close().catch(() => undefined);
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("is what the ledger adapter's provider is built on", () => {
    expect(net.provider).toBeInstanceOf(FastJsonRpcProvider);
  });

  it("reads the head block and a block as the node reports them", async () => {
    await raw("evm_mine");
    const head = await net.provider.getBlockNumber();
    expect(head).toBe(Number(await raw("eth_blockNumber")));
    expect(head).toBeGreaterThan(0);
    const block = await net.provider.getBlock(head);
    const expected = await raw("eth_getBlockByNumber", [`0x${head.toString(16)}`, false]);
    expect(block?.hash).toBe(expected.hash);
    expect(block?.timestamp).toBe(Number(expected.timestamp));
    expect(await net.gateway.blockNumber()).toBeGreaterThanOrEqual(head);
  });

  it("decodes an eth_call revert to the contract's custom error", async () => {
    const iface = new Interface(loadArtifact("Custodia").abi as never);
    const asGateway = new Contract(net.deployment.custodia, iface, net.gatewayWallet);
    const account = Wallet.createRandom().address;
    const org = toHex0x(sha256(new TextEncoder().encode("org")));
    let thrown: unknown;
    try {
      await asGateway.getFunction("registerMember").staticCall(account, didHash(`did:ethr:${account}`), Role.PARTNER, org);
    } catch (e) {
      thrown = e;
    }
    const mapped = mapLedgerError(thrown, iface);
    expect(mapped).toBeInstanceOf(CustodiaError);
    expect(mapped.code).toBe("UNAUTHORIZED");
    expect(mapped.details).toEqual({ error: "MembershipUnauthorized", args: [net.gatewayWallet.address, String(Role.ADMIN)] });
    // the adapter's own write path (eth_estimateGas) and a real write through the same transport
    await expectCode(net.gateway.registerMember({ account: account as Address, didHash: didHash(`did:ethr:${account}`), role: "PARTNER", orgHash: org }), "UNAUTHORIZED");
    await net.admin.registerMember({ account: account as Address, didHash: didHash(`did:ethr:${account}`), role: "PARTNER", orgHash: org });
    expect((await net.admin.getMember(account as Address))?.role).toBe("PARTNER");
  });

  it("broadcastSigned answers a transaction as the node records it, without recovering its sender", async () => {
    const provider = net.provider as FastJsonRpcProvider;
    const wallet = Wallet.createRandom().connect(provider);
    await provider.send("anvil_setBalance", [wallet.address, "0xde0b6b3a7640000"]);
    const recoveries = vi.spyOn(SigningKey, "recoverPublicKey");
    try {
      const request = { to: net.gatewayWallet.address, value: 12345n, data: "0xc0ffee", nonce: 0, gasLimit: 50_000, maxFeePerGas: 10n ** 10n, maxPriorityFeePerGas: 10n ** 9n, chainId: 31337, type: 2 };
      const sent = await provider.broadcastSigned(await wallet.signTransaction(request), wallet.address);
      expect(recoveries).not.toHaveBeenCalled();
      const receipt = await sent.wait();
      expect(receipt?.status).toBe(1);
      const recorded = await net.provider.getTransaction(sent.hash);
      for (const field of ["hash", "from", "to", "nonce", "gasLimit", "maxFeePerGas", "maxPriorityFeePerGas", "value", "data", "chainId", "type"] as const) {
        expect([field, sent[field]]).toEqual([field, recorded![field]]);
      }
      expect(sent.signature.serialized).toBe(recorded!.signature.serialized);
      recoveries.mockClear();
      // control: ethers' own broadcast recovers the sender (so the spy above could have seen it)
      const control = await net.provider.broadcastTransaction(await wallet.signTransaction({ ...request, nonce: 1 }));
      expect(recoveries).toHaveBeenCalled();
      expect(control.from).toBe(wallet.address);
      // what a pending transaction has not got yet, and the rest of the shape, as ethers gives it
      for (const field of ["blockNumber", "blockHash", "index", "gasPrice", "maxFeePerBlobGas", "blobVersionedHashes", "type", "chainId", "accessList"] as const) {
        expect([field, sent[field]]).toEqual([field, control[field]]);
      }
      await control.wait();
      // a used nonce: the node's error, as ethers' own broadcast reports it
      const stale = await rejection(provider.broadcastSigned(await wallet.signTransaction({ ...request, nonce: 0 }), wallet.address));
      expect(stale.code).toBe("NONCE_EXPIRED");
      expect((await rejection(net.provider.broadcastTransaction(await wallet.signTransaction({ ...request, nonce: 0 })))).code).toBe("NONCE_EXPIRED");
    } finally {
      recoveries.mockRestore();
    }
  });

  it("the ledger adapter's writes go through broadcastSigned", async () => {
    const broadcasts = vi.spyOn(net.provider as FastJsonRpcProvider, "broadcastSigned");
    const recoveries = vi.spyOn(SigningKey, "recoverPublicKey");
    try {
      const account = Wallet.createRandom().address as Address;
      const org = toHex0x(sha256(new TextEncoder().encode("org")));
      const result = await net.admin.registerMember({ account, didHash: didHash(`did:ethr:${account}`), role: "PARTNER", orgHash: org });
      expect(broadcasts).toHaveBeenCalledTimes(1);
      expect(broadcasts.mock.calls[0]![1]).toBe(net.adminWallet.address);
      expect(recoveries).not.toHaveBeenCalled();
      expect((await net.provider.getTransaction(result.txId))?.from).toBe(net.adminWallet.address);
      expect((await net.admin.getMember(account))?.role).toBe("PARTNER");
    } finally {
      broadcasts.mockRestore();
      recoveries.mockRestore();
    }
  });

  it("answers 200 concurrent calls each with its own result, over at most maxSockets sockets", async () => {
    const provider = new FastJsonRpcProvider(net.rpcUrl, 31337, { staticNetwork: true, cacheTimeout: -1 }, { maxSockets: 4 });
    try {
      const inputs = Array.from({ length: 200 }, (_, i) => hexlify(toUtf8Bytes(`input ${i}`)));
      const calls = inputs.map((data) => provider.send("web3_sha3", [data]) as Promise<string>);
      expect(provider.transportStats()).toEqual({ open: 4, idle: 0, busy: 4, queued: 196 });
      let maxOpen = 0;
      const sampler = setInterval(() => (maxOpen = Math.max(maxOpen, provider.transportStats().open)), 1);
      const results = await Promise.all(calls).finally(() => clearInterval(sampler));
      expect(results).toEqual(inputs.map((d) => keccak256(d)));
      expect(maxOpen).toBeLessThanOrEqual(4);
      expect(provider.transportStats()).toEqual({ open: 4, idle: 4, busy: 0, queued: 0 });
    } finally {
      provider.destroy();
    }
  });

  it("a destroyed provider rejects, and the ledger adapter reports the node as unavailable", async () => {
    const provider = new FastJsonRpcProvider(net.rpcUrl, 31337, { staticNetwork: true, cacheTimeout: -1 });
    expect(await provider.getBlockNumber()).toBeGreaterThan(0);
    const pending = provider.getBlockNumber();
    provider.destroy();
    expect(mapLedgerError(await rejection(pending), ANY_IFACE).code).toBe("LEDGER_UNAVAILABLE");
    expect(provider.transportStats().open).toBe(0);
    await expect(provider.getBlockNumber()).rejects.toThrow(/provider destroyed/);
  });
});
