/**
 * The PostgreSQL store on a real server (test/helpers/postgres.ts): the store contract, then what
 * only a shared database shows: replicas serialized by the advisory lock, the append-only audit
 * table, migrations applied once by racing replicas, a commit lost with its connection, and the
 * database constraints holding against a writer that bypasses the lock.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import pg from 'pg';
import { openPostgresStore } from '../../src/store/postgres/postgres-store.js';
import { MIGRATIONS } from '../../src/store/postgres/migrations.js';
import type { Store, StoreTx } from '../../src/store/store.js';
import { startPostgres, type PostgresServer } from '../helpers/postgres.js';
import { describeStoreContract, key, SEPOLIA, seed, withdrawal } from './store-contract.js';

let server: PostgresServer;
beforeAll(async () => {
  server = await startPostgres();
});
afterAll(async () => {
  await server?.stop();
});

const freshDatabase = () => server.createDatabase(`custody_${randomBytes(6).toString('hex')}`);

describeStoreContract('the PostgreSQL store', async () => ({ store: await openPostgresStore({ connectionString: await freshDatabase() }) }));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitUntil(condition: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 500; i += 1) {
    if (await condition()) return;
    await sleep(10);
  }
  throw new Error(`timed out waiting until ${what}`);
}

describe('the PostgreSQL store on a shared database', () => {
  const stores: Store[] = [];
  const clients: pg.Client[] = [];
  const open = async (url: string, poolSize?: number): Promise<Store> => {
    const store = await openPostgresStore({ connectionString: url, ...(poolSize === undefined ? {} : { poolSize }) });
    stores.push(store);
    return store;
  };
  /** A plain connection, as an operator (or an attacker with database access) would have. */
  const connect = async (url: string): Promise<pg.Client> => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    clients.push(client);
    return client;
  };
  afterEach(async () => {
    for (const s of stores.splice(0)) await s.close();
    for (const c of clients.splice(0)) await c.end().catch(() => undefined);
  });

  it('when two replicas race 100 transactions on one limit, then they never overlap, the limit holds and the audit chain stays whole', async () => {
    const url = await freshDatabase();
    const [a, b] = [await open(url, 5), await open(url, 5)];
    await seed(a);
    const LIMIT = 25n;
    let inside = 0;
    let mostInside = 0;
    const spend = (replica: Store, i: number) =>
      replica.transaction(async (tx) => {
        inside += 1;
        mostInside = Math.max(mostInside, inside);
        try {
          const used = await tx.committedSince('client-a', 'ETH', 0);
          await sleep(1);
          if (used + 1n > LIMIT) return false;
          const w = withdrawal({ amount: 1n, state: 'approved', committedAt: 10 });
          await tx.insertWithdrawal(w);
          await tx.appendAudit({ type: 'withdrawal.approved', actor: 'system', subject: `withdrawal:${w.id}`, data: { replica: i % 2 } }, 10 + i);
          return true;
        } finally {
          inside -= 1;
        }
      });
    const results = await Promise.all(Array.from({ length: 100 }, (_, i) => spend(i % 2 === 0 ? a : b, i)));
    expect(results.filter(Boolean).length).toBe(25);
    expect(mostInside).toBe(1);
    expect(await b.transaction((tx) => tx.committedSince('client-a', 'ETH', 0))).toBe(LIMIT);
    expect(await a.verifyAudit()).toMatchObject({ ok: true, entries: 25 });
    expect(new Set((await b.auditAfter(0, 100)).map((e) => e.data.replica))).toEqual(new Set([0, 1]));
  });

  it('when the audit table is written directly, then UPDATE, DELETE and TRUNCATE are refused; with the triggers off, verification names the first bad entry', async () => {
    const url = await freshDatabase();
    const store = await open(url);
    await store.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.appendAudit({ type: 't', actor: 'a', subject: `s${i}`, data: { i } }, 1000 + i);
    });
    const db = await connect(url);
    await expect(db.query("UPDATE audit SET actor = 'mallory' WHERE seq = 2")).rejects.toThrow('the audit log is append-only');
    await expect(db.query('DELETE FROM audit WHERE seq = 2')).rejects.toThrow('the audit log is append-only');
    await expect(db.query('TRUNCATE audit')).rejects.toThrow('the audit log is append-only');
    expect(await store.verifyAudit()).toMatchObject({ ok: true, entries: 5 });

    await db.query('ALTER TABLE audit DISABLE TRIGGER USER');
    await db.query("UPDATE audit SET actor = 'mallory' WHERE seq = 2");
    expect((await store.verifyAudit()).firstBad).toEqual({ seq: 2, reason: 'content does not match its hash (altered)' });
    await db.query("UPDATE audit SET actor = 'a' WHERE seq = 2");
    expect((await store.verifyAudit()).ok).toBe(true);
    await db.query('DELETE FROM audit WHERE seq = 3');
    expect((await store.verifyAudit()).firstBad?.seq).toBe(4);
  });

  it('when a version 6 database with committed history is opened, then migration 7 fills the minute totals exactly and the sums do not change', async () => {
    const url = await freshDatabase();
    const before = await open(url);
    await seed(before);
    const big = (1n << 255n) + 3n;
    await before.transaction(async (tx) => {
      for (const w of [
        withdrawal({ amount: big, state: 'signed', committedAt: 59_999 }),
        withdrawal({ amount: big, state: 'approved', committedAt: 60_000 }),
        withdrawal({ amount: 5n, state: 'signing', committedAt: 60_001 }),
        withdrawal({ amount: 7n, state: 'failed', committedAt: 60_002 }),
        withdrawal({ amount: 11n, state: 'timelocked', committedAt: 185_000 }),
      ]) {
        await tx.insertWithdrawal(w);
      }
    });
    // Back to version 6, as a gateway before migration 7 left it.
    const admin = await connect(url);
    await admin.query('DROP TABLE usage_minutes; DROP TABLE superseded_approvals; DROP TABLE key_addresses; DELETE FROM schema_migrations WHERE version >= 7');
    const store = await open(url);
    const sums = await store.transaction(async (tx) => Promise.all([-1, 59_998, 59_999, 60_000, 60_001, 120_000].map((since) => tx.committedSince('client-a', 'ETH', since))));
    expect(sums).toEqual([2n * big + 16n, 2n * big + 16n, big + 16n, 16n, 11n, 11n]);
    // Migration 9 listed every address of the keys that were there.
    expect((await store.read((tx) => tx.keyByAddress(key().address)))?.poolId).toBe('client-a');
    const minutes = await admin.query('SELECT minute::int AS minute, total::text AS total FROM usage_minutes ORDER BY minute');
    expect(minutes.rows).toEqual([
      { minute: 0, total: big.toString() },
      { minute: 1, total: (big + 5n).toString() },
      { minute: 3, total: '11' },
    ]);
  });

  it('when four replicas start at once on an empty database, then each migration runs once and a reopened store finds its data', async () => {
    const url = await freshDatabase();
    const replicas = await Promise.all([1, 2, 3, 4].map(() => open(url, 2)));
    const db = await connect(url);
    const applied = await db.query<{ version: number }>('SELECT version FROM schema_migrations ORDER BY version');
    expect(applied.rows.map((r) => r.version)).toEqual(MIGRATIONS.map((m) => m.version));
    await seed(replicas[0] as Store);
    expect((await (replicas[3] as Store).transaction((tx) => tx.listPools())).map((p) => p.id)).toEqual(['client-a', 'client-b']);

    for (const s of stores.splice(0)) await s.close();
    const again = await open(url);
    expect((await again.transaction((tx) => tx.getKey('client-a', SEPOLIA)))?.address).toBe('0x8ba1f109551bD432803012645Ac136ddd64DBA72');
    expect((await db.query('SELECT count(*)::int AS n FROM schema_migrations')).rows[0]).toEqual({ n: MIGRATIONS.length });

    await db.query("INSERT INTO schema_migrations (version, description) VALUES (99, 'from the future')");
    await expect(openPostgresStore({ connectionString: url })).rejects.toMatchObject({
      name: 'StoreError', code: 'store_too_new', message: `the database schema is version 99, newer than this gateway knows (${MIGRATIONS.at(-1)?.version}); run a newer gateway`,
    });
  });

  it('when the connection dies before COMMIT, then commit_unconfirmed, nothing is half-written and the store goes on', async () => {
    const url = await freshDatabase();
    const store = await open(url);
    await seed(store);
    const admin = await connect(url);
    const w = withdrawal();
    const outcome = store.transaction(async (tx) => {
      await tx.insertWithdrawal(w);
      await tx.appendAudit({ type: 'withdrawal.submitted', actor: 'ops', subject: `withdrawal:${w.id}`, data: {} }, 1);
      const holder = await admin.query<{ pid: number }>(
        "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
      );
      const pid = holder.rows[0]?.pid;
      await admin.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitUntil(async () => (await admin.query('SELECT 1 FROM pg_stat_activity WHERE pid = $1', [pid])).rowCount === 0, 'the backend is gone');
      return 'written';
    });
    await expect(outcome).rejects.toMatchObject({ name: 'StoreError', code: 'commit_unconfirmed', message: expect.stringContaining('may or may not have been applied') });
    expect(await store.transaction((tx) => tx.getWithdrawal(w.id))).toBeNull();
    expect(await store.auditAfter(0, 10)).toEqual([]);
    await store.transaction((tx) => tx.insertWithdrawal(w));
    expect((await store.transaction((tx) => tx.getWithdrawal(w.id)))?.id).toBe(w.id);
  });

  it('when a writer that bypasses the lock takes the nonce first, then the partial unique index still refuses the second live request as sign_once', async () => {
    const url = await freshDatabase();
    const store = await open(url);
    await seed(store);
    const rogue = await connect(url);
    const watcher = await connect(url);
    await rogue.query('BEGIN');
    await rogue.query(
      `INSERT INTO withdrawals (id, pool_id, chain, asset, amount, to_address, requester_id, sign_once_key, unsigned_tx, digest, max_fee, policy_version,
        required_approvals, state, reasons, approval_message, created_at, updated_at)
       VALUES ('rogue', 'client-a', $1, 'ETH', 1, '0x8ba1f109551bD432803012645Ac136ddd64DBA72', 'p1', 'nonce:9', '0x02', 'ab', 0, 1, 1, 'pending_approval', '[]', '{}', 1, 1)`,
      [SEPOLIA],
    );
    const attempt = store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:9' })));
    const waitingOnRogue = "SELECT 1 FROM pg_stat_activity WHERE application_name = 'custody-gateway' AND wait_event = 'transactionid'";
    await waitUntil(async () => (await watcher.query(waitingOnRogue)).rowCount === 1, 'the store waits on the rogue insert');
    await rogue.query('COMMIT');
    await expect(attempt).rejects.toMatchObject({ name: 'ConflictError', code: 'sign_once' });
    expect((await store.transaction((tx) => tx.listWithdrawals({ limit: 10 }))).map((w) => w.id)).toEqual(['rogue']);
  });

  it('when a transaction catches a failed statement and carries on, then transaction_aborted and nothing of it is written', async () => {
    const url = await freshDatabase();
    const store = await open(url);
    await seed(store);
    const w = withdrawal();
    let refused: unknown;
    const outcome = store.transaction(async (tx) => {
      await tx.insertWithdrawal(w);
      await tx.insertWithdrawal(withdrawal({ poolId: 'no-such-pool' })).catch((error: unknown) => {
        refused = error;
      });
      return 'carried on';
    });
    await expect(outcome).rejects.toMatchObject({ name: 'StoreError', code: 'transaction_aborted' });
    expect(refused).toMatchObject({ name: 'ConflictError', code: 'constraint', message: expect.stringContaining('violates foreign key constraint') });
    expect(await store.transaction((tx) => tx.getWithdrawal(w.id))).toBeNull();
  });

  it('when a transaction object is used after its transaction ended, then transaction_finished', async () => {
    const store = await open(await freshDatabase());
    let leaked: StoreTx | undefined;
    await store.transaction(async (tx) => {
      leaked = tx;
    });
    await expect((leaked as StoreTx).listPools()).rejects.toMatchObject({ name: 'StoreError', code: 'transaction_finished' });
  });

  it('when no server listens at DATABASE_URL, then opening fails with store_unreachable', async () => {
    await expect(openPostgresStore({ connectionString: 'postgresql://custody@127.0.0.1:1/custody' })).rejects.toMatchObject({ name: 'StoreError', code: 'store_unreachable' });
  });
});
