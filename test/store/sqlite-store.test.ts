/**
 * What only the SQLite store shows, on a real file (the rules every store keeps are the store
 * contract, test/store/store-contract.ts, run on SQLite by sqlite-contract.test.ts): durability across
 * reopen, migrations of an older file, the database constraints under direct writes, tamper detection
 * through the file, group commit, and exact window sums past 64 bits.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { MIGRATIONS } from '../../src/store/sqlite/migrations.js';
import type { Store } from '../../src/store/store.js';
import { key, SEPOLIA, seed, withdrawal } from './store-contract.js';

const open: Store[] = [];

function fresh(): { store: Store; path: string } {
  const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'custody.db');
  const store = openSqliteStore({ path });
  open.push(store);
  return { store, path };
}

afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

describe('the SQLite store', () => {
  it('when records are written and the file is reopened, then they come back exactly, amounts near 2^256 included', async () => {
    const { store, path } = fresh();
    await seed(store);
    const w = withdrawal();
    await store.transaction((tx) => tx.insertWithdrawal(w));
    await store.close();
    const again = openSqliteStore({ path });
    open.push(again);
    expect(await again.transaction((tx) => tx.getWithdrawal(w.id))).toEqual(w);
    expect(await again.transaction((tx) => tx.getPool('client-a'))).toMatchObject({ chains: [SEPOLIA], approvers: ['alice'] });
    expect(await again.transaction((tx) => tx.getPolicy('client-a', 1))).toEqual({ quorum: [{ approvals: 1 }], assets: {} });
    expect(await again.transaction((tx) => tx.principalByTokenHash('h1'))).toMatchObject({ name: 'ops' });
    const db = new Database(path, { readonly: true });
    expect(db.pragma('journal_mode', { simple: true })).toBe('wal');
    expect(db.pragma('user_version', { simple: true })).toBe(MIGRATIONS.length);
    db.close();
  });

  it('when a version 4 database with proposals is opened, then migration 5 keeps every proposal and approval and accepts proofs of control', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'custody.db');
    const old = new Database(path);
    old.pragma('foreign_keys = ON');
    for (const m of MIGRATIONS.filter((x) => x.version <= 4)) old.exec(m.sql);
    old.pragma('user_version = 4');
    old.exec(`INSERT INTO pools (id, owner, chains, status, approvers, policy_version, created_at) VALUES ('client-a', 'A', '["eip155:11155111"]', 'active', '["alice"]', 1, 1)`);
    old.exec(`INSERT INTO proposals VALUES ('p-1', 'client-a', 'unfreeze', '{"action":"unfreeze"}', '{}', 'alice', 2, 'pending', 'm', 1, 1, NULL, NULL)`);
    old.exec(`INSERT INTO proposal_approvals VALUES ('p-1', 'bob', 'approve', 'ab', 'm', 2)`);
    old.close();

    const store = openSqliteStore({ path });
    open.push(store);
    const [proposal, approvals] = await store.transaction(async (tx) => [await tx.getProposal('p-1'), await tx.proposalApprovalsOf('p-1')] as const);
    expect(proposal).toMatchObject({ id: 'p-1', poolId: 'client-a', change: { action: 'unfreeze' }, state: 'pending', proposedBy: 'alice' });
    expect(approvals.map((a) => a.adminId)).toEqual(['bob']);
    const proof = { proposalId: 'p-1', poolId: 'client-a', chain: 'eip155:11155111', address: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', format: 'eip191' as const, signature: '0x' + 'ab'.repeat(65), createdAt: 3 };
    await store.transaction((tx) => tx.insertControlProof(proof));
    expect(await store.transaction((tx) => tx.controlProofsOf('p-1'))).toEqual([proof]);
    const db = new Database(path, { readonly: true });
    expect(db.pragma('foreign_key_check')).toEqual([]);
    expect((db.prepare("SELECT sql FROM sqlite_master WHERE name = 'proposals'").get() as { sql: string }).sql).toContain("'attest-control'");
    db.close();
  });

  it('when a version 6 database with committed history is opened, then migration 7 fills the minute totals exactly and the sums do not change', async () => {
    const path = join(mkdtempSync(join(tmpdir(), 'store-')), 'custody.db');
    const before = openSqliteStore({ path });
    await seed(before);
    const big = (1n << 255n) + 3n;
    const rows = [
      withdrawal({ amount: big, state: 'signed', committedAt: 59_999 }),
      withdrawal({ amount: big, state: 'approved', committedAt: 60_000 }),
      withdrawal({ amount: 5n, state: 'signing', committedAt: 60_001 }),
      withdrawal({ amount: 7n, state: 'failed', committedAt: 60_002 }),
      withdrawal({ amount: 11n, state: 'timelocked', committedAt: 185_000 }),
    ];
    await before.transaction(async (tx) => {
      for (const r of rows) await tx.insertWithdrawal(r);
    });
    await before.close();
    // Back to version 6: as a gateway before migration 7 left it.
    const db = new Database(path);
    db.exec('DROP TABLE usage_minutes; DROP TABLE superseded_approvals; DROP TABLE key_addresses');
    db.pragma('user_version = 6');
    db.close();

    const store = openSqliteStore({ path });
    open.push(store);
    const sums = await store.transaction(async (tx) => Promise.all([-1, 59_998, 59_999, 60_000, 60_001, 120_000].map((since) => tx.committedSince('client-a', 'ETH', since))));
    expect(sums).toEqual([2n * big + 16n, 2n * big + 16n, big + 16n, 16n, 11n, 11n]);
    // Migration 9 listed every address of the keys that were there.
    expect((await store.read((tx) => tx.keyByAddress(key().address)))?.poolId).toBe('client-a');
    const check = new Database(path, { readonly: true });
    expect(check.prepare('SELECT minute, total FROM usage_minutes ORDER BY minute').all()).toEqual([
      { minute: 0, total: big.toString() },
      { minute: 1, total: (big + 5n).toString() },
      { minute: 3, total: '11' },
    ]);
    check.close();
  });

  it('when the database is written directly, then the partial unique index still refuses a second live nonce', async () => {
    const { store, path } = fresh();
    await seed(store);
    await store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:7' })));
    const db = new Database(path);
    const row = db.prepare("SELECT * FROM withdrawals WHERE sign_once_key = 'nonce:7'").get() as Record<string, unknown>;
    const copy = { ...row, id: 'another-id', idempotency_key: null };
    const columns = Object.keys(copy);
    const insert = db.prepare(`INSERT INTO withdrawals (${columns.join(', ')}) VALUES (${columns.map((c) => '@' + c).join(', ')})`);
    expect(() => insert.run(copy)).toThrow(/UNIQUE constraint failed: withdrawals.pool_id, withdrawals.chain, withdrawals.sign_once_key/);
    insert.run({ ...copy, state: 'failed' });
    db.close();
  });

  it('when audit rows are tampered with through the file, then verification names the first bad entry; the triggers stop ordinary edits', async () => {
    const { store, path } = fresh();
    await store.transaction(async (tx) => {
      for (let i = 0; i < 5; i++) await tx.appendAudit({ type: 't', actor: 'a', subject: `s${i}`, data: { i } }, 1000 + i);
    });
    expect(await store.verifyAudit()).toMatchObject({ ok: true, entries: 5 });

    const db = new Database(path);
    expect(() => db.prepare('UPDATE audit SET actor = ? WHERE seq = 2').run('mallory')).toThrow(/append-only/);
    expect(() => db.prepare('DELETE FROM audit WHERE seq = 2').run()).toThrow(/append-only/);
    db.exec('DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete');
    db.prepare('UPDATE audit SET actor = ? WHERE seq = 2').run('mallory');
    expect((await store.verifyAudit()).firstBad).toEqual({ seq: 2, reason: 'content does not match its hash (altered)' });
    db.prepare('UPDATE audit SET actor = ? WHERE seq = 2').run('a');
    expect((await store.verifyAudit()).ok).toBe(true);
    db.prepare('DELETE FROM audit WHERE seq = 3').run();
    expect((await store.verifyAudit()).firstBad?.seq).toBe(4);
    db.close();
  });

  it('when an audit row gains a duplicate key in its stored data, then verification refuses it though JSON.parse sees the hashed value', async () => {
    const { store, path } = fresh();
    await store.transaction(async (tx) => {
      await tx.appendAudit({ type: 't', actor: 'a', subject: 's1', data: { amount: '1' } }, 1000);
      await tx.appendAudit({ type: 't', actor: 'a', subject: 's2', data: { amount: '2' } }, 1001);
    });
    const db = new Database(path);
    db.exec('DROP TRIGGER audit_no_update');
    // SQLite's json_extract reads the first "amount", JSON.parse (and so the hash) the last.
    db.prepare('UPDATE audit SET data = ? WHERE seq = 1').run('{"amount":"999","amount":"1"}');
    expect(db.prepare("SELECT json_extract(data, '$.amount') AS a FROM audit WHERE seq = 1").get()).toEqual({ a: '999' });
    db.close();
    expect((await store.verifyAudit()).firstBad).toEqual({ seq: 1, reason: 'stored data is not the JSON its hash covers (a duplicate key or an edit the hash does not see)' });
  });

});

describe('group commit', () => {
  it('when transactions are requested together and one of them fails, then the failed one alone is rolled back (its audit entry too) and every other result survives a reopen', async () => {
    const { store, path } = fresh();
    const principal = (i: number) => ({ id: `p-${i}`, name: `n-${i}`, role: 'requester' as const, tokenHash: `h-${i}`, createdAt: i });
    const outcomes = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        store.transaction(async (tx) => {
          await tx.insertPrincipal(principal(i));
          await tx.appendAudit({ type: 'principal.created', actor: 'test', subject: `principal:p-${i}`, data: {} }, i);
          if (i === 7) throw new Error('step 7 fails after writing');
          return i;
        }),
      ),
    );
    expect(outcomes.map((o) => o.status)).toEqual(Array.from({ length: 20 }, (_, i) => (i === 7 ? 'rejected' : 'fulfilled')));
    expect(outcomes.filter((o) => o.status === 'fulfilled').map((o) => (o as PromiseFulfilledResult<number>).value)).toEqual(Array.from({ length: 20 }, (_, i) => i).filter((i) => i !== 7));
    await store.close();

    const db = new Database(path, { readonly: true });
    try {
      const ids = (db.prepare('SELECT id FROM principals ORDER BY created_at').all() as { id: string }[]).map((r) => r.id);
      expect(ids).toEqual(Array.from({ length: 20 }, (_, i) => `p-${i}`).filter((id) => id !== 'p-7'));
      expect((db.prepare("SELECT COUNT(*) AS n FROM audit WHERE type = 'principal.created'").get() as { n: number }).n).toBe(19);
    } finally {
      db.close();
    }
    const reopened = openSqliteStore({ path });
    open.push(reopened);
    expect((await reopened.verifyAudit()).ok).toBe(true);
  });
});

describe('committed usage', () => {
  it('when committed amounts of every size are summed, then the total is exact, also past the 64-bit sums SQLite can hold (10,000 rows of 78 digits)', async () => {
    const { store } = fresh();
    await seed(store);
    const max = 10n ** 78n - 1n;
    const amounts = [0n, 1n, 999_999_999_999_999n, 10n ** 15n, 10n ** 18n + 7n, (1n << 256n) - 1n, max, 123456789012345678901234567890n];
    const few = amounts.map((amount, i) => withdrawal({ amount, state: 'signed', committedAt: 5_000 + i }));
    await store.transaction(async (tx) => {
      for (const w of few) await tx.insertWithdrawal(w);
      // Not counted: outside the window, not committed, another pool.
      await tx.insertWithdrawal(withdrawal({ amount: 5n, state: 'signed', committedAt: 10 }));
      await tx.insertWithdrawal(withdrawal({ amount: 5n, state: 'denied', committedAt: 6_000 }));
    });
    const sum = (xs: readonly bigint[]) => xs.reduce((a, b) => a + b, 0n);
    expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 4_999))).toBe(sum(amounts));
    expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 5_003))).toBe(sum(amounts.slice(4)));

    // Each 15-digit limb of 10^78 - 1 is 10^15 - 1: 10,000 of them overflow a 64-bit sum.
    const many = Array.from({ length: 10_000 }, (_, i) => withdrawal({ amount: max, state: 'approved', committedAt: 20_000 + i }));
    await store.transaction(async (tx) => {
      for (const w of many) await tx.insertWithdrawal(w);
    });
    expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 19_999))).toBe(max * 10_000n);
    expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 4_999))).toBe(sum(amounts) + max * 10_000n);
  });
});
