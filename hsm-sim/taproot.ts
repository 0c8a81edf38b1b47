/**
 * Taproot key-path signing inside the simulator (BIP-341, BIP-340). With P = d·G made to have an even
 * y (d negated otherwise), the output key is Q = P + t·G where t = hashTapTweak(x(P) || merkle root),
 * the merkle root being empty for a key with no script tree (as BIP-86 pool addresses are); the key
 * that signs is d + t mod n.
 */
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { concatBytes } from '@noble/hashes/utils.js';

/** BIP-340 lets aux_rand be constant; zeros make a re-sign of the same hash give the same signature. */
const AUX_RAND = new Uint8Array(32);

/** The tweaked secret key (32 bytes); the caller zeroes it. */
export function taprootTweakedSecret(secret: Uint8Array, merkleRoot: Uint8Array = new Uint8Array(0)): Uint8Array {
  const Fn = secp256k1.Point.Fn;
  const d0 = Fn.fromBytes(secret);
  const P = secp256k1.Point.BASE.multiply(d0);
  const d = P.y % 2n === 0n ? d0 : Fn.neg(d0);
  const tweak = schnorr.utils.taggedHash('TapTweak', concatBytes(schnorr.utils.pointToBytes(P), merkleRoot));
  // fromBytes refuses t >= n, which BIP-341 says makes the key unusable.
  const tweaked = Fn.add(d, Fn.fromBytes(tweak));
  if (Fn.is0(tweaked)) throw new Error('the taproot tweak gives the zero key');
  return Fn.toBytes(tweaked);
}

/** BIP-340 signature of a 32-byte sighash by the key-path (tweaked) key of `secret`. */
export function signTaprootKeyPath(sighash: Uint8Array, secret: Uint8Array): Uint8Array {
  const tweaked = taprootTweakedSecret(secret);
  try {
    return schnorr.sign(sighash, tweaked, AUX_RAND);
  } finally {
    tweaked.fill(0);
  }
}
