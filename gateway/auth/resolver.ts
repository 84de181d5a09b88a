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
export function didResolver(args: { chainId: number; provider?: Provider; registry?: string; timeoutMs?: number }): Resolver {
  // no cache: a key rotation on the registry must take effect for the next token
  if (!args.provider || !args.registry) return new Resolver({ ...KeyResolver.getResolver() }); // no EVM registry (Fabric): did:key only
  const ethr = ethrResolver({ networks: [{ name: `0x${args.chainId.toString(16)}`, chainId: args.chainId, provider: args.provider as never, registry: args.registry }] })["ethr"]!;
  const guarded: DIDResolver = async (did, parsed, resolver, options) => {
    // a node that does not answer must not hold the caller past the gateway's staleness bound
    let timer: NodeJS.Timeout | undefined;
    const limit = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new CustodiaError("LEDGER_UNAVAILABLE", "the ledger holding did:ethr documents did not answer in time")), args.timeoutMs ?? 5_000);
    });
    const result = await Promise.race([ethr(did, parsed, resolver, options), limit]).finally(() => clearTimeout(timer));
    const meta = result.didResolutionMetadata;
    if (meta?.error && TRANSPORT.test(String(meta["message"] ?? ""))) {
      throw new CustodiaError("LEDGER_UNAVAILABLE", "the ledger holding did:ethr documents cannot be reached");
    }
    return result;
  };
  return new Resolver({ ...KeyResolver.getResolver(), ethr: guarded });
}
