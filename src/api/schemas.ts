/**
 * Request schemas of the HTTP API (zod). Unknown fields and wrong types are refused with the field
 * named; the same schemas feed the OpenAPI document (src/api/openapi.ts), so it stays true to the code.
 * Amounts are decimal strings here; their range is checked where they become bigints.
 */
import { z } from 'zod';
import { ValidationError } from '../../common/errors.js';
import { APPROVER_ID, POOL_ID } from '../domain/pool.js';
import { policyDocumentSchema } from '../../common/policy/document.js';
import { WITHDRAWAL_STATES } from '../domain/withdrawal.js';

const decimal = z.string().max(80).regex(/^(0|[1-9][0-9]*)$/, 'expected a non-negative integer as a decimal string');

export const withdrawalBodySchema = z.strictObject({
  pool: z.string().regex(POOL_ID, 'expected a pool id (lowercase slug)'),
  chain: z.string().min(3).max(80).describe('CAIP-2 chain id, e.g. eip155:11155111'),
  asset: z.string().min(1).max(80).describe('ETH or erc20:<contract> on EVM chains, BTC on Bitcoin, SOL on Solana'),
  amount: decimal.optional().describe('base units (wei, satoshi, lamport); required unless unsignedTx is given'),
  to: z.string().min(1).max(128).optional().describe('destination address; required unless unsignedTx is given'),
  nonce: decimal.optional(),
  gasLimit: decimal.optional(),
  maxFeePerGas: decimal.optional(),
  maxPriorityFeePerGas: decimal.optional(),
  gasPrice: decimal.optional().describe('legacy (EIP-155) transactions, instead of maxFeePerGas and maxPriorityFeePerGas'),
  replaces: z
    .string()
    .regex(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/, 'expected a withdrawal id')
    .optional()
    .describe('id of a signed withdrawal this one replaces: same transfer and nonce, higher fee cap; approved again'),
  utxos: z
    .array(
      z.strictObject({
        txid: z.string().regex(/^[0-9a-fA-F]{64}$/, 'expected a 32-byte transaction id in hex'),
        vout: z.number().int().min(0).max(0xffffffff),
        value: decimal,
      }),
    )
    .min(1)
    .max(256)
    .optional()
    .describe('Bitcoin: the pool outputs to spend'),
  feeRate: decimal.optional().describe('Bitcoin: fee rate in sat/vB'),
  recentBlockhash: z.string().min(32).max(44).optional().describe('Solana: base58 of a recent block hash; the transaction is valid for about 150 blocks after it'),
  unsignedTx: z
    .string()
    .min(2)
    .max(200_000)
    .optional()
    .describe('an unsigned transaction the gateway decodes instead of building one: Ethereum serialized hex, Bitcoin PSBT base64, or Solana wire transaction base64'),
});
export type WithdrawalBody = z.infer<typeof withdrawalBodySchema>;

export const approvalBodySchema = z.strictObject({
  signature: z.string().regex(/^(0x)?(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/, 'expected a 64-byte Ed25519 or 65-byte EIP-191 signature in hex'),
  decision: z.enum(['approve', 'reject']),
});
export type ApprovalBody = z.infer<typeof approvalBodySchema>;

export const freezeBodySchema = z.strictObject({
  reason: z.string().max(500).optional(),
  /** The calling admin's signature over the pool's freezeMessage: the device then freezes the pool too. */
  signature: z.string().regex(/^(0x)?(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/, 'expected a 64-byte Ed25519 or 65-byte EIP-191 signature in hex').optional(),
});

export const withdrawalListQuerySchema = z.strictObject({
  pool: z.string().regex(POOL_ID).optional(),
  state: z.enum(WITHDRAWAL_STATES).optional(),
  limit: z.string().regex(/^[1-9][0-9]{0,2}$/).optional(),
  offset: z.string().regex(/^(0|[1-9][0-9]{0,8})$/).optional(),
});

export const auditQuerySchema = z.strictObject({
  after: z.string().regex(/^(0|[1-9][0-9]{0,15})$/).optional(),
  limit: z.string().regex(/^[1-9][0-9]{0,3}$/).optional(),
});

export const IDEMPOTENCY_KEY = /^[A-Za-z0-9._:-]{1,128}$/;
export const WITHDRAWAL_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** Parses with a schema; the error names every field at fault. */
export function parseWith<S extends z.ZodType>(schema: S, value: unknown, where: 'body' | 'query'): z.infer<S> {
  if (where === 'body' && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw new ValidationError('invalid_body', 'the request body must be a JSON object (Content-Type: application/json)');
  }
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const errors = result.error.issues.map((issue) => ({
    field: issue.path.length > 0 ? issue.path.join('.') : where,
    message: issue.code === 'unrecognized_keys' ? `unknown field(s): ${issue.keys.join(', ')}` : issue.message,
  }));
  const first = errors[0];
  throw new ValidationError(`invalid_${where}`, `"${first?.field}": ${first?.message}`, { details: { errors } });
}

export const policyProposalSchema = z.strictObject({ policy: policyDocumentSchema });

export const attestControlSchema = z.strictObject({
  challenge: z.string().min(1).max(4096).describe('the text every key of the pool signs in its chain\'s message format, once the admin quorum approves'),
});

export const approversProposalSchema = z.strictObject({
  add: z
    .array(
      z.strictObject({
        id: z.string().regex(APPROVER_ID, 'expected an approver id'),
        publicKey: z.string().regex(/^(?:[0-9a-fA-F]{64}|0[23][0-9a-fA-F]{64})$/, 'expected a 32-byte Ed25519 public key, or a 33-byte compressed secp256k1 key of a hardware wallet (EIP-191), in hex'),
      }),
    )
    .max(64)
    .optional(),
  remove: z.array(z.string().regex(APPROVER_ID)).max(64).optional(),
});

export const emptyBodySchema = z.strictObject({});

export const proposalListQuerySchema = z.strictObject({
  pool: z.string().regex(POOL_ID).optional(),
  state: z.enum(['pending', 'applied', 'rejected', 'failed']).optional(),
  limit: z.string().regex(/^[1-9][0-9]{0,2}$/).optional(),
});
