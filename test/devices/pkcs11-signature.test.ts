/**
 * What the PKCS#11 device makes of a token's raw ECDSA signature (CKM_ECDSA gives r || s with no
 * recovery id and either s): low-S r || s and the recovery id, checked against noble's recovery (code
 * we did not write); a signature that does not verify under the key is refused.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { finishEcdsa } from '../../src/devices/pkcs11/pkcs11-device.js';

const N = secp256k1.Point.CURVE().n;

describe('finishEcdsa: a token signature made Ethereum-ready', () => {
  it('when the token returns either s, then the answer is the low-S signature with the recovery id noble recovers the key with (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 250 }), fc.boolean(), (hash, seed, high) => {
        const secret = new Uint8Array(32).fill(seed);
        const publicKey = secp256k1.getPublicKey(secret, true);
        const low = secp256k1.sign(hash, secret, { prehash: false, lowS: true, format: 'recovered' });
        const lowSig = secp256k1.Signature.fromBytes(low.slice(1), 'compact');
        const raw = high ? new secp256k1.Signature(lowSig.r, N - lowSig.s).toBytes('compact') : low.slice(1);
        const part = finishEcdsa(Buffer.from(raw), hash, publicKey, 'k1');
        expect(bytesToHex(part.signature)).toBe(bytesToHex(low.slice(1)));
        expect(part.recovery).toBe(low[0]);
        expect(lowSig.addRecoveryBit(part.recovery as number).recoverPublicKey(hash).toHex(true)).toBe(bytesToHex(publicKey));
      }),
      { numRuns: 200 },
    );
  });

  it('when the signature is by another key, over another hash, or of the wrong length, then it is refused and nothing is returned', () => {
    const hash = new Uint8Array(32).fill(7);
    const publicKey = secp256k1.getPublicKey(new Uint8Array(32).fill(1), true);
    const byOther = secp256k1.sign(hash, new Uint8Array(32).fill(2), { prehash: false, lowS: true });
    expect(() => finishEcdsa(Buffer.from(byOther), hash, publicKey, 'k1')).toThrow(expect.objectContaining({ code: 'pkcs11_bad_signature' }));
    const otherHash = secp256k1.sign(new Uint8Array(32).fill(8), new Uint8Array(32).fill(1), { prehash: false, lowS: true });
    expect(() => finishEcdsa(Buffer.from(otherHash), hash, publicKey, 'k1')).toThrow(/does not verify against the public key of k1/);
    expect(() => finishEcdsa(Buffer.alloc(63, 1), hash, publicKey, 'k1')).toThrow(/63-byte ECDSA signature/);
  });
});
