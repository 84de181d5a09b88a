/**
 * RFC 9162 (Certificate Transparency v2) Merkle trees: tree hashes, an append-only tree that
 * produces inclusion and consistency proofs, and verifiers for both. Pure: no I/O, no clock.
 *
 * Sizes and indices are JavaScript numbers restricted to safe integers (< 2^53). All bit
 * arithmetic below is written with division/`>>> 0` splits rather than 32-bit operators so it
 * stays exact above 2^32.
 *
 * Verifiers never return booleans: they return normally on success and throw a CustodiaError
 * whose code says what failed (index/size, proof length, malformed hash, root mismatch). The
 * computed root is produced separately from the comparison, as in transparency-dev/merkle.
 */
import { CustodiaError } from "./errors.js";
import { bytesEqual, fromHex, sha256, toHex } from "./hash.js";

/** Length in bytes of every hash in the tree (SHA-256). */
export const HASH_SIZE = 32;

const LEAF_PREFIX = 0x00;
const NODE_PREFIX = 0x01;

// Private copy so that a caller mutating the exported constant cannot change what we return.
const EMPTY_ROOT_PRIVATE = sha256(new Uint8Array(0));

/**
 * MTH({}) = SHA-256 of the empty string. Treat as read-only (typed arrays cannot be frozen);
 * functions in this module never hand out this instance.
 */
export const EMPTY_ROOT: Uint8Array = EMPTY_ROOT_PRIVATE.slice();

// ---------------------------------------------------------------------------------------------
// Hashing
// ---------------------------------------------------------------------------------------------

/** Leaf hash: SHA-256(0x00 || entry). `entry` may be empty. */
export function leafHash(entry: Uint8Array): Uint8Array {
  if (!(entry instanceof Uint8Array)) {
    throw new CustodiaError("INVALID_ARGUMENT", "leaf entry must be a Uint8Array");
  }
  const n = 1 + entry.length;
  // an outsized entry gets an input of its own rather than growing the shared one for good
  const input = n <= leafInput.length ? leafInput : n <= MAX_SHARED_LEAF_INPUT ? (leafInput = new Uint8Array(Math.max(n, 2 * leafInput.length))) : new Uint8Array(n);
  input[0] = LEAF_PREFIX;
  input.set(entry, 1);
  return sha256(input.subarray(0, n));
}

/*
 * Hash inputs are assembled in buffers reused from call to call (the hash reads its input
 * synchronously, and nothing else runs meanwhile): a fresh array per call of more than 64 bytes
 * would be allocated outside V8's heap, which costs more than hashing it. Reopening a log hashes
 * every entry and interior node again, and every append hashes one leaf and about one node.
 */
let leafInput = new Uint8Array(1024);
const MAX_SHARED_LEAF_INPUT = 64 * 1024;
const nodeInput = new Uint8Array(1 + 2 * HASH_SIZE);

/**
 * The UTF-8 bytes of a JSON text and their RFC 9162 leaf hash, from one buffer: the leaf input
 * (0x00 || bytes) is encoded in place and `bytes` is a view of it (no second encoding or copy).
 * Equal to `leafHash(new TextEncoder().encode(text))`; what every log append computes.
 */
export function leafOfText(text: string): { bytes: Uint8Array; leaf: Uint8Array } {
  const n = Buffer.byteLength(text, "utf8");
  const input = Buffer.allocUnsafe(1 + n);
  input[0] = LEAF_PREFIX;
  input.write(text, 1, "utf8");
  const bytes = input.subarray(1);
  return { bytes: new Uint8Array(bytes.buffer, bytes.byteOffset, n), leaf: sha256(input) };
}

/**
 * Interior node hash: SHA-256(0x01 || left || right).
 * Precondition: both children are 32-byte hashes (else PROOF_MALFORMED).
 */
export function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  assertHash(left, "left child");
  assertHash(right, "right child");
  return combine(left, right);
}

// Unchecked variant for internal use, where inputs are already known to be 32-byte hashes.
function combine(left: Uint8Array, right: Uint8Array): Uint8Array {
  nodeInput[0] = NODE_PREFIX;
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_SIZE);
  return sha256(nodeInput);
}

/**
 * MTH(D[0:size]) over already-hashed leaves (RFC 9162 §2.1.1), in O(size) hashes and
 * O(log size) memory. `size` defaults to `leafHashes.length`.
 * Preconditions: 0 <= size <= leafHashes.length (else PROOF_INVALID_SIZE); every leaf hash that
 * is used is 32 bytes (else PROOF_MALFORMED).
 */
export function rootFromLeafHashes(leafHashes: readonly Uint8Array[], size?: number): Uint8Array {
  if (!Array.isArray(leafHashes)) throw new CustodiaError("PROOF_MALFORMED", "leaf hashes must be an array");
  const n = size ?? leafHashes.length;
  if (!isCount(n) || n > leafHashes.length) {
    throw new CustodiaError("PROOF_INVALID_SIZE", `size ${String(n)} is not in [0, ${leafHashes.length}]`, {
      size: n,
      available: leafHashes.length,
    });
  }
  if (n === 0) return EMPTY_ROOT_PRIVATE.slice();
  // A stack of complete-subtree hashes, largest first. Folding it right to left at the end is
  // exactly the MTH split rule, because the set bits of n are the sizes of the subtrees.
  const stack: Uint8Array[] = [];
  for (let i = 0; i < n; i++) {
    const h = leafHashes[i];
    assertHash(h, `leaf hash ${i}`);
    let acc: Uint8Array = h;
    // After appending leaf i, (i+1) has one trailing zero bit per merge that becomes possible.
    for (let c = i + 1; c % 2 === 0; c /= 2) acc = combine(stack.pop()!, acc);
    stack.push(acc);
  }
  let acc = stack.pop()!;
  while (stack.length > 0) acc = combine(stack.pop()!, acc);
  return acc === leafHashes[n - 1] ? acc.slice() : acc;
}

// ---------------------------------------------------------------------------------------------
// Exact bit arithmetic on safe integers
// ---------------------------------------------------------------------------------------------

const TWO_32 = 0x1_0000_0000;

function isCount(x: unknown): x is number {
  return typeof x === "number" && Number.isSafeInteger(x) && x >= 0;
}

function hi32(x: number): number {
  return Math.floor(x / TWO_32);
}

/** Number of bits needed to represent x (0 for 0). */
function bitLength(x: number): number {
  const hi = hi32(x);
  return hi > 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(x >>> 0);
}

function popcount32(v: number): number {
  v = v - ((v >>> 1) & 0x55555555);
  v = (v & 0x33333333) + ((v >>> 2) & 0x33333333);
  return (((v + (v >>> 4)) & 0x0f0f0f0f) * 0x01010101) >>> 24;
}

function popcount(x: number): number {
  return popcount32(x >>> 0) + popcount32(hi32(x));
}

function xor(a: number, b: number): number {
  return ((hi32(a) ^ hi32(b)) >>> 0) * TWO_32 + (((a >>> 0) ^ (b >>> 0)) >>> 0);
}

function shr(x: number, k: number): number {
  return Math.floor(x / 2 ** k);
}

function bitAt(x: number, i: number): number {
  return shr(x, i) % 2;
}

/** Precondition: x > 0. */
function trailingZeros(x: number): number {
  let n = 0;
  let lo = x >>> 0;
  if (lo === 0) {
    n = 32;
    lo = hi32(x);
  }
  return n + 31 - Math.clz32(lo & -lo);
}

function isPowerOfTwo(x: number): boolean {
  return x > 0 && popcount(x) === 1;
}

/** The k of RFC 9162 §2.1.1: largest power of two strictly smaller than n. Precondition: n >= 2. */
function splitPoint(n: number): number {
  return 2 ** (bitLength(n - 1) - 1);
}

// ---------------------------------------------------------------------------------------------
// Append-only tree
// ---------------------------------------------------------------------------------------------

/**
 * A growable array of 32-byte hashes in one contiguous buffer. One object per hash would cost
 * several times the 32 bytes of payload for logs with millions of entries.
 */
class HashList {
  private buf: Uint8Array;
  private count = 0;

  constructor(capacity = 16) {
    this.buf = new Uint8Array(Math.max(1, capacity) * HASH_SIZE);
  }

  get length(): number {
    return this.count;
  }

  /** Copies `h` in, so later mutation by the caller cannot alter the tree. */
  push(h: Uint8Array): void {
    const end = (this.count + 1) * HASH_SIZE;
    if (end > this.buf.length) {
      const bigger = new Uint8Array(Math.max(end, this.buf.length * 2));
      bigger.set(this.buf.subarray(0, this.count * HASH_SIZE));
      this.buf = bigger;
    }
    this.buf.set(h, this.count * HASH_SIZE);
    this.count++;
  }

  /** A view, not a copy: internal use only; public methods copy before returning. */
  at(i: number): Uint8Array {
    return this.buf.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE);
  }

  /** Keeps the first `length` hashes. Precondition: length <= this.length. */
  truncate(length: number): void {
    this.count = length;
  }
}

/**
 * Where a pruned tree (see MerkleTree) keeps every leaf hash, in order. The durable log's is a file
 * beside its store, rebuilt each time the log opens (gateway/log/leaf-file.ts), so the hashes sit in
 * the operating system's page cache instead of the process's memory.
 */
export interface LeafStore {
  readonly length: number;
  /** Appends a copy of a 32-byte hash. */
  append(hash: Uint8Array): void;
  /** Copies the hashes [start, start + count) into `into` (count · 32 bytes). Precondition: start + count <= length. */
  read(start: number, count: number, into: Uint8Array): void;
  /** Keeps the first `length` hashes. Precondition: length <= this.length. */
  truncate(length: number): void;
}

/** A LeafStore in memory (tests, and trees small enough to keep whole). */
export class MemoryLeafStore implements LeafStore {
  private readonly list = new HashList();
  get length(): number {
    return this.list.length;
  }
  append(hash: Uint8Array): void {
    this.list.push(hash);
  }
  read(start: number, count: number, into: Uint8Array): void {
    for (let i = 0; i < count; i++) into.set(this.list.at(start + i), i * HASH_SIZE);
  }
  truncate(length: number): void {
    this.list.truncate(length);
  }
}

export interface MerkleTreeOptions {
  /**
   * Prune: keep in memory only the complete subtrees of at least 2^pruneBelow leaves (and the
   * nodes of the block of 2^pruneBelow leaves still filling up); smaller subtrees of earlier
   * blocks are hashed again from `leaves` when a root or proof needs them. 0 (default): keep
   * every node. Requires `leaves`.
   */
  pruneBelow?: number;
  /** Where every leaf hash is kept when pruning. */
  leaves?: LeafStore;
}

/**
 * Append-only RFC 9162 Merkle tree over leaf hashes (callers hash entries with `leafHash`).
 *
 * Storage: `levels[k][i]` is the hash of the complete subtree covering leaves
 * [i·2^k, (i+1)·2^k), kept for every such subtree as soon as it is complete. Invariant:
 * `levels[k].length === floor(size / 2^k)`. About 2·size hashes in total; each append does
 * amortised O(1) (worst O(log n)) hashing; the rightmost entry of each level whose bit is set in
 * `size` forms the frontier, so a root or proof of any past size costs O(log n) hashes.
 *
 * Pruned (`pruneBelow` = P > 0): levels below P hold only the nodes of the current block (the
 * leaves from `blockStart`, the last multiple of 2^P, up to `size`); the leaves themselves are also
 * appended to the LeafStore. A node below level P of an earlier block is computed from that block's
 * leaves, read from the store: at most 2^P − 1 hashes. Memory: 64 / 2^P bytes per leaf instead of
 * 64, the rest in the store.
 */
export class MerkleTree {
  private readonly levels: HashList[];
  private cachedRoot: Uint8Array | undefined;
  private count = 0;
  private readonly prune: number;
  private readonly block: number;
  private readonly store: LeafStore | undefined;
  /** First leaf of the block still filling up (a multiple of `block`); 0 when not pruning. */
  private blockStart = 0;
  /** The leaves of the last earlier block read from the store, and which block it was. */
  private readBlock = -1;
  private readonly readBuf: Uint8Array;

  constructor(options: MerkleTreeOptions = {}) {
    const prune = options.pruneBelow ?? 0;
    if (!Number.isInteger(prune) || prune < 0 || prune > 16) {
      throw new CustodiaError("INVALID_ARGUMENT", "pruneBelow must be a whole number from 0 to 16");
    }
    if (prune > 0 && !options.leaves) throw new CustodiaError("INVALID_ARGUMENT", "a pruned tree needs a LeafStore");
    if (options.leaves && options.leaves.length !== 0) throw new CustodiaError("INVALID_ARGUMENT", "a tree starts from an empty LeafStore");
    this.prune = prune;
    this.block = 2 ** prune;
    this.store = options.leaves;
    this.readBuf = new Uint8Array(prune > 0 ? this.block * HASH_SIZE : 0);
    this.levels = [new HashList()];
  }

  /**
   * Builds a tree from existing leaf hashes, in order.
   * Precondition: every element is a 32-byte hash (else PROOF_MALFORMED).
   */
  static fromLeafHashes(leafHashes: Iterable<Uint8Array>): MerkleTree {
    const tree = new MerkleTree();
    if (Array.isArray(leafHashes)) tree.levels[0] = new HashList(leafHashes.length);
    for (const h of leafHashes) tree.append(h);
    return tree;
  }

  /** Number of leaves. */
  get size(): number {
    return this.count;
  }

  /**
   * Appends a leaf hash and returns its index.
   * Precondition: `hash` is 32 bytes (else PROOF_MALFORMED); it is copied.
   */
  append(hash: Uint8Array): number {
    assertHash(hash, "leaf hash");
    const index = this.count;
    this.store?.append(hash);
    this.place(hash);
    this.cachedRoot = undefined;
    return index;
  }

  /**
   * Drops every leaf from `size` on (and the nodes over them): the tree of the first `size`
   * leaves, as if the rest had never been appended. PROOF_INVALID_SIZE when size > this.size.
   */
  truncate(size: number): void {
    this.checkSize(size);
    this.cachedRoot = undefined;
    this.readBlock = -1;
    if (this.prune === 0) {
      this.store?.truncate(size);
      for (let k = 0; k < this.levels.length; k++) this.levels[k]!.truncate(Math.floor(size / 2 ** k));
      this.count = size;
      return;
    }
    // the block now filling up is rebuilt from its leaves in the store, read before anything
    // changes: a store that fails here leaves the tree as it was
    const start = Math.floor(size / this.block) * this.block;
    const leaves = new Uint8Array((size - start) * HASH_SIZE);
    this.store!.read(start, size - start, leaves);
    this.store!.truncate(size);
    for (let k = this.prune; k < this.levels.length; k++) this.levels[k]!.truncate(Math.floor(size / 2 ** k));
    for (let k = 0; k < this.prune && k < this.levels.length; k++) this.levels[k]!.truncate(0);
    this.count = start;
    this.blockStart = start;
    for (let i = 0; i < size - start; i++) this.place(leaves.subarray(i * HASH_SIZE, (i + 1) * HASH_SIZE));
  }

  /** Adds leaf `this.count` to the levels, combining each subtree it completes. */
  private place(hash: Uint8Array): void {
    let idx = this.count;
    let level = 0;
    this.levels[0]!.push(hash);
    // While the new node is a right child, its parent's subtree has just become complete.
    while (idx % 2 === 1) {
      const here = this.levels[level]!;
      const base = level < this.prune ? this.blockStart / 2 ** level : 0;
      const parent = combine(here.at(idx - 1 - base), here.at(idx - base));
      level++;
      idx = (idx - 1) / 2;
      let up = this.levels[level];
      if (up === undefined) {
        up = new HashList();
        this.levels[level] = up;
      }
      up.push(parent);
    }
    this.count++;
    if (this.prune > 0 && this.count % this.block === 0) {
      // the block is complete: its root is at level P; what is below it goes
      for (let k = 0; k < this.prune; k++) this.levels[k]!.truncate(0);
      this.blockStart = this.count;
    }
  }

  /** The stored leaf hash at `index`. Precondition: 0 <= index < size (else PROOF_INVALID_INDEX). */
  leafHashAt(index: number): Uint8Array {
    if (!isCount(index) || index >= this.size) {
      throw new CustodiaError("PROOF_INVALID_INDEX", `leaf index ${String(index)} is not in [0, ${this.size})`, {
        index,
        size: this.size,
      });
    }
    return this.node(0, index).slice();
  }

  /** MTH of the whole current tree (EMPTY_ROOT when empty); memoised until the next append. */
  root(): Uint8Array {
    this.cachedRoot ??= this.rootAt(this.size);
    return this.cachedRoot.slice();
  }

  /** MTH(D[0:size]). Precondition: 0 <= size <= this.size (else PROOF_INVALID_SIZE). */
  rootAt(size: number): Uint8Array {
    this.checkSize(size);
    if (size === 0) return EMPTY_ROOT_PRIVATE.slice();
    return this.subtreeHash(0, size).slice();
  }

  /**
   * PATH(index, D[0:size]) of RFC 9162 §2.1.3.1, leaf-adjacent sibling first.
   * Preconditions: 0 <= size <= this.size (else PROOF_INVALID_SIZE; default: current size) and
   * 0 <= index < size (else PROOF_INVALID_INDEX; so size 0 always fails with that code).
   */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    this.checkSize(size);
    if (!isCount(index) || index >= size) {
      throw new CustodiaError("PROOF_INVALID_INDEX", `leaf index ${String(index)} is not in [0, ${size})`, {
        index,
        size,
      });
    }
    // Walk the MTH recursion from the root down, collecting siblings; reversed at the end.
    const path: Uint8Array[] = [];
    let start = 0;
    let n = size;
    let m = index;
    while (n > 1) {
      const k = splitPoint(n);
      if (m < k) {
        path.push(this.subtreeHash(start + k, n - k));
        n = k;
      } else {
        path.push(this.subtreeHash(start, k));
        start += k;
        m -= k;
        n -= k;
      }
    }
    return path.reverse().map((h) => h.slice());
  }

  /**
   * PROOF(size1, D[0:size2]) of RFC 9162 §2.1.4.1 (SUBPROOF with b = true); empty when the sizes
   * are equal. Preconditions: 0 < size1 <= size2 <= this.size (else PROOF_INVALID_SIZE;
   * `size2` defaults to the current size).
   */
  consistencyProof(size1: number, size2: number = this.size): Uint8Array[] {
    this.checkSize(size2);
    if (!isCount(size1) || size1 === 0 || size1 > size2) {
      throw new CustodiaError("PROOF_INVALID_SIZE", `size1 ${String(size1)} is not in [1, ${size2}]`, {
        size1,
        size2,
      });
    }
    const path: Uint8Array[] = [];
    let start = 0;
    let n = size2;
    let m = size1;
    // Stays true while the subtree being descended into is a prefix the verifier already knows
    // the root of (the old tree itself); then the final MTH(D[m]) is omitted.
    let known = true;
    while (m < n) {
      const k = splitPoint(n);
      if (m <= k) {
        path.push(this.subtreeHash(start + k, n - k));
        n = k;
      } else {
        path.push(this.subtreeHash(start, k));
        start += k;
        m -= k;
        n -= k;
        known = false;
      }
    }
    if (!known) path.push(this.subtreeHash(start, n));
    return path.reverse().map((h) => h.slice());
  }

  private checkSize(size: number): void {
    if (!isCount(size) || size > this.size) {
      throw new CustodiaError("PROOF_INVALID_SIZE", `size ${String(size)} is not in [0, ${this.size}]`, {
        size,
        treeSize: this.size,
      });
    }
  }

  /**
   * MTH(D[start:start+n]) for a node of the MTH recursion, which guarantees that a power-of-two
   * n is aligned (start % n === 0), so complete subtrees are a lookup and only the ragged right
   * edge is hashed: O(log n). Preconditions: n >= 1, start + n <= size. May return a view.
   */
  private subtreeHash(start: number, n: number): Uint8Array {
    if (isPowerOfTwo(n) && start % n === 0) {
      return this.node(bitLength(n) - 1, start / n);
    }
    const k = splitPoint(n);
    return combine(this.subtreeHash(start, k), this.subtreeHash(start + k, n - k));
  }

  /** The hash of complete subtree i at level k (leaves [i·2^k, (i+1)·2^k)). May return a view. */
  private node(k: number, i: number): Uint8Array {
    if (k >= this.prune) return this.levels[k]!.at(i);
    const base = this.blockStart / 2 ** k;
    if (i >= base) return this.levels[k]!.at(i - base);
    // below level P in an earlier block: hashed again from the block's leaves
    const first = i * 2 ** k;
    const blk = Math.floor(first / this.block);
    if (blk !== this.readBlock) {
      // forgotten first: a read that fails halfway must not leave a half-overwritten block cached
      this.readBlock = -1;
      this.store!.read(blk * this.block, this.block, this.readBuf);
      this.readBlock = blk;
    }
    const off = first - blk * this.block;
    let row: Uint8Array[] = [];
    for (let j = 0; j < 2 ** k; j++) row.push(this.readBuf.subarray((off + j) * HASH_SIZE, (off + j + 1) * HASH_SIZE));
    // a leaf is copied out: the next read of another block reuses the buffer
    if (k === 0) return row[0]!.slice();
    while (row.length > 1) {
      const up: Uint8Array[] = [];
      for (let j = 0; j < row.length; j += 2) up.push(combine(row[j]!, row[j + 1]!));
      row = up;
    }
    return row[0]!;
  }
}

// ---------------------------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------------------------

/**
 * Recomputes the root implied by an inclusion proof (RFC 9162 §2.1.3.2) without comparing it
 * to anything. Throws PROOF_INVALID_SIZE (size not a safe non-negative integer),
 * PROOF_INVALID_INDEX (index not in [0, size)), PROOF_WRONG_LENGTH (proof length is not the one
 * determined by index and size), PROOF_MALFORMED (a hash is not 32 bytes).
 */
export function rootFromInclusionProof(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
): Uint8Array {
  if (!isCount(size)) {
    throw new CustodiaError("PROOF_INVALID_SIZE", `tree size ${String(size)} is not a non-negative safe integer`, { size });
  }
  if (!isCount(index) || index >= size) {
    throw new CustodiaError("PROOF_INVALID_INDEX", `leaf index ${String(index)} is not in [0, ${size})`, { index, size });
  }
  assertHash(leaf, "leaf hash");
  assertProofArray(proof);
  // Below level `inner` the paths to leaf `index` and to the last leaf differ, so every level
  // contributes a sibling; above it the leaf's path runs along the right border, where only
  // levels at which it is a right child have a (left) sibling.
  const inner = bitLength(xor(index, size - 1));
  const border = popcount(shr(index, inner));
  expectLength(proof, inner + border);
  assertProofHashes(proof);
  let r = leaf;
  for (let i = 0; i < inner; i++) {
    const p = proof[i]!;
    r = bitAt(index, i) === 0 ? combine(r, p) : combine(p, r);
  }
  for (let i = inner; i < proof.length; i++) r = combine(proof[i]!, r);
  return r === leaf ? r.slice() : r;
}

/**
 * Verifies that `leaf` is at `index` in the tree of `size` leaves whose root is `root`.
 * Returns on success; throws as `rootFromInclusionProof`, plus PROOF_MALFORMED when `root` is
 * not 32 bytes and PROOF_ROOT_MISMATCH (details: expected and computed roots, hex).
 */
export function verifyInclusion(
  index: number,
  size: number,
  leaf: Uint8Array,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): void {
  assertHash(root, "root");
  const computed = rootFromInclusionProof(index, size, leaf, proof);
  checkRoot(root, computed, "root");
}

/**
 * Given a trusted `root1` of the first `size1` leaves, recomputes the root of `size2` leaves that
 * the consistency proof attests (RFC 9162 §2.1.4.2). It checks that the proof reproduces `root1`
 * (PROOF_ROOT_MISMATCH otherwise) but compares nothing against a second root.
 * Preconditions: 0 < size1 <= size2 (else PROOF_INVALID_SIZE); when equal, the proof is empty
 * and `root1` is returned. Also throws PROOF_WRONG_LENGTH and PROOF_MALFORMED.
 */
export function rootFromConsistencyProof(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
): Uint8Array {
  checkConsistencySizes(size1, size2);
  assertProofArray(proof);
  assertHash(root1, "root1");
  if (size1 === size2) {
    expectLength(proof, 0);
    return root1.slice();
  }
  // The last complete subtree of the old tree, of 2^shift leaves ending at size1, is the seed;
  // from it the proof reads like an inclusion proof of node `node` at level `shift` in the new
  // tree. The old root is rebuilt using only the left siblings (nothing of the old tree lies to
  // the right of its last leaf); the new root uses all of them.
  const shift = trailingZeros(size1);
  const node = shr(size1 - 1, shift);
  const last = shr(size2 - 1, shift);
  const inner = bitLength(xor(node, last));
  const border = popcount(shr(node, inner));
  // When the old tree is itself that complete subtree the verifier already holds its hash (root1),
  // so the proof omits it.
  const seedIncluded = !isPowerOfTwo(size1);
  const offset = seedIncluded ? 1 : 0;
  expectLength(proof, offset + inner + border);
  assertProofHashes(proof);
  const seed = seedIncluded ? proof[0]! : root1;

  let r1 = seed;
  let r2 = seed;
  for (let i = 0; i < inner; i++) {
    const p = proof[offset + i]!;
    if (bitAt(node, i) === 1) {
      r1 = combine(p, r1);
      r2 = combine(p, r2);
    } else {
      r2 = combine(r2, p);
    }
  }
  for (let i = offset + inner; i < proof.length; i++) {
    const p = proof[i]!;
    r1 = combine(p, r1);
    r2 = combine(p, r2);
  }
  checkRoot(root1, r1, "root1");
  return r2 === seed ? r2.slice() : r2;
}

/**
 * Verifies that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
 * with root `root1` (RFC 9162 §2.1.4.2). Returns on success. Throws:
 * - PROOF_INVALID_SIZE: a size is not a non-negative safe integer, size1 > size2, or size1 == 0
 *   (RFC 9162 defines consistency proofs only for 0 < size1; the transparency-dev vectors
 *   reject size1 == 0 even with an empty proof, since it proves nothing);
 * - PROOF_MALFORMED: a root or proof element is not 32 bytes;
 * - PROOF_WRONG_LENGTH: the proof length is not the one determined by the sizes (equal sizes
 *   require an empty proof);
 * - PROOF_ROOT_MISMATCH: details carry which root, and expected/computed roots in hex.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): void {
  checkConsistencySizes(size1, size2);
  assertProofArray(proof);
  if (size1 === size2) {
    // Nothing is hashed: the trees are the same exactly when the roots are. As in RFC 9162
    // §2.1.4.2 and the shared vectors, the roots are compared as opaque bytes here.
    expectLength(proof, 0);
    checkRoot(root2, root1, "root2");
    return;
  }
  assertHash(root1, "root1");
  assertHash(root2, "root2");
  const computed = rootFromConsistencyProof(size1, size2, proof, root1);
  checkRoot(root2, computed, "root2");
}

// ---------------------------------------------------------------------------------------------
// Wire form: hashes and proofs as lowercase hex strings (no 0x), for JSON.
// ---------------------------------------------------------------------------------------------

/** A 32-byte hash as lowercase hex. Precondition: 32 bytes (else PROOF_MALFORMED). */
export function hashToHex(hash: Uint8Array): string {
  assertHash(hash, "hash");
  return toHex(hash);
}

/** Parses a 32-byte hash from hex (0x prefix optional); PROOF_MALFORMED on anything else. */
export function hashFromHex(hex: string): Uint8Array {
  if (typeof hex !== "string") throw new CustodiaError("PROOF_MALFORMED", "hash must be a hex string");
  try {
    return fromHex(hex, HASH_SIZE);
  } catch (e) {
    throw new CustodiaError("PROOF_MALFORMED", `not a ${HASH_SIZE}-byte hex hash`, { value: hex.slice(0, 80) }, { cause: e });
  }
}

/** A proof as an array of lowercase hex strings. Precondition: every element is 32 bytes. */
export function proofToHex(proof: readonly Uint8Array[]): string[] {
  assertProofArray(proof);
  assertProofHashes(proof);
  return proof.map((h) => toHex(h));
}

/**
 * Parses a proof from an array of hex strings (e.g. decoded JSON, hence `unknown`).
 * Throws PROOF_MALFORMED if it is not an array or any element is not a 32-byte hex hash.
 */
export function proofFromHex(hexes: unknown): Uint8Array[] {
  if (!Array.isArray(hexes)) throw new CustodiaError("PROOF_MALFORMED", "proof must be an array of hex strings");
  return hexes.map((h: unknown, i) => {
    if (typeof h !== "string") {
      throw new CustodiaError("PROOF_MALFORMED", `proof element ${i} is not a string`, { element: i });
    }
    try {
      return hashFromHex(h);
    } catch (e) {
      throw new CustodiaError("PROOF_MALFORMED", `proof element ${i} is not a ${HASH_SIZE}-byte hex hash`, { element: i }, { cause: e });
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Internal checks
// ---------------------------------------------------------------------------------------------

function assertHash(h: unknown, what: string): asserts h is Uint8Array {
  if (!(h instanceof Uint8Array) || h.length !== HASH_SIZE) {
    const got = h instanceof Uint8Array ? `${h.length} bytes` : typeof h;
    throw new CustodiaError("PROOF_MALFORMED", `${what} must be a ${HASH_SIZE}-byte hash, got ${got}`);
  }
}

function assertProofArray(proof: unknown): asserts proof is readonly Uint8Array[] {
  if (!Array.isArray(proof)) throw new CustodiaError("PROOF_MALFORMED", "proof must be an array of hashes");
}

function assertProofHashes(proof: readonly Uint8Array[]): void {
  proof.forEach((h, i) => assertHash(h, `proof element ${i}`));
}

function expectLength(proof: readonly Uint8Array[], want: number): void {
  if (proof.length !== want) {
    throw new CustodiaError("PROOF_WRONG_LENGTH", `proof has ${proof.length} elements, expected ${want}`, {
      got: proof.length,
      want,
    });
  }
}

function checkConsistencySizes(size1: number, size2: number): void {
  if (!isCount(size1) || !isCount(size2)) {
    throw new CustodiaError("PROOF_INVALID_SIZE", "tree sizes must be non-negative safe integers", { size1, size2 });
  }
  if (size1 > size2) {
    throw new CustodiaError("PROOF_INVALID_SIZE", `size1 ${size1} is greater than size2 ${size2}`, { size1, size2 });
  }
  if (size1 === 0) {
    throw new CustodiaError("PROOF_INVALID_SIZE", "consistency with an empty tree is not provable", { size1, size2 });
  }
}

// Constant-time comparison; `expected` is the trusted value.
function checkRoot(expected: Uint8Array, computed: Uint8Array, which: "root" | "root1" | "root2"): void {
  if (!bytesEqual(expected, computed)) {
    throw new CustodiaError("PROOF_ROOT_MISMATCH", `${which} does not match the proof`, {
      which,
      expected: toHex(expected),
      computed: toHex(computed),
    });
  }
}
