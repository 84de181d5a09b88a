import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { MerkleTree } from "../../../core/merkle.js";
import { FileLeafStore } from "../../../gateway/log/leaf-file.js";
import { expectCode } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "custodia-leaf-file-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
let files = 0;
const path = (): string => join(dir, `leaves-${files++}`);
const leaf = (): Uint8Array => new Uint8Array(randomBytes(32));
const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

function readAll(s: FileLeafStore, start: number, count: number): string[] {
  const into = new Uint8Array(count * 32);
  s.read(start, count, into);
  return Array.from({ length: count }, (_, i) => hex(into.subarray(i * 32, (i + 1) * 32)));
}

describe("FileLeafStore", () => {
  it("reads back what was appended, across the file and the buffer, and writes the file in whole buffers", () => {
    const p = path();
    const s = FileLeafStore.create(p, 4);
    const ls = Array.from({ length: 10 }, leaf);
    for (const l of ls) s.append(l);
    expect(s.length).toBe(10);
    expect(statSync(p).size).toBe(8 * 32); // two buffers of 4 written, 2 leaves still buffered
    expect(readAll(s, 0, 10)).toEqual(ls.map(hex));
    expect(readAll(s, 6, 3)).toEqual(ls.slice(6, 9).map(hex)); // straddles file and buffer
    expect(readAll(s, 9, 1)).toEqual([hex(ls[9]!)]);
    s.close();
  });

  it("truncates within the buffer and within the file, and appends after", () => {
    const s = FileLeafStore.create(path(), 4);
    const ls = Array.from({ length: 11 }, leaf);
    for (const l of ls) s.append(l);
    s.truncate(9); // within the buffer
    expect(s.length).toBe(9);
    expect(readAll(s, 0, 9)).toEqual(ls.slice(0, 9).map(hex));
    s.truncate(5); // within the file
    const more = [leaf(), leaf(), leaf(), leaf(), leaf()];
    for (const l of more) s.append(l);
    expect(readAll(s, 0, 10)).toEqual([...ls.slice(0, 5), ...more].map(hex));
    s.close();
  });

  it("starts empty over whatever the file held (it is rebuilt on every open)", () => {
    const p = path();
    writeFileSync(p, randomBytes(1000));
    const s = FileLeafStore.create(p, 2);
    expect(s.length).toBe(0);
    expect(statSync(p).size).toBe(0);
    s.close();
  });

  it("gives each store its own file: a second store created on the same path leaves the first one's leaves alone", () => {
    const p = path();
    const a = FileLeafStore.create(p, 2);
    const ls = Array.from({ length: 7 }, leaf);
    for (const l of ls) a.append(l);
    const b = FileLeafStore.create(p, 2);
    for (let i = 0; i < 9; i++) b.append(leaf());
    expect(readAll(a, 0, 7)).toEqual(ls.map(hex));
    expect(b.length).toBe(9);
    a.close();
    b.close();
  });

  it("refuses work once closed, and paths it cannot write, with codes", async () => {
    const s = FileLeafStore.create(path(), 1);
    s.append(leaf());
    s.close();
    s.close(); // twice is fine
    await expectCode(() => s.read(0, 1, new Uint8Array(32)), "INTERNAL", "leaf_file_closed");
    await expectCode(() => FileLeafStore.create(join(dir, "no-such-dir", "leaves")), "CONFIG_INVALID", "leaf_file_unwritable");
    await expectCode(() => FileLeafStore.create(path(), 0), "INVALID_ARGUMENT");
  });

  it("backs a pruned tree that agrees with the full tree through appends and truncations (property)", () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 1, max: 9 }), fc.array(fc.oneof(fc.integer({ min: 1, max: 50 }).map((n) => ({ add: n })), fc.nat({ max: 120 }).map((cut) => ({ cut }))), { minLength: 1, maxLength: 6 }), (prune, buffer, steps) => {
        const store = FileLeafStore.create(path(), buffer);
        try {
          const t = new MerkleTree({ pruneBelow: prune, leaves: store });
          let ref: Uint8Array[] = [];
          for (const step of steps) {
            if ("add" in step) {
              for (let i = 0; i < step.add; i++) {
                const l = leaf();
                t.append(l);
                ref.push(l);
              }
            } else {
              const size = Math.min(step.cut, ref.length);
              t.truncate(size);
              ref = ref.slice(0, size);
            }
          }
          const full = MerkleTree.fromLeafHashes(ref);
          for (let s = 0; s <= ref.length; s++) expect(hex(t.rootAt(s))).toBe(hex(full.rootAt(s)));
          for (let i = 0; i < ref.length; i++) {
            expect(hex(t.leafHashAt(i))).toBe(hex(ref[i]!));
            expect(t.inclusionProof(i).map(hex)).toEqual(full.inclusionProof(i).map(hex));
          }
          for (let s = 1; s <= ref.length; s++) expect(t.consistencyProof(s).map(hex)).toEqual(full.consistencyProof(s).map(hex));
        } finally {
          store.close();
        }
      }),
      { numRuns: 40 },
    );
  });
});
