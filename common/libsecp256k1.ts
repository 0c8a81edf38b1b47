/**
 * ECDSA over secp256k1 by libsecp256k1 (the library Bitcoin Core maintains, constant-time), through
 * the `secp256k1` package's native binding: about 40 µs a signature and 55 µs a recovery here, against
 * 400 µs and 1,200 µs in JavaScript (bench/lifecycle.ts measures both). The gateway checks every
 * device signature with it (Ethereum, Bitcoin inputs, a PKCS#11 token's signatures) and the simulator
 * signs with it.
 *
 * The package falls back to a JavaScript implementation (elliptic) when its binding cannot load; this
 * module loads the binding itself, so a machine without it fails at start with a clear error instead
 * of silently running other code.
 */
import { createRequire } from 'node:module';
import type * as Secp256k1 from 'secp256k1';

type Binding = Pick<typeof Secp256k1, 'ecdsaSign' | 'ecdsaRecover' | 'ecdsaVerify' | 'publicKeyConvert'>;

function load(): Binding {
  const require = createRequire(import.meta.url);
  try {
    return require('secp256k1/bindings.js') as Binding;
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    throw new Error(
      `libsecp256k1's native binding (npm package secp256k1) did not load: ${why}. ` +
        'Reinstall with install scripts enabled (npm ci), or build it with python3, make and g++ present.',
    );
  }
}

const lib = load();

/** A recoverable ECDSA signature: r || s (64 bytes, s in the lower half of the order) and the recovery id. */
export interface RecoverableSignature {
  readonly signature: Uint8Array;
  readonly recovery: 0 | 1;
}

/**
 * Signs a 32-byte hash (already hashed: no hashing here) with RFC 6979 deterministic nonces; s is
 * normalized to the lower half. Recovery ids 2 and 3 (R.x ≥ n) happen with probability ~2⁻¹²⁸ and are
 * refused, since no Ethereum transaction can carry them.
 */
export function signRecoverable(hash: Uint8Array, secretKey: Uint8Array): RecoverableSignature {
  if (hash.length !== 32) throw new RangeError(`"hash" expected 32 bytes, got ${hash.length}`);
  if (secretKey.length !== 32) throw new RangeError(`"secretKey" expected 32 bytes, got ${secretKey.length}`);
  let signed: { signature: Uint8Array; recid: number };
  try {
    signed = lib.ecdsaSign(hash, secretKey);
  } catch {
    throw new RangeError('"secretKey" is not a secp256k1 secret key (it is 0 or not below the group order)');
  }
  const { signature, recid } = signed;
  if (recid !== 0 && recid !== 1) throw new RangeError(`recovery id ${recid}: R.x is not below the group order`);
  return { signature, recovery: recid };
}

/** The compressed (33-byte) form of a SEC1 public key, compressed or not; throws on a point not on the curve. */
export function compressedKey(publicKey: Uint8Array): Uint8Array {
  return lib.publicKeyConvert(publicKey, true);
}

/** The uncompressed (65-byte) form of a SEC1 public key, compressed or not; throws on a point not on the curve. */
export function uncompressedKey(publicKey: Uint8Array): Uint8Array {
  return lib.publicKeyConvert(publicKey, false);
}

/**
 * True when `signature` (r || s, 64 bytes) with recovery id `recovery` over the 32-byte `hash`
 * recovers to `compressed` (a 33-byte SEC1 key). r or s of 0 or not below the group order, or a
 * signature that recovers to no point, is false. High s is accepted here: callers that must refuse it
 * (Ethereum, EIP-2) check it themselves.
 */
export function recoversToKey(hash: Uint8Array, signature: Uint8Array, recovery: 0 | 1, compressed: Uint8Array): boolean {
  if (hash.length !== 32) throw new RangeError(`"hash" expected 32 bytes, got ${hash.length}`);
  if (signature.length !== 64) throw new RangeError(`"signature" expected 64 bytes, got ${signature.length}`);
  if (compressed.length !== 33) throw new RangeError(`"compressed" expected 33 bytes, got ${compressed.length}`);
  let recovered: Uint8Array;
  try {
    recovered = lib.ecdsaRecover(signature, recovery, hash, true);
  } catch {
    return false;
  }
  for (let i = 0; i < 33; i++) if (recovered[i] !== compressed[i]) return false;
  return true;
}

/**
 * True when `signature` (r || s, 64 bytes, s in the lower half: a high s is false, as Bitcoin's
 * standardness and Ethereum's EIP-2 require) is a signature of the 32-byte `hash` by `publicKey` (SEC1,
 * compressed or not). r or s of 0 or not below the group order is false.
 */
export function verifyLowS(hash: Uint8Array, signature: Uint8Array, publicKey: Uint8Array): boolean {
  if (hash.length !== 32) throw new RangeError(`"hash" expected 32 bytes, got ${hash.length}`);
  if (signature.length !== 64) throw new RangeError(`"signature" expected 64 bytes, got ${signature.length}`);
  try {
    return lib.ecdsaVerify(signature, hash, publicKey);
  } catch {
    return false;
  }
}
