/**
 * The approval message of a withdrawal (SPEC section 5): RFC 8785 canonical JSON naming the request,
 * pool, chain, asset, amount, destination, fee cap, digest, policy version and decision.
 */
import { APPROVAL_KIND, APPROVAL_VERSION, canonicalApprovalMessage } from '../../common/approval-message.js';
import type { ApprovalDecision, Withdrawal } from '../domain/withdrawal.js';

export type ApprovalSubject = Pick<Withdrawal, 'id' | 'poolId' | 'chain' | 'asset' | 'amount' | 'to' | 'maxFee' | 'digest' | 'policyVersion' | 'contractCall'>;

export function approvalMessageFor(w: ApprovalSubject, decision: ApprovalDecision): string {
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
    ...(w.contractCall !== null ? { call: w.contractCall.selector } : {}),
  });
}
