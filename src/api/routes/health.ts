/**
 * Liveness and readiness (SPEC section 6): readiness checks that the store and the device answer.
 */
import { Router } from 'express';
import type { ServiceContext } from '../../service/context.js';

const READY_TIMEOUT_MS = 2_000;

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

export function healthRoutes(ctx: ServiceContext): Router {
  const router = Router();
  router.get('/healthz', (_req, res) => {
    res.json({ status: 'ok' });
  });
  router.get('/readyz', async (_req, res) => {
    const store = await withTimeout(ctx.store.ping(), READY_TIMEOUT_MS).then(
      (ok) => (ok ? { status: 'ok' } : { status: 'down' }),
      (e: unknown) => ({ status: 'down', error: e instanceof Error ? e.message : String(e) }),
    );
    const device = await withTimeout(ctx.device.info(), READY_TIMEOUT_MS).then(
      (info) => ({ status: 'ok', id: info.id, type: info.type }),
      (e: unknown) => ({ status: 'down', error: e instanceof Error ? e.message : String(e) }),
    );
    const ready = store.status === 'ok' && device.status === 'ok';
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', store, devices: [device] });
  });
  return router;
}
