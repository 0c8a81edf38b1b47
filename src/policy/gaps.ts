/**
 * What a pool's policy leaves uncontrolled (SPEC section 9: `timelock.above` and `maxFee` are per
 * asset): an allowed asset the time lock does not name is never time-locked, a chain whose native
 * asset the fee cap does not name pays uncapped fees. These are decisions, made visible: the ceremony
 * warns about each, the pool view shows `none`, and every approval message states its time lock.
 */
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import { formatDuration } from '../../common/duration.js';
import type { Policy } from '../../common/policy/policy.js';
import { assetEntry } from '../../common/policy/evaluate.js';

export interface PolicyControls {
  /** Per allowed asset: "above <amount> after <delay>", or "none". */
  readonly timelock: Readonly<Record<string, string>>;
  /** Per native fee asset of the pool's chains: the cap in base units, or "none". */
  readonly maxFee: Readonly<Record<string, string>>;
}

export function policyControls(policy: Policy, chains: readonly string[]): PolicyControls {
  const timelock: Record<string, string> = {};
  for (const asset of Object.keys(policy.assets)) {
    const above = assetEntry(policy.timelock?.above, asset);
    timelock[asset] = policy.timelock && above !== undefined ? `above ${above} after ${formatDuration(policy.timelock.delayMs)}` : 'none';
  }
  const maxFee: Record<string, string> = {};
  for (const chain of chains) {
    const fee = nativeAsset(parseChainId(chain).family);
    const cap = assetEntry(policy.maxFee, fee);
    maxFee[fee] = cap === undefined ? 'none' : cap.toString();
  }
  return { timelock, maxFee };
}

/** One warning per uncontrolled asset, naming the pool and the asset. */
export function policyGapWarnings(poolId: string, controls: PolicyControls): string[] {
  return [
    ...Object.entries(controls.timelock)
      .filter(([, v]) => v === 'none')
      .map(([asset]) => `warning: pool ${poolId}: ${asset} is never time-locked (the policy's "timelock.above" does not name it)`),
    ...Object.entries(controls.maxFee)
      .filter(([, v]) => v === 'none')
      .map(([asset]) => `warning: pool ${poolId}: fees paid in ${asset} are not capped (the policy's "maxFee" does not name it)`),
  ];
}
