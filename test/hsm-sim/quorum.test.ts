/**
 * The simulator checks the quorum itself (SPEC rule 2, section 5): through the gateway's client against
 * the real process, every refusal of a direct call, and signatures of real transactions (EIP-1559,
 * BIP-143 PSBT, Solana) verified by libraries we did not write. The device decodes the transaction
 * itself: an approval must name exactly it and state what it does.
 */
import { openPolicy } from '../helpers/open-policy.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Signature, SigningKey, Transaction, computeAddress } from 'ethers';
import * as bitcoin from 'bitcoinjs-lib';
import * as web3 from '@solana/web3.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { GeneratedKey, SignRequest } from '../../src/devices/signing-device.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { APPROVERS, BITCOIN_REGTEST, SEPOLIA, SOLANA_MAINNET, bitcoinTx, ethereumTx, evidence, messageFor, solanaTx, type TestTransaction } from './fixtures.js';

let sim: SimProcess;
let device: ReturnType<typeof createSimDevice>;
let keyA: GeneratedKey;
let keyB: GeneratedKey;
const N = secp256k1.Point.CURVE().n;

beforeAll(async () => {
  sim = await startSim();
  device = createSimDevice({ url: sim.url, pin: sim.pin });
  await device.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
  await device.enrollPool('pool-b', APPROVERS.slice(1), 2, openPolicy(2));
  keyA = await device.generateKey('pool-a', SEPOLIA, 'secp256k1');
  keyB = await device.generateKey('pool-b', SEPOLIA, 'secp256k1');
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

function request(tx: TestTransaction, approvals: SignRequest['approvals'], over: Partial<SignRequest> = {}): SignRequest {
  return { handle: keyA.handle, poolId: 'pool-a', scheme: 'ecdsa-secp256k1', payload: tx.digest, digest: tx.digest, approvals, transaction: { chain: tx.chain, unsignedTx: tx.unsignedTx }, ...over };
}

describe('signing with a quorum', () => {
  it('when two enrolled approvers approve the exact transaction, then the signature is low-S and ethers recovers the pool address from the signed transaction', async () => {
    const tx = ethereumTx({ nonce: 1n });
    const m = messageFor(tx);
    const sig = await device.sign(request(tx, [evidence('alice', m), evidence('carol', m)]));
    expect(sig.scheme).toBe('ecdsa-secp256k1');
    const r = '0x' + bytesToHex(sig.signature.slice(0, 32));
    const s = '0x' + bytesToHex(sig.signature.slice(32));
    expect(BigInt(s) <= N / 2n).toBe(true);
    const signed = Transaction.from(tx.unsignedTx);
    signed.signature = Signature.from({ r, s, yParity: sig.recovery as 0 | 1 });
    expect(signed.from).toBe(computeAddress('0x' + keyA.publicKey));
    expect(SigningKey.computePublicKey(SigningKey.recoverPublicKey(signed.unsignedHash, signed.signature), true).slice(2)).toBe(keyA.publicKey);
    const again = await device.sign(request(tx, [evidence('bob', m), evidence('alice', m)]));
    expect(bytesToHex(again.signature)).toBe(bytesToHex(sig.signature));
  });

  it('when an Ed25519 key signs a Solana transfer, then web3.js verifies the signature over the message, and a digest other than its sha256 is a transaction mismatch', async () => {
    const key = await device.generateKey('pool-a', SOLANA_MAINNET, 'ed25519');
    const tx = solanaTx(key.publicKey);
    const m = messageFor(tx);
    const sig = await device.sign({ ...request(tx, [evidence('alice', m), evidence('bob', m)]), handle: key.handle, scheme: 'ed25519' });
    const signed = web3.Transaction.from(Buffer.from(tx.unsignedTx, 'base64'));
    signed.addSignature(new web3.PublicKey(hexToBytes(key.publicKey)), Buffer.from(sig.signature));
    expect(signed.verifySignatures()).toBe(true);
    expect(ed25519.verify(sig.signature, signed.serializeMessage(), hexToBytes(key.publicKey))).toBe(true);
    const lying = messageFor(tx, { digest: 'ab'.repeat(32) });
    await expect(device.sign({ ...request(tx, [evidence('alice', lying), evidence('bob', lying)]), handle: key.handle, scheme: 'ed25519' })).rejects.toMatchObject({ code: 'device_transaction_mismatch' });
  });

  it('when a two-input PSBT is approved, then the device computes both BIP-143 sighashes itself and bitcoinjs verifies each signature', async () => {
    const key = await device.generateKey('pool-a', BITCOIN_REGTEST, 'secp256k1');
    const tx = bitcoinTx(key.publicKey);
    const m = messageFor(tx);
    const sig = await device.sign({ ...request(tx, [evidence('alice', m), evidence('bob', m)]), handle: key.handle });
    expect(sig.parts.length).toBe(2);
    const pub = hexToBytes(key.publicKey);
    const psbt = bitcoin.Psbt.fromBase64(tx.unsignedTx, { network: bitcoin.networks.regtest });
    const unsigned = bitcoin.Transaction.fromBuffer((psbt.data.globalMap.unsignedTx as unknown as { toBuffer(): Uint8Array }).toBuffer());
    const scriptCode = bitcoin.payments.p2pkh({ pubkey: pub }).output as Uint8Array;
    psbt.data.inputs.forEach((input, i) => {
      const sighash = unsigned.hashForWitnessV0(i, scriptCode, input.witnessUtxo!.value, bitcoin.Transaction.SIGHASH_ALL);
      expect(secp256k1.verify(sig.parts[i]!.signature, sighash, pub, { prehash: false })).toBe(true);
    });
  });
});

describe('refusals', () => {
  const tx = ethereumTx({ nonce: 7n });
  const m = messageFor(tx);
  const quorum = 'device_quorum_refused';
  const mismatch = 'device_transaction_mismatch';
  const cases: [string, () => SignRequest, string, RegExp][] = [
    ['one approval only', () => request(tx, [evidence('alice', m)]), quorum, /1 valid approvals, pool pool-a needs at least 2/],
    ['the same approver twice', () => request(tx, [evidence('alice', m), evidence('alice', m)]), quorum, /counted already/],
    ['a forged signature', () => request(tx, [evidence('alice', m), evidence('bob', m, 'alice')]), quorum, /approval 2: the signature does not verify with bob's key/],
    ['an approval of another transaction', () => request(tx, [evidence('alice', m), evidence('bob', messageFor(ethereumTx({ nonce: 8n }), { requestId: m.requestId }))]), mismatch, /approval 2: approves another transaction than the one to sign/],
    ['an approval whose digest is not the transaction\'s', () => request(tx, [evidence('alice', m), evidence('bob', { ...m, digest: 'cd'.repeat(32) })]), mismatch, /approval 2: the message does not describe its transaction: "digest"/],
    ['an approval naming another pool', () => request(tx, [evidence('alice', m), evidence('bob', { ...m, pool: 'pool-b' })]), quorum, /approval 2: names pool pool-b/],
    ['an approval naming another chain', () => request(tx, [evidence('alice', m), evidence('bob', { ...m, chain: 'eip155:1' })]), quorum, /names chain eip155:1/],
    ['a key that is not enrolled', () => request(tx, [evidence('alice', m), { ...evidence('bob', m), publicKey: bytesToHex(ed25519.getPublicKey(ed25519.utils.randomSecretKey())) }]), quorum, /not an enrolled approver/],
    ['decision reject', () => request(tx, [evidence('alice', m), evidence('bob', { ...m, decision: 'reject' })]), quorum, /decision is "reject"/],
    ['a non-canonical message', () => request(tx, [evidence('alice', m), { ...evidence('bob', m), message: JSON.stringify(m, null, 1) }]), quorum, /canonical/],
    ['approvals of two different requests', () => request(tx, [evidence('alice', m), evidence('bob', { ...m, requestId: '00000000-0000-4000-8000-000000000000' })]), quorum, /names another request/],
    ['pool B claiming pool A\'s key', () => request(tx, [evidence('bob', { ...m, pool: 'pool-b' }), evidence('carol', { ...m, pool: 'pool-b' })], { poolId: 'pool-b' }), quorum, /belongs to pool pool-a, not pool-b/],
    ['no approvals', () => request(tx, []), quorum, /0 valid approvals/],
  ];
  for (const [name, make, code, message] of cases) {
    it(`when a direct call carries ${name}, then the device refuses and signs nothing`, async () => {
      const error = await device.sign(make()).then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code, kind: 'forbidden' });
      expect((error as Error).message).toMatch(message);
    });
  }

  it('when pool B\'s key is used with pool B\'s approvals over pool A\'s messages, then it is refused', async () => {
    const error = await device.sign({ ...request(tx, [evidence('bob', m), evidence('carol', m)]), handle: keyB.handle, poolId: 'pool-b' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'device_quorum_refused' });
  });

  it('when the transaction is not one the key\'s chain decodes, the handle is unknown, or the device signs another scheme than the gateway expects, then the request is refused', async () => {
    const solanaKey = (await device.listKeys()).find((k) => k.chain === SOLANA_MAINNET) ?? (await device.generateKey('pool-a', SOLANA_MAINNET, 'ed25519'));
    const approvals = [evidence('alice', m), evidence('bob', m)];
    await expect(device.sign(request(tx, approvals, { handle: solanaKey.handle, scheme: 'ed25519' }))).rejects.toMatchObject({ code: 'device_bad_request' });
    const garbage: TestTransaction = { ...tx, unsignedTx: '0x' };
    const g = messageFor(garbage);
    await expect(device.sign(request(garbage, [evidence('alice', g), evidence('bob', g)]))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(device.sign(request(tx, approvals, { handle: 'k_nope' }))).rejects.toMatchObject({ code: 'device_key_not_found' });
    // The device chooses the scheme from the key and the transaction; the client refuses an answer it did not expect.
    await expect(device.sign(request(tx, approvals, { scheme: 'ed25519' }))).rejects.toMatchObject({ code: 'device_protocol_error' });
  });
});
