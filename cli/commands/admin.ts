/**
 * The consortium's commands. `admin` registers and deactivates members and registers and ends
 * data-sharing agreements, talking to the ledger directly with the admin key (the gateway has no
 * admin endpoints: membership is the ledger's business). `operator ingest` loads customer records
 * into the gateway's vault with the operator's (gateway) key.
 *
 * Keys: `--key-file <file>` (a wallet file, a keys.json of `npm start`, or a file holding a hex
 * key), else the embedded network's `<data-dir>/keys.json` (its `admin` or `gateway` field), else
 * the wallet file. Key files must be readable by their owner only, like the wallet.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { extname, join } from "node:path";
import type { Command } from "commander";
import { Wallet, computeAddress } from "ethers";
import { CATEGORY_NAMES, PURPOSES, ROLE_NAMES, categoriesFromMask, categoryMask, didHash, ethrDid, purposeMask, purposesFromMask, type Address, type Agreement, type Bytes32, type CategoryName, type Member, type PurposeKey, type RoleName } from "../../core/domain.js";
import { sha256, toHex0x } from "../../core/hash.js";
import type { TxResult } from "../../core/ledger.js";
import type { EvmLedger } from "../../contracts/evm-ledger.js";
import { GatewayClient } from "../gateway-http.js";
import { CliError, EXIT, printResult } from "../io.js";
import type { CommandContext } from "../main.js";
import { loadWallet, type LoadedWallet } from "../wallet-store.js";
import { connectLedger, passphraseFor, parseCategories, parseDate, parseParty, parsePurposes, textOrFile } from "./wallet.js";

/* ================================================================= keys */

function keyError(message: string): CliError {
  return new CliError("WALLET_INVALID", message, EXIT.LOCAL);
}

/**
 * Reads a private key from a key file: a custodia wallet file, a `npm start` keys.json (the
 * `field` entry, "admin" or "gateway"), or a file holding just the hex key. An encrypted wallet
 * file is opened with `passphrase`.
 */
export function readKeyFile(path: string, field: "admin" | "gateway", passphrase?: string): `0x${string}` {
  let text: string;
  try {
    const st = statSync(path);
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0) throw keyError(`the key file ${path} can be read by other users (mode ${(st.mode & 0o777).toString(8)}); run: chmod 600 ${path}`);
    text = readFileSync(path, "utf8");
  } catch (e) {
    if (e instanceof CliError) throw e;
    if ((e as NodeJS.ErrnoException).code === "ENOENT") throw new CliError("WALLET_MISSING", `no key file at ${path}`, EXIT.LOCAL);
    throw keyError(`cannot read the key file ${path}: ${(e as Error).message}`);
  }
  const trimmed = text.trim();
  let key: unknown = trimmed;
  if (trimmed.startsWith("{")) {
    let parsed: Record<string, unknown>;
    try {
      parsed = JSON.parse(trimmed) as Record<string, unknown>;
    } catch {
      throw keyError(`the key file ${path} is not valid JSON`);
    }
    if (parsed["format"] !== undefined) return loadWallet(path, passphrase).privateKey;
    key = parsed[field];
    if (key === undefined) throw keyError(`the key file ${path} has no "${field}" key`);
  }
  const hex = typeof key === "string" && /^(0x)?[0-9a-fA-F]{64}$/.test(key) ? (`0x${key.replace(/^0x/, "")}` as `0x${string}`) : undefined;
  if (!hex) throw keyError(`the key file ${path} holds no 32-byte hex private key`);
  try {
    computeAddress(hex);
  } catch {
    throw keyError(`the key file ${path} holds no valid secp256k1 private key`);
  }
  return hex;
}

/**
 * The key a consortium command signs with: --key-file, else <data-dir>/keys.json, else the wallet.
 * An encrypted wallet file opens with the passphrase from the environment or the terminal.
 */
export async function consortiumKey(ctx: CommandContext, keyFile: string | undefined, field: "admin" | "gateway"): Promise<`0x${string}`> {
  const settings = ctx.settings();
  const embedded = join(settings.dataDir, "keys.json");
  const path = keyFile ?? (existsSync(embedded) ? embedded : undefined);
  if (path === undefined) return loadWallet(settings.walletPath, await passphraseFor(ctx, settings.walletPath)).privateKey;
  return readKeyFile(path, field, await passphraseFor(ctx, path));
}

/* ============================================================== actions */

/** A member to register: the DID it authenticates with binds its role. */
export interface MemberInput {
  account: Address;
  did: string;
  role: RoleName;
  org: string;
}

/** Registers a member under the SHA-256 of its DID and organisation name. */
export function addMember(ledger: EvmLedger, m: MemberInput): Promise<TxResult> {
  return ledger.registerMember({ account: m.account, didHash: didHash(m.did), role: m.role, orgHash: toHex0x(sha256(new TextEncoder().encode(m.org))) as Bytes32 });
}

/** A data-sharing agreement to register. */
export interface AgreementSpec {
  partner: Address;
  purposes: PurposeKey[];
  categories: CategoryName[];
  /** Unix seconds. */
  validFrom: number;
  validUntil: number;
  /** The agreement's text (its SHA-256 goes on the ledger). */
  terms: Uint8Array;
}

/** Registers a data-sharing agreement; resolves its id. */
export function addAgreement(ledger: EvmLedger, a: AgreementSpec): Promise<TxResult & { id: bigint }> {
  return ledger.registerAgreement({ partner: a.partner, purposes: purposeMask(a.purposes), categories: categoryMask(a.categories), validFrom: a.validFrom, validUntil: a.validUntil, termsHash: toHex0x(sha256(a.terms)) as Bytes32 });
}

function parseRole(value: string): RoleName {
  const r = value.toUpperCase();
  if (!(ROLE_NAMES as readonly string[]).includes(r)) throw new CliError("INVALID_ARGUMENT", `unknown role "${value}"; valid roles: ${ROLE_NAMES.join(", ")}`, EXIT.USAGE, { valid: ROLE_NAMES });
  return r as RoleName;
}

function parseAgreementId(value: string): bigint {
  if (!/^[1-9]\d{0,30}$/.test(value)) throw new CliError("INVALID_ARGUMENT", `an agreement id is a positive integer, got "${value}"`, EXIT.USAGE);
  return BigInt(value);
}

function describeMember(m: Member): Record<string, unknown> {
  return { account: m.account, role: m.role, active: m.active, didHash: m.didHash, orgHash: m.orgHash };
}

function describeAgreement(a: Agreement): Record<string, unknown> {
  const iso = (s: number): string => new Date(s * 1000).toISOString();
  return { id: a.id.toString(), partner: a.partner, purposes: purposesFromMask(a.purposes), categories: categoriesFromMask(a.categories), validFrom: iso(a.validFrom), validUntil: iso(a.validUntil), termsHash: a.termsHash, active: a.active };
}

/** Runs `fn` with the ledger as the admin; the connection is closed afterwards. */
async function asAdmin<T>(ctx: CommandContext, keyFile: string | undefined, fn: (ledger: EvmLedger) => Promise<T>): Promise<T> {
  const settings = ctx.settings();
  const key = await consortiumKey(ctx, keyFile, "admin");
  const conn = await connectLedger(settings, { signer: new Wallet(key) });
  try {
    return await fn(conn.ledger);
  } finally {
    await conn.close();
  }
}

/** Registers `admin ...` and `operator ...`. */
export function registerAdmin(program: Command, ctx: CommandContext): void {
  const admin = program.command("admin").description("consortium admin: members and agreements, on the ledger with the admin key");
  const keyOption = "--key-file <file>";
  const keyHelp = "admin key: a wallet file, a keys.json (its admin field) or a hex key file (default: <data-dir>/keys.json, else the wallet)";

  const member = admin.command("member").description("register, deactivate and show members");

  member
    .command("add")
    .description("register a member: its DID, ledger account, role and organisation")
    .requiredOption("--did <did>", "the member's DID (the one it will authenticate with)")
    .option("--account <address>", "its ledger account (default: the account the DID names)")
    .requiredOption("--role <role>", ROLE_NAMES.join(" | "))
    .requiredOption("--org <name>", "organisation name (its SHA-256 goes on the ledger)")
    .option(keyOption, keyHelp)
    .addHelpText("after", "\nExample:\n  custodia admin member add --did did:ethr:0x7a69:0xAbc...123 --role PARTNER --org \"Acme Retail\"\n")
    .action(
      ctx.action(async (opts: { did: string; account?: string; role: string; org: string; keyFile?: string }) => {
        const fromDid = parseParty(opts.did, "--did");
        const account = opts.account !== undefined ? parseParty(opts.account, "--account").account : fromDid.account;
        if (account !== fromDid.account) throw new CliError("INVALID_ARGUMENT", `the DID ${opts.did} names account ${fromDid.account}, not ${account}: the member could never authenticate in its role`, EXIT.USAGE);
        const role = parseRole(opts.role);
        if (opts.org.trim() === "") throw new CliError("INVALID_ARGUMENT", "--org must not be empty", EXIT.USAGE);
        const tx = await asAdmin(ctx, opts.keyFile, (l) => addMember(l, { account, did: opts.did, role, org: opts.org }));
        printResult(ctx.io, ctx.json(), { account, did: opts.did, role, org: opts.org, didHash: didHash(opts.did), ...tx }, () => `registered ${role} ${account} (${opts.did}) for "${opts.org}"\n  transaction ${tx.txId} (block ${tx.blockNumber})`);
      }),
    );

  member
    .command("deactivate")
    .description("deactivate a member (it keeps its history, loses its rights)")
    .requiredOption("--account <address|did>", "the member's account or DID")
    .option(keyOption, keyHelp)
    .action(
      ctx.action(async (opts: { account: string; keyFile?: string }) => {
        const { account } = parseParty(opts.account, "--account");
        const tx = await asAdmin(ctx, opts.keyFile, (l) => l.deactivateMember(account));
        printResult(ctx.io, ctx.json(), { account, ...tx }, () => `deactivated ${account}\n  transaction ${tx.txId} (block ${tx.blockNumber})`);
      }),
    );

  member
    .command("show")
    .description("show a member as the ledger holds it (needs no key)")
    .requiredOption("--account <address|did>", "the member's account or DID")
    .action(
      ctx.action(async (opts: { account: string }) => {
        const party = parseParty(opts.account, "--account");
        const conn = await connectLedger(ctx.settings());
        try {
          const m = await conn.ledger.getMember(party.account);
          if (!m) throw new CliError("MEMBER_UNKNOWN", `${party.account} is not a member`, EXIT.REJECTED);
          const out = { ...describeMember(m), ...(party.did ? { didMatches: m.didHash === didHash(party.did) } : {}) };
          printResult(ctx.io, ctx.json(), out, () => `${m.account}: ${m.role}, ${m.active ? "active" : "INACTIVE"}\n  DID hash ${m.didHash}${party.did ? (out.didMatches ? " (matches the DID given)" : " (does NOT match the DID given)") : ""}`);
        } finally {
          await conn.close();
        }
      }),
    );

  const agreement = admin.command("agreement").description("register, end and list data-sharing agreements");

  agreement
    .command("add")
    .description("register an agreement: what a partner may ask for, and when")
    .requiredOption("--partner <address|did>", "the partner (an active PARTNER member)")
    .requiredOption("--purposes <list>", `comma-separated, of: ${PURPOSES.map((p) => p.key).join(", ")}`)
    .requiredOption("--categories <list>", `comma-separated, of: ${CATEGORY_NAMES.join(", ")}`)
    .option("--from <date>", "ISO 8601 start, or now", "now")
    .option("--until <date>", "ISO 8601 end (default: one year after the start)")
    .requiredOption("--terms <file|text>", "the agreement's terms (its SHA-256 goes on the ledger)")
    .option(keyOption, keyHelp)
    .addHelpText("after", "\nExample:\n  custodia admin agreement add --partner 0xAbc...123 --purposes profiling,direct-marketing \\\n    --categories transactions,behavioural --until 2027-01-01 --terms ./dsa-acme.pdf\n")
    .action(
      ctx.action(async (opts: { partner: string; purposes: string; categories: string; from: string; until?: string; terms: string; keyFile?: string }) => {
        const { account: partner } = parseParty(opts.partner, "--partner");
        const purposes = parsePurposes(opts.purposes);
        const categories = parseCategories(opts.categories);
        const nowSec = Math.floor(Date.now() / 1000);
        const validFrom = parseDate(opts.from, "--from", nowSec);
        const validUntil = opts.until !== undefined ? parseDate(opts.until, "--until", nowSec) : validFrom + 365 * 86_400;
        if (validUntil <= validFrom) throw new CliError("INVALID_ARGUMENT", "--until must be after --from", EXIT.USAGE);
        if (opts.terms.trim() === "") throw new CliError("INVALID_ARGUMENT", "--terms must not be empty", EXIT.USAGE);
        const terms = textOrFile(opts.terms);
        const r = await asAdmin(ctx, opts.keyFile, (l) => addAgreement(l, { partner, purposes, categories, validFrom, validUntil, terms: terms.bytes }));
        const out = { id: r.id.toString(), partner, purposes, categories, validFrom: new Date(validFrom * 1000).toISOString(), validUntil: new Date(validUntil * 1000).toISOString(), termsHash: toHex0x(sha256(terms.bytes)), termsFrom: terms.source, txId: r.txId, blockNumber: r.blockNumber };
        printResult(ctx.io, ctx.json(), out, () => `registered agreement ${out.id} for ${partner}: ${purposes.join(", ")} over ${categories.join(", ")}, ${out.validFrom} to ${out.validUntil}\n  terms hash ${out.termsHash} (from ${terms.source})\n  transaction ${r.txId} (block ${r.blockNumber})`);
      }),
    );

  agreement
    .command("end <id>")
    .description("end an agreement now: the partner gets nothing more under it")
    .option(keyOption, keyHelp)
    .action(
      ctx.action(async (idText: string, opts: { keyFile?: string }) => {
        const id = parseAgreementId(idText);
        const tx = await asAdmin(ctx, opts.keyFile, (l) => l.endAgreement(id));
        printResult(ctx.io, ctx.json(), { id: id.toString(), ...tx }, () => `ended agreement ${id}\n  transaction ${tx.txId} (block ${tx.blockNumber})`);
      }),
    );

  agreement
    .command("list")
    .description("list a partner's agreements (needs no key)")
    .requiredOption("--partner <address|did>", "the partner")
    .action(
      ctx.action(async (opts: { partner: string }) => {
        const { account } = parseParty(opts.partner, "--partner");
        const conn = await connectLedger(ctx.settings());
        try {
          const ids = await conn.ledger.agreementsOf(account);
          const list = (await Promise.all(ids.map((id) => conn.ledger.getAgreement(id)))).filter((a): a is Agreement => a !== null).map(describeAgreement);
          printResult(ctx.io, ctx.json(), { partner: account, agreements: list }, () =>
            list.length === 0 ? `no agreements for ${account}` : [`agreements of ${account}:`, ...list.map((a) => `  #${String(a["id"])} ${a["active"] ? "active" : "ENDED"}  ${(a["purposes"] as string[]).join(",")}  ${(a["categories"] as string[]).join(",")}  ${String(a["validFrom"])} → ${String(a["validUntil"])}`)].join("\n"),
          );
        } finally {
          await conn.close();
        }
      }),
    );

  const operator = program.command("operator").description("the operator (data controller): load customer records into the gateway's vault");

  operator
    .command("ingest <file>")
    .description("ingest records: a JSON array of records, or CSV with --kind (see gateway/vault/README.md)")
    .option("--kind <kind>", "for CSV files: transactions | profiles")
    .option(keyOption, "operator key: a wallet file, a keys.json (its gateway field) or a hex key file (default: <data-dir>/keys.json, else the wallet)")
    .addHelpText("after", "\nExamples:\n  custodia operator ingest ./records.json\n  custodia operator ingest ./transactions.csv --kind transactions\n")
    .action(
      ctx.action(async (file: string, opts: { kind?: string; keyFile?: string }) => {
        const csv = opts.kind !== undefined || extname(file).toLowerCase() === ".csv";
        if (csv && opts.kind !== "transactions" && opts.kind !== "profiles") throw new CliError("INVALID_ARGUMENT", "CSV files need --kind transactions or --kind profiles", EXIT.USAGE);
        let text: string;
        try {
          text = readFileSync(file, "utf8");
        } catch (e) {
          throw new CliError("INVALID_ARGUMENT", `cannot read ${file}: ${(e as Error).message}`, EXIT.USAGE);
        }
        let records: unknown[] | undefined;
        if (!csv) {
          try {
            records = JSON.parse(text) as unknown[];
          } catch {
            throw new CliError("INVALID_ARGUMENT", `${file} is not valid JSON (CSV files need --kind)`, EXIT.USAGE);
          }
          if (!Array.isArray(records)) throw new CliError("INVALID_ARGUMENT", `${file} must hold a JSON array of records`, EXIT.USAGE);
        }
        const settings = ctx.settings();
        const key = await consortiumKey(ctx, opts.keyFile, "gateway");
        const probe = new GatewayClient(settings.gatewayUrl, { wallet: null });
        const health = await probe.health();
        const wallet: LoadedWallet = { privateKey: key, address: computeAddress(key) as Address, did: ethrDid(health.ledger.chainId, computeAddress(key)), method: "ethr" };
        const client = new GatewayClient(settings.gatewayUrl, { wallet, health });
        const r = records ? await client.ingest(records) : await client.ingestCsv(text, opts.kind as "transactions" | "profiles");
        printResult(ctx.io, ctx.json(), { records: r.records, subjects: r.subjects.length }, () => `ingested ${r.records} records for ${r.subjects.length} customers`);
      }),
    );
}

