/**
 * The device-signature checks of the release path and the simulator's signing (libsecp256k1), against
 * noble's RFC 6979 signing and public-key recovery (code we did not write) and ethers' sender recovery
 * of a published vector (EIP-155).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SigningKey, Signature as EthersSignature } from 'ethers';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { addressOfKey, recoversTo } from '../../common/chains/ethereum/signer-check.js';
import { signRecoverable, verifyLowS } from '../../common/libsecp256k1.js';

const N = secp256k1.Point.CURVE().n;
const eip155 = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'eip155-example.json'), 'utf8')) as {
  privateKey: string;
  signingHash: string;
  signedTx: string;
};

const be32 = (n: bigint) => hexToBytes(n.toString(16).padStart(64, '0'));
const rs = (r: bigint, s: bigint) => Uint8Array.from([...be32(r), ...be32(s)]);

/** noble's RFC 6979, low-S signature as r, s and recovery id. */
function nobleSigned(secret: Uint8Array, digest: Uint8Array): { r: bigint; s: bigint; recovery: 0 | 1 } {
  const sig = secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' });
  return {
    recovery: sig[0] as 0 | 1,
    r: BigInt('0x' + bytesToHex(sig.slice(1, 33))),
    s: BigInt('0x' + bytesToHex(sig.slice(33))),
  };
}

/** What recovery by noble says: the key recovered from (r, s, v) is `publicKey`. */
function nobleRecovers(digest: Uint8Array, r: bigint, s: bigint, recovery: 0 | 1, publicKey: string): boolean {
  try {
    const sig = new secp256k1.Signature(r, s, recovery);
    return sig.recoverPublicKey(digest).toHex(true) === secp256k1.Point.fromHex(publicKey).toHex(true);
  } catch {
    return false;
  }
}

describe('recoversTo: does a signature recover to the pool key', () => {
  it('when the EIP-155 vector is signed with its key, then the check holds for its recovery id only, as ethers recovers it', () => {
    const secret = hexToBytes(eip155.privateKey);
    const digest = hexToBytes(eip155.signingHash.slice(2));
    const { r, s, recovery } = nobleSigned(secret, digest);
    const publicKey = bytesToHex(secp256k1.getPublicKey(secret, false));
    const ethersKey = SigningKey.recoverPublicKey(digest, EthersSignature.from({ r: '0x' + r.toString(16).padStart(64, '0'), s: '0x' + s.toString(16).padStart(64, '0'), yParity: recovery }));
    expect(ethersKey.slice(2)).toBe(publicKey);
    expect(recoversTo(digest, rs(r, s), recovery, publicKey)).toBe(true);
    expect(recoversTo(digest, rs(r, s), (1 - recovery) as 0 | 1, publicKey)).toBe(false);
    expect(addressOfKey(publicKey)).toBe('0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
    expect(addressOfKey(bytesToHex(secp256k1.getPublicKey(secret, true)))).toBe('0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
  });

  it('when r or s is 0 or not below the order, then it is false, not an exception; a wrong length is a clear error', () => {
    const secret = new Uint8Array(32).fill(5);
    const digest = new Uint8Array(32).fill(1);
    const { r, s, recovery } = nobleSigned(secret, digest);
    const publicKey = bytesToHex(secp256k1.getPublicKey(secret, true));
    const max = 2n ** 256n - 1n;
    for (const [rr, ss] of [[0n, s], [r, 0n], [N, s], [r, N], [max, s], [r, max]] as const) {
      expect(recoversTo(digest, rs(rr, ss), recovery, publicKey)).toBe(false);
    }
    expect(() => recoversTo(digest.slice(1), rs(r, s), recovery, publicKey)).toThrow(/"digest" expected 32 bytes/);
    expect(() => recoversTo(digest, rs(r, s).slice(1), recovery, publicKey)).toThrow(/"signature" expected 64 bytes/);
    expect(() => addressOfKey('02' + '00'.repeat(32))).toThrow();
  });

  it('when s is the high twin of a valid signature, then it recovers with the other recovery id (the EIP-2 low-S rule is the caller\'s)', () => {
    const secret = new Uint8Array(32).fill(9);
    const digest = new Uint8Array(32).fill(2);
    const { r, s, recovery } = nobleSigned(secret, digest);
    const publicKey = bytesToHex(secp256k1.getPublicKey(secret, true));
    expect(recoversTo(digest, rs(r, N - s), (1 - recovery) as 0 | 1, publicKey)).toBe(true);
    expect(recoversTo(digest, rs(r, N - s), recovery, publicKey)).toBe(false);
  });

  it('when signatures, digests, keys and recovery ids vary, then it agrees with noble recovery every time (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1, max: 200 }),
        fc.constantFrom('none', 'flip', 'other-key', 'other-digest', 'tweak-r', 'tweak-s'),
        fc.boolean(),
        (digest, otherDigest, keySeed, change, compressed) => {
          const secret = new Uint8Array(32).fill(keySeed);
          const publicKey = bytesToHex(secp256k1.getPublicKey(secret, compressed));
          let { r, s, recovery } = nobleSigned(secret, digest);
          let key = publicKey;
          let d = digest;
          if (change === 'flip') recovery = (1 - recovery) as 0 | 1;
          if (change === 'other-key') key = bytesToHex(secp256k1.getPublicKey(new Uint8Array(32).fill(keySeed === 200 ? 1 : keySeed + 1), compressed));
          if (change === 'other-digest') d = otherDigest;
          if (change === 'tweak-r') r = (r % (N - 1n)) + 1n;
          if (change === 'tweak-s') s = (s % (N - 1n)) + 1n;
          expect(recoversTo(d, rs(r, s), recovery, key)).toBe(nobleRecovers(d, r, s, recovery, key));
          if (change === 'none') expect(recoversTo(d, rs(r, s), recovery, key)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('signRecoverable: the simulator\'s ECDSA signing', () => {
  it('when any key signs any digest, then the signature and recovery id are noble\'s RFC 6979 low-S ones (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 32, maxLength: 32 }), fc.integer({ min: 1, max: 254 }), (digest, seed) => {
        const secret = new Uint8Array(32).fill(seed);
        const ours = signRecoverable(digest, secret);
        const theirs = secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' });
        expect(ours.recovery).toBe(theirs[0]);
        expect(bytesToHex(ours.signature)).toBe(bytesToHex(theirs.slice(1)));
      }),
      { numRuns: 200 },
    );
  });

  it('when the EIP-155 vector is signed, then ethers recovers the vector\'s key', () => {
    const digest = hexToBytes(eip155.signingHash.slice(2));
    const { signature, recovery } = signRecoverable(digest, hexToBytes(eip155.privateKey));
    const recovered = SigningKey.recoverPublicKey(digest, EthersSignature.from({ r: '0x' + bytesToHex(signature.slice(0, 32)), s: '0x' + bytesToHex(signature.slice(32)), yParity: recovery }));
    expect(recovered.slice(2)).toBe(bytesToHex(secp256k1.getPublicKey(hexToBytes(eip155.privateKey), false)));
  });

  it('when the hash or the key has the wrong length, or the key is 0 or not below the order, then it is a clear error', () => {
    expect(() => signRecoverable(new Uint8Array(31), new Uint8Array(32).fill(1))).toThrow(/"hash" expected 32 bytes/);
    expect(() => signRecoverable(new Uint8Array(32), new Uint8Array(31).fill(1))).toThrow(/"secretKey" expected 32 bytes/);
    expect(() => signRecoverable(new Uint8Array(32), new Uint8Array(32))).toThrow(/not a secp256k1 secret key/);
    expect(() => signRecoverable(new Uint8Array(32), new Uint8Array(32).fill(0xff))).toThrow(/not a secp256k1 secret key/);
  });
});

describe('verifyLowS: the check of Bitcoin input signatures', () => {
  it('when signatures, digests and keys vary, then it agrees with noble\'s low-S verification every time, and refuses the high-S twin (property)', () => {
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.integer({ min: 1, max: 200 }),
        fc.constantFrom('none', 'high-s', 'other-key', 'other-digest', 'tweak-r', 'tweak-s'),
        fc.boolean(),
        (digest, otherDigest, keySeed, change, compressed) => {
          const secret = new Uint8Array(32).fill(keySeed);
          let key = secp256k1.getPublicKey(secret, compressed);
          let { r, s } = nobleSigned(secret, digest);
          let d = digest;
          if (change === 'high-s') s = N - s;
          if (change === 'other-key') key = secp256k1.getPublicKey(new Uint8Array(32).fill(keySeed === 200 ? 1 : keySeed + 1), compressed);
          if (change === 'other-digest') d = otherDigest;
          if (change === 'tweak-r') r = (r % (N - 1n)) + 1n;
          if (change === 'tweak-s') s = (s % (N - 1n)) + 1n;
          const theirs = secp256k1.verify(rs(r, s), d, key, { prehash: false, lowS: true });
          expect(verifyLowS(d, rs(r, s), key)).toBe(theirs);
          if (change === 'none') expect(theirs).toBe(true);
          if (change === 'high-s') expect(verifyLowS(d, rs(r, s), key)).toBe(false);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('when r or s is 0 or not below the order, then it is false; a wrong length is a clear error', () => {
    const secret = new Uint8Array(32).fill(5);
    const digest = new Uint8Array(32).fill(1);
    const key = secp256k1.getPublicKey(secret, true);
    const { r, s } = nobleSigned(secret, digest);
    for (const [rr, ss] of [[0n, s], [r, 0n], [N, s], [r, N]] as const) expect(verifyLowS(digest, rs(rr, ss), key)).toBe(false);
    expect(() => verifyLowS(digest.slice(1), rs(r, s), key)).toThrow(/"hash" expected 32 bytes/);
    expect(() => verifyLowS(digest, rs(r, s).slice(1), key)).toThrow(/"signature" expected 64 bytes/);
  });
});
