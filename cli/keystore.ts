/**
 * A private key encrypted under a passphrase, in the Web3 Secret Storage format (version 3, the
 * "keystore" JSON of geth and ethers): scrypt derives 32 bytes from the passphrase, the first 16
 * key AES-128-CTR over the private key, and the MAC is keccak256(last 16 || ciphertext), which
 * tells a wrong passphrase from a right one before anything is decrypted. Written here with Node's
 * native scrypt (ethers' is JavaScript, ~10x slower at the standard cost), and readable by ethers'
 * `Wallet.fromEncryptedJson` and any other implementation of the format. Passphrases are NFKC-
 * normalised as ethers does; geth takes the raw bytes, so a passphrase that normalisation changes
 * (a decomposed accent, a full-width letter) opens such a file in ethers but not in geth.
 */
import { createCipheriv, createDecipheriv, randomBytes, randomUUID, scryptSync, timingSafeEqual } from "node:crypto";
import { computeAddress, getBytes, keccak256 } from "ethers";

/** scrypt's cost: ethers' default (2^17, r 8, p 1), ~0.4 s and 128 MiB per unlock here. */
export const STANDARD_SCRYPT_N = 131_072;

/**
 * The most a file may make us spend: scrypt's memory (128·n·r bytes) and work (n·r·p) at geth's
 * standard cost (n 2^18, r 8, p 1: 256 MiB). A file asking for more could make the tool hang or
 * run out of memory; it is refused as malformed before anything is derived.
 */
const MAX_SCRYPT_MEMORY = 256 * 1024 * 1024;
const MAX_SCRYPT_WORK = 2 ** 21;

export interface Keystore {
  version: 3;
  id: string;
  /** The key's address: lowercase hex without 0x, as the format has it. */
  address: string;
  crypto: {
    cipher: "aes-128-ctr";
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: "scrypt";
    kdfparams: { dklen: 32; n: number; r: number; p: number; salt: string };
    mac: string;
  };
}

/** Why a keystore could not be opened: not one (`malformed`), or not with this passphrase (`passphrase`). */
export class KeystoreError extends Error {
  constructor(
    readonly reason: "malformed" | "passphrase",
    message: string,
  ) {
    super(message);
  }
}

/** Passphrases are compared as Unicode text (NFKC), as ethers does, so a composed and a decomposed é are one passphrase. */
function passphraseBytes(passphrase: string): Buffer {
  return Buffer.from(passphrase.normalize("NFKC"), "utf8");
}

function derive(passphrase: string, salt: Uint8Array, n: number, r: number, p: number): Buffer {
  // scrypt needs 128·n·r bytes; Node's default ceiling (32 MiB) is below the standard cost
  return scryptSync(passphraseBytes(passphrase), salt, 32, { N: n, r, p, maxmem: 256 * n * r + (1 << 20) });
}

function macOf(key: Buffer, ciphertext: Uint8Array): string {
  return keccak256(Buffer.concat([key.subarray(16, 32), ciphertext])).slice(2);
}

/** Encrypts a 32-byte private key (0x hex). `n` is scrypt's cost, STANDARD_SCRYPT_N unless a test asks for less. */
export function encryptKey(privateKey: string, passphrase: string, options: { n?: number } = {}): Keystore {
  const n = options.n ?? STANDARD_SCRYPT_N;
  const r = 8;
  const p = 1;
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const key = derive(passphrase, salt, n, r, p);
  const cipher = createCipheriv("aes-128-ctr", key.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(getBytes(privateKey)), cipher.final()]);
  return {
    version: 3,
    id: randomUUID(),
    address: computeAddress(privateKey).slice(2).toLowerCase(),
    crypto: {
      cipher: "aes-128-ctr",
      cipherparams: { iv: iv.toString("hex") },
      ciphertext: ciphertext.toString("hex"),
      kdf: "scrypt",
      kdfparams: { dklen: 32, n, r, p, salt: salt.toString("hex") },
      mac: macOf(key, ciphertext),
    },
  };
}

const HEX = /^(0x)?([0-9a-fA-F]{2})*$/;

function hexField(value: unknown, what: string, bytes?: number): Buffer {
  if (typeof value !== "string" || !HEX.test(value)) throw new KeystoreError("malformed", `${what} is not hex`);
  const out = Buffer.from(value.replace(/^0x/, ""), "hex");
  if (bytes !== undefined && out.length !== bytes) throw new KeystoreError("malformed", `${what} is not ${bytes} bytes`);
  return out;
}

function intField(value: unknown, what: string, min: number, max: number): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    throw new KeystoreError("malformed", `${what} must be an integer from ${min} to ${max}`);
  }
  return value;
}

/**
 * The private key (0x hex, lowercase) of a version-3 scrypt keystore. KeystoreError "malformed"
 * for anything that is not one (including kdf parameters beyond what a wallet needs), and
 * "passphrase" when the MAC does not match: a wrong passphrase, or a damaged file.
 */
export function decryptKey(keystore: unknown, passphrase: string): `0x${string}` {
  const ks = keystore as (Partial<Keystore> & { Crypto?: unknown }) | null;
  // "Crypto" is how ethers (and some older tools) spell the section; the format reads either
  const section = ks !== null && typeof ks === "object" ? (ks.crypto ?? ks.Crypto) : undefined;
  if (ks === null || typeof ks !== "object" || ks.version !== 3 || typeof section !== "object" || section === null) {
    throw new KeystoreError("malformed", "not a version-3 keystore");
  }
  const c = section as Partial<Keystore["crypto"]>;
  if (c.kdf !== "scrypt") throw new KeystoreError("malformed", "only scrypt keystores are supported");
  if (c.cipher !== "aes-128-ctr") throw new KeystoreError("malformed", "only aes-128-ctr keystores are supported");
  const kp = (c.kdfparams ?? {}) as Partial<Keystore["crypto"]["kdfparams"]>;
  if (kp.dklen !== 32) throw new KeystoreError("malformed", "the derived key must be 32 bytes");
  const n = intField(kp.n, "scrypt n", 2, 2 ** 30);
  if ((n & (n - 1)) !== 0) throw new KeystoreError("malformed", "scrypt n must be a power of two");
  const r = intField(kp.r, "scrypt r", 1, 1024);
  const p = intField(kp.p, "scrypt p", 1, 1024);
  if (128 * n * r > MAX_SCRYPT_MEMORY || n * r * p > MAX_SCRYPT_WORK) {
    throw new KeystoreError("malformed", "the keystore asks for a costlier scrypt than a wallet needs (at most 256 MiB, geth's standard)");
  }
  const salt = hexField(kp.salt, "the salt");
  if (salt.length < 16 || salt.length > 64) throw new KeystoreError("malformed", "the salt must be 16 to 64 bytes");
  const iv = hexField(c.cipherparams?.iv, "the iv", 16);
  const ciphertext = hexField(c.ciphertext, "the ciphertext", 32);
  const mac = hexField(c.mac, "the mac", 32);
  const recorded = ks.address === undefined ? undefined : hexField(ks.address, "the address", 20).toString("hex");
  let key: Buffer;
  try {
    key = derive(passphrase, salt, n, r, p);
  } catch (e) {
    // parameters scrypt itself refuses (e.g. n ≥ 2^(16·r)): the file's fault, not ours
    throw new KeystoreError("malformed", `scrypt refuses these parameters: ${(e as Error).message}`);
  }
  if (!timingSafeEqual(Buffer.from(macOf(key, ciphertext), "hex"), mac)) {
    throw new KeystoreError("passphrase", "the passphrase does not open this key (or the file is damaged)");
  }
  const decipher = createDecipheriv("aes-128-ctr", key.subarray(0, 16), iv);
  const plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  const privateKey = `0x${plain.toString("hex")}` as const;
  // as ethers does: a keystore naming another account than its key's is not one to sign with
  if (recorded !== undefined && computeAddress(privateKey).slice(2).toLowerCase() !== recorded) {
    throw new KeystoreError("malformed", "the keystore's address is not its key's");
  }
  return privateKey;
}
