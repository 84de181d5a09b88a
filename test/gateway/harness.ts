/**
 * A whole gateway on real parts for tests: Hardhat's in-process EVM with the contracts deployed by
 * the production deploy code, a LevelDB in a temp dir, real DIDs (did:ethr on the chain's ERC-1056
 * registry, did:key) and real signed DID-JWTs.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes, randomUUID } from "node:crypto";
import { ES256KSigner, EdDSASigner, createJWT } from "did-jwt";
import { SigningKey, Wallet, concat, encodeBase58, getBytes, type BaseWallet } from "ethers";
import { generateKeyPairSync } from "node:crypto";
import type { FastifyInstance } from "fastify";
import { ethrDid, didHash, categoryMask, consentRecord, purposeById, purposeId, type Address, type Bytes32, type ConsentRecord, type RoleName } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage, type ConsentRevokeMessage, type Eip712Domain } from "../../core/eip712.js";
import { hashCanonical, sha256, toHex0x } from "../../core/hash.js";
import { deployCustodia, type Deployment } from "../../contracts/deploy.js";
import { EvmLedger } from "../../contracts/evm-ledger.js";
import { createGatewayRuntime, type GatewayRuntime } from "../../gateway/runtime.js";
import type { GatewayConfig } from "../../gateway/config.js";
import { compileOnce, fundedWallet, hardhatProvider } from "../helpers/hardhat.js";
import { OffThreadWallet } from "../../contracts/off-thread-wallet.js";

export const CHAIN_ID = 31337;

export interface Identity {
  did: string;
  address: Address | null;
  wallet: BaseWallet | null;
  /** A fresh signed DID-JWT for the gateway (override any claim, or the signing key). */
  token(overrides?: TokenOverrides): Promise<string>;
}

export interface TokenOverrides {
  aud?: string;
  iat?: number;
  exp?: number;
  nbf?: number;
  jti?: string;
  signWith?: BaseWallet;
  iss?: string;
}

/** did:ethr on the test chain. */
const testDid = (address: string): string => ethrDid(CHAIN_ID, address);

export interface TestGateway {
  rt: GatewayRuntime;
  app: FastifyInstance;
  admin: EvmLedger;
  deployment: Deployment;
  domain: Eip712Domain;
  operator: Identity;
  dataDir: string;
  nowSec(): number;
  customer(): Promise<Identity>;
  customerDidKey(): Promise<Identity>;
  ed25519(): Identity;
  member(role: RoleName): Promise<Identity>;
  partner(purposes: string[], categories: string[]): Promise<Identity>;
  grantMessage(customer: Identity, partner: Address, purpose: string, categories: string[], expiresAt?: number): Promise<{ message: ConsentGrantMessage; signature: string; record: ConsentRecord }>;
  revokeMessage(customer: Identity, partner: Address, purpose: string): Promise<{ message: ConsentRevokeMessage; signature: string }>;
  /** Grants through the HTTP API, as a wallet would. */
  grant(customer: Identity, partner: Identity, purpose: string, categories: string[], expiresAt?: number): Promise<{ status: number; body: Record<string, unknown> }>;
  revoke(customer: Identity, partner: Identity, purpose: string): Promise<{ status: number; body: Record<string, unknown> }>;
  ingest(records: unknown[]): Promise<void>;
  close(): Promise<void>;
}

function identityFor(wallet: BaseWallet, did: string, aud: string, nowSec: () => number, recoverable: boolean): Identity {
  return {
    did,
    address: wallet.address as Address,
    wallet,
    token: async (o: TokenOverrides = {}) => {
      const iat = o.iat ?? nowSec();
      const payload: Record<string, unknown> = { aud: o.aud ?? aud, iat, exp: o.exp ?? iat + 120, jti: o.jti ?? randomUUID() };
      if (o.nbf !== undefined) payload["nbf"] = o.nbf;
      const key = getBytes((o.signWith ?? wallet).privateKey);
      return createJWT(payload, { issuer: o.iss ?? did, signer: ES256KSigner(key, recoverable) }, { alg: recoverable ? "ES256K-R" : "ES256K" });
    },
  };
}

export async function startTestGateway(options: { config?: Partial<GatewayConfig> } = {}): Promise<TestGateway> {
  await compileOnce();
  const provider = hardhatProvider();
  const adminWallet = await fundedWallet(provider);
  const deployment = await deployCustodia(adminWallet);
  const admin = new EvmLedger({ provider, address: deployment.custodia, signer: adminWallet, deployBlock: deployment.deployBlock, pollMs: 20 });
  // the gateway signs on a thread of its own, as contracts/network.ts sets it up in production
  const gatewayWallet = new OffThreadWallet((await fundedWallet(provider)).privateKey, provider);
  const gwDid = ethrDid(CHAIN_ID, gatewayWallet.address);
  const org = toHex0x(sha256(new TextEncoder().encode("test org")));
  await admin.registerMember({ account: gatewayWallet.address as Address, didHash: didHash(gwDid), role: "GATEWAY", orgHash: org });
  const dataDir = mkdtempSync(join(tmpdir(), "custodia-gw-"));
  const rt = await createGatewayRuntime({
    dataDir,
    ledger: admin.connect(gatewayWallet),
    provider,
    wallet: gatewayWallet,
    chainId: CHAIN_ID,
    contract: deployment.custodia,
    didRegistry: deployment.didRegistry,
    deployBlock: deployment.deployBlock,
    masterKey: new Uint8Array(randomBytes(32)),
    config: { port: 0, anchorEveryMs: 200, anchorEveryEntries: 50, ledgerPollMs: 100, rateLimitMax: 100_000, ...options.config },
  });
  const domain = await admin.eip712Domain();
  const nowSec = (): number => Math.floor(Date.now() / 1000);
  const aud = rt.did;
  const operator = identityFor(gatewayWallet, gwDid, aud, nowSec, false);

  const t: TestGateway = {
    rt,
    app: rt.app,
    admin,
    deployment,
    domain,
    operator,
    dataDir,
    nowSec,
    customer: async () => {
      const w = Wallet.createRandom();
      return identityFor(w, testDid(w.address), aud, nowSec, true);
    },
    customerDidKey: async () => {
      const w = Wallet.createRandom();
      const did = `did:key:z${encodeBase58(concat([new Uint8Array([0xe7, 0x01]), SigningKey.computePublicKey(w.privateKey, true)]))}`;
      return identityFor(w, did, aud, nowSec, false);
    },
    ed25519: () => {
      const { privateKey, publicKey } = generateKeyPairSync("ed25519");
      const seed = Buffer.from((privateKey.export({ format: "jwk" }) as { d: string }).d, "base64url");
      const pub = Buffer.from((publicKey.export({ format: "jwk" }) as { x: string }).x, "base64url");
      const did = `did:key:z${encodeBase58(concat([new Uint8Array([0xed, 0x01]), pub]))}`;
      return {
        did,
        address: null,
        wallet: null,
        token: async (o: TokenOverrides = {}) => {
          const iat = o.iat ?? nowSec();
          return createJWT({ aud: o.aud ?? aud, iat, exp: o.exp ?? iat + 120, jti: o.jti ?? randomUUID() }, { issuer: did, signer: EdDSASigner(getBytes(concat([seed, pub]))) }, { alg: "EdDSA" });
        },
      };
    },
    member: async (role: RoleName) => {
      const w = await fundedWallet(provider);
      const id = identityFor(w, testDid(w.address), aud, nowSec, true);
      await admin.registerMember({ account: w.address as Address, didHash: didHash(id.did), role, orgHash: org });
      await rt.deps.view.sync();
      return id;
    },
    partner: async (purposes: string[], categories: string[]) => {
      const p = await t.member("PARTNER");
      const now = await admin.blockTime();
      await admin.registerAgreement({ partner: p.address!, purposes: purposes.reduce((m, k) => m | (1 << purposeId(k)), 0), categories: categoryMask(categories), validFrom: now - 3600, validUntil: now + 365 * 86400, termsHash: toHex0x(sha256(new TextEncoder().encode("terms"))) });
      await rt.deps.view.sync();
      return p;
    },
    grantMessage: async (customer, partner, purpose, categories, expiresAt = 0) => {
      const p = purposeById(purposeId(purpose));
      const mask = categoryMask(categories);
      const record = consentRecord({
        recordId: randomUUID(),
        subjectDid: customer.did,
        controllers: [{ id: rt.did, name: "Custodia test operator" }],
        recipient: testDid(partner),
        purpose: p.id,
        categories: mask,
        noticeHash: toHex0x(sha256(new TextEncoder().encode("privacy notice v1"))) as Bytes32,
        expiresAt,
        givenAt: Math.floor(Date.now() / 1000),
        withdrawalMethod: "wallet: custodia consent revoke",
      });
      const current = await admin.getConsent(customer.address!, partner, p.id);
      const message: ConsentGrantMessage = { subject: customer.address!, partner, purpose: p.id, categories: mask, expiresAt, receiptHash: toHex0x(hashCanonical(record)) as Bytes32, nonce: current.nonce, deadline: (await admin.blockTime()) + 3600 };
      return { message, signature: await signTyped(customer.wallet!, domain, "ConsentGrant", message), record };
    },
    revokeMessage: async (customer, partner, purpose) => {
      const pid = purposeId(purpose);
      const current = await admin.getConsent(customer.address!, partner, pid);
      const message: ConsentRevokeMessage = { subject: customer.address!, partner, purpose: pid, nonce: current.nonce, deadline: (await admin.blockTime()) + 3600 };
      return { message, signature: await signTyped(customer.wallet!, domain, "ConsentRevoke", message) };
    },
    grant: async (customer, partner, purpose, categories, expiresAt) => {
      const g = await t.grantMessage(customer, partner.address!, purpose, categories, expiresAt);
      const res = await rt.app.inject({ method: "POST", url: "/v1/consents", headers: { authorization: `Bearer ${await customer.token()}` }, payload: { action: "grant", message: { ...g.message, expiresAt: Number(g.message.expiresAt), deadline: Number(g.message.deadline) }, signature: g.signature, record: g.record } });
      return { status: res.statusCode, body: res.json() as Record<string, unknown> };
    },
    revoke: async (customer, partner, purpose) => {
      const r = await t.revokeMessage(customer, partner.address!, purpose);
      const res = await rt.app.inject({ method: "POST", url: "/v1/consents", headers: { authorization: `Bearer ${await customer.token()}` }, payload: { action: "revoke", message: { ...r.message, deadline: Number(r.message.deadline) }, signature: r.signature } });
      return { status: res.statusCode, body: res.json() as Record<string, unknown> };
    },
    ingest: async (records) => {
      const res = await rt.app.inject({ method: "POST", url: "/v1/vault/records", headers: { authorization: `Bearer ${await operator.token()}` }, payload: records as never });
      if (res.statusCode !== 200) throw new Error(`ingest failed: ${res.statusCode} ${res.body}`);
    },
    close: async () => {
      await rt.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return t;
}

/** A profile and a few transactions for a subject, in the vault's JSON form. */
export function sampleRecords(subject: string, n = 3): unknown[] {
  const out: unknown[] = [{ kind: "profile", subject, email: `${subject.slice(2, 8)}@example.com`, ageBand: "25-34", region: "EU-West", income: 52000 }];
  for (let i = 0; i < n; i++) out.push({ kind: "transaction", subject, id: `t${i}`, at: 1_700_000_000 + i * 86400, amount: 10 + i, currency: "EUR", category: "grocery", channel: "online" });
  return out;
}
