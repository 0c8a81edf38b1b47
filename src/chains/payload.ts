/**
 * One entry point per chain family for what the gateway signs (SPEC rule 3, decode what you sign):
 * turn a withdrawal request into the exact unsigned transaction and its digest, and turn the device's
 * signature into the broadcastable transaction. Pure: no I/O.
 */
import { ValidationError } from '../domain/errors.js';
import { bitcoinNetwork, evmChainId, nativeAsset, type ParsedChainId } from '../domain/chain-id.js';
import { bytesToHex, concatBytes, hexToBytes } from '@noble/hashes/utils.js';
import { assertBitcoinAddress } from './bitcoin/address.js';
import { assembleBitcoinSigned, buildBitcoinTransfer, decodeBitcoinPsbt, type PreparedBitcoinTx } from './bitcoin/transaction.js';
import { parseAmount, parsePositiveAmount } from '../domain/amount.js';
import type { DeviceSignature, SignatureScheme } from '../devices/signing-device.js';
import { assertEthAddress } from './ethereum/address.js';
import {
  assembleEthereumSigned,
  buildEthereumTransfer,
  canonicalEthAsset,
  decodeEthereumUnsignedTx,
  type EthereumFees,
  type PreparedEthereumTx,
} from './ethereum/transaction.js';

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
  /** Ethereum serialized unsigned transaction (hex), or Bitcoin PSBT (base64). */
  readonly unsignedTx?: string | undefined;
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
  /** Shared resources only one live request may spend (Bitcoin: `utxo:<txid>:<vout>`). */
  readonly claims: readonly string[];
  readonly scheme: SignatureScheme;
}

export interface SignedPayload {
  readonly signedTx: string;
  readonly txHash: string;
}

function requireField(value: string | undefined, field: string): string {
  if (value === undefined) throw new ValidationError('missing_field', `"${field}" is required`);
  return value;
}

function fromEthereum(prepared: PreparedEthereumTx): PreparedPayload {
  return {
    asset: prepared.transfer.intent.asset,
    amount: prepared.transfer.intent.amount,
    to: prepared.transfer.intent.recipient,
    unsignedTx: prepared.unsignedTx,
    digest: prepared.digest,
    maxFee: prepared.maxFee,
    signOnceKey: prepared.signOnceKey,
    claims: [],
    scheme: 'ecdsa-secp256k1',
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

function prepareEthereum(chain: ParsedChainId, request: PayloadRequest): PreparedPayload {
  const asset = canonicalEthAsset(request.asset);
  const chainId = evmChainId(chain);
  if (request.unsignedTx !== undefined) {
    const onlyTxFields = ['nonce', 'gasLimit', 'maxFeePerGas', 'maxPriorityFeePerGas', 'gasPrice'] as const;
    for (const f of onlyTxFields) {
      if (request[f] !== undefined) throw new ValidationError('conflicting_fields', `"${f}" must not be given with "unsignedTx": the transaction already says it`);
    }
    const prepared = fromEthereum(decodeEthereumUnsignedTx(request.unsignedTx, chainId));
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
  return fromEthereum(
    buildEthereumTransfer({
      chainId,
      nonce: parseAmount(requireField(request.nonce, 'nonce'), 'nonce'),
      gasLimit: parseAmount(requireField(request.gasLimit, 'gasLimit'), 'gasLimit'),
      fees: ethereumFees(request),
      intent: {
        asset,
        recipient: assertEthAddress(requireField(request.to, 'to'), 'to'),
        amount: parsePositiveAmount(requireField(request.amount, 'amount'), 'amount'),
      },
    }),
  );
}

function fromBitcoin(prepared: PreparedBitcoinTx): PreparedPayload {
  return {
    asset: 'BTC',
    amount: prepared.amount,
    to: prepared.to,
    unsignedTx: prepared.psbt,
    digest: prepared.digest,
    maxFee: prepared.fee,
    // The same transaction twice is one request; different ones collide on their inputs' claims.
    signOnceKey: `tx:${bytesToHex(prepared.digest)}`,
    claims: prepared.outpoints.map((o) => `utxo:${o}`),
    scheme: 'ecdsa-secp256k1',
  };
}

function prepareBitcoin(chain: ParsedChainId, request: PayloadRequest, poolPublicKey: Uint8Array): PreparedPayload {
  if (request.asset !== 'BTC') throw new ValidationError('unsupported_asset', `"asset": only BTC is supported on ${chain.id}, got "${request.asset.slice(0, 80)}"`);
  const network = bitcoinNetwork(chain);
  for (const f of ['nonce', 'gasLimit', 'maxFeePerGas', 'maxPriorityFeePerGas', 'gasPrice'] as const) {
    if (request[f] !== undefined) throw new ValidationError('conflicting_fields', `"${f}" is an Ethereum field; Bitcoin withdrawals take "utxos" and "feeRate"`);
  }
  if (request.unsignedTx !== undefined) {
    if (request.utxos !== undefined || request.feeRate !== undefined) {
      throw new ValidationError('conflicting_fields', '"utxos" and "feeRate" must not be given with "unsignedTx": the PSBT already says them');
    }
    const prepared = fromBitcoin(decodeBitcoinPsbt(request.unsignedTx, network, poolPublicKey));
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
  return fromBitcoin(
    buildBitcoinTransfer({
      network,
      poolPublicKey,
      utxos: utxos.map((u, i) => ({ txid: u.txid.toLowerCase(), vout: u.vout, value: parsePositiveAmount(u.value, `utxos[${i}].value`) })),
      to: requireField(request.to, 'to'),
      amount: parsePositiveAmount(requireField(request.amount, 'amount'), 'amount'),
      feeRate: parsePositiveAmount(requireField(request.feeRate, 'feeRate'), 'feeRate'),
    }),
  );
}

/** Builds (or decodes) the exact transaction a withdrawal request asks for, spending from the pool's key. */
export function preparePayload(chain: ParsedChainId, request: PayloadRequest, poolPublicKeyHex: string): PreparedPayload {
  switch (chain.family) {
    case 'eip155':
      if (request.utxos !== undefined || request.feeRate !== undefined) {
        throw new ValidationError('conflicting_fields', '"utxos" and "feeRate" are Bitcoin fields');
      }
      return prepareEthereum(chain, request);
    case 'bip122':
      return prepareBitcoin(chain, request, hexToBytes(poolPublicKeyHex));
    case 'solana':
      throw new ValidationError(
        'chain_not_supported',
        `withdrawals on ${chain.id} are not supported by this version of the gateway; the pool's ${nativeAsset(chain.family)} key exists and can be used once support lands`,
      );
  }
}

/** What the device signs for a stored transaction: the hash(es) the approvals' digest commits to. */
export function signingPayload(chain: ParsedChainId, unsignedTx: string, poolPublicKeyHex: string): { payload: Uint8Array; digest: Uint8Array } {
  switch (chain.family) {
    case 'eip155': {
      const p = decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain));
      return { payload: p.digest, digest: p.digest };
    }
    case 'bip122': {
      const p = decodeBitcoinPsbt(unsignedTx, bitcoinNetwork(chain), hexToBytes(poolPublicKeyHex));
      return { payload: concatBytes(...p.sighashes), digest: p.digest };
    }
    case 'solana':
      throw new ValidationError('chain_not_supported', `signing on ${chain.id} is not supported by this version of the gateway`);
  }
}

/** Attaches the device's signature(s) to the stored unsigned transaction and checks who signed it. */
export function assembleSignedPayload(
  chain: ParsedChainId,
  unsignedTx: string,
  signature: DeviceSignature,
  signer: { readonly address: string; readonly publicKey: string },
): SignedPayload {
  switch (chain.family) {
    case 'eip155':
      return assembleEthereumSigned(decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain)), signature, signer.address);
    case 'bip122': {
      const publicKey = hexToBytes(signer.publicKey);
      return assembleBitcoinSigned(decodeBitcoinPsbt(unsignedTx, bitcoinNetwork(chain), publicKey), publicKey, signature.parts);
    }
    case 'solana':
      throw new ValidationError('chain_not_supported', `signing on ${chain.id} is not supported by this version of the gateway`);
  }
}

/** The signature scheme a pool key on this chain signs with. */
export function preparePayloadScheme(chain: ParsedChainId): SignatureScheme {
  return chain.family === 'solana' ? 'ed25519' : 'ecdsa-secp256k1';
}
