/**
 * The small slice of the abstract-level (level 10 / classic-level) API that the gateway's log and
 * anchorer use. A `Level` instance or any `db.sublevel(name, ...)` satisfies it structurally,
 * whatever its default encodings: every call passes `keyEncoding: "utf8"` and
 * `valueEncoding: "view"` (Uint8Array) per operation, so the caller may open the sublevel with
 * `valueEncoding: "view"`, `"buffer"`, `"json"` or the default `"utf8"` alike. Recommended:
 * `db.sublevel("audit-log", { valueEncoding: "view" })` (no transcoding at all).
 *
 * Being structural also lets tests inject failures by wrapping a real database.
 */

export type KvOp = { type: "put"; key: string; value: Uint8Array } | { type: "del"; key: string };

export interface KvBatchOptions {
  keyEncoding: "utf8";
  valueEncoding: "view";
  /** classic-level: fsync the write-ahead log before the batch resolves. */
  sync?: boolean;
}

export interface KvIteratorOptions {
  gte?: string;
  gt?: string;
  lt?: string;
  lte?: string;
  limit?: number;
  reverse?: boolean;
  keyEncoding: "utf8";
  valueEncoding: "view";
}

export interface KvIterator {
  nextv(size: number): Promise<Array<[string, Uint8Array]>>;
  close(): Promise<void>;
}

export interface KvStore {
  get(key: string, options: { keyEncoding: "utf8"; valueEncoding: "view" }): Promise<Uint8Array | undefined>;
  batch(operations: KvOp[], options: KvBatchOptions): Promise<void>;
  iterator(options: KvIteratorOptions): KvIterator;
}

export const GET_OPTIONS = { keyEncoding: "utf8", valueEncoding: "view" } as const;

/** Reads [key, value] pairs of a range in chunks; always closes the iterator. */
export async function readRange(
  db: KvStore,
  range: Omit<KvIteratorOptions, "keyEncoding" | "valueEncoding">,
  onChunk: (chunk: Array<[string, Uint8Array]>) => void,
  chunkSize = 1024,
): Promise<void> {
  const it = db.iterator({ ...range, keyEncoding: "utf8", valueEncoding: "view" });
  try {
    for (;;) {
      const chunk = await it.nextv(chunkSize);
      if (chunk.length === 0) break;
      onChunk(chunk);
    }
  } finally {
    await it.close();
  }
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

export function jsonToBytes(value: unknown): Uint8Array {
  return encoder.encode(JSON.stringify(value));
}

export function bytesToJson(bytes: Uint8Array): unknown {
  return JSON.parse(decoder.decode(bytes)) as unknown;
}

/** Zero-padded decimal: 16 digits hold every safe integer, so string order is numeric order. */
export function pad16(n: number): string {
  return n.toString().padStart(16, "0");
}
