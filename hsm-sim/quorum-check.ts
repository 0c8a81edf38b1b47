/**
 * The device's own quorum check (SPEC rule 2, section 5): before it signs, the simulator verifies
 * every approval itself, so a gateway that skips its checks still cannot get a signature. Each
 * approval must be a canonical version 2 approval message (RFC 8785) naming this pool, this key's
 * chain and exactly the transaction to sign (`unsignedTx`, byte for byte), whose stated asset, amount,
 * destination, fee cap, digest and call equal the device's own decoding of it, with decision
 * "approve", all for one request, each signed (Ed25519 strict, or EIP-191 by a hardware wallet's key:
 * common/approver-key.ts) by a distinct approver enrolled for the pool; at least what the pool's
 * policy held in the device requires for the amount (the quorum tier), and never fewer than the
 * pool's base threshold.
 */
import { verifyApproverSignature } from '../common/approver-key.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { parseApprovalMessage, transactionDisagreement } from '../common/approval-message.js';
import type { DecodedTransaction } from '../common/chains/decoded-transaction.js';
import { Status } from '../common/sim-protocol.js';
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
  /** The transaction to sign, exactly as received, and the device's own decoding of it. */
  readonly unsignedTx: string;
  readonly decoded: DecodedTransaction;
  readonly binding: PoolBinding;
  readonly approvals: readonly ApprovalEvidence[];
  /** The approvals the pool's policy requires for this amount (its quorum tier). */
  readonly required: number;
}

export interface Refusal {
  readonly status: Status;
  readonly message: string;
}

/** A quorum that holds: the one request all approvals name, and the request it replaces, if any. */
export interface QuorumHeld {
  readonly requestId: string;
  readonly replaces: string | null;
}

/** The quorum held, or why not, naming the first approval at fault, with its status. */
export function checkQuorum(input: QuorumInput): QuorumHeld | Refusal {
  const refused = (message: string): Refusal => ({ status: Status.QUORUM_REFUSED, message });
  const mismatch = (message: string): Refusal => ({ status: Status.TRANSACTION_MISMATCH, message });
  const signers = new Set<string>();
  let requestId: string | null = null;
  let replaces: string | null = null;
  for (const [i, a] of input.approvals.entries()) {
    const n = i + 1;
    const publicKey = bytesToHex(a.publicKey);
    const enrolled = input.binding.approvers.find((x) => x.publicKey === publicKey);
    if (!enrolled) return refused(`approval ${n}: the key is not an enrolled approver of pool ${input.poolId}`);
    let message;
    try {
      message = parseApprovalMessage(a.message);
    } catch (error) {
      return refused(`approval ${n}: ${error instanceof Error ? error.message : 'unreadable approval message'}`);
    }
    if (message.pool !== input.poolId) return refused(`approval ${n}: names pool ${message.pool}, not ${input.poolId}`);
    if (message.chain !== input.chain) return refused(`approval ${n}: names chain ${message.chain}, not ${input.chain}`);
    if (message.decision !== 'approve') return refused(`approval ${n}: decision is "${message.decision}", not "approve"`);
    if (message.unsignedTx !== input.unsignedTx) return mismatch(`approval ${n}: approves another transaction than the one to sign`);
    const disagreement = transactionDisagreement(message, input.decoded);
    if (disagreement) return mismatch(`approval ${n}: the message does not describe its transaction: ${disagreement}`);
    if (requestId !== null && message.requestId !== requestId) return refused(`approval ${n}: names another request than approval 1`);
    if (requestId !== null && (message.replaces ?? null) !== replaces) return refused(`approval ${n}: names another replaced request than approval 1`);
    requestId = message.requestId;
    replaces = message.replaces ?? null;
    if (!verifyApproverSignature(a.publicKey, a.message, a.signature)) return refused(`approval ${n}: the signature does not verify with ${enrolled.id}'s key`);
    if (signers.has(publicKey)) return refused(`approval ${n}: ${enrolled.id} is counted already (one approval per approver)`);
    signers.add(publicKey);
  }
  const required = Math.max(input.required, input.binding.threshold);
  if (signers.size < required || requestId === null) {
    return refused(`${signers.size} valid approvals, pool ${input.poolId} needs at least ${required} for ${input.decoded.amount} ${input.decoded.asset} (its policy's quorum tier)`);
  }
  return { requestId, replaces };
}

export function isRefusal(outcome: QuorumHeld | Refusal): outcome is Refusal {
  return 'status' in outcome;
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
