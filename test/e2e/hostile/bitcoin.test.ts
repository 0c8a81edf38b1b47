/**
 * A compromised gateway against the real simulator, Bitcoin (SPEC rules 1-3, section 5; BIP-174 PSBT,
 * BIP-143, BIP-341): the device decodes the PSBT itself with the pool key and signs only one payment
 * plus change back to the pool, spending only the pool's own outputs with SIGHASH_ALL (DEFAULT for
 * P2TR). A second payment disguised as change, another pool's outputs, a weaker sighash type and a
 * swapped PSBT are each refused with their status and no signature; the honest set signs, and
 * bitcoinjs-lib with tiny-secp256k1 (code we did not write) recomputes every sighash, verifies each
 * signature and finalizes the transaction.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { SigHash, Transaction } from '@scure/btc-signer';
import { btcNetwork, poolOutput } from '../../../common/chains/bitcoin/address.js';
import { Status, type ApprovalRecord, type KeyRecord } from '../../../common/sim-protocol.js';
import { BTC_DESTINATION, approval, bitcoinTx, messageFor, utxo, type TestTransaction } from '../../hsm-sim/fixtures.js';
import { expectRefused, expectSigned, startDeviceUnderAttack, type DeviceUnderAttack } from './device-under-attack.js';

bitcoin.initEccLib(ecc);
const REGTEST = bitcoin.networks.regtest;

let device: DeviceUnderAttack;
beforeAll(async () => {
  device = await startDeviceUnderAttack();
});
afterAll(async () => {
  await device?.stop();
});

const ATTACKER = poolOutput(secp256k1.getPublicKey(hexToBytes('33'.repeat(32)), true), 'p2wpkh', 'regtest').address;
const RBF = 0xfffffffd;

const both = (m: ReturnType<typeof messageFor>): ApprovalRecord[] => [approval('alice', m), approval('bob', m)];
const sign = (unsignedTx: string, approvals: readonly ApprovalRecord[], key: KeyRecord = device.poolA.btc, poolId = 'pool-a') =>
  device.link.sign({ handle: key.handle, poolId, unsignedTx, approvals });
const scriptOf = (key: KeyRecord, type: 'p2wpkh' | 'p2tr' = 'p2wpkh') => poolOutput(key.publicKey, type, 'regtest').script;

/** A PSBT the way an attacker writes it: any inputs (with the scripts it claims), any outputs. */
function attackerPsbt(inputs: { script: Uint8Array; value: bigint; sighashType?: number }[], outputs: { address: string; value: bigint }[]): string {
  const tx = new Transaction({ version: 2, allowUnknownOutputs: true });
  for (const input of inputs) {
    tx.addInput({ txid: utxo(1n).txid, index: 0, sequence: RBF, witnessUtxo: { script: input.script, amount: input.value }, ...(input.sighashType === undefined ? {} : { sighashType: input.sighashType }) });
  }
  for (const o of outputs) tx.addOutputAddress(o.address, o.value, btcNetwork('regtest'));
  return base64.encode(tx.toPSBT());
}

/** Messages that read "what the attacker says it pays" over its PSBT. */
function honestLooking(unsignedTx: string, to: string, amount: bigint, fee: bigint): ReturnType<typeof messageFor> {
  const looks: TestTransaction = { chain: device.poolA.btc.chain, unsignedTx, asset: 'BTC', amount, to, maxFee: fee, digest: new Uint8Array(32).fill(9) };
  return messageFor(looks);
}

describe('the positive control', () => {
  it('when the honest set approves a two-input P2WPKH withdrawal, then the device signs each input and bitcoinjs verifies every signature against its own BIP-143 sighash and finalizes it', async () => {
    const tx = bitcoinTx(device.hex(device.poolA.btc));
    const result = expectSigned(await sign(tx.unsignedTx, both(messageFor(tx))));
    expect(result.scheme).toBe('ecdsa-secp256k1');
    expect(result.signatures.length).toBe(2);
    const pub = device.poolA.btc.publicKey;
    const psbt = bitcoin.Psbt.fromBase64(tx.unsignedTx, { network: REGTEST });
    result.signatures.forEach((compact, i) => {
      const der = secp256k1.Signature.fromBytes(compact, 'compact').toBytes('der');
      psbt.updateInput(i, { partialSig: [{ pubkey: pub, signature: concatBytes(der, new Uint8Array([bitcoin.Transaction.SIGHASH_ALL])) }] });
    });
    expect(psbt.validateSignaturesOfAllInputs((pubkey, hash, signature) => ecc.verify(hash, pubkey, signature))).toBe(true);
    psbt.finalizeAllInputs();
    const final = psbt.extractTransaction();
    expect(bitcoin.address.fromOutputScript(final.outs[0]!.script, REGTEST)).toBe(BTC_DESTINATION);
    expect(final.outs[0]!.value).toBe(tx.amount);
    expect(bitcoin.address.fromOutputScript(final.outs[1]!.script, REGTEST)).toBe(poolOutput(pub, 'p2wpkh', 'regtest').address);
  });

  it('when the honest set approves a P2TR key-path withdrawal, then bitcoinjs verifies each Schnorr signature under the pool\'s tweaked output key and finalizes it', async () => {
    const tx = bitcoinTx(device.hex(device.poolA.btc), { type: 'p2tr' });
    const result = expectSigned(await sign(tx.unsignedTx, both(messageFor(tx))));
    expect(result.scheme).toBe('schnorr-bip340');
    const psbt = bitcoin.Psbt.fromBase64(tx.unsignedTx, { network: REGTEST });
    result.signatures.forEach((sig, i) => psbt.updateInput(i, { tapKeySig: sig }));
    expect(psbt.validateSignaturesOfAllInputs((pubkey, hash, signature) => ecc.verifySchnorr(hash, pubkey, signature))).toBe(true);
    psbt.finalizeAllInputs();
    expect(bitcoin.address.fromOutputScript(psbt.extractTransaction().outs[0]!.script, REGTEST)).toBe(BTC_DESTINATION);
  });
});

describe('outputs the device does not sign', () => {
  it('when the "change" goes to an address that is not the pool\'s (a second payment), then BAD_REQUEST: the device cannot decode it as one payment plus change', async () => {
    const psbt = attackerPsbt([{ script: scriptOf(device.poolA.btc), value: 5_000_000n }], [
      { address: BTC_DESTINATION, value: 1_000_000n },
      { address: ATTACKER, value: 3_990_000n },
    ]);
    expectRefused(await sign(psbt, both(honestLooking(psbt, BTC_DESTINATION, 1_000_000n, 10_000n))), Status.BAD_REQUEST, /must pay exactly one destination plus optional change to the pool; it pays 2/);
  });

  it('when an input asks for SIGHASH_NONE|ANYONECANPAY (outputs left open to rewrite), then BAD_REQUEST', async () => {
    const psbt = attackerPsbt([{ script: scriptOf(device.poolA.btc), value: 5_000_000n, sighashType: SigHash.NONE_ANYONECANPAY }], [{ address: BTC_DESTINATION, value: 4_990_000n }]);
    expectRefused(await sign(psbt, both(honestLooking(psbt, BTC_DESTINATION, 4_990_000n, 10_000n))), Status.BAD_REQUEST, /sighash type/);
  });
});

describe('another pool\'s coins', () => {
  it('when a PSBT spends pool B\'s output script and is sent to pool A\'s key with pool A\'s approvals, then BAD_REQUEST (foreign input)', async () => {
    const poolBs = bitcoinTx(device.hex(device.poolB.btc));
    expectRefused(await sign(poolBs.unsignedTx, both(messageFor(poolBs))), Status.BAD_REQUEST, /input 0 does not spend the pool's own P2WPKH output/);
  });

  it('when a PSBT mixes pool A\'s output with pool B\'s, then BAD_REQUEST naming the foreign input', async () => {
    const psbt = attackerPsbt(
      [
        { script: scriptOf(device.poolA.btc), value: 2_000_000n },
        { script: scriptOf(device.poolB.btc), value: 3_000_000n },
      ],
      [{ address: BTC_DESTINATION, value: 4_990_000n }],
    );
    expectRefused(await sign(psbt, both(honestLooking(psbt, BTC_DESTINATION, 4_990_000n, 10_000n))), Status.BAD_REQUEST, /input 1 does not spend the pool's own/);
  });

  it('when pool B\'s key is asked to sign under pool A\'s name, or with approvals naming pool A, then QUORUM_REFUSED', async () => {
    const poolBs = bitcoinTx(device.hex(device.poolB.btc));
    expectRefused(await sign(poolBs.unsignedTx, both(messageFor(poolBs)), device.poolB.btc, 'pool-a'), Status.QUORUM_REFUSED, /belongs to pool pool-b, not pool-a/);
    const asPoolB = [approval('bob', messageFor(poolBs)), approval('carol', messageFor(poolBs))];
    expectRefused(await sign(poolBs.unsignedTx, asPoolB, device.poolB.btc, 'pool-b'), Status.QUORUM_REFUSED, /names pool pool-a, not pool-b/);
  });
});

describe('swapping the PSBT', () => {
  it('when honest approvals of one PSBT come with a SIGN of another spending the same coins to the attacker, then TRANSACTION_MISMATCH', async () => {
    const coins = [utxo(3_000_000n), utxo(2_500_000n)];
    const shown = bitcoinTx(device.hex(device.poolA.btc), { utxos: coins });
    const stolen = bitcoinTx(device.hex(device.poolA.btc), { utxos: coins, to: ATTACKER, amount: 5_400_000n });
    expectRefused(await sign(stolen.unsignedTx, both(messageFor(shown))), Status.TRANSACTION_MISMATCH, /approves another transaction/);
    const lying = messageFor(stolen, { to: shown.to, amount: shown.amount.toString(), digest: bytesToHex(shown.digest) });
    expectRefused(await sign(stolen.unsignedTx, both(lying)), Status.TRANSACTION_MISMATCH, /"amount" says 4000000 but the transaction has 5400000/);
  });

  it('when the message states a lower fee than the PSBT pays, then TRANSACTION_MISMATCH on "maxFee"', async () => {
    const tx = bitcoinTx(device.hex(device.poolA.btc));
    expectRefused(await sign(tx.unsignedTx, both(messageFor(tx, { maxFee: '1' }))), Status.TRANSACTION_MISMATCH, /"maxFee" says 1 but/);
  });
});
