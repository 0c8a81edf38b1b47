/**
 * Table rows to domain records, for the SQL stores. Both schemas keep the same columns, and both
 * drivers hand them back alike: text as strings, integers (times in ms, versions, counts) as numbers,
 * amounts as decimal strings (SQLite TEXT, PostgreSQL NUMERIC), JSON as its text. Amounts become
 * bigints straight from their decimal text, never through a JS number.
 */
import type { ChainId } from '../../common/chain-id.js';
import type { Approver, Pool, PoolKey, PoolStatus } from '../domain/pool.js';
import type { Principal, Role } from '../domain/principal.js';
import type { ControlProof, Proposal, ProposalApproval, ProposalChange, ProposalState } from '../domain/proposal.js';
import type { Approval, ContractCall, Reason, Withdrawal, WithdrawalState } from '../domain/withdrawal.js';
import type { AuditEntry } from './store.js';

/** A row as a driver returns it: column name to value. */
export type Row = Record<string, unknown>;

/** A column as the driver returns it: text, integer, or either of them or NULL. */
export const str = (v: unknown): string => v as string;
export const num = (v: unknown): number => v as number;
const optStr = (v: unknown): string | null => (v === null || v === undefined ? null : str(v));
export const optNum = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));

export function rowToWithdrawal(r: Row): Withdrawal {
  return {
    id: str(r.id),
    poolId: str(r.pool_id),
    chain: str(r.chain) as ChainId,
    asset: str(r.asset),
    amount: BigInt(str(r.amount)),
    to: str(r.to_address),
    requesterId: str(r.requester_id),
    idempotencyKey: optStr(r.idempotency_key),
    signOnceKey: str(r.sign_once_key),
    contractCall: r.contract_call === null || r.contract_call === undefined ? null : (JSON.parse(str(r.contract_call)) as ContractCall),
    unsignedTx: str(r.unsigned_tx),
    digest: str(r.digest),
    maxFee: BigInt(str(r.max_fee)),
    policyVersion: num(r.policy_version),
    requiredApprovals: num(r.required_approvals),
    state: str(r.state) as WithdrawalState,
    reasons: JSON.parse(str(r.reasons)) as Reason[],
    approvalMessage: str(r.approval_message),
    signedTx: optStr(r.signed_tx),
    txHash: optStr(r.tx_hash),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    committedAt: optNum(r.committed_at),
    notBefore: optNum(r.not_before),
    expiresAt: optNum(r.expires_at),
  };
}

export function rowToPool(r: Row): Pool {
  return {
    id: str(r.id),
    owner: str(r.owner),
    chains: JSON.parse(str(r.chains)) as ChainId[],
    status: str(r.status) as PoolStatus,
    approvers: JSON.parse(str(r.approvers)) as string[],
    policyVersion: num(r.policy_version),
    createdAt: num(r.created_at),
  };
}

export function rowToKey(r: Row): PoolKey {
  return {
    poolId: str(r.pool_id),
    chain: str(r.chain) as ChainId,
    curve: str(r.curve) as PoolKey['curve'],
    publicKey: str(r.public_key),
    address: str(r.address),
    device: str(r.device),
    handle: str(r.handle),
    ceremonyId: str(r.ceremony_id),
    createdAt: num(r.created_at),
  };
}

export function rowToPrincipal(r: Row): Principal {
  return { id: str(r.id), name: str(r.name), role: str(r.role) as Role, tokenHash: str(r.token_hash), createdAt: num(r.created_at) };
}

export function rowToApprover(r: Row): Approver {
  return { id: str(r.id), publicKey: str(r.public_key) };
}

export function rowToApproval(r: Row): Approval {
  return {
    withdrawalId: str(r.withdrawal_id),
    approverId: str(r.approver_id),
    decision: str(r.decision) as Approval['decision'],
    signature: str(r.signature),
    message: str(r.message),
    createdAt: num(r.created_at),
  };
}

export function rowToProposal(r: Row): Proposal {
  return {
    id: str(r.id),
    poolId: str(r.pool_id),
    change: JSON.parse(str(r.change)) as ProposalChange,
    binding: JSON.parse(str(r.binding)) as Proposal['binding'],
    proposedBy: str(r.proposed_by),
    requiredApprovals: num(r.required_approvals),
    state: str(r.state) as ProposalState,
    approvalMessage: str(r.approval_message),
    createdAt: num(r.created_at),
    updatedAt: num(r.updated_at),
    appliedVersion: optNum(r.applied_version),
    reason: optStr(r.reason),
  };
}

export function rowToProposalApproval(r: Row): ProposalApproval {
  return {
    proposalId: str(r.proposal_id),
    adminId: str(r.admin_id),
    decision: str(r.decision) as ProposalApproval['decision'],
    signature: str(r.signature),
    message: str(r.message),
    createdAt: num(r.created_at),
  };
}

export function rowToControlProof(r: Row): ControlProof {
  return {
    proposalId: str(r.proposal_id),
    poolId: str(r.pool_id),
    chain: str(r.chain),
    address: str(r.address),
    format: str(r.format) as ControlProof['format'],
    signature: str(r.signature),
    createdAt: num(r.created_at),
  };
}

/** An audit row with the data text exactly as stored, for verification (src/audit/hash-chain.ts). */
export function rowToStoredAudit(r: Row): AuditEntry & { readonly storedData: string } {
  return { ...rowToAudit(r), storedData: str(r.data) };
}

export function rowToAudit(r: Row): AuditEntry {
  return {
    seq: num(r.seq),
    at: str(r.at),
    type: str(r.type),
    actor: str(r.actor),
    subject: str(r.subject),
    data: JSON.parse(str(r.data)) as Record<string, unknown>,
    prevHash: str(r.prev_hash),
    hash: str(r.hash),
  };
}
