// Hardhat 2 configuration. CommonJS (.cjs) because the package is ESM and vitest drives Hardhat
// in-process. Compilation is offline: the compiler is the `solc` npm package (soljson), wired in
// through Hardhat's documented TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD override, so no compiler
// download is ever attempted.
const path = require("node:path");
const { subtask } = require("hardhat/config");
const { TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD } = require("hardhat/builtin-tasks/task-names");

const SOLC_VERSION = "0.8.30";

subtask(TASK_COMPILE_SOLIDITY_GET_SOLC_BUILD, async (args, _hre, runSuper) => {
  if (args.solcVersion !== SOLC_VERSION) return runSuper(args);
  const solc = require("solc");
  return {
    compilerPath: require.resolve("solc/soljson.js"),
    isSolcJs: true,
    version: SOLC_VERSION,
    longVersion: solc.version().replace(/\.Emscripten\.clang$/, ""),
  };
});

/** @type {import("hardhat/config").HardhatUserConfig} */
module.exports = {
  solidity: {
    version: SOLC_VERSION,
    settings: {
      evmVersion: "cancun",
      optimizer: { enabled: true, runs: 10000 },
    },
  },
  paths: {
    sources: path.join(__dirname, "contracts"),
    tests: path.join(__dirname, "test", "contracts"),
    cache: path.join(__dirname, "cache"),
    artifacts: path.join(__dirname, "artifacts"),
  },
  networks: {
    hardhat: {
      hardfork: "cancun",
      // The in-process chain used by the tests: deterministic accounts, instant mining.
      chainId: 31337,
    },
  },
};
