import type { Bytes32 } from "./domain.js";
import { hashCanonical, toHex0x } from "./hash.js";

/** The logs every gateway keeps: data accesses, and model decisions with their model cards. */
export const LOG_NAMES = ["access", "decisions"] as const;
export type LogName = (typeof LOG_NAMES)[number];

/**
 * The id a gateway's log is anchored under: SHA-256 of the canonical JSON of the chain, the
 * contract, the gateway account and the log name. Binding all four means an anchor can never be
 * replayed for another chain, contract, gateway or log, and lets an auditor find a gateway's
 * anchors on the ledger from public facts alone, without asking the gateway.
 */
export function logIdFor(chainId: number, contract: string, gateway: string, name: LogName): Bytes32 {
  return toHex0x(hashCanonical({ chainId, contract: contract.toLowerCase(), gateway: gateway.toLowerCase(), log: name, scheme: "custodia-log/1" }));
}
