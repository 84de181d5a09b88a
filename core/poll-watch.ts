import type { WatchOptions, Watcher } from "./ledger.js";

/** What a polling watcher needs of a ledger: its head, and the events of a block range. */
export interface PollSource<E> {
  blockNumber(): Promise<number>;
  events(fromBlock: number, toBlock: number): Promise<E[]>;
}

/**
 * Follows a ledger by polling: each tick reads the head and hands the events of the new blocks to
 * `onEvents` with the block they reach to (an empty batch when nothing is new, so callers know how
 * fresh they are). One tick at a time; errors go to `onError` and the next tick retries.
 */
export function pollWatch<E>(
  source: PollSource<E>,
  fromBlock: number,
  onEvents: (events: E[], throughBlock: number) => void | Promise<void>,
  options: WatchOptions,
  defaultPollMs: number,
): Watcher {
  const pollMs = options.pollMs ?? defaultPollMs;
  let next = fromBlock;
  let stopped = false;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const tick = async (): Promise<void> => {
    try {
      const head = await source.blockNumber();
      if (head >= next) {
        const events = await source.events(next, head);
        if (stopped) return;
        await onEvents(events, head);
        next = head + 1;
      } else {
        await onEvents([], head);
      }
    } catch (e) {
      options.onError?.(e);
    }
  };
  const loop = (): void => {
    if (stopped) return;
    running = tick().finally(() => {
      if (!stopped) timer = setTimeout(loop, pollMs);
    });
  };
  loop();
  return {
    stop: async () => {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}
