/**
 * Addresses per chain family: the address of a pool key, and the canonical form of a destination.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { bitcoinNetwork, type ParsedChainId } from '../domain/chain-id.js';
import { assertEthAddress, ethAddressFromPublicKey } from './ethereum/address.js';
import { assertBitcoinAddress, p2wpkhAddress } from './bitcoin/address.js';
import { assertSolanaAddress, solanaAddressFromPublicKey } from './solana/address.js';

export function addressForKey(chain: ParsedChainId, publicKeyHex: string): string {
  const publicKey = hexToBytes(publicKeyHex);
  switch (chain.family) {
    case 'eip155':
      return ethAddressFromPublicKey(publicKey);
    case 'bip122':
      return p2wpkhAddress(publicKey, bitcoinNetwork(chain));
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
