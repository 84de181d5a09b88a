/**
 * Gas bench for the Custodia hot paths on Hardhat's in-process network (cancun).
 *
 *   npm run bench:gas        (= hardhat compile --quiet && tsx test/bench/gas.ts)
 *
 * Figures are receipt `gasUsed`, i.e. they INCLUDE the 21,000 intrinsic cost and calldata gas.
 * Every relayed operation is submitted by an unlocked Hardhat account on behalf of a never-used
 * (deterministic) subject key that signs with core's signTyped. Prints a table, then as the LAST line one JSON
 * object; exits 1 if grantFirst > 60,000, revoke > 40,000 or anchor > 60,000.
 */
import { Wallet, id, type Contract, type TransactionReceipt } from "ethers";
import { Role, ALL_CATEGORIES } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { deployCustodiaFixture, latestTimestamp, send } from "../helpers/hardhat.js";

const LIMITS = { grantFirst: 60_000, revoke: 40_000, anchor: 60_000 } as const;

// Deterministic keys and hashes so repeated runs see the same calldata (zero bytes cost 4, others 16).
let counter = 0;
const bytes32 = (): `0x${string}` => id(`custodia-bench-${counter++}`) as `0x${string}`;
const wallet = (label: string): Wallet => new Wallet(id(`custodia-bench-key-${label}`));

async function main(): Promise<void> {
  const fx = await deployCustodiaFixture();
  const [, gatewaySigner, partnerSigner, relayerSigner] = fx.signers;
  const gateway = gatewaySigner!;
  const partner = await partnerSigner!.getAddress();
  const relayer = fx.contract.connect(relayerSigner!) as Contract;
  await send(fx.contract, "registerMember", await gateway.getAddress(), bytes32(), Role.GATEWAY, bytes32());
  await send(fx.contract, "registerMember", partner, bytes32(), Role.PARTNER, bytes32());

  const gas = (r: TransactionReceipt): number => Number(r.gasUsed);
  const now = await latestTimestamp(fx.provider);
  const deadline = BigInt(now + 3600);
  const subject = wallet("subject");

  // grantFirst: relayed signed grant, fresh subject, fresh consent key (one fresh slot).
  const grant: ConsentGrantMessage = {
    subject: subject.address as `0x${string}`,
    partner: partner as `0x${string}`,
    purpose: 2,
    categories: 0b0000101,
    expiresAt: BigInt(now + 365 * 86400),
    receiptHash: bytes32(),
    nonce: 0,
    deadline,
  };
  const grantFirst = gas(await send(relayer, "grantConsent", grant, await signTyped(subject, fx.domain, "ConsentGrant", grant)));

  // grantUpdate: same consent key again (slot already non-zero), wider categories.
  const update: ConsentGrantMessage = { ...grant, categories: ALL_CATEGORIES, receiptHash: bytes32(), nonce: 1 };
  const grantUpdate = gas(await send(relayer, "grantConsent", update, await signTyped(subject, fx.domain, "ConsentGrant", update)));

  // revoke: relayed signed revoke of that consent.
  const revokeMsg = { subject: grant.subject, partner: grant.partner, purpose: grant.purpose, nonce: 2, deadline };
  const revoke = gas(
    await send(relayer, "revokeConsent", revokeMsg, await signTyped(subject, fx.domain, "ConsentRevoke", revokeMsg)),
  );

  // anchorFirst (new log: two fresh slots) then a steady-state anchor (head exists).
  const gw = fx.contract.connect(gateway) as Contract;
  const logId = bytes32();
  const anchorFirst = gas(await send(gw, "anchorCheckpoint", logId, 1024n, bytes32()));
  const anchor = gas(await send(gw, "anchorCheckpoint", logId, 2048n, bytes32()));

  // commit / erasure: relayed signed data requests of a fresh subject.
  const dataSubject = wallet("data-subject");
  const commitment = bytes32();
  const commitMsg = { subject: dataSubject.address as `0x${string}`, commitment, nonce: 0n, deadline };
  const commit = gas(
    await send(relayer, "commitData", commitMsg, await signTyped(dataSubject, fx.domain, "DataCommitment", commitMsg)),
  );
  const eraseMsg = { ...commitMsg, nonce: 1n };
  const erasure = gas(
    await send(relayer, "recordErasure", eraseMsg, await signTyped(dataSubject, fx.domain, "ErasureRequest", eraseMsg)),
  );

  const results = { grantFirst, grantUpdate, revoke, anchor, anchorFirst, commit, erasure };
  const limits: Record<string, number> = LIMITS;
  console.log("Custodia gas (receipt gasUsed, includes 21,000 intrinsic + calldata)");
  console.log("operation     gasUsed   limit");
  for (const [name, value] of Object.entries(results)) {
    const limit = limits[name];
    console.log(`${name.padEnd(12)} ${String(value).padStart(8)}   ${limit === undefined ? "-" : limit}`);
  }
  const failures = Object.entries(LIMITS).filter(([k, limit]) => results[k as keyof typeof LIMITS] > limit);
  for (const [k, limit] of failures) console.error(`FAIL: ${k} = ${results[k as keyof typeof LIMITS]} > ${limit}`);
  console.log(JSON.stringify(results));
  process.exitCode = failures.length > 0 ? 1 : 0;
}

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`usage: npm run bench:gas
  Gas of the contract's hot paths (receipt gasUsed, on Hardhat's in-process EVM): a table, then one
  JSON line. Exits 1 when a first grant, a revocation or an anchor costs more than its limit.
`);
  process.exit(0);
}
main().catch((e: unknown) => {
  console.error(e);
  process.exit(1);
});
