import { afterEach, describe, expect, it } from "vitest";
import { batchWriter } from "../../../gateway/log/kv.js";
import { tempDb, type TempDb } from "./helpers.js";

const dbs: TempDb[] = [];
afterEach(async () => {
  for (const d of dbs.splice(0)) await d.dispose();
});

async function fresh(): Promise<TempDb> {
  const d = await tempDb("custodia-kv-");
  dbs.push(d);
  return d;
}

/** Every raw key and value byte of a database, through its root. */
async function dump(d: TempDb): Promise<Array<[string, string]>> {
  const out: Array<[string, string]> = [];
  for await (const [k, v] of d.db.iterator({ keyEncoding: "utf8", valueEncoding: "view" })) out.push([k, Buffer.from(v).toString("hex")]);
  return out;
}

const ops = [
  { type: "put" as const, key: "a/1", value: new Uint8Array([0, 1, 2, 255]) },
  { type: "put" as const, key: "a/2", value: "1" },
  { type: "put" as const, key: "é/ünïcode", value: new TextEncoder().encode('{"x":"é"}') },
  { type: "put" as const, key: "gone", value: "soon" },
];
const later = [{ type: "del" as const, key: "gone" }, { type: "put" as const, key: "a/1", value: new Uint8Array([9]) }];

describe("batchWriter: the direct batch path", () => {
  it("stores exactly the bytes the public batch() stores, on the root and on nested sublevels of any encoding", async () => {
    for (const place of ["root", "json sublevel", "nested view sublevel"] as const) {
      const [viaPublic, viaDirect] = [await fresh(), await fresh()];
      const handleOf = (d: TempDb) =>
        place === "root" ? d.db : place === "json sublevel" ? d.db.sublevel("subjects", { valueEncoding: "json" }) : d.db.sublevel("logs", { valueEncoding: "view" }).sublevel("inner", { valueEncoding: "view" });
      const pub = handleOf(viaPublic) as unknown as { batch(o: unknown[], opt: unknown): Promise<void> };
      for (const batch of [ops, later]) {
        await pub.batch(batch.map((op) => (op.type === "put" ? { ...op, valueEncoding: typeof op.value === "string" ? "utf8" : "view" } : op)), { keyEncoding: "utf8" });
      }
      const direct = handleOf(viaDirect);
      await direct.open(); // a sublevel opens on the next tick; until then writes take the public path
      const write = batchWriter(direct);
      for (const batch of [ops, later]) await write(batch, { sync: true });
      const expected = await dump(viaPublic);
      expect(expected.length, place).toBe(3);
      expect(await dump(viaDirect), place).toEqual(expected);
    }
  });

  it("bypasses the public batch() on a plain classic-level sublevel, and reads back through it", async () => {
    const d = await fresh();
    const sub = d.db.sublevel("logs", { valueEncoding: "view" });
    await sub.open(); // a sublevel opens on the next tick; until then writes take the public path
    let publicCalls = 0;
    const original = sub.batch.bind(sub);
    (sub as unknown as { batch: unknown }).batch = (...args: Parameters<typeof original>) => {
      publicCalls++;
      return original(...args);
    };
    await batchWriter(sub)(ops, { sync: false });
    expect(publicCalls).toBe(0);
    expect(Buffer.from((await sub.get("a/1", { valueEncoding: "view" }))!)).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it("goes through the public batch() when a prewrite hook is installed, so the hook still sees every write", async () => {
    const d = await fresh();
    const seen: string[] = [];
    d.db.hooks.prewrite.add((op) => void seen.push(String(op.key)));
    const sub = d.db.sublevel("logs", { valueEncoding: "view" });
    await batchWriter(sub)(ops, { sync: false });
    expect(seen).toEqual(["!logs!a/1", "!logs!a/2", "!logs!é/ünïcode", "!logs!gone"]);
  });

  it("refuses to write to a closed database with the public path's own error", async () => {
    const d = await fresh();
    const write = batchWriter(d.db.sublevel("logs", { valueEncoding: "view" }));
    await d.db.close();
    await expect(write(ops, { sync: true })).rejects.toMatchObject({ code: "LEVEL_DATABASE_NOT_OPEN" });
  });

  it("uses the public batch() of anything that is not classic-level", async () => {
    const calls: unknown[][] = [];
    const store = { batch: async (o: unknown[]) => void calls.push(o) };
    await batchWriter(store)(later, { sync: true });
    expect(calls).toEqual([[{ type: "del", key: "gone" }, { type: "put", key: "a/1", value: new Uint8Array([9]), valueEncoding: "view" }]]);
  });
});
