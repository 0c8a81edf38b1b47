/**
 * The policy's decision on a withdrawal at this moment: velocity usage (committed amounts of the asset
 * in each rolling window) read inside the deciding transaction, so that no two requests can both pass
 * a limit only one fits, then every rule evaluated. One place for submission, the final approval and
 * re-evaluation after a governance change.
 */
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import type { Policy } from '../domain/policy.js';
import type { Pool } from '../domain/pool.js';
import type { ContractCall, Withdrawal } from '../domain/withdrawal.js';
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
 * Committed usage per window. A request that is itself committed (`self`) is left out, so that a
 * re-evaluation does not count it against itself.
 */
export async function velocityUsage(tx: StoreTx, poolId: string, policy: Policy, asset: string, now: number, self?: Withdrawal): Promise<WindowUsage[]> {
  const usage: WindowUsage[] = [];
  for (const w of velocityWindows(policy, asset)) {
    let committed = await tx.committedSince(poolId, asset, now - w.windowMs);
    if (self && self.committedAt !== null && self.committedAt > now - w.windowMs) committed -= self.amount;
    usage.push({ window: w.window, windowMs: w.windowMs, committed });
  }
  return usage;
}

export async function decideNow(tx: StoreTx, pool: Pool, policy: Policy, subject: DecisionSubject, now: number, self?: Withdrawal): Promise<PolicyDecision> {
  return evaluateWithdrawal({
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
