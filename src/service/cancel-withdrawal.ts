/**
 * Use case: cancel a withdrawal before signing (SPEC section 6). A requester cancels only their own
 * requests; an admin cancels any. Cancelling frees the amount and the nonce.
 */
import { AuthError, ConflictError } from '../../common/errors.js';
import type { Principal } from '../domain/principal.js';
import type { Withdrawal } from '../domain/withdrawal.js';
import { canTransition } from '../domain/withdrawal.js';
import { requireWithdrawal, type ServiceContext } from './context.js';

export async function cancelWithdrawal(ctx: ServiceContext, actor: Principal, id: string): Promise<Withdrawal> {
  return ctx.store.transaction(async (tx) => {
    const w = await requireWithdrawal(tx, id);
    if (actor.role === 'requester' && w.requesterId !== actor.id) {
      throw new AuthError('forbidden', 'not_your_request', 'a requester may cancel only their own withdrawals');
    }
    if (!canTransition(w.state, 'cancelled')) {
      throw new ConflictError('not_cancellable', `withdrawal ${w.id} is "${w.state}" and can no longer be cancelled`);
    }
    const now = ctx.now();
    const reasons = [{ code: 'cancelled', message: `cancelled by ${actor.name}` }];
    const cancelled = await tx.updateWithdrawal(w.id, w.state, { state: 'cancelled', reasons }, now);
    await tx.appendAudit({ type: 'withdrawal.cancelled', actor: actor.name, subject: `withdrawal:${w.id}`, data: { from: w.state } }, now);
    ctx.log.info({ withdrawal: w.id, actor: actor.name }, 'withdrawal cancelled');
    return cancelled;
  });
}
