import { closeSync, ftruncateSync, openSync, readSync, unlinkSync, writeSync } from "node:fs";
import { HASH_SIZE, type LeafStore } from "../../core/merkle.js";
import { CustodiaError } from "../../core/errors.js";

/** Leaves buffered before one write to the file (64 KiB). */
const BUFFER_LEAVES = 2048;

/**
 * A durable log's leaf hashes in a file beside its store: 32 bytes per entry, in index order, so a
 * pruned MerkleTree keeps them in the page cache instead of the process's memory.
 *
 * Not a record of anything: the file is emptied and written again from the entries each time the
 * log opens (which hashes every entry anyway), and written without fsync. A crash can leave it
 * anything; the next open rebuilds it. The newest leaves wait in a 64 KiB buffer, read from
 * there, until it fills.
 */
export class FileLeafStore implements LeafStore {
  private written = 0;
  private buffered = 0;
  private readonly buf: Uint8Array;
  private fd: number | undefined;

  private constructor(
    fd: number,
    readonly path: string,
    private readonly bufferLeaves: number,
  ) {
    this.fd = fd;
    this.buf = new Uint8Array(bufferLeaves * HASH_SIZE);
  }

  /**
   * Creates the file at `path` afresh: whatever was there is unlinked first, so a store still
   * open on the old file (another log given the same path) keeps its own. `bufferLeaves` leaves
   * are buffered per write (tests use few).
   */
  static create(path: string, bufferLeaves = BUFFER_LEAVES): FileLeafStore {
    if (!Number.isInteger(bufferLeaves) || bufferLeaves < 1) throw new CustodiaError("INVALID_ARGUMENT", "bufferLeaves must be a positive whole number");
    try {
      try {
        unlinkSync(path);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
      }
      return new FileLeafStore(openSync(path, "wx+", 0o600), path, bufferLeaves);
    } catch (e) {
      throw new CustodiaError("CONFIG_INVALID", `cannot write the log's leaf file ${path}: ${(e as Error).message}`, { reason: "leaf_file_unwritable" }, { cause: e });
    }
  }

  get length(): number {
    return this.written + this.buffered;
  }

  /** A full buffer is written first: if that fails (a full disk), nothing changes and this throws. */
  append(hash: Uint8Array): void {
    if (this.buffered === this.bufferLeaves) this.flush();
    this.buf.set(hash, this.buffered * HASH_SIZE);
    this.buffered++;
  }

  read(start: number, count: number, into: Uint8Array): void {
    const fd = this.open();
    let done = 0;
    if (start < this.written) {
      const fromFile = Math.min(count, this.written - start);
      const bytes = fromFile * HASH_SIZE;
      let got = 0;
      while (got < bytes) {
        const n = readSync(fd, into, got, bytes - got, start * HASH_SIZE + got);
        if (n === 0) throw new CustodiaError("INTERNAL", `the log's leaf file ${this.path} is shorter than written`, { reason: "leaf_file_short" });
        got += n;
      }
      done = fromFile;
    }
    if (done < count) {
      const from = start + done - this.written;
      into.set(this.buf.subarray(from * HASH_SIZE, (from + count - done) * HASH_SIZE), done * HASH_SIZE);
    }
  }

  truncate(length: number): void {
    if (length >= this.written) {
      this.buffered = length - this.written;
      return;
    }
    ftruncateSync(this.open(), length * HASH_SIZE);
    this.written = length;
    this.buffered = 0;
  }

  close(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
  }

  private flush(): void {
    const bytes = this.buffered * HASH_SIZE;
    let put = 0;
    while (put < bytes) put += writeSync(this.open(), this.buf, put, bytes - put, this.written * HASH_SIZE + put);
    this.written += this.buffered;
    this.buffered = 0;
  }

  private open(): number {
    if (this.fd === undefined) throw new CustodiaError("INTERNAL", "the log's leaf file is closed", { reason: "leaf_file_closed" });
    return this.fd;
  }
}
