/**
 * The addresses a pool key controls, per chain family: shared by the gateway (its address index, for
 * commingling and internal transfers) and the HSM simulator (its own index of every pool's addresses).
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { bitcoinNetwork, type ParsedChainId } from '../chain-id.js';
import { ethAddressFromPublicKey } from './ethereum/address.js';
import { BITCOIN_ADDRESS_TYPES, poolOutput, type BitcoinAddressType } from './bitcoin/address.js';
import { solanaAddressFromPublicKey } from './solana/address.js';

/** The address of a pool key; on Bitcoin, of the pool's address type (P2WPKH unless the plan says P2TR). */
export function addressForKey(chain: ParsedChainId, publicKeyHex: string, bitcoinAddressType: BitcoinAddressType = 'p2wpkh'): string {
  const publicKey = hexToBytes(publicKeyHex);
  switch (chain.family) {
    case 'eip155':
      return ethAddressFromPublicKey(publicKey);
    case 'bip122':
      return poolOutput(publicKey, bitcoinAddressType, bitcoinNetwork(chain)).address;
    case 'solana':
      return solanaAddressFromPublicKey(publicKey);
  }
}

/**
 * Every address a pool key controls on its chain: a Bitcoin key both its P2WPKH and its P2TR address
 * (the device signs for either), other keys their one address. A payment to any of them pays that pool.
 * `address` (the pool's recorded address) comes first.
 */
export function everyAddressOfKey(chain: ParsedChainId, publicKeyHex: string, address: string = addressForKey(chain, publicKeyHex)): string[] {
  if (chain.family !== 'bip122') return [address];
  const others = BITCOIN_ADDRESS_TYPES.map((t) => poolOutput(hexToBytes(publicKeyHex), t, bitcoinNetwork(chain)).address).filter((a) => a !== address);
  return [address, ...others];
}

/** The form two addresses of one family are compared in: EVM hex and bech32 are case-insensitive. */
export function addressIndexKey(family: ParsedChainId['family'], address: string): string {
  return family === 'solana' ? `${family} ${address}` : `${family} ${address.toLowerCase()}`;
}
