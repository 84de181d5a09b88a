/**
 * The workload of the gateway benchmarks (bench:gateway, bench:gateway-ab): a partner with an
 * agreement for profiling/transactions, SUBJECTS subjects who consented on the ledger, their
 * records in the gateway's vault, and a session DID-JWT; requests rotate over the subjects.
 */
import { readFileSync } from "node:fs";
import { randomUUID } from "node:crypto";
import { ES256KSigner, createJWT } from "did-jwt";
import { Wallet, getBytes } from "ethers";
import { ethrDid, didHash, categoryMask, purposeId, type Address } from "../../core/domain.js";
import { signTyped, type ConsentGrantMessage } from "../../core/eip712.js";
import { sha256, toHex0x } from "../../core/hash.js";
import type { Network } from "../../contracts/network.js";

export interface Workload {
  /** The gateway's DID: every token's audience. */
  audience: string;
  /** The partner's session token (ES256K-R, did:ethr). */
  partnerToken(): Promise<string>;
  /** An operator token of the gateway's own key, for ingest. */
  operatorToken(): Promise<string>;
  /** GET paths of the data requests, one per subject. */
  paths: string[];
  /** Three transactions per subject, in the vault's JSON form. */
  records: unknown[];
}

/** Registers the partner and its agreement and grants every subject's consent on the ledger. */
export async function seedWorkload(net: Network, subjectCount: number, log: (s: string) => void): Promise<Workload> {
  const partner = Wallet.createRandom();
  const partnerDid = `did:ethr:0x7a69:${partner.address}`;
  const org = toHex0x(sha256(new TextEncoder().encode("bench")));
  await net.admin.registerMember({ account: partner.address as Address, didHash: didHash(partnerDid), role: "PARTNER", orgHash: org });
  const now = await net.admin.blockTime();
  await net.admin.registerAgreement({ partner: partner.address as Address, purposes: 1 << purposeId("profiling"), categories: categoryMask(["transactions"]), validFrom: now - 60, validUntil: now + 86400, termsHash: org });
  const domain = await net.admin.eip712Domain();
  const subjects = Array.from({ length: subjectCount }, () => Wallet.createRandom());
  log(`granting ${subjectCount} consents on the ledger`);
  for (const s of subjects) {
    const m: ConsentGrantMessage = { subject: s.address as Address, partner: partner.address as Address, purpose: purposeId("profiling"), categories: categoryMask(["transactions"]), expiresAt: 0, receiptHash: org, nonce: 0, deadline: now + 3600 };
    await net.gateway.grantConsent(m, await signTyped(s, domain, "ConsentGrant", m));
  }
  const audience = ethrDid(net.deployment.chainId, net.gatewayWallet.address);
  const jwt = (w: { privateKey: string }, iss: string, recoverable: boolean): Promise<string> => {
    const t = Math.floor(Date.now() / 1000);
    return createJWT({ aud: audience, iat: t, exp: t + 280, jti: randomUUID() }, { issuer: iss, signer: ES256KSigner(getBytes(w.privateKey), recoverable) }, { alg: recoverable ? "ES256K-R" : "ES256K" });
  };
  return {
    audience,
    partnerToken: () => jwt(partner, partnerDid, true),
    operatorToken: () => jwt(net.gatewayWallet, audience, false),
    paths: subjects.map((s) => `/v1/data/${s.address}?purpose=profiling&categories=transactions`),
    records: subjects.flatMap((s) => [0, 1, 2].map((i) => ({ kind: "transaction", subject: s.address, id: `t${i}`, at: 1_700_000_000 + i, amount: 10 + i, currency: "EUR", category: "grocery", channel: "online" }))),
  };
}

/** Puts the workload's records into the vault of the gateway at `url`. */
export async function ingestWorkload(url: string, w: Workload): Promise<void> {
  const res = await fetch(`${url}/v1/vault/records`, { method: "POST", headers: { authorization: `Bearer ${await w.operatorToken()}`, "content-type": "application/json" }, body: JSON.stringify(w.records) });
  if (!res.ok) throw new Error(`ingest failed: ${res.status} ${await res.text()}`);
}

/** autocannon's `requests`: GETs rotating over `paths`. */
export function rotating(paths: string[]): unknown[] {
  let i = 0;
  return [{ method: "GET", setupRequest: (req: { path: string }) => ({ ...req, path: paths[i++ % paths.length]! }) }];
}

const TICKS_PER_SEC = 100; // USER_HZ, 100 on every Linux build Node supports

/**
 * CPU time a process has used, µs (Linux /proc; undefined elsewhere or once it is gone). CPU per
 * request tells what each process costs apart from how the two cores were shared in a run.
 */
export function cpuOf(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    // fields after the command name: utime and stime are the 12th and 13th, in clock ticks
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1e6) / TICKS_PER_SEC;
  } catch {
    return undefined;
  }
}

/**
 * Bytes a process has caused to be written to storage so far (Linux /proc/<pid>/io `write_bytes`:
 * its write-ahead logs, table files and compactions; undefined elsewhere or once it is gone).
 */
export function bytesWrittenBy(pid: number | undefined): number | undefined {
  if (pid === undefined) return undefined;
  try {
    const m = /^write_bytes: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** The whole machine's CPU time by kind, µs, summed over every core (Linux /proc/stat). */
export interface MachineTimes {
  /** user, nice, system, irq and softirq: work done, by anything on the machine. */
  busy: number;
  /** waiting for I/O with nothing to run. */
  iowait: number;
  /** taken by the hypervisor for other guests. */
  steal: number;
}

/**
 * The machine's CPU time so far (undefined off Linux). Over a round it counts everything the round
 * cost — both servers' threads, the load generator, the ledger node, the kernel's share of loopback
 * TCP — and anything else that ran meanwhile.
 */
export function machineTimes(): MachineTimes | undefined {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n", 1)[0]!;
    // cpu  user nice system idle iowait irq softirq steal …
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    const us = (ticks: number): number => (ticks * 1e6) / TICKS_PER_SEC;
    return { busy: us(f[0]! + f[1]! + f[2]! + f[5]! + f[6]!), iowait: us(f[4]!), steal: us(f[7] ?? 0) };
  } catch {
    return undefined;
  }
}
