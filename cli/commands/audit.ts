/**
 * `custodia audit ...`: the independent auditor's commands.
 *
 * `audit verify` reads the anchors of a gateway's logs from the ledger, fetches the entries and
 * proofs from the gateway as an AUDITOR member, and checks everything with core alone
 * (cli/audit/verify.ts). It prints a summary (or, with --json, one VerifyReport object) and ends
 * with exit 0 when everything verifies, 1 on any finding, 3 when the gateway or the ledger cannot
 * be reached.
 */
import { writeFileSync } from "node:fs";
import { resolve } from "node:path";
import type { Command } from "commander";
import { CustodiaError, isCustodiaError } from "../../core/errors.js";
import { LOG_NAMES, type LogName } from "../../core/logs.js";
import { EvmLedger, jsonRpcProvider } from "../../contracts/evm-ledger.js";
import { GatewayClient, type AuditorKey } from "../audit/gateway-client.js";
import { formatVerifyReport, verifyAudit, type VerifyReport } from "../audit/verify.js";
import { renderReport } from "../audit/report.js";
import { CliError, EXIT, printResult, progress, type ExitCode } from "../io.js";
import type { CommandContext } from "../main.js";
import { askChainId } from "../context.js";
import { loadWallet } from "../wallet-store.js";
import { passphraseFor } from "./wallet.js";

/** Registers the `audit` command group: `verify` and `report`. */
export function registerAudit(program: Command, ctx: CommandContext): Command {
  const audit = program.command("audit").description("independent audit of a gateway's access and decision logs against the ledger");
  registerVerify(audit, ctx);
  registerReport(audit, ctx);
  return audit;
}

interface ReportFlags extends VerifyFlags {
  out?: string;
}

function registerReport(audit: Command, ctx: CommandContext): void {
  audit
    .command("report")
    .description("run the full verification and write a self-contained HTML report with charts (accesses per partner and purpose over time, denials by reason, segment shares, anchors)")
    .option("--out <file>", "where to write the report", "custodia-audit-report.html")
    .option("--log <name>", `report on one log only: ${LOG_NAMES.join(" or ")} (default: both)`)
    .option("--from-block <n>", "read anchors from this ledger block on (default: the deployment block)")
    .option("--replay", "rebuild past state from the ledger's events (for a node without an archive)")
    .addHelpText(
      "after",
      `
The report opens in any browser straight from disk; it loads nothing from the network. It is
written even when the audit finds failures, which it lists first.

Exit codes: 0 written and verified, 1 written with findings, 2 the file cannot be written,
3 the gateway or the ledger cannot be reached, 4 the gateway refused the auditor, 5 no usable wallet.`,
    )
    .action(
      ctx.action(async (flags: ReportFlags) => {
        const report = await verifyReport(ctx, flags);
        const out = resolve(flags.out ?? "custodia-audit-report.html");
        try {
          writeFileSync(out, renderReport(report.data));
        } catch (e) {
          throw new CliError("INVALID_ARGUMENT", `cannot write the report to ${out}: ${(e as Error).message}`, EXIT.USAGE);
        }
        const summary = { ok: report.ok, failures: report.failures.length, accesses: report.data.accesses.length, decisions: report.data.decisions.length, anchors: report.data.anchors.length, file: out };
        printResult(ctx.io, ctx.json(), summary, () => `${report.ok ? "verified" : `${report.failures.length} finding(s)`}: report written to ${out}\n(${summary.accesses} accesses, ${summary.decisions} segmentation runs, ${summary.anchors} anchors)`);
        return report.ok ? EXIT.OK : EXIT.VERIFY_FAILED;
      }),
    );
}

interface VerifyFlags {
  log?: string;
  fromBlock?: string;
  replay?: boolean;
}

function registerVerify(audit: Command, ctx: CommandContext): void {
  audit
    .command("verify")
    .description(
      "verify the gateway's logs against the anchors on the ledger: entries, proofs, signed checkpoints, and every access and decision re-checked against the ledger at its block (needs an AUDITOR wallet)",
    )
    .option("--log <name>", `verify one log only: ${LOG_NAMES.join(" or ")} (default: both)`)
    .option("--from-block <n>", "read anchors from this ledger block on (default: the deployment block)")
    .option("--replay", "rebuild the state at each decision's block from the ledger's events, for a node that keeps no archive of past state")
    .addHelpText(
      "after",
      `
Reads the anchored checkpoints from the ledger (not from the gateway), checks that each anchor extends
the one before it, re-hashes every entry the gateway serves against the anchored roots, checks the
gateway's signed checkpoints and a sample of its inclusion proofs, and re-checks every logged access
and segmentation decision against member, agreement and consent state on the ledger at its block.
Entries after the latest anchor are reported as pending, not as failures.

Exit codes: 0 verified, 1 a finding (listed), 3 the gateway or the ledger cannot be reached,
4 the gateway refused the auditor, 5 no usable wallet.`,
    )
    .action(ctx.action(async (flags: VerifyFlags) => runVerify(ctx, flags)));
}

async function runVerify(ctx: CommandContext, flags: VerifyFlags): Promise<ExitCode> {
  const report = await verifyReport(ctx, flags);
  printResult(ctx.io, ctx.json(), report, () => formatVerifyReport(report));
  if (report.ok) return EXIT.OK;
  if (!ctx.json()) ctx.io.stderr(`error [VERIFY_FAILED]: the audit found ${report.failures.length} failure${report.failures.length === 1 ? "" : "s"}\n`);
  return EXIT.VERIFY_FAILED;
}

/** Runs the verifier against the configured ledger and gateway. */
async function verifyReport(ctx: CommandContext, flags: VerifyFlags): Promise<VerifyReport> {
  const logs = parseLogs(flags.log);
  const fromBlock = parseBlock(flags.fromBlock);
  const settings = ctx.settings();
  if (!settings.contract) {
    throw new CliError("CONFIG_INVALID", "no Custodia contract to audit: pass --contract, set CUSTODIA_CONTRACT, or point --data-dir at a deployment", EXIT.USAGE);
  }
  const contract = settings.contract;
  const wallet = loadWallet(settings.walletPath, await passphraseFor(ctx, settings.walletPath));
  const auditor: AuditorKey = { privateKey: wallet.privateKey, did: wallet.did };
  const chainId = settings.chainId ?? (await askChainId(settings.rpcUrl));
  const provider = jsonRpcProvider(settings.rpcUrl, chainId, 10_000);
  try {
    const unreachable = (e: unknown): never => {
      if (isCustodiaError(e, "LEDGER_UNAVAILABLE") && !(e instanceof CliError)) {
        throw new CliError("LEDGER_UNAVAILABLE", `the ledger at ${settings.rpcUrl} cannot be reached: ${e.message}`, EXIT.UNAVAILABLE);
      }
      throw e;
    };
    let code: string;
    try {
      code = await provider.getCode(contract);
    } catch (e) {
      return unreachable(new CustodiaError("LEDGER_UNAVAILABLE", e instanceof Error ? e.message.split("\n")[0]! : String(e)));
    }
    if (code === "0x") throw new CliError("LEDGER_NOT_DEPLOYED", `there is no contract at ${contract} on the ledger at ${settings.rpcUrl} (chain ${chainId})`, EXIT.USAGE);
    // event scans (replayed state) always start at the deployment; --from-block only limits the anchors read
    const ledger = new EvmLedger({ provider, address: contract, deployBlock: settings.deployBlock });
    const source = new GatewayClient({ baseUrl: settings.gatewayUrl, auditor });
    const report = await verifyAudit({
      ledger,
      source,
      network: { chainId, contract },
      logs,
      ...(fromBlock !== undefined ? { fromBlock } : {}),
      deployBlock: settings.deployBlock,
      ...(flags.replay ? { replay: true } : {}),
      progress: (label, total) => progress(ctx.io, label, total, !ctx.json()),
    }).catch(unreachable);
    return report;
  } finally {
    provider.destroy();
  }
}

function parseLogs(value: string | undefined): LogName[] {
  if (value === undefined) return [...LOG_NAMES];
  if (!(LOG_NAMES as readonly string[]).includes(value)) throw new CliError("INVALID_ARGUMENT", `--log must be one of ${LOG_NAMES.join(", ")}, got "${value}"`, EXIT.USAGE);
  return [value as LogName];
}

function parseBlock(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n)) throw new CliError("INVALID_ARGUMENT", `--from-block must be a block number, got "${value}"`, EXIT.USAGE);
  return n;
}


