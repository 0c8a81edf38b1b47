/**
 * Withdrawal routes (SPEC section 6): thin — parse, call a use case, answer.
 */
import { Router, type Request, type Response } from 'express';
import { NotFoundError, ValidationError } from '../../../common/errors.js';
import type { Withdrawal } from '../../domain/withdrawal.js';
import type { ServiceContext } from '../../service/context.js';
import { submitWithdrawal } from '../../service/submit-withdrawal.js';
import { approveWithdrawal } from '../../service/approve-withdrawal.js';
import { cancelWithdrawal } from '../../service/cancel-withdrawal.js';
import { requireRole } from '../auth.js';
import { problem, sendProblem } from '../problem.js';
import {
  approvalBodySchema,
  IDEMPOTENCY_KEY,
  parseWith,
  WITHDRAWAL_ID,
  withdrawalBodySchema,
  withdrawalListQuerySchema,
} from '../schemas.js';
import { withdrawalView } from '../views.js';

function withdrawalId(req: Request): string {
  const id = req.params.id;
  if (typeof id !== 'string' || !WITHDRAWAL_ID.test(id)) throw new NotFoundError('withdrawal_not_found', `withdrawal "${String(id).slice(0, 80)}" does not exist`);
  return id;
}

export function withdrawalRoutes(ctx: ServiceContext): Router {
  const router = Router();

  const view = async (w: Withdrawal) => withdrawalView(w, await ctx.store.read((r) => r.approvalsOf(w.id)));

  const answer = async (res: Response, w: Withdrawal, status: number) => {
    const body = await view(w);
    if (w.state === 'denied') {
      const detail = w.reasons.map((r) => r.message).join('; ') || 'denied by policy';
      sendProblem(res, problem(412, 'policy_denied', detail, { id: w.id, state: w.state, reasons: w.reasons, withdrawal: body }));
      return;
    }
    res.status(status).json(body);
  };

  router.post('/v1/withdrawals', async (req, res) => {
    const requester = requireRole(req, 'requester');
    const header = req.headers['idempotency-key'];
    if (header !== undefined && (typeof header !== 'string' || !IDEMPOTENCY_KEY.test(header))) {
      throw new ValidationError('invalid_idempotency_key', 'Idempotency-Key must be 1-128 characters of letters, digits, ".", "_", ":" or "-"');
    }
    const body = parseWith(withdrawalBodySchema, req.body, 'body');
    const { withdrawal, created } = await submitWithdrawal(ctx, requester, body, header ?? null);
    if (!created) res.setHeader('Idempotent-Replayed', 'true');
    res.setHeader('Location', `/v1/withdrawals/${withdrawal.id}`);
    await answer(res, withdrawal, created ? 201 : 200);
  });

  router.get('/v1/withdrawals', async (req, res) => {
    requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    const q = parseWith(withdrawalListQuerySchema, req.query, 'query');
    const list = await ctx.store.read((r) =>
      r.listWithdrawals({
        ...(q.pool !== undefined ? { poolId: q.pool } : {}),
        ...(q.state !== undefined ? { state: q.state } : {}),
        limit: q.limit !== undefined ? Math.min(Number(q.limit), 500) : 100,
        offset: q.offset !== undefined ? Number(q.offset) : 0,
      }),
    );
    const items = [];
    for (const w of list) items.push(await view(w));
    res.json({ withdrawals: items });
  });

  router.get('/v1/withdrawals/:id', async (req, res) => {
    requireRole(req, 'requester', 'approver', 'admin', 'auditor');
    const id = withdrawalId(req);
    const w = await ctx.store.read((r) => r.getWithdrawal(id));
    if (!w) throw new NotFoundError('withdrawal_not_found', `withdrawal "${id}" does not exist`);
    res.json(await view(w));
  });

  router.post('/v1/withdrawals/:id/approvals', async (req, res) => {
    const approver = requireRole(req, 'approver');
    const id = withdrawalId(req);
    const body = parseWith(approvalBodySchema, req.body, 'body');
    const w = await approveWithdrawal(ctx, approver, id, body);
    res.status(200).json(await view(w));
  });

  router.post('/v1/withdrawals/:id/cancel', async (req, res) => {
    const actor = requireRole(req, 'requester', 'admin');
    const id = withdrawalId(req);
    if (req.body !== undefined && Object.keys(req.body as object).length > 0) {
      throw new ValidationError('invalid_body', 'cancel takes no body fields');
    }
    res.json(await view(await cancelWithdrawal(ctx, actor, id)));
  });

  return router;
}
