/**
 * Velocity usage: committed amounts of an asset in each of the policy's rolling windows, read inside
 * the deciding transaction so that no two requests can both pass a limit only one fits.
 */
import type { Policy } from '../domain/policy.js';
import type { StoreTx } from '../store/store.js';
import { velocityWindows, type WindowUsage } from '../policy/evaluate.js';

export async function velocityUsage(tx: StoreTx, poolId: string, policy: Policy, asset: string, now: number): Promise<WindowUsage[]> {
  const usage: WindowUsage[] = [];
  for (const w of velocityWindows(policy, asset)) {
    usage.push({ window: w.window, windowMs: w.windowMs, committed: await tx.committedSince(poolId, asset, now - w.windowMs) });
  }
  return usage;
}
