/**
 * Pool routes (SPEC section 6): pools with keys, policy and usage (and, for admins, the freeze message
 * to sign); break-glass freeze, of the gateway alone or, with the admin's signature, of the device too.
 */
import { Router } from 'express';
import { NotFoundError } from '../../../common/errors.js';
import { POOL_ID } from '../../domain/pool.js';
import type { ServiceContext } from '../../service/context.js';
import { describePool, describePools } from '../../service/describe-pools.js';
import { freezePool, poolFreezeMessage } from '../../service/freeze-pool.js';
import { requireRole } from '../auth.js';
import { freezeBodySchema, parseWith } from '../schemas.js';
import { freezeView, poolView } from '../views.js';

function poolId(raw: unknown): string {
  if (typeof raw !== 'string' || !POOL_ID.test(raw)) throw new NotFoundError('pool_not_found', `pool "${String(raw).slice(0, 80)}" does not exist`);
  return raw;
}

export function poolRoutes(ctx: ServiceContext): Router {
  const router = Router();

  router.get('/v1/pools', async (req, res) => {
    requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    res.json({ pools: (await describePools(ctx)).map(poolView) });
  });

  router.get('/v1/pools/:pool', async (req, res) => {
    const principal = requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    const id = poolId(req.params.pool);
    const view = poolView(await describePool(ctx, id));
    res.json(principal.role === 'admin' ? { ...view, freezeMessage: await poolFreezeMessage(ctx, id) } : view);
  });

  router.post('/v1/pools/:pool/freeze', async (req, res) => {
    const admin = requireRole(req, 'admin');
    const id = poolId(req.params.pool);
    const body = parseWith(freezeBodySchema, req.body ?? {}, 'body');
    const outcome = await freezePool(ctx, admin, id, body.reason ?? null, body.signature ?? null);
    res.json({ ...poolView(await describePool(ctx, id)), freeze: freezeView(outcome) });
  });

  return router;
}
