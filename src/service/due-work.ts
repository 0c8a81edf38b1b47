/**
 * Work that falls due without a request: pending requests expire, time locks end, and requests left
 * in `approved` or `signing` by a crash or an unanswered device call are resumed (SPEC rule 7).
 * main.ts runs it at start and then on a timer.
 */
import type { Withdrawal } from '../domain/withdrawal.js';
import type { ServiceContext } from './context.js';
import { releaseSignature } from './release-signature.js';

/** A request in `signing` is resumed only after it has been quiet this long (the device may still answer). */
export const SIGNING_RESUME_AFTER_MS = 5_000;

export async function runDueWork(ctx: ServiceContext, options: { resumeSigningNow?: boolean } = {}): Promise<void> {
  const now = ctx.now();
  const open = await ctx.store.read((r) => r.withdrawalsInStates(['pending_approval', 'approved', 'timelocked', 'signing']));
  for (const w of open) {
    try {
      if (w.state === 'pending_approval') {
        if (w.expiresAt !== null && now > w.expiresAt) await expire(ctx, w);
        continue;
      }
      if (w.state === 'timelocked' && w.notBefore !== null && now < w.notBefore) continue;
      if (w.state === 'signing' && !options.resumeSigningNow && now - w.updatedAt < SIGNING_RESUME_AFTER_MS) continue;
      await releaseSignature(ctx, w.id);
    } catch (error) {
      ctx.log.error({ withdrawal: w.id, err: error instanceof Error ? error.message : String(error) }, 'due work failed; will try again');
    }
  }
}

async function expire(ctx: ServiceContext, w: Withdrawal): Promise<void> {
  await ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    const reasons = [{ code: 'expired', message: 'the request was not approved before it expired' }];
    await tx.updateWithdrawal(w.id, 'pending_approval', { state: 'expired', reasons }, now);
    await tx.appendAudit({ type: 'withdrawal.expired', actor: 'system', subject: `withdrawal:${w.id}`, data: {} }, now);
  });
  ctx.log.info({ withdrawal: w.id }, 'withdrawal expired');
}
