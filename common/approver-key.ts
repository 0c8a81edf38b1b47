/**
 * Approver keys and their signatures over approval and governance messages (SPEC section 5), shared by
 * the gateway and the HSM simulator, which both verify every approval:
 * - Ed25519 (RFC 8032): a 32-byte public key; a 64-byte signature over the message's UTF-8 bytes,
 *   verified by Node's crypto (OpenSSL: RFC 8032 verification, S < L enforced), some fifteen times
 *   faster than a JavaScript implementation. Keys are vetted when enrolled: a valid point that is not
 *   of small order, so no signature verifies for every message;
 * - a hardware wallet's secp256k1 key (a Ledger's Ethereum app): a 33-byte compressed public key; a
 *   65-byte `r || s || v` EIP-191 personal-message signature of the same UTF-8 bytes, as the app's
 *   SIGN PERSONAL MESSAGE returns it (micro-eth-signer's EIP-191 hashing, libsecp256k1's recovery).
 */
import { createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { eip191Signer } from 'micro-eth-signer';
import { recoversToKey } from './libsecp256k1.js';

const SECP256K1_HALF_N = secp256k1.Point.CURVE().n >> 1n;

export type ApproverKeyScheme = 'ed25519' | 'eip191';

/** Signature length in bytes for each scheme. */
export const APPROVER_SIGNATURE_BYTES: Readonly<Record<ApproverKeyScheme, number>> = { ed25519: 64, eip191: 65 };

/** The scheme of a public key by its length, or null for neither; says nothing of the key's validity. */
export function approverKeyScheme(publicKey: Uint8Array): ApproverKeyScheme | null {
  return publicKey.length === 32 ? 'ed25519' : publicKey.length === 33 ? 'eip191' : null;
}

/** Whether the bytes are a usable approver public key of either scheme (a point on its curve). */
export function isValidApproverKey(publicKey: Uint8Array): boolean {
  try {
    const scheme = approverKeyScheme(publicKey);
    if (scheme === 'ed25519') return !ed25519.Point.fromBytes(publicKey).isSmallOrder();
    if (scheme === 'eip191') secp256k1.Point.fromBytes(publicKey);
    else return false;
    return true;
  } catch {
    return false;
  }
}

/** SPKI DER prefix of an Ed25519 public key (RFC 8410), before the 32 key bytes. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');
const keyObjects = new Map<string, KeyObject>();
const MAX_CACHED_KEYS = 4096;

function ed25519KeyObject(publicKey: Uint8Array): KeyObject {
  const hex = bytesToHex(publicKey);
  let key = keyObjects.get(hex);
  if (key === undefined) {
    key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (keyObjects.size >= MAX_CACHED_KEYS) keyObjects.clear();
    keyObjects.set(hex, key);
  }
  return key;
}

/** True only for a valid signature of `message` by `publicKey`; never throws on malformed input. */
export function verifyApproverSignature(publicKey: Uint8Array, message: string, signature: Uint8Array): boolean {
  try {
    const scheme = approverKeyScheme(publicKey);
    if (scheme === null || signature.length !== APPROVER_SIGNATURE_BYTES[scheme]) return false;
    if (scheme === 'ed25519') return cryptoVerify(null, Buffer.from(message, 'utf8'), ed25519KeyObject(publicKey), signature);
    // Low S only, so that one approval has one encoding (EIP-2).
    const s = BigInt('0x' + bytesToHex(signature.subarray(32, 64)));
    if (s > SECP256K1_HALF_N) return false;
    // v is 27 or 28 (recovery id + 27), as the Ethereum app returns it; the key it recovers must be the approver's.
    const v = signature[64];
    if (v !== 27 && v !== 28) return false;
    const hash = hexToBytes(eip191Signer.getHash(message).slice(2));
    return recoversToKey(hash, signature.subarray(0, 64), v === 27 ? 0 : 1, publicKey);
  } catch {
    return false;
  }
}
