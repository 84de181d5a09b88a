/**
 * A durable, append-only RFC 9162 log in LevelDB with group commit.
 *
 * Storage (all keys utf8 strings inside the database handle the caller passes; see ./kv.ts):
 *   `<name>/b/<index of its first entry, 16-digit zero-padded decimal>` -> one group commit's
 *        entries, in index order (the batch record; format below)
 *   `<name>/_meta` -> JSON {v: 2, logId, size, root} (utf8 bytes): the log's id, and its size and
 *        root when the record was written — when the log was created, or when a log of the
 *        earlier layout was taken over (the base). It is not rewritten by appends, and it sorts
 *        before every batch key (see below). Logs of the earlier layout keep theirs, v1, under
 *        `<name>/meta`; opening one moves it to `<name>/_meta` as v2.
 * Batch record: a format byte (2), the root of the log right after this record (32 bytes: the
 * MTH of entries [0, first index + entries in it)), then per entry: the tag's length (1 byte) and
 * the tag (ASCII), the entry's length (4 bytes, big-endian) and its RFC 8785 canonical JSON bytes.
 * Format 1 is the same without the root. One record per group commit, not one per entry:
 * LevelDB's per-operation cost (the native batch's conversion, its memtable insert, compaction)
 * was the largest single part of an append.
 *
 * Why the root travels in the record and not in a meta record rewritten by every append (the
 * layout until stop 16, meta v1): a key rewritten by every write lands in every table file
 * LevelDB writes, so every file's key range overlapped every other's, and compaction merged and
 * rewrote the whole log at each level. Batch keys only grow, and the meta sorts before them (a
 * key after them would stretch the range of the file holding it over every later file); with
 * nothing else in the store (the gateway gives each log a LevelDB of its own) compaction only
 * moves the files down.
 *
 * Opening a log re-hashes every entry, checks the base (the root at the meta's size) and the
 * root stored in the last record. What this cannot catch locally: the newest records deleted
 * whole — nothing in the store records the length any more. The anchors do: a log shorter than
 * its last anchor raises the anchorer's alarm (reason "ledger_ahead_of_log") and the gateway
 * refuses to start on it. A cut within the un-anchored tail only a receipt (it names its tree
 * size) can show.
 * Values are written and read with `valueEncoding: "view"` per operation, so the handle may be a
 * `Level`, or `level.sublevel(x, { valueEncoding: "view" | "buffer" | "json" })`; several logs may
 * share one handle under different names. Leaf hashes are not stored in it: they are recomputed
 * from the entry bytes on open, which is also the integrity check of the log. With `leafFile` they
 * are written to that file as they are recomputed (a cache beside the store, never read across
 * restarts), and the tree keeps only its larger subtrees in memory. Logs written by earlier
 * versions (one record per entry, `<name>/e/<index>`) are rewritten into batch records on open.
 *
 * Tags: an append may carry a tag (the gateway's: the subject an entry is about). Tags are stored
 * in the entry's batch record — written with it or not at all — and indexed in memory (each tag's
 * newest `maxTagged` entries), so a subject's own history is listed without a scan and without a
 * second record per entry. A tag is
 * not part of the entry, nor of its leaf hash: readers check the entry itself.
 *
 * Group commit: `append` canonicalises and hashes the entry at once and queues it. One writer
 * takes up to `maxBatch` queued entries and writes their batch record, which names the root of
 * the log after it, in ONE `batch(..., { sync })`. Indexes are assigned in commit
 * order; a caller's promise resolves only after its batch is on disk (fsync'd when `sync`, the
 * default). While a batch is being written, new appends accumulate for the next one; as soon as a
 * write completes, the next one is started before the callers of the completed one are resolved.
 * A failed write rejects exactly its callers and rolls the in-memory tree back: nothing is
 * assigned, and the indexes are reused by the next batch, whose record has the same key and so
 * replaces whatever the failed one left (should LevelDB have applied a batch it reported failed).
 *
 * Everything readable — size, roots, proofs, entries, tags — is bounded by the durable size.
 */
import type { Bytes32 } from "../../core/domain.js";
import { CustodiaError } from "../../core/errors.js";
import { canonicalize } from "../../core/jcs.js";
import { bytesEqual, fromHex, toHex0x } from "../../core/hash.js";
import { MerkleTree, leafHash, leafOfText } from "../../core/merkle.js";
import { FileLeafStore } from "./leaf-file.js";
import { GET_OPTIONS, batchWriter, bytesToJson, jsonToBytes, pad16, readRange, type BatchOp, type BatchWriter, type KvOp, type KvStore } from "./kv.js";

export interface AppendReceipt {
  logId: Bytes32;
  /** Position of the entry in the log (0-based). */
  index: number;
  /** RFC 9162 leaf hash of the entry's canonical JSON bytes, 0x hex. */
  leafHash: Bytes32;
  /** Durable size of the log right after the batch holding this entry was written. */
  treeSize: number;
}

export interface LogEntry {
  index: number;
  entry: unknown;
  leafHash: Bytes32;
}

export interface DurableLogOptions {
  /** 32-byte id of the log (the id anchored on the ledger), 0x hex. Bound to the storage on first open. */
  logId: Bytes32;
  /** Key namespace of this log inside the handle: [A-Za-z0-9_.-]{1,64}. */
  name: string;
  /** Most entries per batch write. Default 4096. */
  maxBatch?: number;
  /**
   * How long the first entry of an idle log may wait for company before a write starts, ms.
   * Default 0: the write starts on the next turn of the event loop; entries that arrive while it
   * is running form the next batch (the usual group-commit dynamics).
   */
  maxDelayMs?: number;
  /** fsync each batch (classic-level `sync`). Default true. */
  sync?: boolean;
  /** Largest canonical entry accepted, bytes. Default 1 MiB. */
  maxEntryBytes?: number;
  /**
   * The tag of an entry written by a version that stored no tags (one record per entry): applied
   * once, when open() rewrites such entries into batch records. Default: no tag.
   */
  legacyTag?: (entry: unknown) => string | undefined;
  /**
   * A file for the log's leaf hashes (32 bytes an entry; emptied and rebuilt on every open, never
   * fsync'd). With it the tree keeps in memory only its subtrees of 2^pruneBelow leaves and more —
   * about 1 byte an entry at the default 6, instead of 64 — and hashes smaller ones again from the
   * file when a proof needs them. Without it (the default) the whole tree is in memory.
   */
  leafFile?: string;
  /** With `leafFile`: the smallest subtree kept in memory, as a power of two. Default 6 (64 leaves). */
  pruneBelow?: number;
  /** With `leafFile`: leaf hashes buffered per write to it. Default 2,048 (64 KiB). */
  leafFileBuffer?: number;
  /**
   * How many of each tag's newest entries the in-memory index keeps (and `tagged` lists at most).
   * Default 1,000, the most the gateway lists of a subject's history: the index stays bounded by
   * the number of tags, not by the length of the log.
   */
  maxTagged?: number;
}

export interface OpenReport {
  /** Durable size found on open. */
  size: number;
  /** Entries found beyond the recorded size and deleted on open. */
  truncated: number;
  /** Whether the log was created by this open. */
  created: boolean;
}

export interface DurableLogStats {
  size: number;
  appends: number;
  /** Successful batch writes. */
  batches: number;
  failedBatches: number;
  /** Entries in the largest batch written. */
  maxBatchSize: number;
  /** Entries queued or being written. */
  pending: number;
}

interface Pending {
  bytes: Uint8Array;
  leaf: Uint8Array;
  tag: string;
  resolve: (r: AppendReceipt) => void;
  reject: (e: unknown) => void;
}

interface Meta {
  /** 1: size and root rewritten with every batch (until stop 16); 2: the base, written once. */
  v: 1 | 2;
  logId: string;
  size: number;
  root: string;
}

/** A decoded batch record: the root of the log after it (format 2; null in format 1), its entries. */
export interface StoredRecord {
  root: Uint8Array | null;
  entries: StoredEntry[];
}

/** One entry of a batch record: its tag ("" for none) and its canonical JSON bytes. */
export interface StoredEntry {
  tag: string;
  bytes: Uint8Array;
}

const NAME_RE = /^[A-Za-z0-9_.-]{1,64}$/;
const BYTES32_RE = /^0x[0-9a-fA-F]{64}$/;
const INDEX_RE = /^\d{16}$/;
/** Printable ASCII without space, at most 255 characters (its length takes one byte). */
const TAG_RE = /^[\x21-\x7e]{0,255}$/;
const DEFAULT_MAX_BATCH = 4096;
const DEFAULT_MAX_ENTRY = 1 << 20;
const MAX_RANGE = 10_000;
/** Batch records read at once by getEntriesAt. */
const READ_PARALLEL = 16;
/** Batch record formats: 1 without the root, 2 with the root of the log after the record. */
const RECORD_FORMAT_1 = 1;
const RECORD_FORMAT_2 = 2;
/** Entries per batch record when open() rewrites a log of one record per entry. */
const MIGRATE_CHUNK = 1000;

/** The key of the batch record whose first entry is `start`. */
export function batchKey(name: string, start: number): string {
  return `${name}/b/${pad16(start)}`;
}

/**
 * A batch record's bytes (see the module comment): format 2 when given the root of the log after
 * the record, format 1 without. Tags must match [\x21-\x7e]{0,255}.
 */
export function encodeBatchRecord(entries: ReadonlyArray<StoredEntry>, root?: Uint8Array): Uint8Array {
  const head = root === undefined ? 1 : 33;
  let n = head;
  for (const e of entries) n += 5 + e.tag.length + e.bytes.length;
  const out = Buffer.allocUnsafe(n);
  if (root === undefined) {
    out[0] = RECORD_FORMAT_1;
  } else {
    if (root.length !== 32) throw new CustodiaError("INVALID_ARGUMENT", "a batch record's root is 32 bytes", { reason: "invalid_root" });
    out[0] = RECORD_FORMAT_2;
    out.set(root, 1);
  }
  let at = head;
  for (const e of entries) {
    out[at] = e.tag.length;
    at += 1 + out.write(e.tag, at + 1, "latin1");
    out.writeUInt32BE(e.bytes.length, at);
    out.set(e.bytes, at + 4);
    at += 4 + e.bytes.length;
  }
  return new Uint8Array(out.buffer, out.byteOffset, n);
}

/** The entries of a batch record (either format); null when the bytes are not one (unknown format, truncated). */
export function decodeBatchRecord(record: Uint8Array): StoredEntry[] | null {
  return decodeRecord(record)?.entries ?? null;
}

/** A batch record's root (format 2; null in format 1) and entries; null when the bytes are not a record. */
export function decodeRecord(record: Uint8Array): StoredRecord | null {
  const format = record.length < 1 ? 0 : record[0];
  if (format !== RECORD_FORMAT_1 && format !== RECORD_FORMAT_2) return null;
  const head = format === RECORD_FORMAT_2 ? 33 : 1;
  if (record.length <= head) return null;
  const view = new DataView(record.buffer, record.byteOffset, record.byteLength);
  const out: StoredEntry[] = [];
  let at = head;
  while (at < record.length) {
    const tagLength = record[at]!;
    const lengthAt = at + 1 + tagLength;
    if (lengthAt + 4 > record.length) return null;
    const length = view.getUint32(lengthAt);
    const bytesAt = lengthAt + 4;
    if (bytesAt + length > record.length) return null;
    out.push({ tag: Buffer.from(record.buffer, record.byteOffset + at + 1, tagLength).toString("latin1"), bytes: record.subarray(bytesAt, bytesAt + length) });
    at = bytesAt + length;
  }
  return out.length > 0 ? { root: head === 33 ? record.subarray(1, 33) : null, entries: out } : null;
}

export class DurableLog {
  readonly logId: Bytes32;
  readonly name: string;
  /** What open() found. */
  readonly openReport: OpenReport;
  /**
   * Whether open() took over a log of the earlier layout (meta v1) and deleted its old meta record,
   * whose key sorts after the batch keys: its tombstone spans the whole log until compacted.
   */
  readonly tookOver: boolean;

  private readonly db: KvStore;
  private readonly maxBatch: number;
  private readonly maxDelayMs: number;
  private readonly maxEntryBytes: number;
  private readonly sync: { sync: boolean };
  private readonly writeBatch: BatchWriter;

  /** Holds the durable leaves plus, while a write is in flight, that batch's leaves. */
  private readonly tree: MerkleTree;
  private readonly leafStore: FileLeafStore | undefined;
  private readonly maxTagged: number;
  /** Set when a failed write could not be rolled back: every append is refused with it. */
  private unusable: CustodiaError | undefined;
  private durable: number;
  /** Durable entry indexes by tag, ascending. */
  private readonly tags: Map<string, number[]>;
  private queue: Pending[] = [];
  private writing = false;
  private scheduled: NodeJS.Immediate | NodeJS.Timeout | undefined;
  private closing = false;
  private closed = false;
  private drainWaiters: Array<() => void> = [];
  private readonly listeners = new Set<(size: number) => void>();
  private readonly counters = { appends: 0, batches: 0, failedBatches: 0, maxBatchSize: 0 };

  private constructor(db: KvStore, opts: ResolvedOptions, state: { tree: MerkleTree; tags: Map<string, number[]>; leafStore: FileLeafStore | undefined }, report: OpenReport, tookOver: boolean) {
    this.db = db;
    this.logId = opts.logId;
    this.name = opts.name;
    this.maxBatch = opts.maxBatch;
    this.maxDelayMs = opts.maxDelayMs;
    this.maxEntryBytes = opts.maxEntryBytes;
    this.sync = { sync: opts.sync };
    this.writeBatch = batchWriter(db);
    this.tree = state.tree;
    this.tags = state.tags;
    this.leafStore = state.leafStore;
    this.maxTagged = opts.maxTagged;
    this.durable = report.size;
    this.openReport = report;
    this.tookOver = tookOver;
  }

  /**
   * Opens (or creates) the log `name` in `db` and rebuilds its tree and tag index from the stored
   * entries. Throws CONFIG_INVALID (bad options; the storage belongs to another logId) and INTERNAL
   * with `details.reason` "log_meta_invalid" | "log_record_invalid" | "log_gap" |
   * "log_entries_without_meta" | "log_root_mismatch" when the stored log is corrupt. A log of the
   * earlier layout (meta v1, its size rewritten with every batch) is checked against that size —
   * records beyond it are deleted, their entries reported in `openReport.truncated` — and its meta
   * becomes the base (v2) once it passes.
   */
  static async open(db: KvStore, options: DurableLogOptions): Promise<DurableLog> {
    const opts = checkOptions(options);
    const metaKey = `${opts.name}/_meta`;
    const legacyMetaKey = `${opts.name}/meta`;
    const where = { name: opts.name, logId: opts.logId };

    let rawMeta = await db.get(metaKey, GET_OPTIONS);
    const legacyMeta = rawMeta === undefined ? await db.get(legacyMetaKey, GET_OPTIONS) : undefined;
    rawMeta ??= legacyMeta;
    const meta = rawMeta === undefined ? undefined : parseMeta(rawMeta, where);
    if (meta && meta.v !== (legacyMeta === undefined ? 2 : 1)) {
      throw new CustodiaError("INTERNAL", `log "${opts.name}" has a meta record of another layout's version`, { reason: "log_meta_invalid", ...where, v: meta.v });
    }
    if (meta && meta.logId !== opts.logId) {
      throw new CustodiaError("CONFIG_INVALID", `log "${opts.name}" belongs to another logId`, { reason: "log_id_mismatch", ...where, stored: meta.logId });
    }
    await migrateEntryRecords(db, opts);
    // v1 (and no meta): the meta's size is the log's, and records beyond it are stale. v2: the
    // meta is a base the log has grown from; every record in order is part of it.
    const bounded = meta === undefined || meta.v === 1;
    const recorded = bounded ? (meta?.size ?? 0) : Number.MAX_SAFE_INTEGER;
    const gap = (missing: number): CustodiaError =>
      new CustodiaError("INTERNAL", `log "${opts.name}" is missing entry ${missing}`, { reason: "log_gap", ...where, missing, ...(bounded ? { size: recorded } : { base: meta!.size }) });

    // the leaf file, if any, is emptied here and written again as the entries are hashed
    const leafStore = opts.leafFile === undefined ? undefined : FileLeafStore.create(opts.leafFile, opts.leafFileBuffer);
    try {
      let lastRoot: Uint8Array | null = null;
      const prefix = `${opts.name}/b/`;
      // leaves go straight into the tree: a million-entry log is not also held as a million arrays
      const tree = leafStore ? new MerkleTree({ leaves: leafStore, pruneBelow: opts.pruneBelow }) : new MerkleTree();
      const tags = new Map<string, number[]>();
      const stale: string[] = [];
      let truncated = 0;
      let expected = 0;
      await readRange(db, { gte: prefix, lt: `${opts.name}/b0` }, (chunk) => {
        for (const [key, value] of chunk) {
          const digits = key.slice(prefix.length);
          const start = INDEX_RE.test(digits) ? Number(digits) : NaN;
          const record = Number.isSafeInteger(start) ? decodeRecord(value) : null;
          if (record === null) {
            throw new CustodiaError("INTERNAL", `log "${opts.name}" has a malformed record`, { reason: "log_record_invalid", ...where, key: key.slice(0, 100) });
          }
          const entries = record.entries;
          if (start >= recorded) {
            stale.push(key);
            truncated += entries.length;
            continue;
          }
          if (start !== expected) throw gap(expected);
          if (start + entries.length > recorded) {
            // the v1 writer put a batch's record and the size that covers it in one atomic batch
            throw new CustodiaError("INTERNAL", `log "${opts.name}" has a record reaching beyond its recorded size`, { reason: "log_record_invalid", ...where, key, size: recorded });
          }
          lastRoot = record.root;
          for (let j = 0; j < entries.length; j++) {
            const { tag, bytes } = entries[j]!;
            tree.append(leafHash(bytes));
            if (tag !== "") addTag(tags, tag, start + j, opts.maxTagged);
          }
          expected = start + entries.length;
        }
      });
      const mismatch = (size: number, stored: string): CustodiaError =>
        new CustodiaError("INTERNAL", `log "${opts.name}" does not hash to its recorded root`, { reason: "log_root_mismatch", ...where, size, recordedRoot: stored, computedRoot: toHex0x(tree.rootAt(size)) });
      const size = bounded ? recorded : expected;
      if (expected < (meta?.size ?? 0) || (bounded && expected !== recorded)) throw gap(expected);
      if (!meta && stale.length > 0) {
        throw new CustodiaError("INTERNAL", `log "${opts.name}" has entries but no meta record`, { reason: "log_entries_without_meta", ...where, entries: truncated });
      }
      // the base: the root at the meta's size (v1: the whole log)
      if (meta && !bytesEqual(tree.rootAt(meta.size), fromHex(meta.root, 32))) throw mismatch(meta.size, meta.root);
      // past the base, the last record names the root of everything up to it
      if (!bounded && size > meta!.size) {
        if (lastRoot === null) {
          throw new CustodiaError("INTERNAL", `log "${opts.name}" has a record without its root past the base`, { reason: "log_record_invalid", ...where, size, base: meta!.size });
        }
        if (!bytesEqual(tree.rootAt(size), lastRoot)) throw mismatch(size, toHex0x(lastRoot));
      }
      const ops: KvOp[] = stale.map((key) => ({ type: "del", key }));
      // created, or taken over from the v1 layout: the meta becomes the base, never rewritten after
      if (bounded) ops.push({ type: "put", key: metaKey, value: encodeMeta(opts.logId, size, tree.rootAt(size)) });
      if (legacyMeta !== undefined) ops.push({ type: "del", key: legacyMetaKey });
      if (ops.length > 0) await db.batch(ops, { keyEncoding: "utf8", valueEncoding: "view", sync: opts.sync });
      return new DurableLog(db, opts, { tree, tags, leafStore }, { size, truncated, created: !meta }, legacyMeta !== undefined);
    } catch (e) {
      leafStore?.close();
      throw e;
    }
  }

  /** Durable size: entries whose batch is on disk. */
  get size(): number {
    return this.durable;
  }

  /**
   * Appends one JSON value (stored as its RFC 8785 canonical bytes). Resolves once the entry is
   * durable, with its index. Rejects INVALID_ARGUMENT for a value without a JSON form, one over
   * `maxEntryBytes` (reason "entry_too_large") or a tag that is not 0-255 printable ASCII
   * characters without spaces (reason "invalid_tag"), INVALID_ARGUMENT reason "log_closed" after
   * close(), and INTERNAL reason "log_write_failed" when its batch could not be written (nothing
   * assigned). `tag` files the entry under it (see tagged()).
   */
  append(entry: unknown, tag?: string): Promise<AppendReceipt> {
    let text: string;
    try {
      text = canonicalize(entry);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.appendCanonical(text, tag);
  }

  /**
   * `append` for a caller that already holds the entry's RFC 8785 canonical JSON text (the
   * gateway's access events, written out field by field). The text is stored as given: it must be
   * canonical, or an auditor re-canonicalising the entry will not find its leaf hash.
   */
  appendCanonical(text: string, tag = ""): Promise<AppendReceipt> {
    if (this.closing) {
      return Promise.reject(new CustodiaError("INVALID_ARGUMENT", `log "${this.name}" is closed`, { reason: "log_closed", name: this.name }));
    }
    if (this.unusable) return Promise.reject(this.unusable);
    if (typeof tag !== "string" || !TAG_RE.test(tag)) {
      return Promise.reject(new CustodiaError("INVALID_ARGUMENT", "a log tag is 0 to 255 printable ASCII characters without spaces", { reason: "invalid_tag" }));
    }
    // a UTF-8 length is at most 3 bytes per UTF-16 unit: most texts need no exact count
    if (text.length * 3 > this.maxEntryBytes) {
      const bytes = Buffer.byteLength(text, "utf8");
      if (bytes > this.maxEntryBytes) {
        return Promise.reject(
          new CustodiaError("INVALID_ARGUMENT", `entry is ${bytes} bytes, more than ${this.maxEntryBytes}`, {
            reason: "entry_too_large",
            bytes,
            max: this.maxEntryBytes,
          }),
        );
      }
    }
    const { bytes, leaf } = leafOfText(text);
    return new Promise<AppendReceipt>((resolve, reject) => {
      this.queue.push({ bytes, leaf, tag, resolve, reject });
      this.schedule();
    });
  }

  /** The newest `limit` (at most `maxTagged`) durable entry indexes filed under `tag`, oldest first. */
  tagged(tag: string, limit: number): number[] {
    const all = this.tags.get(tag);
    if (!all || limit <= 0) return [];
    return all.slice(Math.max(0, all.length - Math.min(limit, this.maxTagged)));
  }

  /** MTH of the first `size` entries (default: the durable size), 0x hex. PROOF_INVALID_SIZE beyond it. */
  root(size: number = this.durable): Bytes32 {
    this.checkSize(size);
    return toHex0x(this.tree.rootAt(size));
  }

  /** Leaf hash of a durable entry, 0x hex. PROOF_INVALID_INDEX when not in [0, size). */
  leafHash(index: number): Bytes32 {
    this.checkIndex(index, "PROOF_INVALID_INDEX");
    return toHex0x(this.tree.leafHashAt(index));
  }

  /**
   * Reads one durable entry. INVALID_ARGUMENT reason "index_out_of_range" when not in [0, size);
   * INTERNAL reason "log_entry_hash_mismatch" when the stored bytes no longer hash to its leaf.
   */
  async getEntry(index: number): Promise<LogEntry> {
    this.checkIndex(index, "INVALID_ARGUMENT");
    const [entry] = await this.getEntries(index, index + 1);
    return entry!;
  }

  /**
   * Durable entries [start, end), at most `limit` (default and cap 10,000) of them, in order.
   * INVALID_ARGUMENT reason "range_out_of_bounds" unless 0 <= start <= end <= size; reason
   * "invalid_limit" for a limit that is not a positive integer.
   */
  async getEntries(start: number, end: number, limit: number = MAX_RANGE): Promise<LogEntry[]> {
    const size = this.durable;
    if (!isCount(start) || !isCount(end) || start > end || end > size) {
      throw new CustodiaError("INVALID_ARGUMENT", `range [${String(start)}, ${String(end)}) is not within [0, ${size})`, {
        reason: "range_out_of_bounds",
        start,
        end,
        size,
      });
    }
    if (!Number.isSafeInteger(limit) || limit < 1) {
      throw new CustodiaError("INVALID_ARGUMENT", `limit ${String(limit)} is not a positive integer`, { reason: "invalid_limit", limit });
    }
    const stop = Math.min(end, start + Math.min(limit, MAX_RANGE));
    if (stop === start) return [];
    const out: LogEntry[] = [];
    const lost = (missing: number): CustodiaError => new CustodiaError("INTERNAL", `log "${this.name}" lost entry ${missing}`, { reason: "log_gap", name: this.name, missing });
    const first = (await this.recordAt(start)).start;
    await readRange(this.db, { gte: batchKey(this.name, first), lt: batchKey(this.name, stop) }, (chunk) => {
      for (const [key, value] of chunk) {
        const at = start + out.length;
        const recordStart = Number(key.slice(this.name.length + 3));
        const entries = decodeBatchRecord(value);
        if (entries === null || recordStart > at || recordStart + entries.length <= at) throw lost(at);
        for (let i = at; i < stop && i < recordStart + entries.length; i++) out.push(this.decode(i, entries[i - recordStart]!.bytes));
      }
    }, 16);
    if (out.length !== stop - start) throw lost(start + out.length);
    return out;
  }

  /**
   * The durable entries at `indexes`, in the order given (a subject's history, found by tag): one
   * read per batch record they fall in, however many of its entries are asked for — a history of
   * 200 entries from a few bursts is a few reads, not 200 range scans of records that may hold
   * thousands of entries each. INVALID_ARGUMENT reason "index_out_of_range" for an index not in
   * [0, size), reason "too_many_indexes" beyond 10,000; INTERNAL "log_gap" or
   * "log_entry_hash_mismatch" as getEntries.
   */
  async getEntriesAt(indexes: readonly number[]): Promise<LogEntry[]> {
    if (indexes.length > MAX_RANGE) {
      throw new CustodiaError("INVALID_ARGUMENT", `at most ${MAX_RANGE} entries at once`, { reason: "too_many_indexes", count: indexes.length });
    }
    for (const index of indexes) this.checkIndex(index, "INVALID_ARGUMENT");
    // Each record is found by a seek for the newest record at or before an index, and read once
    // however many of its entries are asked for (the seeks of one round run together).
    const found = new Map<number, LogEntry>();
    let left = [...new Set(indexes)].sort((a, b) => a - b);
    while (left.length > 0) {
      const round = left.slice(0, READ_PARALLEL);
      const records = await Promise.all(round.map((index) => this.recordAt(index)));
      for (const { start, entries } of records) {
        // `left` is ascending: the indexes this record holds are one run of it, from the first >= start
        let lo = 0;
        let hi = left.length;
        while (lo < hi) {
          const mid = (lo + hi) >>> 1;
          if (left[mid]! < start) lo = mid + 1;
          else hi = mid;
        }
        for (let i = lo; i < left.length && left[i]! < start + entries.length; i++) {
          const index = left[i]!;
          if (!found.has(index)) found.set(index, this.decode(index, entries[index - start]!.bytes));
        }
      }
      left = left.filter((index) => !found.has(index));
    }
    return indexes.map((index) => found.get(index)!);
  }

  /** RFC 9162 inclusion proof of entry `index` in the tree of `size` (default durable) entries, 0x hex. */
  inclusionProof(index: number, size: number = this.durable): string[] {
    this.checkSize(size);
    return this.tree.inclusionProof(index, size).map((h) => toHex0x(h));
  }

  /** RFC 9162 consistency proof from `size1` to `size2` (default durable), 0x hex. */
  consistencyProof(size1: number, size2: number = this.durable): string[] {
    this.checkSize(size2);
    return this.tree.consistencyProof(size1, size2).map((h) => toHex0x(h));
  }

  /** Calls `listener(size)` after every durable batch (synchronously, before the batch's callers resume). */
  onDurable(listener: (size: number) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  stats(): DurableLogStats {
    return { size: this.durable, ...this.counters, pending: this.queue.length + (this.writing ? 1 : 0) };
  }

  /**
   * Stops accepting appends, writes everything already accepted, and resolves when no write is in
   * flight. Does not close `db`, which belongs to the caller.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.queue.length > 0 && !this.writing) this.flush();
    if (this.writing || this.queue.length > 0) {
      await new Promise<void>((resolve) => this.drainWaiters.push(resolve));
    }
    this.closed = true;
    this.listeners.clear();
    this.leafStore?.close();
  }

  /** True once close() has completed. */
  get isClosed(): boolean {
    return this.closed;
  }

  /* ------------------------------------------------------------ group commit */

  private schedule(): void {
    if (this.writing) return; // the completion of the current write starts the next one
    if (this.queue.length >= this.maxBatch) {
      this.flush();
      return;
    }
    if (this.scheduled !== undefined) return;
    this.scheduled = this.maxDelayMs > 0 ? setTimeout(() => this.flush(), this.maxDelayMs) : setImmediate(() => this.flush());
  }

  private clearSchedule(): void {
    if (this.scheduled === undefined) return;
    // clearTimeout/clearImmediate each ignore the other kind; call the right one.
    if (this.maxDelayMs > 0) clearTimeout(this.scheduled as NodeJS.Timeout);
    else clearImmediate(this.scheduled as NodeJS.Immediate);
    this.scheduled = undefined;
  }

  private flush(): void {
    this.clearSchedule();
    if (this.writing || this.queue.length === 0) return;
    const batch = this.queue.length <= this.maxBatch ? this.queue : this.queue.slice(0, this.maxBatch);
    this.queue = batch === this.queue ? [] : this.queue.slice(this.maxBatch);
    const start = this.durable;
    const end = start + batch.length;
    this.writing = true;
    if (this.unusable) {
      this.failed(batch, start, end, this.unusable);
      return;
    }
    let ops: BatchOp[];
    try {
      for (let j = 0; j < batch.length; j++) this.tree.append(batch[j]!.leaf);
      // A failed batch's record, should LevelDB have applied it, has this very key: replaced here.
      // One operation: the record carries the root of the log after it (no meta rewritten).
      ops = [{ type: "put", key: batchKey(this.name, start), value: encodeBatchRecord(batch, this.tree.rootAt(end)) }];
    } catch (e) {
      // the leaf file could not take the leaves (a full or failing disk): nothing was written
      this.failed(batch, start, end, e);
      return;
    }
    let write: Promise<void>;
    try {
      write = this.writeBatch(ops, this.sync);
    } catch (e) {
      write = Promise.reject(e);
    }
    write.then(
      () => this.committed(batch, start, end),
      (e: unknown) => this.failed(batch, start, end, e),
    );
  }

  private committed(batch: Pending[], start: number, end: number): void {
    this.durable = end;
    this.writing = false;
    for (let j = 0; j < batch.length; j++) if (batch[j]!.tag !== "") addTag(this.tags, batch[j]!.tag, start + j, this.maxTagged);
    this.counters.appends += batch.length;
    this.counters.batches++;
    if (batch.length > this.counters.maxBatchSize) this.counters.maxBatchSize = batch.length;
    // Start the next write before resolving this batch's callers.
    if (this.queue.length > 0) this.flush();
    for (const l of this.listeners) {
      try {
        l(end);
      } catch {
        // a listener's failure is its own business
      }
    }
    for (let j = 0; j < batch.length; j++) {
      batch[j]!.resolve({ logId: this.logId, index: start + j, leafHash: toHex0x(batch[j]!.leaf), treeSize: end });
    }
    this.checkDrained();
  }

  private failed(batch: Pending[], start: number, end: number, cause: unknown): void {
    // Roll the tree back to the durable leaves; the indexes [start, end) were never assigned.
    // If even that fails (the leaf file unreadable), the tree no longer matches the log: no more
    // appends until the log is opened again, which rebuilds it from the stored entries.
    if (!this.unusable) {
      try {
        this.tree.truncate(start);
      } catch (e) {
        this.unusable = new CustodiaError("INTERNAL", `log "${this.name}" could not roll its tree back after a failed write; it takes no appends until it is opened again`, { reason: "log_unusable", name: this.name }, { cause: e });
      }
    }
    this.writing = false;
    this.counters.failedBatches++;
    const error = new CustodiaError(
      "INTERNAL",
      `log "${this.name}" could not write a batch: ${cause instanceof Error ? cause.message : String(cause)}`,
      { reason: "log_write_failed", name: this.name, entries: batch.length },
      { cause },
    );
    if (this.queue.length > 0) this.flush();
    for (const p of batch) p.reject(error);
    this.checkDrained();
  }

  private checkDrained(): void {
    if (this.writing || this.queue.length > 0 || this.drainWaiters.length === 0) return;
    const waiters = this.drainWaiters;
    this.drainWaiters = [];
    for (const w of waiters) w();
  }

  /* ------------------------------------------------------------------ helpers */

  /**
   * The batch record holding durable entry `index`: the newest record that starts at or before it,
   * found by one seek (no index of records is kept in memory). INTERNAL "log_gap" when that record
   * does not reach `index`.
   */
  private async recordAt(index: number): Promise<{ start: number; entries: StoredEntry[] }> {
    const it = this.db.iterator({ gte: batchKey(this.name, 0), lte: batchKey(this.name, index), reverse: true, limit: 1, keyEncoding: "utf8", valueEncoding: "view" });
    let hit: Array<[string, Uint8Array]>;
    try {
      hit = await it.nextv(1);
    } finally {
      await it.close();
    }
    const [key, value] = hit[0] ?? [];
    const start = key === undefined ? NaN : Number(key.slice(this.name.length + 3));
    const entries = value === undefined ? null : decodeBatchRecord(value);
    if (entries === null || !(start <= index && index < start + entries.length)) {
      throw new CustodiaError("INTERNAL", `log "${this.name}" lost entry ${index}`, { reason: "log_gap", name: this.name, missing: index });
    }
    return { start, entries };
  }

  private decode(index: number, bytes: Uint8Array): LogEntry {
    const leaf = this.tree.leafHashAt(index);
    if (!bytesEqual(leafHash(bytes), leaf)) {
      throw new CustodiaError("INTERNAL", `entry ${index} of log "${this.name}" does not match its leaf hash`, {
        reason: "log_entry_hash_mismatch",
        name: this.name,
        index,
      });
    }
    return { index, entry: bytesToJson(bytes), leafHash: toHex0x(leaf) };
  }

  private checkSize(size: number): void {
    if (!isCount(size) || size > this.durable) {
      throw new CustodiaError("PROOF_INVALID_SIZE", `size ${String(size)} is not in [0, ${this.durable}]`, { size, treeSize: this.durable });
    }
  }

  private checkIndex(index: number, code: "PROOF_INVALID_INDEX" | "INVALID_ARGUMENT"): void {
    if (!isCount(index) || index >= this.durable) {
      throw new CustodiaError(code, `index ${String(index)} is not in [0, ${this.durable})`, { reason: "index_out_of_range", index, size: this.durable });
    }
  }
}

/** Files `index` under `tag`; a list is cut back to its newest `keep` once it holds twice that (amortised O(1)). */
function addTag(tags: Map<string, number[]>, tag: string, index: number, keep: number): void {
  const list = tags.get(tag);
  if (list === undefined) tags.set(tag, [index]);
  else {
    list.push(index);
    if (list.length >= 2 * keep) list.splice(0, list.length - keep);
  }
}

/**
 * Rewrites a log stored one record per entry (`<name>/e/<index>`, before batch records) into
 * batch records of up to MIGRATE_CHUNK entries, each chunk in one atomic batch that also deletes
 * the entry records it replaces: a crash in between leaves every entry in exactly one record, and
 * the next open goes on. Runs of consecutive indexes only; a gap stays a gap (open() reports it).
 */
async function migrateEntryRecords(db: KvStore, opts: ResolvedOptions): Promise<void> {
  const prefix = `${opts.name}/e/`;
  for (;;) {
    const run: Array<[string, Uint8Array]> = [];
    await readRange(db, { gte: prefix, lt: `${opts.name}/e0`, limit: MIGRATE_CHUNK }, (chunk) => {
      for (const [key, value] of chunk) {
        const digits = key.slice(prefix.length);
        if (!INDEX_RE.test(digits)) {
          throw new CustodiaError("INTERNAL", `log "${opts.name}" has a malformed entry key`, { reason: "log_gap", name: opts.name, logId: opts.logId, key: key.slice(0, 100) });
        }
        if (run.length === 0 || Number(digits) === Number(run[run.length - 1]![0].slice(prefix.length)) + 1) run.push([key, value]);
      }
    }, MIGRATE_CHUNK);
    if (run.length === 0) return;
    const entries = run.map(([, bytes]) => {
      let tag = "";
      if (opts.legacyTag) {
        try {
          const t = opts.legacyTag(bytesToJson(bytes));
          if (typeof t === "string" && TAG_RE.test(t)) tag = t;
        } catch {
          // an entry that is not JSON keeps no tag; open() checks its hash like any other
        }
      }
      return { tag, bytes };
    });
    const ops: KvOp[] = [{ type: "put", key: batchKey(opts.name, Number(run[0]![0].slice(prefix.length))), value: encodeBatchRecord(entries) }];
    for (const [key] of run) ops.push({ type: "del", key });
    await db.batch(ops, { keyEncoding: "utf8", valueEncoding: "view", sync: opts.sync });
  }
}

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

type ResolvedOptions = Required<Omit<DurableLogOptions, "logId" | "legacyTag" | "leafFile">> & { logId: Bytes32; legacyTag: DurableLogOptions["legacyTag"]; leafFile: string | undefined };

function checkOptions(o: DurableLogOptions): ResolvedOptions {
  const bad = (field: string, message: string): never => {
    throw new CustodiaError("CONFIG_INVALID", `DurableLog option ${field}: ${message}`, { reason: "log_option_invalid", field });
  };
  if (typeof o.logId !== "string" || !BYTES32_RE.test(o.logId)) bad("logId", "must be 32 bytes of 0x hex");
  if (typeof o.name !== "string" || !NAME_RE.test(o.name)) bad("name", "must match [A-Za-z0-9_.-]{1,64}");
  const maxBatch = o.maxBatch ?? DEFAULT_MAX_BATCH;
  if (!Number.isSafeInteger(maxBatch) || maxBatch < 1) bad("maxBatch", "must be a positive integer");
  const maxDelayMs = o.maxDelayMs ?? 0;
  if (!Number.isFinite(maxDelayMs) || maxDelayMs < 0) bad("maxDelayMs", "must be >= 0");
  const maxEntryBytes = o.maxEntryBytes ?? DEFAULT_MAX_ENTRY;
  if (!Number.isSafeInteger(maxEntryBytes) || maxEntryBytes < 2) bad("maxEntryBytes", "must be an integer >= 2");
  const maxTagged = o.maxTagged ?? 1000;
  if (!Number.isSafeInteger(maxTagged) || maxTagged < 1) bad("maxTagged", "must be a positive integer");
  const leafFileBuffer = o.leafFileBuffer ?? 2048;
  if (!Number.isSafeInteger(leafFileBuffer) || leafFileBuffer < 1) bad("leafFileBuffer", "must be a positive integer");
  const pruneBelow = o.pruneBelow ?? 6;
  if (!Number.isInteger(pruneBelow) || pruneBelow < 1 || pruneBelow > 16) bad("pruneBelow", "must be a whole number from 1 to 16");
  if (o.leafFile !== undefined && (typeof o.leafFile !== "string" || o.leafFile === "")) bad("leafFile", "must be a file path");
  return { logId: o.logId.toLowerCase() as Bytes32, name: o.name, maxBatch, maxDelayMs, sync: o.sync ?? true, maxEntryBytes, legacyTag: o.legacyTag, leafFile: o.leafFile, pruneBelow, leafFileBuffer, maxTagged };
}

/** The meta record as this version writes it: v2, the base. */
function encodeMeta(logId: string, size: number, root: Uint8Array): Uint8Array {
  const meta: Meta = { v: 2, logId, size, root: toHex0x(root) };
  return jsonToBytes(meta);
}

function parseMeta(bytes: Uint8Array, where: Record<string, unknown>): Meta {
  let m: unknown;
  try {
    m = bytesToJson(bytes);
  } catch (e) {
    throw new CustodiaError("INTERNAL", "log meta record is not JSON", { reason: "log_meta_invalid", ...where }, { cause: e });
  }
  const r = m as Partial<Meta> | null;
  if (
    r === null ||
    typeof r !== "object" ||
    (r.v !== 1 && r.v !== 2) ||
    typeof r.logId !== "string" ||
    !BYTES32_RE.test(r.logId) ||
    !isCount(r.size) ||
    typeof r.root !== "string" ||
    !BYTES32_RE.test(r.root)
  ) {
    throw new CustodiaError("INTERNAL", "log meta record is malformed", { reason: "log_meta_invalid", ...where });
  }
  return { v: r.v, logId: r.logId.toLowerCase(), size: r.size, root: r.root };
}
