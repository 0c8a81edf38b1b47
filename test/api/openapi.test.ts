import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/api/openapi.js';

describe('the OpenAPI document', () => {
  const doc = openApiDocument() as { openapi: string; paths: Record<string, Record<string, unknown>>; components: { schemas: Record<string, unknown> } };

  it('when it is built, then it is OpenAPI 3.1 and documents every route of SPEC section 6 and the governance routes', () => {
    expect(doc.openapi).toBe('3.1.0');
    const routes = Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${path}`));
    expect(routes.sort()).toEqual(
      [
        'GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /openapi.json', 'GET /v1/pools', 'GET /v1/pools/{pool}', 'POST /v1/pools/{pool}/freeze',
        'POST /v1/pools/{pool}/unfreeze', 'POST /v1/pools/{pool}/policy', 'POST /v1/pools/{pool}/approvers', 'POST /v1/pools/{pool}/evaluate',
        'POST /v1/withdrawals', 'GET /v1/withdrawals', 'GET /v1/withdrawals/{id}', 'POST /v1/withdrawals/{id}/approvals', 'POST /v1/withdrawals/{id}/cancel',
        'GET /v1/proposals', 'GET /v1/proposals/{id}', 'POST /v1/proposals/{id}/approvals', 'GET /v1/audit', 'GET /v1/audit/verify',
      ].sort(),
    );
  });

  it('when every $ref is followed, then it names a schema that exists', () => {
    const refs = [...JSON.stringify(doc).matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(10);
    for (const r of refs) expect(doc.components.schemas[r], r).toBeDefined();
  });

  it('when the withdrawal request schema is read, then it is the strict zod schema: unknown fields are not allowed', () => {
    expect(doc.components.schemas.WithdrawalRequest).toMatchObject({ type: 'object', additionalProperties: false, required: ['pool', 'chain', 'asset'] });
  });
});
