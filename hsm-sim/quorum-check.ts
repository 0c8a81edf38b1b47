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
import { parseGovernanceMessage, sameSummary, type DeviceSummary, type GovernanceAction, type GovernanceMessage, type PoolSummary } from '../common/governance-message.js';
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
  /** This device's id: a message for another device is refused. */
  readonly device: string;
  readonly scope: 'pool' | 'device';
  /** The pool, for a pool-scoped action. */
  readonly poolId?: string;
  readonly action: GovernanceAction;
  /** sha256Canonical of the change the messages must name. */
  readonly change: string;
  /** The sequence and state summary the device holds, and the summary once the change is applied. */
  readonly sequence: number;
  readonly before: PoolSummary | DeviceSummary;
  readonly after: PoolSummary | DeviceSummary;
  readonly governance: GovernanceBinding;
  readonly approvals: readonly ApprovalEvidence[];
  /** Admin approvals needed: the admin quorum, or 1 for a freeze (break glass). */
  readonly required: number;
}

/**
 * Null when enough distinct enrolled admins approved exactly this change: each governance message
 * canonical, for this device, scope, pool and action, naming this change, this `after`, and the
 * `before` and `sequence` the device holds (a replayed message, or one made before another change was
 * applied, is STALE_GOVERNANCE), decision approve, one proposal, each signature valid.
 */
export function governanceRefusal(input: GovernanceInput): Refusal | null {
  const refused = (message: string): Refusal => ({ status: Status.QUORUM_REFUSED, message });
  const stale = (message: string): Refusal => ({ status: Status.STALE_GOVERNANCE, message });
  const signers = new Set<string>();
  let proposalId: string | null = null;
  const where = input.scope === 'pool' ? `pool ${input.poolId}` : 'this device';
  for (const [i, a] of input.approvals.entries()) {
    const n = i + 1;
    const publicKey = bytesToHex(a.publicKey);
    const admin = input.governance.admins.find((x) => x.publicKey === publicKey);
    if (!admin) return refused(`governance approval ${n}: the key is not an enrolled admin`);
    let message: GovernanceMessage;
    try {
      message = parseGovernanceMessage(a.message);
    } catch (error) {
      return refused(`governance approval ${n}: ${error instanceof Error ? error.message : 'unreadable message'}`);
    }
    if (message.device !== input.device) return refused(`governance approval ${n}: is for device ${message.device}, not ${input.device}`);
    if (message.scope !== input.scope) return refused(`governance approval ${n}: approves a ${message.scope} change, not a ${input.scope} one`);
    if (message.scope === 'pool' && message.pool !== input.poolId) return refused(`governance approval ${n}: names pool ${message.pool}, not ${input.poolId}`);
    if (message.action !== input.action) return refused(`governance approval ${n}: approves "${message.action}", not "${input.action}"`);
    if (message.change !== input.change) return refused(`governance approval ${n}: approves another ${input.action} than the one requested`);
    if (message.decision !== 'approve') return refused(`governance approval ${n}: decision is "${message.decision}"`);
    if (message.sequence !== input.sequence || !sameSummary(message.before, input.before)) {
      return stale(
        `governance approval ${n}: made for ${where} at sequence ${message.sequence}, and the device holds sequence ${input.sequence}${sameSummary(message.before, input.before) ? '' : ' with another state'}: it was applied already or another change came first; propose it again`,
      );
    }
    if (!sameSummary(message.after, input.after)) return refused(`governance approval ${n}: states another result of the change than the device computes`);
    if (proposalId !== null && message.proposalId !== proposalId) return refused(`governance approval ${n}: names another proposal`);
    proposalId = message.proposalId;
    if (!verifyApproverSignature(a.publicKey, a.message, a.signature)) return refused(`governance approval ${n}: the signature does not verify with ${admin.id}'s key`);
    if (signers.has(publicKey)) return refused(`governance approval ${n}: ${admin.id} is counted already`);
    signers.add(publicKey);
  }
  if (signers.size < input.required) return refused(`${signers.size} valid admin approvals, ${input.required} needed`);
  return null;
}
