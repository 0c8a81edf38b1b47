/**
 * Withdrawal requests and their state machine (SPEC section 4).
 *
 *   pending_approval -> approved -> (timelocked) -> signing -> signed
 *   or denied (policy), rejected (an approver said no), expired, cancelled, failed.
 */
import type { Reason } from '../../common/policy/policy.js';
import { ConflictError } from '../../common/errors.js';
import type { ChainId } from '../../common/chain-id.js';

export const WITHDRAWAL_STATES = [
  'pending_approval',
  'approved',
  'timelocked',
  'signing',
  'signed',
  'denied',
  'rejected',
  'expired',
  'cancelled',
  'failed',
] as const;
export type WithdrawalState = (typeof WITHDRAWAL_STATES)[number];

/** States whose amount counts against velocity limits and whose nonce is taken. */
export const COMMITTED_STATES: readonly WithdrawalState[] = ['approved', 'timelocked', 'signing', 'signed'];
/** Committed states whose amount has not left yet: it counts against velocity however long it waits. */
export const UNRELEASED_STATES: readonly WithdrawalState[] = ['approved', 'timelocked', 'signing'];
/** States from which nothing more happens. */
export const FINAL_STATES: readonly WithdrawalState[] = ['signed', 'denied', 'rejected', 'expired', 'cancelled', 'failed'];
/** States that hold a claim on the (pool, chain, nonce): every state but the failed endings. */
export const LIVE_STATES: readonly WithdrawalState[] = ['pending_approval', 'approved', 'timelocked', 'signing', 'signed'];

const TRANSITIONS: Readonly<Record<WithdrawalState, readonly WithdrawalState[]>> = {
  pending_approval: ['approved', 'denied', 'rejected', 'expired', 'cancelled'],
  // back to pending_approval when a governance change raises the quorum above the approvals it has
  approved: ['timelocked', 'signing', 'pending_approval', 'denied', 'expired', 'cancelled', 'failed'],
  timelocked: ['signing', 'pending_approval', 'denied', 'expired', 'cancelled', 'failed'],
  // back to timelocked when the device's own time lock ends later than the gateway's; back to approved
  // (or timelocked) when the device holds the pool frozen: it is signed once the pool is unfrozen
  signing: ['signed', 'failed', 'timelocked', 'approved'],
  signed: [],
  denied: [],
  rejected: [],
  expired: [],
  cancelled: [],
  failed: [],
};

export function canTransition(from: WithdrawalState, to: WithdrawalState): boolean {
  return TRANSITIONS[from].includes(to);
}

export function assertTransition(from: WithdrawalState, to: WithdrawalState): void {
  if (!canTransition(from, to)) {
    throw new ConflictError('invalid_state', `a withdrawal in state "${from}" cannot become "${to}"`);
  }
}

/** A machine-readable reason attached to every decision (common/policy/policy.ts). */
export type { Reason } from '../../common/policy/policy.js';

/** Ethereum EIP-1559 parameters the gateway cannot know offline (SPEC section 9). */
export interface EthereumParams {
  readonly kind: 'eip1559';
  readonly chainId: bigint;
  readonly nonce: bigint;
  readonly gasLimit: bigint;
  readonly maxFeePerGas: bigint;
  readonly maxPriorityFeePerGas: bigint;
}

/** A contract call other than an ERC-20 transfer: which contract and which function (4-byte selector). */
export interface ContractCall {
  /** EIP-55 contract address (also the withdrawal's `to`). */
  readonly contract: string;
  /** `0x` and 8 lowercase hex digits. */
  readonly selector: string;
}

export interface Withdrawal {
  readonly id: string;
  readonly poolId: string;
  readonly chain: ChainId;
  readonly asset: string;
  readonly amount: bigint;
  /** Destination as decoded from the transaction, in the chain's canonical form (EIP-55 for Ethereum). */
  readonly to: string;
  /** Principal id of the requester. */
  readonly requesterId: string;
  readonly idempotencyKey: string | null;
  /** The chain's replay key claimed by this request: `nonce:<n>` on Ethereum. Unique per (pool, chain) among live requests. */
  readonly signOnceKey: string;
  /** Set when the transaction calls a contract (other than an ERC-20 transfer); the policy must allow it. */
  readonly contractCall: ContractCall | null;
  /** The exact unsigned transaction the device will sign, hex. */
  readonly unsignedTx: string;
  /** Hex (no 0x) of the 32-byte digest the device signs. */
  readonly digest: string;
  /** The maximum fee the transaction can pay, in the chain's native base units. */
  readonly maxFee: bigint;
  readonly policyVersion: number;
  /** Approvals the quorum tier requires for this amount. */
  readonly requiredApprovals: number;
  readonly state: WithdrawalState;
  readonly reasons: readonly Reason[];
  /** RFC 8785 canonical JSON text that approvers sign (SPEC section 5). */
  readonly approvalMessage: string;
  readonly signedTx: string | null;
  readonly txHash: string | null;
  readonly createdAt: number;
  readonly updatedAt: number;
  /**
   * When the request's amount counts against velocity: its quorum while it waits unsigned (it counts
   * however long it waits), then its release once signed (it counts in every window holding that).
   */
  readonly committedAt: number | null;
  /** Earliest signing time when time-locked. */
  readonly notBefore: number | null;
  readonly expiresAt: number | null;
}

export type ApprovalDecision = 'approve' | 'reject';

export interface Approval {
  readonly withdrawalId: string;
  readonly approverId: string;
  readonly decision: ApprovalDecision;
  /** Ed25519 signature over the UTF-8 approval message for this decision, hex. */
  readonly signature: string;
  /** The exact message bytes that were signed (UTF-8 text). */
  readonly message: string;
  readonly createdAt: number;
}
