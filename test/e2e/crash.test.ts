/**
 * Crashes (SPEC rule 7): 50 runs that kill -9 the gateway (25 runs) or the simulator (25 runs) at a
 * random moment while withdrawals are being submitted and approved, then restart it. Afterwards every
 * accepted request is signed exactly once or cleanly failed, no acknowledged approval is lost, no nonce
 * is signed twice, and the audit chain verifies. The figures go to docs/reliability.md.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { Transaction } from 'ethers';
import { ALLOWLISTED, SEPOLIA, poolAddress, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

const RUNS = 50;
const PER_RUN = 3;
let stack: Stack;

interface Tracked {
  readonly key: string;
  readonly nonce: number;
  id: string | null;
  message: string | null;
  acknowledged: Set<string>;
}

/** A call that a crash may cut off: null when no answer came. */
async function attempt<T>(call: () => Promise<T>): Promise<T | null> {
  try {
    return await call();
  } catch {
    return null;
  }
}

function body(nonce: number) {
  return { pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: '1000000000000', to: ALLOWLISTED, nonce: String(nonce), gasLimit: '21000', maxFeePerGas: '20000000000', maxPriorityFeePerGas: '1000000000' };
}

async function drive(t: Tracked): Promise<void> {
  const submitted = await attempt(() => stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body(t.nonce), { 'Idempotency-Key': t.key }));
  if (!submitted || (submitted.status !== 201 && submitted.status !== 200)) return;
  t.id = submitted.body.id as string;
  t.message = submitted.body.approvalMessage as string;
  await Promise.all(
    (['alice', 'bob'] as const).map(async (who) => {
      const res = await attempt(() => stack.api('POST', `/v1/withdrawals/${t.id}/approvals`, stack.tokens[who], { signature: signApproval(t.message as string, who), decision: 'approve' }));
      if (res?.status === 200) t.acknowledged.add(who);
    }),
  );
}

/** After the restart the clients finish what they started: resubmit (same idempotency key) and re-approve. */
async function finish(t: Tracked): Promise<Record<string, unknown>> {
  const submitted = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body(t.nonce), { 'Idempotency-Key': t.key });
  expect([200, 201]).toContain(submitted.status);
  if (t.id !== null) expect(submitted.body.id).toBe(t.id);
  t.id = submitted.body.id as string;
  const current = (await stack.api('GET', `/v1/withdrawals/${t.id}`, stack.tokens.auditor)).body;
  const recorded = new Set((current.approvals as { approver: string }[]).map((a) => a.approver));
  for (const who of t.acknowledged) expect(recorded.has(who), `approval of ${who} acknowledged before the crash`).toBe(true);
  for (const who of ['alice', 'bob'] as const) {
    if (recorded.has(who) || current.state !== 'pending_approval') continue;
    const res = await stack.api('POST', `/v1/withdrawals/${t.id}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
    expect([200, 409]).toContain(res.status);
  }
  const until = Date.now() + 20_000;
  for (;;) {
    const w = (await stack.api('GET', `/v1/withdrawals/${t.id}`, stack.tokens.auditor)).body;
    if (w.state === 'signed' || w.state === 'failed') return w;
    if (Date.now() > until) throw new Error(`withdrawal ${t.id} stuck in ${String(w.state)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('kill -9 at random moments', () => {
  it(`when the gateway or the simulator is killed ${RUNS} times mid-lifecycle, then every accepted request ends signed once or cleanly failed, and nothing acknowledged is lost`, async () => {
    const all: Tracked[] = [];
    let nonce = 1000;
    for (let run = 0; run < RUNS; run++) {
      const victim = run % 2 === 0 ? 'gateway' : 'simulator';
      const batch: Tracked[] = Array.from({ length: PER_RUN }, (_, i) => ({ key: `crash-${run}-${i}`, nonce: nonce++, id: null, message: null, acknowledged: new Set<string>() }));
      all.push(...batch);
      const work = Promise.all(batch.map(drive));
      await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 120)));
      if (victim === 'gateway') await stack.gateway.kill();
      else await stack.sim.kill('SIGKILL');
      await work;
      if (victim === 'gateway') await stack.restartGateway();
      else await stack.restartSim();
      for (const t of batch) {
        const w = await finish(t);
        if (w.state === 'signed') expect(Transaction.from(w.signedTx as string).from).toBe(poolAddress(stack, 'client-a'));
      }
    }

    const db = new Database(join(stack.dataDir, 'custody.db'), { readonly: true });
    try {
      const signed = db.prepare("SELECT subject, COUNT(*) AS n FROM audit WHERE type = 'withdrawal.signed' GROUP BY subject").all() as { subject: string; n: number }[];
      expect(signed.every((s) => s.n === 1)).toBe(true);
      const nonces = db.prepare("SELECT sign_once_key AS k, COUNT(*) AS n FROM withdrawals WHERE state = 'signed' GROUP BY pool_id, chain, sign_once_key").all() as { k: string; n: number }[];
      expect(nonces.every((x) => x.n === 1)).toBe(true);
      const states = db.prepare('SELECT state, COUNT(*) AS n FROM withdrawals WHERE idempotency_key LIKE ? GROUP BY state').all('crash-%') as { state: string; n: number }[];
      const count = (state: string) => states.find((s) => s.state === state)?.n ?? 0;
      expect(count('signed') + count('failed')).toBe(RUNS * PER_RUN);
      process.stdout.write(`crash runs: ${RUNS}, requests ${RUNS * PER_RUN}, signed ${count('signed')}, failed ${count('failed')}, signatures per request max 1\n`);
    } finally {
      db.close();
    }
    const audit = await stack.cli(['audit', 'verify', '--json']);
    expect(audit.code).toBe(0);
    expect(all.every((t) => t.id !== null)).toBe(true);
  }, 600_000);
});
