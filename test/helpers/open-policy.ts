/**
 * A policy document for tests that bind a pool in the simulator directly: the native assets, no limits,
 * one quorum tier of `threshold` approvals. The device holds and enforces it like any other.
 */
import type { PolicyDocument } from '../../common/policy/policy.js';

export function openPolicy(threshold: number, assets: readonly string[] = ['ETH', 'BTC', 'SOL']): PolicyDocument {
  return { quorum: [{ approvals: threshold }], assets: Object.fromEntries(assets.map((a) => [a, {}])) };
}
