/**
 * Checks that a device's ECDSA signature (r, s, recovery id) over a digest recovers to the pool's own
 * secp256k1 key: libsecp256k1 recovers the public key (about 55 µs), which must be the pool key.
 * Recovery ids 2 and 3 (R.x ≥ n) cannot be carried by an Ethereum transaction and are never tried.
 *
 * Each key's compressed form and address are remembered (the most recently used ones), so a hot pool's
 * key is neither parsed nor hashed again per withdrawal.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { compressedKey, recoversToKey, uncompressedKey } from '../../libsecp256k1.js';
import { ethAddressFromPublicKey } from './address.js';

/** Keys remembered (compressed form, address), the least recently used forgotten first. */
const KEYS_KEPT = 4096;

interface KnownKey {
  readonly compressed: Uint8Array;
  /** EIP-55 address of the key. */
  readonly address: string;
}

/** Map order is use order: the first entry is the least recently used. */
const known = new Map<string, KnownKey>();

function knownKey(publicKeyHex: string): KnownKey {
  let key = known.get(publicKeyHex);
  if (key) {
    known.delete(publicKeyHex);
  } else {
    const bytes = hexToBytes(publicKeyHex.replace(/^0x/, ''));
    key = { compressed: compressedKey(bytes), address: ethAddressFromPublicKey(uncompressedKey(bytes)) };
    if (known.size >= KEYS_KEPT) known.delete(known.keys().next().value as string);
  }
  known.set(publicKeyHex, key);
  return key;
}

/** EIP-55 address of a secp256k1 public key (SEC1 hex), remembered with the key. */
export function addressOfKey(publicKeyHex: string): string {
  return knownKey(publicKeyHex).address;
}

/**
 * True when `signature` (r || s, 64 bytes) with recovery id `recovery` is a signature of `digest`
 * (32 bytes, already hashed) that recovers to `publicKeyHex` (SEC1, compressed or not). Any r or s
 * outside [1, n) is false.
 */
export function recoversTo(digest: Uint8Array, signature: Uint8Array, recovery: 0 | 1, publicKeyHex: string): boolean {
  if (digest.length !== 32) throw new RangeError(`"digest" expected 32 bytes, got ${digest.length}`);
  return recoversToKey(digest, signature, recovery, knownKey(publicKeyHex).compressed);
}
