/**
 * Custodia-specific test helpers on top of ./hardhat.ts: a seeded network (members of every role
 * plus one agreement) and small builders for the signed messages, all signed with core's
 * `signTyped` so tests exercise exactly the digest the wallet/gateway code produces.
 */
import { hexlify, randomBytes, type Contract, type JsonRpcSigner } from "ethers";
import { ALL_CATEGORIES, CATEGORIES, Role } from "../../core/domain.js";
import {
  signTyped,
  type ConsentGrantMessage,
  type ConsentRevokeMessage,
  type DataCommitmentMessage,
  type TypedDataSigner,
} from "../../core/eip712.js";
import type { Address, Bytes32 } from "../../core/domain.js";
import { latestTimestamp, send, type CustodiaFixture } from "./hardhat.js";

export const ZERO_ADDRESS = "0x0000000000000000000000000000000000000000" as Address;
export const DAY = 86_400;

/** A random bytes32 (hashes, commitments, roots, log ids). */
export function randomBytes32(): Bytes32 {
  return hexlify(randomBytes(32)) as Bytes32;
}

export interface SeededNetwork {
  /** Custodia connected to each role's account. */
  admin: Contract;
  gateway: Contract;
  gateway2: Contract;
  partner: Contract;
  /** An active PARTNER without any agreement. */
  partner2: Contract;
  auditor: Contract;
  /** A Hardhat account that is not a member: relays signed messages, plays the outsider. */
  relayer: Contract;
  addresses: {
    admin: Address;
    gateway: Address;
    gateway2: Address;
    partner: Address;
    partner2: Address;
    auditor: Address;
    relayer: Address;
  };
  /** Agreement 1 of `partner`: purposes {0, 2}, categories contact|transactions|preferences. */
  agreementId: bigint;
  agreement: { purposes: number; categories: number; validFrom: number; validUntil: number; termsHash: Bytes32 };
}

/** Signer index of each seeded role in Hardhat's account list. */
export const SEED_ACCOUNTS = { admin: 0, gateway: 1, partner: 2, relayer: 3, auditor: 4, gateway2: 5, partner2: 6 } as const;

/**
 * Registers GATEWAY (x2), PARTNER (x2) and AUDITOR members and agreement 1 for `partner`
 * (valid from one day ago for a year). The fixture's admin must be signers[0].
 */
export async function seedNetwork(fx: CustodiaFixture): Promise<SeededNetwork> {
  const at = (i: number): JsonRpcSigner => fx.signers[i]!;
  const connect = (i: number): Contract => fx.contract.connect(at(i)) as Contract;
  const addr = async (i: number): Promise<Address> => (await at(i).getAddress()) as Address;
  const addresses = {
    admin: await addr(SEED_ACCOUNTS.admin),
    gateway: await addr(SEED_ACCOUNTS.gateway),
    gateway2: await addr(SEED_ACCOUNTS.gateway2),
    partner: await addr(SEED_ACCOUNTS.partner),
    partner2: await addr(SEED_ACCOUNTS.partner2),
    auditor: await addr(SEED_ACCOUNTS.auditor),
    relayer: await addr(SEED_ACCOUNTS.relayer),
  };
  const admin = connect(SEED_ACCOUNTS.admin);
  const roles: [Address, number][] = [
    [addresses.gateway, Role.GATEWAY],
    [addresses.gateway2, Role.GATEWAY],
    [addresses.partner, Role.PARTNER],
    [addresses.partner2, Role.PARTNER],
    [addresses.auditor, Role.AUDITOR],
  ];
  for (const [account, role] of roles) await send(admin, "registerMember", account, randomBytes32(), role, randomBytes32());

  const now = await latestTimestamp(fx.provider);
  const agreement = {
    purposes: (1 << 0) | (1 << 2),
    categories: CATEGORIES.contact | CATEGORIES.transactions | CATEGORIES.preferences,
    validFrom: now - DAY,
    validUntil: now + 365 * DAY,
    termsHash: randomBytes32(),
  };
  await send(
    admin,
    "registerAgreement",
    addresses.partner,
    agreement.purposes,
    agreement.categories,
    agreement.validFrom,
    agreement.validUntil,
    agreement.termsHash,
  );
  return {
    admin,
    gateway: connect(SEED_ACCOUNTS.gateway),
    gateway2: connect(SEED_ACCOUNTS.gateway2),
    partner: connect(SEED_ACCOUNTS.partner),
    partner2: connect(SEED_ACCOUNTS.partner2),
    auditor: connect(SEED_ACCOUNTS.auditor),
    relayer: connect(SEED_ACCOUNTS.relayer),
    addresses,
    agreementId: 1n,
    agreement,
  };
}

/** A ConsentGrant with sensible defaults (purpose 0, all categories, no expiry, nonce 0, 1 h deadline). */
export async function grantMessage(
  fx: CustodiaFixture,
  subject: string,
  partner: string,
  overrides: Partial<ConsentGrantMessage> = {},
): Promise<ConsentGrantMessage> {
  const now = await latestTimestamp(fx.provider);
  return {
    subject: subject as Address,
    partner: partner as Address,
    purpose: 0,
    categories: ALL_CATEGORIES,
    expiresAt: 0n,
    receiptHash: randomBytes32(),
    nonce: 0,
    deadline: BigInt(now + 3600),
    ...overrides,
  };
}

/** A ConsentRevoke with defaults (purpose 0, nonce 1 = right after a first grant, 1 h deadline). */
export async function revokeMessage(
  fx: CustodiaFixture,
  subject: string,
  partner: string,
  overrides: Partial<ConsentRevokeMessage> = {},
): Promise<ConsentRevokeMessage> {
  const now = await latestTimestamp(fx.provider);
  return { subject: subject as Address, partner: partner as Address, purpose: 0, nonce: 1, deadline: BigInt(now + 3600), ...overrides };
}

/** A DataCommitment / ErasureRequest with defaults (random commitment, nonce 0, 1 h deadline). */
export async function dataMessage(
  fx: CustodiaFixture,
  subject: string,
  overrides: Partial<DataCommitmentMessage> = {},
): Promise<DataCommitmentMessage> {
  const now = await latestTimestamp(fx.provider);
  return { subject: subject as Address, commitment: randomBytes32(), nonce: 0n, deadline: BigInt(now + 3600), ...overrides };
}

/** Signs `grant` with core's signTyped and submits it through `relayer`. */
export async function relayGrant(fx: CustodiaFixture, relayer: Contract, signer: TypedDataSigner, grant: ConsentGrantMessage) {
  return send(relayer, "grantConsent", grant, await signTyped(signer, fx.domain, "ConsentGrant", grant));
}

/** Signs `revoke` with core's signTyped and submits it through `relayer`. */
export async function relayRevoke(fx: CustodiaFixture, relayer: Contract, signer: TypedDataSigner, revoke: ConsentRevokeMessage) {
  return send(relayer, "revokeConsent", revoke, await signTyped(signer, fx.domain, "ConsentRevoke", revoke));
}
