/**
 * Taproot (P2TR key-path) pools against published vectors and code we did not write: BIP-340's
 * Schnorr vectors, BIP-341's wallet vectors (output keys and addresses, tweaked keys, sighashes and a
 * key-path signature), and bitcoinjs-lib with tiny-secp256k1 deriving the output key, parsing our
 * PSBTs and final transactions, computing every input's BIP-341 sighash and verifying each signature.
 */
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { Transaction } from '@scure/btc-signer';
import { assembleBitcoinSigned, buildBitcoinTransfer, decodeBitcoinPsbt, type BitcoinPool, type Utxo } from '../../common/chains/bitcoin/transaction.js';
import { poolAddressType, poolOutput } from '../../common/chains/bitcoin/address.js';
import { signTaprootKeyPath, taprootTweakedSecret } from '../../hsm-sim/taproot.js';

const vectors = (name: string) => JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', name), 'utf8')) as unknown;

interface Bip340Vector { index: number; secretKey: string; publicKey: string; auxRand: string; message: string; signature: string; valid: boolean; comment: string }
interface Bip341 {
  scriptPubKey: { given: { internalPubkey: string; scriptTree: unknown }; expected: { scriptPubKey: string; bip350Address: string } }[];
  keyPathSpending: {
    given: { rawUnsignedTx: string; utxosSpent: { scriptPubKey: string; amountSats: number }[] };
    inputSpending: {
      given: { txinIndex: number; internalPrivkey: string; merkleRoot: string | null; hashType: number };
      intermediary: { tweakedPrivkey: string; sigHash: string };
      expected: { witness: string[] };
    }[];
  }[];
}

describe('BIP-340 Schnorr vectors', () => {
  for (const v of (vectors('bip340-schnorr.json') as { vectors: Bip340Vector[] }).vectors) {
    it(`when vector ${v.index} is checked${v.comment ? ` (${v.comment})` : ''}, then it ${v.valid ? 'verifies' : 'is refused'}`, () => {
      let ok: boolean;
      try {
        ok = schnorr.verify(hexToBytes(v.signature), hexToBytes(v.message), hexToBytes(v.publicKey));
      } catch {
        ok = false;
      }
      expect(ok).toBe(v.valid);
      if (v.secretKey) expect(bytesToHex(schnorr.sign(hexToBytes(v.message), hexToBytes(v.secretKey), hexToBytes(v.auxRand)))).toBe(v.signature);
    });
  }
});

describe('BIP-341 wallet vectors', () => {
  const bip341 = vectors('bip341-wallet.json') as Bip341;

  for (const v of bip341.scriptPubKey.filter((s) => s.given.scriptTree === null)) {
    it(`when internal key ${v.given.internalPubkey.slice(0, 12)}… has no script tree, then the pool's P2TR output and address are the published ones`, () => {
      // A pool key is compressed SEC1; BIP-341 keys are x-only, which means the even-y point.
      const out = poolOutput(hexToBytes('02' + v.given.internalPubkey), 'p2tr', 'mainnet');
      expect(bytesToHex(out.script)).toBe(v.expected.scriptPubKey);
      expect(out.address).toBe(v.expected.bip350Address);
    });
  }

  const spend = bip341.keyPathSpending[0] as Bip341['keyPathSpending'][number];
  it('when each key-path input is tweaked as the device does, then the tweaked secret key is the published one', () => {
    for (const input of spend.inputSpending) {
      const merkleRoot = input.given.merkleRoot === null ? undefined : hexToBytes(input.given.merkleRoot);
      expect(bytesToHex(taprootTweakedSecret(hexToBytes(input.given.internalPrivkey), merkleRoot))).toBe(input.intermediary.tweakedPrivkey);
    }
  });

  it('when the unsigned transaction is hashed with @scure/btc-signer as the gateway does, then every key-path sighash is the published one', () => {
    const tx = Transaction.fromRaw(hexToBytes(spend.given.rawUnsignedTx), { allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true });
    const scripts = spend.given.utxosSpent.map((u) => hexToBytes(u.scriptPubKey));
    const amounts = spend.given.utxosSpent.map((u) => BigInt(u.amountSats));
    for (const input of spend.inputSpending) {
      expect(bytesToHex(tx.preimageWitnessV1(input.given.txinIndex, scripts, input.given.hashType, amounts))).toBe(input.intermediary.sigHash);
    }
  });

  it('when the device signs the script-less input\'s sighash, then its signature is the published witness', () => {
    const input = spend.inputSpending.find((i) => i.given.merkleRoot === null);
    if (!input) throw new Error('the vector file lost its script-less input');
    const signature = signTaprootKeyPath(hexToBytes(input.intermediary.sigHash), hexToBytes(input.given.internalPrivkey));
    // The witness appends the hash type byte when it is not SIGHASH_DEFAULT.
    const suffix = input.given.hashType === 0 ? '' : input.given.hashType.toString(16).padStart(2, '0');
    expect(bytesToHex(signature) + suffix).toBe(input.expected.witness[0]);
  });
});

bitcoin.initEccLib(ecc);
const TESTNET = bitcoin.networks.testnet;
const SECRET = hexToBytes('55'.repeat(32));
const PUB = secp256k1.getPublicKey(SECRET, true);
const POOL: BitcoinPool = { publicKey: PUB, type: 'p2tr' };
const POOL_OUT = poolOutput(PUB, 'p2tr', 'testnet');
const DEST = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
const utxo = (value: bigint): Utxo => ({ txid: bytesToHex(randomBytes(32)), vout: 0, value });

function bitcoinjsSighashes(tx: bitcoin.Transaction, values: bigint[]): string[] {
  const scripts = values.map(() => POOL_OUT.script);
  return values.map((_, i) => bytesToHex(tx.hashForWitnessV1(i, scripts, values, bitcoin.Transaction.SIGHASH_DEFAULT)));
}

describe('a P2TR pool withdrawal', () => {
  it('when the pool key is a P2TR pool, then its address is bech32m witness v1 and is recognised as the key\'s P2TR address', () => {
    expect(POOL_OUT.address).toMatch(/^tb1p[02-9ac-hj-np-z]{58}$/);
    const independent = bitcoin.payments.p2tr({ internalPubkey: PUB.subarray(1), network: TESTNET });
    expect(independent.address).toBe(POOL_OUT.address);
    expect(bytesToHex(independent.output as Uint8Array)).toBe(bytesToHex(POOL_OUT.script));
    expect(poolAddressType(PUB, POOL_OUT.address, 'testnet')).toBe('p2tr');
    expect(poolAddressType(PUB, DEST, 'testnet')).toBeNull();
  });

  it('when two P2TR UTXOs pay a destination with change, then bitcoinjs recomputes every BIP-341 sighash and each device signature verifies under the output key', () => {
    const utxos = [utxo(3_000_000n), utxo(2_500_000n)];
    const p = buildBitcoinTransfer({ network: 'testnet', pool: POOL, utxos, to: DEST, amount: 4_000_000n, feeRate: 10n });
    const psbt = bitcoin.Psbt.fromBase64(p.psbt, { network: TESTNET });
    expect(psbt.txOutputs.map((o) => ({ address: o.address, value: o.value }))).toEqual([
      { address: DEST, value: 4_000_000n },
      { address: POOL_OUT.address, value: p.change },
    ]);
    expect(psbt.data.inputs.map((i) => bytesToHex(i.tapInternalKey as Uint8Array))).toEqual([bytesToHex(PUB.subarray(1)), bytesToHex(PUB.subarray(1))]);
    const unsigned = bitcoin.Transaction.fromBuffer((psbt.data.globalMap.unsignedTx as unknown as { toBuffer(): Uint8Array }).toBuffer());
    const values = utxos.map((u) => u.value);
    expect(p.sighashes.map(bytesToHex)).toEqual(bitcoinjsSighashes(unsigned, values));

    const { signedTx, txHash } = assembleBitcoinSigned(p, POOL, 'testnet', p.sighashes.map((h) => ({ signature: signTaprootKeyPath(h, SECRET) })));
    const final = bitcoin.Transaction.fromHex(signedTx);
    expect(final.getId()).toBe(txHash);
    const sighashes = bitcoinjsSighashes(final, values);
    const outputKey = POOL_OUT.script.subarray(2);
    final.ins.forEach((input, i) => {
      expect(input.witness.length).toBe(1);
      const sig = input.witness[0] as Uint8Array;
      expect(sig.length).toBe(64);
      expect(ecc.verifySchnorr(hexToBytes(sighashes[i] as string), outputKey, sig)).toBe(true);
    });
    // The estimate covers the real size, so the fee rate asked for is met.
    expect(final.virtualSize()).toBeLessThanOrEqual(Number(p.fee / 10n));
  });

  it('when the signature is by the untweaked key, or over another hash, then assembly refuses it', () => {
    const p = buildBitcoinTransfer({ network: 'testnet', pool: POOL, utxos: [utxo(3_000_000n)], to: DEST, amount: 1_000_000n, feeRate: 2n });
    const untweaked = schnorr.sign(p.sighashes[0] as Uint8Array, SECRET);
    expect(() => assembleBitcoinSigned(p, POOL, 'testnet', [{ signature: untweaked }])).toThrow(/tweaked output key/);
    const other = signTaprootKeyPath(new Uint8Array(32).fill(7), SECRET);
    expect(() => assembleBitcoinSigned(p, POOL, 'testnet', [{ signature: other }])).toThrow(expect.objectContaining({ code: 'signature_mismatch' }));
  });

  describe('a requester\'s PSBT', () => {
    function psbtWith(input: { script?: Uint8Array; tapMerkleRoot?: Uint8Array; sighashType?: number } = {}): string {
      const psbt = new bitcoin.Psbt({ network: TESTNET });
      psbt.addInput({
        hash: bytesToHex(randomBytes(32)),
        index: 0,
        witnessUtxo: { script: input.script ?? POOL_OUT.script, value: 2_000_000n },
        ...(input.tapMerkleRoot ? { tapMerkleRoot: input.tapMerkleRoot } : {}),
        ...(input.sighashType !== undefined ? { sighashType: input.sighashType } : {}),
      });
      psbt.addOutput({ address: DEST, value: 1_500_000n });
      psbt.addOutput({ address: POOL_OUT.address, value: 499_000n });
      return psbt.toBase64();
    }

    it('when bitcoinjs made it from the pool\'s P2TR output, then it is accepted with its exact fee and a BIP-341 sighash', () => {
      const p = decodeBitcoinPsbt(psbtWith(), 'testnet', POOL);
      expect(p).toMatchObject({ to: DEST, amount: 1_500_000n, change: 499_000n, fee: 1_000n });
      expect(p.sighashes.length).toBe(1);
    });

    const refusals: [string, () => string, RegExp][] = [
      ['spends the same key\'s P2WPKH output', () => psbtWith({ script: poolOutput(PUB, 'p2wpkh', 'testnet').script }), /does not spend the pool's own P2TR output/],
      ['carries a script tree', () => psbtWith({ tapMerkleRoot: concatBytes(new Uint8Array(32).fill(9)) }), /script tree/],
      ['asks for SIGHASH_ALL|ANYONECANPAY', () => psbtWith({ sighashType: 0x81 }), /only SIGHASH_DEFAULT/],
    ];
    for (const [name, make, message] of refusals) {
      it(`when it ${name}, then it is refused with a clear reason`, () => {
        expect(() => decodeBitcoinPsbt(make(), 'testnet', POOL)).toThrow(message);
      });
    }
  });
});
