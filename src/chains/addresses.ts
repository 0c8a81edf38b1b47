/**
 * Addresses per chain family: the address of a pool key, and the canonical form of a destination.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { bitcoinNetwork, type ParsedChainId } from '../../common/chain-id.js';
import { assertEthAddress, ethAddressFromPublicKey } from '../../common/chains/ethereum/address.js';
import { assertBitcoinAddress, poolOutput, type BitcoinAddressType } from '../../common/chains/bitcoin/address.js';
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
