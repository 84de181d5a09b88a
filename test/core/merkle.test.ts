import { createHash, randomBytes } from "node:crypto";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CustodiaError } from "../../core/errors.js";
import {
  EMPTY_ROOT,
  HASH_SIZE,
  MerkleTree,
  hashFromHex,
  hashToHex,
  leafHash,
  leafOfText,
  nodeHash,
  proofFromHex,
  proofToHex,
  rootFromConsistencyProof,
  rootFromInclusionProof,
  rootFromLeafHashes,
  verifyConsistency,
  verifyInclusion,
} from "../../core/merkle.js";

// ---------------------------------------------------------------------------------------------
// Independent oracle: the RFC 9162 definitions, written recursively and hashed with node:crypto
// directly, sharing no code with the production path.
// ---------------------------------------------------------------------------------------------

function H(...parts: Uint8Array[]): Uint8Array {
  const h = createHash("sha256");
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}
const ZERO = Uint8Array.of(0);
const ONE = Uint8Array.of(1);

function largestPow2Below(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/** MTH over raw entries (RFC 9162 §2.1.1). */
function naiveMth(d: readonly Uint8Array[]): Uint8Array {
  if (d.length === 0) return H();
  if (d.length === 1) return H(ZERO, d[0]!);
  const k = largestPow2Below(d.length);
  return H(ONE, naiveMth(d.slice(0, k)), naiveMth(d.slice(k)));
}

/** PATH(m, D[n]) (RFC 9162 §2.1.3.1). */
function naivePath(m: number, d: readonly Uint8Array[]): Uint8Array[] {
  if (d.length <= 1) return [];
  const k = largestPow2Below(d.length);
  return m < k
    ? [...naivePath(m, d.slice(0, k)), naiveMth(d.slice(k))]
    : [...naivePath(m - k, d.slice(k)), naiveMth(d.slice(0, k))];
}

/** PROOF(m, D[n]) via SUBPROOF (RFC 9162 §2.1.4.1). */
function naiveSubproof(m: number, d: readonly Uint8Array[], b: boolean): Uint8Array[] {
  if (m === d.length) return b ? [] : [naiveMth(d)];
  const k = largestPow2Below(d.length);
  return m <= k
    ? [...naiveSubproof(m, d.slice(0, k), b), naiveMth(d.slice(k))]
    : [...naiveSubproof(m - k, d.slice(k), false), naiveMth(d.slice(0, k))];
}

/** RFC 9162 §2.1.3.2 verbatim (BigInt), returning the computed root or null on failure. */
function rfcInclusionRoot(index: bigint, size: bigint, hash: Uint8Array, path: readonly Uint8Array[]): Uint8Array | null {
  if (index >= size) return null;
  let fn = index;
  let sn = size - 1n;
  let r = hash;
  for (const p of path) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      r = H(ONE, p, r);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      r = H(ONE, r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

const isPow2 = (x: bigint): boolean => x > 0n && (x & (x - 1n)) === 0n;

/** RFC 9162 §2.1.4.2 verbatim (BigInt) for 0 < first < second: returns (fr, sr) or null. */
function rfcConsistencyRoots(
  first: bigint,
  second: bigint,
  firstHash: Uint8Array,
  proof: readonly Uint8Array[],
): { fr: Uint8Array; sr: Uint8Array } | null {
  if (proof.length === 0) return null;
  const path = isPow2(first) ? [firstHash, ...proof] : [...proof];
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let fr = path[0]!;
  let sr = path[0]!;
  for (const c of path.slice(1)) {
    if (sn === 0n) return null;
    if ((fn & 1n) === 1n || fn === sn) {
      fr = H(ONE, c, fr);
      sr = H(ONE, c, sr);
      if ((fn & 1n) === 0n) {
        while ((fn & 1n) === 0n && fn !== 0n) {
          fn >>= 1n;
          sn >>= 1n;
        }
      }
    } else {
      sr = H(ONE, sr, c);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? { fr, sr } : null;
}

/**
 * The sequence of hashing steps the RFC inclusion verifier performs for (index, size): two
 * claims with the same shape run the identical computation over the same proof, so a proof for
 * one verifies as the other. Also yields the expected proof length.
 */
function inclusionShape(index: bigint, size: bigint): string {
  let fn = index;
  let sn = size - 1n;
  let s = "";
  while (sn !== 0n) {
    if ((fn & 1n) === 1n || fn === sn) {
      s += "L";
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      s += "R";
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return s;
}

/** Same idea for the RFC consistency verifier (0 < first < second). */
function consistencyShape(first: bigint, second: bigint): string {
  let fn = first - 1n;
  let sn = second - 1n;
  while ((fn & 1n) === 1n) {
    fn >>= 1n;
    sn >>= 1n;
  }
  let s = isPow2(first) ? "seed:" : "proof:";
  while (sn !== 0n) {
    if ((fn & 1n) === 1n || fn === sn) {
      s += "B";
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      s += "S";
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return s;
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
const hexAll = (xs: readonly Uint8Array[]): string[] => xs.map(hex);
const bytes = (h: string): Uint8Array => new Uint8Array(Buffer.from(h, "hex"));

/** Runs fn; returns the CustodiaError code it threw, or undefined. Anything else fails the test. */
function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof CustodiaError)) throw e;
    return e.code;
  }
  return undefined;
}

function expectCode(fn: () => unknown, code: string): void {
  expect(codeOf(fn)).toBe(code);
}

function flipBit(b: Uint8Array, bit: number): Uint8Array {
  const out = b.slice();
  const i = Math.floor(bit / 8) % out.length;
  out[i] = out[i]! ^ (1 << (bit % 8));
  return out;
}

function treeOf(entries: readonly Uint8Array[]): MerkleTree {
  return MerkleTree.fromLeafHashes(entries.map((e) => leafHash(e)));
}

/** Pseudo-random 32-byte hashes, derived from a seed so fast-check can shrink. */
function fakeHashes(seed: number, n: number): Uint8Array[] {
  return Array.from({ length: n }, (_, j) => H(Uint8Array.of(seed & 255, (seed >>> 8) & 255, (seed >>> 16) & 255, seed >>> 24), Uint8Array.of(j)));
}

// RFC 6962 reference inputs, also the tree behind the transparency-dev vectors.
const REF_ENTRIES = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"].map(bytes);
const REF_ROOTS = [
  "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
  "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
  "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
  "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
  "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
  "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
  "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
  "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
  "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

const H32 = new Uint8Array(32).fill(7);
const H31 = new Uint8Array(31);

// ---------------------------------------------------------------------------------------------
// Unit tests
// ---------------------------------------------------------------------------------------------

describe("hashing primitives", () => {
  it("EMPTY_ROOT is SHA-256 of the empty string", () => {
    expect(hex(EMPTY_ROOT)).toBe("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    expect(HASH_SIZE).toBe(32);
  });

  it("leafHash and nodeHash use the 0x00 / 0x01 domain separation", () => {
    expect(hex(leafHash(new Uint8Array(0)))).toBe("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    const e = bytes("2021");
    expect(hex(leafHash(e))).toBe(hex(H(ZERO, e)));
    const a = leafHash(bytes("00"));
    const b = leafHash(bytes("10"));
    expect(hex(nodeHash(a, b))).toBe(hex(H(ONE, a, b)));
    expect(hex(nodeHash(a, b))).not.toBe(hex(nodeHash(b, a)));
  });

  it("leafHash and nodeHash reuse their input buffers without one call's result or input leaking into the next", () => {
    // entries of growing and shrinking sizes (past the reused leaf buffer's first size), checked
    // against a hash computed from scratch, and earlier results checked again at the end
    const sizes = [0, 5, 2000, 3, 70_000, 64, 1];
    const made = sizes.map((n) => {
      const e = new Uint8Array(n).map((_, i) => (i * 31 + n) & 0xff);
      const leaf = leafHash(e);
      expect(hex(leaf)).toBe(hex(H(ZERO, e)));
      return { e, leaf };
    });
    for (const { e, leaf } of made) expect(hex(leaf)).toBe(hex(H(ZERO, e)));
    const n1 = nodeHash(made[0]!.leaf, made[1]!.leaf);
    const n2 = nodeHash(made[2]!.leaf, made[3]!.leaf);
    expect(hex(n1)).toBe(hex(H(ONE, made[0]!.leaf, made[1]!.leaf)));
    expect(hex(n2)).toBe(hex(H(ONE, made[2]!.leaf, made[3]!.leaf)));
  });

  it("leafOfText gives a JSON text's UTF-8 bytes and their leaf hash, each call its own bytes", () => {
    const utf8 = new TextEncoder();
    fc.assert(
      fc.property(fc.array(fc.string({ unit: "binary", maxLength: 600 }), { minLength: 1, maxLength: 8 }), (texts) => {
        const made = texts.map((t) => leafOfText(t));
        texts.forEach((t, i) => {
          expect(Buffer.from(made[i]!.bytes).equals(Buffer.from(utf8.encode(t)))).toBe(true);
          expect(hex(made[i]!.leaf)).toBe(hex(leafHash(utf8.encode(t))));
          expect(Buffer.isBuffer(made[i]!.bytes)).toBe(false);
        });
      }),
      { numRuns: 300 },
    );
  });

  it("rejects bad inputs with exact codes", () => {
    expectCode(() => leafHash("abc" as unknown as Uint8Array), "INVALID_ARGUMENT");
    expectCode(() => nodeHash(H31, H32), "PROOF_MALFORMED");
    expectCode(() => nodeHash(H32, new Uint8Array(33)), "PROOF_MALFORMED");
  });
});

describe("tree hashes", () => {
  it("matches the RFC 6962 reference tree for every size 0..8", () => {
    const lh = REF_ENTRIES.map(leafHash);
    const tree = new MerkleTree();
    expect(hex(tree.root())).toBe(REF_ROOTS[0]);
    for (const h of lh) {
      tree.append(h);
      expect(hex(tree.root())).toBe(REF_ROOTS[tree.size]);
    }
    for (let s = 0; s <= 8; s++) {
      expect(hex(tree.rootAt(s))).toBe(REF_ROOTS[s]);
      expect(hex(rootFromLeafHashes(lh, s))).toBe(REF_ROOTS[s]);
      expect(hex(rootFromLeafHashes(lh.slice(0, s)))).toBe(REF_ROOTS[s]);
    }
  });

  it("known proofs from the reference tree", () => {
    const tree = treeOf(REF_ENTRIES);
    expect(hexAll(tree.inclusionProof(5, 8))).toEqual([
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    expect(hexAll(tree.consistencyProof(6, 8))).toEqual([
      "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
      "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
      "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    ]);
    expect(hexAll(tree.consistencyProof(2, 5))).toEqual([
      "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
      "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
    ]);
    expect(tree.consistencyProof(8, 8)).toEqual([]);
    expect(tree.inclusionProof(0, 1)).toEqual([]);
  });

  it("root, rootAt and rootFromLeafHashes agree with the naive MTH for 0..130 leaves", () => {
    const entries = Array.from({ length: 130 }, (_, i) => randomBytes(i % 7));
    const lh = entries.map(leafHash);
    const tree = new MerkleTree();
    expect(hex(tree.root())).toBe(hex(naiveMth([])));
    for (let n = 1; n <= entries.length; n++) {
      expect(tree.append(lh[n - 1]!)).toBe(n - 1);
      const want = hex(naiveMth(entries.slice(0, n)));
      expect(hex(tree.root())).toBe(want);
      expect(hex(rootFromLeafHashes(lh, n))).toBe(want);
    }
    for (let n = 0; n <= entries.length; n++) expect(hex(tree.rootAt(n))).toBe(hex(naiveMth(entries.slice(0, n))));
  });

  it("every inclusion and consistency proof up to 40 leaves equals the naive PATH / PROOF and verifies", () => {
    const entries = Array.from({ length: 40 }, (_, i) => Uint8Array.of(i, i * 3));
    const tree = treeOf(entries);
    for (let n = 1; n <= entries.length; n++) {
      const d = entries.slice(0, n);
      const root = tree.rootAt(n);
      for (let m = 0; m < n; m++) {
        const p = tree.inclusionProof(m, n);
        expect(hexAll(p)).toEqual(hexAll(naivePath(m, d)));
        verifyInclusion(m, n, tree.leafHashAt(m), p, root);
      }
      for (let m = 1; m <= n; m++) {
        const p = tree.consistencyProof(m, n);
        expect(hexAll(p)).toEqual(hexAll(naiveSubproof(m, d, true)));
        verifyConsistency(m, n, p, tree.rootAt(m), root);
      }
    }
  });

  it("a larger tree (5000 leaves) agrees with the naive MTH and produces verifying proofs", () => {
    const entries = Array.from({ length: 5000 }, (_, i) => Uint8Array.of(i & 255, i >> 8));
    const tree = treeOf(entries);
    for (const n of [1, 2, 3, 1023, 1024, 1025, 4095, 4096, 4097, 4999, 5000]) {
      expect(hex(tree.rootAt(n))).toBe(hex(naiveMth(entries.slice(0, n))));
      verifyInclusion(n - 1, n, tree.leafHashAt(n - 1), tree.inclusionProof(n - 1, n), tree.rootAt(n));
      verifyInclusion(0, n, tree.leafHashAt(0), tree.inclusionProof(0, n), tree.rootAt(n));
      verifyConsistency(Math.ceil(n / 3), n, tree.consistencyProof(Math.ceil(n / 3), n), tree.rootAt(Math.ceil(n / 3)), tree.rootAt(n));
    }
  });

  it("fromLeafHashes accepts any iterable and equals appending one by one", () => {
    const lh = REF_ENTRIES.map(leafHash);
    function* gen(): Generator<Uint8Array> {
      yield* lh;
    }
    const a = MerkleTree.fromLeafHashes(gen());
    expect(a.size).toBe(8);
    expect(hex(a.root())).toBe(REF_ROOTS[8]);
    expect(MerkleTree.fromLeafHashes([]).size).toBe(0);
  });

  it("does not share memory with callers", () => {
    const [e0, e1] = [REF_ENTRIES[0]!, REF_ENTRIES[1]!];
    const h = leafHash(e0);
    const tree = new MerkleTree();
    tree.append(h);
    tree.append(leafHash(e1));
    h.fill(0); // the caller's buffer changes after append
    expect(hex(tree.root())).toBe(REF_ROOTS[2]);
    tree.root().fill(0);
    tree.rootAt(1).fill(0);
    tree.rootAt(0).fill(1);
    tree.leafHashAt(0).fill(0);
    tree.inclusionProof(0, 2)[0]!.fill(0);
    tree.consistencyProof(1, 2)[0]!.fill(0);
    expect(hex(tree.root())).toBe(REF_ROOTS[2]);
    expect(hex(tree.rootAt(1))).toBe(REF_ROOTS[1]);
    expect(hex(tree.rootAt(0))).toBe(REF_ROOTS[0]);
    expect(hex(new MerkleTree().root())).toBe(REF_ROOTS[0]);
    expect(hexAll(tree.inclusionProof(0, 2))).toEqual([hex(leafHash(e1))]);
    const single = [leafHash(e0)];
    rootFromLeafHashes(single).fill(0);
    rootFromInclusionProof(0, 1, single[0]!, []).fill(0);
    expect(hex(single[0]!)).toBe(REF_ROOTS[1]);
  });
});

describe("invalid arguments", () => {
  const lh = REF_ENTRIES.map(leafHash);
  const tree = MerkleTree.fromLeafHashes(lh);
  const root8 = tree.rootAt(8);
  const proof58 = tree.inclusionProof(5, 8);

  it("rootFromLeafHashes", () => {
    for (const s of [-1, 9, 1.5, Number.NaN, Infinity, 2 ** 53]) expectCode(() => rootFromLeafHashes(lh, s), "PROOF_INVALID_SIZE");
    expectCode(() => rootFromLeafHashes([lh[0]!, H31], 2), "PROOF_MALFORMED");
    expect(hex(rootFromLeafHashes([lh[0]!, H31], 1))).toBe(REF_ROOTS[1]); // only the prefix is used
    expectCode(() => rootFromLeafHashes("x" as unknown as Uint8Array[]), "PROOF_MALFORMED");
  });

  it("MerkleTree.append / fromLeafHashes / leafHashAt", () => {
    const t = new MerkleTree();
    expectCode(() => t.append(H31), "PROOF_MALFORMED");
    expectCode(() => t.append("00".repeat(32) as unknown as Uint8Array), "PROOF_MALFORMED");
    expect(t.size).toBe(0); // a rejected append changes nothing
    expectCode(() => MerkleTree.fromLeafHashes([H32, new Uint8Array(0)]), "PROOF_MALFORMED");
    for (const i of [-1, 8, 0.5, Number.NaN]) expectCode(() => tree.leafHashAt(i), "PROOF_INVALID_INDEX");
  });

  it("MerkleTree.rootAt", () => {
    for (const s of [-1, 9, 0.5, Number.NaN]) expectCode(() => tree.rootAt(s), "PROOF_INVALID_SIZE");
  });

  it("MerkleTree.inclusionProof", () => {
    expectCode(() => tree.inclusionProof(8, 8), "PROOF_INVALID_INDEX");
    expectCode(() => tree.inclusionProof(3, 3), "PROOF_INVALID_INDEX");
    expectCode(() => tree.inclusionProof(-1, 8), "PROOF_INVALID_INDEX");
    expectCode(() => tree.inclusionProof(0.5, 8), "PROOF_INVALID_INDEX");
    expectCode(() => tree.inclusionProof(0, 0), "PROOF_INVALID_INDEX");
    expectCode(() => tree.inclusionProof(0, 9), "PROOF_INVALID_SIZE");
    expectCode(() => tree.inclusionProof(0, -1), "PROOF_INVALID_SIZE");
    expectCode(() => tree.inclusionProof(0, 2.5), "PROOF_INVALID_SIZE");
    expectCode(() => tree.inclusionProof(8), "PROOF_INVALID_INDEX"); // default size = current
    expect(hexAll(tree.inclusionProof(5))).toEqual(hexAll(proof58));
  });

  it("MerkleTree.consistencyProof", () => {
    expectCode(() => tree.consistencyProof(0, 8), "PROOF_INVALID_SIZE");
    expectCode(() => tree.consistencyProof(5, 4), "PROOF_INVALID_SIZE");
    expectCode(() => tree.consistencyProof(1, 9), "PROOF_INVALID_SIZE");
    expectCode(() => tree.consistencyProof(1.5, 8), "PROOF_INVALID_SIZE");
    expectCode(() => tree.consistencyProof(-1, 8), "PROOF_INVALID_SIZE");
    expectCode(() => tree.consistencyProof(9), "PROOF_INVALID_SIZE");
    expect(hexAll(tree.consistencyProof(6))).toEqual(hexAll(tree.consistencyProof(6, 8)));
  });

  it("rootFromInclusionProof / verifyInclusion", () => {
    const leaf = lh[5]!;
    expect(hex(rootFromInclusionProof(5, 8, leaf, proof58))).toBe(REF_ROOTS[8]);
    verifyInclusion(5, 8, leaf, proof58, root8);
    for (const s of [-1, 1.5, Number.NaN, 2 ** 53]) {
      expectCode(() => rootFromInclusionProof(0, s, leaf, proof58), "PROOF_INVALID_SIZE");
      expectCode(() => verifyInclusion(0, s, leaf, proof58, root8), "PROOF_INVALID_SIZE");
    }
    for (const i of [-1, 8, 9, 0.5, Number.NaN]) {
      expectCode(() => rootFromInclusionProof(i, 8, leaf, proof58), "PROOF_INVALID_INDEX");
      expectCode(() => verifyInclusion(i, 8, leaf, proof58, root8), "PROOF_INVALID_INDEX");
    }
    expectCode(() => verifyInclusion(0, 0, leaf, [], EMPTY_ROOT), "PROOF_INVALID_INDEX");
    expectCode(() => verifyInclusion(5, 8, H31, proof58, root8), "PROOF_MALFORMED");
    expectCode(() => verifyInclusion(5, 8, leaf, proof58, H31), "PROOF_MALFORMED");
    expectCode(() => verifyInclusion(5, 8, leaf, [proof58[0]!, H31, proof58[2]!], root8), "PROOF_MALFORMED");
    expectCode(() => verifyInclusion(5, 8, leaf, null as unknown as Uint8Array[], root8), "PROOF_MALFORMED");
    expectCode(() => verifyInclusion(5, 8, leaf, proof58.slice(1), root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyInclusion(5, 8, leaf, [...proof58, H32], root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyInclusion(0, 1, leaf, [H32], leaf), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyInclusion(5, 8, lh[4]!, proof58, root8), "PROOF_ROOT_MISMATCH");
  });

  it("root mismatches carry both roots in hex", () => {
    const wrong = flipBit(root8, 3);
    let err: unknown;
    try {
      verifyInclusion(5, 8, lh[5]!, proof58, wrong);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CustodiaError);
    const ce = err as CustodiaError;
    expect(ce.code).toBe("PROOF_ROOT_MISMATCH");
    expect(ce.details).toMatchObject({ expected: hex(wrong), computed: REF_ROOTS[8] });

    try {
      verifyConsistency(6, 8, tree.consistencyProof(6, 8), tree.rootAt(6), wrong);
      expect.unreachable();
    } catch (e) {
      expect((e as CustodiaError).details).toMatchObject({ which: "root2", expected: hex(wrong), computed: REF_ROOTS[8] });
    }
    try {
      verifyConsistency(6, 8, tree.consistencyProof(6, 8), flipBit(tree.rootAt(6), 0), root8);
      expect.unreachable();
    } catch (e) {
      expect((e as CustodiaError).details).toMatchObject({ which: "root1", computed: REF_ROOTS[6] });
    }
  });

  it("rootFromConsistencyProof / verifyConsistency", () => {
    const p68 = tree.consistencyProof(6, 8);
    const r6 = tree.rootAt(6);
    expect(hex(rootFromConsistencyProof(6, 8, p68, r6))).toBe(REF_ROOTS[8]);
    expect(hex(rootFromConsistencyProof(8, 8, [], root8))).toBe(REF_ROOTS[8]);
    verifyConsistency(6, 8, p68, r6, root8);
    verifyConsistency(8, 8, [], root8, root8);
    for (const [a, b] of [
      [0, 8],
      [0, 0],
      [9, 8],
      [1, 0],
      [-1, 8],
      [1.5, 8],
      [1, Number.NaN],
      [1, 2 ** 53],
    ] as const) {
      expectCode(() => verifyConsistency(a, b, p68, r6, root8), "PROOF_INVALID_SIZE");
      expectCode(() => rootFromConsistencyProof(a, b, p68, r6), "PROOF_INVALID_SIZE");
    }
    expectCode(() => verifyConsistency(0, 0, [], EMPTY_ROOT, EMPTY_ROOT), "PROOF_INVALID_SIZE");
    expectCode(() => verifyConsistency(0, 3, [], EMPTY_ROOT, tree.rootAt(3)), "PROOF_INVALID_SIZE");
    expectCode(() => verifyConsistency(8, 8, [root8], root8, root8), "PROOF_WRONG_LENGTH");
    expectCode(() => rootFromConsistencyProof(8, 8, [root8], root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyConsistency(8, 8, [], root8, r6), "PROOF_ROOT_MISMATCH");
    expectCode(() => verifyConsistency(6, 8, [], r6, root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyConsistency(6, 8, p68.slice(0, 2), r6, root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyConsistency(6, 8, [...p68, H32], r6, root8), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyConsistency(6, 8, [p68[0]!, H31, p68[2]!], r6, root8), "PROOF_MALFORMED");
    expectCode(() => verifyConsistency(6, 8, p68, H31, root8), "PROOF_MALFORMED");
    expectCode(() => verifyConsistency(6, 8, p68, r6, H31), "PROOF_MALFORMED");
    // equal sizes hash nothing: roots are compared as opaque bytes, as the RFC 9162 vectors expect
    expect(() => verifyConsistency(1, 1, [], H31, H31)).not.toThrow();
    expectCode(() => verifyConsistency(1, 1, [], H31, H32), "PROOF_ROOT_MISMATCH");
    expectCode(() => verifyConsistency(1, 1, [H32], H32, H32), "PROOF_WRONG_LENGTH");
    expectCode(() => verifyConsistency(6, 8, undefined as unknown as Uint8Array[], r6, root8), "PROOF_MALFORMED");
    expectCode(() => verifyConsistency(6, 8, p68, root8, root8), "PROOF_ROOT_MISMATCH");
    expectCode(() => verifyConsistency(6, 8, p68, r6, r6), "PROOF_ROOT_MISMATCH");
    expectCode(() => rootFromConsistencyProof(6, 8, p68, root8), "PROOF_ROOT_MISMATCH");
  });

  it("wire helpers", () => {
    const wire = proofToHex(proof58);
    expect(wire).toEqual(hexAll(proof58));
    expect(wire.every((s) => /^[0-9a-f]{64}$/.test(s))).toBe(true);
    expect(hexAll(proofFromHex(wire))).toEqual(wire);
    expect(hexAll(proofFromHex(JSON.parse(JSON.stringify(wire))))).toEqual(wire);
    expect(hexAll(proofFromHex(wire.map((s) => `0x${s.toUpperCase()}`)))).toEqual(wire);
    expect(proofFromHex([])).toEqual([]);
    expectCode(() => proofFromHex("ab"), "PROOF_MALFORMED");
    expectCode(() => proofFromHex(null), "PROOF_MALFORMED");
    expectCode(() => proofFromHex([1]), "PROOF_MALFORMED");
    expectCode(() => proofFromHex(["zz".repeat(32)]), "PROOF_MALFORMED");
    expectCode(() => proofFromHex(["ab".repeat(31)]), "PROOF_MALFORMED");
    expectCode(() => proofFromHex(["ab".repeat(33)]), "PROOF_MALFORMED");
    expectCode(() => proofFromHex(["a".repeat(63)]), "PROOF_MALFORMED");
    expectCode(() => proofFromHex([wire[0]!, ""]), "PROOF_MALFORMED");
    expectCode(() => proofToHex([H31]), "PROOF_MALFORMED");
    expect(hashToHex(root8)).toBe(REF_ROOTS[8]);
    expect(hex(hashFromHex(REF_ROOTS[8]!))).toBe(REF_ROOTS[8]);
    expectCode(() => hashToHex(H31), "PROOF_MALFORMED");
    expectCode(() => hashFromHex("0x12"), "PROOF_MALFORMED");
    expectCode(() => hashFromHex(42 as unknown as string), "PROOF_MALFORMED");
  });
});

describe("known non-binding of the tree size (a property of RFC 9162 proofs, not a bug)", () => {
  it("a proof for (index 0, size 3) also verifies as (index 0, size 4) against the same root", () => {
    // Both claims hash the proof in the same directions, so the root alone does not pin the
    // size: callers must take the size from the same signed checkpoint as the root.
    const tree = treeOf(REF_ENTRIES);
    expect(inclusionShape(0n, 3n)).toBe(inclusionShape(0n, 4n));
    verifyInclusion(0, 4, tree.leafHashAt(0), tree.inclusionProof(0, 3), tree.rootAt(3));
    expect(consistencyShape(2n, 3n)).toBe(consistencyShape(2n, 4n));
    verifyConsistency(2, 4, tree.consistencyProof(2, 3), tree.rootAt(2), tree.rootAt(3));
  });
});

// ---------------------------------------------------------------------------------------------
// Property tests
// ---------------------------------------------------------------------------------------------

const RUNS = { numRuns: 100 };

/**
 * 1..300 leaves with random, possibly repeated, contents. The length is drawn uniformly first:
 * fast-check's default size bias would otherwise keep nearly all arrays tiny.
 */
const anyEntries = fc
  .integer({ min: 1, max: 300 })
  .chain((n) => fc.array(fc.uint8Array({ maxLength: 12 }), { minLength: n, maxLength: n }));
/**
 * Random contents made pairwise distinct by a position suffix, for the off-by-one tests: with
 * equal leaves some shifted claims are true statements and legitimately verify.
 */
const distinctEntries = anyEntries.map((es) => es.map((e, i) => Uint8Array.from([...e, i >> 8, i & 255])));

/** A tree plus a valid (index, size). */
const inclusionCase = (entries: fc.Arbitrary<Uint8Array[]>) =>
  entries.chain((es) =>
    fc
      .integer({ min: 1, max: es.length })
      .chain((size) => fc.record({ es: fc.constant(es), size: fc.constant(size), index: fc.integer({ min: 0, max: size - 1 }) })),
  );

/** A tree plus valid 0 < size1 <= size2. */
const consistencyCase = (entries: fc.Arbitrary<Uint8Array[]>) =>
  entries.chain((es) =>
    fc
      .integer({ min: 1, max: es.length })
      .chain((size2) => fc.record({ es: fc.constant(es), size2: fc.constant(size2), size1: fc.integer({ min: 1, max: size2 }) })),
  );

describe("properties", () => {
  it("inclusion proofs of random trees verify against rootAt(size) and the naive MTH", () => {
    fc.assert(
      fc.property(inclusionCase(anyEntries), ({ es, size, index }) => {
        const tree = treeOf(es);
        const root = tree.rootAt(size);
        expect(hex(root)).toBe(hex(naiveMth(es.slice(0, size))));
        const proof = tree.inclusionProof(index, size);
        verifyInclusion(index, size, leafHash(es[index]!), proof, root);
        verifyInclusion(index, size, leafHash(es[index]!), proofFromHex(proofToHex(proof)), hashFromHex(hashToHex(root)));
      }),
      RUNS,
    );
  });

  it("consistency proofs of random trees verify", () => {
    fc.assert(
      fc.property(consistencyCase(anyEntries), ({ es, size1, size2 }) => {
        const tree = treeOf(es);
        const proof = tree.consistencyProof(size1, size2);
        verifyConsistency(size1, size2, proof, tree.rootAt(size1), tree.rootAt(size2));
        expect(hex(rootFromConsistencyProof(size1, size2, proof, tree.rootAt(size1)))).toBe(hex(tree.rootAt(size2)));
      }),
      RUNS,
    );
  });

  it("an appended tree keeps verifying old proofs' roots: consistency from every earlier root", () => {
    fc.assert(
      fc.property(anyEntries, fc.array(fc.uint8Array({ maxLength: 4 }), { maxLength: 40 }), (es, more) => {
        const tree = treeOf(es);
        const before = tree.size;
        const oldRoot = tree.root();
        for (const m of more) tree.append(leafHash(m));
        expect(hex(tree.rootAt(before))).toBe(hex(oldRoot));
        verifyConsistency(before, tree.size, tree.consistencyProof(before), oldRoot, tree.root());
      }),
      { numRuns: 30 },
    );
  });

  it("inclusion: flipping any bit of the leaf, the root or any proof element fails with PROOF_ROOT_MISMATCH", () => {
    fc.assert(
      fc.property(inclusionCase(anyEntries), fc.nat(255), fc.nat(), ({ es, size, index }, bit, which) => {
        const tree = treeOf(es);
        const root = tree.rootAt(size);
        const leaf = leafHash(es[index]!);
        const proof = tree.inclusionProof(index, size);
        expectCode(() => verifyInclusion(index, size, flipBit(leaf, bit), proof, root), "PROOF_ROOT_MISMATCH");
        expectCode(() => verifyInclusion(index, size, leaf, proof, flipBit(root, bit)), "PROOF_ROOT_MISMATCH");
        // every element, each with its own bit position
        proof.forEach((_, j) => {
          const bad = proof.slice();
          bad[j] = flipBit(proof[j]!, (bit + j * 37 + which) % 256);
          expectCode(() => verifyInclusion(index, size, leaf, bad, root), "PROOF_ROOT_MISMATCH");
        });
      }),
      RUNS,
    );
  });

  it("inclusion: dropping or adding a proof element fails with PROOF_WRONG_LENGTH", () => {
    fc.assert(
      fc.property(inclusionCase(anyEntries), fc.nat(), ({ es, size, index }, pos) => {
        const tree = treeOf(es);
        const root = tree.rootAt(size);
        const leaf = leafHash(es[index]!);
        const proof = tree.inclusionProof(index, size);
        const added = proof.slice();
        added.splice(pos % (proof.length + 1), 0, H(Uint8Array.of(pos & 255)));
        expectCode(() => verifyInclusion(index, size, leaf, added, root), "PROOF_WRONG_LENGTH");
        expectCode(() => verifyInclusion(index, size, leaf, [...proof, proof[0] ?? root], root), "PROOF_WRONG_LENGTH");
        if (proof.length > 0) {
          const dropped = proof.slice();
          dropped.splice(pos % proof.length, 1);
          expectCode(() => verifyInclusion(index, size, leaf, dropped, root), "PROOF_WRONG_LENGTH");
        }
      }),
      RUNS,
    );
  });

  it("inclusion: an index off by one always fails; a size off by one fails unless the proof shape is identical", () => {
    fc.assert(
      fc.property(inclusionCase(distinctEntries), ({ es, size, index }) => {
        const tree = treeOf(es);
        const root = tree.rootAt(size);
        const leaf = leafHash(es[index]!);
        const proof = tree.inclusionProof(index, size);
        for (const i of [index - 1, index + 1]) {
          if (i < 0 || i >= size) continue;
          expect(codeOf(() => verifyInclusion(i, size, leaf, proof, root))).toMatch(/^PROOF_(ROOT_MISMATCH|WRONG_LENGTH)$/);
        }
        const shape = inclusionShape(BigInt(index), BigInt(size));
        for (const s of [size - 1, size + 1]) {
          if (index >= s) continue;
          const code = codeOf(() => verifyInclusion(index, s, leaf, proof, root));
          if (inclusionShape(BigInt(index), BigInt(s)) === shape) expect(code).toBeUndefined();
          else expect(code).toMatch(/^PROOF_(ROOT_MISMATCH|WRONG_LENGTH)$/);
        }
      }),
      RUNS,
    );
  });

  it("consistency: flipping any bit of either root or any proof element fails with PROOF_ROOT_MISMATCH", () => {
    fc.assert(
      fc.property(consistencyCase(anyEntries), fc.nat(255), fc.nat(), ({ es, size1, size2 }, bit, which) => {
        const tree = treeOf(es);
        const r1 = tree.rootAt(size1);
        const r2 = tree.rootAt(size2);
        const proof = tree.consistencyProof(size1, size2);
        expectCode(() => verifyConsistency(size1, size2, proof, flipBit(r1, bit), r2), "PROOF_ROOT_MISMATCH");
        expectCode(() => verifyConsistency(size1, size2, proof, r1, flipBit(r2, bit)), "PROOF_ROOT_MISMATCH");
        proof.forEach((_, j) => {
          const bad = proof.slice();
          bad[j] = flipBit(proof[j]!, (bit + j * 37 + which) % 256);
          expectCode(() => verifyConsistency(size1, size2, bad, r1, r2), "PROOF_ROOT_MISMATCH");
        });
      }),
      RUNS,
    );
  });

  it("consistency: dropping or adding a proof element fails with PROOF_WRONG_LENGTH", () => {
    fc.assert(
      fc.property(consistencyCase(anyEntries), fc.nat(), ({ es, size1, size2 }, pos) => {
        const tree = treeOf(es);
        const r1 = tree.rootAt(size1);
        const r2 = tree.rootAt(size2);
        const proof = tree.consistencyProof(size1, size2);
        const added = proof.slice();
        added.splice(pos % (proof.length + 1), 0, H(Uint8Array.of(pos & 255)));
        expectCode(() => verifyConsistency(size1, size2, added, r1, r2), "PROOF_WRONG_LENGTH");
        if (proof.length > 0) {
          const dropped = proof.slice();
          dropped.splice(pos % proof.length, 1);
          expectCode(() => verifyConsistency(size1, size2, dropped, r1, r2), "PROOF_WRONG_LENGTH");
        }
      }),
      RUNS,
    );
  });

  it("consistency: sizes off by one fail unless the proof shape is identical", () => {
    fc.assert(
      fc.property(consistencyCase(distinctEntries), ({ es, size1, size2 }) => {
        const tree = treeOf(es);
        const r1 = tree.rootAt(size1);
        const r2 = tree.rootAt(size2);
        const proof = tree.consistencyProof(size1, size2);
        const shapeOf = (a: number, b: number): string => (a === b ? "equal" : consistencyShape(BigInt(a), BigInt(b)));
        const shape = shapeOf(size1, size2);
        for (const [a, b] of [
          [size1 - 1, size2],
          [size1 + 1, size2],
          [size1, size2 - 1],
          [size1, size2 + 1],
        ] as const) {
          if (a < 1 || a > b) continue;
          const code = codeOf(() => verifyConsistency(a, b, proof, r1, r2));
          if (shapeOf(a, b) === shape) expect(code).toBeUndefined();
          else expect(code).toMatch(/^PROOF_(ROOT_MISMATCH|WRONG_LENGTH)$/);
        }
      }),
      RUNS,
    );
  });

  it("verifiers match the literal RFC 9162 algorithms for sizes up to 2^53 - 1", () => {
    const big = fc.bigInt({ min: 1n, max: 2n ** 53n - 1n });
    // Bias toward values around 2^32, where 32-bit arithmetic would go wrong.
    const around32 = fc.bigInt({ min: 2n ** 32n - 64n, max: 2n ** 32n + 64n });
    const edges = fc.constantFrom(2n ** 31n, 2n ** 32n, 2n ** 32n + 2n ** 31n, 3n * 2n ** 32n, 2n ** 33n + 1n, 2n ** 52n, 2n ** 53n - 1n);
    const size = fc.oneof(big, around32, edges, fc.bigInt({ min: 1n, max: 1000n }));
    fc.assert(
      fc.property(size, size, fc.nat(), fc.integer({ min: -1, max: 1 }), (x, y, seed, delta) => {
        const [lo, hi] = x <= y ? [x, y] : [y, x];
        // Inclusion: index lo-1 in a tree of hi leaves.
        const index = lo - 1n;
        const want = inclusionShape(index, hi).length;
        const n = Math.max(0, want + delta);
        const leaf = H(Uint8Array.of(seed & 255));
        const proof = fakeHashes(seed, n);
        const rfc = rfcInclusionRoot(index, hi, leaf, proof);
        const ours = codeOf(() => rootFromInclusionProof(Number(index), Number(hi), leaf, proof));
        if (n === want) {
          expect(ours).toBeUndefined();
          expect(rfc).not.toBeNull();
          expect(hex(rootFromInclusionProof(Number(index), Number(hi), leaf, proof))).toBe(hex(rfc!));
        } else {
          expect(ours).toBe("PROOF_WRONG_LENGTH");
          expect(rfc).toBeNull();
        }
        // Consistency from lo to hi (when they differ).
        if (lo === hi) return;
        const cwant = consistencyShape(lo, hi).length - consistencyShape(lo, hi).indexOf(":") - 1 + (isPow2(lo) ? 0 : 1);
        const cn = Math.max(0, cwant + delta);
        const cproof = fakeHashes(seed + 1, cn);
        // The old root the proof implies: take it from the RFC algorithm (for a power of two the
        // seed is root1 itself, so any root works).
        const root1 = isPow2(lo) ? leaf : null;
        const res = rfcConsistencyRoots(lo, hi, root1 ?? new Uint8Array(32), cproof);
        if (cn === cwant) {
          expect(res).not.toBeNull();
          const r1 = root1 ?? res!.fr;
          const check = rfcConsistencyRoots(lo, hi, r1, cproof)!;
          expect(hex(check.fr)).toBe(hex(r1));
          expect(hex(rootFromConsistencyProof(Number(lo), Number(hi), cproof, r1))).toBe(hex(check.sr));
          verifyConsistency(Number(lo), Number(hi), cproof, r1, check.sr);
        } else {
          expect(res).toBeNull();
          expect(codeOf(() => rootFromConsistencyProof(Number(lo), Number(hi), cproof, leaf))).toBe("PROOF_WRONG_LENGTH");
        }
      }),
      { numRuns: 300 },
    );
  });
});
