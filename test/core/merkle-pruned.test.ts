/**
 * The pruned Merkle tree (leaves in a LeafStore, only subtrees of 2^P leaves and more in memory)
 * against the full tree, which test/core/merkle.test.ts checks against an independent oracle.
 */
import { randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CustodiaError } from "../../core/errors.js";
import { MemoryLeafStore, MerkleTree, verifyConsistency, verifyInclusion, type LeafStore } from "../../core/merkle.js";

const hex = (h: Uint8Array): string => Buffer.from(h).toString("hex");
const hexAll = (hs: Uint8Array[]): string[] => hs.map(hex);
const leaves = (n: number): Uint8Array[] => Array.from({ length: n }, () => new Uint8Array(randomBytes(32)));

/** A LeafStore that counts its reads. */
class CountingStore extends MemoryLeafStore {
  reads = 0;
  override read(start: number, count: number, into: Uint8Array): void {
    this.reads++;
    super.read(start, count, into);
  }
}

function pruned(prune: number, hs: Uint8Array[], store: LeafStore = new MemoryLeafStore()): MerkleTree {
  const t = new MerkleTree({ pruneBelow: prune, leaves: store });
  for (const h of hs) t.append(h);
  return t;
}

/** Every root, every inclusion proof and the consistency proofs from every size to `to`, as hex. */
function everything(t: MerkleTree, n: number, to: number): string[] {
  const out: string[] = [];
  for (let s = 0; s <= n; s++) out.push(hex(t.rootAt(s)));
  for (let s = 1; s <= n; s++) for (let i = 0; i < s; i++) out.push(hexAll(t.inclusionProof(i, s)).join(""));
  for (let s = 1; s <= to; s++) out.push(hexAll(t.consistencyProof(s, to)).join(""));
  for (let i = 0; i < n; i++) out.push(hex(t.leafHashAt(i)));
  return out;
}

describe("pruned MerkleTree", () => {
  it("answers every root, proof and leaf as the full tree does, for every prune level and size up to 70", () => {
    const hs = leaves(70);
    const full = MerkleTree.fromLeafHashes(hs);
    for (const prune of [1, 2, 3, 5, 6]) {
      const t = pruned(prune, hs);
      expect(t.size).toBe(70);
      expect(everything(t, 70, 70)).toEqual(everything(full, 70, 70));
    }
  });

  it("agrees with the full tree after random appends and truncations (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 5 }), fc.array(fc.oneof(fc.integer({ min: 1, max: 40 }).map((n) => ({ add: n })), fc.nat({ max: 100 }).map((cut) => ({ cut }))), { minLength: 1, maxLength: 8 }), (prune, steps) => {
        const t = new MerkleTree({ pruneBelow: prune, leaves: new MemoryLeafStore() });
        let reference: Uint8Array[] = [];
        for (const step of steps) {
          if ("add" in step) {
            const more = leaves(step.add);
            for (const h of more) t.append(h);
            reference.push(...more);
          } else {
            const size = Math.min(step.cut, reference.length);
            t.truncate(size);
            reference = reference.slice(0, size);
          }
        }
        const full = MerkleTree.fromLeafHashes(reference);
        const n = reference.length;
        expect(t.size).toBe(n);
        expect(everything(t, n, n)).toEqual(everything(full, n, n));
      }),
      { numRuns: 60 },
    );
  });

  it("produces proofs that verify, across blocks and at sizes within earlier blocks", () => {
    const hs = leaves(1000);
    const t = pruned(4, hs);
    const root = t.root();
    for (const i of [0, 15, 16, 17, 511, 512, 999]) verifyInclusion(i, 1000, hs[i]!, t.inclusionProof(i, 1000), root);
    for (const [i, s] of [[3, 37], [36, 37], [100, 517], [0, 1]] as const) verifyInclusion(i, s, hs[i]!, t.inclusionProof(i, s), t.rootAt(s));
    for (const s of [1, 15, 16, 17, 333, 999]) verifyConsistency(s, 1000, t.consistencyProof(s, 1000), t.rootAt(s), root);
  });

  it("never reads the store to append, nor for the root of the current size", () => {
    const store = new CountingStore();
    const t = pruned(3, leaves(203), store);
    t.root();
    t.rootAt(203);
    t.rootAt(200);
    t.inclusionProof(202, 203); // its leaf is in the block still filling up, the rest in complete blocks
    expect(store.reads).toBe(0);
    t.rootAt(101); // a size inside an earlier block: its leaves are read
    expect(store.reads).toBeGreaterThan(0);
  });

  it("trusts its store for earlier blocks: a leaf changed in the store changes the roots that cover it", () => {
    const hs = leaves(64);
    const store = new MemoryLeafStore();
    const t = pruned(3, hs, store);
    const before = hex(MerkleTree.fromLeafHashes(hs).rootAt(5));
    // the whole-tree root comes from complete blocks kept in memory: unchanged by the store
    const rootBefore = hex(t.root());
    store.truncate(0);
    for (const [i, h] of hs.entries()) store.append(i === 2 ? new Uint8Array(32) : h);
    expect(hex(t.root())).toBe(rootBefore);
    expect(hex(t.rootAt(5))).not.toBe(before);
  });

  it("stays whole when its store fails: a truncate that cannot read changes nothing, and a read that fails halfway is not cached", () => {
    /** A store whose reads can be made to copy part of what was asked, then throw. */
    class FailingStore extends MemoryLeafStore {
      failing = false;
      override read(start: number, count: number, into: Uint8Array): void {
        if (!this.failing) return super.read(start, count, into);
        into.fill(0xee, 0, 32); // half done
        throw new CustodiaError("INTERNAL", "injected read failure");
      }
    }
    const hs = leaves(50);
    const store = new FailingStore();
    const t = pruned(3, hs, store);
    const full = MerkleTree.fromLeafHashes(hs);
    store.failing = true;
    expect(() => t.truncate(21)).toThrow("injected read failure");
    expect(t.size).toBe(50);
    expect(store.length).toBe(50);
    expect(hex(t.root())).toBe(hex(full.root()));
    store.failing = false;
    expect(hex(t.rootAt(5))).toBe(hex(full.rootAt(5))); // block 0 now cached
    store.failing = true;
    expect(() => t.rootAt(13)).toThrow("injected read failure"); // block 1's read fails into the buffer
    store.failing = false;
    expect(hex(t.rootAt(5))).toBe(hex(full.rootAt(5)));
    expect(hex(t.leafHashAt(2))).toBe(hex(hs[2]!));
    t.truncate(21);
    expect(everything(t, 21, 21)).toEqual(everything(MerkleTree.fromLeafHashes(hs.slice(0, 21)), 21, 21));
  });

  it("hands out copies: a returned leaf or proof changed by the caller changes nothing", () => {
    const hs = leaves(40);
    const t = pruned(2, hs);
    const leaf = t.leafHashAt(3);
    const proof = t.inclusionProof(3, 40);
    leaf.fill(0);
    for (const p of proof) p.fill(0);
    expect(hex(t.leafHashAt(3))).toBe(hex(hs[3]!));
    verifyInclusion(3, 40, hs[3]!, t.inclusionProof(3, 40), t.root());
  });

  it("refuses bad options and bad sizes with codes", () => {
    const code = (f: () => unknown): string | undefined => {
      try {
        f();
      } catch (e) {
        return (e as CustodiaError).code;
      }
      return undefined;
    };
    expect(code(() => new MerkleTree({ pruneBelow: 3 }))).toBe("INVALID_ARGUMENT");
    expect(code(() => new MerkleTree({ pruneBelow: -1, leaves: new MemoryLeafStore() }))).toBe("INVALID_ARGUMENT");
    expect(code(() => new MerkleTree({ pruneBelow: 17, leaves: new MemoryLeafStore() }))).toBe("INVALID_ARGUMENT");
    const used = new MemoryLeafStore();
    used.append(new Uint8Array(32));
    expect(code(() => new MerkleTree({ pruneBelow: 2, leaves: used }))).toBe("INVALID_ARGUMENT");
    const t = pruned(2, leaves(10));
    expect(code(() => t.truncate(11))).toBe("PROOF_INVALID_SIZE");
    expect(code(() => t.truncate(-1))).toBe("PROOF_INVALID_SIZE");
    expect(code(() => t.append(new Uint8Array(31)))).toBe("PROOF_MALFORMED");
    expect(t.size).toBe(10);
  });
});
