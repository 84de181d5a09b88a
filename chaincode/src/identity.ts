import { getAddress, keccak256, toUtf8Bytes } from "ethers";
import type { Address } from "../../core/domain.js";

/**
 * The ledger account of a Fabric client identity: the last 20 bytes of
 * keccak256(utf8(mspId + "\n" + id)), EIP-55 checksummed, where `id` is the identity id Fabric's
 * ClientIdentity reports (`x509::<subject DN>::<issuer DN>`). Deterministic on every endorser,
 * stable across certificate renewals that keep subject and issuer, distinct per MSP. Members,
 * agreements' partners and checkpoint owners are such accounts on the Fabric ledger, exactly as
 * they are EVM addresses on the EVM ledger; subjects stay wallet addresses on both.
 *
 * Pure (no Fabric imports): the adapter and the tests use it too.
 */
export function fabricAccount(mspId: string, clientId: string): Address {
  if (!mspId || !clientId) throw new Error("fabricAccount: MSP id and client id are required");
  const digest = keccak256(toUtf8Bytes(`${mspId}\n${clientId}`));
  return getAddress(`0x${digest.slice(-40)}`) as Address;
}
