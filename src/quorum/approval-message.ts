/**
 * The approval message of a withdrawal (SPEC section 5): RFC 8785 canonical JSON, version 2, naming
 * the request, pool, chain, policy version and decision, the exact unsigned transaction, and what the
 * shared decoder reads from it (asset, amount, destination, fee cap, digest, contract call); a
 * replacement names the request it replaces, an internal transfer its destination pool, and every
 * message says whether the request is time-locked.
 */
import { APPROVAL_KIND, APPROVAL_VERSION, canonicalApprovalMessage } from '../../common/approval-message.js';
import type { DecodedCall } from '../../common/chains/decoded-transaction.js';
import { formatDuration } from '../../common/duration.js';
import type { ApprovalDecision, Withdrawal } from '../domain/withdrawal.js';

export type ApprovalSubject = Pick<Withdrawal, 'id' | 'poolId' | 'chain' | 'asset' | 'amount' | 'to' | 'maxFee' | 'digest' | 'policyVersion' | 'unsignedTx'>;

export interface ApprovalContext {
  /** The decoded contract call, when the transaction makes one. */
  readonly call: DecodedCall | null;
  /** The time lock the policy puts on this request once approved, in ms; null when none. */
  readonly timelockMs: number | null;
  readonly replaces?: string | undefined;
  readonly destinationPool?: string | undefined;
}

export function approvalMessageFor(w: ApprovalSubject, context: ApprovalContext, decision: ApprovalDecision): string {
  return canonicalApprovalMessage({
    kind: APPROVAL_KIND,
    version: APPROVAL_VERSION,
    requestId: w.id,
    pool: w.poolId,
    chain: w.chain,
    asset: w.asset,
    amount: w.amount.toString(),
    to: w.to,
    maxFee: w.maxFee.toString(),
    digest: w.digest.toLowerCase().replace(/^0x/, ''),
    policyVersion: w.policyVersion,
    decision,
    unsignedTx: w.unsignedTx,
    timelock: context.timelockMs === null ? 'none' : formatDuration(context.timelockMs),
    ...(context.call !== null ? { call: context.call } : {}),
    ...(context.replaces !== undefined ? { replaces: context.replaces } : {}),
    ...(context.destinationPool !== undefined ? { destinationPool: context.destinationPool } : {}),
  });
}
