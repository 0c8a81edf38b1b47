/**
 * Real transactions of each chain family, built with the product's builders
 * (common/chains/<family>/transaction.ts), and approval messages about them (SPEC section 5, version 2):
 * honest ones, whose fields are the builder's inputs and outputs, and forged ones, for the tests of an
 * approver's client that must decode `unsignedTx` itself.
 */
import { canonicalize } from 'json-canonicalize';
import * as web3 from '@solana/web3.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { Transaction } from 'micro-eth-signer';
import { buildEthereumTransfer, type PreparedEthereumTx } from '../../common/chains/ethereum/transaction.js';
import { buildBitcoinTransfer, type PreparedBitcoinTx } from '../../common/chains/bitcoin/transaction.js';
import { buildSolanaTransfer, type PreparedSolanaTx } from '../../common/chains/solana/transaction.js';
import { solanaAddressFromPublicKey } from '../../common/chains/solana/address.js';
import { decodeTransaction } from '../../common/chains/adapters.js';

export const SEPOLIA = 'eip155:11155111';
export const BTC_TESTNET = 'bip122:000000000933ea01ad0ee984209779ba';
export const SOLANA_DEVNET = 'solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1';

export const ETH_TO = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
export const ETH_OTHER = '0x71C7656EC7ab88b098defB751B7401B5f6d8976F';
export const BTC_TO = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
export const SOL_TO = 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys';
export const SOL_BLOCKHASH = 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52';
/** The selector of ERC-20 approve(address,uint256). */
export const APPROVE_SELECTOR = '0x095ea7b3';

const BTC_POOL_KEY = secp256k1.getPublicKey(hexToBytes('11'.repeat(32)), true);
const SOL_POOL = solanaAddressFromPublicKey(ed25519.getPublicKey(hexToBytes('22'.repeat(32))));

export function ethTransfer(over: { amount?: bigint; to?: string; nonce?: bigint; maxFeePerGas?: bigint } = {}): PreparedEthereumTx {
  return buildEthereumTransfer({
    chainId: 11155111n,
    nonce: over.nonce ?? 7n,
    gasLimit: 21_000n,
    fees: { kind: 'eip1559', maxFeePerGas: over.maxFeePerGas ?? 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n },
    intent: { asset: 'ETH', recipient: over.to ?? ETH_TO, amount: over.amount ?? 500_000_000_000_000_000n },
  });
}

/** A contract function no reader knows unless told: the approval message names it in `call.function`. */
export const DEPOSIT_FUNCTION = 'deposit(address to, uint256 amount)';
export const DEPOSIT_SELECTOR = '0x' + bytesToHex(keccak_256(utf8ToBytes('deposit(address,uint256)')).subarray(0, 4));

/** An EIP-1559 transaction calling deposit(ETH_TO, 1000) on contract ETH_OTHER, sending no ETH. */
export function ethContractCall(): string {
  const data = DEPOSIT_SELECTOR.slice(2) + ETH_TO.slice(2).toLowerCase().padStart(64, '0') + (1000).toString(16).padStart(64, '0');
  const tx = Transaction.prepare(
    { type: 'eip1559', chainId: 11155111n, nonce: 8n, gasLimit: 60_000n, maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, to: ETH_OTHER, value: 0n, data, accessList: [] },
    false,
  );
  return '0x' + bytesToHex(tx.toBytes({ includeSignature: false }));
}

export function btcTransfer(): PreparedBitcoinTx {
  return buildBitcoinTransfer({
    network: 'testnet',
    pool: { publicKey: BTC_POOL_KEY, type: 'p2wpkh' },
    utxos: [{ txid: '3f4a0b8f1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f7a8b9c0d1e2f3a4b5c6d7e8f', vout: 0, value: 3_000_000n }],
    to: BTC_TO,
    amount: 1_000_000n,
    feeRate: 10n,
  });
}

export function solTransfer(): PreparedSolanaTx {
  return buildSolanaTransfer({ from: SOL_POOL, to: SOL_TO, lamports: 1_500_000_000n, recentBlockhash: SOL_BLOCKHASH });
}

/** The same SOL transfer with a second (memo) instruction after it, as web3.js builds it. */
export function solTransferWithMemo(): string {
  const tx = new web3.Transaction({ feePayer: new web3.PublicKey(SOL_POOL), recentBlockhash: SOL_BLOCKHASH });
  tx.add(web3.SystemProgram.transfer({ fromPubkey: new web3.PublicKey(SOL_POOL), toPubkey: new web3.PublicKey(SOL_TO), lamports: 1_500_000_000n }));
  tx.add(new web3.TransactionInstruction({ programId: new web3.PublicKey('MemoSq4gqABAXKb96qnH8TysNcWxMyWCqXgDLGmfcHr'), keys: [], data: Buffer.from('hi') }));
  return tx.serialize({ requireAllSignatures: false, verifySignatures: false }).toString('base64');
}

export type MessageFields = Record<string, unknown>;

/** The canonical text of whatever fields are given (forged messages included: no validation here). */
export function messageText(fields: MessageFields): string {
  return canonicalize(fields);
}

function base(requestId: string, chain: string): MessageFields {
  return { kind: 'custody.approval', version: 2, requestId, pool: 'client-a', chain, policyVersion: 1, decision: 'approve', timelock: 'none' };
}

/** An honest message about an ETH transfer: its fields are what the builder was given and computed. */
export function ethMessage(requestId: string, p: PreparedEthereumTx = ethTransfer()): MessageFields {
  return {
    ...base(requestId, SEPOLIA),
    asset: 'ETH',
    amount: p.transfer.intent.amount.toString(),
    to: p.transfer.intent.recipient,
    maxFee: p.maxFee.toString(),
    digest: bytesToHex(p.digest),
    unsignedTx: p.unsignedTx,
  };
}

export function btcMessage(requestId: string, p: PreparedBitcoinTx = btcTransfer()): MessageFields {
  return { ...base(requestId, BTC_TESTNET), asset: 'BTC', amount: p.amount.toString(), to: p.to, maxFee: p.fee.toString(), digest: bytesToHex(p.digest), unsignedTx: p.psbt };
}

export function solMessage(requestId: string, p: PreparedSolanaTx = solTransfer()): MessageFields {
  return {
    ...base(requestId, SOLANA_DEVNET),
    asset: 'SOL',
    amount: p.transfer.lamports.toString(),
    to: p.transfer.to,
    maxFee: p.fee.toString(),
    digest: bytesToHex(p.digest),
    unsignedTx: p.unsignedTx,
  };
}

/**
 * An honest message about the contract call of `ethContractCall`, as the gateway publishes it: every
 * field is what the shared decoder says, told the function's signature (as the gateway is by its
 * policy), so `call` carries the function and its named arguments where the decoder reads ABI.
 */
export function ethCallMessage(requestId: string): MessageFields {
  const unsignedTx = ethContractCall();
  const decoded = decodeTransaction(SEPOLIA, unsignedTx, null, { functions: [DEPOSIT_FUNCTION] });
  return {
    ...base(requestId, SEPOLIA),
    asset: decoded.asset,
    amount: decoded.amount.toString(),
    to: decoded.to,
    maxFee: decoded.maxFee.toString(),
    digest: bytesToHex(decoded.digest),
    unsignedTx,
    call: decoded.call,
  };
}

/** What a gateway's GET /v1/withdrawals/{id} answers for a message (a compromised gateway repeats its own forgery). */
export function withdrawalView(fields: MessageFields): Record<string, unknown> {
  const text = messageText(fields);
  return {
    id: fields.requestId,
    pool: fields.pool,
    chain: fields.chain,
    asset: fields.asset,
    amount: fields.amount,
    to: fields.to,
    maxFee: fields.maxFee,
    digest: fields.digest,
    unsignedTx: fields.unsignedTx,
    policyVersion: fields.policyVersion,
    state: 'pending_approval',
    reasons: [],
    approvals: [],
    approvalMessage: text,
  };
}
