/**
 * M-of-N counting (SPEC rules 2 and 4): an approval counts only from an enrolled approver of the
 * pool who is not the requester, once per approver.
 */
import type { Approval, Reason } from '../domain/withdrawal.js';

export interface ApprovalCheck {
  readonly approverId: string;
  /** Name of the principal who requested the withdrawal. */
  readonly requesterName: string;
  readonly poolApprovers: readonly string[];
  readonly existing: readonly Approval[];
}

/** Why this approver may not vote on this request, or null when they may. */
export function checkApproval(input: ApprovalCheck): Reason | null {
  if (input.approverId === input.requesterName) {
    return { code: 'requester_cannot_approve', message: `${input.approverId} requested this withdrawal and cannot approve it` };
  }
  if (!input.poolApprovers.includes(input.approverId)) {
    return { code: 'not_pool_approver', message: `${input.approverId} is not an approver of this pool` };
  }
  if (input.existing.some((a) => a.approverId === input.approverId)) {
    return { code: 'duplicate_approval', message: `${input.approverId} has already voted on this withdrawal` };
  }
  return null;
}

export interface Tally {
  readonly approvals: readonly string[];
  readonly rejections: readonly string[];
  readonly satisfied: boolean;
}

export function tally(approvals: readonly Approval[], poolApprovers: readonly string[], requesterName: string, required: number): Tally {
  const approve = new Set<string>();
  const reject = new Set<string>();
  for (const a of approvals) {
    if (a.approverId === requesterName || !poolApprovers.includes(a.approverId)) continue;
    (a.decision === 'approve' ? approve : reject).add(a.approverId);
  }
  return { approvals: [...approve], rejections: [...reject], satisfied: approve.size >= required && required >= 1 };
}
