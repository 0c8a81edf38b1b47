/**
 * Bitcoin and Solana addresses against published vectors (BIP-173).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { assertBitcoinAddress, poolOutput } from '../../common/chains/bitcoin/address.js';
import { assertSolanaAddress, solanaAddressFromPublicKey } from '../../common/chains/solana/address.js';
import { addressForKey, assertDestination } from '../../src/chains/addresses.js';
import { parseChainId, type BitcoinNetwork } from '../../common/chain-id.js';

const v = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'bip173-addresses.json'), 'utf8')) as {
  p2wpkh: { publicKey: string; network: BitcoinNetwork; address: string }[];
  valid: { network: BitcoinNetwork; address: string }[];
  invalid: { network: BitcoinNetwork; address: string; why: string }[];
};

describe('BIP-173 addresses', () => {
  for (const t of v.p2wpkh) {
    it(`when the BIP-173 example key is encoded for ${t.network}, then the P2WPKH address is ${t.address}`, () => {
      expect(poolOutput(hexToBytes(t.publicKey), 'p2wpkh', t.network).address).toBe(t.address);
    });
  }
  for (const t of v.valid) {
    it(`when ${t.address} is checked on ${t.network}, then it is accepted in lowercase`, () => {
      expect(assertBitcoinAddress(t.address, t.network, 'to')).toBe(t.address.toLowerCase());
    });
  }
  for (const t of v.invalid) {
    it(`when ${t.address} is checked on ${t.network} (${t.why}), then it is refused`, () => {
      expect(() => assertBitcoinAddress(t.address, t.network, 'to')).toThrow(/"to" is not a valid Bitcoin|expected a Bitcoin/);
    });
  }

  it('when a pool key is on the example plan\'s testnet chain, then its address is testnet P2WPKH', () => {
    const chain = parseChainId('bip122:000000000933ea01ad0ee984209779ba');
    expect(addressForKey(chain, v.p2wpkh[0]!.publicKey)).toBe('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx');
    expect(assertDestination(chain, 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', 'to')).toBe('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx');
  });
});

describe('Solana addresses', () => {
  it('when an Ed25519 public key is encoded, then base58 of the 32 bytes round-trips', () => {
    const pub = ed25519.getPublicKey(hexToBytes('4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb'));
    const address = solanaAddressFromPublicKey(pub);
    expect(address).toBe('586Z7H2vpX9qNhN2T4e9Utugie3ogjbxzGaMtM3E6HR5');
    expect(assertSolanaAddress(address, 'to')).toBe(address);
    expect(() => assertSolanaAddress('0OIl', 'to')).toThrow(/Solana/);
  });
});
