/**
 * Use case: break glass. Any single admin freezes a pool at once (SPEC section 4): signing stops,
 * even for approved requests, until the pool is unfrozen by the admin quorum.
 */
import type { Pool } from '../domain/pool.js';
import type { Principal } from '../domain/principal.js';
import { requirePool, type ServiceContext } from './context.js';

export async function freezePool(ctx: ServiceContext, admin: Principal, poolId: string, reason: string | null): Promise<Pool> {
  return ctx.store.transaction(async (tx) => {
    const pool = await requirePool(tx, poolId);
    if (pool.status === 'frozen') return pool;
    const now = ctx.now();
    await tx.setPoolStatus(pool.id, 'frozen');
    await tx.appendAudit({ type: 'pool.frozen', actor: admin.name, subject: `pool:${pool.id}`, data: { reason } }, now);
    ctx.log.warn({ pool: pool.id, admin: admin.name }, 'pool frozen');
    return { ...pool, status: 'frozen' };
  });
}
