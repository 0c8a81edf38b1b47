/**
 * The policy's decision on a withdrawal at this moment: velocity usage (committed amounts of the asset
 * in each rolling window) read inside the deciding transaction, so that no two requests can both pass
 * a limit only one fits, then every rule evaluated. One place for submission, the final approval and
 * re-evaluation after a governance change.
 */
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import type { Policy } from '../domain/policy.js';
import type { Pool } from '../domain/pool.js';
import type { ContractCall, Withdrawal, WithdrawalState } from '../domain/withdrawal.js';
import type { StoreTx } from '../store/store.js';
import { evaluateWithdrawal, velocityWindows, type PolicyDecision, type WindowUsage } from '../policy/evaluate.js';

/** What is decided on: the decoded transfer and its fee cap (in the chain's native asset). */
export interface DecisionSubject {
  readonly chain: string;
  readonly asset: string;
  readonly amount: bigint;
  readonly to: string;
  readonly maxFee: bigint;
  readonly contractCall: ContractCall | null;
}

/**
 * Committed usage per window. An amount counts from its quorum until its release: it counts in a
 * window from the moment it is committed (`committedAt`), it keeps counting while it waits unsigned
 * (approved, time-locked or signing) however long ago its quorum was, and its release moves
 * `committedAt` to the release instant, so it counts in every window that contains its release. A
 * request that is itself committed (`self`) is left out, so that a re-evaluation does not count it
 * against itself.
 */
export async function velocityUsage(tx: StoreTx, poolId: string, policy: Policy, asset: string, now: number, self?: Withdrawal): Promise<WindowUsage[]> {
  const windows = velocityWindows(policy, asset);
  if (windows.length === 0) return [];
  const waiting = (await tx.withdrawalsInStates(UNRELEASED)).filter((w) => w.poolId === poolId && w.asset === asset && w.committedAt !== null && w.id !== self?.id);
  const usage: WindowUsage[] = [];
  for (const w of windows) {
    const since = now - w.windowMs;
    let committed = await tx.committedSince(poolId, asset, since);
    if (self && self.committedAt !== null && self.committedAt > since) committed -= self.amount;
    // Committed before the window and still unreleased: it has not left yet, so it still counts.
    for (const unreleased of waiting) if ((unreleased.committedAt as number) <= since) committed += unreleased.amount;
    usage.push({ window: w.window, windowMs: w.windowMs, committed });
  }
  return usage;
}

/** Committed states whose amount has not left yet. */
const UNRELEASED: readonly WithdrawalState[] = ['approved', 'timelocked', 'signing'];

/** The pool of this gateway that holds `address` on `chain`, if any (commingling, internal transfers). */
export async function poolOfAddress(tx: StoreTx, chain: string, address: string): Promise<string | null> {
  const key = await tx.keyByAddress(address);
  return key !== null && key.chain === chain ? key.poolId : null;
}

export async function decideNow(tx: StoreTx, pool: Pool, policy: Policy, subject: DecisionSubject, now: number, self?: Withdrawal): Promise<PolicyDecision> {
  return evaluateWithdrawal({
    poolId: pool.id,
    destinationPool: await poolOfAddress(tx, subject.chain, subject.to),
    policy,
    poolStatus: pool.status,
    asset: subject.asset,
    amount: subject.amount,
    to: subject.to,
    fee: subject.maxFee,
    feeAsset: nativeAsset(parseChainId(subject.chain).family),
    contractCall: subject.contractCall,
    now,
    usage: await velocityUsage(tx, pool.id, policy, subject.asset, now, self),
  });
}
