/**
 * Solana withdrawals from a pool's Ed25519 key: one System Program transfer of SOL, with the pool as
 * fee payer and only signer, and a recent blockhash the requester supplies. Build from request fields,
 * decode a requester's unsigned transaction (accepting only that one shape, re-encoded to the same
 * bytes), and attach the device's signature. Message compilation and the wire format are @solana/kit's,
 * the transfer instruction @solana-program/system's; nothing here serializes by hand.
 *
 * The device signs the message bytes with Ed25519; the approvals name `digest` = sha256(message).
 */
import {
  appendTransactionMessageInstruction,
  blockhash as asBlockhash,
  compileTransaction,
  createNoopSigner,
  createTransactionMessage,
  decompileTransactionMessage,
  getBase64EncodedWireTransaction,
  getCompiledTransactionMessageDecoder,
  getSignatureFromTransaction,
  getTransactionDecoder,
  pipe,
  setTransactionMessageFeePayer,
  setTransactionMessageLifetimeUsingBlockhash,
  address as asAddress,
  type Address,
  type SignatureBytes,
  type Transaction,
} from '@solana/kit';
import { SYSTEM_PROGRAM_ADDRESS, SystemInstruction, getTransferSolInstruction, identifySystemInstruction, parseTransferSolInstruction } from '@solana-program/system';
import { ed25519 } from '@noble/curves/ed25519.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { base64 } from '@scure/base';
import { CustodyError, ValidationError } from '../../errors.js';
import { assertSolanaAddress } from './address.js';

export interface SolanaTransfer {
  /** The pool's address: fee payer, signer and source of the lamports. */
  readonly from: string;
  readonly to: string;
  readonly lamports: bigint;
  /** Base58 of a recent block hash (32 bytes): the transaction is valid for about 150 blocks after it. */
  readonly recentBlockhash: string;
}

export interface PreparedSolanaTx {
  /** The unsigned wire transaction (signature slot zeroed), base64. */
  readonly unsignedTx: string;
  /** The message the pool key signs. */
  readonly message: Uint8Array;
  /** sha256 of the message: what the approvals name. */
  readonly digest: Uint8Array;
  readonly transfer: SolanaTransfer;
  /** The fee the transaction pays, lamports: the base fee of its one signature (no priority fee). */
  readonly fee: bigint;
}

/** Lamports per signature (the network's base fee); the transaction adds no compute-budget price. */
export const LAMPORTS_PER_SIGNATURE = 5000n;
/** The largest transaction the network accepts (one IPv6 packet's payload). */
export const MAX_TRANSACTION_BYTES = 1232;
const MAX_LAMPORTS = (1n << 64n) - 1n;

function assertBlockhash(value: unknown): string {
  try {
    assertSolanaAddress(value, 'recentBlockhash');
  } catch {
    throw new ValidationError('invalid_blockhash', '"recentBlockhash" expected the base58 encoding of a 32-byte block hash');
  }
  return value as string;
}

function prepared(tx: Transaction, transfer: SolanaTransfer): PreparedSolanaTx {
  const message = new Uint8Array(tx.messageBytes);
  return {
    unsignedTx: getBase64EncodedWireTransaction(tx),
    message,
    digest: sha256(message),
    transfer,
    fee: LAMPORTS_PER_SIGNATURE,
  };
}

function compile(t: SolanaTransfer): Transaction {
  const from = asAddress(t.from);
  return compileTransaction(
    pipe(
      createTransactionMessage({ version: 'legacy' }),
      (m) => setTransactionMessageFeePayer(from, m),
      // lastValidBlockHeight is not part of the message; the requester's blockhash alone bounds its life.
      (m) => setTransactionMessageLifetimeUsingBlockhash({ blockhash: asBlockhash(t.recentBlockhash), lastValidBlockHeight: 0n }, m),
      (m) => appendTransactionMessageInstruction(getTransferSolInstruction({ source: createNoopSigner(from), destination: asAddress(t.to), amount: t.lamports }), m),
    ),
  );
}

export function buildSolanaTransfer(input: SolanaTransfer): PreparedSolanaTx {
  const from = assertSolanaAddress(input.from, 'pool address');
  const to = assertSolanaAddress(input.to, 'to');
  if (to === from) throw new ValidationError('invalid_destination', '"to" is the pool\'s own address');
  if (input.lamports < 1n || input.lamports > MAX_LAMPORTS) throw new ValidationError('out_of_range', `"amount" must be 1 to ${MAX_LAMPORTS} lamports`);
  const transfer = { from, to, lamports: input.lamports, recentBlockhash: assertBlockhash(input.recentBlockhash) };
  return prepared(compile(transfer), transfer);
}

function refuse(why: string): never {
  throw new ValidationError('unsupported_transaction', `"unsignedTx" ${why}; only one System Program SOL transfer from the pool, signed by the pool alone, is accepted`);
}

/**
 * Decodes a requester's unsigned transaction (base64 wire format) and accepts it only if it is exactly
 * what `buildSolanaTransfer` makes from its fields: a legacy message with the pool as fee payer and only
 * signer, a recent blockhash, and one transfer from the pool. Anything else is refused. `expectedPool`
 * null: the pool is the transaction's one signer (an approver's client, which has only the transaction).
 */
export function decodeSolanaUnsignedTx(wireBase64: string, expectedPool: string | null): PreparedSolanaTx {
  let tx: Transaction;
  let bytes: Uint8Array;
  try {
    if (typeof wireBase64 !== 'string' || wireBase64.length > 4 * MAX_TRANSACTION_BYTES) throw new Error(`larger than ${MAX_TRANSACTION_BYTES} bytes`);
    bytes = base64.decode(wireBase64);
    if (bytes.length > MAX_TRANSACTION_BYTES) throw new Error(`larger than ${MAX_TRANSACTION_BYTES} bytes`);
    tx = getTransactionDecoder().decode(bytes);
  } catch (error) {
    throw new ValidationError('undecodable_transaction', `"unsignedTx" is not a Solana transaction (base64 wire format): ${error instanceof Error ? error.message : String(error)}`);
  }
  const signers = Object.entries(tx.signatures);
  const poolAddress = expectedPool ?? signers[0]?.[0];
  if (signers.length !== 1 || poolAddress === undefined || signers[0]?.[0] !== poolAddress) refuse('must be signed by the pool alone');
  if (signers[0]?.[1] !== null && signers[0]?.[1]?.some((b) => b !== 0)) throw new ValidationError('undecodable_transaction', '"unsignedTx" already carries a signature');

  let transfer: SolanaTransfer;
  try {
    const compiled = getCompiledTransactionMessageDecoder().decode(tx.messageBytes);
    if (compiled.version !== 'legacy') refuse(`is a version ${String(compiled.version)} message`);
    const message = decompileTransactionMessage(compiled);
    if (message.feePayer.address !== poolAddress) refuse('has another fee payer');
    if (!('blockhash' in message.lifetimeConstraint)) refuse('uses a durable nonce');
    if (message.instructions.length !== 1) refuse(`has ${message.instructions.length} instructions`);
    const instruction = message.instructions[0] as (typeof message.instructions)[number];
    if (instruction.programAddress !== SYSTEM_PROGRAM_ADDRESS) refuse(`calls program ${instruction.programAddress}`);
    if (identifySystemInstruction(instruction as Parameters<typeof identifySystemInstruction>[0]) !== SystemInstruction.TransferSol) refuse('is another System Program instruction');
    const parsed = parseTransferSolInstruction(instruction as Parameters<typeof parseTransferSolInstruction>[0]);
    if (parsed.accounts.source.address !== poolAddress) refuse('moves lamports from another account');
    transfer = { from: poolAddress, to: parsed.accounts.destination.address, lamports: parsed.data.amount, recentBlockhash: message.lifetimeConstraint.blockhash };
  } catch (error) {
    if (error instanceof CustodyError) throw error;
    throw new ValidationError('undecodable_transaction', `"unsignedTx" message cannot be read: ${error instanceof Error ? error.message : String(error)}`);
  }
  const result = buildSolanaTransfer(transfer);
  if (result.unsignedTx !== base64.encode(bytes)) refuse('is not in canonical form (it does not re-encode to the same bytes)');
  return result;
}

/** Attaches the device's Ed25519 signature after checking it against the pool key and the message. */
export function assembleSolanaSigned(p: PreparedSolanaTx, signature: Uint8Array, poolPublicKey: Uint8Array): { signedTx: string; txHash: string } {
  let ok = false;
  try {
    ok = signature.length === 64 && ed25519.verify(signature, p.message, poolPublicKey, { zip215: false });
  } catch {
    ok = false;
  }
  if (!ok) throw new CustodyError('internal', 'signature_mismatch', 'device signature rejected: it does not verify against the pool key over the message');
  const unsigned = compile(p.transfer);
  const signed: Transaction = { ...unsigned, signatures: { ...unsigned.signatures, [p.transfer.from as Address]: signature as SignatureBytes } };
  return { signedTx: getBase64EncodedWireTransaction(signed), txHash: getSignatureFromTransaction(signed) };
}
