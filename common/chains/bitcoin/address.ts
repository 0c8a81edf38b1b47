/**
 * Bitcoin addresses per network: pool addresses, P2WPKH (BIP-141 witness v0 key hash, bech32 per
 * BIP-173) or P2TR key-path only (BIP-341 output key tweaked with no script tree as BIP-86 does,
 * bech32m per BIP-350), and destination checks for P2PKH, P2SH, P2WPKH, P2WSH and P2TR, with
 * @scure/btc-signer's address codec.
 */
import { Address, NETWORK, OutScript, TEST_NETWORK, p2tr, p2wpkh } from '@scure/btc-signer';
import { ValidationError } from '../../errors.js';
import type { BitcoinNetwork } from '../../chain-id.js';

type Network = typeof NETWORK;

/** Regtest: testnet's base58 versions with its own bech32 prefix. */
const REGTEST_NETWORK: Network = { ...TEST_NETWORK, bech32: 'bcrt' };

export function btcNetwork(network: BitcoinNetwork): Network {
  return network === 'mainnet' ? NETWORK : network === 'testnet' ? TEST_NETWORK : REGTEST_NETWORK;
}

export type BitcoinAddressType = 'p2wpkh' | 'p2tr';
export const BITCOIN_ADDRESS_TYPES: readonly BitcoinAddressType[] = ['p2wpkh', 'p2tr'];

function compressedKey(publicKey: Uint8Array, type: BitcoinAddressType): Uint8Array {
  if (publicKey.length !== 33) throw new ValidationError('invalid_public_key', `${type.toUpperCase()} needs a 33-byte compressed public key, got ${publicKey.length} bytes`);
  return publicKey;
}

/** The pool's output script and address of this type, for its compressed secp256k1 public key. */
export function poolOutput(publicKey: Uint8Array, type: BitcoinAddressType, network: BitcoinNetwork): { type: BitcoinAddressType; script: Uint8Array; address: string } {
  const net = btcNetwork(network);
  // P2TR: the x-only internal key; @scure/btc-signer applies the BIP-341 tweak with an empty script tree.
  const payment = type === 'p2wpkh' ? p2wpkh(compressedKey(publicKey, type), net) : p2tr(compressedKey(publicKey, type).subarray(1), undefined, net);
  if (payment.address === undefined) throw new ValidationError('invalid_public_key', `no ${type.toUpperCase()} address for this public key`);
  return { type, script: payment.script, address: payment.address };
}

/** Which of the pool key's address types `address` is, or null when it is neither. */
export function poolAddressType(publicKey: Uint8Array, address: string, network: BitcoinNetwork): BitcoinAddressType | null {
  return BITCOIN_ADDRESS_TYPES.find((t) => poolOutput(publicKey, t, network).address === address) ?? null;
}

/** The output script paying `address` (already checked with assertBitcoinAddress). */
export function outputScript(address: string, network: BitcoinNetwork): Uint8Array {
  return OutScript.encode(Address(btcNetwork(network)).decode(address));
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
