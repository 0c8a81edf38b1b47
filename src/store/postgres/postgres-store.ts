/**
 * The PostgreSQL store (node-postgres `pg.Pool`), for DATABASE_URL and for several gateway replicas
 * on one database (docs/postgres.md).
 *
 * Every transaction runs `BEGIN ISOLATION LEVEL READ COMMITTED`, then takes one transaction-scoped
 * advisory lock (`pg_advisory_xact_lock`, PostgreSQL 15 documentation section 9.27.10) that every
 * gateway process on the database shares: transactions are serialized across replicas exactly as
 * SQLite serializes them, so one use case's read-decide-write on velocity usage, and the audit
 * chain's head, never interleave with another's. READ COMMITTED matters: each statement after the
 * lock sees everything the previous holder committed (REPEATABLE READ would take its snapshot before
 * the wait). Commits are durable: `synchronous_commit` is forced on for the transaction when the
 * server has it off. A COMMIT whose answer is lost raises StoreError `commit_unconfirmed`: the
 * outcome is unknown and the step fails closed (SPEC rule 6).
 *
 * Uniqueness is checked by a query before each write, as in the SQLite store, so conflicts carry the
 * same codes and messages and leave the transaction usable; the database constraints remain the
 * backstop against writers that bypass the lock, and their violations map to the same codes by
 * constraint name. Amounts travel as decimal text and live in NUMERIC, never in a JS number.
 */
import { parseChainId } from '../../../common/chain-id.js';
import { everyAddressOfKey } from '../../chains/addresses.js';
import pg from 'pg';
import { ConflictError, CustodyError, StoreError } from '../../../common/errors.js';
import type { Approver, Pool, PoolKey } from '../../domain/pool.js';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import type { ControlProof, Proposal, ProposalApproval } from '../../domain/proposal.js';
import { COMMITTED_STATES, LIVE_STATES, UNRELEASED_STATES, type Approval, type Withdrawal } from '../../domain/withdrawal.js';
import { nextAuditEntry, verifyAuditChain } from '../../audit/hash-chain.js';
import {
  rowToApproval, rowToApprover, rowToAudit, rowToStoredAudit, rowToControlProof, rowToKey, rowToPool, rowToPrincipal, rowToProposal, rowToProposalApproval, rowToWithdrawal,
  type Row,
} from '../rows.js';
import type { AuditEntry, AuditVerification, Store, StoreReads, StoreTx, WithdrawalPatch } from '../store.js';
import { migrate } from './migrations.js';
import { minuteOf, nextMinuteStart, usageChanges } from '../usage-minutes.js';

/**
 * The advisory lock every transaction and every migration takes: "custody" in ASCII as a 64-bit
 * integer. It is per database, so gateways on other databases of the same server do not share it.
 */
const STORE_LOCK_KEY = 27995161429501049n;

/** A replica frozen inside a transaction (paused VM, lost network) releases the lock after this. */
const IDLE_IN_TRANSACTION_TIMEOUT = '60s';

const BEGIN_LOCKED = [
  'BEGIN ISOLATION LEVEL READ COMMITTED READ WRITE',
  "SELECT set_config('synchronous_commit', 'on', true) WHERE current_setting('synchronous_commit') = 'off'",
  `SET LOCAL idle_in_transaction_session_timeout = '${IDLE_IN_TRANSACTION_TIMEOUT}'`,
  `SELECT pg_advisory_xact_lock(${STORE_LOCK_KEY})`,
].join('; ');

/** Store.read: one snapshot of committed data, without the lock; the server refuses any write. */
const BEGIN_READ = [
  'BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY',
  `SET LOCAL idle_in_transaction_session_timeout = '${IDLE_IN_TRANSACTION_TIMEOUT}'`,
].join('; ');

const CONNECT_TIMEOUT_MS = 10_000;
const AUDIT_PAGE = 1000;

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');
const LIVE = inList(LIVE_STATES);
const COMMITTED = inList(COMMITTED_STATES);
const UNRELEASED = inList(UNRELEASED_STATES);

/** PostgreSQL's type oid of BIGINT (int8). */
const INT8_OID = 20;

/**
 * BIGINT columns (times in ms, audit sequence numbers) as JS numbers, like SQLite's integers; every
 * value the gateway writes there came from a safe integer. NUMERIC (amounts) stays decimal text.
 */
function storeTypes(): pg.TypeOverrides {
  const types = new pg.TypeOverrides();
  types.setTypeParser(INT8_OID, (text: string) => {
    const n = Number(text);
    if (!Number.isSafeInteger(n)) throw new StoreError('store_failed', `the store returned ${text}, beyond the integers a time or sequence number can be`);
    return n;
  });
  return types;
}

/** A database constraint a backstop violation maps to, with the code the pre-write checks use. */
const CONSTRAINT_CONFLICTS: Readonly<Record<string, { readonly code: string; readonly message: string }>> = {
  withdrawals_sign_once: { code: 'sign_once', message: 'this nonce on this chain is already used by another live withdrawal of the pool; one transaction per nonce is signed' },
  withdrawals_idempotency: { code: 'duplicate_idempotency_key', message: 'this Idempotency-Key was already used by this requester' },
  pool_keys_pkey: { code: 'key_conflict', message: 'the pool already has a key on this chain: a key belongs to exactly one pool and a pool has one key per chain' },
  pool_keys_public_key_key: { code: 'key_conflict', message: 'the key (public key) already belongs to a pool: a key belongs to exactly one pool and a pool has one key per chain' },
  pool_keys_address_key: { code: 'key_conflict', message: 'the key (address) already belongs to a pool: a key belongs to exactly one pool and a pool has one key per chain' },
  pool_keys_device_handle_key: { code: 'key_conflict', message: 'the key (device handle) already belongs to a pool: a key belongs to exactly one pool and a pool has one key per chain' },
  approvals_pkey: { code: 'duplicate_approval', message: 'this approver has already voted on this withdrawal' },
  proposal_approvals_pkey: { code: 'duplicate_approval', message: 'this admin has already voted on this proposal' },
  pool_policies_pkey: { code: 'policy_version_exists', message: 'this policy version of the pool exists and is immutable' },
  pools_pkey: { code: 'pool_exists', message: 'the pool already exists' },
  approvers_pkey: { code: 'approver_exists', message: 'the approver is already enrolled' },
  approvers_public_key_key: { code: 'approver_key_conflict', message: 'another approver already uses this public key' },
};

/** SQLSTATE class 23: integrity constraint violation (unique, foreign key, check, not null). */
const INTEGRITY_VIOLATION = /^23/;

/** Maps an error of the driver or the server to the store's errors; CustodyErrors pass unchanged. */
function asStoreError(error: unknown): CustodyError {
  if (error instanceof CustodyError) return error;
  if (error instanceof pg.DatabaseError && error.code !== undefined && INTEGRITY_VIOLATION.test(error.code)) {
    const known = error.constraint === undefined ? undefined : CONSTRAINT_CONFLICTS[error.constraint];
    if (known) return new ConflictError(known.code, known.message, { cause: error });
    return new ConflictError('constraint', `the store refused the change: ${error.message}`, { cause: error });
  }
  const message = error instanceof Error ? error.message : String(error);
  return new StoreError('store_failed', `the store could not complete the step: ${message}`, { cause: error });
}

type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** Runs one statement with its values, or several without; errors become store errors. */
async function execute(db: Queryable, text: string, values: readonly unknown[] = []): Promise<{ rows: Row[]; rowCount: number }> {
  try {
    const result = await db.query<Row>(text, [...values]);
    // Several statements in one text (only without values) answer one result per statement.
    if (Array.isArray(result)) return { rows: [], rowCount: 0 };
    return { rows: result.rows, rowCount: result.rowCount ?? 0 };
  } catch (error) {
    throw asStoreError(error);
  }
}

/**
 * Runs `fn` on one pooled connection inside `begin` … COMMIT (BEGIN_LOCKED: holding the store's
 * advisory lock). On an error it rolls back and rethrows; a connection that failed mid-way is
 * discarded, not pooled again.
 */
async function lockedTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>, begin = BEGIN_LOCKED): Promise<T> {
  let client: pg.PoolClient;
  try {
    client = await pool.connect();
  } catch (error) {
    throw new StoreError('store_unreachable', `the store could not be reached: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // A checked-out client has no error listener of the pool's: without this one, a server that ends
  // the connection between two queries would crash the process with an unhandled 'error' event.
  let lost: Error | null = null;
  const onConnectionError = (error: Error) => {
    lost = error;
  };
  client.on('error', onConnectionError);
  let reusable = true;
  try {
    try {
      await execute(client, begin);
    } catch (error) {
      reusable = await rollback(client);
      throw error;
    }
    let result: T;
    try {
      result = await fn(client);
    } catch (error) {
      reusable = await rollback(client);
      throw error;
    }
    let committed: pg.QueryResult;
    try {
      committed = await client.query('COMMIT');
    } catch (error) {
      reusable = false;
      const reason = error instanceof Error ? error.message : String(error);
      throw new StoreError('commit_unconfirmed', `the store did not confirm the commit (${reason}); the transaction may or may not have been applied`, { cause: error });
    }
    // PostgreSQL answers COMMIT of a transaction in which a statement failed with ROLLBACK: that
    // happens when `fn` caught a store error and went on. Nothing was written; fail closed.
    if (committed.command !== 'COMMIT') {
      throw new StoreError('transaction_aborted', 'a statement inside the transaction failed, so the database rolled the whole transaction back');
    }
    return result;
  } finally {
    client.off('error', onConnectionError);
    client.release(lost ?? !reusable);
  }
}

/** Rolls back; false when the connection can no longer be trusted. */
async function rollback(client: pg.PoolClient): Promise<boolean> {
  try {
    await client.query('ROLLBACK');
    return true;
  } catch {
    return false;
  }
}

/** The statements of one transaction on its connection; refuses to run once the transaction ended. */
function createTx(client: pg.PoolClient, isOpen: () => boolean): StoreTx {
  /** Keeps the minute totals in step with a withdrawal's change, inside the same transaction. */
  const applyUsage = async (before: Withdrawal | null, after: Withdrawal): Promise<void> => {
    for (const { share, sign } of usageChanges(before, after)) {
      const inconsistent = () => new StoreError('usage_inconsistent', `the usage total of pool ${share.poolId} (${share.asset}) would fall below zero; the store needs repair`);
      const key = [share.poolId, share.asset, share.minute];
      if (sign > 0n) {
        await run(
          `INSERT INTO usage_minutes AS u (pool_id, asset, minute, total) VALUES ($1, $2, $3, $4)
             ON CONFLICT (pool_id, asset, minute) DO UPDATE SET total = u.total + excluded.total`,
          [...key, share.amount.toString()],
        );
        continue;
      }
      // A share leaves: the CHECK (total >= 0) refuses more than the minute holds.
      const r = await one('UPDATE usage_minutes SET total = total - $4 WHERE pool_id = $1 AND asset = $2 AND minute = $3 RETURNING total::text AS total', [
        ...key,
        share.amount.toString(),
      ]).catch((error: unknown) => {
        throw error instanceof CustodyError && /usage_minutes_total_check/.test(error.message) ? inconsistent() : error;
      });
      if (!r) throw inconsistent();
      if (BigInt(String(r.total)) === 0n) await run('DELETE FROM usage_minutes WHERE pool_id = $1 AND asset = $2 AND minute = $3', key);
    }
  };

  const exec = (text: string, values?: readonly unknown[]) => {
    if (!isOpen()) return Promise.reject(new StoreError('transaction_finished', 'the transaction has ended; its statements run only inside store.transaction'));
    return execute(client, text, values);
  };
  const rows = async (text: string, values?: readonly unknown[]): Promise<Row[]> => (await exec(text, values)).rows;
  const one = async (text: string, values?: readonly unknown[]): Promise<Row | undefined> => (await rows(text, values))[0];
  const run = async (text: string, values?: readonly unknown[]): Promise<number> => (await exec(text, values)).rowCount;

  return {
    async insertPrincipal(p) {
      await run('INSERT INTO principals (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)', [p.id, p.name, p.role, p.tokenHash, p.createdAt]);
    },
    async principalByTokenHash(hash) {
      const r = await one('SELECT * FROM principals WHERE token_hash = $1', [hash]);
      return r ? rowToPrincipal(r) : null;
    },
    async principalById(id) {
      const r = await one('SELECT * FROM principals WHERE id = $1', [id]);
      return r ? rowToPrincipal(r) : null;
    },
    async listPrincipals() {
      return (await rows('SELECT * FROM principals ORDER BY created_at, id')).map(rowToPrincipal);
    },

    async insertApprover(a: Approver) {
      if (await one('SELECT 1 FROM approvers WHERE id = $1', [a.id])) throw new ConflictError('approver_exists', `approver "${a.id}" is already enrolled`);
      const other = await one('SELECT id FROM approvers WHERE public_key = $1', [a.publicKey]);
      if (other) throw new ConflictError('approver_key_conflict', `approver "${String(other.id)}" already uses this public key`);
      await run('INSERT INTO approvers (id, public_key) VALUES ($1, $2)', [a.id, a.publicKey]);
    },
    async getApprover(id) {
      const r = await one('SELECT * FROM approvers WHERE id = $1', [id]);
      return r ? rowToApprover(r) : null;
    },
    async listApprovers() {
      return (await rows('SELECT * FROM approvers ORDER BY id')).map(rowToApprover);
    },

    async insertPool(pool: Pool, policy: PolicyDocument) {
      if (await one('SELECT 1 FROM pools WHERE id = $1', [pool.id])) throw new ConflictError('pool_exists', `pool "${pool.id}" already exists`);
      await run('INSERT INTO pools (id, owner, chains, status, approvers, policy_version, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        pool.id, pool.owner, JSON.stringify(pool.chains), pool.status, JSON.stringify(pool.approvers), pool.policyVersion, pool.createdAt,
      ]);
      await run('INSERT INTO pool_policies (pool_id, version, document) VALUES ($1, $2, $3)', [pool.id, pool.policyVersion, JSON.stringify(policy)]);
    },
    async getPool(id) {
      const r = await one('SELECT * FROM pools WHERE id = $1', [id]);
      return r ? rowToPool(r) : null;
    },
    async listPools() {
      return (await rows('SELECT * FROM pools ORDER BY id')).map(rowToPool);
    },
    async setPoolStatus(id, status) {
      await run('UPDATE pools SET status = $1 WHERE id = $2', [status, id]);
    },
    async getPolicy(poolId, version) {
      const r = await one('SELECT document FROM pool_policies WHERE pool_id = $1 AND version = $2', [poolId, version]);
      return r ? (JSON.parse(String(r.document)) as PolicyDocument) : null;
    },
    async insertPolicyVersion(poolId, version, policy) {
      if (await one('SELECT 1 FROM pool_policies WHERE pool_id = $1 AND version = $2', [poolId, version])) {
        throw new ConflictError('policy_version_exists', `policy version ${version} of pool "${poolId}" exists and is immutable`);
      }
      await run('INSERT INTO pool_policies (pool_id, version, document) VALUES ($1, $2, $3)', [poolId, version, JSON.stringify(policy)]);
    },
    async latestPolicyVersion(poolId) {
      const r = await one('SELECT MAX(version) AS v FROM pool_policies WHERE pool_id = $1', [poolId]);
      return Number(r?.v ?? 0);
    },
    async setPoolPolicyVersion(poolId, version) {
      await run('UPDATE pools SET policy_version = $1 WHERE id = $2', [version, poolId]);
    },
    async setPoolApprovers(poolId, approvers) {
      await run('UPDATE pools SET approvers = $1 WHERE id = $2', [JSON.stringify(approvers), poolId]);
    },
    async insertKey(k: PoolKey) {
      const clash = await one(
        `SELECT pool_id, chain FROM pool_keys
          WHERE (pool_id = $1 AND chain = $2) OR public_key = $3 OR lower(address) = lower($4) OR (device = $5 AND handle = $6) LIMIT 1`,
        [k.poolId, k.chain, k.publicKey, k.address, k.device, k.handle],
      );
      if (clash) {
        const what =
          clash.pool_id === k.poolId && clash.chain === k.chain
            ? `pool "${k.poolId}" already has a key on ${k.chain}`
            : `the key (public key, address or device handle) already belongs to pool "${String(clash.pool_id)}"`;
        throw new ConflictError('key_conflict', `${what}: a key belongs to exactly one pool and a pool has one key per chain`);
      }
      await run('INSERT INTO pool_keys (pool_id, chain, curve, public_key, address, device, handle, ceremony_id, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)', [
        k.poolId, k.chain, k.curve, k.publicKey, k.address, k.device, k.handle, k.ceremonyId, k.createdAt,
      ]);
      for (const a of everyAddressOfKey(parseChainId(k.chain), k.publicKey, k.address)) {
        await run('INSERT INTO key_addresses (address, pool_id, chain) VALUES ($1, $2, $3)', [a, k.poolId, k.chain]);
      }
    },
    async keysOfPool(poolId) {
      return (await rows('SELECT * FROM pool_keys WHERE pool_id = $1 ORDER BY chain', [poolId])).map(rowToKey);
    },
    async allKeys() {
      return (await rows('SELECT * FROM pool_keys ORDER BY pool_id, chain')).map(rowToKey);
    },
    async getKey(poolId, chain) {
      const r = await one('SELECT * FROM pool_keys WHERE pool_id = $1 AND chain = $2', [poolId, chain]);
      return r ? rowToKey(r) : null;
    },
    async keyByAddress(address) {
      // Through the unique index on lower(address).
      const r = await one('SELECT k.* FROM key_addresses a JOIN pool_keys k ON k.pool_id = a.pool_id AND k.chain = a.chain WHERE lower(a.address) = lower($1)', [address]);
      return r ? rowToKey(r) : null;
    },

    async insertWithdrawal(w: Withdrawal, claims: readonly string[] = []) {
      if (w.idempotencyKey !== null && (await one('SELECT 1 FROM withdrawals WHERE requester_id = $1 AND idempotency_key = $2', [w.requesterId, w.idempotencyKey]))) {
        throw new ConflictError('duplicate_idempotency_key', `Idempotency-Key "${w.idempotencyKey}" was already used by this requester`);
      }
      if ((LIVE_STATES as readonly string[]).includes(w.state)) {
        const holder = await one(`SELECT id FROM withdrawals WHERE pool_id = $1 AND chain = $2 AND sign_once_key = $3 AND state IN (${LIVE}) LIMIT 1`, [
          w.poolId, w.chain, w.signOnceKey,
        ]);
        if (holder) {
          throw new ConflictError(
            'sign_once',
            `${w.signOnceKey.replace(':', ' ')} on ${w.chain} is already used by withdrawal ${String(holder.id)} of pool ${w.poolId}; one transaction per nonce is signed`,
            { details: { conflictingWithdrawal: String(holder.id) } },
          );
        }
        for (const claim of claims) {
          const claimant = await one(
            `SELECT w.id FROM withdrawal_claims c JOIN withdrawals w ON w.id = c.withdrawal_id
              WHERE c.pool_id = $1 AND c.chain = $2 AND c.claim = $3 AND w.state IN (${LIVE}) LIMIT 1`,
            [w.poolId, w.chain, claim],
          );
          if (claimant) {
            throw new ConflictError('claim_in_use', `${claim} is already being spent by withdrawal ${String(claimant.id)}; a UTXO is spent by one live request only`, {
              details: { conflictingWithdrawal: String(claimant.id) },
            });
          }
        }
      }
      await run(
        `INSERT INTO withdrawals (id, pool_id, chain, asset, amount, to_address, requester_id, idempotency_key, sign_once_key, unsigned_tx, digest,
          max_fee, policy_version, required_approvals, state, reasons, approval_message, signed_tx, tx_hash, created_at, updated_at, committed_at,
          not_before, expires_at, contract_call)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25)`,
        [
          w.id, w.poolId, w.chain, w.asset, w.amount.toString(), w.to, w.requesterId, w.idempotencyKey, w.signOnceKey, w.unsignedTx, w.digest,
          w.maxFee.toString(), w.policyVersion, w.requiredApprovals, w.state, JSON.stringify(w.reasons), w.approvalMessage, w.signedTx, w.txHash,
          w.createdAt, w.updatedAt, w.committedAt, w.notBefore, w.expiresAt, w.contractCall === null ? null : JSON.stringify(w.contractCall),
        ],
      );
      for (const claim of claims) {
        await run('INSERT INTO withdrawal_claims (withdrawal_id, pool_id, chain, claim) VALUES ($1, $2, $3, $4)', [w.id, w.poolId, w.chain, claim]);
      }
      await applyUsage(null, w);
    },
    async claimsOf(withdrawalId) {
      return (await rows('SELECT claim FROM withdrawal_claims WHERE withdrawal_id = $1 ORDER BY claim', [withdrawalId])).map((r) => String(r.claim));
    },
    async getWithdrawal(id) {
      const r = await one('SELECT * FROM withdrawals WHERE id = $1', [id]);
      return r ? rowToWithdrawal(r) : null;
    },
    async withdrawalByIdempotencyKey(requesterId, key) {
      const r = await one('SELECT * FROM withdrawals WHERE requester_id = $1 AND idempotency_key = $2', [requesterId, key]);
      return r ? rowToWithdrawal(r) : null;
    },
    async listWithdrawals(filter) {
      const values: unknown[] = [];
      const where: string[] = [];
      if (filter.poolId !== undefined) where.push(`pool_id = $${values.push(filter.poolId)}`);
      if (filter.state !== undefined) where.push(`state = $${values.push(filter.state)}`);
      const page = `LIMIT $${values.push(filter.limit)} OFFSET $${values.push(filter.offset ?? 0)}`;
      const found = await rows(`SELECT * FROM withdrawals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC ${page}`, values);
      return found.map(rowToWithdrawal);
    },
    async withdrawalsInStates(states) {
      if (states.length === 0) return [];
      return (await rows('SELECT * FROM withdrawals WHERE state = ANY($1::text[]) ORDER BY created_at, id', [states])).map(rowToWithdrawal);
    },
    async updateWithdrawal(id, from, patch: WithdrawalPatch, now) {
      const current = await one('SELECT * FROM withdrawals WHERE id = $1', [id]);
      if (!current || current.state !== from) {
        throw new ConflictError('state_changed', `withdrawal ${id} is no longer "${from}"${current ? ` (it is "${String(current.state)}")` : ''}`);
      }
      const w = rowToWithdrawal(current);
      const updated = await one(
        `UPDATE withdrawals SET state = $1, reasons = $2, signed_tx = $3, tx_hash = $4, committed_at = $5, not_before = $6, policy_version = $7,
          required_approvals = $8, updated_at = $9, approval_message = $12 WHERE id = $10 AND state = $11 RETURNING *`,
        [
          patch.state, JSON.stringify(patch.reasons ?? w.reasons), patch.signedTx ?? w.signedTx, patch.txHash ?? w.txHash,
          patch.committedAt !== undefined ? patch.committedAt : w.committedAt, patch.notBefore !== undefined ? patch.notBefore : w.notBefore,
          patch.policyVersion ?? w.policyVersion, patch.requiredApprovals ?? w.requiredApprovals, now, id, from, patch.approvalMessage ?? w.approvalMessage,
        ],
      );
      if (!updated) throw new ConflictError('state_changed', `withdrawal ${id} is no longer "${from}"`);
      const after = rowToWithdrawal(updated);
      await applyUsage(w, after);
      return after;
    },
    async committedSince(poolId, asset, since) {
      // The minutes wholly inside the window from their running totals (usage-minutes.ts), and the
      // minute that holds `since` from its withdrawals.
      const r = await one(
        `SELECT (COALESCE((SELECT SUM(total) FROM usage_minutes WHERE pool_id = $1 AND asset = $2 AND minute > $3), 0)
               + COALESCE((SELECT SUM(amount) FROM withdrawals
                    WHERE pool_id = $1 AND asset = $2 AND committed_at > $4 AND committed_at < $5 AND state IN (${COMMITTED})), 0))::text AS total`,
        [poolId, asset, minuteOf(since), since, nextMinuteStart(since)],
      );
      return BigInt(String(r?.total ?? '0'));
    },
    async unreleasedEntries(poolId, asset) {
      const found = await rows(
        `SELECT id, amount::text AS amount, committed_at FROM withdrawals
          WHERE state IN (${UNRELEASED}) AND pool_id = $1 AND asset = $2 AND committed_at IS NOT NULL`,
        [poolId, asset],
      );
      return found.map((r) => ({ amount: BigInt(String(r.amount)), committedAt: Number(r.committed_at), id: String(r.id) }));
    },
    async committedEntriesSince(poolId, asset, since) {
      const found = await rows(
        `SELECT amount::text AS amount, committed_at FROM withdrawals
          WHERE pool_id = $1 AND asset = $2 AND committed_at > $3 AND state IN (${COMMITTED}) ORDER BY committed_at, created_at, id`,
        [poolId, asset, since],
      );
      return found.map((r) => ({ amount: BigInt(String(r.amount)), committedAt: Number(r.committed_at) }));
    },

    async insertApproval(a: Approval) {
      if (await one('SELECT 1 FROM approvals WHERE withdrawal_id = $1 AND approver_id = $2', [a.withdrawalId, a.approverId])) {
        throw new ConflictError('duplicate_approval', `${a.approverId} has already voted on withdrawal ${a.withdrawalId}`);
      }
      await run('INSERT INTO approvals (withdrawal_id, approver_id, decision, signature, message, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        a.withdrawalId, a.approverId, a.decision, a.signature, a.message, a.createdAt,
      ]);
    },
    async approvalsOf(withdrawalId) {
      return (await rows('SELECT * FROM approvals WHERE withdrawal_id = $1 ORDER BY created_at, approver_id', [withdrawalId])).map(rowToApproval);
    },
    async supersedeApprovals(withdrawalId, now) {
      await run(
        `INSERT INTO superseded_approvals (withdrawal_id, approver_id, decision, signature, message, created_at, superseded_at)
         SELECT withdrawal_id, approver_id, decision, signature, message, created_at, $1 FROM approvals WHERE withdrawal_id = $2`,
        [now, withdrawalId],
      );
      return (await rows('DELETE FROM approvals WHERE withdrawal_id = $1 RETURNING approver_id', [withdrawalId])).length;
    },

    async insertProposal(p: Proposal) {
      await run(
        `INSERT INTO proposals (id, pool_id, action, change, binding, proposed_by, required_approvals, state, approval_message, created_at, updated_at,
          applied_version, reason) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
        [
          p.id, p.poolId, p.change.action, JSON.stringify(p.change), JSON.stringify(p.binding), p.proposedBy, p.requiredApprovals, p.state,
          p.approvalMessage, p.createdAt, p.updatedAt, p.appliedVersion, p.reason,
        ],
      );
    },
    async getProposal(id) {
      const r = await one('SELECT * FROM proposals WHERE id = $1', [id]);
      return r ? rowToProposal(r) : null;
    },
    async listProposals(filter) {
      const values: unknown[] = [];
      const where: string[] = [];
      if (filter.poolId !== undefined) where.push(`pool_id = $${values.push(filter.poolId)}`);
      if (filter.state !== undefined) where.push(`state = $${values.push(filter.state)}`);
      const limit = `LIMIT $${values.push(filter.limit)}`;
      return (await rows(`SELECT * FROM proposals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC ${limit}`, values)).map(rowToProposal);
    },
    async updateProposal(id, from, patch, now) {
      const current = await one('SELECT * FROM proposals WHERE id = $1', [id]);
      if (!current || current.state !== from) throw new ConflictError('state_changed', `proposal ${id} is no longer "${from}"`);
      const p = rowToProposal(current);
      const updated = await one('UPDATE proposals SET state = $1, applied_version = $2, reason = $3, updated_at = $4 WHERE id = $5 AND state = $6 RETURNING *', [
        patch.state, patch.appliedVersion ?? p.appliedVersion, patch.reason ?? p.reason, now, id, from,
      ]);
      if (!updated) throw new ConflictError('state_changed', `proposal ${id} is no longer "${from}"`);
      return rowToProposal(updated);
    },
    async insertProposalApproval(a: ProposalApproval) {
      if (await one('SELECT 1 FROM proposal_approvals WHERE proposal_id = $1 AND admin_id = $2', [a.proposalId, a.adminId])) {
        throw new ConflictError('duplicate_approval', `${a.adminId} has already voted on proposal ${a.proposalId}`);
      }
      await run('INSERT INTO proposal_approvals (proposal_id, admin_id, decision, signature, message, created_at) VALUES ($1, $2, $3, $4, $5, $6)', [
        a.proposalId, a.adminId, a.decision, a.signature, a.message, a.createdAt,
      ]);
    },
    async proposalApprovalsOf(proposalId) {
      return (await rows('SELECT * FROM proposal_approvals WHERE proposal_id = $1 ORDER BY created_at, admin_id', [proposalId])).map(rowToProposalApproval);
    },
    async insertControlProof(p: ControlProof) {
      await run('INSERT INTO control_proofs (proposal_id, pool_id, chain, address, format, signature, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)', [
        p.proposalId, p.poolId, p.chain, p.address, p.format, p.signature, p.createdAt,
      ]);
    },
    async controlProofsOf(proposalId) {
      return (await rows('SELECT * FROM control_proofs WHERE proposal_id = $1 ORDER BY chain', [proposalId])).map(rowToControlProof);
    },

    async appendAudit(input, now) {
      const head = await one('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1');
      const entry = nextAuditEntry(head ? { seq: Number(head.seq), hash: String(head.hash) } : null, input, now);
      await run('INSERT INTO audit (seq, at, type, actor, subject, data, prev_hash, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)', [
        entry.seq, entry.at, entry.type, entry.actor, entry.subject, JSON.stringify(entry.data), entry.prevHash, entry.hash,
      ]);
      return entry;
    },

    async getSetting(key) {
      const r = await one('SELECT value FROM settings WHERE key = $1', [key]);
      return r ? String(r.value) : null;
    },
    async setSetting(key, value) {
      await run('INSERT INTO settings (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value', [key, value]);
    },
  };
}

export interface PostgresStoreOptions {
  /** A libpq-style URL, e.g. `postgresql://custody@db.internal:5432/custody` (DATABASE_URL). */
  readonly connectionString: string;
  /** Connections this process keeps open (default 10); transactions still run one at a time. */
  readonly poolSize?: number;
}

/** Connects, applies pending migrations under the store's lock, and returns the store. */
export async function openPostgresStore(options: PostgresStoreOptions): Promise<Store> {
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.poolSize ?? 10,
    connectionTimeoutMillis: CONNECT_TIMEOUT_MS,
    application_name: 'custody-gateway',
    types: storeTypes(),
  });
  // An idle connection the server closes (restart, failover) is dropped by the pool, which opens a
  // new one for the next transaction; without a listener the 'error' event would end the process.
  pool.on('error', () => undefined);
  try {
    await lockedTransaction(pool, (client) => migrate(async (text, values) => (await execute(client, text, values)).rows));
  } catch (error) {
    await pool.end();
    throw asStoreError(error);
  }

  let closed = false;
  const running = new Set<Promise<unknown>>();

  /** One transaction begun with `begin`, remembered until it settles so that close() waits for it. */
  const run = <T>(begin: string, fn: (tx: StoreTx) => Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
    const done = lockedTransaction(
      pool,
      async (client) => {
        let open = true;
        try {
          return await fn(createTx(client, () => open));
        } finally {
          open = false;
        }
      },
      begin,
    );
    const settled = done.catch(() => undefined);
    running.add(settled);
    void settled.then(() => running.delete(settled));
    return done;
  };

  const store: Store = {
    transaction: <T>(fn: (tx: StoreTx) => Promise<T>) => run(BEGIN_LOCKED, fn),
    read: <T>(fn: (r: StoreReads) => Promise<T>) => run(BEGIN_READ, fn),
    async auditAfter(after, limit) {
      return (await execute(pool, 'SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [after, limit])).rows.map(rowToAudit);
    },
    async verifyAudit(): Promise<AuditVerification> {
      // Entries are appended in seq order under the lock and never change, so reading page after
      // page sees one consistent prefix of the chain.
      const entries: (AuditEntry & { readonly storedData: string })[] = [];
      for (;;) {
        const after = entries[entries.length - 1]?.seq ?? 0;
        const page = (await execute(pool, 'SELECT * FROM audit WHERE seq > $1 ORDER BY seq LIMIT $2', [after, AUDIT_PAGE])).rows.map(rowToStoredAudit);
        entries.push(...page);
        if (page.length < AUDIT_PAGE) break;
      }
      return verifyAuditChain(entries);
    },
    async ping() {
      try {
        return (await pool.query<Row>('SELECT 1 AS ok')).rows[0]?.ok === 1;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      closed = true;
      await Promise.all(running);
      await pool.end();
    },
  };
  return store;
}
