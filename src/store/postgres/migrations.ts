/**
 * PostgreSQL schema migrations, the same schema as the SQLite store's (src/store/sqlite/migrations.ts)
 * version for version, so "schema version N" means the same tables on both. A migration is never
 * edited once released: changes are new entries, here and in SQLite.
 *
 * The applied versions are rows of `schema_migrations`. `migrate` runs inside the store's locked
 * transaction (postgres-store.ts): every pending migration commits together, or none does, and two
 * replicas starting at once take turns on the advisory lock, so the second finds nothing to do.
 *
 * Choices (PostgreSQL 15 documentation, chapters 8 and 11):
 * - amounts are NUMERIC(78,0): every uint256 fits (2^256 - 1 has 78 digits), sums are exact;
 * - times are BIGINT milliseconds since the epoch, as in SQLite;
 * - JSON is kept as TEXT, exactly the text the gateway wrote, as in SQLite (JSONB would refuse
 *   strings holding \u0000 that SQLite keeps, and the audit hash covers the data as written);
 * - identifiers sort by bytes (COLLATE "C"), as SQLite's BINARY collation does, whatever the
 *   database's locale;
 * - sign-once is a partial unique index among live states; the audit table refuses UPDATE, DELETE
 *   and TRUNCATE by trigger.
 * Constraints the store maps to conflict codes are named explicitly (postgres-store.ts).
 */
import { everyAddressOfKey } from '../../chains/addresses.js';
import { parseChainId } from '../../../common/chain-id.js';
import { StoreError } from '../../../common/errors.js';
import { COMMITTED_STATES, LIVE_STATES } from '../../domain/withdrawal.js';
import { MINUTE_MS } from '../usage-minutes.js';

export interface Migration {
  readonly version: number;
  readonly description: string;
  readonly sql: string;
  /** Fills what SQL alone cannot compute, after `sql`, in the same transaction. */
  readonly backfill?: (query: MigrationQuery) => Promise<void>;
}

/** Runs one statement (or, without values, several) in the migrating transaction; returns the rows. */
export type MigrationQuery = (text: string, values?: readonly unknown[]) => Promise<readonly Record<string, unknown>[]>;

const LIVE = LIVE_STATES.map((s) => `'${s}'`).join(', ');

export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    description: 'principals, approvers, pools, policies, keys, withdrawals, approvals, audit, settings',
    sql: `
      CREATE TABLE principals (
        id TEXT COLLATE "C" CONSTRAINT principals_pkey PRIMARY KEY,
        name TEXT NOT NULL,
        role TEXT NOT NULL CHECK (role IN ('requester', 'approver', 'admin', 'auditor')),
        token_hash TEXT NOT NULL CONSTRAINT principals_token_hash_key UNIQUE,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE approvers (
        id TEXT COLLATE "C" CONSTRAINT approvers_pkey PRIMARY KEY,
        public_key TEXT NOT NULL CONSTRAINT approvers_public_key_key UNIQUE
      );
      CREATE TABLE pools (
        id TEXT COLLATE "C" CONSTRAINT pools_pkey PRIMARY KEY,
        owner TEXT NOT NULL,
        chains TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('active', 'frozen')),
        approvers TEXT NOT NULL,
        policy_version INTEGER NOT NULL,
        created_at BIGINT NOT NULL
      );
      CREATE TABLE pool_policies (
        pool_id TEXT COLLATE "C" NOT NULL REFERENCES pools (id),
        version INTEGER NOT NULL,
        document TEXT NOT NULL,
        CONSTRAINT pool_policies_pkey PRIMARY KEY (pool_id, version)
      );
      CREATE TABLE pool_keys (
        pool_id TEXT COLLATE "C" NOT NULL REFERENCES pools (id),
        chain TEXT COLLATE "C" NOT NULL,
        curve TEXT NOT NULL,
        public_key TEXT NOT NULL CONSTRAINT pool_keys_public_key_key UNIQUE,
        address TEXT NOT NULL,
        device TEXT NOT NULL,
        handle TEXT NOT NULL,
        ceremony_id TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        CONSTRAINT pool_keys_pkey PRIMARY KEY (pool_id, chain),
        CONSTRAINT pool_keys_device_handle_key UNIQUE (device, handle)
      );
      -- Addresses compare case-insensitively (EIP-55 is a checksum, not a different address), as the
      -- store's key-conflict check does.
      CREATE UNIQUE INDEX pool_keys_address_key ON pool_keys (lower(address));
      CREATE TABLE withdrawals (
        id TEXT COLLATE "C" CONSTRAINT withdrawals_pkey PRIMARY KEY,
        pool_id TEXT COLLATE "C" NOT NULL REFERENCES pools (id),
        chain TEXT COLLATE "C" NOT NULL,
        asset TEXT NOT NULL,
        amount NUMERIC(78, 0) NOT NULL,
        to_address TEXT NOT NULL,
        requester_id TEXT COLLATE "C" NOT NULL REFERENCES principals (id),
        idempotency_key TEXT,
        sign_once_key TEXT NOT NULL,
        unsigned_tx TEXT NOT NULL,
        digest TEXT NOT NULL,
        max_fee NUMERIC(78, 0) NOT NULL,
        policy_version INTEGER NOT NULL,
        required_approvals INTEGER NOT NULL,
        state TEXT NOT NULL,
        reasons TEXT NOT NULL,
        approval_message TEXT NOT NULL,
        signed_tx TEXT,
        tx_hash TEXT,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        committed_at BIGINT,
        not_before BIGINT,
        expires_at BIGINT
      );
      CREATE UNIQUE INDEX withdrawals_idempotency ON withdrawals (requester_id, idempotency_key) WHERE idempotency_key IS NOT NULL;
      CREATE UNIQUE INDEX withdrawals_sign_once ON withdrawals (pool_id, chain, sign_once_key) WHERE state IN (${LIVE});
      CREATE INDEX withdrawals_committed ON withdrawals (pool_id, asset, committed_at) WHERE committed_at IS NOT NULL;
      CREATE INDEX withdrawals_state ON withdrawals (state, created_at);
      CREATE INDEX withdrawals_pool_created ON withdrawals (pool_id, created_at);
      CREATE INDEX withdrawals_created ON withdrawals (created_at);
      CREATE TABLE approvals (
        withdrawal_id TEXT COLLATE "C" NOT NULL REFERENCES withdrawals (id),
        approver_id TEXT COLLATE "C" NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        CONSTRAINT approvals_pkey PRIMARY KEY (withdrawal_id, approver_id)
      );
      CREATE TABLE audit (
        seq BIGINT PRIMARY KEY,
        at TEXT NOT NULL,
        type TEXT NOT NULL,
        actor TEXT NOT NULL,
        subject TEXT NOT NULL,
        data TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
      );
      CREATE FUNCTION audit_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          RAISE EXCEPTION 'the audit log is append-only';
        END
      $$;
      CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
      CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
      CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit FOR EACH STATEMENT EXECUTE FUNCTION audit_refuse_change();
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
        id TEXT COLLATE "C" CONSTRAINT proposals_pkey PRIMARY KEY,
        pool_id TEXT COLLATE "C" NOT NULL REFERENCES pools (id),
        action TEXT NOT NULL CONSTRAINT proposals_action_check CHECK (action IN ('policy', 'unfreeze', 'approvers')),
        change TEXT NOT NULL,
        binding TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        required_approvals INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending', 'applied', 'rejected', 'failed')),
        approval_message TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        applied_version INTEGER,
        reason TEXT
      );
      CREATE INDEX proposals_pool ON proposals (pool_id, created_at);
      CREATE TABLE proposal_approvals (
        proposal_id TEXT COLLATE "C" NOT NULL REFERENCES proposals (id),
        admin_id TEXT COLLATE "C" NOT NULL,
        decision TEXT NOT NULL CHECK (decision IN ('approve', 'reject')),
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        CONSTRAINT proposal_approvals_pkey PRIMARY KEY (proposal_id, admin_id)
      );
    `,
  },
  {
    version: 3,
    description: 'claims of withdrawals on shared resources (Bitcoin outpoints): one live claimant each',
    sql: `
      CREATE TABLE withdrawal_claims (
        withdrawal_id TEXT COLLATE "C" NOT NULL REFERENCES withdrawals (id),
        pool_id TEXT COLLATE "C" NOT NULL,
        chain TEXT COLLATE "C" NOT NULL,
        claim TEXT COLLATE "C" NOT NULL,
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
    // Unlike SQLite, PostgreSQL replaces a CHECK constraint in place: no table rebuild.
    sql: `
      ALTER TABLE proposals DROP CONSTRAINT proposals_action_check,
        ADD CONSTRAINT proposals_action_check CHECK (action IN ('policy', 'unfreeze', 'approvers', 'attest-control'));
      CREATE TABLE control_proofs (
        proposal_id TEXT COLLATE "C" NOT NULL REFERENCES proposals (id),
        pool_id TEXT COLLATE "C" NOT NULL,
        chain TEXT COLLATE "C" NOT NULL,
        address TEXT NOT NULL,
        format TEXT NOT NULL CHECK (format IN ('eip191', 'bitcoin-message', 'ed25519')),
        signature TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        PRIMARY KEY (proposal_id, chain)
      );
    `,
  },
  {
    version: 6,
    description: 'usage index covers the window sums: state and amount in the index, no table lookups',
    sql: `
      CREATE INDEX withdrawals_usage ON withdrawals (pool_id, asset, committed_at) INCLUDE (state, amount) WHERE committed_at IS NOT NULL;
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
        minute BIGINT NOT NULL,
        total NUMERIC NOT NULL CHECK (total >= 0),
        PRIMARY KEY (pool_id, asset, minute)
      );
      INSERT INTO usage_minutes (pool_id, asset, minute, total)
        SELECT pool_id, asset, floor(committed_at / ${MINUTE_MS}.0)::bigint, SUM(amount) FROM withdrawals
         WHERE committed_at IS NOT NULL AND state IN (${COMMITTED_STATES.map((s) => `'${s}'`).join(', ')})
         GROUP BY 1, 2, 3 HAVING SUM(amount) > 0;
    `,
  },
  {
    version: 8,
    description:
      'approval message version 2 (the message carries the transaction): votes on the version 1 message of a request still open move here when the gateway gives that request its version 2 message at start, and no longer count',
    sql: `
      CREATE TABLE superseded_approvals (
        withdrawal_id TEXT COLLATE "C" NOT NULL REFERENCES withdrawals (id),
        approver_id TEXT COLLATE "C" NOT NULL,
        decision TEXT NOT NULL,
        signature TEXT NOT NULL,
        message TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        superseded_at BIGINT NOT NULL
      );
      CREATE INDEX superseded_approvals_withdrawal ON superseded_approvals (withdrawal_id);
    `,
  },
  {
    version: 9,
    description: 'every address each pool key controls (a Bitcoin key pays at its P2WPKH and its P2TR address), for the commingling check',
    sql: `
      CREATE TABLE key_addresses (
        address TEXT COLLATE "C" NOT NULL,
        pool_id TEXT COLLATE "C" NOT NULL,
        chain TEXT COLLATE "C" NOT NULL,
        FOREIGN KEY (pool_id, chain) REFERENCES pool_keys (pool_id, chain)
      );
      CREATE UNIQUE INDEX key_addresses_address ON key_addresses (lower(address));
    `,
    backfill: async (query) => {
      for (const k of await query('SELECT pool_id, chain, public_key, address FROM pool_keys')) {
        for (const a of everyAddressOfKey(parseChainId(String(k.chain)), String(k.public_key), String(k.address))) {
          await query('INSERT INTO key_addresses (address, pool_id, chain) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING', [a, k.pool_id, k.chain]);
        }
      }
    },
  },
];

/**
 * Applies the pending migrations and records each in `schema_migrations`. Must run inside a
 * transaction that holds the store's advisory lock: the check of the current version and the
 * changes then happen as one step for every replica.
 */
export async function migrate(query: MigrationQuery): Promise<void> {
  await query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY,
    description TEXT NOT NULL,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
  )`);
  const [head] = await query('SELECT COALESCE(MAX(version), 0) AS version FROM schema_migrations');
  const current = Number(head?.version ?? 0);
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new StoreError('store_too_new', `the database schema is version ${current}, newer than this gateway knows (${latest}); run a newer gateway`, { expose: true });
  }
  for (const m of MIGRATIONS.filter((x) => x.version > current)) {
    await query(m.sql);
    await m.backfill?.(query);
    await query('INSERT INTO schema_migrations (version, description) VALUES ($1, $2)', [m.version, m.description]);
  }
}
