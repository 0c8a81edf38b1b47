/**
 * Use case: a requester submits a withdrawal (SPEC sections 4 and 6).
 *
 * validate -> decode the exact transaction -> idempotency -> (one transaction: policy on the decoded
 * transaction with current usage -> record the request and its audit entry). A denied request is
 * recorded too, with every reason, so the audit trail shows what was asked and why it was refused.
 */
import { randomUUID } from 'node:crypto';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseChainId, type ParsedChainId } from '../../common/chain-id.js';
import type { Pool, PoolKey } from '../domain/pool.js';
import type { StoreTx } from '../store/store.js';
import { ConflictError, ValidationError } from '../../common/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Withdrawal } from '../domain/withdrawal.js';
import { preparePayload, replacementDifference, type PayloadRequest, type PreparedPayload } from '../chains/payload.js';
import type { PolicyDecision } from '../../common/policy/evaluate.js';
import { approvalMessageFor } from '../quorum/approval-message.js';
import { policyOf, requirePool, type ServiceContext } from './context.js';
import { declaredFunctions } from '../../common/policy/contract-call-rules.js';
import { decideNow, poolOfAddress } from './usage.js';

export interface WithdrawalRequest extends PayloadRequest {
  readonly pool: string;
  readonly chain: string;
  /** Id of a signed withdrawal this one replaces (a fee bump of the same transfer and nonce). */
  readonly replaces?: string | undefined;
}

/**
 * The replacement flow (SPEC rule 5): a second transaction for a (pool, chain, nonce) is signed only
 * as an explicit replacement of a signed one: the same transfer and nonce with a higher fee cap, going
 * through policy and quorum again. Its sign-once key names the replaced request, so each signed request
 * has at most one live replacement.
 */
async function replacementKey(tx: StoreTx, request: WithdrawalRequest, payload: PreparedPayload): Promise<string> {
  if (request.replaces === undefined) return payload.signOnceKey;
  const original = await tx.getWithdrawal(request.replaces);
  if (!original) throw new ValidationError('replaced_not_found', `"replaces": withdrawal ${request.replaces} does not exist`);
  const same = original.poolId === request.pool && original.chain === request.chain && original.asset === payload.asset && original.amount === payload.amount && original.to === payload.to;
  if (!same) throw new ValidationError('not_a_replacement', '"replaces": a replacement must move the same asset and amount to the same destination from the same pool and chain');
  const difference = replacementDifference(parseChainId(request.chain, 'chain'), original.unsignedTx, payload.unsignedTx);
  if (difference !== null) throw new ValidationError('not_a_replacement', `"replaces": a replacement may change only the fees; ${difference}`);
  if (original.state !== 'signed') throw new ConflictError('not_replaceable', `"replaces": withdrawal ${original.id} is "${original.state}"; only a signed transaction is replaced (cancel an unsigned one instead)`);
  if (!original.signOnceKey.startsWith(payload.signOnceKey + ':') && original.signOnceKey !== payload.signOnceKey) {
    throw new ValidationError('not_a_replacement', `"replaces": withdrawal ${original.id} used ${original.signOnceKey.split(':r:')[0]}, not ${payload.signOnceKey}`);
  }
  if (payload.maxFee <= original.maxFee) {
    throw new ValidationError('not_a_fee_bump', `"replaces": the fee cap ${payload.maxFee} must be higher than the replaced transaction's ${original.maxFee}`);
  }
  return `${payload.signOnceKey}:r:${original.id}`;
}

/**
 * The contract functions the pool's policy declares, by which the gateway decodes a call (read only
 * for a requester's own `unsignedTx`: a transaction the gateway builds makes no call).
 */
async function callFunctions(ctx: ServiceContext, request: WithdrawalRequest): Promise<readonly string[]> {
  if (request.unsignedTx === undefined) return [];
  return ctx.store.read(async (tx) => {
    const pool = await requirePool(tx, request.pool);
    return declaredFunctions(await policyOf(tx, pool.id, pool.policyVersion));
  });
}

/** The pool's key on the request's chain (the payload spends from it), or why there is none. */
async function poolKey(ctx: ServiceContext, poolId: string, chain: ParsedChainId): Promise<PoolKey> {
  return ctx.store.read(async (tx) => {
    const pool = await requirePool(tx, poolId);
    if (!pool.chains.includes(chain.id)) {
      throw new ValidationError('chain_not_in_pool', `pool "${pool.id}" holds no key on ${chain.id} (it holds ${pool.chains.join(', ')})`);
    }
    const key = await tx.getKey(pool.id, chain.id);
    if (!key) throw new ValidationError('chain_not_in_pool', `pool "${pool.id}" has no key on ${chain.id}; run its key ceremony first`);
    return key;
  });
}

/** The pool's decision on a decoded payload, with the usage of this moment (read in the caller's transaction). */
async function decide(tx: StoreTx, poolId: string, chain: ParsedChainId, payload: PreparedPayload, now: number): Promise<{ pool: Pool; decision: PolicyDecision }> {
  const pool = await requirePool(tx, poolId);
  const policy = await policyOf(tx, pool.id, pool.policyVersion);
  return { pool, decision: await decideNow(tx, pool, policy, { chain: chain.id, ...payload }, now) };
}

export interface Evaluation {
  readonly pool: string;
  readonly chain: string;
  readonly asset: string;
  readonly amount: bigint;
  readonly to: string;
  readonly maxFee: bigint;
  readonly digest: string;
  readonly policyVersion: number;
  readonly decision: PolicyDecision;
}

/** What the policy would decide for this request now, without creating anything (POST /v1/pools/{pool}/evaluate). */
export async function evaluateRequest(ctx: ServiceContext, request: WithdrawalRequest): Promise<Evaluation> {
  const chain = parseChainId(request.chain, 'chain');
  const payload = preparePayload(chain, request, await poolKey(ctx, request.pool, chain), await callFunctions(ctx, request));
  return ctx.store.transaction(async (tx) => {
    const { pool, decision } = await decide(tx, request.pool, chain, payload, ctx.now());
    return {
      pool: pool.id,
      chain: chain.id,
      asset: payload.asset,
      amount: payload.amount,
      to: payload.to,
      maxFee: payload.maxFee,
      digest: bytesToHex(payload.digest),
      policyVersion: pool.policyVersion,
      decision,
    };
  });
}

export interface SubmitResult {
  readonly withdrawal: Withdrawal;
  /** False when an earlier request with the same Idempotency-Key was returned. */
  readonly created: boolean;
}

export async function submitWithdrawal(
  ctx: ServiceContext,
  requester: Principal,
  request: WithdrawalRequest,
  idempotencyKey: string | null,
): Promise<SubmitResult> {
  const chain = parseChainId(request.chain, 'chain');
  const payload = preparePayload(chain, request, await poolKey(ctx, request.pool, chain), await callFunctions(ctx, request));
  const digest = bytesToHex(payload.digest);

  return ctx.store.transaction(async (tx) => {
    if (idempotencyKey !== null) {
      const earlier = await tx.withdrawalByIdempotencyKey(requester.id, idempotencyKey);
      if (earlier) {
        if (earlier.poolId !== request.pool || earlier.chain !== chain.id || earlier.unsignedTx !== payload.unsignedTx) {
          throw new ConflictError(
            'idempotency_key_reused',
            `Idempotency-Key "${idempotencyKey}" was already used for a different request (${earlier.id}); use a new key for a new withdrawal`,
          );
        }
        return { withdrawal: earlier, created: false };
      }
    }

    const now = ctx.now();
    const { pool, decision } = await decide(tx, request.pool, chain, payload, now);
    const signOnceKey = await replacementKey(tx, request, payload);

    const id = randomUUID();
    const base = {
      id,
      poolId: pool.id,
      chain: chain.id,
      asset: payload.asset,
      amount: payload.amount,
      to: payload.to,
      maxFee: payload.maxFee,
      digest,
      policyVersion: pool.policyVersion,
      contractCall: payload.contractCall,
      unsignedTx: payload.unsignedTx,
    };
    const withdrawal: Withdrawal = {
      ...base,
      requesterId: requester.id,
      idempotencyKey,
      signOnceKey,
      requiredApprovals: decision.requiredApprovals,
      state: decision.allowed ? 'pending_approval' : 'denied',
      reasons: decision.reasons,
      approvalMessage: approvalMessageFor(
        base,
        {
          call: payload.call,
          timelockMs: decision.timelockUntil === null ? null : decision.timelockUntil - now,
          replaces: request.replaces,
          destinationPool: (await poolOfAddress(tx, chain.id, payload.to)) ?? undefined,
        },
        'approve',
      ),
      signedTx: null,
      txHash: null,
      createdAt: now,
      updatedAt: now,
      committedAt: null,
      notBefore: null,
      expiresAt: decision.expiresAt,
    };
    await tx.insertWithdrawal(withdrawal, payload.claims);
    await tx.appendAudit(
      {
        type: decision.allowed ? 'withdrawal.submitted' : 'withdrawal.denied',
        actor: requester.name,
        subject: `withdrawal:${id}`,
        data: {
          pool: pool.id,
          chain: chain.id,
          asset: payload.asset,
          amount: payload.amount.toString(),
          to: payload.to,
          maxFee: payload.maxFee.toString(),
          digest,
          unsignedTx: payload.unsignedTx,
          policyVersion: pool.policyVersion,
          requiredApprovals: decision.requiredApprovals,
          reasons: decision.reasons,
          idempotencyKey,
          replaces: request.replaces ?? null,
        },
      },
      now,
    );
    ctx.log.info({ withdrawal: id, pool: pool.id, state: withdrawal.state }, 'withdrawal submitted');
    return { withdrawal, created: true };
  });
}
