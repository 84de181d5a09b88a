/**
 * The customer's commands: the wallet (`wallet create|show|encrypt`), consent (`consent grant|revoke|
 * list`), the customer's own record (`history`, `decisions`) and erasure (`erase`).
 *
 * Consents are signed here, with EIP-712 over the wallet's key, and only the signature travels:
 * the gateway relays it and the contract verifies it, so no gateway can grant in the customer's
 * name. History and decisions come with RFC 9162 inclusion proofs, which are checked here; when
 * the ledger is reachable, the log root they prove against is checked against the checkpoints the
 * gateway anchored there (directly, or through a consistency proof), so an entry is "verified"
 * only when the gateway can no longer rewrite it.
 *
 * Also exported: the input parsers and the ledger connection the partner and admin commands
 * share, and the flows themselves (grant, revoke, history...) for `npm run demo`.
 */
import { randomUUID } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import type { Command } from "commander";
import { decodeJWT } from "did-jwt";
import { getAddress, type Wallet } from "ethers";
import {
  CATEGORY_NAMES,
  PURPOSES,
  categoriesFromMask,
  categoryMask,
  consentRecord,
  ethrDid,
  purposeById,
  purposeId,
  type Address,
  type Bytes32,
  type CategoryName,
  type ConsentRecord,
  type ConsentState,
  type PurposeKey,
} from "../../core/domain.js";
import { custodiaDomain, recoverTyped, signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type Eip712Domain } from "../../core/eip712.js";
import { isCustodiaError, type ErrorCode } from "../../core/errors.js";
import { hashCanonical, sha256, toHex0x } from "../../core/hash.js";
import { canonicalBytes } from "../../core/jcs.js";
import { hashFromHex, leafHash, proofFromHex, verifyConsistency, verifyInclusion } from "../../core/merkle.js";
import { EvmLedger, jsonRpcProvider } from "../../contracts/evm-ledger.js";
import { askChainId, type NetworkSettings } from "../context.js";
import { logIdFor } from "../../core/logs.js";
import { GatewayClient, type ConsentSubmissionResult, type GatewayHealth, type HistoryEntry, type MyData, type SignedDataRequest } from "../gateway-http.js";
import { CliError, EXIT, printResult, type ExitCode } from "../io.js";
import type { CommandContext } from "../main.js";
import { DID_METHODS, createWallet, didAccount, didEthrChainId, encryptWallet, isEncryptedWallet, jwtSignedBy, loadWallet, refuseExistingWallet, signerOf, type DidMethod, type LoadedWallet } from "../wallet-store.js";

const UNENCRYPTED_HINT = "The key is not encrypted (the file's mode protects it): `custodia wallet encrypt` encrypts it under a passphrase.";

/* ================================================================ inputs */

function usage(code: ErrorCode, message: string, details?: Record<string, unknown>): CliError {
  return new CliError(code, message, EXIT.USAGE, details);
}

/** A DPV purpose key, or USAGE (exit 2) listing the valid ones. */
export function parsePurpose(value: string): PurposeKey {
  const p = PURPOSES.find((x) => x.key === value);
  if (!p) throw usage("INVALID_PURPOSE", `unknown purpose "${value}"; valid purposes: ${PURPOSES.map((x) => x.key).join(", ")}`, { valid: PURPOSES.map((x) => x.key) });
  return p.key;
}

/** A comma-separated list of purposes (agreements cover several). */
export function parsePurposes(value: string): PurposeKey[] {
  const keys = [...new Set(value.split(",").map((s) => s.trim()).filter(Boolean))];
  if (keys.length === 0) throw usage("INVALID_PURPOSE", `at least one purpose is required; valid purposes: ${PURPOSES.map((x) => x.key).join(", ")}`);
  return keys.map(parsePurpose);
}

/** A comma-separated list of data categories, or USAGE listing the valid ones. */
export function parseCategories(value: string): CategoryName[] {
  const names = [...new Set(value.split(",").map((s) => s.trim()).filter(Boolean))];
  const valid = CATEGORY_NAMES.join(", ");
  if (names.length === 0) throw usage("INVALID_CATEGORIES", `at least one data category is required; valid categories: ${valid}`, { valid: CATEGORY_NAMES });
  for (const n of names) {
    if (!(CATEGORY_NAMES as string[]).includes(n)) throw usage("INVALID_CATEGORIES", `unknown data category "${n}"; valid categories: ${valid}`, { valid: CATEGORY_NAMES });
  }
  return names as CategoryName[];
}

/** A ledger party given as an address or a DID (did:ethr, secp256k1 did:key): its account, and the DID if one was given. */
export function parseParty(value: string, what: string): { account: Address; did: string | undefined } {
  if (typeof value === "string" && value.startsWith("did:")) {
    try {
      return { account: didAccount(value), did: value };
    } catch (e) {
      throw usage("INVALID_DID", `${what}: ${(e as Error).message}`);
    }
  }
  if (typeof value !== "string" || !/^0x[0-9a-fA-F]{40}$/.test(value)) throw usage("INVALID_ADDRESS", `${what} must be a 0x address (40 hex digits) or a DID, got "${String(value)}"`);
  try {
    return { account: getAddress(value) as Address, did: undefined };
  } catch {
    throw usage("INVALID_ADDRESS", `${what} has a bad EIP-55 checksum: ${value} (write it in lower case to skip the check)`);
  }
}

/** A date: ISO 8601 (or "now"), as unix seconds. */
export function parseDate(value: string, what: string, nowSec: number): number {
  if (value === "now") return nowSec;
  const ms = Date.parse(value);
  if (!/^\d{4}-\d{2}-\d{2}/.test(value) || Number.isNaN(ms)) throw usage("INVALID_ARGUMENT", `${what} must be an ISO 8601 date like 2026-12-31 or 2026-12-31T23:59:59Z, got "${value}"`);
  return Math.floor(ms / 1000);
}

/** A positive integer option. */
export function parseCount(value: string, what: string, min: number, max: number): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < min || n > max) throw usage("INVALID_ARGUMENT", `${what} must be an integer from ${min} to ${max}, got "${value}"`);
  return n;
}

/** Text given inline, or the bytes of a file when the value names one: what gets hashed for notices and terms. */
export function textOrFile(value: string): { bytes: Uint8Array; source: "file" | "text" } {
  if (value.length < 4096 && existsSync(value) && statSync(value).isFile()) return { bytes: new Uint8Array(readFileSync(value)), source: "file" };
  // a mistyped path must not silently become the hashed "text"
  if (/^[^\s]*(\/|\\)[^\s]*$|^[^\s/\\]+\.(pdf|txt|md|html?|json|docx?|odt|rtf)$/i.test(value)) throw usage("INVALID_ARGUMENT", `no such file: ${value}`);
  return { bytes: new TextEncoder().encode(value), source: "text" };
}

/* ========================================================= the network */

/** The wallet named by the settings (--wallet, CUSTODIA_WALLET or <data-dir>/wallet.json). */
export async function walletFromSettings(ctx: CommandContext): Promise<LoadedWallet> {
  const settings = ctx.settings();
  return loadWallet(settings.walletPath, await passphraseFor(ctx, settings.walletPath));
}

/**
 * The passphrase that opens the wallet (or wallet-format key file) at `path`: the environment's
 * (CUSTODIA_WALLET_PASSPHRASE or _FILE), else, when the file is encrypted and someone is at a
 * terminal, asked for there. Undefined otherwise; loadWallet then says what is missing.
 */
export async function passphraseFor(ctx: CommandContext, path: string): Promise<string | undefined> {
  const given = ctx.settings().walletPassphrase;
  if (given !== undefined || !ctx.io.askSecret) return given;
  let encrypted: boolean;
  try {
    encrypted = isEncryptedWallet(path);
  } catch {
    return undefined; // missing or not a wallet: loadWallet reports it
  }
  return encrypted ? ctx.io.askSecret(`passphrase for ${path}: `) : undefined;
}

/**
 * The passphrase a wallet is to be encrypted under: the environment's, else typed twice at a
 * terminal. CONFIG_INVALID when there is neither; INVALID_ARGUMENT when the two do not match.
 */
async function newPassphrase(ctx: CommandContext): Promise<string> {
  const given = ctx.settings().walletPassphrase;
  if (given !== undefined) return given;
  if (!ctx.io.askSecret) throw new CliError("CONFIG_INVALID", "no passphrase: set CUSTODIA_WALLET_PASSPHRASE, or CUSTODIA_WALLET_PASSPHRASE_FILE to a file holding it (or run this at a terminal to type it)", EXIT.USAGE);
  const first = await ctx.io.askSecret("new wallet passphrase: ");
  if (first.length === 0) throw new CliError("CONFIG_INVALID", "the wallet passphrase is empty", EXIT.USAGE);
  const again = await ctx.io.askSecret("the same passphrase again: ");
  if (again !== first) throw new CliError("INVALID_ARGUMENT", "the two passphrases differ; nothing was written", EXIT.USAGE);
  return first;
}

/** A gateway client for this command's settings, signing with `wallet`. */
export function gatewayFor(ctx: CommandContext, wallet: LoadedWallet | null): GatewayClient {
  return new GatewayClient(ctx.settings().gatewayUrl, { wallet });
}

/**
 * The chain id and contract consents are signed for. Configured values win; the gateway's
 * /health fills what is not configured, and a gateway that names another chain or contract than
 * the configured one is refused (CONFIG_INVALID): its signatures would be for another ledger.
 */
export function domainFor(settings: Pick<NetworkSettings, "chainId" | "contract">, health: GatewayHealth): Eip712Domain {
  const chainId = settings.chainId ?? health.ledger.chainId;
  const contract = settings.contract ?? health.ledger.contract;
  if (chainId !== health.ledger.chainId || contract.toLowerCase() !== String(health.ledger.contract).toLowerCase()) {
    throw new CliError(
      "CONFIG_INVALID",
      `the gateway serves contract ${health.ledger.contract} on chain ${health.ledger.chainId}, but your settings name contract ${contract} on chain ${chainId}; check --gateway, --contract and --chain-id`,
      EXIT.USAGE,
    );
  }
  return custodiaDomain(chainId, contract);
}


/**
 * The Custodia contract over JSON-RPC (settings.rpcUrl), read-only or submitting as `signer`.
 * The chain id and contract come from the settings, else from `fallback` (a gateway's /health),
 * else (chain id only) from the node. Close it with `ledger.close()` and `provider.destroy()`.
 */
export async function connectLedger(settings: Pick<NetworkSettings, "contract" | "chainId" | "rpcUrl" | "deployBlock">, options: { signer?: Wallet; fallback?: { chainId: number; contract: string }; timeoutMs?: number } = {}): Promise<{ ledger: EvmLedger; chainId: number; close(): Promise<void> }> {
  const contract = settings.contract ?? options.fallback?.contract;
  if (!contract) throw new CliError("CONFIG_INVALID", "the Custodia contract is not known: pass --contract, set CUSTODIA_CONTRACT, or --data-dir of a network started with npm start", EXIT.USAGE);
  const chainId = settings.chainId ?? options.fallback?.chainId ?? (await askChainId(settings.rpcUrl, options.timeoutMs));
  const provider = jsonRpcProvider(settings.rpcUrl, chainId, options.timeoutMs ?? 5_000);
  const ledger = new EvmLedger({ provider, address: contract, deployBlock: settings.deployBlock, ...(options.signer ? { signer: options.signer.connect(provider) } : {}) });
  return {
    ledger,
    chainId,
    close: async () => {
      await ledger.close();
      provider.destroy();
    },
  };
}

/* ================================================================ consent */

/** What a customer consents to. */
export interface GrantInput {
  partner: Address;
  /** The partner's DID when the customer gave one; the record names the partner by it. */
  partnerDid?: string | undefined;
  purpose: PurposeKey;
  categories: CategoryName[];
  /** Unix seconds; 0 = until withdrawn. */
  expiresAt: number;
  /** The privacy notice the customer was shown (its SHA-256 goes in the record). */
  notice?: Uint8Array;
  jurisdiction?: string;
}

/** What a VC-JWT consent receipt says, decoded for people, and whether it checks out. */
export interface ReceiptSummary {
  issuer: string;
  subject: string;
  action: string;
  partner: string;
  purpose: string;
  txId: string;
  blockNumber: number;
  nonce: number;
  /** The ES256K signature recovers to the gateway's account (from its DID). */
  signatureValid: boolean;
  /** Issuer, transaction, and (grants) the record hash match what this wallet signed and sent. */
  contentMatches: boolean;
}

/** A consent granted or revoked: the ledger transaction and the checked receipt. */
export interface ConsentOutcome {
  action: "grant" | "revoke";
  subject: Address;
  partner: Address;
  purpose: PurposeKey;
  categories?: CategoryName[];
  expiresAt?: string | null;
  nonce: number;
  txId: string;
  blockNumber: number;
  receiptHash?: Bytes32;
  receipt: ReceiptSummary;
  /** The compact VC-JWT as the gateway issued it. */
  receiptJwt: string;
}

const DEFAULT_NOTICE = "Custodia privacy notice v1: your data is shared only with the partner, for the purpose and data categories you consent to; you may withdraw at any time.";
/** Signed messages stay valid this long, seconds: long enough to be relayed, short enough not to linger. */
const SIGNATURE_TTL_SEC = 900;

function checkWalletChain(wallet: LoadedWallet, chainId: number): void {
  if (wallet.method !== "ethr") return;
  const own = didEthrChainId(wallet.did);
  if (own !== chainId) throw new CliError("CONFIG_INVALID", `this wallet's DID (${wallet.did}) is for chain ${own ?? "mainnet"}, but the gateway's ledger is chain ${chainId}; create a wallet for this network`, EXIT.USAGE);
}

/** The nonce the next signed grant or revocation of (partner, purpose) must carry, as the gateway's view of the ledger says. */
async function currentConsent(client: GatewayClient, partner: Address, purpose: number): Promise<ConsentState | undefined> {
  const { consents } = await client.myConsents();
  return consents.find((c) => c.partner.toLowerCase() === partner.toLowerCase() && c.purpose === purpose);
}

/**
 * Checks a VC-JWT consent receipt without resolving anything: the ES256K signature over
 * header.payload must recover to the account in the issuer's DID, the issuer must be the gateway,
 * and the receipt must name the transaction (and, for a grant, the record) this wallet sent.
 */
export function summariseReceipt(jwt: string, expect: { gatewayDid: string; txId: string; record: ConsentRecord | null }): ReceiptSummary {
  let decoded: ReturnType<typeof decodeJWT>;
  try {
    decoded = decodeJWT(jwt);
  } catch {
    throw new CliError("GATEWAY_MISBEHAVED", "the gateway's consent receipt is not a JWT", EXIT.UNAVAILABLE);
  }
  const payload = decoded.payload as { iss?: string; vc?: { credentialSubject?: Record<string, unknown> } };
  const cs = (payload.vc?.credentialSubject ?? {}) as { id?: string; action?: string; partner?: string; purpose?: string; consentRecord?: unknown; ledger?: { txId?: string; blockNumber?: number; nonce?: number } };
  let signatureValid = false;
  try {
    signatureValid = jwtSignedBy(decoded, didAccount(String(payload.iss)));
  } catch {
    signatureValid = false; // an issuer that names no account
  }
  const recordOk = expect.record === null || (cs.consentRecord !== undefined && toHex0x(hashCanonical(cs.consentRecord)) === toHex0x(hashCanonical(expect.record)));
  return {
    issuer: String(payload.iss ?? ""),
    subject: String(cs.id ?? ""),
    action: String(cs.action ?? ""),
    partner: String(cs.partner ?? ""),
    purpose: String(cs.purpose ?? ""),
    txId: String(cs.ledger?.txId ?? ""),
    blockNumber: Number(cs.ledger?.blockNumber ?? 0),
    nonce: Number(cs.ledger?.nonce ?? -1),
    signatureValid,
    contentMatches: payload.iss === expect.gatewayDid && cs.ledger?.txId === expect.txId && recordOk,
  };
}

/**
 * Grants a consent: builds the ISO/IEC TS 27560 record and the EIP-712 ConsentGrant whose
 * receiptHash is the record's JCS hash, signs it locally, has the gateway relay it, and checks the
 * receipt. The nonce is the consent key's current one; the signature expires in 15 minutes.
 */
export async function grantConsent(client: GatewayClient, wallet: LoadedWallet, input: GrantInput, settings: Pick<NetworkSettings, "chainId" | "contract"> = { chainId: undefined, contract: undefined }): Promise<ConsentOutcome> {
  const health = await client.health();
  const domain = domainFor(settings, health);
  checkWalletChain(wallet, Number(domain.chainId));
  const p = purposeById(purposeId(input.purpose));
  const mask = categoryMask(input.categories);
  const nowSec = Math.floor(Date.now() / 1000);
  if (input.expiresAt !== 0 && input.expiresAt <= nowSec) throw usage("INVALID_ARGUMENT", "the consent's expiry must be in the future");
  const current = await currentConsent(client, input.partner, p.id);
  const record: ConsentRecord = consentRecord({
    recordId: randomUUID(),
    subjectDid: wallet.did,
    controllers: [{ id: health.gateway.did }],
    recipient: input.partnerDid?.startsWith("did:ethr:") ? input.partnerDid : ethrDid(Number(domain.chainId), input.partner),
    purpose: p.id,
    categories: mask,
    noticeHash: toHex0x(sha256(input.notice ?? new TextEncoder().encode(DEFAULT_NOTICE))) as Bytes32,
    expiresAt: input.expiresAt,
    givenAt: nowSec,
    withdrawalMethod: `custodia consent revoke --partner ${input.partner} --purpose ${p.key}`,
    ...(input.jurisdiction ? { jurisdiction: input.jurisdiction } : {}),
  });

  const message: ConsentGrantMessage = {
    subject: wallet.address,
    partner: input.partner,
    purpose: p.id,
    categories: mask,
    expiresAt: input.expiresAt,
    receiptHash: toHex0x(hashCanonical(record)) as Bytes32,
    nonce: current?.nonce ?? 0,
    deadline: nowSec + SIGNATURE_TTL_SEC,
  };
  const signature = await signTyped(signerOf(wallet), domain, "ConsentGrant", message);
  if (recoverTyped(domain, "ConsentGrant", message, signature) !== wallet.address) throw new CliError("INTERNAL", "the wallet's own signature does not verify", EXIT.UNAVAILABLE);
  const result = await client.submitGrant({ ...message, expiresAt: Number(message.expiresAt), deadline: Number(message.deadline) }, signature, record);
  return {
    action: "grant",
    subject: wallet.address,
    partner: input.partner,
    purpose: p.key,
    categories: record.piiCategories,
    expiresAt: record.expiresAt,
    nonce: message.nonce,
    txId: result.txId,
    blockNumber: result.blockNumber,
    receiptHash: message.receiptHash,
    receipt: summariseReceipt(result.receipt, { gatewayDid: health.gateway.did, txId: result.txId, record }),
    receiptJwt: result.receipt,
  };
}

/** Revokes a consent with a locally signed EIP-712 ConsentRevoke, relayed by the gateway. */
export async function revokeConsent(client: GatewayClient, wallet: LoadedWallet, input: { partner: Address; purpose: PurposeKey }, settings: Pick<NetworkSettings, "chainId" | "contract"> = { chainId: undefined, contract: undefined }): Promise<ConsentOutcome> {
  const health = await client.health();
  const domain = domainFor(settings, health);
  checkWalletChain(wallet, Number(domain.chainId));
  const pid = purposeId(input.purpose);
  const current = await currentConsent(client, input.partner, pid);
  if (!current || current.grantedAt === 0 || current.revokedAt !== 0) {
    throw new CliError("CONSENT_NOT_ACTIVE", `there is no active consent for ${input.partner} and ${input.purpose} to revoke`, EXIT.REJECTED);
  }
  const message: ConsentRevokeMessage = { subject: wallet.address, partner: input.partner, purpose: pid, nonce: current.nonce, deadline: Math.floor(Date.now() / 1000) + SIGNATURE_TTL_SEC };
  const signature = await signTyped(signerOf(wallet), domain, "ConsentRevoke", message);
  const result: ConsentSubmissionResult = await client.submitRevoke({ ...message, deadline: Number(message.deadline) }, signature);
  return {
    action: "revoke",
    subject: wallet.address,
    partner: input.partner,
    purpose: input.purpose,
    nonce: message.nonce,
    txId: result.txId,
    blockNumber: result.blockNumber,
    receipt: summariseReceipt(result.receipt, { gatewayDid: health.gateway.did, txId: result.txId, record: null }),
    receiptJwt: result.receipt,
  };
}

function consentStatus(c: ConsentState, nowSec: number): "active" | "revoked" | "expired" | "never granted" {
  if (c.grantedAt === 0) return "never granted";
  if (c.revokedAt !== 0) return "revoked";
  if (c.expiresAt !== 0 && c.expiresAt <= nowSec) return "expired";
  return "active";
}

const iso = (sec: number): string => new Date(sec * 1000).toISOString().replace(".000Z", "Z");

/* ===================================================== history, decisions */

/** How far one entry of the customer's own record is proven. */
export type EntryStatus = "verified" | "pending anchor" | "FAILED";

/** One entry with its verdict. */
export interface CheckedEntry {
  index: number;
  status: EntryStatus;
  /** Why an entry FAILED, or why it is not (yet) verified. */
  code?: ErrorCode;
  message?: string;
  entry: Record<string, unknown>;
  explanation?: unknown;
}

/** What the ledger says about the log the entries were proven against. */
export interface AnchorCheck {
  /** Whether the ledger could be asked. */
  checked: boolean;
  /** Entries with an index below this are covered by a checkpoint anchored on the ledger. */
  coveredBelow: number;
  /** The anchored checkpoint used. */
  anchoredSize?: number;
  anchoredRoot?: string;
  /** The proven root contradicts the anchors: every entry fails. */
  failure?: { code: ErrorCode; message: string };
  note?: string;
}

/** The customer's own history or decisions, every entry checked. */
export interface OwnLogReport {
  log: "access" | "decisions";
  logId: Bytes32;
  treeSize: number;
  root: string;
  anchor: AnchorCheck;
  verified: number;
  pending: number;
  failed: number;
  entries: CheckedEntry[];
}

function codeOf(e: unknown): ErrorCode {
  return isCustodiaError(e) ? e.code : "VERIFY_FAILED";
}

/**
 * Checks the anchor side: the ledger's latest checkpoint of this gateway's log (id computed here,
 * not taken from the gateway) must be the proven root, or be consistent with it by an RFC 9162
 * consistency proof. Entries below the smaller of the two sizes are then fixed by the anchor.
 */
export async function checkAnchor(args: { client: GatewayClient; ledger: EvmLedger | null; logName: "access" | "decisions"; logId: Bytes32; gateway: Address; treeSize: number; root: string }): Promise<AnchorCheck> {
  const { client, ledger, logName, logId, treeSize: n, root } = args;
  if (!ledger) return { checked: false, coveredBelow: 0, note: "the ledger is not reachable: anchors not checked" };
  if (n === 0) return { checked: true, coveredBelow: 0 };
  let head;
  let anchoredRoot: string | null;
  try {
    head = await ledger.latestCheckpoint(logId);
    if (!head) return { checked: true, coveredBelow: 0, note: "nothing of this log is anchored on the ledger yet" };
    anchoredRoot = await ledger.checkpointRoot(logId, head.treeSize);
  } catch (e) {
    return { checked: false, coveredBelow: 0, note: `the ledger could not be read (${codeOf(e)}): anchors not checked` };
  }
  const m = head.treeSize;
  const fail = (code: ErrorCode, message: string): AnchorCheck => ({ checked: true, coveredBelow: 0, anchoredSize: m, ...(anchoredRoot ? { anchoredRoot } : {}), failure: { code, message } });
  if (head.gateway.toLowerCase() !== args.gateway.toLowerCase()) return fail("VERIFY_FAILED", `the log is anchored by ${head.gateway}, not by this gateway (${args.gateway})`);
  if (!anchoredRoot) return fail("VERIFY_FAILED", `the ledger names a checkpoint of size ${m} but no root for it`);
  try {
    if (m === n) {
      verifyConsistency(n, n, [], hashFromHex(anchoredRoot), hashFromHex(root));
      return { checked: true, coveredBelow: n, anchoredSize: m, anchoredRoot };
    }
    const [from, to] = m < n ? [m, n] : [n, m];
    let proof: string[];
    try {
      proof = (await client.consistency(logName, from, to)).proof;
    } catch (e) {
      return { checked: true, coveredBelow: 0, anchoredSize: m, anchoredRoot, note: `the gateway gave no consistency proof from ${from} to ${to} (${codeOf(e)})` };
    }
    if (m < n) verifyConsistency(m, n, proofFromHex(proof), hashFromHex(anchoredRoot), hashFromHex(root));
    else verifyConsistency(n, m, proofFromHex(proof), hashFromHex(root), hashFromHex(anchoredRoot));
    return { checked: true, coveredBelow: Math.min(m, n), anchoredSize: m, anchoredRoot };
  } catch (e) {
    return fail(codeOf(e), `the log the gateway proved against is not consistent with the root anchored at size ${m}: ${(e as Error).message}`);
  }
}

/**
 * The pure part: each entry must hash to its leaf, be included at its index in the proven tree,
 * be about this subject, and (decisions) carry the explanation its hash names. Its status then
 * follows from the anchor check. Never throws for a bad entry: it is reported FAILED with a code.
 */
export function checkOwnEntries(args: { subject: Address; treeSize: number; root: string; entries: readonly (HistoryEntry & { explanation?: unknown })[]; anchor: AnchorCheck; decisions: boolean }): CheckedEntry[] {
  return args.entries.map((e): CheckedEntry => {
    const base = { index: e.index, entry: e.entry, ...(args.decisions ? { explanation: e.explanation ?? null } : {}) };
    const failed = (code: ErrorCode, message: string): CheckedEntry => ({ ...base, status: "FAILED", code, message });
    try {
      if (!e || typeof e.entry !== "object" || e.entry === null || !Number.isSafeInteger(e.index)) return failed("GATEWAY_MISBEHAVED", "malformed entry");
      if (String(e.entry["subject"]).toLowerCase() !== args.subject.toLowerCase()) return failed("GATEWAY_MISBEHAVED", "this entry is not about you");
      if (e.proof?.treeSize !== args.treeSize || e.proof?.root !== args.root) return failed("PROOF_ROOT_MISMATCH", "the entry is proven against another tree than the rest");
      const leaf = leafHash(canonicalBytes(e.entry));
      if (toHex0x(leaf) !== String(e.leafHash).toLowerCase()) return failed("DATA_TAMPERED", "the entry's content does not hash to its leaf");
      verifyInclusion(e.index, args.treeSize, leaf, proofFromHex(e.proof.inclusion), hashFromHex(args.root));
      if (args.decisions && e.explanation !== null && e.explanation !== undefined && toHex0x(hashCanonical(e.explanation)) !== String(e.entry["explanationHash"]).toLowerCase()) {
        return failed("DATA_TAMPERED", "the explanation does not hash to the one recorded in the decision");
      }
    } catch (err) {
      return failed(codeOf(err), (err as Error).message);
    }
    if (args.anchor.failure) return failed(args.anchor.failure.code, args.anchor.failure.message);
    if (e.index < args.anchor.coveredBelow) return { ...base, status: "verified" };
    return { ...base, status: "pending anchor", message: args.anchor.note ?? "not yet covered by an anchored checkpoint" };
  });
}

/** Opens the ledger for anchor checks; null (and the reason) when it cannot be reached. */
async function tryLedger(settings: Pick<NetworkSettings, "contract" | "chainId" | "rpcUrl" | "deployBlock">, health: GatewayHealth): Promise<{ ledger: EvmLedger; close(): Promise<void> } | null> {
  try {
    const conn = await connectLedger(settings, { fallback: { chainId: health.ledger.chainId, contract: health.ledger.contract }, timeoutMs: 4_000 });
    await conn.ledger.blockNumber().catch(async (e: unknown) => {
      await conn.close();
      throw e;
    });
    return conn;
  } catch {
    return null;
  }
}

/**
 * Reads the subject's own access history or decisions and checks every entry (see
 * checkOwnEntries, checkAnchor). `ledger: undefined` connects to settings.rpcUrl (when given);
 * null skips the ledger.
 */
export async function readOwnLog(
  client: GatewayClient,
  wallet: LoadedWallet,
  which: "access" | "decisions",
  options: { settings: Pick<NetworkSettings, "chainId" | "contract"> & Partial<Pick<NetworkSettings, "rpcUrl" | "deployBlock">>; limit?: number; ledger?: EvmLedger | null },
): Promise<OwnLogReport> {
  const health = await client.health();
  const page = which === "access" ? await client.accesses(options.limit) : await client.decisions();
  const entries = which === "access" ? (page as Awaited<ReturnType<GatewayClient["accesses"]>>).entries : (page as Awaited<ReturnType<GatewayClient["decisions"]>>).decisions;
  if (!Array.isArray(entries) || !Number.isSafeInteger(page.treeSize) || typeof page.root !== "string") throw new CliError("GATEWAY_MISBEHAVED", `the gateway's ${which} answer is malformed`, EXIT.UNAVAILABLE);
  const domain = domainFor(options.settings, health);
  const logId = logIdFor(Number(domain.chainId), domain.verifyingContract, health.gateway.account, which);
  let conn: { ledger: EvmLedger; close(): Promise<void> } | null = null;
  const { rpcUrl } = options.settings;
  if (options.ledger === undefined && entries.length > 0 && rpcUrl) conn = await tryLedger({ ...options.settings, rpcUrl, deployBlock: options.settings.deployBlock ?? 0 }, health);
  const ledger = options.ledger === undefined ? (conn?.ledger ?? null) : options.ledger;
  try {
    const anchor: AnchorCheck =
      entries.length === 0 ? { checked: false, coveredBelow: 0 } : await checkAnchor({ client, ledger, logName: which, logId, gateway: health.gateway.account, treeSize: page.treeSize, root: page.root });
    const checked = checkOwnEntries({ subject: wallet.address, treeSize: page.treeSize, root: page.root, entries, anchor, decisions: which === "decisions" });
    return {
      log: which,
      logId,
      treeSize: page.treeSize,
      root: page.root,
      anchor,
      verified: checked.filter((c) => c.status === "verified").length,
      pending: checked.filter((c) => c.status === "pending anchor").length,
      failed: checked.filter((c) => c.status === "FAILED").length,
      entries: checked,
    };
  } finally {
    await conn?.close();
  }
}

function describeEntry(c: CheckedEntry): string {
  const e = c.entry as Record<string, unknown>;
  const status = c.status === "FAILED" ? `FAILED [${c.code}] ${c.message ?? ""}` : c.status;
  const at = String(e["at"] ?? "").replace(/\.\d+Z$/, "Z");
  if (e["kind"] === "access") {
    const cats = typeof e["categories"] === "number" ? categoriesFromMask(e["categories"]).join(",") : "?";
    return `  #${c.index}  ${at}  ${String(e["decision"]).padEnd(5)}  ${String(e["partner"])}  ${String(e["purpose"])}  ${cats}  ${e["decision"] === "deny" ? `(${String(e["reason"])})  ` : ""}${status}`;
  }
  if (e["kind"] === "erasure") return `  #${c.index}  ${at}  erasure of your data  ${status}`;
  if (e["kind"] === "decision") {
    const ex = c.explanation as { topFeatures?: { feature?: string; name?: string }[] } | null | undefined;
    const top = ex?.topFeatures?.slice(0, 3).map((f) => f.feature ?? f.name).filter(Boolean).join(", ");
    return `  #${c.index}  ${at}  ${String(e["segment"])}  run ${String(e["runId"]).slice(0, 10)}…${top ? `  driven by: ${top}` : ""}  ${status}`;
  }
  return `  #${c.index}  ${String(e["kind"])}  ${status}`;
}

function describeReport(r: OwnLogReport, title: string): string {
  const lines = [`${title}: ${r.entries.length} entries — ${r.verified} verified, ${r.pending} pending anchor, ${r.failed} FAILED`];
  lines.push(`  log ${r.log} size ${r.treeSize}, root ${r.root}`);
  if (r.anchor.anchoredSize !== undefined) lines.push(`  ledger anchor: size ${r.anchor.anchoredSize}, root ${r.anchor.anchoredRoot ?? "?"}`);
  if (r.anchor.note) lines.push(`  note: ${r.anchor.note}`);
  for (const c of r.entries) lines.push(describeEntry(c));
  return lines.join("\n");
}

/* =============================================================== erasure */

/** Signs a DataCommitment or ErasureRequest for the subject's current vault commitment, in the wallet. */
async function signDataRequest(kind: "DataCommitment" | "ErasureRequest", wallet: LoadedWallet, domain: Eip712Domain, mine: MyData): Promise<SignedDataRequest> {
  if (!mine.commitment) throw new CliError("NOT_FOUND", "the gateway holds no data of yours to commit to", EXIT.REJECTED);
  const message = { subject: wallet.address, commitment: mine.commitment, nonce: BigInt(mine.dataNonce), deadline: Math.floor(Date.now() / 1000) + 3600 };
  const signature = await signTyped(signerOf(wallet), domain, kind, message);
  return { message: { ...message, nonce: message.nonce.toString() }, signature };
}

/**
 * Records on the ledger, signed in the wallet, the vault's commitment to this subject's records,
 * so a later erasure can be recorded against it too.
 */
export async function commitMine(client: GatewayClient, wallet: LoadedWallet, settings: Pick<NetworkSettings, "chainId" | "contract">): Promise<{ commitment: Bytes32; txId: string; blockNumber: number }> {
  const [health, mine] = await Promise.all([client.health(), client.myData()]);
  if (mine.status !== "active") throw new CliError(mine.status === "erased" ? "SUBJECT_ERASED" : "NOT_FOUND", mine.status === "erased" ? "your data was erased" : "the gateway holds no data of yours", EXIT.REJECTED);
  if (mine.ledger.committed) throw new CliError("COMMITMENT_EXISTS", `the ledger already records commitment ${mine.commitment}`, EXIT.REJECTED);
  const tx = await client.commitData(await signDataRequest("DataCommitment", wallet, domainFor(settings, health), mine));
  return { commitment: mine.commitment!, ...tx };
}

/**
 * Asks the gateway to erase the subject's data (crypto-shredding); the erasure is logged. When the
 * ledger records the data's commitment, the wallet signs an ErasureRequest for it, and the gateway
 * records the erasure on the ledger before it shreds anything.
 */
export async function eraseMine(client: GatewayClient, wallet?: LoadedWallet, settings: Pick<NetworkSettings, "chainId" | "contract"> = { chainId: undefined, contract: undefined }): Promise<Awaited<ReturnType<GatewayClient["erase"]>>> {
  if (!wallet) return client.erase();
  const [health, mine] = await Promise.all([client.health(), client.myData()]);
  const recordable = mine.status === "active" && mine.ledger.committed && mine.ledger.erasedAt === null;
  return client.erase(recordable ? await signDataRequest("ErasureRequest", wallet, domainFor(settings, health), mine) : undefined);
}

/* ============================================================== commands */

function describeOutcome(o: ConsentOutcome): string {
  const lines = [
    o.action === "grant"
      ? `consent granted: ${o.purpose} → ${o.partner} (${(o.categories ?? []).join(", ")}), ${o.expiresAt ? `until ${o.expiresAt}` : "until withdrawn"}`
      : `consent revoked: ${o.purpose} → ${o.partner}`,
    `  transaction ${o.txId} (block ${o.blockNumber}), nonce ${o.nonce}`,
    `  receipt     VC-JWT from ${o.receipt.issuer}: signature ${o.receipt.signatureValid ? "ok" : "INVALID"}, content ${o.receipt.contentMatches ? "matches" : "DOES NOT MATCH"} what you signed`,
  ];
  if (o.receiptHash) lines.push(`  record hash ${o.receiptHash} (ISO/IEC TS 27560 record, signed as receiptHash)`);
  return lines.join("\n");
}

function warnOnReceipt(ctx: CommandContext, o: ConsentOutcome): void {
  if (!o.receipt.signatureValid || !o.receipt.contentMatches) {
    ctx.io.stderr(`warning: the ledger transaction ${o.txId} is in, but the gateway's receipt does not check out (signature ${o.receipt.signatureValid ? "ok" : "invalid"}, content ${o.receipt.contentMatches ? "ok" : "mismatch"})\n`);
  }
}

/** Registers the customer's commands: wallet, consent, history, decisions, erase. */
export function registerWallet(program: Command, ctx: CommandContext): void {
  const wallet = program.command("wallet").description("your key and DID, kept in a local file (mode 0600) that never leaves this machine");

  wallet
    .command("create")
    .description("create a new key and DID and write the wallet file (--wallet, default <data-dir>/wallet.json)")
    .option("--method <method>", `DID method: ${DID_METHODS.join(" or ")} (did:ethr on the consortium chain, or a secp256k1 did:key)`, "ethr")
    .option("--force", "replace an existing wallet file (its key is lost for good)")
    .option("--encrypt", "encrypt the key under a passphrase: CUSTODIA_WALLET_PASSPHRASE(_FILE), or typed at the terminal (setting either variable also encrypts)")
    .addHelpText("after", "\nExamples:\n  custodia wallet create --encrypt\n  custodia wallet create --method key --wallet ./me.json\n")
    .action(
      ctx.action(async (opts: { method: string; force?: boolean; encrypt?: boolean }) => {
        if (!(DID_METHODS as readonly string[]).includes(opts.method)) throw usage("INVALID_ARGUMENT", `--method must be ${DID_METHODS.join(" or ")}, got "${opts.method}"`);
        const settings = ctx.settings();
        const method = opts.method as DidMethod;
        let chainId = settings.chainId;
        if (method === "ethr" && chainId === undefined) {
          // not configured: the gateway names its chain (no key material is involved in asking)
          chainId = await new GatewayClient(settings.gatewayUrl, { wallet: null, timeoutMs: 5_000 })
            .health()
            .then((h) => h.ledger.chainId)
            .catch(() => {
              throw new CliError("CONFIG_INVALID", "a did:ethr names its chain, and none is known: pass --chain-id (31337 for the embedded network), --data-dir of a running network, or use --method key", EXIT.USAGE);
            });
        }
        if (opts.force !== true) refuseExistingWallet(settings.walletPath); // before any passphrase is asked for
        const passphrase = opts.encrypt === true || settings.walletPassphrase !== undefined ? await newPassphrase(ctx) : undefined;
        const encrypted = passphrase !== undefined;
        const w = createWallet(settings.walletPath, method, { ...(chainId !== undefined ? { chainId } : {}), force: opts.force === true, ...(passphrase !== undefined ? { passphrase } : {}) });
        printResult(ctx.io, ctx.json(), { did: w.did, address: w.address, method: w.method, wallet: settings.walletPath, encrypted }, () =>
          [
            `created wallet ${settings.walletPath} (mode 0600${encrypted ? ", key encrypted under your passphrase" : ""})`,
            `  DID      ${w.did}`,
            `  account  ${w.address}`,
            "The private key stays in that file and never leaves this machine; keep a backup.",
            ...(encrypted ? ["Without the passphrase the key cannot be recovered: keep it safe too."] : [UNENCRYPTED_HINT]),
          ].join("\n"),
        );
      }),
    );

  wallet
    .command("show")
    .description("show the wallet's DID and account (never the key); an encrypted wallet needs its passphrase")
    .action(
      ctx.action(async () => {
        const settings = ctx.settings();
        const path = settings.walletPath;
        // the key is opened (and checked against the DID and account the file records) even to show them
        const w = loadWallet(path, await passphraseFor(ctx, path));
        const encrypted = isEncryptedWallet(path);
        printResult(ctx.io, ctx.json(), { did: w.did, address: w.address, method: w.method, wallet: path, encrypted }, () =>
          [`wallet   ${path}`, `  DID      ${w.did}`, `  account  ${w.address}`, `  method   did:${w.method}`, `  key      ${encrypted ? "encrypted (passphrase)" : "not encrypted"}`].join("\n"),
        );
      }),
    );

  wallet
    .command("encrypt")
    .description("encrypt the key of an unencrypted wallet under a passphrase, in place (CUSTODIA_WALLET_PASSPHRASE(_FILE), or typed at the terminal)")
    .addHelpText("after", "\nExample:\n  CUSTODIA_WALLET_PASSPHRASE_FILE=~/.custodia-pass custodia wallet encrypt\n\nThe file is replaced atomically; the key, DID and account stay the same. From then on every\ncommand that signs needs the passphrase.\n")
    .action(
      ctx.action(async () => {
        const settings = ctx.settings();
        // refuse an encrypted or broken wallet before asking for anything
        if (isEncryptedWallet(settings.walletPath)) throw new CliError("INVALID_ARGUMENT", `the wallet ${settings.walletPath} is already encrypted`, EXIT.USAGE);
        const w = encryptWallet(settings.walletPath, await newPassphrase(ctx));
        printResult(ctx.io, ctx.json(), { did: w.did, address: w.address, method: w.method, wallet: settings.walletPath, encrypted: true }, () =>
          [`encrypted wallet ${settings.walletPath}`, `  DID      ${w.did}`, `  account  ${w.address}`, "Without the passphrase the key cannot be recovered: keep it safe."].join("\n"),
        );
      }),
    );

  const consent = program.command("consent").description("grant, revoke and list your consents (signed in your wallet, verified on the ledger)");

  consent
    .command("grant")
    .description("grant a partner consent to use data categories for a purpose")
    .requiredOption("--partner <address|did>", "the partner's ledger account or DID")
    .requiredOption("--purpose <purpose>", `one of: ${PURPOSES.map((p) => p.key).join(", ")}`)
    .requiredOption("--categories <list>", `comma-separated, of: ${CATEGORY_NAMES.join(", ")}`)
    .option("--expires <date>", "ISO 8601 date the consent ends, or never", "never")
    .option("--notice <file|text>", "the privacy notice you were shown (its SHA-256 goes in the record)")
    .option("--jurisdiction <code>", "jurisdiction of the consent record", "EU")
    .addHelpText("after", "\nExample:\n  custodia consent grant --partner 0xAbc...123 --purpose profiling --categories transactions,behavioural --expires 2026-12-31\n")
    .action(
      ctx.action(async (opts: { partner: string; purpose: string; categories: string; expires: string; notice?: string; jurisdiction: string }) => {
        const party = parseParty(opts.partner, "--partner");
        const purpose = parsePurpose(opts.purpose);
        const categories = parseCategories(opts.categories);
        const nowSec = Math.floor(Date.now() / 1000);
        const expiresAt = opts.expires === "never" ? 0 : parseDate(opts.expires, "--expires", nowSec);
        if (expiresAt !== 0 && expiresAt <= nowSec) throw usage("INVALID_ARGUMENT", "--expires must be in the future");
        const w = await walletFromSettings(ctx);
        const settings = ctx.settings();
        const outcome = await grantConsent(gatewayFor(ctx, w), w, { partner: party.account, partnerDid: party.did, purpose, categories, expiresAt, ...(opts.notice ? { notice: textOrFile(opts.notice).bytes } : {}), jurisdiction: opts.jurisdiction }, settings);
        warnOnReceipt(ctx, outcome);
        printResult(ctx.io, ctx.json(), outcome, () => describeOutcome(outcome));
      }),
    );

  consent
    .command("revoke")
    .description("withdraw a consent (effective from the block it lands in)")
    .requiredOption("--partner <address|did>", "the partner's ledger account or DID")
    .requiredOption("--purpose <purpose>", `one of: ${PURPOSES.map((p) => p.key).join(", ")}`)
    .addHelpText("after", "\nExample:\n  custodia consent revoke --partner 0xAbc...123 --purpose profiling\n")
    .action(
      ctx.action(async (opts: { partner: string; purpose: string }) => {
        const party = parseParty(opts.partner, "--partner");
        const purpose = parsePurpose(opts.purpose);
        const w = await walletFromSettings(ctx);
        const outcome = await revokeConsent(gatewayFor(ctx, w), w, { partner: party.account, purpose }, ctx.settings());
        warnOnReceipt(ctx, outcome);
        printResult(ctx.io, ctx.json(), outcome, () => describeOutcome(outcome));
      }),
    );

  consent
    .command("list")
    .description("list your consents as the ledger holds them")
    .action(
      ctx.action(async () => {
        const w = await walletFromSettings(ctx);
        const { block, consents } = await gatewayFor(ctx, w).myConsents();
        const nowSec = Math.floor(Date.now() / 1000);
        const rows = consents.map((c) => ({
          partner: c.partner,
          purpose: purposeById(c.purpose).key,
          categories: categoriesFromMask(c.categories),
          status: consentStatus(c, nowSec),
          grantedAt: c.grantedAt ? iso(c.grantedAt) : null,
          expiresAt: c.expiresAt ? iso(c.expiresAt) : null,
          revokedAt: c.revokedAt ? iso(c.revokedAt) : null,
          nonce: c.nonce,
        }));
        printResult(ctx.io, ctx.json(), { subject: w.address, block, consents: rows }, () =>
          rows.length === 0
            ? `no consents for ${w.address} (ledger block ${block})`
            : [`consents of ${w.address} at block ${block}:`, ...rows.map((r) => `  ${r.status.padEnd(8)}  ${r.partner}  ${r.purpose}  ${r.categories.join(",")}  granted ${r.grantedAt ?? "-"}${r.expiresAt ? `  expires ${r.expiresAt}` : ""}${r.revokedAt ? `  revoked ${r.revokedAt}` : ""}`)].join("\n"),
        );
      }),
    );

  const ownLog = (which: "access" | "decisions") => async (opts: { limit?: string }): Promise<ExitCode | void> => {
    const limit = opts.limit !== undefined ? parseCount(opts.limit, "--limit", 1, 1000) : undefined;
    const w = await walletFromSettings(ctx);
    const report = await readOwnLog(gatewayFor(ctx, w), w, which, { settings: ctx.settings(), ...(limit !== undefined ? { limit } : {}) });
    printResult(ctx.io, ctx.json(), { subject: w.address, ok: report.failed === 0, ...report }, () => describeReport(report, which === "access" ? "access history" : "segment decisions"));
    if (report.failed > 0) {
      if (!ctx.json()) ctx.io.stderr(`error [VERIFY_FAILED]: ${report.failed} entr${report.failed === 1 ? "y" : "ies"} failed verification\n`);
      return EXIT.VERIFY_FAILED;
    }
  };

  program
    .command("history")
    .description("who accessed your data, and why: each entry's inclusion proof is verified here, and its log root against the ledger's anchors")
    .option("--limit <n>", "most recent entries to read (1-1000, default 200)")
    .addHelpText("after", "\nEach entry is marked verified (proof ok and anchored on the ledger), pending anchor (proof ok, not anchored yet or ledger not reachable) or FAILED with a code; any FAILED entry makes the exit code 1.\n")
    .action(ctx.action(ownLog("access")));

  program
    .command("decisions")
    .description("the segments you were placed in and why (GDPR Art. 15(1)(h), 22), verified like history")
    .action(ctx.action(ownLog("decisions")));

  program
    .command("erase")
    .description("erase your data at the gateway (crypto-shredding; cannot be undone)")
    .option("--yes", "confirm: the data is destroyed for good")
    .action(
      ctx.action(async (opts: { yes?: boolean }) => {
        if (opts.yes !== true) throw usage("INVALID_ARGUMENT", "erasure cannot be undone: run again with --yes to confirm");
        const w = await walletFromSettings(ctx);
        const r = await eraseMine(gatewayFor(ctx, w), w, ctx.settings());
        printResult(ctx.io, ctx.json(), { subject: w.address, ...r }, () =>
          [
            `erased the data of ${w.address}`,
            `  logged as access-log entry #${r.receipt.index} (leaf ${r.receipt.leafHash})`,
            r.ledger ? `  recorded on the ledger: transaction ${r.ledger.txId} (block ${r.ledger.blockNumber})` : "  not recorded on the ledger: it held no commitment to your data (see `custodia data commit`)",
          ].join("\n"),
        );
      }),
    );

  const data = program.command("data").description("what the gateway's vault holds for you (never the data itself) and whether the ledger records it");
  data
    .command("show", { isDefault: true })
    .description("status, the vault's commitment to your records, and the ledger's record of it")
    .action(
      ctx.action(async () => {
        const w = await walletFromSettings(ctx);
        const mine = await gatewayFor(ctx, w).myData();
        printResult(ctx.io, ctx.json(), mine, () =>
          [
            `${mine.subject}: ${mine.status}${mine.records !== undefined ? `, ${mine.records} records` : ""}`,
            `  commitment ${mine.commitment ?? "none"}`,
            `  on the ledger: ${mine.ledger.committed ? `committed${mine.ledger.erasedAt ? `, erased at ${new Date(mine.ledger.erasedAt * 1000).toISOString()}` : ""}` : "not recorded (custodia data commit)"}`,
          ].join("\n"),
        );
      }),
    );
  data
    .command("commit")
    .description("sign, in this wallet, the vault's commitment to your records and record it on the ledger (a later erasure is then recorded against it)")
    .action(
      ctx.action(async () => {
        const w = await walletFromSettings(ctx);
        const r = await commitMine(gatewayFor(ctx, w), w, ctx.settings());
        printResult(ctx.io, ctx.json(), r, () => `commitment ${r.commitment} recorded: transaction ${r.txId} (block ${r.blockNumber})`);
      }),
    );
}
