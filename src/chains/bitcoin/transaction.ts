/**
 * Bitcoin withdrawals from a pool's P2WPKH address (BIP-141/BIP-143): build a PSBT (BIP-174) from the
 * given UTXOs, or decode a requester's PSBT; check that it spends only the pool's outputs and pays
 * exactly the destination plus change back to the pool; compute each input's BIP-143 sighash; and turn
 * the device's signatures into the finalized raw transaction. Encoding, sighashes and finalization are
 * @scure/btc-signer's; nothing here serializes by hand.
 *
 * The device signs one hash per input; the approvals name `digest` = sha256(sighash 1 || … || sighash n),
 * which commits to every input's sighash and so to the whole transaction.
 */
import { Address, OutScript, SigHash, Transaction, p2pkh, p2wpkh } from '@scure/btc-signer';
import { base64 } from '@scure/base';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { CustodyError, ValidationError } from '../../domain/errors.js';
import type { BitcoinNetwork } from '../../domain/chain-id.js';
import { assertBitcoinAddress, btcNetwork } from './address.js';

export interface Utxo {
  /** Transaction id as usually written (big-endian hex). */
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
}

export interface BitcoinTransferInput {
  readonly network: BitcoinNetwork;
  /** The pool's compressed public key: inputs are its P2WPKH outputs, change goes back to it. */
  readonly poolPublicKey: Uint8Array;
  readonly utxos: readonly Utxo[];
  readonly to: string;
  readonly amount: bigint;
  /** Satoshis per virtual byte. */
  readonly feeRate: bigint;
}

export interface PreparedBitcoinTx {
  /** The unsigned PSBT, base64. */
  readonly psbt: string;
  /** BIP-143 sighash of each input, in input order. */
  readonly sighashes: readonly Uint8Array[];
  /** sha256 of the concatenated sighashes: what the approvals name. */
  readonly digest: Uint8Array;
  readonly to: string;
  readonly amount: bigint;
  /** The exact fee (inputs minus outputs), satoshis. */
  readonly fee: bigint;
  readonly change: bigint;
  /** `txid:vout` of every input: each may be claimed by one live request only. */
  readonly outpoints: readonly string[];
}

/** Below this, change is not worth an output (the common dust relay limit for P2WPKH is lower). */
export const DUST_LIMIT = 546n;
export const MAX_INPUTS = 256;
const SECP256K1_HALF_N = secp256k1.Point.CURVE().n >> 1n;
const RBF_SEQUENCE = 0xfffffffd;

function poolScript(poolPublicKey: Uint8Array, network: BitcoinNetwork): Uint8Array {
  return p2wpkh(poolPublicKey, btcNetwork(network)).script;
}

/** Virtual size of a transaction spending `inputs` P2WPKH outputs to outputs with these scripts (BIP-141 weight). */
export function estimateVsize(inputs: number, outputScripts: readonly Uint8Array[]): bigint {
  const base = 4 + 1 + inputs * (32 + 4 + 1 + 4) + 1 + outputScripts.reduce((n, s) => n + 8 + 1 + s.length, 0) + 4;
  const witness = 2 + inputs * (1 + 1 + 72 + 1 + 33);
  return BigInt(Math.ceil((base * 4 + witness) / 4));
}

function assertUtxos(utxos: readonly Utxo[]): void {
  if (utxos.length === 0 || utxos.length > MAX_INPUTS) throw new ValidationError('invalid_utxos', `"utxos" must list 1 to ${MAX_INPUTS} outputs to spend`);
  const seen = new Set<string>();
  utxos.forEach((u, i) => {
    if (!/^[0-9a-f]{64}$/.test(u.txid)) throw new ValidationError('invalid_utxos', `"utxos[${i}].txid" expected 64 lowercase hex characters`);
    if (!Number.isInteger(u.vout) || u.vout < 0 || u.vout > 0xffffffff) throw new ValidationError('invalid_utxos', `"utxos[${i}].vout" expected an output index`);
    if (u.value <= 0n || u.value > 21_000_000n * 100_000_000n) throw new ValidationError('invalid_utxos', `"utxos[${i}].value" is out of range`);
    const key = `${u.txid}:${u.vout}`;
    if (seen.has(key)) throw new ValidationError('invalid_utxos', `"utxos[${i}]" spends ${key} twice`);
    seen.add(key);
  });
}

function sighashesOf(tx: Transaction, poolPublicKey: Uint8Array, amounts: readonly bigint[]): Uint8Array[] {
  const scriptCode = p2pkh(poolPublicKey).script;
  return amounts.map((amount, i) => tx.preimageWitnessV0(i, scriptCode, SigHash.ALL, amount));
}

function prepared(tx: Transaction, input: { poolPublicKey: Uint8Array; to: string; amount: bigint; change: bigint; utxos: readonly Utxo[] }): PreparedBitcoinTx {
  const sighashes = sighashesOf(tx, input.poolPublicKey, input.utxos.map((u) => u.value));
  const totalIn = input.utxos.reduce((s, u) => s + u.value, 0n);
  return {
    psbt: base64.encode(tx.toPSBT()),
    sighashes,
    digest: sha256(concatBytes(...sighashes)),
    to: input.to,
    amount: input.amount,
    fee: totalIn - input.amount - input.change,
    change: input.change,
    outpoints: input.utxos.map((u) => `${u.txid}:${u.vout}`),
  };
}

export function buildBitcoinTransfer(input: BitcoinTransferInput): PreparedBitcoinTx {
  assertUtxos(input.utxos);
  const network = btcNetwork(input.network);
  const to = assertBitcoinAddress(input.to, input.network, 'to');
  if (input.amount < DUST_LIMIT) throw new ValidationError('out_of_range', `"amount" must be at least ${DUST_LIMIT} satoshis`);
  if (input.feeRate < 1n || input.feeRate > 10_000n) throw new ValidationError('out_of_range', '"feeRate" must be 1 to 10000 sat/vB');
  const script = poolScript(input.poolPublicKey, input.network);
  const toScript = OutScript.encode(Address(network).decode(to));
  const totalIn = input.utxos.reduce((s, u) => s + u.value, 0n);

  let change = totalIn - input.amount - estimateVsize(input.utxos.length, [toScript, script]) * input.feeRate;
  if (change < DUST_LIMIT) {
    // No change output: whatever is left over pays the fee (bounded by the policy's fee cap).
    change = 0n;
    const fee = estimateVsize(input.utxos.length, [toScript]) * input.feeRate;
    if (totalIn < input.amount + fee) {
      throw new ValidationError('insufficient_funds', `the UTXOs hold ${totalIn} sat, less than ${input.amount} plus a fee of ${fee} at ${input.feeRate} sat/vB`);
    }
  }
  const tx = new Transaction({ version: 2 });
  for (const u of input.utxos) tx.addInput({ txid: u.txid, index: u.vout, sequence: RBF_SEQUENCE, witnessUtxo: { script, amount: u.value } });
  tx.addOutputAddress(to, input.amount, network);
  if (change > 0n) tx.addOutput({ script, amount: change });
  return prepared(tx, { poolPublicKey: input.poolPublicKey, to, amount: input.amount, change, utxos: input.utxos });
}

/**
 * Decodes an unsigned PSBT and accepts it only if every input is a P2WPKH output of the pool (with its
 * amount), and the outputs are exactly one payment to someone else plus at most one change output back
 * to the pool.
 */
export function decodeBitcoinPsbt(psbtBase64: string, network: BitcoinNetwork, poolPublicKey: Uint8Array): PreparedBitcoinTx {
  let tx: Transaction;
  try {
    if (typeof psbtBase64 !== 'string' || psbtBase64.length > 200_000) throw new Error('not a string of reasonable size');
    tx = Transaction.fromPSBT(base64.decode(psbtBase64));
  } catch (error) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" is not a PSBT: ${error instanceof Error ? error.message : String(error)}`);
  }
  const script = poolScript(poolPublicKey, network);
  const utxos: Utxo[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    if (!input.txid || input.index === undefined || !input.witnessUtxo) {
      throw new ValidationError('undecodable_transaction', `"unsignedTx" input ${i} lacks its outpoint or witness UTXO`);
    }
    if (bytesToHex(input.witnessUtxo.script) !== bytesToHex(script)) {
      throw new ValidationError('foreign_input', `"unsignedTx" input ${i} does not spend the pool's own P2WPKH output`);
    }
    if (input.sighashType !== undefined && input.sighashType !== SigHash.ALL) {
      throw new ValidationError('unsupported_sighash', `"unsignedTx" input ${i} asks for sighash type ${input.sighashType}; only SIGHASH_ALL is signed`);
    }
    if (input.partialSig?.length || input.finalScriptWitness) throw new ValidationError('undecodable_transaction', `"unsignedTx" input ${i} is already signed`);
    utxos.push({ txid: bytesToHex(input.txid), vout: input.index, value: input.witnessUtxo.amount });
  }
  assertUtxos(utxos);
  const payments: { address: string; amount: bigint }[] = [];
  let change = 0n;
  let changeOutputs = 0;
  for (let i = 0; i < tx.outputsLength; i++) {
    const out = tx.getOutput(i);
    if (!out.script || out.amount === undefined) throw new ValidationError('undecodable_transaction', `"unsignedTx" output ${i} is incomplete`);
    if (bytesToHex(out.script) === bytesToHex(script)) {
      change += out.amount;
      changeOutputs += 1;
      continue;
    }
    let address: string;
    try {
      address = tx.getOutputAddress(i, btcNetwork(network)) as string;
      if (!address) throw new Error('no address');
    } catch {
      throw new ValidationError('unsupported_output', `"unsignedTx" output ${i} is not a payment to an address (data carriers and bare scripts are refused)`);
    }
    payments.push({ address, amount: out.amount });
  }
  if (payments.length !== 1) {
    throw new ValidationError('unsupported_output', `"unsignedTx" must pay exactly one destination plus optional change to the pool; it pays ${payments.length}`);
  }
  if (changeOutputs > 1) throw new ValidationError('unsupported_output', '"unsignedTx" has more than one change output');
  const payment = payments[0] as { address: string; amount: bigint };
  const totalIn = utxos.reduce((s, u) => s + u.value, 0n);
  if (totalIn < payment.amount + change) throw new ValidationError('undecodable_transaction', '"unsignedTx" spends more than its inputs hold');
  return prepared(tx, { poolPublicKey, to: assertBitcoinAddress(payment.address, network, 'to'), amount: payment.amount, change, utxos });
}

/** Attaches one device signature per input, checks each against its sighash, and finalizes. */
export function assembleBitcoinSigned(
  p: PreparedBitcoinTx,
  poolPublicKey: Uint8Array,
  signatures: readonly { readonly signature: Uint8Array }[],
): { signedTx: string; txHash: string } {
  const mismatch = (why: string) => new CustodyError('internal', 'signature_mismatch', `device signature rejected: ${why}`);
  if (signatures.length !== p.sighashes.length) throw mismatch(`expected ${p.sighashes.length} signatures, got ${signatures.length}`);
  const tx = Transaction.fromPSBT(base64.decode(p.psbt));
  signatures.forEach((part, i) => {
    const sig = secp256k1.Signature.fromBytes(part.signature, 'compact');
    if (sig.s > SECP256K1_HALF_N) throw mismatch(`input ${i}: s is not low`);
    if (!secp256k1.verify(part.signature, p.sighashes[i] as Uint8Array, poolPublicKey, { prehash: false, format: 'compact' })) {
      throw mismatch(`input ${i}: the signature does not verify against the pool key`);
    }
    tx.updateInput(i, { partialSig: [[poolPublicKey, concatBytes(sig.toBytes('der'), new Uint8Array([SigHash.ALL]))]] });
  });
  tx.finalize();
  return { signedTx: bytesToHex(tx.extract()), txHash: tx.id };
}

