import { isIP } from "node:net";
import { CustodiaError } from "../core/errors.js";
import { canonicalGatewayUrl } from "../core/gateway-url.js";

/** Gateway settings, normalised once against named defaults. */
export interface GatewayConfig {
  host: string;
  port: number;
  /** Max JSON body for ordinary requests, bytes. */
  bodyLimit: number;
  /** Max body for vault ingest (JSON or CSV), bytes. */
  ingestBodyLimit: number;
  /** Requests per principal (DID, or IP when unauthenticated) per window. */
  rateLimitMax: number;
  rateLimitWindowMs: number;
  /** Failed authentications per client IP per window before 429. */
  authFailureLimit: number;
  /** Token rules. */
  maxTokenLifetimeSec: number;
  clockSkewSec: number;
  /** Ledger view freshness: 503 when the last sync is older than this. */
  staleAfterMs: number;
  /** Reuse a ledger sync younger than this for a decision (0 = sync per decision burst). */
  maxSyncAgeMs: number;
  ledgerPollMs: number;
  /** Ask the ledger itself on every decision instead of the event-fed index. */
  strict: boolean;
  /**
   * Opt-in: follow new blocks pushed by the node (when the runtime has its WebSocket URL) instead
   * of asking the node per decision burst. Decisions then see every block *announced* before the
   * request arrived — usually milliseconds behind the node, but a late announcement lets a
   * decision run on the block before a revocation the wallet already saw mined. Off by default:
   * each decision burst asks the node, so a revocation mined before a request is enforced on it.
   */
  pushHeads: boolean;
  /**
   * Anchor a checkpoint every N entries or T ms, whichever comes first. Each anchor is a ledger
   * transaction, so N bounds the ledger load under traffic: at 1,000 entries a gateway serving
   * 10,000 requests/s would send 10 anchors a second per log, more ledger writes than the
   * consents themselves. 10,000 entries or 10 s keeps it at about one a second at that rate.
   */
  anchorEveryEntries: number;
  anchorEveryMs: number;
  /** Group commit: flush a batch when this many appends wait, or after this delay. */
  logMaxBatch: number;
  logMaxDelayMs: number;
  /** Most subjects in one partner data request. */
  maxSubjectsPerRequest: number;
  /**
   * The URLs clients reach this gateway at, besides its listening address (a reverse proxy's, a
   * TLS terminator's): it proves its identity for these, and for its loopback listening address
   * to questions asked on its own machine, only.
   */
  publicUrls: string[];
  /**
   * Addresses (IPs or CIDRs) of the reverse proxies in front of the gateway: from these, the client
   * address used for the per-address limits is the one X-Forwarded-For names. None by default, and
   * then a proxy's clients share the proxy's address and its limits.
   */
  trustedProxies: string[];
  /**
   * Whether the gateway proves its identity for its loopback listening address, to questions
   * asked on its own machine. Default: on while no public URL is configured. A gateway reached
   * through a proxy or forwarder on its own host cannot tell a remote question passed on by it from
   * a local one (a TCP forwarder adds no header), so naming public URLs turns it off.
   */
  loopbackIdentity: boolean;
}

export const DEFAULT_GATEWAY_CONFIG: GatewayConfig = {
  host: "127.0.0.1",
  port: 8080,
  bodyLimit: 1024 * 1024,
  ingestBodyLimit: 32 * 1024 * 1024,
  rateLimitMax: 6_000,
  rateLimitWindowMs: 60_000,
  authFailureLimit: 300,
  maxTokenLifetimeSec: 300,
  clockSkewSec: 30,
  staleAfterMs: 5_000,
  maxSyncAgeMs: 0,
  ledgerPollMs: 1_000,
  strict: false,
  pushHeads: false,
  anchorEveryEntries: 10_000,
  anchorEveryMs: 10_000,
  logMaxBatch: 1_000,
  logMaxDelayMs: 0,
  maxSubjectsPerRequest: 1_000,
  publicUrls: [],
  trustedProxies: [],
  loopbackIdentity: true,
};

export function gatewayConfig(overrides: Partial<GatewayConfig> = {}): GatewayConfig {
  const cfg = { ...DEFAULT_GATEWAY_CONFIG, ...overrides };
  for (const [k, v] of Object.entries(cfg)) {
    if (typeof DEFAULT_GATEWAY_CONFIG[k as keyof GatewayConfig] === "number" && (!Number.isFinite(v) || (v as number) < 0)) {
      throw new CustodiaError("CONFIG_INVALID", `gateway setting ${k} must be a non-negative number`);
    }
  }
  if (cfg.port > 65535) throw new CustodiaError("CONFIG_INVALID", "port must be at most 65535");
  if (!Array.isArray(cfg.publicUrls)) throw new CustodiaError("CONFIG_INVALID", "publicUrls must be a list of URLs");
  cfg.publicUrls = cfg.publicUrls.map((u) => {
    let url: string;
    try {
      url = canonicalGatewayUrl(String(u));
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", `public URL: ${(e as Error).message}`);
    }
    // proved to anyone, a loopback address would let a relay on a client's machine pass as this gateway
    if (isLoopbackHost(new URL(url).hostname)) throw new CustodiaError("CONFIG_INVALID", `public URL ${url} is a loopback address: those are proved to questions from this machine only`);
    return url;
  });
  if (overrides.loopbackIdentity === undefined) cfg.loopbackIdentity = cfg.publicUrls.length === 0;
  if (!Array.isArray(cfg.trustedProxies) || !cfg.trustedProxies.every(isAddressOrCidr)) {
    throw new CustodiaError("CONFIG_INVALID", `trusted proxies must be IP addresses or CIDR ranges, got ${JSON.stringify(cfg.trustedProxies).slice(0, 200)}`);
  }
  return cfg;
}

/** An IPv4/IPv6 address, or one with a prefix length in range ("10.0.0.0/8", "fd00::/8"). */
function isAddressOrCidr(value: unknown): boolean {
  if (typeof value !== "string") return false;
  const [address, prefix, ...rest] = value.split("/");
  const family = isIP(address ?? "");
  if (family === 0 || rest.length > 0) return false;
  if (prefix === undefined) return true;
  // not /0 (every client could then name its own address), and an IPv4-mapped range at /96 or more
  // (narrower prefixes of mapped addresses match nothing in proxy-addr)
  const bits = Number(prefix);
  const mapped = family === 6 && /^::ffff:/i.test(address!);
  return /^\d{1,3}$/.test(prefix) && bits >= (mapped ? 96 : 1) && bits <= (family === 4 ? 32 : 128);
}

/** 127.0.0.0/8, ::1, localhost (as URL.hostname spells them). */
function isLoopbackHost(hostname: string): boolean {
  return hostname === "localhost" || hostname === "[::1]" || /^127(\.\d{1,3}){3}$/.test(hostname);
}

/** Settings from CUSTODIA_GATEWAY_* environment variables. */
export function gatewayConfigFromEnv(env: NodeJS.ProcessEnv = process.env): Partial<GatewayConfig> {
  const out: Partial<GatewayConfig> = {};
  const num = (name: string, key: keyof GatewayConfig): void => {
    const v = env[name];
    if (v === undefined || v === "") return;
    const n = Number(v);
    if (!Number.isFinite(n)) throw new CustodiaError("CONFIG_INVALID", `${name} must be a number, got "${v}"`);
    (out as Record<string, unknown>)[key] = n;
  };
  if (env["CUSTODIA_GATEWAY_HOST"]) out.host = env["CUSTODIA_GATEWAY_HOST"];
  num("CUSTODIA_GATEWAY_PORT", "port");
  num("CUSTODIA_STALE_AFTER_MS", "staleAfterMs");
  num("CUSTODIA_MAX_SYNC_AGE_MS", "maxSyncAgeMs");
  num("CUSTODIA_ANCHOR_EVERY_ENTRIES", "anchorEveryEntries");
  num("CUSTODIA_ANCHOR_EVERY_MS", "anchorEveryMs");
  num("CUSTODIA_RATE_LIMIT_MAX", "rateLimitMax");
  const urls = env["CUSTODIA_PUBLIC_URL"];
  if (urls !== undefined && urls.trim() !== "") out.publicUrls = urls.split(",").map((u) => u.trim()).filter((u) => u !== "");
  const loopback = env["CUSTODIA_LOOPBACK_IDENTITY"];
  if (loopback !== undefined && loopback !== "") {
    if (!["0", "1", "true", "false"].includes(loopback)) throw new CustodiaError("CONFIG_INVALID", `CUSTODIA_LOOPBACK_IDENTITY must be 1 or 0, got "${loopback.slice(0, 40)}"`);
    out.loopbackIdentity = loopback === "1" || loopback === "true";
  }
  const proxies = env["CUSTODIA_TRUSTED_PROXIES"];
  if (proxies !== undefined && proxies.trim() !== "") out.trustedProxies = proxies.split(",").map((u) => u.trim()).filter((u) => u !== "");
  if (env["CUSTODIA_STRICT"] === "1" || env["CUSTODIA_STRICT"] === "true") out.strict = true;
  if (env["CUSTODIA_PUSH_HEADS"] === "1" || env["CUSTODIA_PUSH_HEADS"] === "true") out.pushHeads = true;
  return out;
}
