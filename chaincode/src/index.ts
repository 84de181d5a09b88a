/**
 * Chaincode entry point (package.json "main"). fabric-chaincode-node (`start` for a peer-launched
 * chaincode, `server` for chaincode-as-a-service) requires this module, registers every class in
 * `contracts` (the first is the default contract) and marshals results with `serializers`.
 */
import { CustodiaContract } from "./contract.js";

export { CustodiaContract } from "./contract.js";
export { CanonicalJsonSerializer, serializers } from "./serializer.js";
export { fabricAccount } from "./identity.js";
export * from "./protocol.js";

export const contracts = [CustodiaContract];
