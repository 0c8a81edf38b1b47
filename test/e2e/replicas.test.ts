/**
 * Races across replicas (SPEC rules 4 and 5): two `custody serve` processes on one PostgreSQL database
 * (DATABASE_URL, test/helpers/postgres.ts) and one simulator. 200 withdrawals of 0.1 ETH, together
 * twice the pool's 24 h limit of 10 ETH, are submitted and approved all at once, each call sent to a
 * replica picked at random. The signed total never exceeds the limit, no request or nonce is signed
 * twice, every other request is denied for the limit, and the audit chain verifies. The figures go to
 * docs/reliability.md.
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { Transaction } from 'ethers';
import { ALLOWLISTED, callApi, ROOT, SEPOLIA, poolAddress, signApproval, startGatewayProcess, startStack, type Gateway, type Stack } from '../helpers/gateway-stack.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';

const REQUESTS = 200;
const AMOUNT = 100_000_000_000_000_000n; // 0.1 ETH
const LIMIT_24H = 10_000_000_000_000_000_000n; // the race plan's 24 h limit
const PLAN = join(ROOT, 'test', 'fixtures', 'race-plan.json');

let server: PostgresServer;
let databaseUrl: string;
let stack: Stack;
let second: Gateway;

beforeAll(async () => {
  server = await startPostgres();
  databaseUrl = await server.createDatabase(`custody_race_${randomBytes(4).toString('hex')}`);
  stack = await startStack({ plan: PLAN, env: { DATABASE_URL: databaseUrl } });
  second = await startGatewayProcess(stack.env, []);
}, 120_000);

afterAll(async () => {
  await second?.stop();
  await stack?.close();
  await server?.stop();
});

describe('two gateway replicas on one PostgreSQL database', () => {
  it(`when ${REQUESTS} withdrawals worth twice the 24 h limit are approved through both replicas at random, then the signed total stays within the limit and nothing is signed twice`, async () => {
    const replicas = [stack.gateway.url, second.url];
    const pick = () => replicas[Math.floor(Math.random() * replicas.length)] as string;
    const used = new Map<string, number>();
    const at = () => {
      const r = pick();
      used.set(r, (used.get(r) ?? 0) + 1);
      return r;
    };

    const ids = await Promise.all(
      Array.from({ length: REQUESTS }, async (_, i) => {
        const body = { pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: AMOUNT.toString(), to: ALLOWLISTED, nonce: String(i), gasLimit: '21000', maxFeePerGas: '20000000000', maxPriorityFeePerGas: '1000000000' };
        const submitted = await callApi(at(), 'POST', '/v1/withdrawals', stack.tokens.requester, body, { 'Idempotency-Key': `race-${i}` });
        expect(submitted.status, JSON.stringify(submitted.body)).toBe(201);
        const id = submitted.body.id as string;
        const message = submitted.body.approvalMessage as string;
        const approvers = (['alice', 'bob', 'carol'] as const).slice().sort(() => Math.random() - 0.5).slice(0, 2);
        const votes = await Promise.all(
          approvers.map((who) => callApi(at(), 'POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(message, who), decision: 'approve' })),
        );
        // Every vote is recorded (200), or refused only because the request was settled meanwhile (409).
        for (const v of votes) expect([200, 409], JSON.stringify(v.body)).toContain(v.status);
        return id;
      }),
    );
    expect(new Set(ids).size).toBe(REQUESTS);
    for (const r of replicas) expect(used.get(r) ?? 0).toBeGreaterThan(REQUESTS / 2);

    // Wait until no request is between its final approval and its signature.
    const db = new pg.Client({ connectionString: databaseUrl });
    await db.connect();
    try {
      const until = Date.now() + 120_000;
      for (;;) {
        const open = await db.query<{ n: string }>("SELECT COUNT(*) AS n FROM withdrawals WHERE state IN ('pending_approval', 'approved', 'signing')");
        if (open.rows[0]?.n === '0') break;
        if (Date.now() > until) throw new Error(`${open.rows[0]?.n} requests still open after 120 s`);
        await new Promise((r) => setTimeout(r, 250));
      }

      const states = await db.query<{ state: string; n: string; total: string }>('SELECT state, COUNT(*) AS n, COALESCE(SUM(amount), 0)::text AS total FROM withdrawals GROUP BY state');
      const of = (state: string) => states.rows.find((s) => s.state === state);
      const signedTotal = BigInt(of('signed')?.total ?? '0');
      expect(signedTotal <= LIMIT_24H).toBe(true);
      // The limit is reached exactly: 100 requests of 0.1 ETH fit, the other 100 are denied for it.
      expect(Number(of('signed')?.n ?? 0)).toBe(Number(LIMIT_24H / AMOUNT));
      expect(Number(of('denied')?.n ?? 0)).toBe(REQUESTS - Number(LIMIT_24H / AMOUNT));
      const denied = await db.query<{ reasons: string }>("SELECT reasons FROM withdrawals WHERE state = 'denied'");
      for (const d of denied.rows) expect((JSON.parse(d.reasons) as { code: string }[]).map((r) => r.code)).toContain('velocity_exceeded');

      const signedTwice = await db.query("SELECT subject FROM audit WHERE type = 'withdrawal.signed' GROUP BY subject HAVING COUNT(*) > 1");
      expect(signedTwice.rows).toEqual([]);
      const nonceTwice = await db.query("SELECT sign_once_key FROM withdrawals WHERE state = 'signed' GROUP BY pool_id, chain, sign_once_key HAVING COUNT(*) > 1");
      expect(nonceTwice.rows).toEqual([]);

      const signed = await db.query<{ signed_tx: string; amount: string }>("SELECT signed_tx, amount::text AS amount FROM withdrawals WHERE state = 'signed'");
      for (const row of signed.rows) {
        const tx = Transaction.from(row.signed_tx);
        expect(tx.from).toBe(poolAddress(stack, 'client-a'));
        expect(tx.value).toBe(BigInt(row.amount));
      }
      process.stdout.write(`replica race: ${REQUESTS} requests over 2 replicas (${replicas.map((r) => used.get(r) ?? 0).join(' / ')} calls), signed ${signed.rows.length} totalling ${signedTotal} wei of a ${LIMIT_24H} limit, denied ${of('denied')?.n ?? 0}, signed twice 0\n`);
    } finally {
      await db.end();
    }

    const audit = await stack.cli(['audit', 'verify', '--json']);
    expect(audit.code, audit.stderr).toBe(0);
  }, 300_000);
});
