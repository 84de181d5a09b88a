/**
 * `custodia`: the one command-line tool for customers (wallet), partners, the consortium admin and
 * auditors. `runCli(argv, io)` runs a command in-process and resolves to its exit code, so tests
 * and the fuzzer drive it without spawning processes; `cli/bin.ts` is the process entry.
 */
import { Command, CommanderError, type OutputConfiguration } from "commander";
import { resolveSettings, type GlobalOptions, type NetworkSettings } from "./context.js";
import { EXIT, exitCodeOf, printError, processIo, type CliIo, type ExitCode } from "./io.js";
import { registerAdmin } from "./commands/admin.js";
import { registerAudit } from "./commands/audit.js";
import { registerPartner } from "./commands/partner.js";
import { registerWallet } from "./commands/wallet.js";

/** What a command's action gets besides its own arguments. */
export interface CommandContext {
  io: CliIo;
  globals(): GlobalOptions;
  settings(): NetworkSettings;
  json(): boolean;
  /**
   * Wraps an action: runs it, and turns any thrown error into a printed error and an exit code.
   * An action may return an exit code (e.g. VERIFY_FAILED); undefined means OK.
   */
  action<A extends unknown[]>(fn: (...args: A) => Promise<ExitCode | void>): (...args: A) => Promise<void>;
}

const EXIT_HELP = `
Exit codes:
  0  success
  1  a verification found a failure (audit verify/report, history, decisions)
  2  bad arguments or configuration
  3  the gateway or the ledger is unreachable (or answered 5xx)
  4  the gateway or the ledger refused the request
  5  local wallet file missing, unreadable, already present, locked (no passphrase) or the
     passphrase does not open it

Network settings (flags win over environment, which wins over <data-dir>/deployment.json):
  --gateway / CUSTODIA_GATEWAY_URL   default http://127.0.0.1:8080
  --rpc     / CUSTODIA_RPC_URL       default http://127.0.0.1:8545
  --contract / CUSTODIA_CONTRACT, --chain-id / CUSTODIA_CHAIN_ID
  --wallet  / CUSTODIA_WALLET        default <data-dir>/wallet.json
  CUSTODIA_WALLET_PASSPHRASE or CUSTODIA_WALLET_PASSPHRASE_FILE (its first line): opens an
  encrypted wallet, and encrypts the key of a new one (wallet create, wallet encrypt)
`;

/** Commander's own output: its usage errors get a code like every other error of the tool. */
function output(io: CliIo): OutputConfiguration {
  return {
    writeOut: io.stdout,
    writeErr: io.stderr,
    outputError: (text, write) => write(text.replace(/^error: /, "error [INVALID_ARGUMENT]: ")),
  };
}

export function buildProgram(io: CliIo, setExit: (code: ExitCode) => void): Command {
  const program = new Command("custodia");
  program
    .description("Custodia: consent wallet, partner access, consortium admin and independent audit")
    .option("--gateway <url>", "gateway base URL")
    .option("--rpc <url>", "ledger JSON-RPC URL")
    .option("--contract <address>", "Custodia contract address")
    .option("--chain-id <id>", "ledger chain id")
    .option("--data-dir <dir>", "the embedded network's data directory", undefined)
    .option("--wallet <file>", "wallet file")
    .option("--json", "machine-readable output: one JSON object per result")
    .addHelpText("after", EXIT_HELP)
    .showHelpAfterError()
    .exitOverride()
    .configureOutput(output(io));

  const globals = (): GlobalOptions => program.opts<GlobalOptions>();
  // resolved once per command (on first use, after the flags are parsed): it reads
  // deployment.json and the wallet passphrase file, and a command asks for it several times
  let settings: NetworkSettings | undefined;
  const ctx: CommandContext = {
    io,
    globals,
    settings: () => (settings ??= resolveSettings(globals(), io)),
    json: () => globals().json === true,
    action:
      (fn) =>
      async (...args) => {
        try {
          const code = await fn(...args);
          setExit(code ?? EXIT.OK);
        } catch (e) {
          printError(io, e, ctx.json());
          setExit(exitCodeOf(e));
        }
      },
  };
  registerWallet(program, ctx);
  registerPartner(program, ctx);
  registerAdmin(program, ctx);
  registerAudit(program, ctx);
  // every subcommand inherits the output, exit and help behaviour
  const configure = (cmd: Command): void => {
    for (const sub of cmd.commands) {
      sub.exitOverride().configureOutput(output(io)).showHelpAfterError();
      configure(sub);
    }
  };
  configure(program);
  return program;
}

/** Runs `custodia <argv...>` (argv without node and script) and resolves to the exit code. */
export async function runCli(argv: readonly string[], io: CliIo = processIo()): Promise<ExitCode> {
  let exit: ExitCode = EXIT.OK;
  const program = buildProgram(io, (c) => (exit = c));
  try {
    await program.parseAsync([...argv], { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version end with exit code 0; usage errors were already printed by commander
      return e.exitCode === 0 ? EXIT.OK : EXIT.USAGE;
    }
    printError(io, e, argv.includes("--json"));
    return exitCodeOf(e);
  }
  return exit;
}
