/**
 * The device-signature check of the release path, against noble's public-key recovery (code we did
 * not write) and ethers' sender recovery of a published vector (EIP-155).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { SigningKey, Signature as EthersSignature } from 'ethers';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { addressOfKey, keyTablesHeld, recoversTo } from '../../src/chains/ethereum/signer-check.js';

const N = secp256k1.Point.CURVE().n;
const eip155 = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'eip155-example.json'), 'utf8')) as {
  privateKey: string;
  signingHash: string;
  signedTx: string;
};

function signed(secret: Uint8Array, digest: Uint8Array): { r: bigint; s: bigint; recovery: 0 | 1 } {
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
    const { r, s, recovery } = signed(secret, digest);
    const publicKey = bytesToHex(secp256k1.getPublicKey(secret, false));
    const ethersKey = SigningKey.recoverPublicKey(digest, EthersSignature.from({ r: '0x' + r.toString(16).padStart(64, '0'), s: '0x' + s.toString(16).padStart(64, '0'), yParity: recovery }));
    expect(ethersKey.slice(2)).toBe(publicKey);
    expect(recoversTo(digest, r, s, recovery, publicKey)).toBe(true);
    expect(recoversTo(digest, r, s, (1 - recovery) as 0 | 1, publicKey)).toBe(false);
    expect(addressOfKey(publicKey)).toBe('0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
  });

  it('when r or s is 0 or not below the order, then it is false, not an exception', () => {
    const secret = new Uint8Array(32).fill(5);
    const digest = new Uint8Array(32).fill(1);
    const { r, s, recovery } = signed(secret, digest);
    const publicKey = bytesToHex(secp256k1.getPublicKey(secret, true));
    for (const [rr, ss] of [[0n, s], [r, 0n], [N, s], [r, N], [r + N, s], [r, s + N]] as const) {
      expect(recoversTo(digest, rr, ss, recovery, publicKey)).toBe(false);
    }
    expect(() => recoversTo(digest.slice(1), r, s, recovery, publicKey)).toThrow(/"digest" expected 32 bytes/);
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
          let { r, s, recovery } = signed(secret, digest);
          let key = publicKey;
          let d = digest;
          if (change === 'flip') recovery = (1 - recovery) as 0 | 1;
          if (change === 'other-key') key = bytesToHex(secp256k1.getPublicKey(new Uint8Array(32).fill(keySeed === 200 ? 1 : keySeed + 1), compressed));
          if (change === 'other-digest') d = otherDigest;
          if (change === 'tweak-r') r = (r % (N - 1n)) + 1n;
          if (change === 'tweak-s') s = (s % (N - 1n)) + 1n;
          expect(recoversTo(d, r, s, recovery, key)).toBe(nobleRecovers(d, r, s, recovery, key));
          if (change === 'none') expect(recoversTo(d, r, s, recovery, key)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });

  it('when keys are in steady use, then they get tables (at most 64, least recently used dropped) and every answer still agrees with noble', () => {
    const digest = new Uint8Array(32).fill(3);
    const keys = Array.from({ length: 66 }, (_, i) => {
      const secret = new Uint8Array(32).fill(0).map((_, j) => (j === 31 ? i + 1 : j === 0 ? 0x70 : 0));
      return { publicKey: bytesToHex(secp256k1.getPublicKey(secret, true)), ...signed(secret, digest) };
    });
    const before = keyTablesHeld();
    for (const [i, k] of keys.entries()) {
      for (let use = 0; use < 33; use++) {
        // Every 8th use a wrong recovery id: the table path must refuse it as noble does.
        const flipped = use % 8 === 7;
        const recovery = flipped ? ((1 - k.recovery) as 0 | 1) : k.recovery;
        const got = recoversTo(digest, k.r, k.s, recovery, k.publicKey);
        expect(got).toBe(!flipped);
        if (use === 7 || use === 32) expect(got).toBe(nobleRecovers(digest, k.r, k.s, recovery, k.publicKey));
      }
      if (i === 0) expect(keyTablesHeld()).toBeGreaterThan(before);
    }
    expect(keyTablesHeld()).toBe(64);
    // The first keys lost their tables to the last ones; checked again, they still answer rightly.
    for (const k of keys.slice(0, 3)) expect(recoversTo(digest, k.r, k.s, k.recovery, k.publicKey)).toBe(true);
    expect(keyTablesHeld()).toBe(64);
  });
});
