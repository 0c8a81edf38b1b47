/**
 * Addresses per chain family: the address of a pool key, and the canonical form of a destination.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { bitcoinNetwork, type ParsedChainId } from '../../common/chain-id.js';
import { assertEthAddress, ethAddressFromPublicKey } from '../../common/chains/ethereum/address.js';
import { BITCOIN_ADDRESS_TYPES, assertBitcoinAddress, poolOutput, type BitcoinAddressType } from '../../common/chains/bitcoin/address.js';
import { assertSolanaAddress, solanaAddressFromPublicKey } from '../../common/chains/solana/address.js';

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
 */
export function everyAddressOfKey(chain: ParsedChainId, publicKeyHex: string, address: string): string[] {
  if (chain.family !== 'bip122') return [address];
  const others = BITCOIN_ADDRESS_TYPES.map((t) => poolOutput(hexToBytes(publicKeyHex), t, bitcoinNetwork(chain)).address).filter((a) => a !== address);
  return [address, ...others];
}

export function assertDestination(chain: ParsedChainId, value: unknown, field: string): string {
  switch (chain.family) {
    case 'eip155':
      return assertEthAddress(value, field);
    case 'bip122':
      return assertBitcoinAddress(value, bitcoinNetwork(chain), field);
    case 'solana':
      return assertSolanaAddress(value, field);
  }
}
