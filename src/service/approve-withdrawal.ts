/**
 * Use case: an approver approves or rejects a withdrawal (SPEC sections 4 and 5, rules 2 and 4).
 *
 * The approver signs the request's approval message (with the decision they post) with their own
 * Ed25519 key. The gateway checks the signature, that the approver belongs to the pool, is not the
 * requester and has not voted, then records the vote with its audit entry. The vote that completes
 * the quorum re-evaluates the policy with the usage of that moment, in the same transaction, commits
 * the amount and claims the request for signing; the gateway then asks the device by itself.
 */
import { createHash } from 'node:crypto';
import { AuthError, ConflictError, ValidationError } from '../../common/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Approval, ApprovalDecision, Withdrawal } from '../domain/withdrawal.js';
import { withDecision } from '../../common/approval-message.js';
import { assertSignatureHex, verifyApproverSignature } from '../quorum/approver-signature.js';
import { checkApproval, tally } from '../quorum/count.js';
import { policyOf, requirePool, requireWithdrawal, type ServiceContext } from './context.js';
import { announceQuorum, claimInTx, isClaim, releaseClaimed, type ClaimResult } from './release-signature.js';
import { decideNow } from './usage.js';

export interface ApprovalInput {
  readonly signature: string;
  readonly decision: ApprovalDecision;
}

export async function approveWithdrawal(
  ctx: ServiceContext,
  approver: Principal,
  withdrawalId: string,
  input: ApprovalInput,
): Promise<Withdrawal> {
  const signature = assertSignatureHex(input.signature, 'signature');

  const decided = await ctx.store.transaction(async (tx): Promise<ClaimResult> => {
    const w = await requireWithdrawal(tx, withdrawalId);
    if (w.state !== 'pending_approval') {
      throw new ConflictError('not_pending', `withdrawal ${w.id} is "${w.state}", not "pending_approval": it takes no more approvals`);
    }
    const pool = await requirePool(tx, w.poolId);
    const requester = await tx.principalById(w.requesterId);
    const existing = await tx.approvalsOf(w.id);
    const refusal = checkApproval({
      approverId: approver.name,
      requesterName: requester?.name ?? '',
      poolApprovers: pool.approvers,
      existing,
    });
    if (refusal) {
      if (refusal.code === 'duplicate_approval') throw new ConflictError(refusal.code, refusal.message);
      throw new AuthError('forbidden', refusal.code, refusal.message);
    }
    const key = await tx.getApprover(approver.name);
    if (!key) throw new AuthError('forbidden', 'not_pool_approver', `"${approver.name}" has no enrolled approval key`);

    const message = withDecision(w.approvalMessage, input.decision);
    if (!verifyApproverSignature(key.publicKey, message, signature)) {
      throw new ValidationError(
        'bad_approval_signature',
        `the signature does not verify with ${approver.name}'s approval key over this request's approval message with decision "${input.decision}"; sign the approvalMessage of GET /v1/withdrawals/${w.id} (with "decision" set to "${input.decision}")`,
      );
    }

    const now = ctx.now();
    const approval: Approval = { withdrawalId: w.id, approverId: approver.name, decision: input.decision, signature, message, createdAt: now };
    await tx.insertApproval(approval);
    await tx.appendAudit(
      {
        type: 'withdrawal.approval',
        actor: approver.name,
        subject: `withdrawal:${w.id}`,
        data: { decision: input.decision, digest: w.digest, signature, messageSha256: sha256Hex(message) },
      },
      now,
    );

    if (input.decision === 'reject') {
      const rejected = await tx.updateWithdrawal(
        w.id,
        'pending_approval',
        { state: 'rejected', reasons: [{ code: 'rejected_by_approver', message: `${approver.name} rejected the withdrawal` }] },
        now,
      );
      await tx.appendAudit({ type: 'withdrawal.rejected', actor: approver.name, subject: `withdrawal:${w.id}`, data: {} }, now);
      return { withdrawal: rejected };
    }

    const count = tally([...existing, approval], pool.approvers, requester?.name ?? '', w.requiredApprovals);
    if (!count.satisfied) return { withdrawal: w };

    // Quorum reached: decide again on the current policy and usage, then commit the amount.
    const policy = await policyOf(tx, pool.id, pool.policyVersion);
    const decision = await decideNow(tx, pool, policy, w, now);
    // A frozen pool holds an approved request unsigned until it is unfrozen; it is not a denial here.
    const denials = decision.reasons.filter((r) => r.code !== 'pool_frozen');
    if (denials.length > 0 || decision.requiredApprovals > count.approvals.length) {
      const reasons = denials.length > 0 ? denials : [{ code: 'quorum_changed', message: `the policy now requires ${decision.requiredApprovals} approvals` }];
      const denied = await tx.updateWithdrawal(w.id, 'pending_approval', { state: 'denied', reasons }, now);
      await tx.appendAudit({ type: 'withdrawal.denied', actor: 'system', subject: `withdrawal:${w.id}`, data: { reasons } }, now);
      return { withdrawal: denied };
    }
    const approved = await tx.updateWithdrawal(
      w.id,
      'pending_approval',
      { state: 'approved', committedAt: now, notBefore: decision.timelockUntil },
      now,
    );
    await tx.appendAudit(
      {
        type: 'withdrawal.approved',
        actor: 'system',
        subject: `withdrawal:${w.id}`,
        data: { approvers: count.approvals, notBefore: decision.timelockUntil },
      },
      now,
    );
    // Claimed for signing in this same transaction: the vote, the approval and the claim are one
    // durable commit. If the claim's audit entry cannot be written, the vote is not recorded either
    // and the approver gets the error to retry; nothing is signed without its audit entry.
    return claimInTx(ctx, tx, approved);
  });

  const { withdrawal } = decided;
  ctx.log.info({ withdrawal: withdrawal.id, approver: approver.name, decision: input.decision, state: withdrawal.state }, 'approval recorded');
  if (!isClaim(decided)) return withdrawal.state === 'timelocked' ? announceQuorum(ctx, withdrawal.id) : withdrawal;
  try {
    return await releaseClaimed(ctx, decided);
  } catch (error) {
    // The vote is recorded and the request claimed; due work resumes the release.
    ctx.log.error({ withdrawal: withdrawal.id, err: error instanceof Error ? error.message : String(error) }, 'release after approval failed; it will be resumed');
    return withdrawal;
  }
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
