/**
 * SQLite schema migrations, applied in order at open inside one transaction and recorded in
 * `PRAGMA user_version`. A migration is never edited once released: changes are new entries.
 *
 * The sign-once rule (SPEC rule 5) is a partial unique index: among live requests, a (pool, chain,
 * sign-once key) appears once. The audit table is append-only by trigger; its hash chain is what
 * makes tampering detectable when someone bypasses the triggers with file access.
 */
import { everyAddressOfKey } from '../../chains/addresses.js';
import { parseChainId } from '../../../common/chain-id.js';
import type Database from 'better-sqlite3';
import { COMMITTED_STATES } from '../../domain/withdrawal.js';
import { minuteOf } from '../usage-minutes.js';
export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
  /** Drops and recreates tables that others reference: run with foreign keys off, then checked. */
  readonly rebuildsTables?: boolean;
  /** Fills what SQL alone cannot compute exactly, after `sql`, in the same transaction. */
  readonly backfill?: (db: Database.Database) => void;
}

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'principals, approvers, pools, policies, keys, withdrawals, approvals, audit, settings',
    sql: `
      CREATE TABLE principals (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('requester', 'approver', 'admin', 'auditor')),
        token_hash TEXT NOT NULL UNIQUE,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE approvers (
        id TEXT PRIMARY KEY,
        public_key TEXT NOT NULL UNIQUE
      );
      CREATE TABLE pools (
        id TEXT PRIMARY KEY,
        owner TEXT NOT NULL,
        chains TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'frozen')),
        approvers TEXT NOT NULL,
        policy_version INTEGER NOT NULL,
        created_at INTEGER NOT NULL
      );
      CREATE TABLE pool_policies (
        pool_id TEXT NOT NULL REFERENCES pools (id),
        version INTEGER NOT NULL,
        document TEXT NOT NULL,
        PRIMARY KEY (pool_id, version)
      );
      CREATE TABLE pool_keys (
        pool_id TEXT NOT NULL REFERENCES pools (id),
        chain TEXT NOT NULL,
        curve TEXT NOT NULL,
        public_key TEXT NOT NULL UNIQUE,
        address TEXT NOT NULL UNIQUE,
        device TEXT NOT NULL,
        handle TEXT NOT NULL,
        ceremony_id TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (pool_id, chain),
        UNIQUE (device, handle)
      );
      CREATE TABLE withdrawals (
        id TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES pools (id),
        chain TEXT NOT NULL,
        asset TEXT NOT NULL,
        amount TEXT NOT NULL,
        to_address TEXT NOT NULL,
        requester_id TEXT NOT NULL REFERENCES principals (id),
        idempotency_key TEXT,
        sign_once_key TEXT NOT NULL,
        unsigned_tx TEXT NOT NULL,
        digest TEXT NOT NULL,
        max_fee TEXT NOT NULL,
        policy_version INTEGER NOT NULL,
        required_approvals INTEGER NOT NULL,
        state TEXT NOT NULL,
        reasons TEXT NOT NULL,
        approval_message TEXT NOT NULL,
        signed_tx TEXT,
        tx_hash TEXT,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        committed_at INTEGER,
        not_before INTEGER,
        expires_at INTEGER
      );
      CREATE UNIQUE INDEX withdrawals_idempotency ON withdrawals (requester_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE UNIQUE INDEX withdrawals_sign_once ON withdrawals (pool_id, chain, sign_once_key)
        WHERE state IN ('pending_approval', 'approved', 'timelocked', 'signing', 'signed');
      CREATE INDEX withdrawals_committed ON withdrawals (pool_id, asset, committed_at) WHERE committed_at IS NOT NULL;
      CREATE INDEX withdrawals_state ON withdrawals (state, created_at);
      CREATE INDEX withdrawals_pool_created ON withdrawals (pool_id, created_at);
      CREATE INDEX withdrawals_created ON withdrawals (created_at);
      CREATE TABLE approvals (
        withdrawal_id TEXT NOT NULL REFERENCES withdrawals (id),
        approver_id TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (withdrawal_id, approver_id)
      );
      CREATE TABLE audit (
        seq INTEGER PRIMARY KEY,
        at TEXT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
      CREATE TABLE settings (
        key TEXT PRIMARY KEY,
        value TEXT NOT NULL
      );
    `,
  },
  {
    version: 2,
    description: 'governance proposals and their admin approvals',
    sql: `
      CREATE TABLE proposals (
        id TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES pools (id),
        action TEXT NOT NULL CHECK (action IN ('policy', 'unfreeze', 'approvers')),
        change TEXT NOT NULL,
        binding TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        required_approvals INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'failed')),
        approval_message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        applied_version INTEGER,
        reason TEXT
      );
      CREATE INDEX proposals_pool ON proposals (pool_id, created_at);
      CREATE TABLE proposal_approvals (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        admin_id TEXT NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (proposal_id, admin_id)
      );
    `,
  },
  {
    version: 3,
    description: 'claims of withdrawals on shared resources (Bitcoin outpoints): one live claimant each',
    sql: `
      CREATE TABLE withdrawal_claims (
        withdrawal_id TEXT NOT NULL REFERENCES withdrawals (id),
        pool_id TEXT NOT NULL,
        chain TEXT NOT NULL,
        claim TEXT NOT NULL,
        PRIMARY KEY (withdrawal_id, claim)
      );
      CREATE INDEX withdrawal_claims_lookup ON withdrawal_claims (pool_id, chain, claim);
    `,
  },
  {
    version: 4,
    description: 'the contract call a withdrawal makes (contract and selector, JSON), so re-evaluation checks it against the policy',
    sql: `
      ALTER TABLE withdrawals ADD COLUMN contract_call TEXT;
    `,
  },
  {
    version: 5,
    description: 'proofs of control: a governed proposal action, and each key\'s signature of the challenge',
    // SQLite cannot change a CHECK constraint in place: the proposals table is rebuilt with the new
    // action, as SQLite's ALTER TABLE documentation prescribes (foreign keys off, then checked).
    rebuildsTables: true,
    sql: `
      CREATE TABLE proposals_v5 (
        id TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL REFERENCES pools (id),
        action TEXT NOT NULL CHECK (action IN ('policy', 'unfreeze', 'approvers', 'attest-control')),
        change TEXT NOT NULL,
        binding TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        required_approvals INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'failed')),
        approval_message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        updated_at INTEGER NOT NULL,
        applied_version INTEGER,
        reason TEXT
      );
      INSERT INTO proposals_v5 SELECT * FROM proposals;
      DROP TABLE proposals;
      ALTER TABLE proposals_v5 RENAME TO proposals;
      CREATE INDEX proposals_pool ON proposals (pool_id, created_at);
      CREATE TABLE control_proofs (
        proposal_id TEXT NOT NULL REFERENCES proposals (id),
        pool_id TEXT NOT NULL,
        chain TEXT NOT NULL,
        address TEXT NOT NULL,
        format TEXT NOT NULL CHECK (format IN ('eip191', 'bitcoin-message', 'ed25519')),
        signature TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        PRIMARY KEY (proposal_id, chain)
      );
    `,
  },
  {
    version: 6,
    description: 'usage index covers the window sums: state and amount in the index, no table lookups',
    sql: `
      CREATE INDEX withdrawals_usage ON withdrawals (pool_id, asset, committed_at, state, amount) WHERE committed_at IS NOT NULL;
      DROP INDEX withdrawals_committed;
    `,
  },
  {
    version: 7,
    description: 'running totals of committed usage per pool, asset and minute (store/usage-minutes.ts)',
    sql: `
      CREATE TABLE usage_minutes (
        pool_id TEXT NOT NULL,
        asset TEXT NOT NULL,
        minute INTEGER NOT NULL,
        total TEXT NOT NULL,
        PRIMARY KEY (pool_id, asset, minute)
      ) WITHOUT ROWID;
    `,
    // Amounts are decimal text of up to 78 digits: summed as bigints, not in SQL.
    backfill: (db) => {
      const totals = new Map<string, { poolId: string; asset: string; minute: number; total: bigint }>();
      const committed = db.prepare(
        `SELECT pool_id, asset, committed_at, amount FROM withdrawals WHERE committed_at IS NOT NULL AND state IN (${COMMITTED_STATES.map((s) => `'${s}'`).join(', ')})`,
      );
      for (const r of committed.iterate() as IterableIterator<{ pool_id: string; asset: string; committed_at: number; amount: string }>) {
        const minute = minuteOf(r.committed_at);
        const k = `${r.pool_id}\u0000${r.asset}\u0000${minute}`;
        const t = totals.get(k) ?? { poolId: r.pool_id, asset: r.asset, minute, total: 0n };
        t.total += BigInt(r.amount);
        totals.set(k, t);
      }
      const insert = db.prepare('INSERT INTO usage_minutes (pool_id, asset, minute, total) VALUES (?, ?, ?, ?)');
      for (const t of totals.values()) insert.run(t.poolId, t.asset, t.minute, t.total.toString());
    },
  },
  {
    version: 8,
    description:
      'approval message version 2 (the message carries the transaction): votes on the version 1 message of a request still open move here when the gateway gives that request its version 2 message at start, and no longer count',
    sql: `
      CREATE TABLE superseded_approvals (
        withdrawal_id TEXT NOT NULL REFERENCES withdrawals (id),
        approver_id TEXT NOT NULL,
        decision TEXT NOT NULL,
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at INTEGER NOT NULL,
        superseded_at INTEGER NOT NULL
      );
      CREATE INDEX superseded_approvals_withdrawal ON superseded_approvals (withdrawal_id);
    `,
  },
  {
    version: 9,
    description: 'every address each pool key controls (a Bitcoin key pays at its P2WPKH and its P2TR address), for the commingling check',
    sql: `
      CREATE TABLE key_addresses (
        address TEXT PRIMARY KEY,
        pool_id TEXT NOT NULL,
        chain TEXT NOT NULL,
        FOREIGN KEY (pool_id, chain) REFERENCES pool_keys (pool_id, chain)
      ) WITHOUT ROWID;
    `,
    backfill: (db) => {
      const insert = db.prepare('INSERT OR IGNORE INTO key_addresses (address, pool_id, chain) VALUES (?, ?, ?)');
      // All rows first: better-sqlite3 runs no insert while a select on the same connection iterates.
      for (const k of db.prepare('SELECT pool_id, chain, public_key, address FROM pool_keys').all() as { pool_id: string; chain: string; public_key: string; address: string }[]) {
        for (const a of everyAddressOfKey(parseChainId(k.chain), k.public_key, k.address)) insert.run(a, k.pool_id, k.chain);
      }
    },
  },
];
