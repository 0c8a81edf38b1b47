/**
 * Ethereum and EVM transactions the gateway signs: EIP-1559 (type 2) and legacy EIP-155, carrying a
 * native ETH transfer, an ERC-20 `transfer(address,uint256)` call, or another contract call (whose
 * arguments contract-call.ts decodes by ABI). Build from request fields, decode a
 * requester's unsigned transaction (accepting only what can be fully read, SPEC rule 3), digest, and
 * attach the device's signature. Serialization is micro-eth-signer's (RLP, EIP-2718 envelopes, EIP-155
 * signing form) and its ERC-20 ABI encoder; nothing here serializes by hand.
 *
 * The digest is keccak256 of the unsigned serialization: `0x02 || rlp([chainId, nonce, maxPriority,
 * maxFee, gas, to, value, data, accessList])` for type 2, `rlp([nonce, gasPrice, gas, to, value, data,
 * chainId, 0, 0])` for legacy (EIP-155).
 */
import { Transaction } from 'micro-eth-signer';
import { ERC20, createContract } from 'micro-eth-signer/abi.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CustodyError, ValidationError } from '../../errors.js';
import { MAX_UINT256 } from '../../amount.js';
import { assertEthAddress } from './address.js';
import { addressOfKey, recoversTo } from './signer-check.js';

export type EthereumFees =
  | { readonly kind: 'eip1559'; readonly maxFeePerGas: bigint; readonly maxPriorityFeePerGas: bigint }
  | { readonly kind: 'legacy'; readonly gasPrice: bigint };

/**
 * What the transaction does for the owner of the pool: pay `amount` of `asset` to `recipient`; or, with
 * `data`, call contract `recipient` sending `amount` wei (possibly 0) with that call data, which only a
 * policy that names the contract and selector allows.
 */
export interface EthereumIntent {
  /** `ETH` or `erc20:<EIP-55 contract>`; always `ETH` for a contract call. */
  readonly asset: string;
  readonly recipient: string;
  readonly amount: bigint;
  /** Call data (hex, no 0x) of a contract call other than an ERC-20 transfer. */
  readonly data?: string;
}

export interface EthereumTransfer {
  readonly chainId: bigint;
  readonly nonce: bigint;
  readonly gasLimit: bigint;
  readonly fees: EthereumFees;
  readonly intent: EthereumIntent;
}

export interface PreparedEthereumTx {
  /** 0x-hex of the unsigned serialization. */
  readonly unsignedTx: string;
  /** keccak256 of the unsigned serialization: what the device signs. */
  readonly digest: Uint8Array;
  /** gasLimit × (maxFeePerGas or gasPrice): the most the transaction can pay in fees, wei. */
  readonly maxFee: bigint;
  readonly transfer: EthereumTransfer;
  /** The replay key of this transaction: its nonce. */
  readonly signOnceKey: string;
}

export const MIN_TRANSFER_GAS = 21_000n;
export const MAX_GAS_LIMIT = 30_000_000n;
const MAX_NONCE = (1n << 64n) - 2n; // EIP-2681
const SECP256K1_HALF_N = secp256k1.Point.CURVE().n >> 1n;
const ERC20_CONTRACT = createContract(ERC20);
const TRANSFER_SELECTOR = 'a9059cbb';
const ERC20_PREFIX = 'erc20:';

type AnyTx = InstanceType<typeof Transaction<'eip1559'>> | InstanceType<typeof Transaction<'legacy'>>;

/** `ETH`, or `erc20:` with the contract in EIP-55 form; anything else is refused. */
export function canonicalEthAsset(asset: string, field = 'asset'): string {
  if (asset === 'ETH') return asset;
  if (asset.toLowerCase().startsWith(ERC20_PREFIX)) return ERC20_PREFIX + assertEthAddress(asset.slice(ERC20_PREFIX.length), field);
  throw new ValidationError('unsupported_asset', `"${field}": expected ETH or erc20:<contract address> on an EVM chain, got "${asset.slice(0, 80)}"`);
}

function assertRange(value: bigint, field: string, min: bigint, max: bigint): void {
  if (value < min || value > max) throw new ValidationError('out_of_range', `"${field}" must be between ${min} and ${max}, got ${value}`);
}

function feePerGas(fees: EthereumFees): bigint {
  return fees.kind === 'eip1559' ? fees.maxFeePerGas : fees.gasPrice;
}

function validateTransfer(t: EthereumTransfer): void {
  assertRange(t.chainId, 'chainId', 1n, (1n << 64n) - 1n);
  assertRange(t.nonce, 'nonce', 0n, MAX_NONCE);
  assertRange(t.gasLimit, 'gasLimit', MIN_TRANSFER_GAS, MAX_GAS_LIMIT);
  if (t.fees.kind === 'eip1559') {
    assertRange(t.fees.maxFeePerGas, 'maxFeePerGas', 1n, MAX_UINT256);
    assertRange(t.fees.maxPriorityFeePerGas, 'maxPriorityFeePerGas', 0n, MAX_UINT256);
    if (t.fees.maxPriorityFeePerGas > t.fees.maxFeePerGas) {
      throw new ValidationError('out_of_range', `"maxPriorityFeePerGas" (${t.fees.maxPriorityFeePerGas}) must not exceed "maxFeePerGas" (${t.fees.maxFeePerGas})`);
    }
  } else {
    assertRange(t.fees.gasPrice, 'gasPrice', 1n, MAX_UINT256);
  }
  assertRange(t.intent.amount, 'amount', t.intent.data === undefined ? 1n : 0n, MAX_UINT256);
  if (t.gasLimit * feePerGas(t.fees) > MAX_UINT256) throw new ValidationError('out_of_range', 'the fee per gas × "gasLimit" overflows uint256');
}

/** The transaction-level `to`, `value` and `data` that carry an intent. */
function callOf(intent: EthereumIntent): { to: string; value: bigint; data: string } {
  if (intent.data !== undefined) return { to: intent.recipient, value: intent.amount, data: intent.data };
  if (intent.asset === 'ETH') return { to: intent.recipient, value: intent.amount, data: '' };
  const data = ERC20_CONTRACT.transfer.encodeInput({ to: intent.recipient, value: intent.amount });
  return { to: intent.asset.slice(ERC20_PREFIX.length), value: 0n, data: bytesToHex(data) };
}

function toTransaction(t: EthereumTransfer, signature?: { yParity: number; r: bigint; s: bigint }): AnyTx {
  const call = callOf(t.intent);
  const common = { chainId: t.chainId, nonce: t.nonce, gasLimit: t.gasLimit, to: call.to, value: call.value, data: call.data, ...(signature ?? {}) };
  if (t.fees.kind === 'eip1559') {
    return signature
      ? new Transaction('eip1559', { ...common, maxFeePerGas: t.fees.maxFeePerGas, maxPriorityFeePerGas: t.fees.maxPriorityFeePerGas, accessList: [] })
      : Transaction.prepare({ type: 'eip1559', ...common, maxFeePerGas: t.fees.maxFeePerGas, maxPriorityFeePerGas: t.fees.maxPriorityFeePerGas, accessList: [] }, false);
  }
  return signature
    ? new Transaction('legacy', { ...common, gasPrice: t.fees.gasPrice })
    : Transaction.prepare({ type: 'legacy', ...common, gasPrice: t.fees.gasPrice }, false);
}

function prepared(tx: AnyTx, transfer: EthereumTransfer): PreparedEthereumTx {
  const unsigned = tx.toBytes({ includeSignature: false });
  return {
    unsignedTx: '0x' + bytesToHex(unsigned),
    digest: keccak_256(unsigned),
    maxFee: transfer.gasLimit * feePerGas(transfer.fees),
    transfer,
    signOnceKey: `nonce:${transfer.nonce}`,
  };
}

export function buildEthereumTransfer(t: EthereumTransfer): PreparedEthereumTx {
  validateTransfer(t);
  const intent = { asset: canonicalEthAsset(t.intent.asset), recipient: assertEthAddress(t.intent.recipient, 'to'), amount: t.intent.amount };
  const transfer = { ...t, intent };
  let tx: AnyTx;
  try {
    tx = toTransaction(transfer);
  } catch (error) {
    throw new ValidationError('invalid_transaction', `the transaction cannot be built: ${error instanceof Error ? error.message : String(error)}`);
  }
  return prepared(tx, transfer);
}

/** Reads an ERC-20 transfer(address,uint256) call, or refuses it; re-encoding must give the same bytes. */
function readErc20Transfer(contract: string, data: string): EthereumIntent {
  const hex = data.replace(/^0x/, '').toLowerCase();
  if (!hex.startsWith(TRANSFER_SELECTOR)) {
    throw new ValidationError('unsupported_call', `"unsignedTx" calls selector 0x${hex.slice(0, 8)}; only ERC-20 transfer(address,uint256) (0xa9059cbb) is accepted`);
  }
  if (hex.length !== 8 + 128) throw new ValidationError('unsupported_call', '"unsignedTx" ERC-20 transfer data must be exactly 68 bytes');
  const recipientWord = hex.slice(8, 72);
  if (!recipientWord.startsWith('0'.repeat(24))) throw new ValidationError('unsupported_call', '"unsignedTx" ERC-20 recipient is not a clean address word');
  const intent: EthereumIntent = {
    asset: ERC20_PREFIX + assertEthAddress(contract, 'unsignedTx.to'),
    recipient: assertEthAddress('0x' + recipientWord.slice(24), 'unsignedTx recipient'),
    amount: BigInt('0x' + hex.slice(72)),
  };
  if (bytesToHex(ERC20_CONTRACT.transfer.encodeInput({ to: intent.recipient, value: intent.amount })) !== hex) {
    throw new ValidationError('unsupported_call', '"unsignedTx" ERC-20 call data is not in canonical ABI encoding');
  }
  return intent;
}

/**
 * Decodes an unsigned EIP-1559 or legacy EIP-155 transaction on the expected chain, whose
 * re-serialization is exactly the input: a native transfer, an ERC-20 transfer, or another contract
 * call (which the policy must allow by contract and selector).
 */
export function decodeEthereumUnsignedTx(hex: string, expectedChainId: bigint): PreparedEthereumTx {
  if (typeof hex !== 'string' || !/^0x(?:[0-9a-fA-F]{2})+$/.test(hex)) {
    throw new ValidationError('undecodable_transaction', '"unsignedTx" expected 0x-prefixed hex bytes');
  }
  const bytes = hexToBytes(hex.slice(2));
  const first = bytes[0] as number;
  if (first < 0xc0 && first !== 0x02) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" is a type 0x${first.toString(16).padStart(2, '0')} transaction; only EIP-1559 (type 2) and legacy EIP-155 are accepted`);
  }
  let tx: AnyTx;
  try {
    const decoded = Transaction.fromBytes(bytes, false);
    if (decoded.type !== 'eip1559' && decoded.type !== 'legacy') throw new Error(`type ${decoded.type}`);
    tx = decoded as AnyTx;
  } catch (error) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" cannot be decoded: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (tx.isSigned) throw new ValidationError('undecodable_transaction', '"unsignedTx" already carries a signature');
  const raw = tx.raw as Record<string, unknown> & { chainId?: bigint; nonce: bigint; gasLimit: bigint; to: string; value: bigint; data: string };
  if (raw.chainId === undefined) throw new ValidationError('wrong_chain', '"unsignedTx" has no chain id (pre-EIP-155 transactions are replayable and not accepted)');
  if (raw.chainId !== expectedChainId) throw new ValidationError('wrong_chain', `"unsignedTx" is for chain id ${raw.chainId}, not ${expectedChainId}`);
  if (tx.type === 'eip1559' && (raw.accessList as unknown[]).length > 0) {
    throw new ValidationError('unsupported_call', '"unsignedTx" carries an access list; only plain transfers are accepted');
  }
  if (typeof raw.to !== 'string' || raw.to === '' || raw.to === '0x') {
    throw new ValidationError('unsupported_call', '"unsignedTx" has no destination (contract creation is not accepted)');
  }
  const data = raw.data.replace(/^0x/, '').toLowerCase();
  let intent: EthereumIntent;
  if (data === '') {
    intent = { asset: 'ETH', recipient: assertEthAddress(raw.to, 'unsignedTx.to'), amount: raw.value };
  } else if (data.startsWith(TRANSFER_SELECTOR)) {
    if (raw.value !== 0n) throw new ValidationError('unsupported_call', '"unsignedTx" sends ETH together with an ERC-20 transfer');
    intent = readErc20Transfer(raw.to, data);
  } else {
    if (data.length < 8) throw new ValidationError('unsupported_call', '"unsignedTx" call data is shorter than a 4-byte selector');
    // Any other call: contract, selector, value and call data here; its arguments are decoded by ABI
    // in adapter.ts (contract-call.ts), and the policy decides.
    intent = { asset: 'ETH', recipient: assertEthAddress(raw.to, 'unsignedTx.to'), amount: raw.value, data };
  }
  const fees: EthereumFees =
    tx.type === 'eip1559'
      ? { kind: 'eip1559', maxFeePerGas: raw.maxFeePerGas as bigint, maxPriorityFeePerGas: raw.maxPriorityFeePerGas as bigint }
      : { kind: 'legacy', gasPrice: raw.gasPrice as bigint };
  const transfer: EthereumTransfer = { chainId: raw.chainId, nonce: raw.nonce, gasLimit: raw.gasLimit, fees, intent };
  validateTransfer(transfer);
  const result = prepared(toTransaction(transfer), transfer);
  if (result.unsignedTx.toLowerCase() !== hex.toLowerCase()) {
    throw new ValidationError('undecodable_transaction', '"unsignedTx" is not in canonical encoding (it does not re-serialize to the same bytes)');
  }
  return result;
}

/**
 * Attaches a device signature (r || s, recovery id) and checks it: low S, and the signature must
 * recover to the pool's key (`signer.publicKey`, whose address is `signer.address`). Anything else is
 * refused, never broadcast.
 */
export function assembleEthereumSigned(
  p: PreparedEthereumTx,
  signature: { readonly signature: Uint8Array; readonly recovery: 0 | 1 | null },
  signer: { readonly address: string; readonly publicKey: string },
): { signedTx: string; txHash: string } {
  const mismatch = (why: string) => new CustodyError('internal', 'signature_mismatch', `device signature rejected: ${why}`);
  if (signature.signature.length !== 64 || signature.recovery === null) throw mismatch('expected 64 bytes r||s and a recovery id');
  const r = BigInt('0x' + bytesToHex(signature.signature.subarray(0, 32)));
  const s = BigInt('0x' + bytesToHex(signature.signature.subarray(32)));
  if (r === 0n || s === 0n || s > SECP256K1_HALF_N) throw mismatch('s is not in the lower half of the curve order');
  let signed: AnyTx;
  try {
    if (addressOfKey(signer.publicKey).toLowerCase() !== signer.address.toLowerCase()) throw new Error('the pool key is not the pool address');
    if (!recoversTo(p.digest, signature.signature, signature.recovery, signer.publicKey)) throw new Error('the signature does not recover to the pool key');
    signed = toTransaction(p.transfer, { yParity: signature.recovery, r, s });
  } catch (error) {
    throw mismatch(error instanceof Error ? error.message : String(error));
  }
  const bytes = signed.toBytes({ includeSignature: true });
  return { signedTx: '0x' + bytesToHex(bytes), txHash: '0x' + bytesToHex(keccak_256(bytes)) };
}
