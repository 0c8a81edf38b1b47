/**
 * Bitcoin withdrawals checked with code we did not write: bitcoinjs-lib parses our PSBTs and final
 * transactions and computes every input's BIP-143 sighash on its own; the BIP-143 vector pins the
 * sighash and the device's signing algorithm.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Transaction, p2pkh, SigHash } from '@scure/btc-signer';
import { assembleBitcoinSigned, buildBitcoinTransfer, decodeBitcoinPsbt, type Utxo } from '../../common/chains/bitcoin/transaction.js';
import { poolOutput } from '../../common/chains/bitcoin/address.js';

const p2wpkhAddress = (pub: Uint8Array, network: 'testnet') => poolOutput(pub, 'p2wpkh', network).address;

const vector = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'bip143-p2wpkh.json'), 'utf8')) as Record<string, string>;
const TESTNET = bitcoin.networks.testnet;
const SECRET = hexToBytes('11'.repeat(32));
const PUB = secp256k1.getPublicKey(SECRET, true);
const POOL = p2wpkhAddress(PUB, 'testnet');
const SPEND = { publicKey: PUB, type: 'p2wpkh' } as const;
const DEST = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
const utxo = (value: bigint): Utxo => ({ txid: bytesToHex(randomBytes(32)), vout: 1, value });

/** What the simulator does: RFC 6979, low-S, one signature per sighash. */
function deviceSign(sighashes: readonly Uint8Array[], secret = SECRET) {
  return sighashes.map((h) => ({ signature: secp256k1.sign(h, secret, { prehash: false, lowS: true }) }));
}

function independentSighashes(rawUnsigned: bitcoin.Transaction, values: bigint[], pub: Uint8Array): string[] {
  const scriptCode = bitcoin.payments.p2pkh({ pubkey: pub }).output as Uint8Array;
  return values.map((v, i) => bytesToHex(rawUnsigned.hashForWitnessV0(i, scriptCode, v, bitcoin.Transaction.SIGHASH_ALL)));
}

describe('BIP-143', () => {
  it('when the BIP-143 P2WPKH example is hashed and signed as the device does, then the published sighash and signature come out', () => {
    const tx = Transaction.fromRaw(hexToBytes(vector.unsignedTx as string), { allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true });
    const pub = hexToBytes(vector.publicKey as string);
    const sighash = tx.preimageWitnessV0(1, p2pkh(pub).script, SigHash.ALL, BigInt(vector.amount as string));
    expect(bytesToHex(sighash)).toBe(vector.sigHash);
    const sig = secp256k1.sign(sighash, hexToBytes(vector.privateKey as string), { prehash: false, lowS: true, format: 'der' });
    expect(bytesToHex(sig)).toBe(vector.signature);
  });
});

describe('building and signing a P2WPKH withdrawal', () => {
  it('when two UTXOs pay a destination with change, then bitcoinjs reads the outputs, recomputes every sighash, and each signature verifies', () => {
    const utxos = [utxo(3_000_000n), utxo(2_500_000n)];
    const p = buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos, to: DEST, amount: 4_000_000n, feeRate: 10n });
    const psbt = bitcoin.Psbt.fromBase64(p.psbt, { network: TESTNET });
    const outs = psbt.txOutputs.map((o) => ({ address: o.address, value: o.value }));
    expect(outs).toEqual([
      { address: DEST, value: 4_000_000n },
      { address: POOL, value: p.change },
    ]);
    expect(p.fee).toBe(5_500_000n - 4_000_000n - p.change);
    expect(p.fee).toBeGreaterThanOrEqual(10n * 208n);
    expect(p.outpoints).toEqual(utxos.map((u) => `${u.txid}:1`));
    const unsigned = bitcoin.Transaction.fromBuffer((psbt.data.globalMap.unsignedTx as unknown as { toBuffer(): Uint8Array }).toBuffer());
    expect(p.sighashes.map(bytesToHex)).toEqual(independentSighashes(unsigned, utxos.map((u) => u.value), PUB));

    const { signedTx, txHash } = assembleBitcoinSigned(p, SPEND, 'testnet', deviceSign(p.sighashes));
    const final = bitcoin.Transaction.fromHex(signedTx);
    expect(final.getId()).toBe(txHash);
    expect(final.ins.length).toBe(2);
    const sighashes = independentSighashes(final, utxos.map((u) => u.value), PUB);
    final.ins.forEach((input, i) => {
      const [sig, pub] = input.witness as Uint8Array[];
      expect(bytesToHex(pub as Uint8Array)).toBe(bytesToHex(PUB));
      expect((sig as Uint8Array)[(sig as Uint8Array).length - 1]).toBe(bitcoin.Transaction.SIGHASH_ALL);
      const der = (sig as Uint8Array).slice(0, -1);
      expect(secp256k1.verify(der, hexToBytes(sighashes[i] as string), PUB, { prehash: false, format: 'der' })).toBe(true);
      expect(bitcoin.script.isCanonicalScriptSignature(sig as Uint8Array)).toBe(true);
    });
    expect(final.virtualSize()).toBeLessThanOrEqual(Number(p.fee / 10n));
  });

  it('when the change would be dust, then there is no change output and the rest is fee', () => {
    const p = buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos: [utxo(1_000_900n)], to: DEST, amount: 1_000_000n, feeRate: 5n });
    expect(p.change).toBe(0n);
    expect(p.fee).toBe(900n);
    expect(bitcoin.Psbt.fromBase64(p.psbt, { network: TESTNET }).txOutputs.length).toBe(1);
  });

  it('when the UTXOs cannot pay amount and fee, or a UTXO repeats, then the build is refused', () => {
    expect(() => buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos: [utxo(1_000_000n)], to: DEST, amount: 1_000_000n, feeRate: 5n })).toThrow(/less than/);
    const u = utxo(5_000_000n);
    expect(() => buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos: [u, u], to: DEST, amount: 1_000_000n, feeRate: 5n })).toThrow(/twice/);
    expect(() => buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos: [u], to: 'bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4', amount: 1_000_000n, feeRate: 5n })).toThrow(/testnet/);
  });

  it('when a signature is from another key, over another hash, high-S, or there are too few, then assembly refuses', () => {
    const p = buildBitcoinTransfer({ network: 'testnet', pool: SPEND, utxos: [utxo(3_000_000n)], to: DEST, amount: 1_000_000n, feeRate: 2n });
    expect(() => assembleBitcoinSigned(p, SPEND, 'testnet', deviceSign(p.sighashes, hexToBytes('22'.repeat(32))))).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
    expect(() => assembleBitcoinSigned(p, SPEND, 'testnet', [])).toThrow(/expected 1 signatures/);
    // The high-S twin of a valid signature verifies mathematically but is not standard: refused.
    const sig = secp256k1.Signature.fromBytes(deviceSign(p.sighashes)[0]!.signature, 'compact');
    const highS = new secp256k1.Signature(sig.r, secp256k1.Point.CURVE().n - sig.s).toBytes('compact');
    expect(() => assembleBitcoinSigned(p, SPEND, 'testnet', [{ signature: highS }])).toThrow(/s is not low/);
    // A signature over another sighash by the right key.
    const wrong = deviceSign([new Uint8Array(32).fill(4)]);
    expect(() => assembleBitcoinSigned(p, SPEND, 'testnet', wrong)).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });
});

describe('decoding a requester\'s PSBT', () => {
  const poolScript = bitcoin.payments.p2wpkh({ pubkey: PUB, network: TESTNET }).output as Uint8Array;
  function psbtWith(outputs: { address?: string; script?: Uint8Array; value: bigint }[], inputScript = poolScript): string {
    const psbt = new bitcoin.Psbt({ network: TESTNET });
    psbt.addInput({ hash: bytesToHex(randomBytes(32)), index: 0, witnessUtxo: { script: inputScript, value: 2_000_000n } });
    for (const o of outputs) psbt.addOutput(o.address ? { address: o.address, value: o.value } : { script: o.script as Uint8Array, value: o.value });
    return psbt.toBase64();
  }

  it('when a PSBT made by bitcoinjs pays one destination with change to the pool, then it is accepted with its exact fee', () => {
    const p = decodeBitcoinPsbt(psbtWith([{ address: DEST, value: 1_500_000n }, { address: POOL, value: 499_000n }]), 'testnet', SPEND);
    expect(p).toMatchObject({ to: DEST, amount: 1_500_000n, change: 499_000n, fee: 1_000n });
  });

  const refusals: [string, () => string, RegExp][] = [
    ['an extra output', () => psbtWith([{ address: DEST, value: 1_000_000n }, { address: 'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', value: 500_000n }]), /exactly one destination/],
    ['change to a foreign address', () => psbtWith([{ address: DEST, value: 1_000_000n }, { address: p2wpkhAddress(secp256k1.getPublicKey(hexToBytes('33'.repeat(32)), true), 'testnet'), value: 900_000n }]), /exactly one destination/],
    ['an input that is not the pool\'s', () => psbtWith([{ address: DEST, value: 1_000_000n }], bitcoin.payments.p2wpkh({ pubkey: secp256k1.getPublicKey(hexToBytes('44'.repeat(32)), true), network: TESTNET }).output as Uint8Array), /does not spend the pool's own/],
    ['a data output', () => psbtWith([{ address: DEST, value: 1_000_000n }, { script: bitcoin.payments.embed({ data: [new Uint8Array([1, 2, 3])] }).output as Uint8Array, value: 0n }]), /not a payment to an address/],
    ['outputs above its inputs', () => psbtWith([{ address: DEST, value: 3_000_000n }]), /spends more than its inputs/],
    ['no PSBT at all', () => 'bm90IGEgcHNidA==', /not a PSBT/],
  ];
  for (const [name, make, message] of refusals) {
    it(`when the PSBT has ${name}, then it is refused with a clear reason`, () => {
      expect(() => decodeBitcoinPsbt(make(), 'testnet', SPEND)).toThrow(message);
    });
  }
});
