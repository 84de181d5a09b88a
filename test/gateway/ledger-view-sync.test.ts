/**
 * How decisions share ledger syncs: every request parsed in one event-loop turn joins one sync,
 * and a request that arrives after a sync asked the node waits for the next one (so it sees every
 * block mined before it arrived). A scripted ledger counts the questions; the view's storage is a
 * real LevelDB.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { LedgerPort } from "../../core/ledger.js";
import { DEFAULT_VIEW_OPTIONS, LedgerView, type JsonSublevel } from "../../gateway/ledger-view.js";
import { tempDb, type TempDb } from "./log/helpers.js";

const dbs: TempDb[] = [];
afterEach(async () => {
  for (const d of dbs.splice(0)) await d.dispose();
});

/** A ledger whose head moves when told, and whose head query can be held open. */
function scriptedLedger() {
  const state = { head: 10, asked: 0, hold: undefined as Promise<void> | undefined };
  const ledger = {
    kind: "evm",
    async blockNumber() {
      state.asked++;
      const head = state.head; // what the node knows when the question reaches it
      if (state.hold) await state.hold;
      return head;
    },
    async events() {
      return [];
    },
    async blockTime(block: number) {
      return 1_700_000_000 + block;
    },
  } as unknown as LedgerPort;
  return { state, ledger };
}

async function openView(ledger: LedgerPort, staleAfterMs = 5_000): Promise<LedgerView> {
  const d = await tempDb("custodia-view-");
  dbs.push(d);
  return LedgerView.open(ledger, d.db.sublevel("view", { valueEncoding: "json" }) as unknown as JsonSublevel, { ...DEFAULT_VIEW_OPTIONS, staleAfterMs, fromBlock: 0, clock: Date.now });
}

describe("ledger view: sync sharing", () => {
  it("serves every decision of one event-loop turn from a single question to the node", async () => {
    const { state, ledger } = scriptedLedger();
    const view = await openView(ledger);
    await view.sync();
    const before = { asked: state.asked, syncs: view.syncs };
    const blocks = await Promise.all(Array.from({ length: 10 }, () => view.freshBlock()));
    expect(blocks).toEqual(Array(10).fill(10));
    expect(state.asked - before.asked).toBe(1);
    expect(view.syncs - before.syncs).toBe(1);
  });

  it("makes a request that arrives after the node was asked wait for a new question, and sees the block mined meanwhile", async () => {
    const { state, ledger } = scriptedLedger();
    const view = await openView(ledger);
    await view.sync();
    let release!: () => void;
    state.hold = new Promise<void>((r) => (release = r));
    const early = view.freshBlock();
    await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
    expect(state.asked).toBe(2); // the early request's question is with the node
    state.head = 11; // a block (say, a revocation) is mined, then the late request arrives
    const late = view.freshBlock();
    state.hold = undefined;
    release();
    expect(await early).toBe(10);
    expect(await late).toBe(11);
    expect(state.asked).toBe(3);
  });

  it("fails every waiting decision closed at the staleness bound when the node does not answer", async () => {
    const { state, ledger } = scriptedLedger();
    const view = await openView(ledger, 300);
    await view.sync();
    state.hold = new Promise<void>(() => undefined); // never answers
    const started = Date.now();
    const outcomes = await Promise.allSettled(Array.from({ length: 5 }, () => view.freshBlock()));
    const elapsed = Date.now() - started;
    for (const o of outcomes) {
      expect(o.status).toBe("rejected");
      expect((o as PromiseRejectedResult).reason.code).toBe("LEDGER_UNAVAILABLE");
    }
    expect(elapsed).toBeGreaterThanOrEqual(290);
    expect(elapsed).toBeLessThan(5_000); // at the bound, not at the transport's own timeout or never
  });
});
