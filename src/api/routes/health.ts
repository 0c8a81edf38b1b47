/**
 * Liveness, readiness and device state (SPEC section 6): readiness checks that the store and every
 * configured key device answer; `GET /v1/devices` shows each device, its state, the rules it enforces
 * itself and those that rest on the gateway alone, and the pool keys it holds, to auditors and admins.
 */
import { Router } from 'express';
import type { ServiceContext } from '../../service/context.js';
import { deviceTypeOfId } from '../../devices/device-set.js';
import { requireRole } from '../auth.js';
import { deviceView } from '../views.js';

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
    const devices = (await ctx.devices.status(READY_TIMEOUT_MS)).map((d) =>
      d.info ? { type: d.type, status: d.status, id: d.info.id } : { type: d.type, status: d.status, error: d.error },
    );
    const ready = store.status === 'ok' && devices.every((d) => d.status === 'ok');
    res.status(ready ? 200 : 503).json({ status: ready ? 'ready' : 'not_ready', store, devices });
  });
  return router;
}

export function deviceRoutes(ctx: ServiceContext): Router {
  const router = Router();
  router.get('/v1/devices', async (req, res) => {
    requireRole(req, 'auditor', 'admin');
    const keys = await ctx.store.read((r) => r.allKeys());
    const devices = (await ctx.devices.status(READY_TIMEOUT_MS)).map((d) => deviceView(d, keys.filter((k) => deviceTypeOfId(k.device) === d.type)));
    res.json({ devices });
  });
  return router;
}
