import { describe, expect, it } from "vitest";
import { decodeEvents, type RawChaincodeEvent } from "../../chaincode/adapter/chaincode-ledger.js";
import { CustodiaError } from "../../core/errors.js";

const account = "0xABaBaBaBABabABabAbAbABAbABabababaBaBABaB";
const raw = (eventName: string, payload: string, logIndex: number): RawChaincodeEvent => ({ blockNumber: 4, txId: "tx1", logIndex, eventName, payload: new TextEncoder().encode(payload) });

describe("decodeEvents: chaincode events to ledger events", () => {
  it("decodes the known events and skips events of other names", () => {
    const events = decodeEvents([raw("MemberDeactivated", JSON.stringify({ type: "MemberDeactivated", account }), 0), raw("SomethingElse", "not json", 1)]);
    expect(events).toEqual([{ type: "MemberDeactivated", account, blockNumber: 4, txId: "tx1", logIndex: 0 }]);
  });

  it("fails the sync on a known event whose payload does not read (a skipped revocation would be a missed one)", () => {
    for (const bad of [raw("ConsentRevoked", "{not json", 2), raw("ConsentRevoked", JSON.stringify({ type: "ConsentGranted" }), 3)]) {
      let caught: unknown;
      try {
        decodeEvents([bad]);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(CustodiaError);
      expect((caught as CustodiaError).code).toBe("LEDGER_UNAVAILABLE");
      expect((caught as CustodiaError).details).toMatchObject({ reason: "event_undecodable", event: "ConsentRevoked", logIndex: bad.logIndex });
    }
  });
});
