/**
 * Wallets encrypted at rest: the keystore format (against ethers' own implementation of it, both
 * ways), the wallet file's /2 format, the passphrase's sources, and every way opening one can fail.
 * Unit tests use scrypt at n = 1024 to stay fast; the CLI runs use the standard cost.
 */
import { EventEmitter } from "node:events";
import { chmodSync, lstatSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Wallet, encryptKeystoreJsonSync } from "ethers";
import { CustodiaError } from "../../core/errors.js";
import { EXIT, readSecret } from "../../cli/io.js";
import { KeystoreError, STANDARD_SCRYPT_N, decryptKey, encryptKey } from "../../cli/keystore.js";
import { encryptWallet, isEncryptedWallet, loadWallet, newWallet, saveWallet } from "../../cli/wallet-store.js";
import { readKeyFile } from "../../cli/commands/admin.js";
import { cli } from "./cli-env.js";

const FAST = { n: 1024 };
const KEY = "0x4c0883a69102937d6231471b5dbb6204fe5129617082792ae468d01a3f362318";

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof CustodiaError ? e.code : `not a CustodiaError: ${String(e)}`;
  }
  return undefined;
}

function reasonOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof KeystoreError ? e.reason : `not a KeystoreError: ${String(e)}`;
  }
  return undefined;
}

describe("keystore (Web3 Secret Storage v3)", () => {
  it("round-trips a key, and the file holds neither the key nor the passphrase", () => {
    const ks = encryptKey(KEY, "correct horse", FAST);
    expect(ks.address).toBe(new Wallet(KEY).address.slice(2).toLowerCase());
    const text = JSON.stringify(ks);
    expect(text).not.toContain(KEY.slice(2));
    expect(text).not.toContain("correct horse");
    expect(decryptKey(ks, "correct horse")).toBe(KEY);
    // a fresh salt and iv each time
    expect(encryptKey(KEY, "correct horse", FAST).crypto.ciphertext).not.toBe(ks.crypto.ciphertext);
  });

  it("is the standard cost unless asked otherwise", () => {
    expect(STANDARD_SCRYPT_N).toBe(2 ** 17);
  });

  it("opens with ethers, and opens what ethers wrote", async () => {
    const ours = encryptKey(KEY, "pässword", FAST);
    const viaEthers = Wallet.fromEncryptedJsonSync(JSON.stringify(ours), "pässword");
    expect(viaEthers.privateKey).toBe(KEY);
    const theirs = JSON.parse(encryptKeystoreJsonSync({ address: new Wallet(KEY).address, privateKey: KEY }, "pässword", { scrypt: { N: 1024 } }));
    expect(decryptKey(theirs, "pässword")).toBe(KEY);
  });

  it("treats the composed and decomposed forms of a passphrase as one (NFKC, as ethers)", () => {
    const ks = encryptKey(KEY, "caf\u00e9", FAST);
    expect(decryptKey(ks, "cafe\u0301")).toBe(KEY);
    // and ethers, which normalises too, agrees
    expect(Wallet.fromEncryptedJsonSync(JSON.stringify(encryptKey(KEY, "cafe\u0301", FAST)), "caf\u00e9").privateKey).toBe(KEY);
  });

  it("tells a wrong passphrase and a damaged ciphertext from a good one by the MAC", () => {
    const ks = encryptKey(KEY, "right", FAST);
    expect(reasonOf(() => decryptKey(ks, "wrong"))).toBe("passphrase");
    expect(reasonOf(() => decryptKey(ks, "Right"))).toBe("passphrase");
    const flipped = structuredClone(ks);
    flipped.crypto.ciphertext = (flipped.crypto.ciphertext[0] === "0" ? "1" : "0") + flipped.crypto.ciphertext.slice(1);
    expect(reasonOf(() => decryptKey(flipped, "right"))).toBe("passphrase");
    const otherIv = structuredClone(ks);
    // the iv is outside the MAC, as the format defines it: a changed iv decrypts to another key,
    // which the keystore's own address refuses (and, without one, the wallet file's: tested below)
    otherIv.crypto.cipherparams.iv = "00".repeat(16);
    expect(reasonOf(() => decryptKey(otherIv, "right"))).toBe("malformed");
    delete (otherIv as { address?: string }).address;
    expect(decryptKey(otherIv, "right")).not.toBe(KEY);
  });

  it("refuses malformed keystores before running the kdf, and bounds what a file may make it cost", () => {
    // at geth's standard cost (n 2^18: ~1 s, 256 MiB), so a check made after the kdf would show in the time
    const kdfStarted = performance.now();
    const ks = encryptKey(KEY, "x", { n: 2 ** 18 });
    // one kdf run, timed on this machine as it is loaded now: each refusal must take a fraction of it
    const kdfMs = performance.now() - kdfStarted;
    const cases: Array<[string, (k: any) => void]> = [
      ["version", (k) => (k.version = 2)],
      ["kdf", (k) => (k.crypto.kdf = "pbkdf2")],
      ["cipher", (k) => (k.crypto.cipher = "aes-128-cbc")],
      ["dklen", (k) => (k.crypto.kdfparams.dklen = 64)],
      ["n not a power of two", (k) => (k.crypto.kdfparams.n = 1000)],
      ["memory beyond 256 MiB", (k) => (k.crypto.kdfparams.r = 16)],
      ["n beyond 2^30", (k) => (k.crypto.kdfparams.n = 2 ** 31)],
      ["work beyond geth's standard", (k) => ((k.crypto.kdfparams.n = 2 ** 15), (k.crypto.kdfparams.p = 16))],
      ["p zero", (k) => (k.crypto.kdfparams.p = 0)],
      ["n a string", (k) => (k.crypto.kdfparams.n = "1024")],
      ["salt not hex", (k) => (k.crypto.kdfparams.salt = "zz")],
      ["salt too short", (k) => (k.crypto.kdfparams.salt = "00")],
      ["iv length", (k) => (k.crypto.cipherparams.iv = "00")],
      ["ciphertext length", (k) => (k.crypto.ciphertext = "00".repeat(31))],
      ["mac missing", (k) => delete k.crypto.mac],
      ["address not hex", (k) => (k.address = "xyz")],
      ["crypto missing", (k) => delete k.crypto],
    ];
    for (const [what, spoil] of cases) {
      const bad = structuredClone(ks);
      spoil(bad);
      const t0 = performance.now();
      expect(reasonOf(() => decryptKey(bad, "x")), what).toBe("malformed");
      expect(performance.now() - t0, what).toBeLessThan(kdfMs / 4);
    }
    expect(reasonOf(() => decryptKey(null, "x"))).toBe("malformed");
    expect(reasonOf(() => decryptKey("keystore", "x"))).toBe("malformed");
  });

  it("refuses parameters scrypt itself rejects, and a keystore naming another account than its key's", () => {
    const ks = encryptKey(KEY, "x", FAST);
    const tight = structuredClone(ks);
    Object.assign(tight.crypto.kdfparams, { n: 2 ** 16, r: 1 }); // within our bounds, but n ≥ 2^(16·r)
    expect(reasonOf(() => decryptKey(tight, "x"))).toBe("malformed");
    const other = structuredClone(ks);
    other.address = new Wallet(newWallet("key").privateKey).address.slice(2).toLowerCase();
    expect(reasonOf(() => decryptKey(other, "x"))).toBe("malformed");
    const noAddress = structuredClone(ks) as Partial<typeof ks>;
    delete noAddress.address;
    expect(decryptKey(noAddress, "x")).toBe(KEY);
  });
});

describe("encrypted wallet files", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-wallet-enc-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("saves /2 with the key encrypted, and loads it only with the passphrase", () => {
    const path = join(dir, "enc.json");
    const w = newWallet("key");
    saveWallet(path, w, { passphrase: "s3cret", scryptN: 1024 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, "utf8");
    const file = JSON.parse(text);
    expect(file.format).toBe("custodia-wallet/2");
    expect(file.privateKey).toBeUndefined();
    expect(text.toLowerCase()).not.toContain(w.privateKey.slice(2));
    expect(file.did).toBe(w.did);
    expect(isEncryptedWallet(path)).toBe(true);
    expect(codeOf(() => loadWallet(path))).toBe("WALLET_LOCKED");
    expect(codeOf(() => loadWallet(path, "S3cret"))).toBe("WALLET_BAD_PASSPHRASE");
    expect(loadWallet(path, "s3cret")).toEqual(w);
  });

  it("refuses a keystore whose key is not the recorded account's, even with the right passphrase", () => {
    const path = join(dir, "swapped.json");
    const w = newWallet("ethr", 31337);
    saveWallet(path, w, { passphrase: "p", scryptN: 1024, chainId: 31337 });
    const file = JSON.parse(readFileSync(path, "utf8"));
    file.keystore = encryptKey(newWallet("key").privateKey, "p", FAST);
    writeFileSync(path, JSON.stringify(file), { mode: 0o600 });
    expect(codeOf(() => loadWallet(path, "p"))).toBe("WALLET_INVALID");
    file.keystore = { version: 3 };
    writeFileSync(path, JSON.stringify(file), { mode: 0o600 });
    expect(codeOf(() => loadWallet(path, "p"))).toBe("WALLET_INVALID");
  });

  it("encrypts an unencrypted wallet in place: same key, DID and creation time; once only", () => {
    const path = join(dir, "plain.json");
    const w = newWallet("ethr", 31337);
    saveWallet(path, w, { chainId: 31337 });
    const before = JSON.parse(readFileSync(path, "utf8"));
    expect(isEncryptedWallet(path)).toBe(false);
    expect(encryptWallet(path, "later", { scryptN: 1024 })).toEqual(w);
    const after = JSON.parse(readFileSync(path, "utf8"));
    expect(after).toMatchObject({ format: "custodia-wallet/2", did: before.did, address: before.address, chainId: 31337, createdAt: before.createdAt });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    expect(loadWallet(path, "later")).toEqual(w);
    expect(codeOf(() => encryptWallet(path, "again", { scryptN: 1024 }))).toBe("INVALID_ARGUMENT");
    expect(loadWallet(path, "later")).toEqual(w);
  });

  it("an unencrypted wallet loads with or without a passphrase", () => {
    const path = join(dir, "plain2.json");
    const w = newWallet("key");
    saveWallet(path, w);
    expect(loadWallet(path, "anything")).toEqual(w);
  });

  it("refuses an empty passphrase rather than encrypting under it", () => {
    expect(codeOf(() => saveWallet(join(dir, "empty.json"), newWallet("key"), { passphrase: "", scryptN: 1024 }))).toBe("CONFIG_INVALID");
  });

  it("an encrypted wallet serves as an admin key file with its passphrase", () => {
    const path = join(dir, "admin.json");
    const w = newWallet("key");
    saveWallet(path, w, { passphrase: "adm", scryptN: 1024 });
    expect(readKeyFile(path, "admin", "adm")).toBe(w.privateKey);
    expect(codeOf(() => readKeyFile(path, "admin"))).toBe("WALLET_LOCKED");
  });
});

describe("custodia wallet with a passphrase (CLI, standard scrypt cost)", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-wallet-cli-enc-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const offline = ["--gateway", "http://127.0.0.1:9", "--data-dir", dir];
  const PASS = "a long passphrase";

  it("creates an encrypted wallet, shows it only with the passphrase, from the variable or a file", async () => {
    const path = join(dir, "w.json");
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key"], { CUSTODIA_WALLET_PASSPHRASE: PASS });
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(r.json.encrypted).toBe(true);
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file.format).toBe("custodia-wallet/2");
    expect(file.keystore.crypto.kdfparams.n).toBe(STANDARD_SCRYPT_N);

    const locked = await cli([...offline, "--wallet", path, "--json", "wallet", "show"]);
    expect(locked.code).toBe(EXIT.LOCAL);
    expect(locked.json.error.code).toBe("WALLET_LOCKED");
    expect(locked.json.error.message).toContain("CUSTODIA_WALLET_PASSPHRASE");

    const wrong = await cli([...offline, "--wallet", path, "--json", "wallet", "show"], { CUSTODIA_WALLET_PASSPHRASE: "not it" });
    expect(wrong.code).toBe(EXIT.LOCAL);
    expect(wrong.json.error.code).toBe("WALLET_BAD_PASSPHRASE");

    const passFile = join(dir, "pass.txt");
    writeFileSync(passFile, `${PASS}\nignored second line\n`, { mode: 0o600 });
    const shown = await cli([...offline, "--wallet", path, "wallet", "show"], { CUSTODIA_WALLET_PASSPHRASE_FILE: passFile });
    expect(shown.code, shown.stderr).toBe(EXIT.OK);
    expect(shown.stdout).toContain(r.json.did);
    expect(shown.stdout).toContain("encrypted");
    for (const out of [r.stdout, r.stderr, locked.stdout, wrong.stdout, shown.stdout]) expect(out).not.toContain(PASS);
  });

  it("encrypts an existing wallet, and refuses ambiguous or missing passphrases with a usage error", async () => {
    const path = join(dir, "plain.json");
    const created = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key"]);
    expect(created.code).toBe(EXIT.OK);
    expect(created.json.encrypted).toBe(false);
    expect(created.stdout).not.toContain("not encrypted"); // --json: the hint is for people, not parsers

    const none = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"]);
    expect(none.code).toBe(EXIT.USAGE);
    expect(none.json.error.code).toBe("CONFIG_INVALID");
    const both = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], { CUSTODIA_WALLET_PASSPHRASE: PASS, CUSTODIA_WALLET_PASSPHRASE_FILE: join(dir, "pass.txt") });
    expect(both.code).toBe(EXIT.USAGE);
    expect(both.json.error.code).toBe("CONFIG_INVALID");
    const empty = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], { CUSTODIA_WALLET_PASSPHRASE: "" });
    expect(empty.code).toBe(EXIT.USAGE);
    const missingFile = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], { CUSTODIA_WALLET_PASSPHRASE_FILE: join(dir, "nope.txt") });
    expect(missingFile.code).toBe(EXIT.USAGE);
    expect(missingFile.json.error.code).toBe("CONFIG_INVALID");
    expect(isEncryptedWallet(path)).toBe(false);

    const enc = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], { CUSTODIA_WALLET_PASSPHRASE: PASS });
    expect(enc.code, enc.stderr).toBe(EXIT.OK);
    expect(enc.json).toMatchObject({ did: created.json.did, address: created.json.address, encrypted: true });
    expect(isEncryptedWallet(path)).toBe(true);
    const again = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], { CUSTODIA_WALLET_PASSPHRASE: PASS });
    expect(again.code).toBe(EXIT.USAGE);
    expect(again.json.error.code).toBe("INVALID_ARGUMENT");
  });

  it("answers --help for wallet encrypt", async () => {
    const r = await cli(["wallet", "encrypt", "--help"]);
    expect(r.code).toBe(EXIT.OK);
    expect(r.stdout).toContain("CUSTODIA_WALLET_PASSPHRASE");
  });
});

describe("passphrases typed at a terminal", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-wallet-tty-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const offline = ["--gateway", "http://127.0.0.1:9", "--data-dir", dir];
  /** A terminal that answers the prompts in order and records them. */
  const typist = (...answers: string[]) => {
    const prompts: string[] = [];
    return { prompts, askSecret: async (prompt: string) => (prompts.push(prompt), answers.shift() ?? "") };
  };

  /** A stand-in terminal: records raw mode and pauses, and emits what a test types. */
  const fakeTerminal = () => {
    const events = new EventEmitter();
    const raw: boolean[] = [];
    let paused = 0;
    const input = { setRawMode: (r: boolean) => raw.push(r), setEncoding: () => undefined, resume: () => undefined, pause: () => void paused++, on: (e: string, l: (c: string) => void) => events.on(e, l), off: (e: string, l: (c: string) => void) => events.off(e, l) };
    return { events, raw, input, paused: () => paused, listeners: () => events.listenerCount("data") + events.listenerCount("end") + events.listenerCount("error") };
  };

  it("reads a line without echo, with backspace, and restores and pauses the terminal", async () => {
    const t = fakeTerminal();
    let written = "";
    const p = readSecret(t.input, (x) => void (written += x), "passphrase: ");
    t.events.emit("data", "px");
    t.events.emit("data", "\u007fas");
    t.events.emit("data", "s\r");
    await expect(p).resolves.toBe("pass");
    expect(t.raw).toEqual([true, false]);
    expect(t.paused()).toBe(1);
    expect(written).toBe("passphrase: \n");
    expect(t.listeners()).toBe(0);
  });

  it("ignores escape sequences, keeps what was typed past Enter for the next prompt, and abandons on Ctrl-C, Ctrl-D or the end", async () => {
    const t = fakeTerminal();
    const first = readSecret(t.input, () => undefined, "new: ");
    t.events.emit("data", "a\u001b[Db\u001bOHc\r\nsecond\rthird");
    await expect(first).resolves.toBe("abc");
    // the pasted rest is read by the next prompts without waiting for input
    await expect(readSecret(t.input, () => undefined, "again: ")).resolves.toBe("second");
    const third = readSecret(t.input, () => undefined, "once more: ");
    t.events.emit("data", "\r");
    await expect(third).resolves.toBe("third");

    for (const [how, act] of [["Ctrl-C", () => t.events.emit("data", "ab\u0003")], ["Ctrl-D", () => t.events.emit("data", "\u0004")], ["end", () => t.events.emit("end")]] as const) {
      const q = readSecret(t.input, () => undefined, "p: ");
      act();
      await expect(q, how).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
      expect(t.raw.at(-1), how).toBe(false);
      expect(t.listeners(), how).toBe(0);
    }
  });

  it("wallet create --encrypt asks twice, and refuses two different answers without writing", async () => {
    const path = join(dir, "tty.json");
    const mismatch = typist("one", "two");
    const bad = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key", "--encrypt"], {}, mismatch);
    expect(bad.code).toBe(EXIT.USAGE);
    expect(bad.json.error.code).toBe("INVALID_ARGUMENT");
    expect(mismatch.prompts).toHaveLength(2);
    expect(() => statSync(path)).toThrow();

    // an existing wallet is refused before anything is asked
    saveWallet(join(dir, "taken.json"), newWallet("key"));
    const taken = typist("x", "x");
    const refused = await cli([...offline, "--wallet", join(dir, "taken.json"), "--json", "wallet", "create", "--method", "key", "--encrypt"], {}, taken);
    expect(refused.json.error.code).toBe("WALLET_EXISTS");
    expect(taken.prompts).toEqual([]);

    const ok = typist("typed pass", "typed pass");
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key", "--encrypt"], {}, ok);
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(r.json.encrypted).toBe(true);
    expect(loadWallet(path, "typed pass").did).toBe(r.json.did);

    // opening it asks once, naming the file; a wrong answer is WALLET_BAD_PASSPHRASE
    const asked = typist("typed pass");
    const shown = await cli([...offline, "--wallet", path, "--json", "wallet", "show"], {}, asked);
    expect(shown.code, shown.stderr).toBe(EXIT.OK);
    expect(asked.prompts).toEqual([`passphrase for ${path}: `]);
    const wrong = await cli([...offline, "--wallet", path, "--json", "wallet", "show"], {}, typist("nope"));
    expect(wrong.json.error.code).toBe("WALLET_BAD_PASSPHRASE");
  });

  it("never asks when the environment gives the passphrase, or when the wallet is not encrypted", async () => {
    const enc = join(dir, "env.json");
    saveWallet(enc, newWallet("key"), { passphrase: "from env", scryptN: 1024 });
    const silent = typist();
    const r = await cli([...offline, "--wallet", enc, "--json", "wallet", "show"], { CUSTODIA_WALLET_PASSPHRASE: "from env" }, silent);
    expect(r.code, r.stderr).toBe(EXIT.OK);
    const plain = join(dir, "plain.json");
    saveWallet(plain, newWallet("key"));
    const r2 = await cli([...offline, "--wallet", plain, "--json", "wallet", "show"], {}, silent);
    expect(r2.code, r2.stderr).toBe(EXIT.OK);
    expect(r2.json.encrypted).toBe(false);
    expect(silent.prompts).toEqual([]);
    // an unencrypted create without --encrypt asks nothing either
    const r3 = await cli([...offline, "--wallet", join(dir, "plain2.json"), "--json", "wallet", "create", "--method", "key"], {}, silent);
    expect(r3.json.encrypted).toBe(false);
    expect(silent.prompts).toEqual([]);
  });

  it("wallet encrypt asks for the new passphrase twice at a terminal", async () => {
    const path = join(dir, "later.json");
    const w = newWallet("key");
    saveWallet(path, w);
    const t = typist("later pass", "later pass");
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "encrypt"], {}, t);
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(t.prompts).toHaveLength(2);
    expect(loadWallet(path, "later pass")).toEqual(w);
  });
});

describe("passphrase files and links", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-wallet-files-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const offline = ["--gateway", "http://127.0.0.1:9", "--data-dir", dir];

  it("refuses a passphrase file others can read, as it refuses such a wallet", async () => {
    const path = join(dir, "w.json");
    saveWallet(path, newWallet("key"), { passphrase: "pf", scryptN: 1024 });
    const passFile = join(dir, "open.txt");
    writeFileSync(passFile, "pf\n", { mode: 0o644 });
    chmodSync(passFile, 0o644);
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "show"], { CUSTODIA_WALLET_PASSPHRASE_FILE: passFile });
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.json.error.code).toBe("CONFIG_INVALID");
    expect(r.json.error.message).toContain("chmod 600");
    chmodSync(passFile, 0o600);
    const ok = await cli([...offline, "--wallet", path, "--json", "wallet", "show"], { CUSTODIA_WALLET_PASSPHRASE_FILE: passFile });
    expect(ok.code, ok.stderr).toBe(EXIT.OK);
  });

  it("encrypts a wallet reached through a symbolic link where it lives, leaving no plaintext copy", () => {
    const real = join(dir, "real.json");
    const link = join(dir, "link.json");
    const w = newWallet("key");
    saveWallet(real, w);
    symlinkSync(real, link);
    encryptWallet(link, "through", { scryptN: 1024 });
    expect(lstatSync(link).isSymbolicLink()).toBe(true);
    expect(JSON.parse(readFileSync(real, "utf8")).format).toBe("custodia-wallet/2");
    expect(readFileSync(real, "utf8")).not.toContain(w.privateKey.slice(2));
    expect(readdirSync(dir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(loadWallet(link, "through")).toEqual(w);
  });
});
