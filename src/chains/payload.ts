/**
 * One entry point per chain family for what the gateway signs (SPEC rule 3, decode what you sign):
 * turn a withdrawal request into the exact unsigned transaction and its digest, and turn the device's
 * signature into the broadcastable transaction. Pure: no I/O.
 */
import { CustodyError, ValidationError } from '../../common/errors.js';
import { bitcoinNetwork, evmChainId, type ChainFamily, type ParsedChainId } from '../../common/chain-id.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { assertBitcoinAddress, poolAddressType } from '../../common/chains/bitcoin/address.js';
import { assembleBitcoinSigned, buildBitcoinTransfer, decodeBitcoinPsbt, type BitcoinPool } from '../../common/chains/bitcoin/transaction.js';
import { parseAmount, parsePositiveAmount } from '../../common/amount.js';
import type { DeviceSignature, SignatureScheme } from '../devices/signing-device.js';
import type { ContractCall } from '../domain/withdrawal.js';
import { assertEthAddress } from '../../common/chains/ethereum/address.js';
import { assertSolanaAddress } from '../../common/chains/solana/address.js';
import { assembleSolanaSigned, buildSolanaTransfer, decodeSolanaUnsignedTx } from '../../common/chains/solana/transaction.js';
import { decodeTransaction } from '../../common/chains/adapters.js';
import type { DecodedCall } from '../../common/chains/decoded-transaction.js';
import {
  assembleEthereumSigned,
  buildEthereumTransfer,
  canonicalEthAsset,
  decodeEthereumUnsignedTx,
  type EthereumFees,
} from '../../common/chains/ethereum/transaction.js';

/** The chain-specific fields of a withdrawal request body (SPEC section 9), as received. */
export interface PayloadRequest {
  readonly asset: string;
  readonly amount?: string | undefined;
  readonly to?: string | undefined;
  readonly nonce?: string | undefined;
  readonly gasLimit?: string | undefined;
  readonly maxFeePerGas?: string | undefined;
  readonly maxPriorityFeePerGas?: string | undefined;
  /** Legacy (EIP-155) transactions: the gas price instead of the EIP-1559 fee fields. */
  readonly gasPrice?: string | undefined;
  /** Bitcoin: the pool's outputs to spend, and the fee rate in sat/vB. */
  readonly utxos?: readonly { readonly txid: string; readonly vout: number; readonly value: string }[] | undefined;
  readonly feeRate?: string | undefined;
  /** Solana: base58 of a recent block hash, which bounds the transaction's life (about 150 blocks). */
  readonly recentBlockhash?: string | undefined;
  /** Ethereum serialized unsigned transaction (hex), Bitcoin PSBT (base64), or Solana wire transaction (base64). */
  readonly unsignedTx?: string | undefined;
}

/** The chain-specific request fields each family takes; a field of another family is refused, not ignored. */
const FAMILY_FIELDS = {
  eip155: ['nonce', 'gasLimit', 'maxFeePerGas', 'maxPriorityFeePerGas', 'gasPrice'],
  bip122: ['utxos', 'feeRate'],
  solana: ['recentBlockhash'],
} as const satisfies Record<ChainFamily, readonly (keyof PayloadRequest)[]>;
const FAMILY_NAMES: Record<ChainFamily, string> = { eip155: 'Ethereum', bip122: 'Bitcoin', solana: 'Solana' };

function refuseForeignFields(chain: ParsedChainId, request: PayloadRequest): void {
  for (const [family, fields] of Object.entries(FAMILY_FIELDS) as [ChainFamily, readonly (keyof PayloadRequest)[]][]) {
    if (family === chain.family) continue;
    const given = fields.find((f) => request[f] !== undefined);
    if (given) throw new ValidationError('conflicting_fields', `"${given}" is a ${FAMILY_NAMES[family]} field; ${chain.id} withdrawals take ${FAMILY_FIELDS[chain.family].map((f) => `"${f}"`).join(', ')}`);
  }
  if (request.unsignedTx !== undefined) {
    const given = FAMILY_FIELDS[chain.family].find((f) => request[f] !== undefined);
    if (given) throw new ValidationError('conflicting_fields', `"${given}" must not be given with "unsignedTx": the transaction already says it`);
  }
}

export interface PreparedPayload {
  readonly asset: string;
  readonly amount: bigint;
  /** Destination decoded from the transaction, canonical form. */
  readonly to: string;
  readonly unsignedTx: string;
  readonly digest: Uint8Array;
  /** Fee cap of the transaction in the chain's native base units. */
  readonly maxFee: bigint;
  readonly signOnceKey: string;
  /** The contract call the transaction makes, other than an ERC-20 transfer; null for transfers. */
  readonly contractCall: ContractCall | null;
  /** The same call as decoded for the approval message (function and named arguments where known). */
  readonly call: DecodedCall | null;
  /** Shared resources only one live request may spend (Bitcoin: `utxo:<txid>:<vout>`). */
  readonly claims: readonly string[];
  readonly scheme: SignatureScheme;
}

/** The pool's key on the chain: its public key (hex) and the address it holds coins at. */
export interface PoolKeyRef {
  readonly publicKey: string;
  readonly address: string;
}

export interface SignedPayload {
  readonly signedTx: string;
  readonly txHash: string;
}

function requireField(value: string | undefined, field: string): string {
  if (value === undefined) throw new ValidationError('missing_field', `"${field}" is required`);
  return value;
}

/**
 * The payload of a transaction as the shared decoder reads it (the same one the approver's client and
 * the device use): whatever built the transaction, what is recorded, checked and approved is its decoding.
 */
function decoded(chain: ParsedChainId, unsignedTx: string, key: PoolKeyRef, functions: readonly string[] = []): PreparedPayload {
  const d = decodeTransaction(chain.id, unsignedTx, hexToBytes(key.publicKey), { functions });
  if (d.to === key.address) throw new ValidationError('invalid_destination', `"to" is the pool's own address ${key.address}`);
  return {
    asset: d.asset,
    amount: d.amount,
    to: d.to,
    unsignedTx,
    digest: d.digest,
    maxFee: d.maxFee,
    signOnceKey: d.signOnceKey,
    contractCall: d.call === null ? null : { contract: d.call.contract, selector: d.call.selector },
    call: d.call,
    claims: d.claims,
    scheme: d.scheme,
  };
}

function ethereumFees(request: PayloadRequest): EthereumFees {
  if (request.gasPrice !== undefined) {
    if (request.maxFeePerGas !== undefined || request.maxPriorityFeePerGas !== undefined) {
      throw new ValidationError('conflicting_fields', 'give either "gasPrice" (legacy) or "maxFeePerGas" and "maxPriorityFeePerGas" (EIP-1559), not both');
    }
    return { kind: 'legacy', gasPrice: parseAmount(request.gasPrice, 'gasPrice') };
  }
  return {
    kind: 'eip1559',
    maxFeePerGas: parseAmount(requireField(request.maxFeePerGas, 'maxFeePerGas'), 'maxFeePerGas'),
    maxPriorityFeePerGas: parseAmount(requireField(request.maxPriorityFeePerGas, 'maxPriorityFeePerGas'), 'maxPriorityFeePerGas'),
  };
}

function prepareEthereum(chain: ParsedChainId, request: PayloadRequest, key: PoolKeyRef, functions: readonly string[]): PreparedPayload {
  const asset = canonicalEthAsset(request.asset);
  const chainId = evmChainId(chain);
  if (request.unsignedTx !== undefined) {
    const prepared = decoded(chain, request.unsignedTx, key, functions);
    // The requester's description must match what the transaction really does.
    if (prepared.asset !== asset) throw new ValidationError('payload_mismatch', `"asset" is ${asset} but the transaction moves ${prepared.asset}`);
    if (request.amount !== undefined && parseAmount(request.amount, 'amount') !== prepared.amount) {
      throw new ValidationError('payload_mismatch', `"amount" ${request.amount} differs from the transaction's amount ${prepared.amount}`);
    }
    if (request.to !== undefined && assertEthAddress(request.to, 'to').toLowerCase() !== prepared.to.toLowerCase()) {
      throw new ValidationError('payload_mismatch', `"to" differs from the transaction's recipient ${prepared.to}`);
    }
    return prepared;
  }
  const built = buildEthereumTransfer({
      chainId,
      nonce: parseAmount(requireField(request.nonce, 'nonce'), 'nonce'),
      gasLimit: parseAmount(requireField(request.gasLimit, 'gasLimit'), 'gasLimit'),
      fees: ethereumFees(request),
      intent: {
        asset,
        recipient: assertEthAddress(requireField(request.to, 'to'), 'to'),
        amount: parsePositiveAmount(requireField(request.amount, 'amount'), 'amount'),
      },
  });
  return decoded(chain, built.unsignedTx, key);
}

function bitcoinPool(chain: ParsedChainId, key: PoolKeyRef): BitcoinPool {
  const publicKey = hexToBytes(key.publicKey);
  const type = poolAddressType(publicKey, key.address, bitcoinNetwork(chain));
  if (type === null) throw new CustodyError('internal', 'key_mismatch', `the pool's address ${key.address} on ${chain.id} is not an address of its key; check the key store`);
  return { publicKey, type };
}

function bitcoinScheme(pool: BitcoinPool): SignatureScheme {
  return pool.type === 'p2tr' ? 'schnorr-bip340' : 'ecdsa-secp256k1';
}

/** Decodes a Bitcoin transaction of the pool and checks it spends from the pool's own address type. */
function decodedBitcoin(chain: ParsedChainId, unsignedTx: string, key: PoolKeyRef, pool: BitcoinPool): PreparedPayload {
  const prepared = decoded(chain, unsignedTx, key);
  if (prepared.scheme !== bitcoinScheme(pool)) {
    throw new ValidationError('foreign_input', `"unsignedTx" does not spend the pool's ${pool.type.toUpperCase()} address ${key.address}`);
  }
  return prepared;
}

function prepareBitcoin(chain: ParsedChainId, request: PayloadRequest, key: PoolKeyRef, pool: BitcoinPool): PreparedPayload {
  if (request.asset !== 'BTC') throw new ValidationError('unsupported_asset', `"asset": only BTC is supported on ${chain.id}, got "${request.asset.slice(0, 80)}"`);
  const network = bitcoinNetwork(chain);
  if (request.unsignedTx !== undefined) {
    const prepared = decodedBitcoin(chain, request.unsignedTx, key, pool);
    if (request.amount !== undefined && parseAmount(request.amount, 'amount') !== prepared.amount) {
      throw new ValidationError('payload_mismatch', `"amount" ${request.amount} differs from the PSBT's payment ${prepared.amount}`);
    }
    if (request.to !== undefined && assertBitcoinAddress(request.to, network, 'to') !== prepared.to) {
      throw new ValidationError('payload_mismatch', `"to" differs from the PSBT's destination ${prepared.to}`);
    }
    return prepared;
  }
  const utxos = request.utxos;
  if (utxos === undefined) throw new ValidationError('missing_field', '"utxos" is required');
  const built = buildBitcoinTransfer({
      network,
      pool,
      utxos: utxos.map((u, i) => ({ txid: u.txid.toLowerCase(), vout: u.vout, value: parsePositiveAmount(u.value, `utxos[${i}].value`) })),
      to: requireField(request.to, 'to'),
      amount: parsePositiveAmount(requireField(request.amount, 'amount'), 'amount'),
      feeRate: parsePositiveAmount(requireField(request.feeRate, 'feeRate'), 'feeRate'),
  });
  return decodedBitcoin(chain, built.psbt, key, pool);
}

function prepareSolana(chain: ParsedChainId, request: PayloadRequest, key: PoolKeyRef): PreparedPayload {
  if (request.asset !== 'SOL') throw new ValidationError('unsupported_asset', `"asset": only SOL is supported on ${chain.id}, got "${request.asset.slice(0, 80)}"`);
  if (request.unsignedTx !== undefined) {
    const prepared = decoded(chain, request.unsignedTx, key);
    if (request.amount !== undefined && parseAmount(request.amount, 'amount') !== prepared.amount) {
      throw new ValidationError('payload_mismatch', `"amount" ${request.amount} differs from the transaction's ${prepared.amount} lamports`);
    }
    if (request.to !== undefined && assertSolanaAddress(request.to, 'to') !== prepared.to) {
      throw new ValidationError('payload_mismatch', `"to" differs from the transaction's recipient ${prepared.to}`);
    }
    return prepared;
  }
  const built = buildSolanaTransfer({
      from: key.address,
      to: requireField(request.to, 'to'),
      lamports: parsePositiveAmount(requireField(request.amount, 'amount'), 'amount'),
      recentBlockhash: requireField(request.recentBlockhash, 'recentBlockhash'),
  });
  return decoded(chain, built.unsignedTx, key);
}

/**
 * Builds (or decodes) the exact transaction a withdrawal request asks for, spending from the pool's key.
 * `functions` are the contract functions the pool's policy declares, by which a call is decoded.
 */
export function preparePayload(chain: ParsedChainId, request: PayloadRequest, key: PoolKeyRef, functions: readonly string[] = []): PreparedPayload {
  refuseForeignFields(chain, request);
  switch (chain.family) {
    case 'eip155':
      return prepareEthereum(chain, request, key, functions);
    case 'bip122':
      return prepareBitcoin(chain, request, key, bitcoinPool(chain, key));
    case 'solana':
      return prepareSolana(chain, request, key);
  }
}

/**
 * What the device signs for a stored transaction (the hash(es) the approvals' digest commits to, and
 * how), and how its signature is then attached and checked. The transaction is decoded once for both.
 */
export interface SigningPlan {
  readonly payload: Uint8Array;
  readonly digest: Uint8Array;
  readonly scheme: SignatureScheme;
  /** Attaches the device's signature(s) and checks that the pool's key signed; throws otherwise. */
  assemble(signature: DeviceSignature): SignedPayload;
}

export function signingPlan(chain: ParsedChainId, unsignedTx: string, key: PoolKeyRef): SigningPlan {
  switch (chain.family) {
    case 'eip155': {
      const p = decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain));
      return { payload: p.digest, digest: p.digest, scheme: 'ecdsa-secp256k1', assemble: (signature) => assembleEthereumSigned(p, signature, key) };
    }
    case 'bip122': {
      const pool = bitcoinPool(chain, key);
      const network = bitcoinNetwork(chain);
      const p = decodeBitcoinPsbt(unsignedTx, network, pool);
      return { payload: concatBytes(...p.sighashes), digest: p.digest, scheme: bitcoinScheme(pool), assemble: (signature) => assembleBitcoinSigned(p, pool, network, signature.parts) };
    }
    case 'solana': {
      const p = decodeSolanaUnsignedTx(unsignedTx, key.address);
      return { payload: p.message, digest: p.digest, scheme: 'ed25519', assemble: (signature) => assembleSolanaSigned(p, signature.signature, hexToBytes(key.publicKey)) };
    }
  }
}

/**
 * What a replacement (fee bump, SPEC rule 5) changes besides its fees, or null when nothing: the
 * chain, nonce, destination, value and call data must be those of the transaction it replaces. Only
 * Ethereum transactions are replaced; on other chains the answer names the chain.
 */
export function replacementDifference(chain: ParsedChainId, original: string, replacement: string): string | null {
  if (chain.family !== 'eip155') return `only Ethereum transactions are replaced by a fee bump, not ${chain.id} ones`;
  const a = decodeEthereumUnsignedTx(original, evmChainId(chain)).transfer;
  const b = decodeEthereumUnsignedTx(replacement, evmChainId(chain)).transfer;
  const fields: [string, string, string][] = [
    ['chain id', a.chainId.toString(), b.chainId.toString()],
    ['nonce', a.nonce.toString(), b.nonce.toString()],
    ['asset', a.intent.asset, b.intent.asset],
    ['destination', a.intent.recipient.toLowerCase(), b.intent.recipient.toLowerCase()],
    ['value', a.intent.amount.toString(), b.intent.amount.toString()],
    ['call data', a.intent.data ?? '', b.intent.data ?? ''],
    ['transaction type', a.fees.kind, b.fees.kind],
  ];
  const changed = fields.find(([, x, y]) => x !== y);
  return changed ? `its ${changed[0]} differs from the replaced transaction's` : null;
}
