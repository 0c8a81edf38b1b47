/**
 * Security and bad input through the real gateway: every route refuses a missing or unknown token
 * (401) and every role it does not allow (403); an approver of another pool and a replayed approval
 * are refused; thousands of random and mutated API bodies (fast-check) get a 4xx problem document,
 * never a 5xx, and change nothing; the logs of all of it hold no token, PIN or key.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { ALLOWLISTED, APPROVER_SECRETS, SEPOLIA, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

let stack: Stack;
const UUID = '6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10';
type Role = 'requester' | 'approver' | 'admin' | 'auditor';
const ROLES: Role[] = ['requester', 'approver', 'admin', 'auditor'];

/** Every authenticated route and the roles it allows (README's API table). */
const ROUTES: { method: string; path: string; allowed: Role[]; body?: unknown }[] = [
  { method: 'GET', path: '/v1/pools', allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'GET', path: '/v1/pools/client-a', allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'POST', path: '/v1/pools/client-a/freeze', allowed: ['admin'], body: {} },
  { method: 'POST', path: '/v1/pools/client-a/evaluate', allowed: ['requester', 'admin'], body: {} },
  { method: 'POST', path: '/v1/pools/client-a/policy', allowed: ['admin'], body: {} },
  { method: 'POST', path: '/v1/pools/client-a/unfreeze', allowed: ['admin'], body: {} },
  { method: 'POST', path: '/v1/pools/client-a/approvers', allowed: ['admin'], body: {} },
  { method: 'POST', path: '/v1/pools/client-a/attest-control', allowed: ['admin'], body: {} },
  { method: 'POST', path: '/v1/withdrawals', allowed: ['requester'], body: {} },
  { method: 'GET', path: '/v1/withdrawals', allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'GET', path: `/v1/withdrawals/${UUID}`, allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'POST', path: `/v1/withdrawals/${UUID}/approvals`, allowed: ['approver'], body: {} },
  { method: 'POST', path: `/v1/withdrawals/${UUID}/cancel`, allowed: ['requester', 'admin'], body: {} },
  { method: 'GET', path: '/v1/proposals', allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'GET', path: `/v1/proposals/${UUID}`, allowed: ['requester', 'approver', 'admin', 'auditor'] },
  { method: 'POST', path: `/v1/proposals/${UUID}/approvals`, allowed: ['admin'], body: {} },
  { method: 'GET', path: '/v1/audit', allowed: ['auditor', 'admin'] },
  { method: 'GET', path: '/v1/audit/verify', allowed: ['auditor', 'admin'] },
  { method: 'GET', path: '/v1/devices', allowed: ['auditor', 'admin'] },
];

function tokenOf(role: Role): string {
  return role === 'approver' ? stack.tokens.alice : stack.tokens[role];
}

function counts(): { withdrawals: number; proposals: number; approvals: number; audit: number } {
  const db = new Database(join(stack.dataDir, 'custody.db'), { readonly: true });
  try {
    const n = (table: string) => (db.prepare(`SELECT COUNT(*) AS n FROM ${table}`).get() as { n: number }).n;
    return { withdrawals: n('withdrawals'), proposals: n('proposals'), approvals: n('approvals'), audit: n('audit') };
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('authentication and roles', () => {
  for (const route of ROUTES) {
    it(`when ${route.method} ${route.path} is called without a token, with an unknown one, or by a role it does not allow, then 401 / 403`, async () => {
      expect((await stack.api(route.method, route.path, null, route.body)).status).toBe(401);
      expect((await stack.api(route.method, route.path, 'cgt_' + 'x'.repeat(40), route.body)).status).toBe(401);
      for (const role of ROLES.filter((r) => !route.allowed.includes(r))) {
        const res = await stack.api(route.method, route.path, tokenOf(role), route.body);
        expect(res.status, `${role} on ${route.method} ${route.path}`).toBe(403);
        expect(res.contentType).toContain('application/problem+json');
      }
      for (const role of route.allowed) {
        const res = await stack.api(route.method, route.path, tokenOf(role), route.body);
        expect([401, 403]).not.toContain(res.status);
      }
    });
  }

  it('when an approver of another pool approves, or an approval is replayed on the same or another request, then it is refused', async () => {
    const body = (nonce: number) => ({ pool: 'client-b', chain: SEPOLIA, asset: 'ETH', amount: '1000', to: ALLOWLISTED, nonce: String(nonce), gasLimit: '21000', maxFeePerGas: '10', maxPriorityFeePerGas: '1' });
    const first = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body(900));
    const second = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body(901));
    const message = first.body.approvalMessage as string;
    const notTheirs = await stack.api('POST', `/v1/withdrawals/${first.body.id as string}/approvals`, stack.tokens.alice, { signature: signApproval(message, 'alice'), decision: 'approve' });
    expect(notTheirs.status).toBe(403);
    const bob = { signature: signApproval(message, 'bob'), decision: 'approve' };
    expect((await stack.api('POST', `/v1/withdrawals/${first.body.id as string}/approvals`, stack.tokens.bob, bob)).status).toBe(200);
    const again = await stack.api('POST', `/v1/withdrawals/${first.body.id as string}/approvals`, stack.tokens.bob, bob);
    expect(again.status).toBe(409);
    const elsewhere = await stack.api('POST', `/v1/withdrawals/${second.body.id as string}/approvals`, stack.tokens.bob, bob);
    expect(elsewhere.status).toBe(400);
    expect(elsewhere.body.code).toBe('bad_approval_signature');
  });
});

describe('bad input', () => {
  const routes = ['/v1/withdrawals', '/v1/pools/client-a/evaluate', '/v1/pools/client-a/policy', '/v1/pools/client-a/approvers', '/v1/pools/client-a/attest-control'];
  const valid = { pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: '1000', to: ALLOWLISTED, nonce: '5', gasLimit: '21000', maxFeePerGas: '10', maxPriorityFeePerGas: '1' };
  const mutated = fc.record(
    Object.fromEntries(Object.entries(valid).map(([k, v]) => [k, fc.oneof(fc.constant(v), fc.string({ maxLength: 90 }), fc.integer(), fc.constant(null), fc.constant('-1'), fc.constant('1'.repeat(80)), fc.jsonValue({ maxDepth: 2 }))])),
    { requiredKeys: [] },
  );

  it('when thousands of random and mutated bodies are posted, then each gets a 4xx problem document and nothing is created', async () => {
    const before = counts();
    const seen = new Set<number>();
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...routes), fc.oneof(mutated, fc.jsonValue({ maxDepth: 3 }), fc.string({ maxLength: 200 })), async (route, body) => {
        const token = route === '/v1/withdrawals' ? stack.tokens.requester : stack.tokens.auditor;
        const res = await stack.api('POST', route, token, typeof body === 'string' ? body : JSON.stringify(body));
        seen.add(res.status);
        if (res.status >= 500) throw new Error(`${route} answered ${res.status} to ${JSON.stringify(body).slice(0, 200)}`);
        // A valid request may pass (201/200); everything refused is a problem document.
        if (res.status >= 400) expect(res.contentType).toContain('application/problem+json');
      }),
      { numRuns: 2000 },
    );
    const after = counts();
    // Only requester-created withdrawals can appear (a random body that happens to be valid); no proposal, approval or stray audit.
    expect(after.proposals).toBe(before.proposals);
    expect(after.approvals).toBe(before.approvals);
    expect(after.audit - before.audit).toBe(after.withdrawals - before.withdrawals);
    expect([...seen].every((s) => s < 500)).toBe(true);
  }, 120_000);

  it('when the body is not JSON, too large, or of another content type, then a 4xx names why', async () => {
    const notJson = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, '{"pool":');
    expect(notJson.status).toBe(400);
    const huge = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, JSON.stringify({ ...valid, to: 'x'.repeat(2_000_000) }));
    expect(huge.status).toBe(413);
  });
});

describe('secrets in logs', () => {
  it('when everything above ran, then no token, PIN or approver secret key appears in the gateway logs', () => {
    const logs = stack.allLogs().join('\n');
    expect(logs.length).toBeGreaterThan(1000);
    for (const token of Object.values(stack.tokens)) expect(logs).not.toContain(token);
    expect(logs).not.toContain(stack.env.HSM_PIN as string);
    for (const secret of Object.values(APPROVER_SECRETS)) expect(logs).not.toContain(secret);
  });
});
