/**
 * Audit routes (SPEC section 6): the hash-chained log and its verification.
 */
import { Router } from 'express';
import type { ServiceContext } from '../../service/context.js';
import { requireRole } from '../auth.js';
import { auditQuerySchema, parseWith } from '../schemas.js';

export function auditRoutes(ctx: ServiceContext): Router {
  const router = Router();

  router.get('/v1/audit', async (req, res) => {
    requireRole(req, 'auditor', 'admin');
    const q = parseWith(auditQuerySchema, req.query, 'query');
    const after = q.after !== undefined ? Number(q.after) : 0;
    const limit = q.limit !== undefined ? Math.min(Number(q.limit), 1000) : 100;
    const entries = await ctx.store.auditAfter(after, limit);
    const last = entries[entries.length - 1];
    res.json({ entries, next: last ? last.seq : null });
  });

  router.get('/v1/audit/verify', async (req, res) => {
    requireRole(req, 'auditor', 'admin');
    const result = await ctx.store.verifyAudit();
    res.status(result.ok ? 200 : 409).json(result);
  });

  return router;
}
