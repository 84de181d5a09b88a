/** Process entry of the `custodia` command (`npm run cli -- <args>`). */
import { runCli } from "./main.js";

runCli(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    process.stderr.write(`error [INTERNAL]: ${e instanceof Error ? e.message : String(e)}\n`);
    process.exitCode = 3;
  },
);
