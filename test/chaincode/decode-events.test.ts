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
    const revoked = { type: "ConsentRevoked", subject: account, partner: account, purpose: 1, nonce: 0 };
    expect(decodeEvents([raw("ConsentRevoked", JSON.stringify(revoked), 2)])).toHaveLength(1);
    const bads = [
      raw("ConsentRevoked", "{not json", 2),
      raw("ConsentRevoked", JSON.stringify({ type: "ConsentGranted" }), 3),
      raw("ConsentRevoked", JSON.stringify({ ...revoked, purpose: undefined }), 4), // a revocation of nothing
      raw("ConsentRevoked", JSON.stringify({ ...revoked, purpose: "1" }), 5),
      raw("ConsentRevoked", JSON.stringify({ ...revoked, subject: "0x123" }), 6), // an address that does not parse
      raw("DataCommitted", JSON.stringify({ type: "DataCommitted", subject: account, commitment: "0x12" }), 7),
      raw("MemberRegistered", JSON.stringify({ type: "MemberRegistered", account, role: "KING", didHash: `0x${"ab".repeat(32)}`, orgHash: `0x${"ab".repeat(32)}` }), 8),
    ];
    for (const bad of bads) {
      let caught: unknown;
      try {
        decodeEvents([bad]);
      } catch (e) {
        caught = e;
      }
      expect(caught).toBeInstanceOf(CustodiaError);
      expect((caught as CustodiaError).code).toBe("LEDGER_UNAVAILABLE");
      expect((caught as CustodiaError).details).toMatchObject({ reason: "event_undecodable", event: bad.eventName, logIndex: bad.logIndex });
    }
  });
});
