/**
 * The chaincode's contract metadata, read from its tsc output the way fabric-chaincode-node reads
 * it: every transaction, its SUBMIT/EVALUATE tag, its parameters (names and JSON-schema types from
 * the emitted `design:paramtypes`) and return type. A bundler or esbuild build drops the decorator
 * metadata, and fabric-contract-api then sees no parameters at all — which these checks catch.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createServer, connect } from "node:net";
import { resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { CONTRACT_NAME, EVALUATE_TRANSACTIONS, SUBMIT_TRANSACTIONS } from "../../chaincode/src/protocol.js";
import { CHAINCODE_DIR, CHAINCODE_MAIN, chaincodeFromContracts, loadChaincode, type ChaincodeFromContract, type ChaincodeModule } from "./support/load-chaincode.js";
import { MemoryPeer } from "./support/memory-peer.js";
import { TestCa } from "./support/x509.js";

const require = createRequire(import.meta.url);

/** Every transaction function with its parameters, in order. */
const EXPECTED: Record<string, string[]> = {
  InitLedger: ["chainId", "verifyingContract"],
  RegisterMember: ["account", "didHash", "role", "orgHash"],
  DeactivateMember: ["account"],
  RegisterAgreement: ["partner", "purposes", "categories", "validFrom", "validUntil", "termsHash"],
  EndAgreement: ["id"],
  GrantConsent: ["subject", "partner", "purpose", "categories", "expiresAt", "receiptHash", "nonce", "deadline", "signature"],
  GrantConsentDirect: ["partner", "purpose", "categories", "expiresAt", "receiptHash"],
  RevokeConsent: ["subject", "partner", "purpose", "nonce", "deadline", "signature"],
  RevokeConsentDirect: ["partner", "purpose"],
  CommitData: ["subject", "commitment", "nonce", "deadline", "signature"],
  CommitDataDirect: ["commitment"],
  RecordErasure: ["subject", "commitment", "nonce", "deadline", "signature"],
  RecordErasureDirect: ["commitment"],
  AnchorCheckpoint: ["logId", "treeSize", "root"],
  WhoAmI: [],
  Eip712Domain: [],
  Member: ["account"],
  Agreement: ["id"],
  AgreementsOf: ["partner"],
  Consent: ["subject", "partner", "purpose"],
  CheckPermission: ["subject", "partner", "purpose", "categories", "at"],
  CommitmentOf: ["commitment"],
  DataNonce: ["subject"],
  LatestCheckpoint: ["logId"],
  CheckpointRoot: ["logId", "treeSize"],
  CheckpointHistory: ["logId"],
};

interface ReflectMetadata {
  getMetadata(key: string, target: object, property?: string): unknown;
}

describe("chaincode metadata (tsc output)", () => {
  let mod: ChaincodeModule;
  let chaincode: ChaincodeFromContract;

  beforeAll(async () => {
    mod = await loadChaincode();
    chaincode = await chaincodeFromContracts();
  });

  it("is an ESM package whose main is the tsc output, started by fabric-chaincode-node", () => {
    const pkg = JSON.parse(readFileSync(resolve(CHAINCODE_DIR, "package.json"), "utf8")) as Record<string, unknown>;
    expect(resolve(CHAINCODE_DIR, pkg["main"] as string)).toBe(CHAINCODE_MAIN);
    expect(pkg["type"]).toBe("module");
    expect((pkg["scripts"] as Record<string, string>)["start"]).toBe("fabric-chaincode-node start");
    expect((pkg["scripts"] as Record<string, string>)["server"]).toMatch(/^fabric-chaincode-node server --chaincode-address=\$CHAINCODE_SERVER_ADDRESS --chaincode-id=\$CHAINCODE_ID$/);
    // tsc's decorator helpers are in the emitted file: the metadata is in the JavaScript itself
    const js = readFileSync(resolve(CHAINCODE_DIR, "dist/chaincode/src/contract.js"), "utf8");
    expect(js).toContain('__metadata("design:paramtypes"');
  });

  it("exports the contract list and serializers fabric-chaincode-node registers", () => {
    expect(mod.contracts.map((c) => new c().getName())).toEqual([CONTRACT_NAME]);
    expect(mod.serializers?.transaction).toBe("canonicalJson");
  });

  it("starts as chaincode-as-a-service under the real fabric-chaincode-node CLI", async () => {
    const port = await new Promise<number>((res) => {
      const probe = createServer().listen(0, "127.0.0.1", () => {
        const p = (probe.address() as { port: number }).port;
        probe.close(() => res(p));
      });
    });
    const cli = require.resolve("fabric-shim/cli.js");
    const child = spawn(process.execPath, [cli, "server", `--chaincode-address=127.0.0.1:${port}`, "--chaincode-id=custodia_0.1.0:0123456789abcdef", "--module-path", CHAINCODE_DIR], {
      env: { ...process.env, CORE_CHAINCODE_LOGGING_LEVEL: "INFO" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (d: Buffer) => (output += d.toString()));
    child.stderr.on("data", (d: Buffer) => (output += d.toString()));
    try {
      const listening = async (): Promise<boolean> =>
        new Promise((res) => {
          const socket = connect(port, "127.0.0.1", () => {
            socket.destroy();
            res(true);
          }).on("error", () => res(false));
        });
      const deadline = Date.now() + 15_000;
      while (!(output.includes("Bootstrap process completed") && (await listening())) && child.exitCode === null && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(child.exitCode, output).toBeNull();
      expect(output).toContain("Bootstrap process completed");
      expect(output).not.toMatch(/ERR_REQUIRE_ESM|Error:/);
      expect(await listening()).toBe(true);
    } finally {
      child.kill("SIGTERM");
    }
  });

  it("declares every transaction with its tag, parameters and return type", () => {
    const contract = chaincode.metadata.contracts[CONTRACT_NAME]!;
    expect(contract).toBeDefined();
    const names = contract.transactions.map((t) => t.name).sort();
    expect(names).toEqual([...SUBMIT_TRANSACTIONS, ...EVALUATE_TRANSACTIONS].sort());
    expect(Object.keys(EXPECTED).sort()).toEqual(names);
    for (const t of contract.transactions) {
      const submit = (SUBMIT_TRANSACTIONS as readonly string[]).includes(t.name);
      expect(t.tag, t.name).toEqual(submit ? ["SUBMIT", "submitTx"] : ["EVALUATE"]);
      expect((t.parameters ?? []).map((p) => p.name), t.name).toEqual(EXPECTED[t.name]);
      for (const p of t.parameters ?? []) expect(p.schema, `${t.name}(${p.name})`).toEqual({ type: "string" });
      if (!submit || t.name === "RegisterAgreement") expect(t.returns, t.name).toEqual({ type: "string" });
    }
    expect(contract.info).toMatchObject({ title: "Custodia", version: "1" });
    const initParams = contract.transactions.find((t) => t.name === "InitLedger")!.parameters!;
    expect(initParams[0]!.description).toMatch(/chain id/);
  });

  it("keeps TypeScript's design:paramtypes, with the transaction context first", () => {
    const reflect = Reflect as unknown as ReflectMetadata;
    const { Context } = require("fabric-contract-api") as { Context: unknown };
    const proto = mod.CustodiaContract.prototype as object;
    const types = reflect.getMetadata("design:paramtypes", proto, "GrantConsent") as unknown[];
    expect(types).toHaveLength(10);
    expect(types[0]).toBe(Context);
    expect(types.slice(1)).toEqual(Array(9).fill(String));
    const declared = reflect.getMetadata("fabric:transactions", proto) as { name: string }[];
    expect(declared.map((t) => t.name).sort()).toEqual(Object.keys(EXPECTED).sort());
  });

  it("serves the same metadata through the system contract, and enforces the declared arity", async () => {
    const peer = await MemoryPeer.create();
    const caller = new TestCa("Org1MSP").newIdentity();
    const served = JSON.parse((await peer.evaluate(caller, "org.hyperledger.fabric:GetMetadata", [])).toString("utf8")) as ChaincodeFromContract["metadata"];
    expect(served.contracts[CONTRACT_NAME]!.transactions.map((t) => t.name).sort()).toEqual(Object.keys(EXPECTED).sort());
    await expect(peer.evaluate(caller, "Member", [])).rejects.toThrow(/Expected 1 parameters, but 0 have been supplied/);
    await expect(peer.evaluate(caller, `${CONTRACT_NAME}:NoSuchTransaction`, [])).rejects.toThrow(/CUSTODIA:BAD_REQUEST: UnknownTransaction/);
  });
});
