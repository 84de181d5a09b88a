import { canonicalize } from "../../core/jcs.js";
import { CustodiaError, type ErrorCode } from "../../core/errors.js";
import { ERROR_PREFIX } from "./protocol.js";

/**
 * A rule violation. Its message is the stable wire form `CUSTODIA:<CODE>: <Name> <args JSON>`
 * (see protocol.ts): Fabric only carries an error's message from chaincode to client, so the code
 * travels in it. `name` is the Solidity custom error this mirrors, so both ledgers report the same
 * error for the same violation.
 */
export class RuleError extends Error {
  readonly code: ErrorCode;
  readonly rule: string;
  readonly args: Readonly<Record<string, string | number | boolean>>;

  constructor(code: ErrorCode, rule: string, args: Record<string, string | number | boolean> = {}) {
    super(`${ERROR_PREFIX}${code}: ${rule} ${canonicalize(args)}`);
    this.name = "RuleError";
    this.code = code;
    this.rule = rule;
    this.args = args;
  }
}

/** Any error a transaction function threw, as the wire-form error the client sees. */
export function toRuleError(e: unknown): RuleError {
  if (e instanceof RuleError) return e;
  if (e instanceof CustodiaError) return new RuleError(e.code, "CoreError", { message: e.message });
  const message = e instanceof Error ? e.message : String(e);
  return new RuleError("INTERNAL", "Internal", { message: message.slice(0, 500) });
}
