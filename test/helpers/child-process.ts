import type { ChildProcess } from "node:child_process";

/**
 * Waits for a child process (a gateway fixture) to print `READY <url>` and resolves the URL.
 * Rejects when it exits first, or after `timeoutMs` (then it is SIGKILLed when `killOnTimeout`);
 * both errors carry the tail of `stderr()`.
 */
export function readyUrl(proc: ChildProcess, options: { timeoutMs: number; stderr: () => string; killOnTimeout?: boolean }): Promise<string> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      if (options.killOnTimeout) proc.kill("SIGKILL");
      reject(new Error(`gateway did not start: ${options.stderr().slice(-2000)}`));
    }, options.timeoutMs);
    let out = "";
    proc.stdout!.on("data", (c: Buffer) => {
      out += c.toString();
      const m = /READY (\S+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        out = "";
        resolve(m[1]!);
      }
    });
    proc.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited during start (${code ?? signal}): ${options.stderr().slice(-2000)}`));
    });
  });
}
