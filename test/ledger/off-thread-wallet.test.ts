import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { Transaction, Wallet, getBytes, verifyMessage } from "ethers";
import { ES256KSigner } from "did-jwt";
import { OffThreadWallet, SigningThread } from "../../contracts/off-thread-wallet.js";
import { es256kSigner } from "../../gateway/receipts.js";
import { CustodiaError } from "../../core/errors.js";

const KEY = "0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d";
const plain = new Wallet(KEY);
const thread = new SigningThread();
const wallet = new OffThreadWallet(KEY, null, thread);

afterAll(() => thread.close());

describe("OffThreadWallet", () => {
  it("signs messages exactly as a plain Wallet does", async () => {
    for (const m of ["", "hello", '{"treeSize":1}', "ünïcødé ✓", getBytes("0x00ff10"), new Uint8Array(0)]) {
      const sig = await wallet.signMessage(m);
      expect(sig).toBe(await plain.signMessage(m));
      expect(verifyMessage(m, sig)).toBe(plain.address);
    }
  });

  it("signs typed data exactly as a plain Wallet does", async () => {
    const domain = { name: "Custodia", version: "1", chainId: 31337, verifyingContract: "0x5FbDB2315678afecb367f032d93F642f64180aa3" };
    const types = { Grant: [{ name: "subject", type: "address" }, { name: "purpose", type: "uint8" }, { name: "note", type: "string" }] };
    const value = { subject: plain.address, purpose: 3, note: "marketing" };
    expect(await wallet.signTypedData(domain, types, value)).toBe(await plain.signTypedData(domain, types, value));
  });

  it("signs transactions exactly as a plain Wallet does, of each type", async () => {
    const base = { to: "0x" + "11".repeat(20), data: "0x1234", nonce: 7, gasLimit: 100_000n, chainId: 31337n };
    for (const tx of [
      { ...base, type: 2, maxFeePerGas: 2n * 10n ** 9n, maxPriorityFeePerGas: 10n ** 9n },
      { ...base, type: 0, gasPrice: 10n ** 9n },
      { ...base, type: 2, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, from: plain.address },
    ]) {
      const signed = await wallet.signTransaction(tx);
      expect(signed).toBe(await plain.signTransaction(tx));
      expect(Transaction.from(signed).from).toBe(plain.address);
    }
  });

  it("signs a consent receipt's JWT (ES256K) exactly as did-jwt's own signer does", async () => {
    const ours = es256kSigner(wallet);
    const theirs = ES256KSigner(getBytes(KEY));
    for (const data of ["eyJhbGciOiJFUzI1NksifQ.eyJzdWIiOiJ4In0", "", "ünïcødé", getBytes("0x00ff")]) {
      expect(await ours(data)).toBe(await theirs(data));
    }
    // a plain wallet gets did-jwt's signer itself
    expect(await es256kSigner(plain)("x")).toBe(await theirs("x"));
  });

  it("refuses a transaction from another account", async () => {
    const err = await wallet.signTransaction({ to: plain.address, from: "0x" + "22".repeat(20), nonce: 0, gasLimit: 21_000n, gasPrice: 1n, chainId: 1n }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CustodiaError);
    expect((err as CustodiaError).code).toBe("BAD_REQUEST");
  });

  it("answers many concurrent signatures, each with its own", async () => {
    const messages = Array.from({ length: 200 }, (_, i) => `message ${i}`);
    const sigs = await Promise.all(messages.map((m) => wallet.signMessage(m)));
    expect(new Set(sigs).size).toBe(messages.length);
    sigs.forEach((s, i) => expect(verifyMessage(messages[i]!, s)).toBe(plain.address));
  });

  it("keeps its thread when connected to a provider, and signs with the same key", async () => {
    const other = wallet.connect(null);
    expect(other).toBeInstanceOf(OffThreadWallet);
    expect(other.address).toBe(plain.address);
    expect(await other.signMessage("x")).toBe(await plain.signMessage("x"));
  });

  it("rejects what a stopped thread owed with INTERNAL, and starts a new thread for the next signature", async () => {
    const own = new SigningThread();
    const w = new OffThreadWallet(KEY, null, own);
    const owed = Array.from({ length: 20 }, (_, i) => w.signMessage(`owed ${i}`).then(() => "signed", (e: unknown) => e));
    await own.close();
    const outcomes = await Promise.all(owed);
    // whatever the thread answered before it stopped is signed; the rest is rejected, none hangs
    for (const o of outcomes) if (o !== "signed") expect((o as CustodiaError).code).toBe("INTERNAL");
    expect(await w.signMessage("after")).toBe(await plain.signMessage("after"));
    await own.close();
  });

  it("refuses a digest that is not 32 bytes", async () => {
    for (const d of ["0x1234", "0x" + "zz".repeat(32), "", "0x" + "00".repeat(33)]) {
      const err = await thread.sign(KEY, d).catch((e: unknown) => e);
      expect((err as CustodiaError).code).toBe("INTERNAL");
    }
  });

  it("reports the thread's refusal of a bad key as INTERNAL", async () => {
    const err = await thread.sign("0x" + "00".repeat(32), "0x" + "ab".repeat(32)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(CustodiaError);
    expect((err as CustodiaError).code).toBe("INTERNAL");
    expect(await wallet.signMessage("still fine")).toBe(await plain.signMessage("still fine"));
  });

  it("does not keep a process alive once it has signed", () => {
    const module = fileURLToPath(new URL("../../contracts/off-thread-wallet.ts", import.meta.url));
    const script = `const { OffThreadWallet } = await import(${JSON.stringify(module)}); const w = new OffThreadWallet(${JSON.stringify(KEY)}); console.log(await w.signMessage("bye"));`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8", timeout: 30_000 });
    expect(r.error).toBeUndefined();
    expect(r.status).toBe(0);
    expect(verifyMessage("bye", r.stdout.trim())).toBe(plain.address);
  });
});
