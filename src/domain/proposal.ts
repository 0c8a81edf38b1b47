/**
 * Governance proposals (SPEC sections 4 and 9): a change to a pool that needs `adminQuorum` admin
 * approvals — a new policy version, unfreezing, a change of the pool's approvers, or a proof of control
 * (the pool's keys sign an auditor's challenge). The admin who
 * proposes cannot approve their own proposal (maker-checker, as SPEC rule 4 is for withdrawals).
 */
import type { Approver } from './pool.js';
import type { PolicyDocument } from '../../common/policy/policy.js';

export const PROPOSAL_ACTIONS = ['policy', 'unfreeze', 'approvers', 'attest-control'] as const;
export type ProposalAction = (typeof PROPOSAL_ACTIONS)[number];
export type ProposalState = 'pending' | 'applied' | 'rejected' | 'failed';

export type ProposalChange =
  | { readonly action: 'policy'; readonly policy: PolicyDocument }
  | { readonly action: 'unfreeze' }
  | { readonly action: 'approvers'; readonly add: readonly Approver[]; readonly remove: readonly string[] }
  /** Proof of control: every key of the pool signs `challenge` in its chain's message format. */
  | { readonly action: 'attest-control'; readonly challenge: string };

/** One key's signature of a proof-of-control challenge (common/control-message.ts formats). */
export interface ControlProof {
  readonly proposalId: string;
  readonly poolId: string;
  readonly chain: string;
  readonly address: string;
  readonly format: 'eip191' | 'bitcoin-message' | 'ed25519';
  /** As the chain's tools expect it: 0x-hex r||s||v (EIP-191), base64 (Bitcoin), hex (Ed25519). */
  readonly signature: string;
  readonly createdAt: number;
}

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
