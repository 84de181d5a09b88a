/**
 * A gateway's address as its clients name it, in one canonical form, and the gateway's proof that
 * it holds its DID's key for that address.
 *
 * Why: a client learns the gateway's DID (the audience of every token it signs) from the gateway's
 * own /health. A server at another address could claim a real gateway's DID and collect tokens
 * addressed to it, then spend them there. So before a client signs a token it asks the gateway to
 * sign a fresh nonce together with the address the client is talking to
 * (GET /v1/gateway/identity). The real gateway signs only for the addresses it serves (its
 * listening address and the public URLs its operator configured), so:
 * - an impostor without the key cannot sign at all;
 * - an impostor relaying the question to the real gateway gets a refusal for its own address, or,
 *   asking in the real gateway's name, a proof for an address the client did not use.
 * The address is only as authentic as the connection to it: over the network, https.
 */
import { CustodiaError } from "./errors.js";

/** Lifetime of an identity proof, seconds: it answers one fresh question. */
export const IDENTITY_PROOF_TTL_SEC = 60;

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
 * The addresses a gateway listening on `host:port` answers at on its own: that address, and for a
 * loopback or wildcard host both loopback names (a wildcard host also serves other interfaces,
 * whose names only the operator knows: CUSTODIA_PUBLIC_URL).
 */
export function listeningUrls(host: string, port: number): string[] {
  const v4 = `http://127.0.0.1:${port}`;
  const v6 = `http://[::1]:${port}`;
  const name = `http://localhost:${port}`;
  if (host === "127.0.0.1" || host === "localhost" || host === "0.0.0.0") return [v4, name];
  if (host === "::1") return [v6, name];
  if (host === "::") return [v4, v6, name];
  return [canonicalGatewayUrl(`http://${host.includes(":") ? `[${host}]` : host}:${port}`)];
}
