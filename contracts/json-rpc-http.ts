import { connect as connectTcp, isIP, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import {
  JsonRpcProvider,
  Transaction,
  TransactionResponse,
  makeError,
  type JsonRpcApiProviderOptions,
  type JsonRpcError,
  type JsonRpcPayload,
  type JsonRpcResult,
  type Networkish,
  type Subscriber,
  type Subscription,
  type TransactionResponseParams,
} from "ethers";

/**
 * JSON-RPC over HTTP/1.1 on plain keep-alive sockets. The gateway asks its node for the head block
 * on every burst of decisions; through ethers' JsonRpcProvider each such call costs about a
 * millisecond of wall time (its queue always drains through a `setTimeout`) and ~400 µs of CPU
 * (a Node `http.ClientRequest` per call). One hand-written request on a socket that is already
 * open costs under 100 µs of either. Only what a JSON-RPC client needs is implemented: one POST
 * at a time per socket (no pipelining), no redirects, no compression.
 */

/**
 * Codes shared with ethers' own, so contracts/ledger-errors.ts maps every transport failure to
 * LEDGER_UNAVAILABLE by its code.
 */
export type JsonRpcTransportErrorCode = "NETWORK_ERROR" | "SERVER_ERROR" | "TIMEOUT" | "CANCELLED";

export class JsonRpcTransportError extends Error {
  readonly code: JsonRpcTransportErrorCode;
  /** The HTTP status, when the node answered with a non-2xx one. */
  readonly status: number | undefined;

  constructor(code: JsonRpcTransportErrorCode, message: string, options?: { cause?: unknown; status?: number }) {
    // the code in the text too: some callers (the did:ethr resolver) only see the message
    super(`${message} (${code})`, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "JsonRpcTransportError";
    this.code = code;
    this.status = options?.status;
  }
}

export interface JsonRpcHttpTransportOptions {
  /** Limit for a whole call, from `call()` to the parsed answer, waiting for a free socket included. */
  timeoutMs?: number;
  /** Sockets open at once; further calls wait in order. */
  maxSockets?: number;
  /** Largest response body accepted (a node answering eth_getLogs can send a lot, but not unbounded). */
  maxResponseBytes?: number;
  /** An unused socket is closed after this long, before a typical server-side keep-alive timeout (5 s) can race us. */
  idleMs?: number;
}

export interface JsonRpcTransportStats {
  open: number;
  idle: number;
  busy: number;
  queued: number;
}

const DEFAULTS: Required<JsonRpcHttpTransportOptions> = { timeoutMs: 5_000, maxSockets: 8, maxResponseBytes: 256 * 1024 * 1024, idleMs: 4_000 };

/** Limit for a response head, a chunk-size line, and a chunked body's trailers. */
const HEAD_LIMIT = 64 * 1024;
const CRLF = Buffer.from("\r\n", "latin1");
const HEAD_END = Buffer.from("\r\n\r\n", "latin1");
const STATUS_LINE = /^HTTP\/1\.([01]) ([1-9]\d\d)(?:[ \t].*)?$/;
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
const CHUNK_SIZE = /^([0-9A-Fa-f]{1,12})[ \t]*(?:;.*)?$/;

/**
 * Broadcasts are never sent twice: a node that took the request and then dropped the connection
 * may have accepted it, and a second copy would be a second transaction (eth_sendTransaction) or,
 * through the ledger adapter's nonce-conflict handling, a re-signed one.
 */
const NOT_RETRIED = /^(eth|personal)_send/;

/** Where and how to connect, and the request head shared by every call (all but the length). */
interface Endpoint {
  secure: boolean;
  host: string;
  port: number;
  /** TLS SNI: a host name, never an IP address (RFC 6066). */
  servername: string | undefined;
  /** For messages: scheme, host and port only; paths and userinfo can carry credentials. */
  origin: string;
  headPrefix: string;
}

function parseEndpoint(url: string): Endpoint {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new TypeError("the JSON-RPC endpoint is not a valid URL", { cause: e });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") {
    throw new TypeError(`JSON-RPC over HTTP needs an http: or https: URL, not ${u.protocol}`);
  }
  const secure = u.protocol === "https:";
  const host = u.hostname.startsWith("[") ? u.hostname.slice(1, -1) : u.hostname;
  let headPrefix = `POST ${u.pathname || "/"}${u.search} HTTP/1.1\r\nhost: ${u.host}\r\ncontent-type: application/json\r\naccept: application/json\r\n`;
  if (u.username !== "" || u.password !== "") {
    const credentials = `${decodeURIComponent(u.username)}:${decodeURIComponent(u.password)}`;
    headPrefix += `authorization: Basic ${Buffer.from(credentials, "utf8").toString("base64")}\r\n`;
  }
  headPrefix += "content-length: ";
  return {
    secure,
    host,
    port: u.port === "" ? (secure ? 443 : 80) : Number(u.port),
    servername: secure && isIP(host) === 0 ? host : undefined,
    origin: `${u.protocol}//${u.host}`,
    headPrefix,
  };
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isSafeInteger(value) || value <= 0) throw new RangeError(`${name} must be a positive integer, got ${value}`);
  return value;
}

/* ------------------------------------------------------------------ response parsing */

/** The response violates HTTP/1.1 or a limit; the socket cannot be trusted for another request. */
class HttpProtocolError extends Error {}

interface HttpResponse {
  status: number;
  body: Buffer;
  /** The server allows another request on this socket. */
  keepAlive: boolean;
  /** Bytes followed the response (nothing was asked for them): the socket is out of step. */
  trailing: boolean;
}

type Phase = "head" | "length" | "chunk-size" | "chunk-data" | "chunk-end" | "trailer" | "close";

/** Copies the last `n` bytes held across `parts`. */
function tailOf(parts: readonly Buffer[], n: number): Buffer {
  const out = Buffer.allocUnsafe(n);
  let need = n;
  for (let i = parts.length - 1; need > 0 && i >= 0; i--) {
    const p = parts[i]!;
    const take = Math.min(need, p.length);
    p.copy(out, need - take, p.length - take);
    need -= take;
  }
  return need === 0 ? out : out.subarray(need);
}

/**
 * Reads one HTTP/1.x response from fragments as they arrive, on raw bytes (so lengths are byte
 * counts and UTF-8 split across fragments decodes right). Skips 1xx interim responses; frames the
 * body by content-length, chunked transfer coding, or the end of the connection.
 */
class ResponseParser {
  /** Bytes received so far: none means the server never started answering. */
  received = 0;
  private phase: Phase = "head";
  /** A head or line not complete yet; each new fragment is searched with only the few bytes before it, so fragmented input costs linear time. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private status = 0;
  private keepAlive = true;
  /** Bytes left of a content-length body or of the current chunk. */
  private remaining = 0;
  private body: Buffer[] = [];
  private bodyBytes = 0;
  private trailerBytes = 0;

  constructor(private readonly maxBodyBytes: number) {}

  /** Takes the next fragment; returns the response once it is complete. Throws HttpProtocolError. */
  push(data: Buffer): HttpResponse | undefined {
    this.received += data.length;
    let buf = data;
    if (this.partialBytes > 0) {
      const delim = this.phase === "head" ? HEAD_END : CRLF;
      const probe = Buffer.concat([tailOf(this.partial, Math.min(delim.length - 1, this.partialBytes)), data]);
      if (probe.indexOf(delim) < 0) {
        this.keepPartial(data);
        return undefined;
      }
      buf = Buffer.concat([...this.partial, data]);
      this.partial = [];
      this.partialBytes = 0;
    }
    let at = 0;
    for (;;) {
      switch (this.phase) {
        case "head": {
          const end = buf.indexOf(HEAD_END, at);
          if (end < 0) return this.keepPartial(buf.subarray(at));
          if (end - at > HEAD_LIMIT) throw new HttpProtocolError(`response head larger than ${HEAD_LIMIT} bytes`);
          this.readHead(buf.toString("latin1", at, end));
          at = end + HEAD_END.length;
          break;
        }
        case "length":
        case "chunk-data": {
          const n = Math.min(this.remaining, buf.length - at);
          if (n > 0) {
            this.body.push(buf.subarray(at, at + n));
            this.bodyBytes += n;
            this.remaining -= n;
            at += n;
          }
          if (this.remaining > 0) return undefined;
          if (this.phase === "length") return this.finish(buf, at);
          this.phase = "chunk-end";
          break;
        }
        case "chunk-size": {
          const eol = buf.indexOf(CRLF, at);
          if (eol < 0) return this.keepPartial(buf.subarray(at));
          const line = buf.toString("latin1", at, eol);
          at = eol + CRLF.length;
          const m = CHUNK_SIZE.exec(line);
          if (!m) throw new HttpProtocolError(`bad chunk-size line ${JSON.stringify(line.slice(0, 40))}`);
          const size = parseInt(m[1]!, 16);
          if (size === 0) {
            this.phase = "trailer";
            break;
          }
          this.checkBodySize(size);
          this.remaining = size;
          this.phase = "chunk-data";
          break;
        }
        case "chunk-end": {
          if (buf.length - at < CRLF.length) return this.keepPartial(buf.subarray(at));
          if (buf[at] !== 0x0d || buf[at + 1] !== 0x0a) throw new HttpProtocolError("chunk data not followed by CRLF");
          at += CRLF.length;
          this.phase = "chunk-size";
          break;
        }
        case "trailer": {
          const eol = buf.indexOf(CRLF, at);
          if (eol < 0) return this.keepPartial(buf.subarray(at));
          this.trailerBytes += eol - at + CRLF.length;
          if (this.trailerBytes > HEAD_LIMIT) throw new HttpProtocolError(`chunked trailers larger than ${HEAD_LIMIT} bytes`);
          const last = eol === at;
          at = eol + CRLF.length;
          if (last) return this.finish(buf, at);
          break;
        }
        case "close": {
          if (at < buf.length) {
            this.checkBodySize(buf.length - at);
            this.body.push(buf.subarray(at));
            this.bodyBytes += buf.length - at;
          }
          return undefined;
        }
      }
    }
  }

  /** The server closed its side: the response, when its body was delimited by exactly that. */
  end(): HttpResponse | undefined {
    if (this.phase !== "close") return undefined;
    return { status: this.status, body: this.joinBody(), keepAlive: false, trailing: false };
  }

  private keepPartial(bytes: Buffer): undefined {
    if (bytes.length === 0) return undefined;
    this.partial.push(bytes);
    this.partialBytes += bytes.length;
    const limit = this.phase === "trailer" ? HEAD_LIMIT - this.trailerBytes : HEAD_LIMIT;
    if (this.partialBytes > limit) throw new HttpProtocolError(`response ${this.phase === "head" ? "head" : "line"} larger than ${HEAD_LIMIT} bytes`);
    return undefined;
  }

  private checkBodySize(more: number): void {
    if (this.bodyBytes + more > this.maxBodyBytes) throw new HttpProtocolError(`response body larger than ${this.maxBodyBytes} bytes`);
  }

  private readHead(head: string): void {
    const lines = head.split("\r\n");
    const statusLine = lines[0]!;
    const m = STATUS_LINE.exec(statusLine);
    if (!m) throw new HttpProtocolError(`not an HTTP/1.x status line: ${JSON.stringify(statusLine.slice(0, 80))}`);
    const http10 = m[1] === "0";
    const status = Number(m[2]);
    let length: number | undefined;
    let codings: string[] | undefined;
    const connection: string[] = [];
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(":");
      const name = colon > 0 ? line.slice(0, colon) : "";
      if (!HEADER_NAME.test(name)) throw new HttpProtocolError(`malformed header line ${JSON.stringify(line.slice(0, 80))}`);
      const value = line.slice(colon + 1).trim();
      switch (name.toLowerCase()) {
        case "content-length": {
          if (!/^\d{1,15}$/.test(value)) throw new HttpProtocolError(`bad content-length ${JSON.stringify(value.slice(0, 40))}`);
          const n = Number(value);
          if (length !== undefined && length !== n) throw new HttpProtocolError("conflicting content-length headers");
          length = n;
          break;
        }
        case "transfer-encoding":
          (codings ??= []).push(...value.toLowerCase().split(",").map((c) => c.trim()).filter((c) => c !== ""));
          break;
        case "connection":
          connection.push(...value.toLowerCase().split(",").map((c) => c.trim()));
          break;
      }
    }
    if (status < 200) {
      // 100 Continue, 103 Early Hints: the real response follows. 101 would switch protocols, which we never ask for.
      if (status === 101) throw new HttpProtocolError("unexpected 101 Switching Protocols");
      return;
    }
    this.status = status;
    this.keepAlive = http10 ? connection.includes("keep-alive") : !connection.includes("close");
    if (status === 204 || status === 304) {
      this.phase = "length";
      this.remaining = 0;
    } else if (codings !== undefined) {
      // RFC 9112 §6.3: transfer-encoding overrides content-length; a sender using both is suspect, so no reuse
      if (length !== undefined) this.keepAlive = false;
      if (codings[codings.length - 1] === "chunked") {
        this.phase = "chunk-size";
      } else {
        this.phase = "close";
        this.keepAlive = false;
      }
    } else if (length !== undefined) {
      this.checkBodySize(length);
      this.phase = "length";
      this.remaining = length;
    } else {
      this.phase = "close";
      this.keepAlive = false;
    }
  }

  private finish(buf: Buffer, at: number): HttpResponse {
    return { status: this.status, body: this.joinBody(), keepAlive: this.keepAlive, trailing: at < buf.length };
  }

  private joinBody(): Buffer {
    return this.body.length === 1 ? this.body[0]! : Buffer.concat(this.body, this.bodyBytes);
  }
}

/* ------------------------------------------------------------------ the pool */

interface Call {
  /** Head and body, written in one go. */
  readonly request: string;
  readonly retryable: boolean;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: Error) => void;
  timer: NodeJS.Timeout | undefined;
  /** The socket the call is on; undefined while it waits for one. */
  conn: Connection | undefined;
  retried: boolean;
}

interface Connection {
  readonly socket: Socket;
  /** Responses completed on this socket; a call on a socket that served one may meet a stale keep-alive. */
  served: number;
  call: Call | undefined;
  parser: ResponseParser | undefined;
  idleTimer: NodeJS.Timeout | undefined;
  /** Destroyed by us or gone: its events are no longer ours to handle. */
  closed: boolean;
}

function isJsonRpcResponse(value: unknown): boolean {
  if (Array.isArray(value)) return value.length > 0 && value.every(isJsonRpcResponse);
  if (value === null || typeof value !== "object") return false;
  const o = value as Record<string, unknown>;
  return o["jsonrpc"] === "2.0" && ("result" in o || "error" in o);
}

function snippet(body: Buffer): string {
  return body.toString("utf8", 0, Math.min(body.length, 800)).slice(0, 200);
}

export class JsonRpcHttpTransport {
  readonly #endpoint: Endpoint;
  readonly #timeoutMs: number;
  readonly #maxSockets: number;
  readonly #maxResponseBytes: number;
  readonly #idleMs: number;
  readonly #open = new Set<Connection>();
  /** Reused last-in first-out: the most recently used socket is the least likely to have been closed by the server. */
  readonly #idle: Connection[] = [];
  readonly #queue: Call[] = [];
  #destroyed = false;

  constructor(url: string, options: JsonRpcHttpTransportOptions = {}) {
    this.#endpoint = parseEndpoint(url);
    this.#timeoutMs = positiveInteger("timeoutMs", options.timeoutMs ?? DEFAULTS.timeoutMs);
    this.#maxSockets = positiveInteger("maxSockets", options.maxSockets ?? DEFAULTS.maxSockets);
    this.#maxResponseBytes = positiveInteger("maxResponseBytes", options.maxResponseBytes ?? DEFAULTS.maxResponseBytes);
    this.#idleMs = positiveInteger("idleMs", options.idleMs ?? DEFAULTS.idleMs);
  }

  /** Sends one JSON-RPC request (or batch) and resolves with the parsed JSON answer. */
  call(payload: object): Promise<unknown> {
    if (this.#destroyed) return Promise.reject(this.#cancelled());
    return new Promise((resolve, reject) => {
      const body = JSON.stringify(payload);
      const method = Array.isArray(payload) ? undefined : (payload as { method?: unknown }).method;
      const call: Call = {
        request: `${this.#endpoint.headPrefix}${Buffer.byteLength(body)}\r\n\r\n${body}`,
        retryable: typeof method === "string" && !NOT_RETRIED.test(method),
        resolve,
        reject,
        timer: undefined,
        conn: undefined,
        retried: false,
      };
      call.timer = setTimeout(() => this.#expire(call), this.#timeoutMs);
      this.#dispatch(call, false);
    });
  }

  stats(): JsonRpcTransportStats {
    const open = this.#open.size;
    const idle = this.#idle.length;
    return { open, idle, busy: open - idle, queued: this.#queue.length };
  }

  /** Closes every socket; calls waiting or under way reject with CANCELLED, and so do later ones. */
  destroy(): void {
    if (this.#destroyed) return;
    this.#destroyed = true;
    for (const call of this.#queue.splice(0)) this.#reject(call, this.#cancelled());
    for (const conn of [...this.#open]) {
      const call = conn.call;
      conn.call = undefined;
      this.#drop(conn);
      if (call) this.#reject(call, this.#cancelled());
    }
  }

  #dispatch(call: Call, fresh: boolean): void {
    const idle = fresh ? undefined : this.#idle.pop();
    if (idle) this.#assign(idle, call);
    else if (this.#open.size < this.#maxSockets) this.#assign(this.#connect(), call);
    else this.#queue.push(call);
  }

  #pump(): void {
    while (this.#queue.length > 0 && (this.#idle.length > 0 || this.#open.size < this.#maxSockets)) this.#dispatch(this.#queue.shift()!, false);
  }

  #assign(conn: Connection, call: Call): void {
    if (conn.idleTimer) {
      clearTimeout(conn.idleTimer);
      conn.idleTimer = undefined;
    }
    conn.call = call;
    conn.parser = new ResponseParser(this.#maxResponseBytes);
    call.conn = conn;
    conn.socket.ref();
    conn.socket.write(call.request);
  }

  #connect(): Connection {
    const { secure, host, port, servername } = this.#endpoint;
    const socket = secure ? connectTls({ host, port, servername, ALPNProtocols: ["http/1.1"] }) : connectTcp({ host, port });
    socket.setNoDelay(true);
    const conn: Connection = { socket, served: 0, call: undefined, parser: undefined, idleTimer: undefined, closed: false };
    this.#open.add(conn);
    socket.on("data", (data: Buffer) => this.#onData(conn, data));
    socket.on("end", () => this.#onEnd(conn));
    socket.on("error", (e: Error) => this.#onGone(conn, e));
    socket.on("close", () => this.#onGone(conn, undefined));
    return conn;
  }

  #onData(conn: Connection, data: Buffer): void {
    if (conn.closed) return;
    const call = conn.call;
    if (!call) {
      // nothing was asked on this socket: whatever the server says now would be taken for the next answer
      this.#drop(conn);
      this.#pump();
      return;
    }
    let response: HttpResponse | undefined;
    try {
      response = conn.parser!.push(data);
    } catch (e) {
      conn.call = undefined;
      this.#drop(conn);
      this.#pump();
      this.#reject(call, this.#badResponse(e));
      return;
    }
    if (response) this.#complete(conn, call, response);
  }

  #onEnd(conn: Connection): void {
    if (conn.closed) return;
    const call = conn.call;
    const response = call ? conn.parser!.end() : undefined;
    if (call && response) this.#complete(conn, call, response);
    else this.#onGone(conn, undefined);
  }

  /** The socket failed or closed (`error` undefined: closed without one). */
  #onGone(conn: Connection, error: Error | undefined): void {
    if (conn.closed) return;
    const call = conn.call;
    conn.call = undefined;
    this.#drop(conn);
    if (call) {
      const unanswered = conn.parser!.received === 0;
      const code = (error as NodeJS.ErrnoException | undefined)?.code;
      const stale = conn.served > 0 && unanswered && (error === undefined || code === "ECONNRESET" || code === "EPIPE");
      if (stale && call.retryable && !call.retried && !this.#destroyed) {
        // the server closed this kept-alive socket as we wrote to it: it never saw the request
        call.retried = true;
        this.#dispatch(call, true);
      } else {
        this.#reject(call, this.#networkError(error, unanswered));
      }
    }
    this.#pump();
  }

  #complete(conn: Connection, call: Call, response: HttpResponse): void {
    conn.call = undefined;
    conn.served++;
    if (response.keepAlive && !response.trailing && !this.#destroyed) this.#release(conn);
    else this.#drop(conn);
    this.#pump();
    clearTimeout(call.timer);
    const { status, body } = response;
    let parsed: unknown;
    let json = true;
    try {
      parsed = JSON.parse(body.toString("utf8"));
    } catch {
      json = false;
    }
    if (status >= 200 && status < 300) {
      if (json) call.resolve(parsed);
      else call.reject(new JsonRpcTransportError("SERVER_ERROR", `the JSON-RPC node at ${this.#endpoint.origin} answered HTTP ${status} with a body that is not JSON: ${JSON.stringify(snippet(body))}`, { status }));
    } else if (json && isJsonRpcResponse(parsed)) {
      // some nodes send JSON-RPC errors with a 4xx/5xx status: the error object is the answer
      call.resolve(parsed);
    } else {
      call.reject(new JsonRpcTransportError("SERVER_ERROR", `the JSON-RPC node at ${this.#endpoint.origin} answered HTTP ${status}: ${JSON.stringify(snippet(body))}`, { status }));
    }
  }

  /** Puts a socket back for the next call, or keeps it idle (not holding the process open). */
  #release(conn: Connection): void {
    const next = this.#queue.shift();
    if (next) {
      this.#assign(conn, next);
      return;
    }
    conn.socket.unref();
    conn.idleTimer = setTimeout(() => {
      this.#drop(conn);
    }, this.#idleMs);
    conn.idleTimer.unref();
    this.#idle.push(conn);
  }

  #drop(conn: Connection): void {
    if (conn.closed) return;
    conn.closed = true;
    if (conn.idleTimer) clearTimeout(conn.idleTimer);
    this.#open.delete(conn);
    const i = this.#idle.indexOf(conn);
    if (i >= 0) this.#idle.splice(i, 1);
    conn.socket.destroy();
  }

  #expire(call: Call): void {
    const conn = call.conn;
    if (conn && conn.call === call) {
      // a late answer on this socket must never be read as the next call's
      conn.call = undefined;
      this.#drop(conn);
      this.#pump();
    } else {
      const i = this.#queue.indexOf(call);
      if (i >= 0) this.#queue.splice(i, 1);
    }
    call.reject(new JsonRpcTransportError("TIMEOUT", `request timeout: no answer from the JSON-RPC node at ${this.#endpoint.origin} within ${this.#timeoutMs} ms`));
  }

  #reject(call: Call, error: Error): void {
    clearTimeout(call.timer);
    call.reject(error);
  }

  #networkError(cause: Error | undefined, unanswered: boolean): JsonRpcTransportError {
    const where = `the JSON-RPC node at ${this.#endpoint.origin}`;
    if (!cause) {
      return new JsonRpcTransportError("NETWORK_ERROR", `${where} closed the connection ${unanswered ? "without answering" : "in the middle of its answer"} (socket hang up)`);
    }
    const code = (cause as NodeJS.ErrnoException).code;
    const detail = code && !cause.message.includes(code) ? `${cause.message} [${code}]` : cause.message;
    return new JsonRpcTransportError("NETWORK_ERROR", `${where} cannot be reached: ${detail}`, { cause });
  }

  #badResponse(e: unknown): JsonRpcTransportError {
    const detail = e instanceof HttpProtocolError ? e.message : String(e);
    return new JsonRpcTransportError("SERVER_ERROR", `the JSON-RPC node at ${this.#endpoint.origin} sent a bad HTTP response: ${detail}`, { cause: e });
  }

  #cancelled(): JsonRpcTransportError {
    return new JsonRpcTransportError("CANCELLED", `the JSON-RPC transport to ${this.#endpoint.origin} was destroyed; request cancelled`);
  }
}

/* ------------------------------------------------------------------ the ethers provider */

/**
 * Watches for a transaction's receipt by asking for it on a timer (4 ms, doubling up to the
 * provider's polling interval), emitting it each time it is found, as ethers' subscriber does.
 *
 * ethers' own PollingTransactionSubscriber asks once when it starts and then once per new block,
 * and its block poller counts new blocks from its own first poll. On a chain that mines on demand
 * (anvil's automine, a quiet permissioned chain), a transaction mined between the receipt lookup
 * and that first block poll is never asked about again: `tx.wait()` hangs until some unrelated
 * transaction makes a block. ethers' ≥1 ms request timer made the window rare; with this transport
 * the benchmark's setup hit it within a few hundred transactions.
 */
class ReceiptPoller implements Subscriber {
  #timer: NodeJS.Timeout | undefined;
  /** Bumped by stop(): a lookup still under way from an earlier start() ends quietly. */
  #generation = 0;
  #running = false;

  constructor(
    private readonly provider: JsonRpcProvider,
    private readonly hash: string,
  ) {}

  start(): void {
    if (this.#running) return;
    this.#running = true;
    void this.#poll(this.#generation, 4);
  }

  stop(): void {
    this.#running = false;
    this.#generation++;
    clearTimeout(this.#timer);
  }

  pause(): void {
    this.stop();
  }

  resume(): void {
    this.start();
  }

  async #poll(generation: number, delay: number): Promise<void> {
    try {
      const receipt = await this.provider.getTransactionReceipt(this.hash);
      if (receipt && generation === this.#generation) void this.provider.emit(this.hash, receipt);
    } catch {
      // a failed lookup is simply repeated; the waiting caller's own timeout bounds the wait
    }
    if (generation !== this.#generation) return;
    this.#timer = setTimeout(() => void this.#poll(generation, Math.min(delay * 2, this.provider.pollingInterval)), delay);
  }
}

/**
 * An ethers JsonRpcProvider whose requests go through JsonRpcHttpTransport.
 *
 * What it replaces, as read in ethers 6.17 (lib.esm/providers/provider-jsonrpc.js):
 * - `JsonRpcApiProvider.send` queues each payload and drains the queue from a `setTimeout`
 *   (`#scheduleDrain`), even with `batchStallTime: 0`: a timer of at least 1 ms per request.
 *   `JsonRpcProvider._send` then builds a FetchRequest, i.e. a Node `http.ClientRequest`.
 * - Every provider operation (`_perform` → `getRpcRequest` → `send`), JsonRpcSigner's calls and
 *   the filter/polling subscribers go through `send`, which is overridden here. The only direct
 *   `_send` caller is `_detectNetwork` before the provider is started and without a static
 *   network; `_send` is overridden too, so no request ever reaches FetchRequest.
 * - `getRpcError` is ethers' own: a revert still becomes CALL_EXCEPTION with its data, so the
 *   ledger adapter decodes custom errors as before.
 * Not kept: the "debug" events ethers emits per request (nothing here listens; emitting costs an
 * async subscriber lookup per call) and JSON-RPC batching (one request per socket write instead).
 */
export class FastJsonRpcProvider extends JsonRpcProvider {
  readonly #transport: JsonRpcHttpTransport;
  #nextId = 1;

  constructor(url: string, network?: Networkish, options?: JsonRpcApiProviderOptions, transport?: JsonRpcHttpTransportOptions) {
    super(url, network, options);
    this.#transport = new JsonRpcHttpTransport(url, transport);
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- ethers' signature
  override async send(method: string, params: JsonRpcPayload["params"]): Promise<any> {
    if (this.destroyed) throw makeError("provider destroyed; cancelled request", "UNSUPPORTED_OPERATION", { operation: method });
    // starts network detection when no static network was given (JsonRpcApiProvider contract)
    this._start();
    const payload: JsonRpcPayload = { method, params, id: this.#nextId++, jsonrpc: "2.0" };
    const answer = await this.#transport.call(payload);
    const resp = (Array.isArray(answer) ? answer.find((r) => (r as { id?: unknown } | null)?.id === payload.id) : answer) as Partial<JsonRpcResult & JsonRpcError> | null | undefined;
    if (resp === null || typeof resp !== "object" || resp.id !== payload.id) {
      const error = makeError("missing response for request", "BAD_DATA", { value: answer, info: { payload } });
      void this.emit("error", error);
      throw error;
    }
    if ("error" in resp) throw this.getRpcError(payload, resp as JsonRpcError);
    return resp.result;
  }

  override async _send(payload: JsonRpcPayload | Array<JsonRpcPayload>): Promise<Array<JsonRpcResult>> {
    const answer = await this.#transport.call(payload);
    return (Array.isArray(answer) ? answer : [answer]) as Array<JsonRpcResult>;
  }

  override _getSubscriber(sub: Subscription): Subscriber {
    return sub.type === "transaction" ? new ReceiptPoller(this, sub.hash) : super._getSubscriber(sub);
  }

  /**
   * `broadcastTransaction` for a transaction whose sender the caller knows because it signed it.
   * ethers' own builds its response from `Transaction.from(signed).from`, which recovers the sender
   * from the signature: milliseconds of secp256k1 in JavaScript on the event loop per transaction
   * (an anchor, a relayed consent). Otherwise as ethers does it: the node's answer and its errors
   * (`_perform`, then `getRpcError`), the network check, the hash check, and a pending response —
   * no block, index or (for a type-2 transaction) gas price yet — that watches for replacement from
   * the block current at broadcast. `from` must be the signer's address: it is not checked here
   * (that would be the recovery this method exists to skip).
   */
  async broadcastSigned(signedTx: string, from: string): Promise<TransactionResponse> {
    const [blockNumber, hash] = await Promise.all([
      this.getBlockNumber(),
      this._perform({ method: "broadcastTransaction", signedTransaction: signedTx }) as Promise<string>,
      this.getNetwork(),
    ]);
    const tx = Transaction.from(signedTx);
    if (tx.hash !== hash) {
      throw makeError("the node answered another transaction hash than the one broadcast", "BAD_DATA", { value: hash, info: { expected: tx.hash } });
    }
    // ethers' response leaves out what a pending transaction does not have yet (undefined, not null)
    const pending = undefined as unknown as number & bigint;
    const params: TransactionResponseParams = {
      blockNumber: null,
      blockHash: null,
      hash,
      index: pending,
      type: tx.type ?? 0,
      to: tx.to,
      from,
      nonce: tx.nonce,
      gasLimit: tx.gasLimit,
      gasPrice: tx.gasPrice ?? pending,
      maxPriorityFeePerGas: tx.maxPriorityFeePerGas,
      maxFeePerGas: tx.maxFeePerGas,
      maxFeePerBlobGas: tx.maxFeePerBlobGas,
      data: tx.data,
      value: tx.value,
      chainId: tx.chainId,
      signature: tx.signature!,
      accessList: tx.accessList,
      blobVersionedHashes: tx.blobVersionedHashes,
      authorizationList: tx.authorizationList,
    };
    return new TransactionResponse(params, this).replaceableTransaction(blockNumber);
  }

  /** Transport counters, for tests and diagnostics. */
  transportStats(): JsonRpcTransportStats {
    return this.#transport.stats();
  }

  override destroy(): void {
    this.#transport.destroy();
    super.destroy();
  }
}
