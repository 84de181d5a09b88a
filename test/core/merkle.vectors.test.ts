/**
 * transparency-dev/merkle RFC 9162 test vectors (JSON, bytes base64-encoded, `proof: null` for
 * an empty proof). One test per file; the file list is also counted independently so a wrong
 * path or a skipped folder cannot make the suite pass vacuously.
 */
import { readFileSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { CustodiaError } from "../../core/errors.js";
import { MerkleTree, leafHash, verifyConsistency, verifyInclusion } from "../../core/merkle.js";

const VECTORS_DIR =
  process.env.CUSTODIA_VECTORS_DIR ?? fileURLToPath(new URL("../../../shared/vectors/rfc9162", import.meta.url));

const PROOF_CODES = ["PROOF_INVALID_INDEX", "PROOF_INVALID_SIZE", "PROOF_WRONG_LENGTH", "PROOF_ROOT_MISMATCH", "PROOF_MALFORMED"];

interface InclusionVector {
  leafIdx: number;
  treeSize: number;
  root: string;
  leafHash: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

interface ConsistencyVector {
  size1: number;
  size2: number;
  root1: string;
  root2: string;
  proof: string[] | null;
  desc: string;
  wantErr: boolean;
}

function listJson(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) out.push(...listJson(full));
    else if (name.endsWith(".json")) out.push(full);
  }
  return out;
}

/** Strict base64: Buffer.from is lenient, so insist the encoding round-trips. */
function b64(s: string): Uint8Array {
  const bytes = Buffer.from(s, "base64");
  if (bytes.toString("base64") !== s) throw new Error(`not canonical base64: ${JSON.stringify(s)}`);
  return new Uint8Array(bytes);
}

const files = listJson(VECTORS_DIR).map((f) => path.relative(VECTORS_DIR, f).split(path.sep).join("/"));
const inclusionFiles = files.filter((f) => f.startsWith("inclusion/"));
const consistencyFiles = files.filter((f) => f.startsWith("consistency/"));

function load<T>(rel: string): T {
  return JSON.parse(readFileSync(path.join(VECTORS_DIR, rel), "utf8")) as T;
}

/** Runs `fn` and returns the CustodiaError code, or undefined if it did not throw. */
function codeOf(fn: () => void): string | undefined {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(CustodiaError);
    return (e as CustodiaError).code;
  }
  return undefined;
}

function expectOutcome(rel: string, wantErr: boolean, fn: () => void): void {
  const code = codeOf(fn);
  if (wantErr) {
    expect(PROOF_CODES).toContain(code);
  } else {
    expect(code).toBeUndefined();
  }
}

describe("RFC 9162 vectors: discovery", () => {
  it("finds every JSON file on disk, and nothing outside the two categories", () => {
    const onDisk = (readdirSync(VECTORS_DIR, { recursive: true }) as string[]).filter((f) => f.endsWith(".json"));
    expect(files.length).toBeGreaterThan(0);
    expect(files.length).toBe(onDisk.length);
    expect(inclusionFiles.length).toBeGreaterThan(0);
    expect(consistencyFiles.length).toBeGreaterThan(0);
    expect(inclusionFiles.length + consistencyFiles.length).toBe(files.length);
  });
});

describe.each(inclusionFiles)("RFC 9162 inclusion vector %s", (rel) => {
  it("verifies or fails as the vector says", () => {
    const v = load<InclusionVector>(rel);
    expect(typeof v.wantErr).toBe("boolean");
    const proof = (v.proof ?? []).map(b64);
    expectOutcome(rel, v.wantErr, () => verifyInclusion(v.leafIdx, v.treeSize, b64(v.leafHash), proof, b64(v.root)));
  });
});

describe.each(consistencyFiles)("RFC 9162 consistency vector %s", (rel) => {
  it("verifies or fails as the vector says", () => {
    const v = load<ConsistencyVector>(rel);
    expect(typeof v.wantErr).toBe("boolean");
    const proof = (v.proof ?? []).map(b64);
    expectOutcome(rel, v.wantErr, () => verifyConsistency(v.size1, v.size2, proof, b64(v.root1), b64(v.root2)));
  });
});

/**
 * The numbered vector folders are built on the RFC 6962 reference tree of eight leaves. Our
 * prover must produce exactly their happy-path proofs, not merely proofs that verify.
 */
describe("RFC 9162 vectors: our proofs equal the happy-path proofs", () => {
  const entries = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
  const tree = MerkleTree.fromLeafHashes(entries.map((h) => leafHash(new Uint8Array(Buffer.from(h, "hex")))));
  const hex = (xs: readonly Uint8Array[]): string[] => xs.map((x) => Buffer.from(x).toString("hex"));
  const happy = files.filter((f) => /^(inclusion|consistency)\/\d+\/happy-path\.json$/.test(f));

  it("has happy-path vectors from the reference tree", () => {
    expect(happy.length).toBeGreaterThanOrEqual(2);
  });

  it.each(happy)("%s", (rel) => {
    if (rel.startsWith("inclusion/")) {
      const v = load<InclusionVector>(rel);
      expect(hex([tree.rootAt(v.treeSize)])).toEqual(hex([b64(v.root)]));
      expect(hex([tree.leafHashAt(v.leafIdx)])).toEqual(hex([b64(v.leafHash)]));
      expect(hex(tree.inclusionProof(v.leafIdx, v.treeSize))).toEqual(hex((v.proof ?? []).map(b64)));
    } else {
      const v = load<ConsistencyVector>(rel);
      expect(hex([tree.rootAt(v.size1), tree.rootAt(v.size2)])).toEqual(hex([b64(v.root1), b64(v.root2)]));
      expect(hex(tree.consistencyProof(v.size1, v.size2))).toEqual(hex((v.proof ?? []).map(b64)));
    }
  });
});
