/**
 * Precise revert assertions for ethers 6 against custom Solidity errors.
 *
 *   await expectRevert(send(c, "endAgreement", 9n), fx.iface, "AgreementUnknown", [9n]);
 *
 * Framework-agnostic (throws AssertionError), so it works under vitest, node:test or a script.
 */
import { AssertionError } from "node:assert";
import { isHexString, type Interface } from "ethers";

/** Hex revert data of a failed call or transaction, searching where ethers/Hardhat put it. */
export function revertData(err: unknown): string | undefined {
  const seen = new Set<unknown>();
  const visit = (value: unknown, depth: number): string | undefined => {
    if (value === null || typeof value !== "object" || seen.has(value) || depth > 6) return undefined;
    seen.add(value);
    const v = value as Record<string, unknown>;
    // `data` on an error object is the revert payload; `transaction.data` is calldata, never visited.
    const data = v["data"];
    if (typeof data === "string" && isHexString(data) && data.length >= 10) return data;
    if (data && typeof data === "object") {
      const inner = visit(data, depth + 1);
      if (inner) return inner;
    }
    for (const key of ["revert", "info", "error", "cause"]) {
      if (key === "revert" && v[key] && typeof v[key] === "object") {
        const r = v[key] as { data?: unknown };
        if (typeof r.data === "string" && isHexString(r.data)) return r.data;
        continue;
      }
      const inner = visit(v[key], depth + 1);
      if (inner) return inner;
    }
    return undefined;
  };
  return visit(err, 0);
}

/** Normalises values so bigint/number and address case do not cause false mismatches. */
function normalise(value: unknown): unknown {
  if (typeof value === "number") return BigInt(value);
  if (typeof value === "string" && isHexString(value)) return value.toLowerCase();
  if (Array.isArray(value)) return value.map(normalise);
  return value;
}

function show(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === "bigint" ? `${v}n` : v));
}

/**
 * Awaits `promise`, requires it to reject with the custom error `name` of `iface` and, when `args`
 * is given, exactly those arguments (numbers and bigints compare equal; hex strings case-blind).
 * Returns the decoded arguments.
 */
export async function expectRevert(
  promise: Promise<unknown>,
  iface: Interface,
  name: string,
  args?: readonly unknown[],
): Promise<unknown[]> {
  let error: unknown;
  try {
    await promise;
  } catch (e) {
    error = e;
  }
  if (error === undefined) throw new AssertionError({ message: `expected revert ${name}, but the call succeeded` });
  const data = revertData(error);
  if (!data) {
    throw new AssertionError({
      message: `expected revert ${name}, but no revert data was found: ${(error as Error)?.message ?? String(error)}`,
    });
  }
  const parsed = iface.parseError(data);
  if (!parsed) throw new AssertionError({ message: `expected revert ${name}, got undecodable revert data ${data}` });
  if (parsed.name !== name) {
    throw new AssertionError({
      message: `expected revert ${name}, got ${parsed.name}(${show(parsed.args.toArray())})`,
      actual: parsed.name,
      expected: name,
    });
  }
  const actual = parsed.args.toArray() as unknown[];
  if (args !== undefined) {
    const a = normalise(actual);
    const b = normalise([...args]);
    if (show(a) !== show(b)) {
      throw new AssertionError({
        message: `${name}: expected args ${show(b)}, got ${show(a)}`,
        actual: a,
        expected: b,
      });
    }
  }
  return actual;
}
