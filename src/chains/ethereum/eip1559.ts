/**
 * EIP-1559 (type 2) native transfers: build, decode, digest and assemble. Serialization is
 * micro-eth-signer's (RLP per the Yellow Paper, typed envelope per EIP-2718); the digest the device
 * signs is keccak256(0x02 || rlp([chainId, nonce, maxPriorityFeePerGas, maxFeePerGas, gasLimit, to,
 * value, data, accessList])).
 */
import { Transaction } from 'micro-eth-signer';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CustodyError, ValidationError } from '../../domain/errors.js';
import { MAX_UINT256 } from '../../domain/amount.js';
import { assertEthAddress } from './address.js';

export interface EthereumTransfer {
  readonly chainId: bigint;
  readonly nonce: bigint;
  readonly gasLimit: bigint;
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
  /** EIP-55 destination. */
  readonly to: string;
  readonly value: bigint;
}

export interface PreparedEthereumTx {
  /** 0x-hex of the unsigned type-2 serialization. */
  readonly unsignedTx: string;
  /** keccak256 of the unsigned serialization: what the device signs. */
  readonly digest: Uint8Array;
  /** gasLimit × maxFeePerGas: the most the transaction can pay in fees, wei. */
  readonly maxFee: bigint;
  readonly transfer: EthereumTransfer;
  /** The replay key of this transaction: its nonce. */
  readonly signOnceKey: string;
}

export const MIN_TRANSFER_GAS = 21_000n;
export const MAX_GAS_LIMIT = 30_000_000n;
/** An EIP-1559 transaction object of micro-eth-signer (its class is exported as a value only). */
type Eip1559Tx = InstanceType<typeof Transaction<'eip1559'>>;

const MAX_NONCE = (1n << 64n) - 2n; // EIP-2681
const SECP256K1_HALF_N = secp256k1.Point.CURVE().n >> 1n;

function assertRange(value: bigint, field: string, min: bigint, max: bigint): void {
  if (value < min || value > max) throw new ValidationError('out_of_range', `"${field}" must be between ${min} and ${max}, got ${value}`);
}

function validateTransfer(t: EthereumTransfer): void {
  assertRange(t.chainId, 'chainId', 1n, (1n << 64n) - 1n);
  assertRange(t.nonce, 'nonce', 0n, MAX_NONCE);
  assertRange(t.gasLimit, 'gasLimit', MIN_TRANSFER_GAS, MAX_GAS_LIMIT);
  assertRange(t.maxFeePerGas, 'maxFeePerGas', 1n, MAX_UINT256);
  assertRange(t.maxPriorityFeePerGas, 'maxPriorityFeePerGas', 0n, MAX_UINT256);
  assertRange(t.value, 'amount', 1n, MAX_UINT256);
  if (t.maxPriorityFeePerGas > t.maxFeePerGas) {
    throw new ValidationError('out_of_range', `"maxPriorityFeePerGas" (${t.maxPriorityFeePerGas}) must not exceed "maxFeePerGas" (${t.maxFeePerGas})`);
  }
  if (t.gasLimit * t.maxFeePerGas > MAX_UINT256) throw new ValidationError('out_of_range', '"maxFeePerGas" × "gasLimit" overflows uint256');
}

function prepared(tx: Eip1559Tx, transfer: EthereumTransfer): PreparedEthereumTx {
  const unsigned = tx.toBytes({ includeSignature: false });
  return {
    unsignedTx: '0x' + bytesToHex(unsigned),
    digest: keccak_256(unsigned),
    maxFee: transfer.gasLimit * transfer.maxFeePerGas,
    transfer,
    signOnceKey: `nonce:${transfer.nonce}`,
  };
}

export function buildEthereumTransfer(t: EthereumTransfer): PreparedEthereumTx {
  validateTransfer(t);
  const to = assertEthAddress(t.to, 'to');
  let tx: Eip1559Tx;
  try {
    tx = Transaction.prepare({
      type: 'eip1559',
      chainId: t.chainId,
      nonce: t.nonce,
      gasLimit: t.gasLimit,
      maxFeePerGas: t.maxFeePerGas,
      maxPriorityFeePerGas: t.maxPriorityFeePerGas,
      to,
      value: t.value,
      data: '',
      accessList: [],
    }, false);
  } catch (error) {
    throw new ValidationError('invalid_transaction', `the transaction cannot be built: ${error instanceof Error ? error.message : String(error)}`);
  }
  return prepared(tx, { ...t, to });
}

/**
 * Decodes an unsigned type-2 transaction and accepts only what the gateway can fully read: a plain
 * native transfer on the expected chain, with no data and no access list, whose re-serialization is
 * exactly the input (SPEC rule 3).
 */
export function decodeEthereumUnsignedTx(hex: string, expectedChainId: bigint): PreparedEthereumTx {
  if (typeof hex !== 'string' || !/^0x(?:[0-9a-fA-F]{2})+$/.test(hex)) {
    throw new ValidationError('undecodable_transaction', '"unsignedTx" expected 0x-prefixed hex bytes');
  }
  const bytes = hexToBytes(hex.slice(2));
  if (bytes[0] !== 0x02) {
    throw new ValidationError('undecodable_transaction', '"unsignedTx" must be an EIP-1559 (type 2) transaction; other types are not accepted');
  }
  let tx: Eip1559Tx;
  try {
    const decoded = Transaction.fromBytes(bytes, false);
    if (decoded.type !== 'eip1559') throw new Error(`type ${decoded.type}`);
    tx = decoded as Eip1559Tx;
  } catch (error) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" cannot be decoded: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (tx.isSigned) throw new ValidationError('undecodable_transaction', '"unsignedTx" already carries a signature');
  const raw = tx.raw;
  if (raw.chainId !== expectedChainId) {
    throw new ValidationError('wrong_chain', `"unsignedTx" is for chain id ${raw.chainId}, not ${expectedChainId}`);
  }
  if (raw.data !== '' && raw.data !== '0x') {
    throw new ValidationError('unsupported_call', '"unsignedTx" carries call data; only plain ETH transfers are accepted');
  }
  if (raw.accessList.length > 0) throw new ValidationError('unsupported_call', '"unsignedTx" carries an access list; only plain ETH transfers are accepted');
  if (typeof raw.to !== 'string' || raw.to === '' || raw.to === '0x') {
    throw new ValidationError('unsupported_call', '"unsignedTx" has no destination (contract creation is not accepted)');
  }
  const transfer: EthereumTransfer = {
    chainId: raw.chainId,
    nonce: raw.nonce,
    gasLimit: raw.gasLimit,
    maxFeePerGas: raw.maxFeePerGas,
    maxPriorityFeePerGas: raw.maxPriorityFeePerGas,
    to: assertEthAddress(raw.to, 'unsignedTx.to'),
    value: raw.value,
  };
  validateTransfer(transfer);
  const result = prepared(tx, transfer);
  if (result.unsignedTx.toLowerCase() !== hex.toLowerCase()) {
    throw new ValidationError('undecodable_transaction', '"unsignedTx" is not in canonical encoding (it does not re-serialize to the same bytes)');
  }
  return result;
}

/**
 * Attaches a device signature (r || s, recovery id) and checks it: low S, and the recovered sender
 * must be `expectedFrom`, the pool's address. Anything else is refused, never broadcast.
 */
export function assembleEthereumSigned(
  p: PreparedEthereumTx,
  signature: { readonly signature: Uint8Array; readonly recovery: 0 | 1 | null },
  expectedFrom: string,
): { signedTx: string; txHash: string } {
  const mismatch = (why: string) => new CustodyError('internal', 'signature_mismatch', `device signature rejected: ${why}`);
  if (signature.signature.length !== 64 || signature.recovery === null) throw mismatch('expected 64 bytes r||s and a recovery id');
  const r = BigInt('0x' + bytesToHex(signature.signature.subarray(0, 32)));
  const s = BigInt('0x' + bytesToHex(signature.signature.subarray(32)));
  if (r === 0n || s === 0n || s > SECP256K1_HALF_N) throw mismatch('s is not in the lower half of the curve order');
  const t = p.transfer;
  let signed: Eip1559Tx;
  try {
    signed = new Transaction('eip1559', {
      chainId: t.chainId,
      nonce: t.nonce,
      maxPriorityFeePerGas: t.maxPriorityFeePerGas,
      maxFeePerGas: t.maxFeePerGas,
      gasLimit: t.gasLimit,
      to: t.to,
      value: t.value,
      data: '',
      accessList: [],
      yParity: signature.recovery,
      r,
      s,
    });
    if (signed.recoverSender().address.toLowerCase() !== expectedFrom.toLowerCase()) throw new Error('recovered sender is not the pool address');
  } catch (error) {
    throw mismatch(error instanceof Error ? error.message : String(error));
  }
  const bytes = signed.toBytes({ includeSignature: true });
  return { signedTx: '0x' + bytesToHex(bytes), txHash: '0x' + bytesToHex(keccak_256(bytes)) };
}
