/**
 * The client half of the gateway's identity proof (core/gateway-url.ts): before a tool signs a
 * token whose audience is the DID a gateway's /health names, the gateway must sign a fresh nonce
 * and the address the tool is talking to with that DID's key. Both gateway clients (the wallet's
 * and partner's, and the auditor's) ask and check through here.
 */
import { randomBytes } from "node:crypto";
import { decodeJWT } from "did-jwt";
import { IDENTITY_PROOF_TTL_SEC, IDENTITY_PROOF_TYP, canonicalGatewayUrl } from "../core/gateway-url.js";
import { didAccount, jwtSignedBy } from "./wallet-store.js";

/** One question to a gateway: the path to GET (no token) and what the answer must name. */
export interface IdentityQuestion {
  path: string;
  url: string;
  nonce: string;
}

/** A fresh question for the gateway at `baseUrl` (throws INVALID_ARGUMENT for a URL that is not one). */
export function identityQuestion(baseUrl: string): IdentityQuestion {
  const url = canonicalGatewayUrl(baseUrl);
  const nonce = randomBytes(32).toString("hex");
  return { path: `/v1/gateway/identity?url=${encodeURIComponent(url)}&nonce=${nonce}`, url, nonce };
}

/**
 * Why a gateway's refusal to answer the question (an HTTP status) leaves it unverified, in words;
 * null when the refusal says nothing about who it is (5xx, 429: it could not be asked now).
 */
export function refusalProblem(status: number | undefined, said: string): string | null {
  if (status !== undefined && (status >= 500 || status === 429)) return null;
  if (status === 404) return "it has no identity proof to give (404: not a Custodia gateway, or one older than this tool)";
  return said;
}

/** Clock difference tolerated between the tool and the gateway, seconds (the nonce makes a proof fresh). */
const SKEW_SEC = 300;

/**
 * Checks the gateway's answer to `question` for the DID it claims: null when it proves it, else
 * why not, in words for an error message. Resolves nothing: the ES256K signature must recover to
 * the account the DID names (the gateway signs with the key its did:ethr or did:key is made from).
 */
export function identityProblem(answer: unknown, question: IdentityQuestion, did: string, nowSec = Math.floor(Date.now() / 1000)): string | null {
  const proof = (answer as { proof?: unknown } | null)?.proof;
  if (typeof proof !== "string") return "no proof in its answer";
  let decoded: ReturnType<typeof decodeJWT>;
  try {
    decoded = decodeJWT(proof);
  } catch {
    return "its proof is not a JWT";
  }
  const p = decoded.payload as { iss?: unknown; aud?: unknown; nonce?: unknown; iat?: unknown; exp?: unknown };
  if (decoded.header.alg !== "ES256K") return `its proof is signed with ${String(decoded.header.alg).slice(0, 20)}, not ES256K`;
  const typ = decoded.header.typ as string; // did-jwt types it "JWT"; it is whatever the header says
  if (typ !== IDENTITY_PROOF_TYP) return `its proof is a token of another type (${String(typ).slice(0, 40)})`;
  if (p.iss !== did) return `its proof is issued by ${String(p.iss).slice(0, 200)}`;
  if (p.aud !== question.url) return `its proof is for ${String(p.aud).slice(0, 200)}`;
  if (p.nonce !== question.nonce) return "its proof answers another question (nonce)";
  if (typeof p.iat !== "number" || typeof p.exp !== "number" || p.exp < nowSec - SKEW_SEC || p.iat > nowSec + SKEW_SEC || p.exp - p.iat > IDENTITY_PROOF_TTL_SEC) {
    return "its proof's times are out of bounds";
  }
  let account;
  try {
    account = didAccount(did);
  } catch {
    return "its DID names no key this tool can check";
  }
  return jwtSignedBy(decoded, account) ? null : "its proof is not signed by that DID's key";
}
