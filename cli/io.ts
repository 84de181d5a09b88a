/**
 * What every CLI command shares: where output goes, the exit codes scripts can rely on, error
 * printing (plain text, or one JSON object with --json), and a progress bar on stderr.
 */
import { CustodiaError, isCustodiaError } from "../core/errors.js";

export interface CliIo {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  env: NodeJS.ProcessEnv;
  /** Whether stderr is a terminal (progress bars draw only then). */
  isTTY: boolean;
}

export function processIo(): CliIo {
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    isTTY: Boolean(process.stderr.isTTY),
  };
}

/** Exit codes. Documented in `custodia --help`; tests assert them. */
export const EXIT = {
  OK: 0,
  /** `audit verify` found at least one failure. */
  VERIFY_FAILED: 1,
  /** Bad arguments or options (commander's own usage errors too). */
  USAGE: 2,
  /** The gateway or the ledger could not be reached, or answered 5xx. */
  UNAVAILABLE: 3,
  /** The gateway or the ledger refused the request (4xx, contract rule). */
  REJECTED: 4,
  /** Local files: wallet missing, unreadable or already present. */
  LOCAL: 5,
} as const;
export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

/** An error that ends a command with a given exit code. */
export class CliError extends CustodiaError {
  constructor(
    code: ConstructorParameters<typeof CustodiaError>[0],
    message: string,
    readonly exitCode: ExitCode,
    details?: Record<string, unknown>,
  ) {
    super(code, message, details);
  }
}

const UNAVAILABLE_CODES = new Set(["LEDGER_UNAVAILABLE", "GATEWAY_UNAVAILABLE", "INTERNAL"]);

export function exitCodeOf(e: unknown): ExitCode {
  if (e instanceof CliError) return e.exitCode;
  if (isCustodiaError(e)) {
    if (UNAVAILABLE_CODES.has(e.code)) return EXIT.UNAVAILABLE;
    if (e.code === "INVALID_ARGUMENT" || e.code === "BAD_REQUEST" || e.code === "CONFIG_INVALID") return EXIT.USAGE;
    return EXIT.REJECTED;
  }
  return EXIT.UNAVAILABLE;
}

/** Prints an error as `error [CODE]: message` or, with json, as {"error":{code,message,details}}. */
export function printError(io: CliIo, e: unknown, json: boolean): void {
  const code = isCustodiaError(e) ? e.code : "INTERNAL";
  const message = e instanceof Error ? e.message : String(e);
  const details = isCustodiaError(e) ? e.details : undefined;
  if (json) io.stdout(JSON.stringify({ error: { code, message, ...(details ? { details } : {}) } }) + "\n");
  else io.stderr(`error [${code}]: ${message}\n`);
}

/** Prints a result: JSON (one line) with --json, else the human text. */
export function printResult(io: CliIo, json: boolean, value: unknown, human: () => string): void {
  io.stdout(json ? JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? v.toString() : v)) + "\n" : human().replace(/\n?$/, "\n"));
}

export interface Progress {
  tick(n?: number): void;
  done(): void;
}

/** A progress bar on stderr for long work; silent when stderr is not a terminal or with --json. */
export function progress(io: CliIo, label: string, total: number, enabled = true): Progress {
  if (!enabled || !io.isTTY || total <= 0) return { tick: () => undefined, done: () => undefined };
  let n = 0;
  let last = 0;
  const draw = (): void => {
    const width = 30;
    const filled = Math.round((n / total) * width);
    io.stderr(`\r${label} [${"#".repeat(filled)}${"-".repeat(width - filled)}] ${n}/${total}`);
  };
  return {
    tick: (k = 1) => {
      n = Math.min(total, n + k);
      const now = Date.now();
      if (now - last > 80 || n === total) {
        last = now;
        draw();
      }
    },
    done: () => {
      n = total;
      draw();
      io.stderr("\n");
    },
  };
}
