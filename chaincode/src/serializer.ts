import { JSONSerializer } from "fabric-contract-api";
import { canonicalize } from "../../core/jcs.js";

/**
 * fabric-contract-api's JSONSerializer, except that structured results are written as RFC 8785
 * canonical JSON with core's canonicalize instead of class-transformer's classToPlain + JSON.stringify.
 *
 * Two reasons: results are then byte-identical on every endorser by construction, and the
 * serializer does not depend on class-transformer — fabric-contract-api asks for ^0.4.0, which
 * resolves to 0.4.1, a release that renamed classToPlain (so every object result, e.g. the system
 * contract's GetMetadata, fails with "classToPlain is not a function"). Custodia's own transactions
 * return strings, which both serializers pass through unchanged. Arguments are parsed by the
 * inherited fromBuffer.
 */
export class CanonicalJsonSerializer extends JSONSerializer {
  override toBuffer(result: unknown, schema: { type?: string } = {}, loggerPrefix?: string): Buffer {
    if (result === undefined || result === null) return super.toBuffer(result, schema, loggerPrefix);
    if ((schema.type === "string" || schema.type === "number") || typeof result === "string" || typeof result === "number" || typeof result === "boolean") {
      return super.toBuffer(result, schema, loggerPrefix);
    }
    return Buffer.from(canonicalize(result), "utf8");
  }
}

/** The serializer configuration fabric-chaincode-node's bootstrap reads from the chaincode module. */
export const serializers = {
  transaction: "canonicalJson",
  serializers: { canonicalJson: CanonicalJsonSerializer },
};
