/**
 * Addresses per chain family: the address of a pool key, and the canonical form of a destination.
 */
import { bitcoinNetwork, type ParsedChainId } from '../../common/chain-id.js';
import { assertEthAddress } from '../../common/chains/ethereum/address.js';
import { assertBitcoinAddress } from '../../common/chains/bitcoin/address.js';
import { assertSolanaAddress } from '../../common/chains/solana/address.js';

export { addressForKey, everyAddressOfKey } from '../../common/chains/key-addresses.js';

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
