/**
 * Bitcoin withdrawals from a pool's address, P2WPKH (BIP-141, BIP-143 sighash, ECDSA) or P2TR key-path
 * (BIP-341 sighash, BIP-340 Schnorr by the tweaked key): build a PSBT (BIP-174) from the given UTXOs, or
 * decode a requester's PSBT; check that it spends only the pool's outputs and pays exactly the
 * destination plus change back to the pool; compute each input's sighash; and turn the device's
 * signatures into the finalized raw transaction. Encoding, sighashes and finalization are
 * @scure/btc-signer's; nothing here serializes by hand.
 *
 * The device signs one hash per input; the approvals name `digest` = sha256(sighash 1 || … || sighash n),
 * which commits to every input's sighash and so to the whole transaction.
 */
import { Address, OutScript, SigHash, Transaction } from '@scure/btc-signer';
import { base64 } from '@scure/base';
import { schnorr, secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { CustodyError, ValidationError } from '../../errors.js';
import type { BitcoinNetwork } from '../../chain-id.js';
import { verifyLowS } from '../../libsecp256k1.js';
import { assertBitcoinAddress, btcNetwork, outputScript, poolOutput, type BitcoinAddressType } from './address.js';

/** The pool's key and which of its addresses holds the coins (inputs) and gets the change. */
export interface BitcoinPool {
  /** Compressed secp256k1 public key (33 bytes). */
  readonly publicKey: Uint8Array;
  readonly type: BitcoinAddressType;
  /** The device knows the key, not the address type: it takes whichever of the two the inputs spend. */
  readonly inferType?: boolean;
}

/** Whose outputs a transaction spends: the pool's output script of its address type. */
export interface BitcoinSpender {
  readonly type: BitcoinAddressType;
  readonly script: Uint8Array;
}

export function spenderOf(pool: BitcoinPool, network: BitcoinNetwork): BitcoinSpender {
  return { type: pool.type, script: poolOutput(pool.publicKey, pool.type, network).script };
}

/**
 * The spender a PSBT names in its first input, for a reader that does not know the pool's key (an
 * approver's client): a P2WPKH or P2TR output script. The device and the gateway pass the pool's key.
 */
function spenderFromInput(tx: Transaction): BitcoinSpender {
  const script = tx.inputsLength > 0 ? tx.getInput(0).witnessUtxo?.script : undefined;
  if (!script) throw new ValidationError('undecodable_transaction', '"unsignedTx" input 0 lacks its witness UTXO');
  let decoded;
  try {
    decoded = OutScript.decode(script);
  } catch {
    throw new ValidationError('foreign_input', '"unsignedTx" input 0 does not spend a P2WPKH or P2TR output');
  }
  if (decoded.type === 'wpkh') return { type: 'p2wpkh', script };
  if (decoded.type === 'tr') return { type: 'p2tr', script };
  throw new ValidationError('foreign_input', `"unsignedTx" input 0 spends a ${decoded.type} output; only P2WPKH and P2TR pool outputs are signed`);
}

/**
 * The pool's spender for a PSBT whose first input names one of the key's two address types: the
 * device knows only the key, and a pool's key spends from its P2WPKH or its P2TR address.
 */
function spenderOfPsbt(tx: Transaction, pool: BitcoinPool, network: BitcoinNetwork): BitcoinSpender {
  const first = tx.inputsLength > 0 ? tx.getInput(0).witnessUtxo?.script : undefined;
  const other: BitcoinAddressType = pool.type === 'p2wpkh' ? 'p2tr' : 'p2wpkh';
  if (pool.inferType && first !== undefined) {
    const alt = spenderOf({ publicKey: pool.publicKey, type: other }, network);
    if (bytesToHex(alt.script) === bytesToHex(first)) return alt;
  }
  return spenderOf(pool, network);
}

export interface Utxo {
  /** Transaction id as usually written (big-endian hex). */
  readonly txid: string;
  readonly vout: number;
  readonly value: bigint;
}

export interface BitcoinTransferInput {
  readonly network: BitcoinNetwork;
  /** Inputs are the pool's outputs of its address type; change goes back to the same address. */
  readonly pool: BitcoinPool;
  readonly utxos: readonly Utxo[];
  readonly to: string;
  readonly amount: bigint;
  /** Satoshis per virtual byte. */
  readonly feeRate: bigint;
}

export interface PreparedBitcoinTx {
  /** The unsigned PSBT, base64. */
  readonly psbt: string;
  /** BIP-143 (P2WPKH) or BIP-341 (P2TR) sighash of each input, in input order. */
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
  /** The pool's address whose outputs are spent (and which gets the change), and its type. */
  readonly from: string;
  readonly fromType: BitcoinAddressType;
  readonly version: number;
  readonly lockTime: number;
  readonly inputs: readonly (Utxo & { readonly sequence: number })[];
  /** Every output in order; `change` marks the ones back to the pool's own address. */
  readonly outputs: readonly { readonly address: string; readonly amount: bigint; readonly change: boolean }[];
}

/** Below this, change is not worth an output (the common dust relay limit for P2WPKH is lower). */
export const DUST_LIMIT = 546n;
export const MAX_INPUTS = 256;
const SECP256K1_HALF_N = secp256k1.Point.CURVE().n >> 1n;
const RBF_SEQUENCE = 0xfffffffd;

/** Witness bytes spending one input: P2WPKH pushes a DER signature (up to 72 bytes) and the key; P2TR one 64-byte Schnorr signature. */
const WITNESS_BYTES: Record<BitcoinAddressType, number> = { p2wpkh: 1 + 1 + 72 + 1 + 33, p2tr: 1 + 1 + 64 };

/** Virtual size of a transaction spending `inputs` pool outputs of `type` to outputs with these scripts (BIP-141 weight). */
export function estimateVsize(inputs: number, outputScripts: readonly Uint8Array[], type: BitcoinAddressType = 'p2wpkh'): bigint {
  const base = 4 + 1 + inputs * (32 + 4 + 1 + 4) + 1 + outputScripts.reduce((n, s) => n + 8 + 1 + s.length, 0) + 4;
  const witness = 2 + inputs * WITNESS_BYTES[type];
  return BigInt(Math.ceil((base * 4 + witness) / 4));
}

/** The sighash type the pool's inputs are signed with: SIGHASH_ALL, or SIGHASH_DEFAULT (same coverage, 64-byte signature) for P2TR. */
function sighashType(type: BitcoinAddressType): number {
  return type === 'p2tr' ? SigHash.DEFAULT : SigHash.ALL;
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

function sighashesOf(tx: Transaction, spender: BitcoinSpender, amounts: readonly bigint[]): Uint8Array[] {
  if (spender.type === 'p2tr') {
    // BIP-341 commits every input's amount and script; all inputs are the pool's own output script.
    return amounts.map((_, i) => tx.preimageWitnessV1(i, amounts.map(() => spender.script), SigHash.DEFAULT, [...amounts]));
  }
  // BIP-143: the script code of a P2WPKH input is the P2PKH script of its 20-byte key hash.
  const scriptCode = OutScript.encode({ type: 'pkh', hash: spender.script.subarray(2) });
  return amounts.map((amount, i) => tx.preimageWitnessV0(i, scriptCode, SigHash.ALL, amount));
}

function prepared(
  tx: Transaction,
  input: { spender: BitcoinSpender; network: BitcoinNetwork; to: string; amount: bigint; change: bigint; utxos: readonly Utxo[] },
): PreparedBitcoinTx {
  const sighashes = sighashesOf(tx, input.spender, input.utxos.map((u) => u.value));
  const totalIn = input.utxos.reduce((s, u) => s + u.value, 0n);
  const net = btcNetwork(input.network);
  const changeScript = bytesToHex(input.spender.script);
  return {
    psbt: base64.encode(tx.toPSBT()),
    sighashes,
    digest: sha256(concatBytes(...sighashes)),
    from: Address(net).encode(OutScript.decode(input.spender.script)),
    fromType: input.spender.type,
    to: input.to,
    amount: input.amount,
    fee: totalIn - input.amount - input.change,
    change: input.change,
    outpoints: input.utxos.map((u) => `${u.txid}:${u.vout}`),
    version: tx.version,
    lockTime: tx.lockTime,
    inputs: input.utxos.map((u, i) => ({ ...u, sequence: tx.getInput(i).sequence ?? 0xffffffff })),
    outputs: Array.from({ length: tx.outputsLength }, (_, i) => {
      const out = tx.getOutput(i);
      const script = out.script as Uint8Array;
      return { address: Address(net).encode(OutScript.decode(script)), amount: out.amount as bigint, change: bytesToHex(script) === changeScript };
    }),
  };
}

export function buildBitcoinTransfer(input: BitcoinTransferInput): PreparedBitcoinTx {
  assertUtxos(input.utxos);
  const network = btcNetwork(input.network);
  const to = assertBitcoinAddress(input.to, input.network, 'to');
  if (input.amount < DUST_LIMIT) throw new ValidationError('out_of_range', `"amount" must be at least ${DUST_LIMIT} satoshis`);
  if (input.feeRate < 1n || input.feeRate > 10_000n) throw new ValidationError('out_of_range', '"feeRate" must be 1 to 10000 sat/vB');
  const { type } = input.pool;
  const script = poolOutput(input.pool.publicKey, type, input.network).script;
  const toScript = outputScript(to, input.network);
  if (bytesToHex(toScript) === bytesToHex(script)) throw new ValidationError('invalid_destination', '"to" is the pool\'s own address');
  const totalIn = input.utxos.reduce((s, u) => s + u.value, 0n);

  let change = totalIn - input.amount - estimateVsize(input.utxos.length, [toScript, script], type) * input.feeRate;
  if (change < DUST_LIMIT) {
    // No change output: whatever is left over pays the fee (bounded by the policy's fee cap).
    change = 0n;
    const fee = estimateVsize(input.utxos.length, [toScript], type) * input.feeRate;
    if (totalIn < input.amount + fee) {
      throw new ValidationError('insufficient_funds', `the UTXOs hold ${totalIn} sat, less than ${input.amount} plus a fee of ${fee} at ${input.feeRate} sat/vB`);
    }
  }
  const tx = new Transaction({ version: 2 });
  const tapInternalKey = type === 'p2tr' ? { tapInternalKey: input.pool.publicKey.subarray(1) } : {};
  for (const u of input.utxos) tx.addInput({ txid: u.txid, index: u.vout, sequence: RBF_SEQUENCE, witnessUtxo: { script, amount: u.value }, ...tapInternalKey });
  tx.addOutputAddress(to, input.amount, network);
  if (change > 0n) tx.addOutput({ script, amount: change });
  return prepared(tx, { spender: spenderOf(input.pool, input.network), network: input.network, to, amount: input.amount, change, utxos: input.utxos });
}

/**
 * Decodes an unsigned PSBT and accepts it only if every input is an output of the pool's address (with
 * its amount), and the outputs are exactly one payment to someone else plus at most one change output
 * back to the pool; version 2, lock time 0, and every input's sequence final or opting in to
 * replacement (BIP-125), exactly what buildBitcoinTransfer makes. `pool` null: the spender is read
 * from the first input (an approver's client, which has only the transaction).
 */
export function decodeBitcoinPsbt(psbtBase64: string, network: BitcoinNetwork, pool: BitcoinPool | null): PreparedBitcoinTx {
  let tx: Transaction;
  try {
    if (typeof psbtBase64 !== 'string' || psbtBase64.length > 100_000) throw new Error('not a string of reasonable size');
    tx = Transaction.fromPSBT(base64.decode(psbtBase64));
  } catch (error) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" is not a PSBT: ${error instanceof Error ? error.message : String(error)}`);
  }
  const spender = pool === null ? spenderFromInput(tx) : spenderOfPsbt(tx, pool, network);
  const script = spender.script;
  const signWith = sighashType(spender.type);
  if (tx.version !== 2) throw new ValidationError('unsupported_transaction', `"unsignedTx" is a version ${tx.version} transaction; only version 2 is signed`);
  if (tx.lockTime !== 0) throw new ValidationError('unsupported_transaction', `"unsignedTx" has lock time ${tx.lockTime}; only lock time 0 is signed`);
  const utxos: Utxo[] = [];
  for (let i = 0; i < tx.inputsLength; i++) {
    const input = tx.getInput(i);
    if (!input.txid || input.index === undefined || !input.witnessUtxo) {
      throw new ValidationError('undecodable_transaction', `"unsignedTx" input ${i} lacks its outpoint or witness UTXO`);
    }
    if (bytesToHex(input.witnessUtxo.script) !== bytesToHex(script)) {
      throw new ValidationError('foreign_input', `"unsignedTx" input ${i} does not spend the pool's own ${spender.type.toUpperCase()} output`);
    }
    const sequence = input.sequence ?? 0xffffffff;
    if (sequence !== RBF_SEQUENCE && sequence !== 0xffffffff) {
      throw new ValidationError('unsupported_transaction', `"unsignedTx" input ${i} has sequence 0x${sequence.toString(16)}; only 0xfffffffd (replaceable) or 0xffffffff (final) is signed`);
    }
    if (input.sighashType !== undefined && input.sighashType !== signWith) {
      throw new ValidationError('unsupported_sighash', `"unsignedTx" input ${i} asks for sighash type ${input.sighashType}; only ${signWith === SigHash.ALL ? 'SIGHASH_ALL' : 'SIGHASH_DEFAULT'} is signed`);
    }
    if (input.tapLeafScript?.length || input.tapMerkleRoot) {
      throw new ValidationError('unsupported_input', `"unsignedTx" input ${i} carries a taproot script tree; only key-path spends of the pool's key are signed`);
    }
    if (input.partialSig?.length || input.tapKeySig || input.finalScriptWitness) throw new ValidationError('undecodable_transaction', `"unsignedTx" input ${i} is already signed`);
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
  return prepared(tx, { spender, network, to: assertBitcoinAddress(payment.address, network, 'to'), amount: payment.amount, change, utxos });
}

/** Attaches one device signature per input, checks each against its sighash, and finalizes. */
export function assembleBitcoinSigned(
  p: PreparedBitcoinTx,
  pool: BitcoinPool,
  network: BitcoinNetwork,
  signatures: readonly { readonly signature: Uint8Array }[],
): { signedTx: string; txHash: string } {
  const mismatch = (why: string) => new CustodyError('internal', 'signature_mismatch', `device signature rejected: ${why}`);
  if (signatures.length !== p.sighashes.length) throw mismatch(`expected ${p.sighashes.length} signatures, got ${signatures.length}`);
  const tx = Transaction.fromPSBT(base64.decode(p.psbt));
  if (pool.type === 'p2tr') {
    // The witness program of a P2TR output is the tweaked x-only output key the signature must verify under.
    const outputKey = poolOutput(pool.publicKey, 'p2tr', network).script.subarray(2);
    signatures.forEach((part, i) => {
      if (!schnorr.verify(part.signature, p.sighashes[i] as Uint8Array, outputKey)) {
        throw mismatch(`input ${i}: the Schnorr signature does not verify against the pool's tweaked output key`);
      }
      tx.updateInput(i, { tapKeySig: part.signature });
    });
    tx.finalize();
    return { signedTx: bytesToHex(tx.extract()), txHash: tx.id };
  }
  const poolPublicKey = pool.publicKey;
  signatures.forEach((part, i) => {
    const sig = secp256k1.Signature.fromBytes(part.signature, 'compact');
    if (sig.s > SECP256K1_HALF_N) throw mismatch(`input ${i}: s is not low`);
    if (!verifyLowS(p.sighashes[i] as Uint8Array, part.signature, poolPublicKey)) {
      throw mismatch(`input ${i}: the signature does not verify against the pool key`);
    }
    tx.updateInput(i, { partialSig: [[poolPublicKey, concatBytes(sig.toBytes('der'), new Uint8Array([SigHash.ALL]))]] });
  });
  tx.finalize();
  return { signedTx: bytesToHex(tx.extract()), txHash: tx.id };
}

