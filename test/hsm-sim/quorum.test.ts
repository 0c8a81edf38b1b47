/**
 * The simulator checks the quorum itself (SPEC rule 2): through the gateway's client against the real
 * process, every refusal of a direct call, and signatures verified by libraries we did not write.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Signature, SigningKey } from 'ethers';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { GeneratedKey, SignRequest } from '../../src/devices/signing-device.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { APPROVERS, SEPOLIA, evidence, messageFor } from './fixtures.js';

let sim: SimProcess;
let device: ReturnType<typeof createSimDevice>;
let keyA: GeneratedKey;
let keyB: GeneratedKey;
const N = secp256k1.Point.CURVE().n;

beforeAll(async () => {
  sim = await startSim();
  device = createSimDevice({ url: sim.url, pin: sim.pin });
  await device.enrollPool('pool-a', APPROVERS, 2);
  await device.enrollPool('pool-b', APPROVERS.slice(1), 2);
  keyA = await device.generateKey('pool-a', SEPOLIA, 'secp256k1');
  keyB = await device.generateKey('pool-b', SEPOLIA, 'secp256k1');
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

function request(digest: Uint8Array, approvals: SignRequest['approvals'], over: Partial<SignRequest> = {}): SignRequest {
  return { handle: keyA.handle, poolId: 'pool-a', scheme: 'ecdsa-secp256k1', payload: digest, digest, approvals, transaction: { chain: SEPOLIA, unsignedTx: '0x' }, ...over };
}

describe('signing with a quorum', () => {
  it('when two enrolled approvers approve the exact digest, then the signature is low-S and recovers to the key (checked by ethers)', async () => {
    const digest = randomBytes(32);
    const m = messageFor(digest);
    const sig = await device.sign(request(digest, [evidence('alice', m), evidence('carol', m)]));
    expect(sig.scheme).toBe('ecdsa-secp256k1');
    const r = '0x' + bytesToHex(sig.signature.slice(0, 32));
    const s = '0x' + bytesToHex(sig.signature.slice(32));
    expect(BigInt(s) <= N / 2n).toBe(true);
    const recovered = SigningKey.recoverPublicKey('0x' + bytesToHex(digest), Signature.from({ r, s, yParity: sig.recovery as 0 | 1 }));
    expect(SigningKey.computePublicKey(recovered, true).slice(2)).toBe(keyA.publicKey);
    const again = await device.sign(request(digest, [evidence('bob', m), evidence('alice', m)]));
    expect(bytesToHex(again.signature)).toBe(bytesToHex(sig.signature));
  });

  it('when an Ed25519 key signs a payload, then the digest must be its sha256 and the signature verifies', async () => {
    const chain = 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp';
    const key = await device.generateKey('pool-a', chain, 'ed25519');
    const payload = randomBytes(120);
    const digest = sha256(payload);
    const m = messageFor(digest, { chain });
    const approvals = [evidence('alice', m), evidence('bob', m)];
    const sig = await device.sign({ handle: key.handle, poolId: 'pool-a', scheme: 'ed25519', payload, digest, approvals, transaction: { chain, unsignedTx: '' } });
    expect(ed25519.verify(sig.signature, payload, hexToBytes(key.publicKey))).toBe(true);
    await expect(device.sign({ handle: key.handle, poolId: 'pool-a', scheme: 'ed25519', payload, digest: randomBytes(32), approvals, transaction: { chain, unsignedTx: '' } })).rejects.toMatchObject({ code: 'device_bad_request' });
  });
});

describe('refusals', () => {
  const digest = randomBytes(32);
  const m = messageFor(digest);
  const cases: [string, () => SignRequest, RegExp][] = [
    ['one approval only', () => request(digest, [evidence('alice', m)]), /1 valid approvals, pool pool-a needs at least 2/],
    ['the same approver twice', () => request(digest, [evidence('alice', m), evidence('alice', m)]), /counted already/],
    ['a forged signature', () => request(digest, [evidence('alice', m), evidence('bob', m, 'alice')]), /approval 2: the signature does not verify with bob's key/],
    ['an approval over another digest', () => request(digest, [evidence('alice', m), evidence('bob', messageFor(randomBytes(32), { requestId: m.requestId }))]), /approval 2: digest does not match/],
    ['an approval naming another pool', () => request(digest, [evidence('alice', m), evidence('bob', { ...m, pool: 'pool-b' })]), /approval 2: names pool pool-b/],
    ['an approval naming another chain', () => request(digest, [evidence('alice', m), evidence('bob', { ...m, chain: 'eip155:1' })]), /names chain eip155:1/],
    ['a key that is not enrolled', () => request(digest, [evidence('alice', m), { ...evidence('bob', m), publicKey: bytesToHex(ed25519.getPublicKey(randomBytes(32))) }]), /not an enrolled approver/],
    ['decision reject', () => request(digest, [evidence('alice', m), evidence('bob', { ...m, decision: 'reject' })]), /decision is "reject"/],
    ['a non-canonical message', () => request(digest, [evidence('alice', m), { ...evidence('bob', m), message: JSON.stringify(m, null, 1) }]), /canonical/],
    ['approvals of two different requests', () => request(digest, [evidence('alice', m), evidence('bob', { ...m, requestId: '00000000-0000-4000-8000-000000000000' })]), /names another request/],
    ['pool B claiming pool A\'s key', () => request(digest, [evidence('bob', { ...m, pool: 'pool-b' }), evidence('carol', { ...m, pool: 'pool-b' })], { poolId: 'pool-b' }), /belongs to pool pool-a, not pool-b/],
    ['no approvals', () => request(digest, []), /0 valid approvals/],
  ];
  for (const [name, make, message] of cases) {
    it(`when a direct call carries ${name}, then the device refuses and signs nothing`, async () => {
      const error = await device.sign(make()).then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code: 'device_quorum_refused', kind: 'forbidden' });
      expect((error as Error).message).toMatch(message);
    });
  }

  it('when pool B\'s key is used with pool B\'s approvals over pool A\'s messages, then it is refused', async () => {
    const error = await device.sign({ ...request(digest, [evidence('bob', m), evidence('carol', m)]), handle: keyB.handle, poolId: 'pool-b' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'device_quorum_refused' });
  });

  it('when the scheme does not match the key or the payload is not the digest, then the request is refused', async () => {
    const approvals = [evidence('alice', m), evidence('bob', m)];
    await expect(device.sign(request(digest, approvals, { scheme: 'ed25519' }))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(device.sign(request(digest, approvals, { payload: randomBytes(32) }))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(device.sign(request(digest, approvals, { handle: 'k_nope' }))).rejects.toMatchObject({ code: 'device_key_not_found' });
  });
});
