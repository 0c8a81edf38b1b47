/**
 * One entry point per chain family for what the gateway signs (SPEC rule 3, decode what you sign):
 * turn a withdrawal request into the exact unsigned transaction and its digest, and turn the device's
 * signature into the broadcastable transaction. Pure: no I/O.
 */
import { ValidationError } from '../domain/errors.js';
import { evmChainId, nativeAsset, type ParsedChainId } from '../domain/chain-id.js';
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
  readonly feeAsset: string;
  readonly signOnceKey: string;
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
    feeAsset: 'ETH',
    signOnceKey: prepared.signOnceKey,
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

/** Builds (or decodes) the exact transaction a withdrawal request asks for. */
export function preparePayload(chain: ParsedChainId, request: PayloadRequest): PreparedPayload {
  switch (chain.family) {
    case 'eip155':
      return prepareEthereum(chain, request);
    case 'bip122':
    case 'solana':
      throw new ValidationError(
        'chain_not_supported',
        `withdrawals on ${chain.id} are not supported by this version of the gateway (Ethereum only); the pool's ${nativeAsset(chain.family)} key exists and can be used once support lands`,
      );
  }
}

/** Attaches the device's signature to the stored unsigned transaction and checks who signed it. */
export function assembleSignedPayload(
  chain: ParsedChainId,
  unsignedTx: string,
  signature: DeviceSignature,
  expectedSigner: string,
): SignedPayload {
  switch (chain.family) {
    case 'eip155':
      return assembleEthereumSigned(decodeEthereumUnsignedTx(unsignedTx, evmChainId(chain)), signature, expectedSigner);
    case 'bip122':
    case 'solana':
      throw new ValidationError('chain_not_supported', `signing on ${chain.id} is not supported by this version of the gateway`);
  }
}

/** The signature scheme a pool key on this chain signs with. */
export function preparePayloadScheme(chain: ParsedChainId): SignatureScheme {
  return chain.family === 'solana' ? 'ed25519' : 'ecdsa-secp256k1';
}
