/**
 * The wallet file: one secp256k1 key and the DID it is known by (`did:ethr` on the consortium
 * chain by default, or a secp256k1 `did:key`). The key is created here, kept in a file readable
 * by its owner only (mode 0600), and used here: EIP-712 signatures and DID-JWTs are made locally,
 * so the private key never leaves this machine. With a passphrase the key is also encrypted at
 * rest (`custodia-wallet/2`: a Web3 Secret Storage keystore, see keystore.ts); without one it is
 * stored as is (`custodia-wallet/1`), protected by the file's mode alone. Every problem with the
 * file is a WALLET_* error that ends a command with exit code 5.
 */
import { randomUUID } from "node:crypto";
import { closeSync, fchmodSync, fsyncSync, lstatSync, mkdirSync, openSync, readFileSync, realpathSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import { ES256KSigner, createJWT } from "did-jwt";
import { Signature, SigningKey, Wallet, computeAddress, getBytes } from "ethers";
import { sha256 } from "../core/hash.js";
import { ethrDid, type Address } from "../core/domain.js";
import { CustodiaError } from "../core/errors.js";
import { parseDid, secp256k1DidKey } from "../core/did.js";
import { CliError, EXIT } from "./io.js";
import { KeystoreError, decryptKey, encryptKey, type Keystore } from "./keystore.js";

/** The DID methods a wallet can be created with. */
export const DID_METHODS = ["ethr", "key"] as const;
/** did:ethr or did:key. */
export type DidMethod = (typeof DID_METHODS)[number];

/** A wallet in memory: what signing needs, and who it is. */
export interface LoadedWallet {
  /** 0x-prefixed 32-byte secp256k1 private key. Never printed, never sent. */
  privateKey: `0x${string}`;
  /** The ledger account of the key (EIP-55). */
  address: Address;
  did: string;
  method: DidMethod;
}

/** What both file formats record in the clear: who the wallet is. */
interface WalletFileBase {
  method: DidMethod;
  did: string;
  address: Address;
  /** Chain the did:ethr names (absent for did:key). */
  chainId?: number;
  createdAt: string;
}

/**
 * The file formats. `format` lets a later version change it without guessing: /1 holds the key as
 * is, /2 holds it encrypted under the wallet's passphrase.
 */
export type WalletFile = (WalletFileBase & { format: "custodia-wallet/1"; privateKey: `0x${string}` }) | (WalletFileBase & { format: "custodia-wallet/2"; keystore: Keystore });

const PLAIN = "custodia-wallet/1";
const ENCRYPTED = "custodia-wallet/2";

/* ------------------------------------------------------------------- DIDs */

/** The secp256k1 `did:key` of a key: multibase base58btc of the multicodec-prefixed compressed public key. */
export function didKeyOf(privateKeyOrPublicKey: string): string {
  return secp256k1DidKey(SigningKey.computePublicKey(privateKeyOrPublicKey, true));
}

/** The DID of a key for a method; did:ethr needs the chain id it lives on. */
export function didFor(privateKey: string, method: DidMethod, chainId?: number): string {
  if (method === "key") return didKeyOf(privateKey);
  if (chainId === undefined) throw new CliError("CONFIG_INVALID", "a did:ethr needs the ledger's chain id (pass --chain-id, or start the network so its deployment.json names it)", EXIT.USAGE);
  return ethrDid(chainId, computeAddress(privateKey));
}

/**
 * The ledger account a DID names, read off the identifier: a did:ethr's address (or compressed
 * public key), or the address of a secp256k1 did:key. Throws INVALID_DID for anything else (an
 * Ed25519 did:key has no ledger account).
 */
export function didAccount(did: string): Address {
  const account = parseDid(did).account;
  if (!account) throw new CustodiaError("INVALID_DID", "only did:ethr and secp256k1 did:key identifiers name a ledger account");
  return account;
}

/**
 * Whether an ES256K JWT was signed by `account`'s key, resolving nothing: the signature (`r‖s`,
 * base64url) over the SHA-256 of header.payload must recover to that account under one of the
 * two recovery ids. False for anything malformed.
 */
export function jwtSignedBy(jwt: { data: string; signature: string }, account: Address): boolean {
  const sig = Buffer.from(jwt.signature, "base64url");
  if (sig.length !== 64) return false;
  const digest = sha256(new TextEncoder().encode(jwt.data));
  const r = `0x${sig.subarray(0, 32).toString("hex")}`;
  const s = `0x${sig.subarray(32).toString("hex")}`;
  for (const v of [27, 28]) {
    try {
      if (computeAddress(SigningKey.recoverPublicKey(digest, Signature.from({ r, s, v }))) === account) return true;
    } catch {
      // not this recovery id
    }
  }
  return false;
}

/** The chain id a did:ethr names (`did:ethr:0x7a69:...`), undefined when it names none. */
export function didEthrChainId(did: string): number | undefined {
  const parts = did.split(":");
  if (parts[0] !== "did" || parts[1] !== "ethr" || parts.length !== 4) return undefined;
  const n = /^0x[0-9a-fA-F]+$/.test(parts[2]!) ? Number.parseInt(parts[2]!.slice(2), 16) : Number.NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

/* ----------------------------------------------------------------- wallets */

/** A new wallet in memory, with a fresh random key (not written anywhere). */
export function newWallet(method: DidMethod, chainId?: number): LoadedWallet {
  const key = Wallet.createRandom().privateKey as `0x${string}`;
  return { privateKey: key, address: computeAddress(key) as Address, did: didFor(key, method, chainId), method };
}

function walletError(code: "WALLET_MISSING" | "WALLET_EXISTS" | "WALLET_INVALID" | "WALLET_LOCKED" | "WALLET_BAD_PASSPHRASE", message: string): CliError {
  return new CliError(code, message, EXIT.LOCAL);
}

/**
 * Writes a wallet to `path` with mode 0600 (its folder is created 0700 if missing). Refuses an
 * existing file unless `force`: a wallet holds the only copy of a key, and overwriting it loses
 * the identity for good. Without force the file is created exclusively, so two concurrent
 * creations cannot both succeed; with force it is replaced atomically.
 */
export function saveWallet(path: string, wallet: LoadedWallet, options: { force?: boolean; chainId?: number; passphrase?: string; scryptN?: number; createdAt?: string } = {}): void {
  const base: WalletFileBase = {
    method: wallet.method,
    did: wallet.did,
    address: wallet.address,
    ...(wallet.method === "ethr" && options.chainId !== undefined ? { chainId: options.chainId } : {}),
    createdAt: options.createdAt ?? new Date().toISOString(),
  };
  const file: WalletFile =
    options.passphrase === undefined
      ? { format: PLAIN, ...base, privateKey: wallet.privateKey }
      : { format: ENCRYPTED, ...base, keystore: encryptKey(wallet.privateKey, checkedPassphrase(options.passphrase), options.scryptN !== undefined ? { n: options.scryptN } : {}) };
  const text = JSON.stringify(file, null, 2) + "\n";
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o700 });
  } catch (e) {
    throw walletError("WALLET_INVALID", `cannot create the folder for the wallet file ${path}: ${(e as Error).message}`);
  }
  if (!options.force) {
    try {
      writeDurably(path, text);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "EEXIST") throw walletError("WALLET_EXISTS", `a wallet already exists at ${path}; pass --force to replace it (its key is then lost for good)`);
      throw walletError("WALLET_INVALID", `cannot write the wallet file ${path}: ${(e as Error).message}`);
    }
    syncFolder(dirname(path));
    return;
  }
  // A wallet reached through a symbolic link is replaced where it lives: renaming over the link
  // would leave the old file, and its key, behind.
  let target = path;
  try {
    target = realpathSync(path);
  } catch {
    // no file there yet: it is created at `path`
  }
  const tmp = `${target}.${randomUUID()}.tmp`;
  try {
    writeDurably(tmp, text);
    renameSync(tmp, target);
    syncFolder(dirname(target));
  } catch (e) {
    try {
      rmSync(tmp, { force: true });
    } catch {
      // nothing to clean up where nothing could be written (e.g. a name too long for the file system)
    }
    throw walletError("WALLET_INVALID", `cannot write the wallet file ${path}: ${(e as Error).message}`);
  }
}

/**
 * Creates `path` (it must not exist), mode 0600, and writes `text` to the disk before returning:
 * the file may hold the only copy of a key, so a power cut must not leave it empty.
 */
function writeDurably(path: string, text: string): void {
  const fd = openSync(path, "wx", 0o600);
  try {
    fchmodSync(fd, 0o600); // whatever the umask
    writeFileSync(fd, text);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(path, { force: true }); // ours (created just now): no half-written wallet is left
    throw e;
  }
  closeSync(fd);
}

/** Makes a folder's new or renamed entries durable; best effort where a platform cannot (Windows). */
function syncFolder(dir: string): void {
  let fd: number | undefined;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    // not every platform syncs a directory; the file itself is on disk
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

/** WALLET_EXISTS when something is at `path` (also a dangling link): checked before asking for a passphrase. */
export function refuseExistingWallet(path: string): void {
  let there = false;
  try {
    lstatSync(path);
    there = true;
  } catch {
    // nothing there
  }
  if (there) throw walletError("WALLET_EXISTS", `a wallet already exists at ${path}; pass --force to replace it (its key is then lost for good)`);
}

/** Creates a wallet with a fresh key and writes it to `path` (see saveWallet for the rules). */
export function createWallet(path: string, method: DidMethod, options: { chainId?: number; force?: boolean; passphrase?: string } = {}): LoadedWallet {
  const wallet = newWallet(method, options.chainId);
  saveWallet(path, wallet, options);
  return wallet;
}

/** A passphrase must be something: an empty one would encrypt with a key anyone can derive. */
function checkedPassphrase(passphrase: string): string {
  if (passphrase.length === 0) throw new CliError("CONFIG_INVALID", "the wallet passphrase is empty", EXIT.USAGE);
  return passphrase;
}

/** Reads and parses a wallet file: WALLET_MISSING, or WALLET_INVALID for a file others can read, or that is not a wallet. */
function readWalletFile(path: string): Partial<WalletFile> & { format: string } {
  let text: string;
  try {
    const st = statSync(path);
    if (!st.isFile()) throw walletError("WALLET_INVALID", `${path} is not a file`);
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0) {
      throw walletError("WALLET_INVALID", `the wallet file ${path} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
    }
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof CliError) throw e;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw walletError("WALLET_MISSING", `no wallet at ${path}; create one with: custodia wallet create`);
    throw walletError("WALLET_INVALID", `cannot read the wallet file ${path}: ${(e as Error).message}`);
  }
  let raw: Partial<WalletFile>;
  try {
    raw = JSON.parse(text) as Partial<WalletFile>;
  } catch {
    throw walletError("WALLET_INVALID", `the wallet file ${path} is not valid JSON`);
  }
  if (raw === null || typeof raw !== "object" || (raw.format !== PLAIN && raw.format !== ENCRYPTED)) throw walletError("WALLET_INVALID", `the wallet file ${path} is not a ${PLAIN} or ${ENCRYPTED} wallet`);
  return raw as Partial<WalletFile> & { format: string };
}

/** Whether the wallet at `path` is encrypted (checks only that it is a wallet file). */
export function isEncryptedWallet(path: string): boolean {
  return readWalletFile(path).format === ENCRYPTED;
}

/**
 * Loads and checks a wallet file: it must exist (WALLET_MISSING), be readable by its owner only
 * (WALLET_INVALID, as ssh does for keys), parse, and hold a key whose address and DID are the ones
 * recorded (WALLET_INVALID otherwise: a hand-edited or damaged file must not sign as someone else).
 * An encrypted wallet needs its passphrase: WALLET_LOCKED without one, WALLET_PASSPHRASE when it
 * does not open the key. A passphrase given for an unencrypted wallet is not needed, and ignored.
 */
export function loadWallet(path: string, passphrase?: string): LoadedWallet {
  const raw = readWalletFile(path);
  const { method, did, address } = raw;
  if (method !== "ethr" && method !== "key") throw walletError("WALLET_INVALID", `the wallet file ${path} names an unknown DID method`);
  let privateKey: unknown;
  if (raw.format === ENCRYPTED) {
    if (passphrase === undefined) {
      throw walletError("WALLET_LOCKED", `the wallet ${path} is encrypted: set CUSTODIA_WALLET_PASSPHRASE, or CUSTODIA_WALLET_PASSPHRASE_FILE to a file holding the passphrase`);
    }
    try {
      privateKey = decryptKey((raw as { keystore?: unknown }).keystore, passphrase);
    } catch (e) {
      if (!(e instanceof KeystoreError)) throw e;
      if (e.reason === "passphrase") throw walletError("WALLET_BAD_PASSPHRASE", `the passphrase does not open the wallet ${path} (or its keystore is damaged)`);
      throw walletError("WALLET_INVALID", `the wallet file ${path} holds no valid keystore: ${e.message}`);
    }
  } else {
    privateKey = (raw as { privateKey?: unknown }).privateKey;
  }
  if (typeof privateKey !== "string" || !/^0x[0-9a-fA-F]{64}$/.test(privateKey)) throw walletError("WALLET_INVALID", `the wallet file ${path} holds no valid private key`);
  let derived: Address;
  try {
    derived = computeAddress(privateKey) as Address;
  } catch {
    throw walletError("WALLET_INVALID", `the wallet file ${path} holds no valid secp256k1 private key`);
  }
  if (typeof address !== "string" || address.toLowerCase() !== derived.toLowerCase()) throw walletError("WALLET_INVALID", `the wallet file ${path} records an address that is not its key's`);
  if (typeof did !== "string") throw walletError("WALLET_INVALID", `the wallet file ${path} records no DID`);
  const expected = method === "key" ? didKeyOf(privateKey) : (() => {
    const chainId = didEthrChainId(did);
    return chainId === undefined ? undefined : ethrDid(chainId, derived);
  })();
  if (did !== expected) throw walletError("WALLET_INVALID", `the wallet file ${path} records a DID that does not belong to its key`);
  return { privateKey: privateKey.toLowerCase() as `0x${string}`, address: derived, did, method };
}

/**
 * Encrypts an unencrypted wallet in place under `passphrase` (atomically: the file is either the
 * old one or the new one). The key is checked first, as loadWallet checks it; INVALID_ARGUMENT
 * when the wallet is already encrypted.
 */
export function encryptWallet(path: string, passphrase: string, options: { scryptN?: number } = {}): LoadedWallet {
  const raw = readWalletFile(path);
  if (raw.format === ENCRYPTED) throw new CliError("INVALID_ARGUMENT", `the wallet ${path} is already encrypted`, EXIT.USAGE);
  const wallet = loadWallet(path);
  saveWallet(path, wallet, {
    force: true,
    passphrase,
    ...(typeof raw.chainId === "number" ? { chainId: raw.chainId } : {}),
    ...(typeof raw.createdAt === "string" ? { createdAt: raw.createdAt } : {}),
    ...(options.scryptN !== undefined ? { scryptN: options.scryptN } : {}),
  });
  return wallet;
}

/* ------------------------------------------------------------------ tokens */

/** Session tokens live four minutes (the gateway accepts at most 300 s) and are reused for reads. */
export const SESSION_TOKEN_SECONDS = 240;
/** Single-use tokens live a minute: they are spent on the request they were made for. */
export const ONCE_TOKEN_SECONDS = 60;

/**
 * A DID-JWT for the gateway whose DID is `audience`, signed here with the wallet's key.
 * `once: true` makes a single-use token for a state-changing call (fresh jti, short life);
 * otherwise a session token that may be presented to read endpoints until it expires.
 * did:ethr wallets sign ES256K-R (the key is recovered against the DID's account), did:key
 * wallets ES256K (the key is in the DID).
 */
export async function tokenFor(wallet: LoadedWallet, audience: string, options: { once: boolean; nowSec?: number }): Promise<string> {
  const iat = options.nowSec ?? Math.floor(Date.now() / 1000);
  const exp = iat + (options.once ? ONCE_TOKEN_SECONDS : SESSION_TOKEN_SECONDS);
  const recoverable = wallet.method === "ethr";
  return createJWT(
    { aud: audience, iat, exp, jti: randomUUID() },
    { issuer: wallet.did, signer: ES256KSigner(getBytes(wallet.privateKey), recoverable) },
    { alg: recoverable ? "ES256K-R" : "ES256K" },
  );
}

/** An ethers signer over the wallet's key, for EIP-712 signatures and (admin) transactions. */
export function signerOf(wallet: LoadedWallet): Wallet {
  return new Wallet(wallet.privateKey);
}
