/**
 * Governance proposals (SPEC sections 4 and 9): a change to a pool that needs `adminQuorum` admin
 * approvals — a new policy version, unfreezing, or a change of the pool's approvers. The admin who
 * proposes cannot approve their own proposal (maker-checker, as SPEC rule 4 is for withdrawals).
 */
import type { Approver } from './pool.js';
import type { PolicyDocument } from './policy.js';

export const PROPOSAL_ACTIONS = ['policy', 'unfreeze', 'approvers'] as const;
export type ProposalAction = (typeof PROPOSAL_ACTIONS)[number];
export type ProposalState = 'pending' | 'applied' | 'rejected' | 'failed';

export type ProposalChange =
  | { readonly action: 'policy'; readonly policy: PolicyDocument }
  | { readonly action: 'unfreeze' }
  | { readonly action: 'approvers'; readonly add: readonly Approver[]; readonly remove: readonly string[] };

export interface Proposal {
  readonly id: string;
  readonly poolId: string;
  readonly change: ProposalChange;
  /** The pool's device binding once applied: approver keys and base threshold. */
  readonly binding: { readonly approvers: readonly Approver[]; readonly threshold: number };
  readonly proposedBy: string;
  readonly requiredApprovals: number;
  readonly state: ProposalState;
  /** RFC 8785 text the admins sign (decision "approve"; "reject" to refuse). */
  readonly approvalMessage: string;
  readonly createdAt: number;
  readonly updatedAt: number;
  readonly appliedVersion: number | null;
  readonly reason: string | null;
}

export interface ProposalApproval {
  readonly proposalId: string;
  readonly adminId: string;
  readonly decision: 'approve' | 'reject';
  readonly signature: string;
  readonly message: string;
  readonly createdAt: number;
}

export interface Governance {
  readonly admins: readonly string[];
  readonly adminQuorum: number;
}
