import { createRequire } from "node:module";
import { Worker } from "node:worker_threads";
import { Signature, Transaction, TypedDataEncoder, Wallet, assert, assertArgument, copyRequest, getAddress, hashMessage, resolveAddress, type Provider, type TransactionRequest, type TypedDataDomain, type TypedDataField } from "ethers";
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
 * Only the asynchronous methods use the thread; the inherited synchronous ones (`signMessageSync`,
 * `authorizeSync`) still sign on the calling thread.
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

  /** Starts the signing thread now, so the first signature does not wait for it to load (~0.3 s). */
  warm(): void {
    this.#thread.start();
  }

  /** The signature of a 32-byte digest, from the signing thread. */
  signDigest(digest: string): Promise<Signature> {
    return this.#thread.sign(this.privateKey, digest);
  }

  override async signMessage(message: string | Uint8Array): Promise<string> {
    return (await this.signDigest(hashMessage(message))).serialized;
  }

  override async signTypedData(domain: TypedDataDomain, types: Record<string, TypedDataField[]>, value: Record<string, unknown>): Promise<string> {
    // names in the domain or the value resolve, and fail, as they do for ethers' Wallet
    const populated = await TypedDataEncoder.resolveNames(domain, types, value, async (name: string) => {
      assert(this.provider != null, "cannot resolve ENS names without a provider", "UNSUPPORTED_OPERATION", { operation: "resolveName", info: { name } });
      const address = await this.provider.resolveName(name);
      assert(address != null, "unconfigured ENS name", "UNCONFIGURED_NAME", { value: name });
      return address;
    });
    return (await this.signDigest(TypedDataEncoder.hash(populated.domain, types, populated.value))).serialized;
  }

  override async signTransaction(request: TransactionRequest): Promise<string> {
    const tx = copyRequest(request);
    const [to, from] = await Promise.all([tx.to == null ? undefined : resolveAddress(tx.to, this), tx.from == null ? undefined : resolveAddress(tx.from, this)]);
    if (to !== undefined) tx.to = to;
    if (from !== undefined) {
      // ethers' own refusal (INVALID_ARGUMENT): a caller's bug, not a client's bad request
      assertArgument(getAddress(from) === this.address, "transaction from address mismatch", "tx.from", from);
      delete tx.from;
    }
    const unsigned = Transaction.from(tx as Parameters<typeof Transaction.from>[0]);
    unsigned.signature = await this.signDigest(unsigned.unsignedHash);
    return unsigned.serialized;
  }
}

interface Running {
  worker: Worker;
  pending: Map<number, Pending>;
  /** Private key → the id the thread knows it by. */
  keys: Map<string, number>;
}

interface Pending {
  resolve(s: Signature): void;
  reject(e: unknown): void;
  timer: NodeJS.Timeout;
}

/**
 * The worker's source: it keeps the keys it was given (by id) and signs digests with ethers'
 * SigningKey, loaded from the path it is given.
 */
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { SigningKey } = require(workerData.module);
const keys = new Map();
parentPort.on("message", (m) => {
  try {
    if (m.key !== undefined) keys.set(m.keyId, new SigningKey(m.key));
    const key = keys.get(m.keyId);
    if (key === undefined) throw new Error("no key " + m.keyId);
    parentPort.postMessage({ id: m.id, signature: key.sign(m.digest).serialized });
  } catch (e) {
    parentPort.postMessage({ id: m.id, error: e instanceof Error ? e.message : String(e) });
  }
});
`;

export interface SigningThreadOptions {
  /** A signature not answered within this long is refused (INTERNAL) and the thread restarted. Default 10 s. */
  timeoutMs?: number;
  /** The module the thread loads SigningKey from (tests point it elsewhere). Default: ethers' crypto. */
  module?: string;
}

/**
 * One worker thread that signs digests, started on first use (or by `start()`) and not keeping
 * the process alive while it owes nothing. If it fails, exits, or leaves a signature unanswered
 * past the timeout, what it owed is rejected (INTERNAL) and the next signature starts a new one.
 */
export class SigningThread {
  static #shared: SigningThread | undefined;

  /** The process's signing thread. */
  static shared(): SigningThread {
    return (SigningThread.#shared ??= new SigningThread());
  }

  readonly #timeoutMs: number;
  readonly #module: string;
  #current: Running | undefined;
  #next = 0;
  #nextKey = 0;

  constructor(options: SigningThreadOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#module = options.module ?? createRequire(import.meta.url).resolve("ethers/crypto");
  }

  /** Starts the thread now, so the first signature does not wait for it to load (~0.3 s). */
  start(): void {
    this.#start();
  }

  sign(privateKey: string, digest: string): Promise<Signature> {
    if (!/^0x[0-9a-fA-F]{64}$/.test(digest)) return Promise.reject(new CustodiaError("INTERNAL", "a digest to sign is 32 bytes of hex"));
    const current = this.#start();
    const { worker, pending, keys } = current;
    const id = this.#next++;
    // a key crosses to the thread once; later messages name it by its id
    let keyId = keys.get(privateKey);
    const first = keyId === undefined;
    if (keyId === undefined) keys.set(privateKey, (keyId = this.#nextKey++));
    return new Promise<Signature>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(current, `no answer within ${this.#timeoutMs} ms`), this.#timeoutMs);
      timer.unref();
      pending.set(id, { resolve, reject, timer });
      // referenced while it owes an answer, so the process waits for it; unreferenced when idle
      if (pending.size === 1) worker.ref();
      worker.postMessage(first ? { id, keyId, key: privateKey, digest } : { id, keyId, digest });
    });
  }

  /** Stops the thread (what it had not answered is rejected); a later signature starts a new one. */
  async close(): Promise<void> {
    const current = this.#current;
    if (!current) return;
    this.#fail(current, "closed");
    await current.worker.terminate();
  }

  #start(): Running {
    if (this.#current) return this.#current;
    // plain CommonJS: none of the parent's loader flags (tsx) are needed in it
    const worker = new Worker(WORKER_SOURCE, { eval: true, workerData: { module: this.#module }, execArgv: [] });
    worker.unref();
    const current: Running = { worker, pending: new Map(), keys: new Map() };
    worker.on("message", (m: { id: number; signature?: string; error?: string }) => {
      const p = current.pending.get(m.id);
      if (!p) return;
      current.pending.delete(m.id);
      clearTimeout(p.timer);
      if (current.pending.size === 0) worker.unref();
      if (m.signature !== undefined) p.resolve(Signature.from(m.signature));
      else p.reject(new CustodiaError("INTERNAL", `the signing thread refused: ${m.error}`));
    });
    worker.on("messageerror", (e) => this.#fail(current, `an unreadable message: ${e.message}`));
    worker.on("error", (e) => this.#fail(current, e.message));
    worker.on("exit", (code) => this.#fail(current, `exit code ${code}`));
    this.#current = current;
    return current;
  }

  /** Rejects what `current` owed and retires it (terminated if it is still running). */
  #fail(current: Running, why: string): void {
    if (this.#current === current) {
      this.#current = undefined;
      void current.worker.terminate().catch(() => undefined);
    }
    const owed = [...current.pending.values()];
    current.pending.clear();
    for (const p of owed) {
      clearTimeout(p.timer);
      p.reject(new CustodiaError("INTERNAL", `the signing thread stopped (${why}) before it answered`));
    }
  }
}
