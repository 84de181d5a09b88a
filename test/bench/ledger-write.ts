/**
 * bench:ledger-write — the gateway's CPU per ledger write (an anchor, a relayed consent: each is a
 * write through contracts/evm-ledger.ts), through the adapter's own broadcast (the sender is known:
 * FastJsonRpcProvider.broadcastSigned) and, in the same run, through ethers' broadcastTransaction
 * (which recovers the sender from the signature). Both go through the same EvmLedger on the same
 * embedded anvil node, as the same account; only the signer differs (the Wallet itself, or the
 * Wallet behind a plain ethers Signer, which the adapter hands to ethers' sendTransaction). Rounds
 * alternate; CPU is this process's (the node is another process).
 *
 * Then the other direction: decoding the contract's logs (the gateway's ledger view decodes every
 * consent, agreement and membership event it syncs) through the adapter (`EvmLedger.parse`) and
 * through ethers' `Interface.parseLog`, on the same logs (ConsentGranted of 400 subjects and 5
 * partners), alternating rounds.
 *
 * Last line: {"writes":..,"cpuMsPerWrite":..,"ethersCpuMsPerWrite":..,"ratio":..,"decodeUsPerLog":..,...}
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AbstractSigner, getAddress, hexlify, randomBytes, type Log, type Provider, type TransactionRequest, type TypedDataDomain, type TypedDataField, type Wallet } from "ethers";
import { didHash, type Address, type Bytes32 } from "../../core/domain.js";
import { startNetwork } from "../../contracts/network.js";
import type { EvmLedger } from "../../contracts/evm-ledger.js";

if (process.argv.includes("--help") || process.argv.includes("-h")) {
  process.stdout.write(`usage: npm run bench:ledger-write
  CPU per ledger write of the gateway's adapter, its own broadcast against ethers' (which recovers
  the sender), alternating rounds on the embedded node; then log decoding, the adapter's against
  ethers' parseLog. Environment: BENCH_WRITES (per round, 40),
  BENCH_ROUNDS (6). Last line: one JSON object (cpuMsPerWrite, ethersCpuMsPerWrite, ratio, ...).
`);
  process.exit(0);
}
const WRITES = Number(process.env["BENCH_WRITES"] ?? 40);
const ROUNDS = Number(process.env["BENCH_ROUNDS"] ?? 6);
if (![WRITES, ROUNDS].every((n) => Number.isInteger(n) && n > 0)) {
  process.stderr.write("bench:ledger-write: BENCH_WRITES and BENCH_ROUNDS are positive integers\n");
  process.exit(2);
}
const log = (s: string): void => void process.stderr.write(`bench:ledger-write: ${s}\n`);

/** The Wallet behind a plain Signer: the adapter cannot see the key, so ethers sends. */
class PlainSigner extends AbstractSigner {
  constructor(private readonly wallet: Wallet, provider: Provider) {
    super(provider);
  }
  getAddress(): Promise<string> {
    return Promise.resolve(this.wallet.address);
  }
  connect(provider: Provider): PlainSigner {
    return new PlainSigner(this.wallet, provider);
  }
  signTransaction(tx: TransactionRequest): Promise<string> {
    return this.wallet.signTransaction(tx);
  }
  signMessage(message: string | Uint8Array): Promise<string> {
    return this.wallet.signMessage(message);
  }
  signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    return this.wallet.signTypedData(domain, types, value);
  }
}

const dataDir = mkdtempSync(join(tmpdir(), "custodia-bench-write-"));
const net = await startNetwork({ dataDir, ledgerPort: 0, log });
try {
  const ours = net.admin;
  const theirs = net.admin.connect(new PlainSigner(net.adminWallet, net.provider));
  const org = hexlify(randomBytes(32)) as Bytes32;
  const writeMany = async (ledger: EvmLedger, n: number): Promise<{ cpuUs: number; wallMs: number }> => {
    const accounts = Array.from({ length: n }, () => getAddress(hexlify(randomBytes(20))) as Address);
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    for (const account of accounts) await ledger.registerMember({ account, didHash: didHash(`did:ethr:${account}`), role: "PARTNER", orgHash: org });
    const c = process.cpuUsage(c0);
    return { cpuUs: c.user + c.system, wallMs: performance.now() - t0 };
  };
  log("warming up both paths");
  await writeMany(ours, 10);
  await writeMany(theirs, 10);
  const sum = { ours: { cpuUs: 0, wallMs: 0 }, theirs: { cpuUs: 0, wallMs: 0 } };
  for (let r = 0; r < ROUNDS; r++) {
    // A B, B A, …: neither side always goes first
    const order: Array<"ours" | "theirs"> = r % 2 === 0 ? ["ours", "theirs"] : ["theirs", "ours"];
    for (const side of order) {
      const m = await writeMany(side === "ours" ? ours : theirs, WRITES);
      sum[side].cpuUs += m.cpuUs;
      sum[side].wallMs += m.wallMs;
    }
    log(`round ${r + 1}/${ROUNDS} done`);
  }
  log("decoding logs");
  const fragment = net.admin.iface.getEvent("ConsentGranted")!;
  const subjects = Array.from({ length: 400 }, () => getAddress(hexlify(randomBytes(20))));
  const partners = Array.from({ length: 5 }, () => getAddress(hexlify(randomBytes(20))));
  const logs = Array.from({ length: 4000 }, (_, i) => {
    const { topics, data } = net.admin.iface.encodeEventLog(fragment, [subjects[i % 400]!, partners[i % 5]!, 1, 4, 0, org, i]);
    return { topics, data, blockNumber: 1, transactionHash: org, index: 0 } as unknown as Log;
  });
  const decode = { ours: 0, theirs: 0 };
  for (let r = 0; r < ROUNDS; r++) {
    for (const side of r % 2 === 0 ? (["ours", "theirs"] as const) : (["theirs", "ours"] as const)) {
      const t0 = performance.now();
      for (const l of logs) {
        const ev = side === "ours" ? net.admin.parse(l) : net.admin.iface.parseLog(l);
        if (ev === null) throw new Error("a log did not decode");
      }
      decode[side] += performance.now() - t0;
    }
  }
  const n = WRITES * ROUNDS;
  const result = {
    writes: n,
    cpuMsPerWrite: Number((sum.ours.cpuUs / n / 1000).toFixed(2)),
    ethersCpuMsPerWrite: Number((sum.theirs.cpuUs / n / 1000).toFixed(2)),
    ratio: Number((sum.ours.cpuUs / sum.theirs.cpuUs).toFixed(3)),
    wallMsPerWrite: Number((sum.ours.wallMs / n).toFixed(2)),
    ethersWallMsPerWrite: Number((sum.theirs.wallMs / n).toFixed(2)),
    decodeUsPerLog: Number(((decode.ours * 1000) / (logs.length * ROUNDS)).toFixed(1)),
    ethersDecodeUsPerLog: Number(((decode.theirs * 1000) / (logs.length * ROUNDS)).toFixed(1)),
    decodeRatio: Number((decode.ours / decode.theirs).toFixed(3)),
  };
  process.stdout.write(`adapter  ${result.cpuMsPerWrite} ms CPU a write (${result.wallMsPerWrite} ms wall)\nethers   ${result.ethersCpuMsPerWrite} ms CPU a write (${result.ethersWallMsPerWrite} ms wall)\nratio    ${result.ratio}\ndecoding ${result.decodeUsPerLog} µs a log (ethers' parseLog ${result.ethersDecodeUsPerLog} µs), ratio ${result.decodeRatio}\n`);
  process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  await net.close();
  rmSync(dataDir, { recursive: true, force: true });
}
