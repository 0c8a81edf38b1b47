/**
 * The policy's decision on a withdrawal at this moment: velocity usage (committed amounts of the asset
 * in each rolling window) read inside the deciding transaction, so that no two requests can both pass
 * a limit only one fits, then every rule evaluated. One place for submission, the final approval and
 * re-evaluation after a governance change.
 */
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import type { Policy } from '../../common/policy/policy.js';
import type { Pool } from '../domain/pool.js';
import type { ContractCall, Withdrawal } from '../domain/withdrawal.js';
import type { StoreReads, StoreTx } from '../store/store.js';
import { evaluateWithdrawal, velocityWindows, type PolicyDecision, type WindowUsage } from '../../common/policy/evaluate.js';
import { decodeTransaction } from '../../common/chains/adapters.js';
import type { DecodedCall } from '../../common/chains/decoded-transaction.js';
import { declaredFunctions } from '../../common/policy/contract-call-rules.js';
import { callAddresses } from '../../common/policy/contract-calls.js';

/** What is decided on: the decoded transfer and its fee cap (in the chain's native asset). */
export interface DecisionSubject {
  readonly chain: string;
  readonly asset: string;
  readonly amount: bigint;
  readonly to: string;
  readonly maxFee: bigint;
  readonly contractCall: ContractCall | null;
  /** The exact unsigned transaction: a contract call is decoded from it again for the deciding policy. */
  readonly unsignedTx: string;
}

/**
 * Committed usage per window. An amount counts from its quorum until its release: it counts in a
 * window from the moment it is committed (`committedAt`), it keeps counting while it waits unsigned
 * (approved, time-locked or signing) however long ago its quorum was, and its release moves
 * `committedAt` to the release instant, so it counts in every window that contains its release. A
 * request that is itself committed (`self`) is left out, so that a re-evaluation does not count it
 * against itself.
 */
export async function velocityUsage(tx: StoreReads, poolId: string, policy: Policy, asset: string, now: number, self?: Withdrawal): Promise<WindowUsage[]> {
  const windows = velocityWindows(policy, asset);
  if (windows.length === 0) return [];
  const waiting = (await tx.unreleasedEntries(poolId, asset)).filter((w) => w.id !== self?.id);
  const usage: WindowUsage[] = [];
  for (const w of windows) {
    const since = now - w.windowMs;
    let committed = await tx.committedSince(poolId, asset, since);
    if (self && self.committedAt !== null && self.committedAt > since) committed -= self.amount;
    // Committed before the window and still unreleased: it has not left yet, so it still counts.
    for (const unreleased of waiting) if (unreleased.committedAt <= since) committed += unreleased.amount;
    usage.push({ window: w.window, windowMs: w.windowMs, committed });
  }
  return usage;
}

/**
 * The pool of this gateway whose key controls `address`, if any (commingling, internal transfers):
 * on any chain of the family, since one EVM key controls its address on every EVM chain.
 */
export async function poolOfAddress(tx: StoreReads, chain: string, address: string): Promise<string | null> {
  const key = await tx.keyByAddress(address);
  return key !== null && parseChainId(key.chain).family === parseChainId(chain).family ? key.poolId : null;
}

/**
 * The contract call as the policy reads it: decoded again from the transaction itself with the deciding
 * policy's functions (a later policy version may declare other ones), never taken from what was stored.
 * Call data that its function does not decode yields the bare call, which the policy refuses.
 */
function callForPolicy(subject: DecisionSubject, policy: Policy): DecodedCall | null {
  if (subject.contractCall === null) return null;
  try {
    return decodeTransaction(subject.chain, subject.unsignedTx, null, { functions: declaredFunctions(policy) }).call;
  } catch {
    return { contract: subject.contractCall.contract, selector: subject.contractCall.selector };
  }
}

/** The pools of this gateway holding an address argument of the call, by lowercase address. */
async function argumentPools(tx: StoreTx, chain: string, call: DecodedCall): Promise<Map<string, string>> {
  const pools = new Map<string, string>();
  for (const { address } of callAddresses(call)) {
    const pool = await poolOfAddress(tx, chain, address);
    if (pool !== null) pools.set(address.toLowerCase(), pool);
  }
  return pools;
}

export async function decideNow(tx: StoreTx, pool: Pool, policy: Policy, subject: DecisionSubject, now: number, self?: Withdrawal): Promise<PolicyDecision> {
  const call = callForPolicy(subject, policy);
  return evaluateWithdrawal({
    chain: subject.chain,
    poolId: pool.id,
    destinationPool: await poolOfAddress(tx, subject.chain, subject.to),
    policy,
    poolStatus: pool.status,
    asset: subject.asset,
    amount: subject.amount,
    to: subject.to,
    fee: subject.maxFee,
    feeAsset: nativeAsset(parseChainId(subject.chain).family),
    contractCall: call,
    callAddressPools: call === null ? undefined : await argumentPools(tx, subject.chain, call),
    now,
    usage: await velocityUsage(tx, pool.id, policy, subject.asset, now, self),
  });
}
