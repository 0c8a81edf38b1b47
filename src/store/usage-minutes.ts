/**
 * Running totals of committed usage per (pool, asset, minute), kept by both SQL stores in the same
 * transaction as every change to a withdrawal, so that a window sum reads at most one row per minute
 * of the window, whatever the pool's activity, instead of every committed withdrawal inside it.
 *
 * A window (since, now] is summed exactly: the minutes that lie wholly after `since` from their
 * totals, and the one minute that holds `since` from its withdrawals (committed_at > since and before
 * the next minute), read through the usage index.
 */
import { COMMITTED_STATES, type Withdrawal } from '../domain/withdrawal.js';

export const MINUTE_MS = 60_000;

export const minuteOf = (ms: number): number => Math.floor(ms / MINUTE_MS);

/** What a withdrawal adds to its minute's total: its amount while committed, nothing otherwise. */
export interface UsageShare {
  readonly poolId: string;
  readonly asset: string;
  readonly minute: number;
  readonly amount: bigint;
}

export function usageShare(w: Withdrawal): UsageShare | null {
  if (w.committedAt === null || !COMMITTED_STATES.includes(w.state)) return null;
  return { poolId: w.poolId, asset: w.asset, minute: minuteOf(w.committedAt), amount: w.amount };
}

/**
 * The changes to the totals when a withdrawal goes from `before` (null: new) to `after`: its share
 * leaves one minute and joins another, or nothing when its share did not change.
 */
export function usageChanges(before: Withdrawal | null, after: Withdrawal): { share: UsageShare; sign: 1n | -1n }[] {
  const was = before === null ? null : usageShare(before);
  const is = usageShare(after);
  if (was && is && was.poolId === is.poolId && was.asset === is.asset && was.minute === is.minute && was.amount === is.amount) return [];
  return [...(was ? [{ share: was, sign: -1n as const }] : []), ...(is ? [{ share: is, sign: 1n as const }] : [])];
}

/** The first instant after the minute that holds `since`: the boundary minute's rows lie in (since, this). */
export const nextMinuteStart = (since: number): number => (minuteOf(since) + 1) * MINUTE_MS;
