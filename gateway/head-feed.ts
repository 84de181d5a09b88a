/**
 * New-block notifications pushed by the ledger node (`eth_subscribe("newHeads")` over WebSocket),
 * so the gateway learns of each block as it is mined instead of asking the node on every request.
 *
 * The feed only announces block numbers; the LedgerView still reads the events itself. It is
 * "live" while subscribed and answering pings; when it is not (connecting, node down, no pong),
 * the view falls back to asking the node per decision burst, which fails closed if the node is down.
 * It reconnects on its own with exponential backoff.
 */
import WebSocket from "ws";

export interface HeadFeed {
  /** Highest block number the node has announced since the feed (re)subscribed; -1 before any. */
  readonly head: number;
  /** Subscribed, and the connection answered its last ping in time. */
  readonly live: boolean;
  /** Called with each announced block number (in the order the node sent them). */
  onHead(listener: (block: number) => void): () => void;
  close(): Promise<void>;
}

export interface WsHeadFeedOptions {
  /** Ping interval, ms; the feed is not live once a pong is `pingMs * 2` late. Default 1,000. */
  pingMs?: number;
  /** First reconnect delay, ms (doubles up to 5 s). Default 200. */
  reconnectMs?: number;
  onError?: (e: unknown) => void;
}

export class WsHeadFeed implements HeadFeed {
  private socket: WebSocket | undefined;
  private subscription: string | undefined;
  /** Subscribed, waiting for the node's current head before going live. */
  private pendingSubscription: string | undefined;
  private lastPong = 0;
  private pingTimer: NodeJS.Timeout | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private backoff: number;
  private closed = false;
  private readonly listeners = new Set<(block: number) => void>();
  private readonly pingMs: number;
  private readonly reconnectMs: number;
  private current = -1;
  /** An outage is reported once, not on every reconnect attempt. */
  private reported = false;

  private constructor(
    private readonly url: string,
    opts: WsHeadFeedOptions,
    private readonly onError: (e: unknown) => void,
  ) {
    this.pingMs = opts.pingMs ?? 1_000;
    this.reconnectMs = opts.reconnectMs ?? 200;
    this.backoff = this.reconnectMs;
  }

  /**
   * Connects and subscribes. Resolves once subscribed, or after `waitMs` either way (a node that
   * is down now is retried in the background; the view works without the feed meanwhile).
   */
  static async start(url: string, opts: WsHeadFeedOptions = {}, waitMs = 2_000): Promise<WsHeadFeed> {
    const feed = new WsHeadFeed(url, opts, opts.onError ?? (() => undefined));
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, waitMs);
      timer.unref();
      feed.connect(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    return feed;
  }

  get head(): number {
    return this.current;
  }

  get live(): boolean {
    return this.subscription !== undefined && this.socket?.readyState === WebSocket.OPEN && Date.now() - this.lastPong <= this.pingMs * 2;
  }

  onHead(listener: (block: number) => void): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.pingTimer);
    clearTimeout(this.reconnectTimer);
    const socket = this.socket;
    this.socket = undefined;
    this.subscription = undefined;
    if (socket && socket.readyState !== WebSocket.CLOSED) {
      await new Promise<void>((resolve) => {
        socket.once("close", () => resolve());
        socket.terminate();
      });
    }
  }

  private connect(onSubscribed?: () => void): void {
    if (this.closed) return;
    const socket = new WebSocket(this.url, { perMessageDeflate: false, handshakeTimeout: 5_000 });
    this.socket = socket;
    socket.on("open", () => {
      socket.send(JSON.stringify({ jsonrpc: "2.0", id: 1, method: "eth_subscribe", params: ["newHeads"] }));
    });
    socket.on("pong", () => {
      this.lastPong = Date.now();
    });
    socket.on("message", (raw: WebSocket.RawData) => {
      let msg: { id?: number; result?: unknown; error?: { message?: string }; method?: string; params?: { subscription?: string; result?: { number?: string } } };
      try {
        msg = JSON.parse(raw.toString()) as typeof msg;
      } catch (e) {
        this.onError(e);
        return;
      }
      if (msg.id === 1) {
        if (typeof msg.result !== "string") {
          this.onError(new Error(`eth_subscribe refused: ${msg.error?.message ?? "no subscription id"}`));
          socket.terminate();
          return;
        }
        // Not live yet: blocks mined while the feed was down were never announced. The node's head
        // is asked first and announced, so no decision skips them.
        this.pendingSubscription = msg.result;
        socket.send(JSON.stringify({ jsonrpc: "2.0", id: 2, method: "eth_blockNumber", params: [] }));
        return;
      }
      if (msg.id === 2) {
        const head = typeof msg.result === "string" ? Number.parseInt(msg.result, 16) : NaN;
        if (!Number.isSafeInteger(head) || head < 0 || this.pendingSubscription === undefined) {
          this.onError(new Error("eth_blockNumber gave no block number"));
          socket.terminate();
          return;
        }
        if (head > this.current) this.current = head;
        this.subscription = this.pendingSubscription;
        this.pendingSubscription = undefined;
        for (const l of this.listeners) {
          try {
            l(head);
          } catch (e) {
            this.onError(e);
          }
        }
        this.lastPong = Date.now();
        this.backoff = this.reconnectMs;
        this.reported = false;
        clearInterval(this.pingTimer);
        this.pingTimer = setInterval(() => {
          if (socket.readyState === WebSocket.OPEN) socket.ping();
        }, this.pingMs);
        this.pingTimer.unref();
        onSubscribed?.();
        return;
      }
      if (msg.method !== "eth_subscription" || msg.params?.subscription === undefined || (msg.params.subscription !== this.subscription && msg.params.subscription !== this.pendingSubscription)) return;
      const block = Number.parseInt(msg.params?.result?.number ?? "", 16);
      if (!Number.isSafeInteger(block) || block < 0) return;
      this.lastPong = Date.now();
      if (block > this.current) this.current = block;
      for (const l of this.listeners) {
        try {
          l(block);
        } catch (e) {
          this.onError(e);
        }
      }
    });
    socket.on("error", (e) => {
      if (this.reported) return;
      this.reported = true;
      this.onError(e);
    });
    socket.on("close", () => {
      if (this.socket === socket) {
        this.socket = undefined;
        this.subscription = undefined;
        this.pendingSubscription = undefined;
        clearInterval(this.pingTimer);
      }
      if (this.closed) return;
      clearTimeout(this.reconnectTimer);
      this.reconnectTimer = setTimeout(() => this.connect(), this.backoff);
      this.reconnectTimer.unref();
      this.backoff = Math.min(this.backoff * 2, 5_000);
    });
  }
}
