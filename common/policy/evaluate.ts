/**
 * The policy engine (SPEC sections 4 and 9): a pure function from a decoded withdrawal, the pool's
 * policy and its current usage to a decision listing every reason that applies, the quorum tier's
 * number of approvals, the time lock and the expiry.
 *
 * Boundaries: `upTo`, `maxPerTx`, window `max` and `maxFee` are inclusive (an amount equal to them
 * passes); a time lock applies to amounts strictly `above` its threshold.
 */
import type { Policy, VelocityLimit } from './policy.js';
import type { PoolStatus } from './policy.js';
import type { Reason } from './policy.js';
import type { DecodedCall } from '../chains/decoded-transaction.js';
import { contractCallReasons } from './contract-calls.js';

export interface WindowUsage {
  readonly window: string;
  readonly windowMs: number;
  /** Committed amount of this asset in the window, not counting the request being decided. */
  readonly committed: bigint;
}

export interface PolicyInput {
  readonly policy: Policy;
  /** The request's CAIP-2 chain: entries tied to another chain do not apply to it. */
  readonly chain: string;
  readonly poolStatus: PoolStatus;
  readonly asset: string;
  readonly amount: bigint;
  /** Destination in its canonical form (EIP-55 for Ethereum). */
  readonly to: string;
  /** The most the transaction can pay in fees, in `feeAsset` base units. */
  readonly fee: bigint;
  readonly feeAsset: string;
  /** The contract call the transaction makes besides an ERC-20 transfer, if any, decoded by ABI where its function is known. */
  readonly contractCall: DecodedCall | null;
  /** Pools of this gateway holding an address argument of the call, by lowercase address. */
  readonly callAddressPools?: ReadonlyMap<string, string>;
  /** The pool deciding, and the pool of this gateway that holds the destination address, if any. */
  readonly poolId: string;
  readonly destinationPool: string | null;
  readonly now: number;
  readonly usage: readonly WindowUsage[];
}

export interface PolicyDecision {
  readonly allowed: boolean;
  /** Every reason that denies the request; empty exactly when allowed. */
  readonly reasons: readonly Reason[];
  readonly requiredApprovals: number;
  /** When allowed and time-locked: the earliest signing time if approved now. */
  readonly timelockUntil: number | null;
  readonly expiresAt: number | null;
}

/**
 * The entry of a per-asset record for an asset. Token assets (`erc20:<address>`) match whatever the
 * case of the address in the policy, since plans may write addresses in lowercase.
 */
export function assetEntry<T>(record: Readonly<Record<string, T>> | undefined, asset: string): T | undefined {
  if (record === undefined) return undefined;
  if (Object.hasOwn(record, asset)) return record[asset];
  const lower = asset.toLowerCase();
  const key = Object.keys(record).find((k) => k.toLowerCase() === lower);
  return key === undefined ? undefined : record[key];
}

/** The windows whose usage the caller must supply for this asset. */
export function velocityWindows(policy: Policy, asset: string): readonly VelocityLimit[] {
  return assetEntry(policy.assets, asset)?.limits ?? [];
}

/**
 * Approvals of the first tier that covers the amount: a tier without `upTo` covers everything; a tier
 * with `upTo` covers an asset it names up to that amount (inclusive) and no asset it does not name
 * (fail closed: an unnamed asset falls through to the stricter tiers).
 */
export function requiredApprovals(policy: Policy, asset: string, amount: bigint): number {
  for (const tier of policy.quorum) {
    if (tier.upTo === undefined) return tier.approvals;
    const bound = assetEntry(tier.upTo, asset);
    if (bound !== undefined && amount <= bound) return tier.approvals;
  }
  // Unreachable for a parsed policy (the last tier has no upTo); stay strict if it happens.
  return Math.max(...policy.quorum.map((t) => t.approvals));
}

function sameAddress(a: string, b: string): boolean {
  return a.startsWith('0x') && b.startsWith('0x') ? a.toLowerCase() === b.toLowerCase() : a === b;
}

/** The delay the policy puts on signing this amount once approved, or null: not time-locked. */
export function timelockDelayMs(policy: Policy, asset: string, amount: bigint): number | null {
  const lockAbove = assetEntry(policy.timelock?.above, asset);
  return policy.timelock && lockAbove !== undefined && amount > lockAbove ? policy.timelock.delayMs : null;
}

export function evaluateWithdrawal(input: PolicyInput): PolicyDecision {
  const { policy, asset, amount, now } = input;
  const reasons: Reason[] = [];

  if (input.poolStatus === 'frozen') {
    reasons.push({ code: 'pool_frozen', message: 'the pool is frozen: no withdrawal is signed until the admin quorum unfreezes it' });
  }

  const listed = assetEntry(policy.assets, asset);
  // A token entry tied to another chain is another token: the same contract address means nothing here.
  const assetPolicy = listed !== undefined && (listed.chain === undefined || listed.chain === input.chain) ? listed : undefined;
  if (!assetPolicy) {
    reasons.push({ code: 'asset_not_allowed', message: `the pool's policy does not allow ${asset} (allowed: ${Object.keys(policy.assets).join(', ') || 'none'})` });
  } else {
    if (assetPolicy.maxPerTx !== undefined && amount > assetPolicy.maxPerTx) {
      reasons.push({ code: 'over_max_per_tx', message: `amount ${amount} ${asset} is over the per-transaction maximum ${assetPolicy.maxPerTx}` });
    }
    for (const limit of assetPolicy.limits) {
      const used = input.usage.find((u) => u.windowMs === limit.windowMs)?.committed;
      if (used === undefined) {
        // Fail closed: a window whose usage is unknown cannot be shown to have room.
        reasons.push({ code: 'velocity_unknown', message: `usage of the ${limit.window} window is unknown` });
        continue;
      }
      if (used + amount > limit.max) {
        const remaining = used >= limit.max ? 0n : limit.max - used;
        reasons.push({
          code: 'velocity_exceeded',
          message: `the ${limit.window} limit of ${limit.max} ${asset} would be exceeded: ${used} used, ${remaining} remaining, ${amount} requested`,
        });
      }
    }
  }

  if (policy.allowlist !== undefined) {
    const entry = policy.allowlist.find((e) => sameAddress(e.address, input.to) && (e.chain === undefined || e.chain === input.chain));
    if (!entry) {
      reasons.push({ code: 'destination_not_allowlisted', message: `destination ${input.to} is not on the pool's allowlist` });
    } else if (entry.addedAt !== undefined && policy.newAddressCoolingOffMs !== undefined && now < entry.addedAt + policy.newAddressCoolingOffMs) {
      reasons.push({
        code: 'destination_cooling_off',
        message: `destination ${input.to} was added to the allowlist recently and is usable from ${new Date(entry.addedAt + policy.newAddressCoolingOffMs).toISOString()}`,
      });
    }
  }

  if (input.destinationPool === input.poolId) {
    reasons.push({ code: 'own_address', message: `destination ${input.to} is this pool's own address` });
  } else if (input.destinationPool !== null && !policy.internalTransfers?.includes(input.destinationPool)) {
    reasons.push({
      code: 'commingling',
      message: `destination ${input.to} belongs to pool ${input.destinationPool}: assets of one pool never pay into another unless its policy lists that pool in "internalTransfers" (a governed policy change)`,
    });
  }

  const call = input.contractCall;
  if (call !== null) {
    reasons.push(...contractCallReasons({ policy, chain: input.chain, poolId: input.poolId, call, to: input.to, argumentPools: input.callAddressPools ?? new Map(), now }));
  }

  const feeCap = assetEntry(policy.maxFee, input.feeAsset);
  if (feeCap !== undefined && input.fee > feeCap) {
    reasons.push({ code: 'fee_over_cap', message: `the transaction can pay up to ${input.fee} ${input.feeAsset} in fees, over the cap of ${feeCap}` });
  }

  const lockDelay = timelockDelayMs(policy, asset, amount);
  const timelockUntil = lockDelay === null ? null : now + lockDelay;

  return {
    allowed: reasons.length === 0,
    reasons,
    requiredApprovals: requiredApprovals(policy, asset, amount),
    timelockUntil,
    expiresAt: policy.requestExpiryMs !== undefined ? now + policy.requestExpiryMs : null,
  };
}
