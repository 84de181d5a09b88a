import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { Wallet, computeAddress } from "ethers";
import { decodeJWT } from "did-jwt";
import { ethrDid } from "../../core/domain.js";
import { isCustodiaError } from "../../core/errors.js";
import { EXIT } from "../../cli/io.js";
import { didAccount, didKeyOf, loadWallet, newWallet, saveWallet, tokenFor } from "../../cli/wallet-store.js";
import { cli } from "./cli-env.js";

/** Wallet files need no network: created, shown, refused and rejected on the local disk. */
describe("custodia wallet (local file)", () => {
  const dir = mkdtempSync(join(tmpdir(), "custodia-wallet-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  // a closed port: any attempt to reach a gateway fails fast
  const offline = ["--gateway", "http://127.0.0.1:9", "--data-dir", dir];

  it("creates a did:ethr wallet for the configured chain, mode 0600, and shows it without the key", async () => {
    const path = join(dir, "ethr.json");
    const r = await cli([...offline, "--chain-id", "31337", "--wallet", path, "--json", "wallet", "create"]);
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const file = JSON.parse(readFileSync(path, "utf8"));
    expect(file.format).toBe("custodia-wallet/1");
    expect(computeAddress(file.privateKey)).toBe(r.json.address);
    expect(r.json).toEqual({ did: ethrDid(31337, r.json.address), address: r.json.address, method: "ethr", wallet: path, encrypted: false });
    const show = await cli([...offline, "--wallet", path, "wallet", "show"]);
    expect(show.code).toBe(EXIT.OK);
    expect(show.stdout).toContain(r.json.did);
    const key = file.privateKey as string;
    for (const out of [r.stdout, r.stderr, show.stdout, show.stderr]) {
      expect(out.toLowerCase()).not.toContain(key.slice(2).toLowerCase());
    }
    expect(loadWallet(path)).toEqual({ privateKey: key.toLowerCase(), address: r.json.address, did: r.json.did, method: "ethr" });
  });

  it("creates a secp256k1 did:key wallet without any network, and the DID names the key's account", async () => {
    const path = join(dir, "key.json");
    const r = await cli(["--gateway", "http://127.0.0.1:9", "--wallet", path, "--json", "wallet", "create", "--method", "key"]);
    expect(r.code, r.stderr).toBe(EXIT.OK);
    expect(r.json.did).toMatch(/^did:key:zQ3s/); // multibase of the secp256k1-pub multicodec
    expect(didAccount(r.json.did)).toBe(r.json.address);
    const w = loadWallet(path);
    expect(w.method).toBe("key");
    expect(w.did).toBe(didKeyOf(w.privateKey));
  });

  it("refuses to overwrite a wallet without --force, and replaces it with --force", async () => {
    const path = join(dir, "once.json");
    const first = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key"]);
    const before = readFileSync(path, "utf8");
    const again = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key"]);
    expect(again.code).toBe(EXIT.LOCAL);
    expect(again.json.error.code).toBe("WALLET_EXISTS");
    expect(readFileSync(path, "utf8")).toBe(before);
    const forced = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key", "--force"]);
    expect(forced.code).toBe(EXIT.OK);
    expect(forced.json.address).not.toBe(first.json.address);
    expect(statSync(path).mode & 0o777).toBe(0o600);
  });

  it("answers a wallet name the file system cannot hold with WALLET_INVALID, with and without --force (found by the CLI fuzzer)", async () => {
    const path = join(dir, `${"x".repeat(300)}.json`);
    for (const force of [[], ["--force"]]) {
      const r = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "key", ...force]);
      expect(r.code, r.stderr).toBe(EXIT.LOCAL);
      expect(r.json.error.code).toBe("WALLET_INVALID");
      expect(r.json.error.message).toMatch(/cannot write the wallet file/);
    }
  });

  it("answers a missing wallet with WALLET_MISSING and a damaged one with WALLET_INVALID (exit 5)", async () => {
    const missing = await cli([...offline, "--wallet", join(dir, "nope.json"), "wallet", "show"]);
    expect(missing.code).toBe(EXIT.LOCAL);
    expect(missing.stderr).toMatch(/^error \[WALLET_MISSING\]: /);

    const good = newWallet("ethr", 31337);
    const other = Wallet.createRandom();
    const cases: [string, string][] = [
      ["not json", "{ this is not json"],
      ["not a wallet", JSON.stringify({ hello: "world" })],
      ["bad key", JSON.stringify({ format: "custodia-wallet/1", method: "ethr", did: good.did, address: good.address, privateKey: "0x1234" })],
      ["key of someone else", JSON.stringify({ format: "custodia-wallet/1", method: "ethr", did: good.did, address: good.address, privateKey: other.privateKey })],
      ["DID of someone else", JSON.stringify({ format: "custodia-wallet/1", method: "ethr", did: ethrDid(31337, other.address), address: good.address, privateKey: good.privateKey })],
      ["unknown method", JSON.stringify({ format: "custodia-wallet/1", method: "web", did: good.did, address: good.address, privateKey: good.privateKey })],
      ["did:key that is not the key's", JSON.stringify({ format: "custodia-wallet/1", method: "key", did: didKeyOf(other.privateKey), address: good.address, privateKey: good.privateKey })],
    ];
    for (const [name, text] of cases) {
      const path = join(dir, `bad-${name.replace(/\W+/g, "-")}.json`);
      writeFileSync(path, text, { mode: 0o600 });
      const r = await cli([...offline, "--wallet", path, "--json", "consent", "list"]);
      expect(r.code, name).toBe(EXIT.LOCAL);
      expect(r.json.error.code, name).toBe("WALLET_INVALID");
    }
  });

  it("refuses a wallet file other users can read", async () => {
    const path = join(dir, "loose.json");
    saveWallet(path, newWallet("key"));
    chmodSync(path, 0o644);
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "show"]);
    expect(r.code).toBe(EXIT.LOCAL);
    expect(r.json.error.code).toBe("WALLET_INVALID");
    expect(r.json.error.message).toContain("chmod 600");
  });

  it("needs a chain id for did:ethr: with none configured and no gateway to ask, a usage error", async () => {
    const path = join(dir, "nochain.json");
    const r = await cli(["--gateway", "http://127.0.0.1:9", "--data-dir", join(dir, "empty"), "--wallet", path, "--json", "wallet", "create"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.json.error.code).toBe("CONFIG_INVALID");
    expect(existsSync(path)).toBe(false);
  });

  it("refuses a ledger or gateway URL that is not http(s) with a usage error, before connecting", async () => {
    for (const args of [["--rpc", "ws://127.0.0.1:8545"], ["--rpc", "not a url"], ["--gateway", "ftp://127.0.0.1/"], ["--rpc", "' OR 1=1 --"]]) {
      const r = await cli([...offline, ...args, "--json", "admin", "member", "show", "--account", "0xd837a61a23f0De117eE07d9F75B1932eC83a75aa"]);
      expect(r.code, args.join(" ")).toBe(EXIT.USAGE);
      expect(r.json.error.code).toBe("CONFIG_INVALID");
      expect(r.json.error.message).toMatch(/must be an http:\/\/ or https:\/\/ URL/);
    }
  });

  it("rejects an unknown DID method with a usage error and writes nothing", async () => {
    const path = join(dir, "web.json");
    const r = await cli([...offline, "--wallet", path, "--json", "wallet", "create", "--method", "web"]);
    expect(r.code).toBe(EXIT.USAGE);
    expect(r.json.error.code).toBe("INVALID_ARGUMENT");
    expect(existsSync(path)).toBe(false);
  });

  it("makes session and single-use DID-JWTs with the algorithm each DID method verifies", async () => {
    const ethr = newWallet("ethr", 31337);
    const key = newWallet("key");
    const t1 = decodeJWT(await tokenFor(ethr, "did:ethr:0x7a69:0x0000000000000000000000000000000000000001", { once: true, nowSec: 1_000 }));
    expect(t1.header.alg).toBe("ES256K-R");
    expect(t1.payload).toMatchObject({ iss: ethr.did, aud: "did:ethr:0x7a69:0x0000000000000000000000000000000000000001", iat: 1_000, exp: 1_060 });
    const t2 = decodeJWT(await tokenFor(key, "did:x", { once: false, nowSec: 1_000 }));
    expect(t2.header.alg).toBe("ES256K");
    expect(t2.payload.exp! - t2.payload.iat!).toBeLessThanOrEqual(300);
    expect((t2.payload as { jti: string }).jti).not.toBe((t1.payload as { jti: string }).jti);
  });

  it("reads accounts off DIDs and refuses what names none", () => {
    const w = Wallet.createRandom();
    expect(didAccount(ethrDid(31337, w.address))).toBe(w.address);
    expect(didAccount(didKeyOf(w.privateKey))).toBe(w.address);
    const codeOf = (did: string): string | undefined => {
      try {
        didAccount(did);
      } catch (e) {
        return isCustodiaError(e) ? e.code : "other";
      }
      return undefined;
    };
    for (const bad of ["did:ethr:0x7a69:0x123", "did:key:zNotBase58!!", "not a did", `did:ethr:0x7a69:${w.address.toLowerCase().replace(/^0x/, "0X")}`]) {
      expect(codeOf(bad), bad).toBe("INVALID_DID");
    }
    // a well-formed DID of a method Custodia does not use
    expect(codeOf("did:web:example.com")).toBe("DID_UNSUPPORTED");
  });
});
