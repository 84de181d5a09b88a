/**
 * A gateway's address as its clients name it, in one canonical form, and the gateway's proof that
 * it holds its DID's key for that address.
 *
 * Why: a client learns the gateway's DID (the audience of every token it signs) from the gateway's
 * own /health. A server at another address could claim a real gateway's DID and collect tokens
 * addressed to it, then spend them there. So before a client signs a token it asks the gateway to
 * sign a fresh nonce together with the address the client is talking to
 * (GET /v1/gateway/identity). The real gateway signs only for the addresses it serves: the public
 * URLs its operator configured, and — while none is configured — its loopback listening addresses,
 * to a question that comes over loopback, is sent to that very address and carries no proxy header
 * (a loopback address names another server on every machine: a relay on a client's machine must
 * not get a proof for it). So:
 * - an impostor without the key cannot sign at all;
 * - an impostor relaying the question to the real gateway gets a refusal for its own address, or,
 *   asking in the real gateway's name, a proof for an address the client did not use.
 * The address is only as authentic as the connection to it: over the network, https. A forwarder
 * on the gateway's own host that adds no header (a TCP forwarder, nginx's default proxy_pass) makes
 * a remote question look local: a gateway reached that way names its public URL, which turns the
 * loopback proofs off.
 */
import { CustodiaError } from "./errors.js";

/** Lifetime of an identity proof, seconds: it answers one fresh question. */
export const IDENTITY_PROOF_TTL_SEC = 60;

/** The JWT `typ` of an identity proof (explicit typing, RFC 8725 §3.11): no other token reads as one. */
export const IDENTITY_PROOF_TYP = "custodia-identity+jwt";

/** The nonce a client sends: 16 to 64 random bytes, lowercase hex. */
export const IDENTITY_NONCE_RE = /^[0-9a-f]{32,128}$/;

/**
 * The canonical form of a gateway address: `http(s)://host[:port][/path]`, the scheme and host
 * lowercased, the default port dropped, no trailing slash, no credentials, query or fragment.
 * Throws INVALID_ARGUMENT (reason "invalid_gateway_url") for anything else.
 */
export function canonicalGatewayUrl(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw invalid(url, "not a URL");
  }
  if (u.protocol !== "http:" && u.protocol !== "https:") throw invalid(url, "the scheme must be http or https");
  if (u.username !== "" || u.password !== "") throw invalid(url, "it must not carry credentials");
  if (u.search !== "" || u.hash !== "") throw invalid(url, "it must not carry a query or fragment");
  const path = u.pathname.replace(/\/+$/, "");
  return `${u.protocol}//${u.host}${path}`;
}

function invalid(url: string, why: string): CustodiaError {
  return new CustodiaError("INVALID_ARGUMENT", `not a gateway URL (${why}): ${url.slice(0, 200)}`, { reason: "invalid_gateway_url" });
}

/**
 * The loopback addresses a gateway bound to `addresses` (each a host and port, as the server
 * reports them) answers at. `localhost` is named only when both 127.0.0.1 and ::1 are bound on
 * the same port: where it is bound on one family, a local process holding the other family's port
 * would answer a client whose `localhost` resolves there.
 */
export function loopbackUrls(addresses: readonly { address: string; port: number }[]): string[] {
  const out = new Set<string>();
  const families = new Map<number, Set<4 | 6>>();
  for (const { address, port } of addresses) {
    // a dual-stack wildcard ("::") answers on both families
    const v4 = address === "127.0.0.1" || address === "0.0.0.0" || address === "::";
    const v6 = address === "::1" || address === "::";
    if (v4) out.add(`http://127.0.0.1:${port}`);
    if (v6) out.add(`http://[::1]:${port}`);
    const f = families.get(port) ?? new Set<4 | 6>();
    if (v4) f.add(4);
    if (v6) f.add(6);
    families.set(port, f);
  }
  for (const [port, f] of families) if (f.size === 2) out.add(`http://localhost:${port}`);
  return [...out];
}

/** Whether a connection's peer address is this machine (IPv4, IPv6 or IPv4-mapped loopback). */
export function isLoopbackPeer(address: string | undefined): boolean {
  if (address === undefined) return false;
  return address === "::1" || /^(::ffff:)?127(\.\d{1,3}){3}$/.test(address);
}
