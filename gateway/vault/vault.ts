/**
 * The operator's data vault: subjects' records in LevelDB, encrypted per subject, erasable by
 * crypto-shredding, with a salted data commitment per subject.
 *
 * Key hierarchy (node:crypto, AES-256-GCM everywhere, fresh random 12-byte IV per write):
 * - master key (32 bytes, from configuration) wraps each subject's random 32-byte data key;
 *   AAD = "custodia.vault/dek/v1|<subject>|<keyVersion>";
 * - from the data key, HKDF-SHA256 derives an encryption key and a record-id key. The
 *   encryption key encrypts every record of the subject, AAD = "custodia.vault/rec/v1|<subject>|
 *   <slot>", and the subject's state (commitment salt, records root, count), AAD =
 *   "custodia.vault/state/v1|<subject>". A record's slot is "p" for the profile and
 *   "t:" + base64url(HMAC-SHA256(record-id key, id))[0..22] for a transaction, so transaction
 *   ids never appear in plaintext keys, and the AAD binds kind and id (a ciphertext cannot be
 *   moved to another subject or record; after decryption the record's own kind/id must map to
 *   the slot it was read from);
 * - a key-check value encrypted under the master key lets `open` refuse a wrong master key.
 * `<subject>` is the lower-case hex address; blobs are [format=1][iv 12][tag 16][ciphertext]
 * (wrapped keys carry a key-version byte after the format byte).
 *
 * Layout under the given (sub)level: sublevels `dek` (wrapped data keys, by subject), `rec`
 * (record ciphertexts, key "<subject>:<slot>"), `state` (encrypted per-subject state), `tomb`
 * (erasure tombstones {erasedAt, commitment}: no personal data beyond the pseudonymous address)
 * and `meta` (format and key check). Every change is one atomic batch across them; writes are
 * serialised per Vault instance, reads use an explicit LevelDB snapshot.
 *
 * Commitment: SHA-256 over the RFC 8785 canonical JSON of {subject (EIP-55), salt (0x hex of 32
 * random bytes, kept encrypted in the subject's state, so erasure destroys it), recordsRoot
 * (0x hex RFC 9162 Merkle root over leafHash(canonical JSON of each full record) in (kind, id)
 * order — the profile first, then transactions by id in code-point order)}. The salt is made
 * once per subject; the commitment is recomputed on every ingest for that subject, so it
 * changes exactly when the subject's records change.
 *
 * Erasure deletes the wrapped data key, the state and every record ciphertext in one batch and
 * writes a tombstone; afterwards reads throw SUBJECT_ERASED and ingests for that subject are
 * refused with SUBJECT_ERASED (an erased subject must re-onboard under a fresh identity/DID:
 * silently re-creating data for an address whose erasure is recorded would undo the erasure).
 * On a classic-level database the memtable is flushed before the batch and the erased key
 * ranges are compacted after it, so the deleted wrapped key and ciphertexts leave LevelDB's
 * log and table files (best effort: copies made outside LevelDB — backups, filesystem
 * snapshots — are beyond it; against those, re-wrapping the live data keys under a new master
 * key and destroying the old one finishes the shredding. The key-version byte of wrapped keys
 * is reserved for that rotation, which is not implemented yet).
 *
 * Errors: INVALID_ARGUMENT (bad records, listing problems), INVALID_ADDRESS, NOT_FOUND (unknown
 * subject), SUBJECT_ERASED, DATA_TAMPERED (a ciphertext, wrapped key or state fails
 * authentication, records missing or added behind the vault's back, or a wrong master key),
 * INTERNAL (vault closed).
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createSecretKey,
  hkdfSync,
  randomBytes as nodeRandomBytes,
  type KeyObject,
} from "node:crypto";
import type { AbstractLevel, AbstractSnapshot, AbstractSublevel } from "abstract-level";
import { CustodiaError } from "../../core/errors.js";
import { canonicalBytes } from "../../core/jcs.js";
import { hashCanonical, toHex0x, bytesEqual, fromHex } from "../../core/hash.js";
import { leafHash, rootFromLeafHashes } from "../../core/merkle.js";
import type { Address, Bytes32 } from "../../core/domain.js";
import {
  DEFAULT_MAX_RECORDS,
  canonicalRecordBytes,
  parseAddress,
  recordKey,
  recordFields,
  validateRecords,
  type SubjectData,
  type VaultRecord,
} from "./records.js";

/* eslint-disable @typescript-eslint/no-explicit-any */
/** A Level database or sublevel (abstract-level 3); the vault keeps its data under it. */
export type VaultDb = AbstractLevel<any, any, any>;
type Bin = AbstractSublevel<VaultDb, any, string, Uint8Array>;
type Json<V> = AbstractSublevel<VaultDb, any, string, V>;
/* eslint-enable @typescript-eslint/no-explicit-any */

export interface VaultOptions {
  /** 32-byte master key wrapping the per-subject data keys. */
  masterKey: Uint8Array;
  /** Randomness for data keys, IVs and salts (default: node:crypto randomBytes). */
  randomBytes?: (n: number) => Uint8Array;
  /** Clock in unix seconds (default: Date.now). */
  now?: () => number;
  /** Max records per `ingest` call (default 100 000). */
  maxBatchRecords?: number;
  /** Compact erased key ranges when the database supports it (default true). */
  compactOnErase?: boolean;
}

export type SubjectStatus = "active" | "erased" | "unknown";

export interface IngestSummary {
  subjects: {
    subject: Address;
    /** Records now held for the subject (after merging). */
    records: number;
    /** Records of this batch that were new or changed. */
    changed: number;
    commitment: Bytes32;
  }[];
}

export interface CommitmentInfo {
  commitment: Bytes32;
  records: number;
  /** Unix seconds of the ingest that produced this commitment. */
  committedAt: number;
}

export interface ErasureReceipt {
  /** The commitment in force when the subject was erased; null when nothing was held. */
  commitment: Bytes32 | null;
  erasedAt: number;
}

interface Tombstone {
  erasedAt: number;
  commitment: Bytes32 | null;
}

/** Decrypted per-subject state. */
interface SubjectState {
  v: 1;
  salt: string;
  recordsRoot: Bytes32;
  commitment: Bytes32;
  records: number;
  committedAt: number;
}

const FORMAT = 1;
/** Version of the master key wrapping data keys; bound into the wrap AAD. */
export const KEY_VERSION = 1;
const IV = 12;
const TAG = 16;
const KEY = 32;
const KEYCHECK_PLAINTEXT = "custodia.vault keycheck";
const enc = new TextEncoder();
const dec = new TextDecoder("utf-8", { fatal: true });

/** The RFC 9162 root over the records' canonical JSON, in the vault's (kind, id) order. */
export function recordsRoot(records: readonly VaultRecord[]): Uint8Array {
  const keyed = records.map((r) => [recordKey(r), canonicalBytes(r)] as const);
  keyed.sort((a, b) => compareCodePoints(a[0], b[0]));
  return rootFromLeafHashes(keyed.map(([, bytes]) => leafHash(bytes)));
}

/** A stored record: its canonical JSON bytes and their Merkle leaf hash. */
interface Held {
  bytes: Uint8Array;
  leaf: Uint8Array;
  /** The parsed record, when it was read from storage. */
  record?: VaultRecord;
}

/** The keys derived from one subject's data key. */
interface SubjectKeys {
  enc: KeyObject;
  rid: KeyObject;
}

function deriveKeys(raw: Uint8Array): SubjectKeys {
  const derive = (info: string): KeyObject =>
    createSecretKey(Buffer.from(hkdfSync("sha256", raw, new Uint8Array(0), `custodia.vault/${info}/v1`, KEY)));
  return { enc: derive("enc"), rid: derive("rid") };
}

/** The storage slot of a record key ("p:" → "p", "t:<id>" → "t:<hmac>"). */
function slotOf(keys: SubjectKeys, rk: string): string {
  if (rk === "p:") return "p";
  return `t:${createHmac("sha256", keys.rid).update(rk.slice(2), "utf8").digest("base64url").slice(0, 22)}`;
}

/** The salted data commitment of a subject (see module doc). */
export function dataCommitment(subject: Address, salt: Uint8Array, root: Uint8Array): Bytes32 {
  return toHex0x(hashCanonical({ subject: parseAddress(subject), salt: toHex0x(salt), recordsRoot: toHex0x(root) }));
}

/** Orders strings by Unicode code point, which is also LevelDB's UTF-8 byte order. */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    let x = a.charCodeAt(i);
    let y = b.charCodeAt(i);
    if (x === y) continue;
    // map UTF-16 code units so that surrogates (supplementary planes) sort after U+E000–U+FFFF
    x = x >= 0xe000 ? x - 0x800 : x >= 0xd800 ? x + 0x2000 : x;
    y = y >= 0xe000 ? y - 0x800 : y >= 0xd800 ? y + 0x2000 : y;
    return x - y;
  }
  return a.length - b.length;
}

function tampered(what: string, details: Record<string, unknown> = {}, cause?: unknown): CustodiaError {
  return new CustodiaError("DATA_TAMPERED", `${what} failed authentication or integrity checks`, { what, ...details }, { cause });
}

class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.tail.then(fn);
    this.tail = p.catch(() => undefined);
    return p;
  }
}

export class Vault {
  private closed = false;
  private readonly lock = new Mutex();
  private ivPool: Uint8Array = new Uint8Array(0);
  private ivOffset = 0;

  private constructor(
    private readonly db: VaultDb,
    private readonly master: KeyObject,
    private readonly dek: Bin,
    private readonly rec: Bin,
    private readonly state: Bin,
    private readonly tomb: Json<Tombstone>,
    private readonly random: (n: number) => Uint8Array,
    private readonly now: () => number,
    private readonly maxBatch: number,
    private readonly compactOnErase: boolean,
  ) {}

  /**
   * Opens the vault stored under `db` (a Level database or sublevel; it is opened if needed and
   * never closed by the vault). Throws INVALID_ARGUMENT for a master key that is not 32 bytes
   * and DATA_TAMPERED (details.what = "master key") when the vault was created with another one.
   */
  static async open(db: VaultDb, opts: VaultOptions): Promise<Vault> {
    if (!(opts.masterKey instanceof Uint8Array) || opts.masterKey.length !== KEY) {
      throw new CustodiaError("INVALID_ARGUMENT", `masterKey must be ${KEY} bytes`);
    }
    const maxBatch = opts.maxBatchRecords ?? DEFAULT_MAX_RECORDS;
    if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) throw new CustodiaError("INVALID_ARGUMENT", "maxBatchRecords must be a positive integer");
    await db.open();
    const master = createSecretKey(Buffer.from(opts.masterKey));
    const bin = (name: string): Bin => db.sublevel<string, Uint8Array>(name, { keyEncoding: "utf8", valueEncoding: "view" }) as Bin;
    const meta = db.sublevel<string, { format: number; keyCheck: string }>("meta", { keyEncoding: "utf8", valueEncoding: "json" });
    const tomb = db.sublevel<string, Tombstone>("tomb", { keyEncoding: "utf8", valueEncoding: "json" }) as Json<Tombstone>;
    const random = opts.randomBytes ?? ((n: number) => new Uint8Array(nodeRandomBytes(n)));
    const vault = new Vault(
      db,
      master,
      bin("dek"),
      bin("rec"),
      bin("state"),
      tomb,
      random,
      opts.now ?? (() => Math.floor(Date.now() / 1000)),
      maxBatch,
      opts.compactOnErase ?? true,
    );
    const aad = enc.encode("custodia.vault/keycheck/v1");
    const existing = await meta.get("vault");
    if (existing === undefined) {
      const keyCheck = Buffer.from(vault.seal(master, enc.encode(KEYCHECK_PLAINTEXT), aad)).toString("base64");
      await meta.put("vault", { format: FORMAT, keyCheck });
    } else {
      if (existing.format !== FORMAT) throw new CustodiaError("INTERNAL", `unsupported vault format ${String(existing.format)}`);
      let ok = false;
      try {
        ok = dec.decode(vault.unseal(master, new Uint8Array(Buffer.from(existing.keyCheck, "base64")), aad, "master key")) === KEYCHECK_PLAINTEXT;
      } catch {
        ok = false;
      }
      if (!ok) throw tampered("master key", { reason: "master_key_mismatch" });
    }
    return vault;
  }

  /**
   * Validates and stores records (all or nothing, one atomic batch), merging them into each
   * subject's existing records: a record replaces the stored one with the same (kind, id) — a
   * profile replaces the whole stored profile. Recomputes each touched subject's commitment.
   * Throws INVALID_ARGUMENT (problems listed by index), SUBJECT_ERASED (details.subjects: the
   * erased ones; nothing stored), DATA_TAMPERED (existing data of a subject fails checks).
   */
  async ingest(records: readonly VaultRecord[]): Promise<IngestSummary> {
    this.assertOpen();
    const valid = validateRecords(records, { maxRecords: this.maxBatch });
    const bySubject = new Map<string, { subject: Address; records: VaultRecord[] }>();
    for (const r of valid) {
      const k = r.subject.toLowerCase();
      let g = bySubject.get(k);
      if (g === undefined) bySubject.set(k, (g = { subject: r.subject, records: [] }));
      g.records.push(r);
    }
    const keys = [...bySubject.keys()].sort();
    return this.lock.run(async () => {
      this.assertOpen();
      if (keys.length === 0) return { subjects: [] };
      const tombs = await this.tomb.getMany(keys);
      const erased = keys.filter((_, i) => tombs[i] !== undefined);
      if (erased.length > 0) {
        throw new CustodiaError("SUBJECT_ERASED", `${erased.length} subject(s) of the batch were erased; nothing was stored`, {
          subjects: erased.slice(0, 20).map((k) => bySubject.get(k)!.subject),
          count: erased.length,
        });
      }
      const [wrapped, states] = await Promise.all([this.dek.getMany(keys), this.state.getMany(keys)]);
      const ops: BatchOp[] = [];
      const summary: IngestSummary["subjects"] = [];
      const now = this.now();
      for (let s = 0; s < keys.length; s++) {
        const k = keys[s]!;
        const group = bySubject.get(k)!;
        const w = wrapped[s];
        let keysOf: SubjectKeys;
        let salt: Uint8Array;
        let current: Map<string, Held>;
        let prior: SubjectState | undefined;
        if (w === undefined) {
          const raw = Uint8Array.from(this.random(KEY));
          if (raw.length !== KEY) throw new CustodiaError("INTERNAL", "randomBytes returned the wrong length");
          keysOf = deriveKeys(raw);
          ops.push({ type: "put", sublevel: this.dek, key: k, value: this.wrap(k, raw) });
          raw.fill(0);
          salt = Uint8Array.from(this.random(KEY));
          current = new Map();
        } else {
          keysOf = this.unwrap(k, w);
          prior = this.openState(k, keysOf, states[s]);
          salt = fromHex(prior.salt, KEY);
          current = await this.loadRecords(k, keysOf, prior);
        }
        let changed = 0;
        for (const r of group.records) {
          const rk = recordKey(r);
          const bytes = canonicalRecordBytes(r);
          const old = current.get(rk);
          if (old !== undefined && bytesEqual(old.bytes, bytes)) continue;
          current.set(rk, { bytes, leaf: leafHash(bytes) });
          changed++;
          const slot = slotOf(keysOf, rk);
          ops.push({ type: "put", sublevel: this.rec, key: `${k}:${slot}`, value: this.seal(keysOf.enc, bytes, recAad(k, slot)) });
        }
        const root = rootOf(current);
        const commitment = dataCommitment(group.subject, salt, root);
        if (prior === undefined || changed > 0) {
          const st: SubjectState = {
            v: 1,
            salt: Buffer.from(salt).toString("hex"),
            recordsRoot: toHex0x(root),
            commitment,
            records: current.size,
            committedAt: now,
          };
          ops.push({ type: "put", sublevel: this.state, key: k, value: this.seal(keysOf.enc, canonicalBytes(st), stateAad(k)) });
        }
        summary.push({ subject: group.subject, records: current.size, changed, commitment });
      }
      if (ops.length > 0) await this.db.batch(ops as never);
      return { subjects: summary };
    });
  }

  /**
   * Decrypts everything held about `subject`. Throws INVALID_ADDRESS, SUBJECT_ERASED
   * (details.erasedAt), NOT_FOUND, DATA_TAMPERED.
   */
  async read(subject: string): Promise<SubjectData> {
    this.assertOpen();
    const address = parseAddress(subject);
    const k = address.toLowerCase();
    return this.consistentRead(async (snapshot) => {
      const opt = { snapshot };
      const tomb = await this.tomb.get(k, opt);
      if (tomb !== undefined) throw erasedError(address, tomb);
      const w = await this.dek.get(k, opt);
      if (w === undefined) throw new CustodiaError("NOT_FOUND", "no data is held for this subject", { subject: address });
      const keysOf = this.unwrap(k, w);
      const st = this.openState(k, keysOf, await this.state.get(k, opt));
      const records = await this.loadRecords(k, keysOf, st, snapshot);
      const data: SubjectData = { subject: address, profile: null, transactions: [] };
      const rks = [...records.keys()].sort(compareCodePoints);
      for (const rk of rks) {
        const held = records.get(rk)!;
        const r = held.record ?? (JSON.parse(dec.decode(held.bytes)) as VaultRecord);
        if (r.kind === "profile") data.profile = recordFields(r);
        else data.transactions.push(recordFields(r));
      }
      return data;
    });
  }

  /**
   * Crypto-shreds a subject: deletes the wrapped data key, the state (with the commitment salt)
   * and every record ciphertext, and leaves a tombstone {erasedAt, commitment}, in one atomic
   * batch. Idempotent: erasing again returns the first receipt. An unknown subject gets a
   * tombstone with commitment null (so later ingests for it are refused). If the subject's state
   * cannot be decrypted the erasure still happens, with commitment null.
   */
  async erase(subject: string): Promise<ErasureReceipt> {
    this.assertOpen();
    const address = parseAddress(subject);
    const k = address.toLowerCase();
    return this.lock.run(async () => {
      this.assertOpen();
      const existing = await this.tomb.get(k);
      if (existing !== undefined) return { commitment: existing.commitment, erasedAt: existing.erasedAt };
      const [w, stBlob] = await Promise.all([this.dek.get(k), this.state.get(k)]);
      let commitment: Bytes32 | null = null;
      if (w !== undefined) {
        try {
          commitment = this.openState(k, this.unwrap(k, w), stBlob).commitment;
        } catch {
          commitment = null;
        }
      }
      const ops: BatchOp[] = [
        { type: "del", sublevel: this.dek, key: k },
        { type: "del", sublevel: this.state, key: k },
      ];
      for await (const rk of this.rec.keys(recRange(k))) ops.push({ type: "del", sublevel: this.rec, key: rk });
      const erasedAt = this.now();
      const tomb: Tombstone = { erasedAt, commitment };
      ops.push({ type: "put", sublevel: this.tomb, key: k, value: tomb });
      const compact = this.compactOnErase && w !== undefined;
      // Flush first, so the deletions land in a newer table than the data and the compaction
      // after the batch can merge them away (LevelDB leaves a bottom-level table holding both
      // a value and its deletion untouched).
      if (compact) await this.compact(k, true);
      await this.db.batch(ops as never);
      if (compact) await this.compact(k, false);
      return { commitment, erasedAt };
    });
  }

  /** "active" (data held), "erased" (tombstone) or "unknown". Throws INVALID_ADDRESS. */
  async status(subject: string): Promise<SubjectStatus> {
    this.assertOpen();
    const k = parseAddress(subject).toLowerCase();
    if ((await this.tomb.get(k)) !== undefined) return "erased";
    return (await this.dek.get(k)) !== undefined ? "active" : "unknown";
  }

  /** Active subjects (EIP-55), in ascending address order. */
  async *subjects(): AsyncIterable<Address> {
    this.assertOpen();
    for await (const k of this.dek.keys()) yield parseAddress(k);
  }

  /**
   * The current commitment of an active subject (the salt stays inside the vault), null for an
   * unknown subject. Throws SUBJECT_ERASED (details carry the tombstone) and DATA_TAMPERED.
   */
  async commitment(subject: string): Promise<CommitmentInfo | null> {
    this.assertOpen();
    const address = parseAddress(subject);
    const k = address.toLowerCase();
    return this.consistentRead(async (snapshot) => {
      const opt = { snapshot };
      const tomb = await this.tomb.get(k, opt);
      if (tomb !== undefined) throw erasedError(address, tomb);
      const w = await this.dek.get(k, opt);
      if (w === undefined) return null;
      const st = this.openState(k, this.unwrap(k, w), await this.state.get(k, opt));
      return { commitment: st.commitment, records: st.records, committedAt: st.committedAt };
    });
  }

  /** Waits for pending writes and refuses further calls. Does not close the database. */
  async close(): Promise<void> {
    if (this.closed) return;
    await this.lock.run(async () => {
      this.closed = true;
    });
  }

  /* ------------------------------------------------------------ internals */

  private assertOpen(): void {
    if (this.closed) throw new CustodiaError("INTERNAL", "the vault is closed");
  }

  /** Runs reads against one explicit snapshot when supported, else under the write lock. */
  private async consistentRead<T>(fn: (snapshot: AbstractSnapshot | undefined) => Promise<T>): Promise<T> {
    if (this.db.supports.explicitSnapshots) {
      const snapshot = this.db.snapshot();
      try {
        return await fn(snapshot);
      } finally {
        await snapshot.close();
      }
    }
    return this.lock.run(() => fn(undefined));
  }

  /** Decrypts all records of a subject, checking them against the state's root and count. */
  /**
   * Decrypts all records of a subject, keyed by record key ("p:" / "t:<id>"), checking each
   * against its slot and subject, and the set against the state's root and count.
   */
  private async loadRecords(k: string, keysOf: SubjectKeys, st: SubjectState, snapshot?: AbstractSnapshot): Promise<Map<string, Held>> {
    const out = new Map<string, Held>();
    const entries = await this.rec.iterator({ ...recRange(k), snapshot }).all();
    const prefix = k.length + 1;
    for (const [key, blob] of entries) {
      const slot = key.slice(prefix);
      const bytes = this.unseal(keysOf.enc, blob, recAad(k, slot), "record");
      let record: VaultRecord;
      try {
        record = JSON.parse(dec.decode(bytes)) as VaultRecord;
        if (typeof record.subject !== "string" || record.subject.toLowerCase() !== k) throw new Error("subject mismatch");
      } catch (e) {
        throw tampered("record", { reason: "malformed" }, e);
      }
      const rk = recordKey(record);
      if (slotOf(keysOf, rk) !== slot) throw tampered("record", { reason: "record_mismatch" });
      out.set(rk, { bytes, leaf: leafHash(bytes), record });
    }
    if (out.size !== st.records || toHex0x(rootOf(out)) !== st.recordsRoot) {
      throw tampered("records", { reason: "records_root_mismatch" });
    }
    return out;
  }

  private wrap(k: string, raw: Uint8Array): Uint8Array {
    const sealed = this.seal(this.master, raw, dekAad(k, KEY_VERSION));
    const out = new Uint8Array(sealed.length + 1);
    out[0] = sealed[0]!;
    out[1] = KEY_VERSION;
    out.set(sealed.subarray(1), 2);
    return out;
  }

  private unwrap(k: string, blob: Uint8Array): SubjectKeys {
    if (blob.length !== 2 + IV + TAG + KEY || blob[0] !== FORMAT) throw tampered("data key", { reason: "malformed" });
    const version = blob[1]!;
    const sealed = new Uint8Array(blob.length - 1);
    sealed[0] = FORMAT;
    sealed.set(blob.subarray(2), 1);
    const raw = this.unseal(this.master, sealed, dekAad(k, version), "data key");
    if (version !== KEY_VERSION) throw tampered("data key", { reason: "unknown_key_version", version });
    const keys = deriveKeys(raw);
    raw.fill(0);
    return keys;
  }

  private openState(k: string, keysOf: SubjectKeys, blob: Uint8Array | undefined): SubjectState {
    if (blob === undefined) throw tampered("state", { reason: "missing" });
    const bytes = this.unseal(keysOf.enc, blob, stateAad(k), "state");
    try {
      const st = JSON.parse(dec.decode(bytes)) as SubjectState;
      if (st.v !== 1) throw new Error("unknown state version");
      return st;
    } catch (e) {
      throw tampered("state", { reason: "malformed" }, e);
    }
  }

  /** A fresh random IV, cut from a pooled buffer (one randomBytes call per 256 IVs). */
  private nextIv(): Uint8Array {
    if (this.ivOffset + IV > this.ivPool.length) {
      const pool = this.random(IV * 256);
      if (pool.length !== IV * 256) throw new CustodiaError("INTERNAL", "randomBytes returned the wrong length");
      this.ivPool = pool;
      this.ivOffset = 0;
    }
    const iv = this.ivPool.subarray(this.ivOffset, this.ivOffset + IV);
    this.ivOffset += IV;
    return iv;
  }

  private seal(key: KeyObject, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
    const iv = this.nextIv();
    const cipher = createCipheriv("aes-256-gcm", key, iv);
    cipher.setAAD(aad);
    const ct1 = cipher.update(plaintext);
    const ct2 = cipher.final();
    const tag = cipher.getAuthTag();
    const out = new Uint8Array(1 + IV + TAG + ct1.length + ct2.length);
    out[0] = FORMAT;
    out.set(iv, 1);
    out.set(tag, 1 + IV);
    out.set(ct1, 1 + IV + TAG);
    out.set(ct2, 1 + IV + TAG + ct1.length);
    return out;
  }

  private unseal(key: KeyObject, blob: Uint8Array, aad: Uint8Array, what: string): Uint8Array {
    if (blob.length < 1 + IV + TAG || blob[0] !== FORMAT) throw tampered(what, { reason: "malformed" });
    try {
      const decipher = createDecipheriv("aes-256-gcm", key, blob.subarray(1, 1 + IV), { authTagLength: TAG });
      decipher.setAAD(aad);
      decipher.setAuthTag(blob.subarray(1 + IV, 1 + IV + TAG));
      const a = decipher.update(blob.subarray(1 + IV + TAG));
      const b = decipher.final();
      return b.length === 0 ? new Uint8Array(a.buffer, a.byteOffset, a.length) : new Uint8Array(Buffer.concat([a, b]));
    } catch (e) {
      throw tampered(what, { reason: "authentication_failed" }, e);
    }
  }

  /**
   * Best effort: compact the subject's key ranges (classic-level only) so that erased values
   * leave LevelDB's files; `flushOnly` just flushes the memtable (any range call does).
   */
  private async compact(k: string, flushOnly: boolean): Promise<void> {
    const root = ("db" in this.db ? (this.db as unknown as { db: VaultDb }).db : this.db) as VaultDb & {
      compactRange?: (start: string, end: string, opts: { keyEncoding: string }) => Promise<void>;
    };
    if (typeof root.compactRange !== "function") return;
    const ranges: [Bin, string, string][] = [
      [this.dek, k, `${k}\u0000`],
      [this.state, k, `${k}\u0000`],
      [this.rec, `${k}:`, `${k};`],
    ];
    try {
      for (const [sub, start, end] of flushOnly ? ranges.slice(0, 1) : ranges) {
        await root.compactRange(sub.prefixKey(start, "utf8"), sub.prefixKey(end, "utf8"), { keyEncoding: "utf8" });
      }
    } catch {
      // compaction is an optimisation of erasure, never a reason to report it failed
    }
  }
}

type BatchOp =
  | { type: "put"; sublevel: Bin | Json<Tombstone>; key: string; value: Uint8Array | Tombstone }
  | { type: "del"; sublevel: Bin | Json<Tombstone>; key: string };

function recRange(k: string): { gt: string; lt: string } {
  return { gt: `${k}:`, lt: `${k};` };
}

function rootOf(records: Map<string, Held>): Uint8Array {
  const keys = [...records.keys()].sort(compareCodePoints);
  return rootFromLeafHashes(keys.map((rk) => records.get(rk)!.leaf));
}

function dekAad(k: string, version: number): Uint8Array {
  return enc.encode(`custodia.vault/dek/v1|${k}|${version}`);
}

function stateAad(k: string): Uint8Array {
  return enc.encode(`custodia.vault/state/v1|${k}`);
}

function recAad(k: string, slot: string): Uint8Array {
  return enc.encode(`custodia.vault/rec/v1|${k}|${slot}`);
}

function erasedError(subject: Address, tomb: Tombstone): CustodiaError {
  return new CustodiaError("SUBJECT_ERASED", "the subject's data was erased", {
    subject,
    erasedAt: tomb.erasedAt,
    commitment: tomb.commitment,
  });
}
