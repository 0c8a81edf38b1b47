/**
 * The OpenAPI 3.1 document (src/api/openapi.ts, SPEC section 6): every route, resolvable references,
 * the strict request schemas, and the fields of the device and freeze answers.
 */
import { describe, expect, it } from 'vitest';
import { openApiDocument } from '../../src/api/openapi.js';
import { DEVICE_RULES } from '../../common/sim-protocol.js';

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
        'GET /v1/proposals', 'GET /v1/proposals/{id}', 'POST /v1/proposals/{id}/approvals', 'GET /v1/audit', 'GET /v1/audit/verify', 'GET /v1/devices',
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

  it('when the device schema is read, then each device names the rules it enforces and those resting on the gateway alone, both from DEVICE_RULES', () => {
    const device = doc.components.schemas.Device as { properties: Record<string, { items?: { enum?: string[] } }> };
    expect(device.properties.enforces?.items?.enum).toEqual([...DEVICE_RULES]);
    expect(device.properties.gatewayOnly?.items?.enum).toEqual([...DEVICE_RULES]);
  });

  it('when the freeze route is read, then it takes an optional signature and answers what the freeze reached', () => {
    expect(doc.components.schemas.FreezeRequest).toMatchObject({ properties: { signature: { type: 'string' }, reason: { type: 'string' } } });
    expect(doc.components.schemas.FreezeOutcome).toMatchObject({ required: ['signed', 'deviceFrozen', 'devices'] });
  });
});
