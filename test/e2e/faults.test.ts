/**
 * Device faults (hsm-sim fault flags, hsm-sim/faults.ts) against a real gateway: latency, error
 * replies, dropped connections and a crash right after signing. Each gives a clear reason and a request
 * that completes once the device is healthy again, signed exactly once; readyz follows the device.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Transaction } from 'ethers';
import { ALLOWLISTED, SEPOLIA, poolAddress, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

let stack: Stack;
let nonce = 0;

async function submitAndApprove(): Promise<{ id: string; afterApprovals: Record<string, unknown> }> {
  const submitted = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, {
    pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: '100000000000000000', to: ALLOWLISTED, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
  });
  expect(submitted.status).toBe(201);
  const id = submitted.body.id as string;
  let last: Record<string, unknown> = submitted.body;
  for (const who of ['alice', 'bob'] as const) {
    const res = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
    expect(res.status).toBe(200);
    last = res.body;
  }
  return { id, afterApprovals: last };
}

async function waitForState(id: string, state: string, ms = 15_000): Promise<Record<string, unknown>> {
  const until = Date.now() + ms;
  for (;;) {
    const w = (await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.auditor)).body;
    if (w.state === state) return w;
    if (Date.now() > until) throw new Error(`withdrawal ${id} is "${String(w.state)}", not "${state}", after ${ms} ms`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** How many signature releases the audit log records for a withdrawal. */
function signedEntries(id: string): number {
  const db = new Database(join(stack.dataDir, 'custody.db'), { readonly: true });
  try {
    return (db.prepare("SELECT COUNT(*) AS n FROM audit WHERE type = 'withdrawal.signed' AND subject = ?").get(`withdrawal:${id}`) as { n: number }).n;
  } finally {
    db.close();
  }
}

function expectSignedOnce(w: Record<string, unknown>): void {
  expect(w.state).toBe('signed');
  expect(Transaction.from(w.signedTx as string).from).toBe(poolAddress(stack, 'client-a'));
  expect(signedEntries(w.id as string)).toBe(1);
}

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('device faults', () => {
  it('when every answer is 300 ms late, then the withdrawal is still signed once', async () => {
    await stack.restartSim(['--fault-latency', '300']);
    const { id } = await submitAndApprove();
    expectSignedOnce(await waitForState(id, 'signed'));
  });

  for (const [name, flags] of [
    ['answers every request with an error', ['--fault-error-rate', '1']],
    ['drops every connection instead of answering', ['--fault-drop-rate', '1']],
  ] as const) {
    it(`when the device ${name}, then the request waits in signing with a clear reason, readyz is 503, and once the device is healthy it is signed exactly once`, async () => {
      await stack.restartSim(flags);
      const { id, afterApprovals } = await submitAndApprove();
      expect(afterApprovals.state).toBe('signing');
      expect((afterApprovals.reasons as { code: string; message: string }[])[0]).toMatchObject({ code: 'device_unavailable' });
      expect((await stack.api('GET', '/readyz', null)).status).toBe(503);
      await stack.restartSim();
      expectSignedOnce(await waitForState(id, 'signed'));
      expect((await stack.api('GET', '/readyz', null)).status).toBe(200);
    });
  }

  it('when the device crashes right after signing, before answering, then the outcome is treated as unknown and resumed: signed exactly once', async () => {
    await stack.restartSim(['--crash-after-signs', '1']);
    const { id, afterApprovals } = await submitAndApprove();
    expect(afterApprovals.state).toBe('signing');
    // The gateway sees the connection drop before this process may have reaped the simulator: wait for its exit.
    expect(await stack.sim.exited()).toBe(70);
    await stack.restartSim();
    expectSignedOnce(await waitForState(id, 'signed'));
  });

  it('when a fault flag is malformed, then the simulator refuses to start naming it', async () => {
    await expect(stack.restartSim(['--fault-error-rate', '2'])).rejects.toThrow(/--fault-error-rate must be a probability between 0 and 1/);
    await stack.restartSim();
  });
});
