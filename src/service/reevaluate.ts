/**
 * Re-evaluation of a pool's open withdrawals after a governance change ("the stricter outcome
 * wins"). Runs inside the transaction that applies the change. For every request not yet signing:
 * denied if the new policy denies it; otherwise it needs the larger of its old and new number of
 * approvals, counted among the pool's current approvers only; an approved request that no longer has
 * enough goes back to pending_approval and frees its amount; a new or longer time lock applies.
 * The approval message is left as it was, so approvals already given stay verifiable.
 */
import type { Reason } from '../domain/withdrawal.js';
import type { StoreTx } from '../store/store.js';
import { decideNow } from './usage.js';
import { tally } from '../quorum/count.js';
import { policyOf, requirePool, type ServiceContext } from './context.js';

export async function reevaluatePool(ctx: ServiceContext, tx: StoreTx, poolId: string, now: number): Promise<void> {
  const pool = await requirePool(tx, poolId);
  const policy = await policyOf(tx, pool.id, pool.policyVersion);
  const open = (await tx.withdrawalsInStates(['pending_approval', 'approved', 'timelocked'])).filter((w) => w.poolId === pool.id);
  for (const w of open) {
    const decision = await decideNow(tx, pool, policy, w, now, w);
    const audit = async (type: string, data: Record<string, unknown>) =>
      tx.appendAudit({ type, actor: 'system', subject: `withdrawal:${w.id}`, data: { policyVersion: pool.policyVersion, ...data } }, now);

    // A frozen pool is not a reason to deny: freezing only stops signing until unfrozen.
    const denials: Reason[] = decision.reasons.filter((r) => r.code !== 'pool_frozen');
    if (denials.length > 0) {
      await tx.updateWithdrawal(w.id, w.state, { state: 'denied', reasons: denials }, now);
      await audit('withdrawal.denied', { reasons: denials, reevaluated: true });
      continue;
    }
    const required = Math.max(w.requiredApprovals, decision.requiredApprovals);
    const requester = await tx.principalById(w.requesterId);
    const count = tally(await tx.approvalsOf(w.id), pool.approvers, requester?.name ?? '', required);
    if (w.state === 'pending_approval') {
      if (required !== w.requiredApprovals) {
        await tx.updateWithdrawal(w.id, w.state, { state: w.state, requiredApprovals: required }, now);
        await audit('withdrawal.requirement_raised', { requiredApprovals: required });
      }
      continue;
    }
    if (!count.satisfied) {
      const reasons = [{ code: 'quorum_raised', message: `the policy now requires ${required} approvals from the pool's current approvers; ${count.approvals.length} remain` }];
      await tx.updateWithdrawal(w.id, w.state, { state: 'pending_approval', requiredApprovals: required, committedAt: null, notBefore: null, reasons }, now);
      await audit('withdrawal.reopened', { requiredApprovals: required, approvals: count.approvals });
      continue;
    }
    const lockDelay = decision.timelockUntil === null ? null : decision.timelockUntil - now;
    const lockedUntil = lockDelay === null || w.committedAt === null ? null : w.committedAt + lockDelay;
    if (lockedUntil !== null && (w.notBefore === null || lockedUntil > w.notBefore)) {
      await tx.updateWithdrawal(w.id, w.state, { state: lockedUntil > now ? 'timelocked' : w.state, notBefore: lockedUntil, requiredApprovals: required }, now);
      await audit('withdrawal.timelock_extended', { notBefore: new Date(lockedUntil).toISOString() });
    }
  }
  ctx.log.info({ pool: pool.id, reevaluated: open.length }, 'open withdrawals re-evaluated');
}
