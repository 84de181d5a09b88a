/**
 * Moves the records of one key-value store (all, or those under a key prefix) into another — the
 * gateway's logs, from a sublevel of its main LevelDB into a LevelDB each — so that it survives a
 * crash at any point.
 *
 * Why each log has a database of its own: LevelDB writes a memtable out as one table file whose
 * key range runs from its smallest key to its largest. When the logs shared a database with the
 * view, the vault and the anchors (or with each other), nearly every such file also held one of
 * those keys, its range overlapped the files before it, and compaction merged and rewrote the
 * log's data again. On its own a log's keys only grow (`<name>/b/<16-digit index>`), and the
 * files only move down.
 *
 * Two marker keys in `to` record the progress ("!" sorts before every log name):
 *   MOVING  written (fsync'd) before the first record is copied;
 *   MOVED   written (fsync'd) once every record is in `to`; then `from` is emptied and both go.
 * So on the next call: MOVED means the copy is complete and only `from` is left to empty; MOVING
 * alone means the copy was interrupted, and it starts again from an empty `to`. A `to` that holds
 * records but no marker while `from` also holds some was written by a gateway after the move,
 * and `from` by something else since (an earlier version run on the same data): refused, since
 * either choice would lose entries.
 */
import { CustodiaError } from "../../core/errors.js";
import type { KvOp, KvStore } from "./kv.js";

export const MOVING_KEY = "!moving";
export const MOVED_KEY = "!moved";
const VIEW = { keyEncoding: "utf8", valueEncoding: "view" } as const;
const MARK = new Uint8Array([1]);

export interface MoveReport {
  /** Records copied by this call (0 when there was nothing to move, or only `from` to empty). */
  moved: number;
  /** Whether this call finished a move that an earlier one started. */
  resumed: boolean;
}

/**
 * Moves every record of `from` (with `prefix`: every record whose key starts with it) into `to`
 * (see the module comment). `chunk` records are copied per batch; `onProgress` is told the
 * running count after each. Resolves once `from` holds none of them and neither marker is left.
 * CONFIG_INVALID (reason "store_move_conflict") when both stores hold records and `to` has no
 * marker.
 */
export async function moveStore(from: KvStore, to: KvStore, opts: { prefix?: string; chunk?: number; onProgress?: (moved: number) => void } = {}): Promise<MoveReport> {
  const chunk = opts.chunk ?? 1000;
  // keys are ASCII here; U+FFFF encodes above every byte an ASCII key continues with
  const range = opts.prefix === undefined ? {} : { gte: opts.prefix, lt: `${opts.prefix}\uffff` };
  const moving = (await to.get(MOVING_KEY, VIEW)) !== undefined;
  const moved = (await to.get(MOVED_KEY, VIEW)) !== undefined;
  if (moved) {
    await clear(from, chunk, range);
    await to.batch([{ type: "del", key: MOVING_KEY }, { type: "del", key: MOVED_KEY }], { keyEncoding: "utf8", sync: true });
    return { moved: 0, resumed: true };
  }
  // every key of `to` but the markers (they sort first: "!" is below every log name)
  const data = { gt: MOVING_KEY };
  if (await isEmpty(from, range)) {
    if (!moving) return { moved: 0, resumed: false };
    // a copy was under way, and what it copied from is gone: neither place can be trusted whole
    if (!(await isEmpty(to, data))) {
      throw new CustodiaError("CONFIG_INVALID", "a move of the log store was interrupted and the old store has since been emptied: the new one holds only part of it", { reason: "store_move_conflict" });
    }
    await to.batch([{ type: "del", key: MOVING_KEY }], { keyEncoding: "utf8", sync: true });
    return { moved: 0, resumed: true };
  }
  if (moving) {
    // an interrupted copy starts again from nothing; the marker stays until the copy is complete,
    // so a crash in here is taken up the same way
    await clear(to, chunk, data);
  } else if (!(await isEmpty(to, {}))) {
    throw new CustodiaError("CONFIG_INVALID", "both the old and the new log store hold records: the logs were written in the old place after they had been moved (an earlier version run on this data?)", {
      reason: "store_move_conflict",
    });
  }
  if (!moving) await to.batch([{ type: "put", key: MOVING_KEY, value: MARK }], { keyEncoding: "utf8", valueEncoding: "view", sync: true });
  let count = 0;
  const it = from.iterator({ ...range, ...VIEW });
  try {
    for (;;) {
      // nextv may answer fewer than asked before the end: `chunk` records a batch all the same
      const records: Array<[string, Uint8Array]> = [];
      for (let got = await it.nextv(chunk); got.length > 0; got = await it.nextv(chunk - records.length)) {
        for (const record of got) records.push(record);
        if (records.length >= chunk) break;
      }
      if (records.length === 0) break;
      for (const [key] of records) {
        if (key === MOVING_KEY || key === MOVED_KEY) throw new CustodiaError("CONFIG_INVALID", `the store to move holds the reserved key "${key}"`, { reason: "store_move_conflict", key });
      }
      // fsync'd each: LevelDB closes a full memtable's log file without an fsync, so a later
      // synced write would not make these durable (one fsync per `chunk` records, once)
      await to.batch(records.map(([key, value]): KvOp => ({ type: "put", key, value })), { keyEncoding: "utf8", valueEncoding: "view", sync: true });
      count += records.length;
      opts.onProgress?.(count);
    }
  } finally {
    await it.close();
  }
  await to.batch([{ type: "put", key: MOVED_KEY, value: MARK }], { keyEncoding: "utf8", valueEncoding: "view", sync: true });
  await clear(from, chunk, range);
  await to.batch([{ type: "del", key: MOVING_KEY }, { type: "del", key: MOVED_KEY }], { keyEncoding: "utf8", sync: true });
  return { moved: count, resumed: moving };
}

type Range = { gte?: string; gt?: string; lt?: string };

async function isEmpty(store: KvStore, range: Range): Promise<boolean> {
  const it = store.iterator({ ...range, limit: 1, ...VIEW });
  try {
    return (await it.nextv(1)).length === 0;
  } finally {
    await it.close();
  }
}

/** Deletes every record of `store`, `chunk` at a time, each batch fsync'd (`from` and `to` are
 * different databases: the markers in `to` may go only once `from` is durably empty). */
async function clear(store: KvStore, chunk: number, range: Range): Promise<void> {
  for (;;) {
    const it = store.iterator({ ...range, limit: chunk, ...VIEW });
    let keys: string[];
    try {
      keys = (await it.nextv(chunk)).map(([key]) => key);
    } finally {
      await it.close();
    }
    if (keys.length === 0) return;
    await store.batch(
      keys.map((key): KvOp => ({ type: "del", key })),
      { keyEncoding: "utf8", sync: true },
    );
  }
}
