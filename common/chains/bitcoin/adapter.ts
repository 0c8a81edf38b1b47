/**
 * The Bitcoin family's decoder (PSBTs spending a pool's P2WPKH or P2TR outputs) for the gateway, the
 * approver's client and the simulator: common/chains/decoded-transaction.ts. Whoever decodes computes
 * every BIP-143 / BIP-341 sighash itself from the PSBT.
 */
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { bitcoinNetwork } from '../../chain-id.js';
import type { ChainAdapter, DecodedTransaction } from '../decoded-transaction.js';
import { decodeBitcoinPsbt, type PreparedBitcoinTx } from './transaction.js';

export function decodedBitcoin(p: PreparedBitcoinTx): DecodedTransaction {
  return {
    asset: 'BTC',
    amount: p.amount,
    to: p.to,
    maxFee: p.fee,
    digest: p.digest,
    payload: concatBytes(...p.sighashes),
    scheme: p.fromType === 'p2tr' ? 'schnorr-bip340' : 'ecdsa-secp256k1',
    call: null,
    // The same transaction twice is one request; different ones collide on their inputs' claims.
    signOnceKey: `tx:${bytesToHex(p.digest)}`,
    claims: p.outpoints.map((o) => `utxo:${o}`),
    details: [
      ['version', String(p.version)],
      ['lock time', String(p.lockTime)],
      ['spends from', `${p.from} (${p.fromType.toUpperCase()})`],
      ...p.inputs.map((u, i): [string, string] => [`input ${i}`, `${u.txid}:${u.vout}, ${u.value} sat, sequence 0x${u.sequence.toString(16)}`]),
      ...p.outputs.map((o, i): [string, string] => [`output ${i}`, `${o.amount} sat to ${o.address}${o.change ? ' (change back to the pool)' : ''}`]),
      ['fee', `${p.fee} sat`],
      ['digest', bytesToHex(p.digest)],
    ],
  };
}

export const bitcoinAdapter: ChainAdapter = {
  decode: (chain, unsignedTx, signer) =>
    decodedBitcoin(decodeBitcoinPsbt(unsignedTx, bitcoinNetwork(chain), signer === null ? null : { publicKey: signer, type: 'p2wpkh', inferType: true })),
};
