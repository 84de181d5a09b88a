import { spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { JsonRpcProvider, Transaction, Wallet, getBytes, verifyMessage } from "ethers";
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
      { ...base, type: 1, gasPrice: 10n ** 9n, accessList: [{ address: "0x" + "33".repeat(20), storageKeys: ["0x" + "44".repeat(32)] }] },
      { ...base, type: 0, gasPrice: 10n ** 9n },
      { ...base, type: 2, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, from: plain.address },
    ]) {
      const signed = await wallet.signTransaction(tx);
      expect(signed).toBe(await plain.signTransaction(tx));
      const parsed = Transaction.from(signed);
      expect(parsed.from).toBe(plain.address);
      expect(parsed.type).toBe(tx.type);
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

  it("refuses what a plain Wallet refuses, with ethers' own errors", async () => {
    const fromOther = { to: plain.address, from: "0x" + "22".repeat(20), nonce: 0, gasLimit: 21_000n, gasPrice: 1n, chainId: 1n };
    const ours = await wallet.signTransaction(fromOther).catch((e: unknown) => e);
    const theirs = await plain.signTransaction(fromOther).catch((e: unknown) => e);
    expect((ours as { code?: string }).code).toBe("INVALID_ARGUMENT");
    expect((ours as { code?: string }).code).toBe((theirs as { code?: string }).code);
    // a name in typed data with no provider to resolve it
    const domain = { name: "x", verifyingContract: "custodia.eth" };
    const types = { T: [{ name: "a", type: "uint8" }] };
    const oursTyped = await wallet.signTypedData(domain, types, { a: 1 }).catch((e: unknown) => e);
    const theirsTyped = await plain.signTypedData(domain, types, { a: 1 }).catch((e: unknown) => e);
    expect((oursTyped as { code?: string }).code).toBe("UNSUPPORTED_OPERATION");
    expect((oursTyped as { code?: string }).code).toBe((theirsTyped as { code?: string }).code);
  });

  it("answers many concurrent signatures, each with its own", async () => {
    const messages = Array.from({ length: 200 }, (_, i) => `message ${i}`);
    const sigs = await Promise.all(messages.map((m) => wallet.signMessage(m)));
    expect(new Set(sigs).size).toBe(messages.length);
    sigs.forEach((s, i) => expect(verifyMessage(messages[i]!, s)).toBe(plain.address));
  });

  it("stays an off-thread wallet when connected to a provider, and signs with the same key", async () => {
    const provider = new JsonRpcProvider("http://127.0.0.1:9", 31337, { staticNetwork: true });
    try {
      const other = wallet.connect(provider);
      expect(other).toBeInstanceOf(OffThreadWallet);
      expect(other.provider).toBe(provider);
      expect(other.address).toBe(plain.address);
      expect(await other.signMessage("x")).toBe(await plain.signMessage("x"));
    } finally {
      provider.destroy();
    }
  });

  it("rejects what a stopped thread owed with INTERNAL, and starts a new thread for the next signature", async () => {
    const own = new SigningThread();
    const w = new OffThreadWallet(KEY, null, own);
    const owed = Array.from({ length: 20 }, (_, i) => w.signMessage(`owed ${i}`).then(() => "signed", (e: unknown) => e));
    await own.close();
    const outcomes = await Promise.all(owed);
    // nothing hangs; what the thread had not answered when it stopped is refused as INTERNAL
    const refused = outcomes.filter((o) => o !== "signed");
    expect(refused.length).toBeGreaterThan(0);
    for (const o of refused) expect((o as CustodiaError).code).toBe("INTERNAL");
    expect(await w.signMessage("after")).toBe(await plain.signMessage("after"));
    await own.close();
  });

  it("refuses, and does not hang, when the thread cannot load its signer", async () => {
    const broken = new SigningThread({ module: fileURLToPath(new URL("./fixtures/no-such-module.cjs", import.meta.url)) });
    try {
      const w = new OffThreadWallet(KEY, null, broken);
      for (let i = 0; i < 2; i++) {
        const err = await w.signMessage("x").catch((e: unknown) => e);
        expect(err).toBeInstanceOf(CustodiaError);
        expect((err as CustodiaError).code).toBe("INTERNAL");
      }
    } finally {
      await broken.close();
    }
  });

  it("gives up on a signature the thread does not answer in time, and replaces the thread", async () => {
    const hanging = new SigningThread({ timeoutMs: 300, module: fileURLToPath(new URL("./fixtures/hanging-signing-key.cjs", import.meta.url)) });
    try {
      const w = new OffThreadWallet(KEY, null, hanging);
      const t0 = Date.now();
      const err = await w.signMessage("x").catch((e: unknown) => e);
      expect((err as CustodiaError).code).toBe("INTERNAL");
      expect((err as CustodiaError).message).toMatch(/no answer within 300 ms/);
      expect(Date.now() - t0).toBeLessThan(5_000);
      // the next signature goes to a new thread (which hangs as well here, and is refused the same way)
      expect(((await w.signMessage("y").catch((e: unknown) => e)) as CustodiaError).code).toBe("INTERNAL");
    } finally {
      await hanging.close();
    }
  });

  it("can be started ahead of the first signature", async () => {
    const own = new SigningThread();
    own.start();
    expect(await new OffThreadWallet(KEY, null, own).signMessage("warm")).toBe(await plain.signMessage("warm"));
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
