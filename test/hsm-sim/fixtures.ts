/**
 * Shared test material for the simulator (SPEC section 5): the RFC 8032 approver keys of the example
 * plan, real unsigned transactions for keys a test's simulator generated (built with the builders of
 * common/chains/<family>/transaction.ts: EIP-1559, BIP-174 PSBT, Solana wire format), version 2
 * approval messages (RFC 8785) naming them, and signed approval evidence in both shapes: the gateway
 * client's (hex) and the wire protocol's (bytes).
 *
 * A message's fields come from what the builder was asked to make, not from the decoder the device
 * uses, so a test that signs proves the device's decoding agrees with the builder's.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { base58 } from '@scure/base';
import { canonicalApprovalMessage, type ApprovalMessage } from '../../common/approval-message.js';
import type { DecodedCall } from '../../common/chains/decoded-transaction.js';
import { buildEthereumTransfer } from '../../common/chains/ethereum/transaction.js';
import { buildBitcoinTransfer, type Utxo } from '../../common/chains/bitcoin/transaction.js';
import { poolOutput, type BitcoinAddressType } from '../../common/chains/bitcoin/address.js';
import { buildSolanaTransfer } from '../../common/chains/solana/transaction.js';
import type { ApprovalRecord } from '../../common/sim-protocol.js';
import type { ApprovalEvidence } from '../../src/devices/signing-device.js';

export const SECRETS: Readonly<Record<string, string>> = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'demo-approver-keys.json'), 'utf8'),
).keys;

export const publicKeyOf = (who: string): string => bytesToHex(ed25519.getPublicKey(hexToBytes(SECRETS[who] as string)));
export const APPROVERS = ['alice', 'bob', 'carol'].map((id) => ({ id, publicKey: publicKeyOf(id) }));

export const SEPOLIA = 'eip155:11155111';
export const BITCOIN_REGTEST = 'bip122:0f9188f13cb7b2c71f2a335e3a4fc328';
export const SOLANA_MAINNET = 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp';

/** Destinations nobody here holds a key for. */
export const ETH_DESTINATION = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
export const BTC_DESTINATION = poolOutput(secp256k1.getPublicKey(hexToBytes('22'.repeat(32)), true), 'p2wpkh', 'regtest').address;
export const SOL_DESTINATION = 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys';
export const SOL_BLOCKHASH = 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52';

/** 30 gwei per gas: 21,000 gas cost at most 630,000 gwei. */
export const ETH_FEES = { kind: 'eip1559', maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n } as const;

/** A real unsigned transaction and what it does, as the builder that made it says. */
export interface TestTransaction {
  readonly chain: string;
  readonly unsignedTx: string;
  readonly asset: string;
  readonly amount: bigint;
  readonly to: string;
  readonly maxFee: bigint;
  readonly digest: Uint8Array;
  readonly call?: DecodedCall;
}

/** An EIP-1559 ETH transfer on Sepolia (the sender is whoever signs it). */
export function ethereumTx(over: { nonce?: bigint; to?: string; amount?: bigint } = {}): TestTransaction {
  const p = buildEthereumTransfer({
    chainId: 11155111n,
    nonce: over.nonce ?? 0n,
    gasLimit: 21_000n,
    fees: ETH_FEES,
    intent: { asset: 'ETH', recipient: over.to ?? ETH_DESTINATION, amount: over.amount ?? 1000n },
  });
  return { chain: SEPOLIA, unsignedTx: p.unsignedTx, asset: 'ETH', amount: p.transfer.intent.amount, to: p.transfer.intent.recipient, maxFee: p.maxFee, digest: p.digest };
}

/** A funding output of the pool, as a PSBT input spends it. */
export const utxo = (value: bigint): Utxo => ({ txid: bytesToHex(randomBytes(32)), vout: 1, value });

/** A PSBT on regtest spending the pool key's outputs (P2WPKH unless told), paying `to` with change back to the pool. */
export function bitcoinTx(publicKeyHex: string, over: { utxos?: readonly Utxo[]; to?: string; amount?: bigint; type?: BitcoinAddressType } = {}): TestTransaction {
  const p = buildBitcoinTransfer({
    network: 'regtest',
    pool: { publicKey: hexToBytes(publicKeyHex), type: over.type ?? 'p2wpkh' },
    utxos: over.utxos ?? [utxo(3_000_000n), utxo(2_500_000n)],
    to: over.to ?? BTC_DESTINATION,
    amount: over.amount ?? 4_000_000n,
    feeRate: 10n,
  });
  return { chain: BITCOIN_REGTEST, unsignedTx: p.psbt, asset: 'BTC', amount: p.amount, to: p.to, maxFee: p.fee, digest: p.digest };
}

/** A System Program transfer from the pool key's address, the pool paying the fee. */
export function solanaTx(publicKeyHex: string, over: { to?: string; lamports?: bigint; recentBlockhash?: string } = {}): TestTransaction {
  const p = buildSolanaTransfer({
    from: base58.encode(hexToBytes(publicKeyHex)),
    to: over.to ?? SOL_DESTINATION,
    lamports: over.lamports ?? 1_500_000_000n,
    recentBlockhash: over.recentBlockhash ?? SOL_BLOCKHASH,
  });
  return { chain: SOLANA_MAINNET, unsignedTx: p.unsignedTx, asset: 'SOL', amount: p.transfer.lamports, to: p.transfer.to, maxFee: p.fee, digest: p.digest };
}

/** The version 2 approval message an honest gateway publishes for `tx` (pool-a unless told). */
export function messageFor(tx: TestTransaction, over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  return {
    kind: 'custody.approval',
    version: 2,
    requestId: randomUUID(),
    pool: 'pool-a',
    chain: tx.chain,
    asset: tx.asset,
    amount: tx.amount.toString(),
    to: tx.to,
    maxFee: tx.maxFee.toString(),
    digest: bytesToHex(tx.digest),
    policyVersion: 1,
    decision: 'approve',
    unsignedTx: tx.unsignedTx,
    timelock: 'none',
    ...(tx.call === undefined ? {} : { call: tx.call }),
    ...over,
  };
}

/** `signer`'s Ed25519 signature over the UTF-8 bytes of `text`. */
export function signText(text: string, signer: string): Uint8Array {
  return ed25519.sign(new TextEncoder().encode(text), hexToBytes(SECRETS[signer] as string));
}

/** `who` signs the canonical text of `message`, as the gateway client carries it (hex). */
export function evidence(who: string, message: ApprovalMessage, signer = who): ApprovalEvidence {
  const text = canonicalApprovalMessage(message);
  return { publicKey: publicKeyOf(who), message: text, signature: bytesToHex(signText(text, signer)) };
}

/** `who` signs `message` (an object, canonicalized, or a text taken as it is), as the wire protocol carries it (bytes). */
export function approval(who: string, message: ApprovalMessage | string, signer = who): ApprovalRecord {
  const text = typeof message === 'string' ? message : canonicalApprovalMessage(message);
  return { publicKey: hexToBytes(publicKeyOf(who)), message: text, signature: signText(text, signer) };
}
