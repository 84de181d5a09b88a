import { Interface, getAddress, type Provider } from "ethers";
import type { Address } from "../core/domain.js";
import { pollWatch } from "../core/poll-watch.js";
import type { Watcher } from "../core/ledger.js";

const REGISTRY = new Interface(["event DIDOwnerChanged(address indexed identity, address owner, uint256 previousChange)"]);

/** What the sync needs of the EVM ledger (EvmLedger has both). */
export interface ControllerLedger {
  syncController(subject: Address): Promise<unknown>;
  controllerOf(subject: Address): Promise<Address>;
}

/**
 * Keeps the consent contract's copy of each subject's controller equal to the ERC-1056 registry:
 * when a did:ethr key is rotated, the gateway syncs the contract, so the old key stops signing
 * for the subject without anyone having to remember to. Idempotent (compares first), so
 * re-reading old blocks after a restart costs reads, not transactions.
 */
export function startControllerSync(args: {
  provider: Provider;
  registry: string;
  ledger: ControllerLedger;
  fromBlock: number;
  pollMs: number;
  onError?: (e: unknown) => void;
  onSynced?: (subject: Address, owner: Address) => void;
}): Watcher {
  const topic = REGISTRY.getEvent("DIDOwnerChanged")!.topicHash;
  const source = {
    blockNumber: () => args.provider.getBlockNumber(),
    events: async (from: number, to: number) => {
      const logs = await args.provider.getLogs({ address: args.registry, topics: [topic], fromBlock: from, toBlock: to });
      return logs.map((l) => {
        const parsed = REGISTRY.parseLog({ topics: [...l.topics], data: l.data })!;
        return { identity: getAddress(parsed.args[0]) as Address, owner: getAddress(parsed.args[1]) as Address };
      });
    },
  };
  return pollWatch(
    source,
    args.fromBlock,
    async (changes) => {
      // the last change per identity in this batch is the one that counts
      const latest = new Map(changes.map((c) => [c.identity, c.owner]));
      for (const [identity, owner] of latest) {
        if ((await args.ledger.controllerOf(identity)) === owner) continue;
        await args.ledger.syncController(identity);
        args.onSynced?.(identity, owner);
      }
    },
    args.onError ? { pollMs: args.pollMs, onError: args.onError } : { pollMs: args.pollMs },
    args.pollMs,
  );
}
