/**
 * The device's own quorum check (SPEC rule 2): before it signs, the simulator verifies every approval
 * itself, so a gateway that skips its checks still cannot get a signature. Each approval must be a
 * canonical approval message (RFC 8785) naming this pool, this key's chain and exactly this digest
 * with decision "approve", all for one request, each signed (Ed25519 strict, or EIP-191 by a hardware
 * wallet's key: common/approver-key.ts) by a distinct
 * approver enrolled for the pool; at least the pool's threshold of them.
 */
import { verifyApproverSignature } from '../common/approver-key.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseApprovalMessage } from '../common/approval-message.js';
import { bindingHash, parseGovernanceMessage, sha256Canonical, type Binding, type GovernanceMessage } from '../common/governance-message.js';
import type { GovernanceBinding, PoolBinding } from './sealed-state.js';

export interface ApprovalEvidence {
  readonly publicKey: Uint8Array;
  readonly message: string;
  readonly signature: Uint8Array;
}

export interface QuorumInput {
  readonly poolId: string;
  readonly chain: string;
  readonly digest: Uint8Array;
  readonly binding: PoolBinding;
  readonly approvals: readonly ApprovalEvidence[];
}

/** Null when the quorum holds; otherwise why not, naming the first approval at fault. */
export function quorumRefusal(input: QuorumInput): string | null {
  const digestHex = bytesToHex(input.digest);
  const signers = new Set<string>();
  let requestId: string | null = null;
  for (const [i, a] of input.approvals.entries()) {
    const n = i + 1;
    const publicKey = bytesToHex(a.publicKey);
    const enrolled = input.binding.approvers.find((x) => x.publicKey === publicKey);
    if (!enrolled) return `approval ${n}: the key is not an enrolled approver of pool ${input.poolId}`;
    let message;
    try {
      message = parseApprovalMessage(a.message);
    } catch (error) {
      return `approval ${n}: ${error instanceof Error ? error.message : 'unreadable approval message'}`;
    }
    if (message.pool !== input.poolId) return `approval ${n}: names pool ${message.pool}, not ${input.poolId}`;
    if (message.chain !== input.chain) return `approval ${n}: names chain ${message.chain}, not ${input.chain}`;
    if (message.digest !== digestHex) return `approval ${n}: digest does not match the digest to sign`;
    if (message.decision !== 'approve') return `approval ${n}: decision is "${message.decision}", not "approve"`;
    if (requestId !== null && message.requestId !== requestId) return `approval ${n}: names another request than approval 1`;
    requestId = message.requestId;
    if (!verifyApproverSignature(a.publicKey, a.message, a.signature)) return `approval ${n}: the signature does not verify with ${enrolled.id}'s key`;
    if (signers.has(publicKey)) return `approval ${n}: ${enrolled.id} is counted already (one approval per approver)`;
    signers.add(publicKey);
  }
  if (signers.size < input.binding.threshold) {
    return `${signers.size} valid approvals, pool ${input.poolId} needs at least ${input.binding.threshold}`;
  }
  return null;
}

export interface GovernanceInput {
  readonly poolId: string;
  /** sha256 of the canonical binding the messages must name. */
  readonly binding: string;
  /** When set, the messages must name this action and this change hash (proofs of control). */
  readonly exact?: { readonly action: GovernanceMessage['action']; readonly change: string };
  readonly governance: GovernanceBinding;
  readonly approvals: readonly ApprovalEvidence[];
}

/**
 * Null when the admin quorum approved it: each governance message canonical, naming the pool, the
 * expected binding (and action and change, when given), decision approve, one proposal, signed by
 * distinct enrolled admins, at least the admin quorum of them.
 */
function governanceRefusal(input: GovernanceInput): string | null {
  const signers = new Set<string>();
  let proposalId: string | null = null;
  for (const [i, a] of input.approvals.entries()) {
    const n = i + 1;
    const publicKey = bytesToHex(a.publicKey);
    const admin = input.governance.admins.find((x) => x.publicKey === publicKey);
    if (!admin) return `governance approval ${n}: the key is not an enrolled admin`;
    let message;
    try {
      message = parseGovernanceMessage(a.message);
    } catch (error) {
      return `governance approval ${n}: ${error instanceof Error ? error.message : 'unreadable message'}`;
    }
    if (message.pool !== input.poolId) return `governance approval ${n}: names pool ${message.pool}, not ${input.poolId}`;
    if (input.exact) {
      if (message.action !== input.exact.action) return `governance approval ${n}: approves "${message.action}", not "${input.exact.action}"`;
      if (message.change !== input.exact.change) return `governance approval ${n}: approves another ${input.exact.action} than the one requested`;
    } else if (message.action === 'attest-control') {
      return `governance approval ${n}: a proof-of-control approval cannot change a binding`;
    }
    if (message.binding !== input.binding) return `governance approval ${n}: approves another binding than the one requested`;
    if (message.decision !== 'approve') return `governance approval ${n}: decision is "${message.decision}"`;
    if (proposalId !== null && message.proposalId !== proposalId) return `governance approval ${n}: names another proposal`;
    proposalId = message.proposalId;
    if (!verifyApproverSignature(a.publicKey, a.message, a.signature)) return `governance approval ${n}: the signature does not verify with ${admin.id}'s key`;
    if (signers.has(publicKey)) return `governance approval ${n}: ${admin.id} is counted already`;
    signers.add(publicKey);
  }
  if (signers.size < input.governance.quorum) return `${signers.size} valid admin approvals, the admin quorum is ${input.governance.quorum}`;
  return null;
}

export interface RebindInput {
  readonly poolId: string;
  readonly binding: Binding;
  readonly governance: GovernanceBinding;
  readonly approvals: readonly ApprovalEvidence[];
}

/** Null when the admin quorum approved exactly this new binding of this pool (never by a proof-of-control approval). */
export function rebindRefusal(input: RebindInput): string | null {
  return governanceRefusal({ poolId: input.poolId, binding: bindingHash(input.binding), governance: input.governance, approvals: input.approvals });
}

export interface ControlInput {
  readonly poolId: string;
  /** The pool's current binding: the proposal named it, and it must not have changed since. */
  readonly binding: Binding;
  readonly challenge: string;
  readonly governance: GovernanceBinding;
  readonly approvals: readonly ApprovalEvidence[];
}

/** Null when the admin quorum approved this pool's keys signing exactly this challenge. */
export function controlRefusal(input: ControlInput): string | null {
  return governanceRefusal({
    poolId: input.poolId,
    binding: bindingHash(input.binding),
    exact: { action: 'attest-control', change: sha256Canonical({ action: 'attest-control', challenge: input.challenge }) },
    governance: input.governance,
    approvals: input.approvals,
  });
}
