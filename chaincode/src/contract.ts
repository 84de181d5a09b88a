import { Context, Contract } from "fabric-contract-api";
// fabric-contract-api is CommonJS and adds its decorators with Object.assign, which Node's ESM
// loader cannot see as named exports: take them from the default (module.exports) object.
import fabricContractApi from "fabric-contract-api";
import { ALL_CATEGORIES, MAX_PURPOSE_ID, Role, ROLE_NAMES, type Address, type Agreement, type Bytes32, type RoleName } from "../../core/domain.js";
import { evaluatePermission } from "../../core/permission.js";
import { consentKey, custodiaDomain, EIP712_NAME, EIP712_VERSION, type Eip712Domain } from "../../core/eip712.js";
import { canonicalize } from "../../core/jcs.js";
import { parseAddress, parseBytes32, parseSmallUint, parseUint, keyNumber, UINT32_MAX, UINT40_MAX, ZERO_ADDRESS, ZERO_BYTES32 } from "./codec.js";
import { RuleError, toRuleError } from "./errors.js";
import { fabricAccount } from "./identity.js";
import {
  CONTRACT_NAME,
  type AgreementView,
  type CheckpointEntryView,
  type CommitmentView,
  type ConsentView,
  type DomainView,
  type EventPayload,
  type LogHeadView,
  type MemberView,
  type PermissionView,
  type WhoAmIView,
} from "./protocol.js";
import { requireNotExpired, requireSignedBy } from "./signatures.js";
import {
  State,
  type AgreementRecord,
  type CheckpointRecord,
  type CommitmentRecord,
  type ConfigRecord,
  type ConsentRecord,
  type HeadRecord,
  type MemberRecord,
} from "./state.js";

const { Info, Param, Returns, Transaction } = fabricContractApi;

const EMPTY_CONSENT: ConsentRecord = { categories: 0, expiresAt: 0, grantedAt: 0, revokedAt: 0, nonce: 0 };

/**
 * The Custodia consent ledger as a Fabric contract: the same operations, checks (in the same
 * order), errors and events as contracts/Custodia.sol, over Fabric world state.
 *
 * - Callers are Fabric client identities; their ledger account is `fabricAccount(mspId, id)`.
 * - "Now" is the transaction timestamp (the proposal's channel-header time, identical on every
 *   endorser) in whole seconds, where the Solidity contract uses block.timestamp. No clock, no
 *   randomness: endorsement is deterministic.
 * - Subject signatures are EIP-712 over the domain stored by InitLedger, so a wallet signature made
 *   for the EVM deployment is accepted here too.
 * - Every write emits one chaincode event (Fabric keeps one per transaction) named like the
 *   Solidity event, payload canonical JSON.
 * - Violations throw `CUSTODIA:<ErrorCode>: <SolidityError> {args}`.
 *
 * Not mirrored: ERC-1056 key rotation (the Solidity contract may consult an EthereumDIDRegistry
 * for a rotated subject key; Fabric has no such registry, so only the subject's own key signs).
 */
@Info({ title: "Custodia", description: "Consent and data-audit ledger: membership, agreements, EIP-712 subject-signed consent, data commitments and erasure, log checkpoints", version: "1" })
export class CustodiaContract extends Contract {
  constructor() {
    super(CONTRACT_NAME);
  }

  /** Turns every failure into the wire-form rule error, so clients can always map the code. */
  override async aroundTransaction(ctx: Context, fn: Function, parameters: unknown[]): Promise<void> {
    try {
      return await super.aroundTransaction(ctx, fn, parameters);
    } catch (e) {
      throw toRuleError(e);
    }
  }

  override async unknownTransaction(ctx: Context): Promise<void> {
    const { fcn } = ctx.stub.getFunctionAndParameters();
    throw new RuleError("BAD_REQUEST", "UnknownTransaction", { function: fcn });
  }

  /* --------------------------------------------------------------- setup */

  /**
   * Initialises the ledger once: stores the EIP-712 domain subjects sign for (normally the EVM
   * deployment's chain id and Custodia address, so one signature serves both ledgers) and
   * registers the caller as the first active ADMIN, as the Solidity constructor registers `admin`.
   */
  @Transaction()
  @Param("chainId", "string", "EIP-712 domain chain id (decimal)")
  @Param("verifyingContract", "string", "EIP-712 domain verifying contract (address)")
  async InitLedger(ctx: Context, chainId: string, verifyingContract: string): Promise<void> {
    const state = new State(ctx);
    if (await state.get<ConfigRecord>("config", [])) throw new RuleError("UNAUTHORIZED", "AlreadyInitialised");
    const chain = parseUint(chainId, 256, "chainId");
    if (chain === 0n) throw new RuleError("INVALID_ARGUMENT", "InvalidArgument", { field: "chainId", reason: "must be positive" });
    const contract = parseAddress(verifyingContract, "verifyingContract");
    const admin = this.caller(ctx);
    const now = this.now(ctx);
    const config: ConfigRecord = {
      name: EIP712_NAME,
      version: EIP712_VERSION,
      chainId: chain.toString(),
      verifyingContract: contract,
      admin,
      initialisedAt: now,
      txId: ctx.stub.getTxID(),
    };
    await state.put("config", [], config);
    // as Membership's constructor: _register(admin, 0, ADMIN, 0)
    await state.put("member", [admin], { didHash: ZERO_BYTES32, orgHash: ZERO_BYTES32, role: "ADMIN", active: true } satisfies MemberRecord);
    this.emit(ctx, { type: "MemberRegistered", account: admin, role: "ADMIN", didHash: ZERO_BYTES32, orgHash: ZERO_BYTES32, time: now });
  }

  /** The calling identity's ledger account. Works before InitLedger (clients learn their account). */
  @Transaction(false)
  @Returns("string")
  async WhoAmI(ctx: Context): Promise<string> {
    const mspId = ctx.clientIdentity.getMSPID();
    const id = ctx.clientIdentity.getID();
    return canonicalize({ account: fabricAccount(mspId, id), mspId, id } satisfies WhoAmIView);
  }

  /** The EIP-712 domain (ERC-5267's fields that Custodia uses). */
  @Transaction(false)
  @Returns("string")
  async Eip712Domain(ctx: Context): Promise<string> {
    const c = await this.config(ctx);
    return canonicalize({ name: c.name, version: c.version, chainId: c.chainId, verifyingContract: c.verifyingContract } satisfies DomainView);
  }

  /* ---------------------------------------------------------- membership */

  /** registerMember: ADMIN only; account != 0, role != NONE, never registered before. */
  @Transaction()
  async RegisterMember(ctx: Context, account: string, didHash: string, role: string, orgHash: string): Promise<void> {
    await this.config(ctx);
    const state = new State(ctx);
    await this.requireActive(state, ctx, "ADMIN");
    const who = parseAddress(account, "account");
    const did = parseBytes32(didHash, "didHash");
    const org = parseBytes32(orgHash, "orgHash");
    if (who === ZERO_ADDRESS) throw new RuleError("INVALID_ADDRESS", "MembershipInvalidAccount", { account: who });
    const roleName = this.parseRole(role);
    if (await state.get<MemberRecord>("member", [who])) throw new RuleError("MEMBER_EXISTS", "MembershipExists", { account: who });
    await state.put("member", [who], { didHash: did, orgHash: org, role: roleName, active: true } satisfies MemberRecord);
    this.emit(ctx, { type: "MemberRegistered", account: who, role: roleName, didHash: did, orgHash: org, time: this.now(ctx) });
  }

  /** deactivateMember: ADMIN only; the member keeps its record but loses every right. */
  @Transaction()
  async DeactivateMember(ctx: Context, account: string): Promise<void> {
    await this.config(ctx);
    const state = new State(ctx);
    await this.requireActive(state, ctx, "ADMIN");
    const who = parseAddress(account, "account");
    const m = await state.get<MemberRecord>("member", [who]);
    if (!m) throw new RuleError("MEMBER_UNKNOWN", "MembershipUnknown", { account: who });
    if (!m.active) throw new RuleError("MEMBER_INACTIVE", "MembershipInactive", { account: who });
    await state.put("member", [who], { ...m, active: false } satisfies MemberRecord);
    this.emit(ctx, { type: "MemberDeactivated", account: who, time: this.now(ctx) });
  }

  /** The member record, or null when the account was never registered. */
  @Transaction(false)
  @Returns("string")
  async Member(ctx: Context, account: string): Promise<string> {
    const who = parseAddress(account, "account");
    const m = await new State(ctx).get<MemberRecord>("member", [who]);
    return canonicalize(m ? ({ account: who, didHash: m.didHash, orgHash: m.orgHash, role: m.role, active: m.active } satisfies MemberView) : null);
  }

  /* ---------------------------------------------------------- agreements */

  /**
   * registerAgreement: ADMIN only; partner an active PARTNER; purposes != 0, categories a
   * non-empty mask of known bits, validFrom < validUntil. Returns the new id (from 1).
   */
  @Transaction()
  @Returns("string")
  async RegisterAgreement(
    ctx: Context,
    partner: string,
    purposes: string,
    categories: string,
    validFrom: string,
    validUntil: string,
    termsHash: string,
  ): Promise<string> {
    await this.config(ctx);
    const state = new State(ctx);
    await this.requireActive(state, ctx, "ADMIN");
    const p = parseAddress(partner, "partner");
    const purposeMask = parseSmallUint(purposes, 32, "purposes");
    const categoryMask = parseSmallUint(categories, 16, "categories");
    const from = parseSmallUint(validFrom, 40, "validFrom");
    const until = parseSmallUint(validUntil, 40, "validUntil");
    const terms = parseBytes32(termsHash, "termsHash");
    const pm = await state.get<MemberRecord>("member", [p]);
    if (!pm || pm.role !== "PARTNER" || !pm.active) throw new RuleError("AGREEMENT_INVALID", "AgreementNotPartner", { partner: p });
    if (purposeMask === 0 || categoryMask === 0 || (categoryMask & ~ALL_CATEGORIES) !== 0 || from >= until) {
      throw new RuleError("AGREEMENT_INVALID", "AgreementInvalid");
    }
    const counter = await state.get<{ count: string }>("agreementCount", []);
    const id = BigInt(counter?.count ?? "0") + 1n;
    const record: AgreementRecord = { partner: p, purposes: purposeMask, categories: categoryMask, validFrom: from, validUntil: until, termsHash: terms, active: true };
    await state.put("agreementCount", [], { count: id.toString() });
    await state.put("agreement", [keyNumber(id)], record);
    await state.put("partnerAgreement", [p, keyNumber(id)], { id: id.toString() });
    this.emit(ctx, {
      type: "AgreementRegistered",
      id: id.toString(),
      partner: p,
      purposes: purposeMask,
      categories: categoryMask,
      validFrom: from,
      validUntil: until,
      termsHash: terms,
      time: this.now(ctx),
    });
    return id.toString();
  }

  /** endAgreement: ADMIN only; an ended agreement never again covers any request. */
  @Transaction()
  async EndAgreement(ctx: Context, id: string): Promise<void> {
    await this.config(ctx);
    const state = new State(ctx);
    await this.requireActive(state, ctx, "ADMIN");
    const n = parseUint(id, 256, "id");
    const a = n === 0n || n.toString().length > 20 ? undefined : await state.get<AgreementRecord>("agreement", [keyNumber(n)]);
    if (!a) throw new RuleError("AGREEMENT_UNKNOWN", "AgreementUnknown", { id: n.toString() });
    if (!a.active) throw new RuleError("AGREEMENT_ENDED", "AgreementAlreadyEnded", { id: n.toString() });
    await state.put("agreement", [keyNumber(n)], { ...a, active: false } satisfies AgreementRecord);
    this.emit(ctx, { type: "AgreementEnded", id: n.toString(), partner: a.partner, time: this.now(ctx) });
  }

  /** The agreement, or null when no such id was issued. */
  @Transaction(false)
  @Returns("string")
  async Agreement(ctx: Context, id: string): Promise<string> {
    const n = parseUint(id, 256, "id");
    const a = n === 0n || n.toString().length > 20 ? undefined : await new State(ctx).get<AgreementRecord>("agreement", [keyNumber(n)]);
    return canonicalize(a ? ({ id: n.toString(), ...a } satisfies AgreementView) : null);
  }

  /** Ids (decimal strings) of every agreement ever registered for `partner`, oldest first. */
  @Transaction(false)
  @Returns("string")
  async AgreementsOf(ctx: Context, partner: string): Promise<string> {
    const p = parseAddress(partner, "partner");
    const rows = await new State(ctx).scan<{ id: string }>("partnerAgreement", [p]);
    return canonicalize(rows.map((r) => r.value.id));
  }

  /* ------------------------------------------------------------- consent */

  /**
   * grantConsent: checks, in order, deadline, signature, purpose, categories, partner, expiry,
   * nonce; then stores categories, expiry, grantedAt = now, revokedAt = 0, nonce + 1.
   */
  @Transaction()
  async GrantConsent(
    ctx: Context,
    subject: string,
    partner: string,
    purpose: string,
    categories: string,
    expiresAt: string,
    receiptHash: string,
    nonce: string,
    deadline: string,
    signature: string,
  ): Promise<void> {
    const domain = this.domainOf(await this.config(ctx));
    const message = {
      subject: parseAddress(subject, "subject"),
      partner: parseAddress(partner, "partner"),
      purpose: parseSmallUint(purpose, 8, "purpose"),
      categories: parseSmallUint(categories, 16, "categories"),
      expiresAt: parseUint(expiresAt, 64, "expiresAt"),
      receiptHash: parseBytes32(receiptHash, "receiptHash"),
      nonce: parseSmallUint(nonce, 32, "nonce"),
      deadline: parseUint(deadline, 64, "deadline"),
    };
    const now = this.now(ctx);
    requireNotExpired(message.deadline, now);
    requireSignedBy(message.subject, domain, { kind: "ConsentGrant", message }, signature);
    await this.grant(ctx, message.subject, message.partner, message.purpose, message.categories, message.expiresAt, message.receiptHash, message.nonce);
  }

  /** grantConsentDirect: the caller's own account is the subject; still consumes the nonce. */
  @Transaction()
  async GrantConsentDirect(ctx: Context, partner: string, purpose: string, categories: string, expiresAt: string, receiptHash: string): Promise<void> {
    await this.config(ctx);
    await this.grant(
      ctx,
      this.caller(ctx),
      parseAddress(partner, "partner"),
      parseSmallUint(purpose, 8, "purpose"),
      parseSmallUint(categories, 16, "categories"),
      parseUint(expiresAt, 64, "expiresAt"),
      parseBytes32(receiptHash, "receiptHash"),
      null,
    );
  }

  /** revokeConsent: checks deadline, signature, nonce, then that the consent is active. */
  @Transaction()
  async RevokeConsent(ctx: Context, subject: string, partner: string, purpose: string, nonce: string, deadline: string, signature: string): Promise<void> {
    const domain = this.domainOf(await this.config(ctx));
    const message = {
      subject: parseAddress(subject, "subject"),
      partner: parseAddress(partner, "partner"),
      purpose: parseSmallUint(purpose, 8, "purpose"),
      nonce: parseSmallUint(nonce, 32, "nonce"),
      deadline: parseUint(deadline, 64, "deadline"),
    };
    requireNotExpired(message.deadline, this.now(ctx));
    requireSignedBy(message.subject, domain, { kind: "ConsentRevoke", message }, signature);
    await this.revoke(ctx, message.subject, message.partner, message.purpose, message.nonce);
  }

  /** revokeConsentDirect: the caller withdraws its own consent; consumes the nonce. */
  @Transaction()
  async RevokeConsentDirect(ctx: Context, partner: string, purpose: string): Promise<void> {
    await this.config(ctx);
    await this.revoke(ctx, this.caller(ctx), parseAddress(partner, "partner"), parseSmallUint(purpose, 8, "purpose"), null);
  }

  /** The stored consent; all zero when never granted. `nonce` is what the next signed message must carry. */
  @Transaction(false)
  @Returns("string")
  async Consent(ctx: Context, subject: string, partner: string, purpose: string): Promise<string> {
    const c = await this.consentOf(new State(ctx), parseAddress(subject, "subject"), parseAddress(partner, "partner"), parseSmallUint(purpose, 8, "purpose"));
    return canonicalize(c satisfies ConsentView);
  }

  /**
   * checkPermission: rejects a malformed question (purpose > 31, empty or unknown categories);
   * otherwise the first failing rule in the order PARTNER_NOT_MEMBER, PARTNER_INACTIVE,
   * NOT_A_PARTNER, NO_AGREEMENT, NO_CONSENT, CONSENT_REVOKED, CONSENT_EXPIRED, CONSENT_CATEGORIES;
   * `agreementId` is the lowest covering agreement whenever one exists.
   */
  @Transaction(false)
  @Returns("string")
  async CheckPermission(ctx: Context, subject: string, partner: string, purpose: string, categories: string, at: string): Promise<string> {
    const s = parseAddress(subject, "subject");
    const p = parseAddress(partner, "partner");
    const purposeId = parseSmallUint(purpose, 8, "purpose");
    const categoryMask = parseSmallUint(categories, 16, "categories");
    const time = parseUint(at, 64, "at");
    this.validateRequest(purposeId, categoryMask);
    const state = new State(ctx);
    const m = await state.get<MemberRecord>("member", [p]);
    // The agreements and the consent only matter for an active partner; skip the reads otherwise.
    const isPartner = m !== undefined && m.active && m.role === "PARTNER";
    const agreements = isPartner ? await this.agreementsOf(state, p) : [];
    const c = isPartner ? await this.consentOf(state, s, p, purposeId) : EMPTY_CONSENT;
    // core's pure rule (the one the gateway's index uses too): same checks, order and reasons.
    const check = evaluatePermission(
      {
        member: m ? { account: p, didHash: m.didHash as Bytes32, orgHash: m.orgHash as Bytes32, role: m.role, active: m.active } : null,
        agreements,
        consent: { subject: s, partner: p, purpose: purposeId, ...c },
      },
      // uint64 `at` beyond 2^53 rounds, but stays above every uint40 bound it is compared with
      { purpose: purposeId, categories: categoryMask, time: Number(time) },
    );
    return canonicalize({ allowed: check.allowed, reason: check.reason, agreementId: check.agreementId.toString() } satisfies PermissionView);
  }

  /* ---------------------------------------------------------------- data */

  /** commitData: checks deadline, signature, commitment != 0, nonce; consumes it; records once. */
  @Transaction()
  async CommitData(ctx: Context, subject: string, commitment: string, nonce: string, deadline: string, signature: string): Promise<void> {
    const s = await this.consumeSigned(ctx, "DataCommitment", subject, commitment, nonce, deadline, signature);
    await this.commit(ctx, s.subject, s.commitment);
  }

  /** commitDataDirect: the caller commits its own record; the data nonce is untouched. */
  @Transaction()
  async CommitDataDirect(ctx: Context, commitment: string): Promise<void> {
    await this.config(ctx);
    const c = parseBytes32(commitment, "commitment");
    if (c === ZERO_BYTES32) throw new RuleError("INVALID_ARGUMENT", "DataInvalidCommitment");
    await this.commit(ctx, this.caller(ctx), c);
  }

  /** recordErasure: as commitData, then unknown, not owner, already erased. */
  @Transaction()
  async RecordErasure(ctx: Context, subject: string, commitment: string, nonce: string, deadline: string, signature: string): Promise<void> {
    const s = await this.consumeSigned(ctx, "ErasureRequest", subject, commitment, nonce, deadline, signature);
    await this.erase(ctx, s.subject, s.commitment);
  }

  /** recordErasureDirect: the caller records the erasure of its own record. */
  @Transaction()
  async RecordErasureDirect(ctx: Context, commitment: string): Promise<void> {
    await this.config(ctx);
    const c = parseBytes32(commitment, "commitment");
    if (c === ZERO_BYTES32) throw new RuleError("INVALID_ARGUMENT", "DataInvalidCommitment");
    await this.erase(ctx, this.caller(ctx), c);
  }

  /** Owner and times of a commitment, or null when it was never recorded. */
  @Transaction(false)
  @Returns("string")
  async CommitmentOf(ctx: Context, commitment: string): Promise<string> {
    const c = await new State(ctx).get<CommitmentRecord>("commitment", [parseBytes32(commitment, "commitment")]);
    return canonicalize(c ? (c satisfies CommitmentView) : null);
  }

  /** The nonce (decimal) the subject's next signed DataCommitment or ErasureRequest must carry. */
  @Transaction(false)
  @Returns("string")
  async DataNonce(ctx: Context, subject: string): Promise<string> {
    const n = await new State(ctx).get<{ nonce: string }>("dataNonce", [parseAddress(subject, "subject")]);
    return canonicalize(n?.nonce ?? "0");
  }

  /* --------------------------------------------------------- checkpoints */

  /**
   * anchorCheckpoint: active GATEWAY only; root != 0; the first gateway to anchor a log owns it;
   * treeSize strictly increases per log.
   */
  @Transaction()
  async AnchorCheckpoint(ctx: Context, logId: string, treeSize: string, root: string): Promise<void> {
    await this.config(ctx);
    const state = new State(ctx);
    const gateway = await this.requireActive(state, ctx, "GATEWAY");
    const log = parseBytes32(logId, "logId");
    const size = parseUint(treeSize, 64, "treeSize");
    const r = parseBytes32(root, "root");
    if (r === ZERO_BYTES32) throw new RuleError("INVALID_ARGUMENT", "CheckpointInvalidRoot");
    const head = await state.get<HeadRecord>("checkpointHead", [log]);
    if (head && head.gateway !== gateway) throw new RuleError("CHECKPOINT_LOG_OWNED", "CheckpointLogOwned", { logId: log, owner: head.gateway });
    const latest = BigInt(head?.treeSize ?? "0");
    if (size <= latest) throw new RuleError("CHECKPOINT_NOT_INCREASING", "CheckpointNotIncreasing", { logId: log, latest: latest.toString(), given: size.toString() });
    const index = head?.count ?? 0;
    const count = Number((BigInt(index) + 1n) & UINT32_MAX);
    const now = this.now(ctx);
    await state.put("checkpointHead", [log], { gateway, treeSize: size.toString(), count } satisfies HeadRecord);
    await state.put("checkpoint", [log, keyNumber(size)], { root: r, gateway, index, txId: ctx.stub.getTxID(), time: now } satisfies CheckpointRecord);
    this.emit(ctx, { type: "CheckpointAnchored", logId: log, gateway, treeSize: size.toString(), root: r, index, time: now });
  }

  /** Owner, latest tree size and number of anchors of a log, or null if never anchored. */
  @Transaction(false)
  @Returns("string")
  async LatestCheckpoint(ctx: Context, logId: string): Promise<string> {
    const head = await new State(ctx).get<HeadRecord>("checkpointHead", [parseBytes32(logId, "logId")]);
    return canonicalize(head && head.count > 0 ? (head satisfies LogHeadView) : null);
  }

  /** The root anchored for the log at exactly `treeSize`, or null. */
  @Transaction(false)
  @Returns("string")
  async CheckpointRoot(ctx: Context, logId: string, treeSize: string): Promise<string> {
    const log = parseBytes32(logId, "logId");
    const size = parseUint(treeSize, 64, "treeSize");
    const cp = await new State(ctx).get<CheckpointRecord>("checkpoint", [log, keyNumber(size)]);
    return canonicalize(cp ? cp.root : null);
  }

  /** Every anchored checkpoint of a log, oldest (smallest tree size) first. */
  @Transaction(false)
  @Returns("string")
  async CheckpointHistory(ctx: Context, logId: string): Promise<string> {
    const log = parseBytes32(logId, "logId");
    const rows = await new State(ctx).scan<CheckpointRecord>("checkpoint", [log]);
    return canonicalize(
      rows.map(
        (r): CheckpointEntryView => ({
          logId: log,
          treeSize: BigInt(r.attributes[1] ?? "0").toString(),
          root: r.value.root,
          gateway: r.value.gateway,
          index: r.value.index,
          txId: r.value.txId,
          time: r.value.time,
        }),
      ),
    );
  }

  /* ------------------------------------------------------------ internals */

  private async grant(
    ctx: Context,
    subject: Address,
    partner: Address,
    purpose: number,
    categories: number,
    expiresAt: bigint,
    receiptHash: string,
    given: number | null,
  ): Promise<void> {
    this.validateRequest(purpose, categories);
    if (partner === ZERO_ADDRESS) throw new RuleError("INVALID_ADDRESS", "ConsentInvalidPartner", { partner });
    const now = this.now(ctx);
    if (expiresAt !== 0n && (expiresAt <= BigInt(now) || expiresAt > UINT40_MAX)) {
      throw new RuleError("CONSENT_EXPIRY_INVALID", "ConsentInvalidExpiry", { expiresAt: expiresAt.toString() });
    }
    const state = new State(ctx);
    const key = consentKey(subject, partner, purpose);
    const current = (await state.get<ConsentRecord>("consent", [key])) ?? EMPTY_CONSENT;
    if (given !== null && given !== current.nonce) {
      throw new RuleError("NONCE_INVALID", "NonceInvalid", { subject, expected: current.nonce.toString(), given: given.toString() });
    }
    const next: ConsentRecord = { categories, expiresAt: Number(expiresAt), grantedAt: now, revokedAt: 0, nonce: this.nextNonce(current.nonce) };
    await state.put("consent", [key], next);
    this.emit(ctx, { type: "ConsentGranted", subject, partner, purpose, categories, expiresAt: Number(expiresAt), receiptHash, nonce: current.nonce, time: now });
  }

  private async revoke(ctx: Context, subject: Address, partner: Address, purpose: number, given: number | null): Promise<void> {
    const state = new State(ctx);
    const key = consentKey(subject, partner, purpose);
    const current = (await state.get<ConsentRecord>("consent", [key])) ?? EMPTY_CONSENT;
    if (given !== null && given !== current.nonce) {
      throw new RuleError("NONCE_INVALID", "NonceInvalid", { subject, expected: current.nonce.toString(), given: given.toString() });
    }
    if (current.grantedAt === 0 || current.revokedAt !== 0) throw new RuleError("CONSENT_NOT_ACTIVE", "ConsentNotActive", { subject, partner, purpose });
    const now = this.now(ctx);
    await state.put("consent", [key], { ...current, revokedAt: now, nonce: this.nextNonce(current.nonce) } satisfies ConsentRecord);
    this.emit(ctx, { type: "ConsentRevoked", subject, partner, purpose, nonce: current.nonce, time: now });
  }

  /** Deadline, signature, commitment and nonce checks of a signed data request, in that order; consumes the nonce. */
  private async consumeSigned(
    ctx: Context,
    kind: "DataCommitment" | "ErasureRequest",
    subject: string,
    commitment: string,
    nonce: string,
    deadline: string,
    signature: string,
  ): Promise<{ subject: Address; commitment: string }> {
    const domain = this.domainOf(await this.config(ctx));
    const message = {
      subject: parseAddress(subject, "subject"),
      commitment: parseBytes32(commitment, "commitment") as `0x${string}`,
      nonce: parseUint(nonce, 256, "nonce"),
      deadline: parseUint(deadline, 64, "deadline"),
    };
    requireNotExpired(message.deadline, this.now(ctx));
    requireSignedBy(message.subject, domain, { kind, message }, signature);
    if (message.commitment === ZERO_BYTES32) throw new RuleError("INVALID_ARGUMENT", "DataInvalidCommitment");
    const state = new State(ctx);
    const stored = BigInt((await state.get<{ nonce: string }>("dataNonce", [message.subject]))?.nonce ?? "0");
    if (message.nonce !== stored) {
      throw new RuleError("NONCE_INVALID", "NonceInvalid", { subject: message.subject, expected: stored.toString(), given: message.nonce.toString() });
    }
    // unchecked ++ on a uint256, as in Solidity
    await state.put("dataNonce", [message.subject], { nonce: ((stored + 1n) % 2n ** 256n).toString() });
    return { subject: message.subject, commitment: message.commitment };
  }

  private async commit(ctx: Context, subject: Address, commitment: string): Promise<void> {
    const state = new State(ctx);
    if (await state.get<CommitmentRecord>("commitment", [commitment])) throw new RuleError("COMMITMENT_EXISTS", "DataCommitmentExists", { commitment });
    const now = this.now(ctx);
    await state.put("commitment", [commitment], { subject, committedAt: now, erasedAt: 0 } satisfies CommitmentRecord);
    this.emit(ctx, { type: "DataCommitted", subject, commitment, time: now });
  }

  private async erase(ctx: Context, subject: Address, commitment: string): Promise<void> {
    const state = new State(ctx);
    const c = await state.get<CommitmentRecord>("commitment", [commitment]);
    if (!c) throw new RuleError("COMMITMENT_UNKNOWN", "DataCommitmentUnknown", { commitment });
    if (c.subject !== subject) throw new RuleError("UNAUTHORIZED", "DataNotOwner", { commitment, subject });
    if (c.erasedAt !== 0) throw new RuleError("COMMITMENT_ERASED", "DataCommitmentErased", { commitment });
    const now = this.now(ctx);
    await state.put("commitment", [commitment], { ...c, erasedAt: now } satisfies CommitmentRecord);
    this.emit(ctx, { type: "DataErased", subject, commitment, time: now });
  }

  /** Every agreement of `partner`, in id (registration) order. */
  private async agreementsOf(state: State, partner: Address): Promise<Agreement[]> {
    const out: Agreement[] = [];
    for (const { value } of await state.scan<{ id: string }>("partnerAgreement", [partner])) {
      const id = BigInt(value.id);
      const a = await state.get<AgreementRecord>("agreement", [keyNumber(id)]);
      if (a) out.push({ id, ...a, partner: a.partner as Address, termsHash: a.termsHash as Bytes32 });
    }
    return out;
  }

  private async consentOf(state: State, subject: Address, partner: Address, purpose: number): Promise<ConsentRecord> {
    return (await state.get<ConsentRecord>("consent", [consentKey(subject, partner, purpose)])) ?? EMPTY_CONSENT;
  }

  private validateRequest(purpose: number, categories: number): void {
    if (purpose > MAX_PURPOSE_ID) throw new RuleError("INVALID_PURPOSE", "ConsentInvalidPurpose", { purpose });
    if (categories === 0 || (categories & ~ALL_CATEGORIES) !== 0) throw new RuleError("INVALID_CATEGORIES", "ConsentInvalidCategories", { categories });
  }

  private nextNonce(nonce: number): number {
    return Number((BigInt(nonce) + 1n) & UINT32_MAX);
  }

  /** Throws MembershipUnauthorized(caller, needed) unless the caller is an active member holding `needed`. */
  private async requireActive(state: State, ctx: Context, needed: RoleName): Promise<Address> {
    const caller = this.caller(ctx);
    const m = await state.get<MemberRecord>("member", [caller]);
    if (!m || m.role !== needed || !m.active) throw new RuleError("UNAUTHORIZED", "MembershipUnauthorized", { account: caller, needed });
    return caller;
  }

  private parseRole(role: string): RoleName {
    // ROLE_NAMES has no NONE: "NONE" (Role 0) is rejected like any unknown role.
    const name = ROLE_NAMES.find((n) => n === role);
    if (!name || !(Role[name] > Role.NONE)) throw new RuleError("INVALID_ARGUMENT", "MembershipInvalidRole", { role: String(role) });
    return name;
  }

  private caller(ctx: Context): Address {
    return fabricAccount(ctx.clientIdentity.getMSPID(), ctx.clientIdentity.getID());
  }

  /** The transaction timestamp in whole unix seconds: the chaincode's block.timestamp. */
  private now(ctx: Context): number {
    const ts = ctx.stub.getTxTimestamp();
    const seconds = Number(typeof ts.seconds === "number" ? ts.seconds : ts.seconds.toString());
    if (!Number.isSafeInteger(seconds) || seconds <= 0) throw new RuleError("INTERNAL", "BadTimestamp");
    return seconds;
  }

  private async config(ctx: Context): Promise<ConfigRecord> {
    const c = await new State(ctx).get<ConfigRecord>("config", []);
    if (!c) throw new RuleError("LEDGER_NOT_DEPLOYED", "NotInitialised");
    return c;
  }

  private domainOf(c: ConfigRecord): Eip712Domain {
    return { ...custodiaDomain(BigInt(c.chainId), c.verifyingContract), name: c.name, version: c.version };
  }

  private emit(ctx: Context, payload: EventPayload): void {
    ctx.stub.setEvent(payload.type, Buffer.from(canonicalize(payload), "utf8"));
  }
}
