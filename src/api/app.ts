/**
 * The express application: JSON bodies up to 64 KiB, bearer auth on every /v1 route, problem+json
 * errors, one log line per request (pino, secrets redacted).
 */
import express, { type Express } from 'express';
import type { ServiceContext } from '../service/context.js';
import { authenticate, requireRole } from './auth.js';
import { createMetrics, isLoopback, metricsHandler, routeLabel } from './metrics.js';
import { openApiDocument } from './openapi.js';
import { problem, problemHandler, sendProblem } from './problem.js';
import { auditRoutes } from './routes/audit.js';
import { governanceRoutes } from './routes/governance.js';
import { deviceRoutes, healthRoutes } from './routes/health.js';
import { poolRoutes } from './routes/pools.js';
import { withdrawalRoutes } from './routes/withdrawals.js';

export const BODY_LIMIT = '64kb';

export function createApp(ctx: ServiceContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');

  const metrics = createMetrics();
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ms = Number(process.hrtime.bigint() - started) / 1e6;
      metrics.httpDuration.observe({ method: req.method, route: routeLabel(req), status: String(res.statusCode) }, ms / 1000);
      ctx.log.info({ method: req.method, path: req.path, status: res.statusCode, ms: Math.round(ms * 10) / 10 }, 'request');
    });
    next();
  });

  app.use(healthRoutes(ctx));
  const openapi = openApiDocument();
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });

  // Metrics: anyone on loopback (a local Prometheus agent); from elsewhere, an auditor or admin token.
  const auth = authenticate(ctx.store);
  app.get(
    '/metrics',
    (req, res, next) => {
      if (isLoopback(req)) {
        next();
        return;
      }
      auth(req, res, (error?: unknown) => {
        if (error) {
          next(error);
          return;
        }
        try {
          requireRole(req, 'auditor', 'admin');
          next();
        } catch (e) {
          next(e);
        }
      });
    },
    metricsHandler(metrics),
  );

  app.use('/v1', auth);
  app.use(express.json({ limit: BODY_LIMIT, strict: true, type: ['application/json', 'application/*+json'] }));
  app.use(poolRoutes(ctx));
  app.use(withdrawalRoutes(ctx));
  app.use(governanceRoutes(ctx));
  app.use(auditRoutes(ctx));
  app.use(deviceRoutes(ctx));

  app.use((req, res) => {
    sendProblem(res, problem(404, 'no_route', `no route ${req.method} ${req.path}`));
  });
  app.use(problemHandler(ctx.log));
  return app;
}
