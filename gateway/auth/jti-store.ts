import type { JsonSublevel } from "../ledger-view.js";
import type { JtiStore } from "./tokens.js";

/**
 * Spent single-use token ids, kept in LevelDB until the token would have expired anyway, so a
 * replay is refused across gateway restarts too. Spends of one (issuer, jti) are serialised in
 * memory so two concurrent presentations cannot both win.
 */
export class LevelJtiStore implements JtiStore {
  private readonly inflight = new Map<string, Promise<boolean>>();

  constructor(
    private readonly db: JsonSublevel,
    private readonly nowSec: () => number = () => Math.floor(Date.now() / 1000),
    /** Tokens are accepted up to this long past `exp`; an id is kept at least that long. */
    private readonly clockSkewSec = 30,
  ) {}

  spend(issuer: string, jti: string, exp: number): Promise<boolean> {
    const key = `${issuer} ${jti}`;
    const prior = this.inflight.get(key);
    if (prior) return prior.then(() => false);
    const p = (async () => {
      const seen = await this.db.get(key);
      if (seen !== undefined) return false;
      // classic-level honours `sync` through a sublevel; its typings do not list it
      await this.db.put(key, exp, { sync: true } as object);
      return true;
    })().finally(() => this.inflight.delete(key));
    this.inflight.set(key, p);
    return p;
  }

  /** Drops ids whose tokens have expired (plus a margin); returns how many. */
  async prune(marginSec = 120): Promise<number> {
    marginSec = Math.max(marginSec, this.clockSkewSec + 1);
    const now = this.nowSec();
    const dead: string[] = [];
    for await (const [key, exp] of this.db.iterator()) if ((exp as number) + marginSec < now) dead.push(key);
    if (dead.length) await this.db.batch(dead.map((key) => ({ type: "del" as const, key })));
    return dead.length;
  }
}
