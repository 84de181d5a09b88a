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
  /**
   * Asks for a secret (a wallet passphrase) without echoing it; present only when someone can
   * answer (stdin and stderr are terminals). Absent: the secret must come from the environment.
   */
  askSecret?: (prompt: string) => Promise<string>;
}

export function processIo(): CliIo {
  const interactive = Boolean(process.stdin.isTTY && process.stderr.isTTY);
  return {
    stdout: (t) => void process.stdout.write(t),
    stderr: (t) => void process.stderr.write(t),
    env: process.env,
    isTTY: Boolean(process.stderr.isTTY),
    ...(interactive ? { askSecret: (prompt: string) => readSecret(process.stdin as SecretInput, (t) => void process.stderr.write(t), prompt) } : {}),
  };
}

/** What readSecret needs of a terminal: a readable stream of text that can stop echoing. */
export interface SecretInput {
  setRawMode(raw: boolean): unknown;
  setEncoding(encoding: BufferEncoding): unknown;
  resume(): unknown;
  pause(): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  on(event: "data" | "end" | "error", listener: (...args: any[]) => void): unknown;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  off(event: "data" | "end" | "error", listener: (...args: any[]) => void): unknown;
}

/** What was typed after the line a prompt took (a pasted "pw⏎pw⏎"): the next prompt's to read. */
const typedAhead = new WeakMap<SecretInput, string>();

/**
 * Reads one line from a terminal in raw mode, echoing nothing: Enter ends it, Backspace deletes,
 * escape sequences (arrow keys and the like) are ignored, and Ctrl-C, Ctrl-D or the end of the
 * input abandons it (INVALID_ARGUMENT, exit 2). Characters typed past the Enter are kept for the
 * next prompt. The terminal is restored, and the input paused, whatever happens.
 */
export function readSecret(input: SecretInput, write: (text: string) => void, prompt: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let secret: string[] = [];
    let escape: "none" | "esc" | "sequence" = "none";
    let settled = false;
    const settle = (outcome: () => void): void => {
      if (settled) return;
      settled = true;
      input.off("data", onData);
      input.off("end", onEnd);
      input.off("error", onEnd);
      input.setRawMode(false);
      input.pause();
      write("\n");
      outcome();
    };
    const abandon = (why: string): void => {
      typedAhead.delete(input);
      settle(() => reject(new CliError("INVALID_ARGUMENT", `no passphrase given (${why})`, EXIT.USAGE)));
    };
    const feed = (chunk: string): void => {
      const chars = Array.from(chunk);
      for (let i = 0; i < chars.length && !settled; i++) {
        const ch = chars[i]!;
        if (escape === "esc") {
          escape = ch === "[" || ch === "O" ? "sequence" : "none";
          continue;
        }
        if (escape === "sequence") {
          if (ch >= "@" && ch <= "~") escape = "none";
          continue;
        }
        if (ch === "\u001b") escape = "esc";
        else if (ch === "\r" || ch === "\n") {
          let rest = chars.slice(i + 1).join("");
          if (ch === "\r" && rest.startsWith("\n")) rest = rest.slice(1);
          if (rest.length > 0) typedAhead.set(input, rest);
          else typedAhead.delete(input);
          const line = secret.join("");
          settle(() => resolve(line));
        } else if (ch === "\u0003" || ch === "\u0004") abandon("interrupted");
        else if (ch === "\u007f" || ch === "\b") secret = secret.slice(0, -1);
        else if (ch >= " ") secret.push(ch);
      }
    };
    const onData = (chunk: string): void => feed(chunk);
    const onEnd = (): void => abandon("the input ended");
    write(prompt);
    input.setEncoding("utf8");
    input.setRawMode(true);
    input.on("data", onData);
    input.on("end", onEnd);
    input.on("error", onEnd);
    const pending = typedAhead.get(input);
    if (pending !== undefined) {
      typedAhead.delete(input);
      feed(pending);
    }
    if (!settled) input.resume();
  });
}

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
