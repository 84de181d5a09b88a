/**
 * The partner's commands: `partner query` (customer data, released only where the partner's
 * agreement and each customer's consent allow it) and `partner segment` (a segmentation run over
 * the consenting customers). Every decision, allow or deny, is logged by the gateway before it
 * answers; the receipts it returns are printed so the partner can later prove what it was given.
 */
import { readFileSync } from "node:fs";
import type { Command } from "commander";
import { CATEGORY_NAMES, PURPOSES, type Address, type CategoryName, type PurposeKey } from "../../core/domain.js";
import type { DataQueryResult, GatewayClient, SegmentationResult } from "../gateway-http.js";
import { CliError, EXIT, printResult, type ExitCode } from "../io.js";
import type { CommandContext } from "../main.js";
import { gatewayFor, parseCategories, parseCount, parseParty, parsePurpose, walletFromSettings } from "./wallet.js";

/** Most subjects one request may name (the gateway's limit). */
export const MAX_SUBJECTS = 1000;

/** Asks for the data of `subjects` for a purpose and categories; the answer carries a decision and receipt per subject. */
export function queryData(client: GatewayClient, subjects: readonly Address[], purpose: PurposeKey, categories: readonly CategoryName[]): Promise<DataQueryResult> {
  return client.query(subjects, purpose, categories);
}

/** Runs a segmentation for a purpose over the customers whose consent covers it. */
export function runSegmentation(client: GatewayClient, purpose: PurposeKey, options: { k?: number; seed?: number } = {}): Promise<SegmentationResult> {
  return client.segment({ purpose, ...(options.k !== undefined ? { k: options.k } : {}), ...(options.seed !== undefined ? { seed: options.seed } : {}) });
}

/** A one-line, human summary of what an allowed answer carried (never the values). */
function summariseData(data: unknown): string {
  if (data === null || data === undefined) return "no data held";
  const d = data as { profile?: Record<string, unknown> | null; transactions?: unknown[] };
  const parts: string[] = [];
  if (d.profile && typeof d.profile === "object") {
    const fields = Object.keys(d.profile).filter((k) => k !== "subject");
    if (fields.length > 0) parts.push(`profile: ${fields.join(", ")}`);
  }
  if (Array.isArray(d.transactions)) parts.push(`${d.transactions.length} transactions`);
  return parts.length ? parts.join("; ") : "no fields in these categories";
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, ...value.split(",").map((s) => s.trim()).filter(Boolean)];
}

/** Registers `partner query` and `partner segment`. */
export function registerPartner(program: Command, ctx: CommandContext): void {
  const partner = program.command("partner").description("partner firms: request customer data, run a segmentation (your wallet must be a registered PARTNER)");

  partner
    .command("query")
    .description("request customers' data for a purpose; each subject is allowed or denied by agreement and consent")
    .option("--subject <address|did>", "a customer (repeat, or comma-separate, up to 1000)", collect, [] as string[])
    .option("--subjects-file <file>", "a file with one customer address or DID per line")
    .requiredOption("--purpose <purpose>", `one of: ${PURPOSES.map((p) => p.key).join(", ")}`)
    .requiredOption("--categories <list>", `comma-separated, of: ${CATEGORY_NAMES.join(", ")}`)
    .addHelpText(
      "after",
      "\nExit code 0 when every subject was allowed, 4 (ACCESS_DENIED) when any was denied; the answer\nfor every subject is printed either way, with its log receipt.\n\nExample:\n  custodia partner query --subject 0xAbc...123 --purpose profiling --categories transactions\n",
    )
    .action(
      ctx.action(async (opts: { subject: string[]; subjectsFile?: string; purpose: string; categories: string }): Promise<ExitCode | void> => {
        const given = [...opts.subject];
        if (opts.subjectsFile) {
          let text: string;
          try {
            text = readFileSync(opts.subjectsFile, "utf8");
          } catch (e) {
            throw new CliError("INVALID_ARGUMENT", `cannot read --subjects-file ${opts.subjectsFile}: ${(e as Error).message}`, EXIT.USAGE);
          }
          given.push(...text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s && !s.startsWith("#")));
        }
        if (given.length === 0) throw new CliError("INVALID_ARGUMENT", "name at least one customer with --subject or --subjects-file", EXIT.USAGE);
        const subjects = [...new Set(given.map((s) => parseParty(s, "--subject").account))];
        if (subjects.length > MAX_SUBJECTS) throw new CliError("INVALID_ARGUMENT", `at most ${MAX_SUBJECTS} subjects per request, got ${subjects.length}`, EXIT.USAGE);
        const purpose = parsePurpose(opts.purpose);
        const categories = parseCategories(opts.categories);
        const w = await walletFromSettings(ctx);
        const r = await queryData(gatewayFor(ctx, w), subjects, purpose, categories);
        printResult(ctx.io, ctx.json(), { purpose, categories, ...r }, () =>
          [
            `${r.allowed} allowed, ${r.denied} denied at ledger block ${r.block} (${purpose}: ${categories.join(", ")})`,
            ...r.results.map((x) => `  ${x.decision.padEnd(5)}  ${x.subject}  ${x.decision === "allow" ? summariseData(x.data) : x.reason}  [receipt ${x.receipt.log} #${x.receipt.index}, leaf ${x.receipt.leafHash.slice(0, 18)}…]`),
          ].join("\n"),
        );
        if (r.denied > 0) {
          if (!ctx.json()) ctx.io.stderr(`error [ACCESS_DENIED]: ${r.denied} of ${r.results.length} subjects were denied\n`);
          return EXIT.REJECTED;
        }
      }),
    );

  partner
    .command("segment")
    .description("run a segmentation over the customers whose consent covers you, the purpose, and transactions + behavioural data")
    .requiredOption("--purpose <purpose>", `one of: ${PURPOSES.map((p) => p.key).join(", ")}`)
    .option("--k <n>", "number of segments (2-12; default: chosen by silhouette)")
    .option("--seed <n>", "random seed, for a reproducible run")
    .addHelpText("after", "\nExample:\n  custodia partner segment --purpose profiling --k 4\n")
    .action(
      ctx.action(async (opts: { purpose: string; k?: string; seed?: string }) => {
        const purpose = parsePurpose(opts.purpose);
        const k = opts.k !== undefined ? parseCount(opts.k, "--k", 2, 12) : undefined;
        const seed = opts.seed !== undefined ? parseCount(opts.seed, "--seed", 0, 2 ** 31 - 1) : undefined;
        const w = await walletFromSettings(ctx);
        const r = await runSegmentation(gatewayFor(ctx, w), purpose, { ...(k !== undefined ? { k } : {}), ...(seed !== undefined ? { seed } : {}) });
        const sizes = new Map<string, number>();
        for (const d of r.decisions) sizes.set(d.segment, (sizes.get(d.segment) ?? 0) + 1);
        printResult(ctx.io, ctx.json(), r, () =>
          [
            `segmentation run ${r.runId} at ledger block ${r.block}`,
            `  ${r.included} customers included, ${r.excluded} left out (no covering consent or no data)`,
            `  model ${r.modelHash}, input commitment ${r.dataCommitment}`,
            ...[...sizes].sort().map(([s, n]) => `  ${s}: ${n} customers`),
            `  model card logged as decisions #${r.modelCardReceipt.index}; ${r.decisions.length} decisions logged`,
          ].join("\n"),
        );
      }),
    );
}
