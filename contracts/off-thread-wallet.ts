import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { Signature, Transaction, TypedDataEncoder, Wallet, copyRequest, getAddress, hashMessage, resolveAddress, type Provider, type TransactionRequest, type TypedDataDomain, type TypedDataField } from "ethers";
import { CustodiaError } from "../core/errors.js";

/**
 * A Wallet whose secp256k1 signatures are computed on a thread of their own.
 *
 * Signing with ethers is JavaScript (noble-curves): ~0.8 ms of CPU per signature on this project's
 * reference machine. The gateway signs on its event loop every time it anchors a checkpoint (a
 * checkpoint signature and a transaction signature, about once a second under load at the
 * default anchoring interval) and for every relayed consent, and each signature held every
 * request in flight for that long. Here the message or transaction is hashed on the calling
 * thread (cheap) and only the digest goes to the signing thread; what comes back is the same
 * deterministic RFC 6979 signature a plain Wallet gives, so the two are interchangeable (tested).
 *
 * The key stays in this process: the thread is a worker of this process, not a separate signer.
 */
export class OffThreadWallet extends Wallet {
  readonly #thread: SigningThread;

  constructor(privateKey: string, provider?: Provider | null, thread: SigningThread = SigningThread.shared()) {
    super(privateKey, provider);
    this.#thread = thread;
  }

  override connect(provider: Provider | null): OffThreadWallet {
    return new OffThreadWallet(this.privateKey, provider, this.#thread);
  }

  /** The signature of a 32-byte digest, from the signing thread. */
  signDigest(digest: string): Promise<Signature> {
    return this.#thread.sign(this.privateKey, digest);
  }

  override async signMessage(message: string | Uint8Array): Promise<string> {
    return (await this.signDigest(hashMessage(message))).serialized;
  }

  override async signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    // names in the domain or the value resolve as ethers' Wallet resolves them
    const provider = this.provider;
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name: string) => {
      if (!provider) throw new CustodiaError("CONFIG_INVALID", `cannot resolve the name ${JSON.stringify(name)} without a provider`);
      const address = await provider.resolveName(name);
      if (address === null) throw new CustodiaError("INVALID_ADDRESS", `the name ${JSON.stringify(name)} does not resolve to an address`);
      return address;
    });
    return (await this.signDigest(TypedDataEncoder.hash(populated.domain, types, populated.value))).serialized;
  }

  override async signTransaction(request: TransactionRequest): Promise<string> {
    const tx = copyRequest(request);
    const [to, from] = await Promise.all([tx.to == null ? undefined : resolveAddress(tx.to, this), tx.from == null ? undefined : resolveAddress(tx.from, this)]);
    if (to !== undefined) tx.to = to;
    if (from !== undefined) {
      if (getAddress(from) !== this.address) throw new CustodiaError("BAD_REQUEST", `the transaction is from ${from}, not from this wallet (${this.address})`);
      delete tx.from;
    }
    const unsigned = Transaction.from(tx as Parameters<typeof Transaction.from>[0]);
    unsigned.signature = await this.signDigest(unsigned.unsignedHash);
    return unsigned.serialized;
  }
}

interface Pending {
  resolve(s: Signature): void;
  reject(e: unknown): void;
}

/** The worker's source: it signs digests with ethers' SigningKey (one key object per private key). */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { SigningKey } = require(workerData.ethers);
const keys = new Map();
parentPort.on("message", (m) => {
  try {
    let key = keys.get(m.key);
    if (key === undefined) {
      key = new SigningKey(m.key);
      if (keys.size >= 16) keys.clear();
      keys.set(m.key, key);
    }
    parentPort.postMessage({ id: m.id, signature: key.sign(m.digest).serialized });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
`;

/**
 * One worker thread that signs digests, started on first use and not keeping the process alive.
 * If it fails or exits, what it had not answered is rejected (INTERNAL) and the next signature
 * starts a new one.
 */
export class SigningThread {
  static #shared: SigningThread | undefined;

  /** The process's signing thread. */
  static shared(): SigningThread {
    return (SigningThread.#shared ??= new SigningThread());
  }

  #current: { worker: Worker; pending: Map<number, Pending> } | undefined;
  #next = 0;

  sign(privateKey: string, digest: string): Promise<Signature> {
    if (!/^0x[0-9a-fA-F]{64}$/.test(digest)) return Promise.reject(new CustodiaError("INTERNAL", "a digest to sign is 32 bytes of hex"));
    const { worker, pending } = this.#start();
    const id = this.#next++;
    return new Promise<Signature>((resolve, reject) => {
      pending.set(id, { resolve, reject });
      // referenced while it owes an answer, so the process waits for it; unreferenced when idle
      if (pending.size === 1) worker.ref();
      worker.postMessage({ id, key: privateKey, digest });
    });
  }

  /** Stops the thread (what it had not answered is rejected); a later signature starts a new one. */
  async close(): Promise<void> {
    const current = this.#current;
    this.#current = undefined;
    if (current) await current.worker.terminate();
  }

  #start(): { worker: Worker; pending: Map<number, Pending> } {
    if (this.#current) return this.#current;
    const ethers = createRequire(import.meta.url).resolve("ethers");
    // plain CommonJS: none of the parent's loader flags (tsx) are needed in it
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { ethers }, execArgv: [] });
    worker.unref();
    const pending = new Map<number, Pending>();
    worker.on("message", (m: { id: number; signature?: string; error?: string }) => {
      const p = pending.get(m.id);
      if (!p) return;
      pending.delete(m.id);
      if (pending.size === 0) worker.unref();
      if (m.signature !== undefined) p.resolve(Signature.from(m.signature));
      else p.reject(new CustodiaError("INTERNAL", `the signing thread refused: ${m.error}`));
    });
    const fail = (why: string) => {
      if (this.#current?.worker === worker) this.#current = undefined;
      const owed = [...pending.values()];
      pending.clear();
      for (const p of owed) p.reject(new CustodiaError("INTERNAL", `the signing thread stopped (${why}) before it answered`));
    };
    worker.on("error", (e) => fail(e.message));
    worker.on("exit", (code) => fail(`exit code ${code}`));
    this.#current = { worker, pending };
    return this.#current;
  }
}
