/**
 * Bitcoin addresses per network: P2WPKH pool addresses (BIP-141 witness v0 key hash, bech32 per
 * BIP-173) and destination checks for P2PKH, P2SH, P2WPKH, P2WSH and P2TR (BIP-350 bech32m), with
 * @scure/btc-signer's address codec.
 */
import { Address, NETWORK, TEST_NETWORK, p2wpkh } from '@scure/btc-signer';
import { ValidationError } from '../../domain/errors.js';
import type { BitcoinNetwork } from '../../domain/chain-id.js';

type Network = typeof NETWORK;

/** Regtest: testnet's base58 versions with its own bech32 prefix. */
const REGTEST_NETWORK: Network = { ...TEST_NETWORK, bech32: 'bcrt' };

export function btcNetwork(network: BitcoinNetwork): Network {
  return network === 'mainnet' ? NETWORK : network === 'testnet' ? TEST_NETWORK : REGTEST_NETWORK;
}

export function p2wpkhAddress(publicKey: Uint8Array, network: BitcoinNetwork): string {
  if (publicKey.length !== 33) throw new ValidationError('invalid_public_key', `P2WPKH needs a 33-byte compressed public key, got ${publicKey.length} bytes`);
  const address = p2wpkh(publicKey, btcNetwork(network)).address;
  if (address === undefined) throw new ValidationError('invalid_public_key', 'no P2WPKH address for this public key');
  return address;
}

/** Checks a destination is a valid address of `network`; returns it (bech32 in lowercase). */
export function assertBitcoinAddress(value: unknown, network: BitcoinNetwork, field: string): string {
  if (typeof value !== 'string' || value.length < 14 || value.length > 90) {
    throw new ValidationError('invalid_address', `"${field}" expected a Bitcoin ${network} address`);
  }
  // BIP-173: an all-uppercase bech32 string is valid and means the same address.
  const candidate = value === value.toUpperCase() ? value.toLowerCase() : value;
  try {
    Address(btcNetwork(network)).decode(candidate);
  } catch (error) {
    throw new ValidationError('invalid_address', `"${field}" is not a valid Bitcoin ${network} address (${error instanceof Error ? error.message : 'bad encoding'})`);
  }
  return candidate;
}
