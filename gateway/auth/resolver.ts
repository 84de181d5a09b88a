import { Resolver, type DIDResolver } from "did-resolver";
import KeyResolver from "key-did-resolver";
import { getResolver as ethrResolver } from "ethr-did-resolver";
import type { Provider } from "ethers";
import { CustodiaError } from "../../core/errors.js";

const TRANSPORT = /ECONNREFUSED|ECONNRESET|ETIMEDOUT|EHOSTUNREACH|ENOTFOUND|socket hang up|fetch failed|timeout|SERVER_ERROR|NETWORK_ERROR/i;

/**
 * DID resolution for the gateway: did:key offline, did:ethr against the ERC-1056 registry on the
 * consortium chain (when there is one: a Fabric ledger has none, and then only did:key resolves). ethr-did-resolver reports an unreachable node as "notFound"; that is turned
 * into LEDGER_UNAVAILABLE here, so a caller with a good token gets 503 (retry), not 401.
 */
export function didResolver(args: { chainId: number; provider?: Provider; registry?: string }): Resolver {
  // no cache: a key rotation on the registry must take effect for the next token
  if (!args.provider || !args.registry) return new Resolver({ ...KeyResolver.getResolver() }); // no EVM registry (Fabric): did:key only
  const ethr = ethrResolver({ networks: [{ name: `0x${args.chainId.toString(16)}`, chainId: args.chainId, provider: args.provider as never, registry: args.registry }] })["ethr"]!;
  const guarded: DIDResolver = async (did, parsed, resolver, options) => {
    const result = await ethr(did, parsed, resolver, options);
    const meta = result.didResolutionMetadata;
    if (meta?.error && TRANSPORT.test(String(meta["message"] ?? ""))) {
      throw new CustodiaError("LEDGER_UNAVAILABLE", "the ledger holding did:ethr documents cannot be reached");
    }
    return result;
  };
  return new Resolver({ ...KeyResolver.getResolver(), ethr: guarded });
}
