import fc from "fast-check";
import { EventFragment, Interface, getAddress, hexlify, zeroPadValue, type Provider } from "ethers";
import { describe, expect, it } from "vitest";
import { loadArtifact } from "../../contracts/artifacts.js";
import { EvmLedger, decodeStaticEvent } from "../../contracts/evm-ledger.js";
import { CustodiaError } from "../../core/errors.js";

const iface = new Interface(loadArtifact("Custodia").abi as never);
const events: EventFragment[] = [];
iface.forEachEvent((f) => events.push(f));

/** A value of an event parameter's type, as ethers takes it for encoding. */
function valueOf(type: string): fc.Arbitrary<unknown> {
  if (type === "address") return fc.uint8Array({ minLength: 20, maxLength: 20 }).map((b) => getAddress(hexlify(b)));
  if (type === "bytes32") return fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => hexlify(b));
  const bits = Number(/^uint(\d+)$/.exec(type)![1]);
  return fc.bigInt({ min: 0n, max: (1n << BigInt(bits)) - 1n });
}

function encoded(fragment: EventFragment, values: unknown[]): { topics: string[]; data: string } {
  return iface.encodeEventLog(fragment, values);
}

describe("decodeStaticEvent: the Custodia contract's logs without ethers' per-log Keccak work", () => {
  it("covers every event of the contract (no fallback needed)", () => {
    expect(events.map((f) => f.name)).toEqual(expect.arrayContaining(["MemberRegistered", "ConsentGranted", "ConsentRevoked", "CheckpointAnchored"]));
    for (const f of events) {
      const sample = f.inputs.map((i) => fc.sample(valueOf(i.type), 1)[0]);
      expect(decodeStaticEvent(f, encoded(f, sample).topics, encoded(f, sample).data), f.name).toBeDefined();
    }
  });

  it("decodes exactly as ethers' decodeEventLog for arbitrary values of every event (property)", () => {
    for (const fragment of events) {
      fc.assert(
        fc.property(fc.tuple(...fragment.inputs.map((i) => valueOf(i.type))), (values) => {
          const { topics, data } = encoded(fragment, values);
          const ours = decodeStaticEvent(fragment, topics, data);
          expect(ours).toEqual([...iface.decodeEventLog(fragment, data, topics)]);
          expect(ours).toEqual(values.map((v) => (typeof v === "string" && v.length === 66 ? v.toLowerCase() : v)));
        }),
        { numRuns: 60 },
      );
    }
  });

  it("refuses a log that does not fit the event, as ethers does, and where ethers would guess", () => {
    const fragment = iface.getEvent("ConsentRevoked")!;
    const subject = getAddress(`0x${"ab".repeat(20)}`);
    const { topics, data } = encoded(fragment, [subject, subject, 3n, 7n]);
    // ethers reports some decoding errors only when the value is read: spread the result
    const both = (t: string[], d: string, ours: RegExp): void => {
      expect(() => decodeStaticEvent(fragment, t, d)).toThrow(ours);
      expect(() => [...iface.decodeEventLog(fragment, d, t)]).toThrow();
    };
    both(topics.slice(0, 3), data, /3 topics/);
    both(topics, "0x", /does not hold/);
    both([topics[0]!, zeroPadValue("0x01" + "ab".repeat(20), 32), topics[2]!, topics[3]!], data, /wider than address/);
    // ethers masks an integer to its width (purpose 256 would read as 0) and ignores data beyond the
    // last word; Solidity emits neither, and such a log is refused like any log that does not decode
    const wide = [topics[0]!, topics[1]!, topics[2]!, zeroPadValue("0x0100", 32)];
    expect([...iface.decodeEventLog(fragment, data, wide)][2]).toBe(0n);
    expect(() => decodeStaticEvent(fragment, wide, data)).toThrow(/wider than uint8/);
    expect(() => decodeStaticEvent(fragment, topics, `${data}00`)).toThrow(/does not hold/);
    expect(() => decodeStaticEvent(fragment, [topics[0]!, "0x1234", topics[2]!, topics[3]!], data)).toThrow(/32 bytes/);
    const granted = iface.getEvent("ConsentGranted")!.topicHash;
    both([granted, topics[1]!, topics[2]!, topics[3]!], data, /topic 0/);
  });

  it("leaves events with other parameter types to ethers", () => {
    const other = EventFragment.from("event Note(address indexed who, string text)");
    expect(decodeStaticEvent(other, [], "0x")).toBeUndefined();
  });

  it("a contract event that does not decode fails the sync (fail closed); other logs are skipped", async () => {
    // A test double for the node: a real one cannot be made to return a malformed log.
    const fragment = iface.getEvent("ConsentRevoked")!;
    const subject = getAddress(`0x${"cd".repeat(20)}`);
    const good = { ...encoded(fragment, [subject, subject, 3n, 7n]), blockNumber: 9, transactionHash: `0x${"11".repeat(32)}`, index: 0 };
    const unknown = { ...good, topics: [`0x${"22".repeat(32)}`], data: "0x", index: 1 };
    const broken = { ...good, data: "0x", index: 2 };
    const synced = iface.getEvent("ControllerSynced")!; // the contract's, but not a ledger event of the gateway's
    const other = { ...encoded(synced, [subject, subject]), blockNumber: 9, transactionHash: good.transactionHash, index: 3 };
    let logs: object[] = [good, unknown, other];
    const node = { getLogs: async () => logs } as unknown as Provider;
    const ledger = new EvmLedger({ provider: node, address: `0x${"33".repeat(20)}` });
    const events = await ledger.events(0, 9);
    expect(events).toEqual([{ type: "ConsentRevoked", subject, partner: subject, purpose: 3, nonce: 7, blockNumber: 9, txId: good.transactionHash, logIndex: 0 }]);
    logs = [good, broken];
    const e = await ledger.events(0, 9).then(() => null, (x: unknown) => x);
    expect(e).toBeInstanceOf(CustodiaError);
    expect((e as CustodiaError).code).toBe("LEDGER_UNAVAILABLE");
    expect((e as CustodiaError).details).toMatchObject({ reason: "event_undecodable", event: "ConsentRevoked", logIndex: 2 });
    // an auditor's list of checkpoints does not lose one either
    const anchored = iface.getEvent("CheckpointAnchored")!;
    logs = [{ ...encoded(anchored, [`0x${"44".repeat(32)}`, subject, 10n, `0x${"55".repeat(32)}`, 0n]), data: "0x", blockNumber: 9, transactionHash: good.transactionHash, index: 4 }];
    const c = await ledger.checkpoints(`0x${"44".repeat(32)}`).then(() => null, (x: unknown) => x);
    expect((c as CustodiaError).details).toMatchObject({ reason: "event_undecodable", event: "CheckpointAnchored" });
  });
});
