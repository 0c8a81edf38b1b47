/**
 * The SQLite store (better-sqlite3): one file in DATA_DIR, WAL journal with synchronous=FULL so every
 * commit is durable (SPEC rule 7), foreign keys on, a busy timeout so the CLI and the gateway can share
 * the file. Transactions are serialized in-process (those requested together share one durable
 * COMMIT, each in its own savepoint: group commit) and across processes by `BEGIN IMMEDIATE`
 * (SQLite's single writer). Amounts are decimal TEXT, summed exactly (committedSince).
 */
import { parseChainId } from '../../../common/chain-id.js';
import { everyAddressOfKey } from '../../chains/addresses.js';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import { ConflictError, CustodyError, StoreError } from '../../../common/errors.js';
import type { Approver, Pool, PoolKey } from '../../domain/pool.js';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import { COMMITTED_STATES, LIVE_STATES, UNRELEASED_STATES, type Approval, type Withdrawal } from '../../domain/withdrawal.js';
import { minuteOf, nextMinuteStart, usageChanges } from '../usage-minutes.js';
import type { ControlProof, Proposal, ProposalApproval } from '../../domain/proposal.js';
import { nextAuditEntry, verifyAuditChain } from '../../audit/hash-chain.js';
import type { AuditEntry, AuditInput, AuditVerification, Store, StoreReads, StoreTx, WithdrawalFilter, WithdrawalPatch } from '../store.js';
import { MIGRATIONS } from './migrations.js';
import {
  num, optNum, rowToApproval, rowToApprover, rowToAudit, rowToStoredAudit, rowToControlProof, rowToKey, rowToPool, rowToPrincipal, rowToProposal, rowToProposalApproval, rowToWithdrawal, str,
  type Row,
} from '../rows.js';

type Db = Database.Database;

/** committedSince sums amounts in SQL as SUM_LIMBS limbs of LIMB_DIGITS decimal digits (90 ≥ 78 digits of a uint256). */
const LIMB_DIGITS = 15;
const SUM_LIMBS = 6;
const LIMB_BASE = 10n ** BigInt(LIMB_DIGITS);

const inList = (states: readonly string[]) => states.map((s) => `'${s}'`).join(', ');

function migrate(db: Db): void {
  const current = db.pragma('user_version', { simple: true }) as number;
  const latest = MIGRATIONS[MIGRATIONS.length - 1]?.version ?? 0;
  if (current > latest) {
    throw new StoreError('store_too_new', `the database schema is version ${current}, newer than this gateway knows (${latest}); run a newer gateway`, { expose: true });
  }
  const pending = MIGRATIONS.filter((m) => m.version > current);
  if (pending.length === 0) return;
  // A table rebuild drops and renames tables that others reference: foreign keys are off meanwhile
  // (the pragma has no effect inside a transaction) and every reference is checked before commit.
  const rebuilds = pending.some((m) => m.rebuildsTables === true);
  if (rebuilds) db.pragma('foreign_keys = OFF');
  try {
    db.transaction(() => {
      for (const m of pending) {
        db.exec(m.sql);
        m.backfill?.(db);
        db.pragma(`user_version = ${m.version}`);
      }
      const broken = db.pragma('foreign_key_check') as unknown[];
      if (broken.length > 0) throw new StoreError('migration_failed', `migrating the schema left ${broken.length} broken references; the database is unchanged`);
    }).immediate();
  } finally {
    if (rebuilds) db.pragma('foreign_keys = ON');
  }
}

function prepareStatements(db: Db) {
  return {
    insertPrincipal: db.prepare('INSERT INTO principals (id, name, role, token_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
    principalByTokenHash: db.prepare('SELECT * FROM principals WHERE token_hash = ?'),
    principalById: db.prepare('SELECT * FROM principals WHERE id = ?'),
    listPrincipals: db.prepare('SELECT * FROM principals ORDER BY created_at, id'),
    insertApprover: db.prepare('INSERT INTO approvers (id, public_key) VALUES (?, ?)'),
    getApprover: db.prepare('SELECT * FROM approvers WHERE id = ?'),
    approverByKey: db.prepare('SELECT * FROM approvers WHERE public_key = ?'),
    listApprovers: db.prepare('SELECT * FROM approvers ORDER BY id'),
    insertPool: db.prepare('INSERT INTO pools (id, owner, chains, status, approvers, policy_version, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    insertPolicy: db.prepare('INSERT INTO pool_policies (pool_id, version, document) VALUES (?, ?, ?)'),
    getPool: db.prepare('SELECT * FROM pools WHERE id = ?'),
    listPools: db.prepare('SELECT * FROM pools ORDER BY id'),
    setPoolStatus: db.prepare('UPDATE pools SET status = ? WHERE id = ?'),
    getPolicy: db.prepare('SELECT document FROM pool_policies WHERE pool_id = ? AND version = ?'),
    latestPolicyVersion: db.prepare('SELECT MAX(version) AS v FROM pool_policies WHERE pool_id = ?'),
    setPoolPolicyVersion: db.prepare('UPDATE pools SET policy_version = ? WHERE id = ?'),
    setPoolApprovers: db.prepare('UPDATE pools SET approvers = ? WHERE id = ?'),
    insertProposal: db.prepare(`INSERT INTO proposals (id, pool_id, action, change, binding, proposed_by, required_approvals, state, approval_message,
      created_at, updated_at, applied_version, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    getProposal: db.prepare('SELECT * FROM proposals WHERE id = ?'),
    updateProposal: db.prepare('UPDATE proposals SET state = ?, applied_version = ?, reason = ?, updated_at = ? WHERE id = ? AND state = ?'),
    insertProposalApproval: db.prepare('INSERT INTO proposal_approvals (proposal_id, admin_id, decision, signature, message, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    getProposalApproval: db.prepare('SELECT 1 FROM proposal_approvals WHERE proposal_id = ? AND admin_id = ?'),
    proposalApprovalsOf: db.prepare('SELECT * FROM proposal_approvals WHERE proposal_id = ? ORDER BY created_at, admin_id'),
    insertControlProof: db.prepare('INSERT INTO control_proofs (proposal_id, pool_id, chain, address, format, signature, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    controlProofsOf: db.prepare('SELECT * FROM control_proofs WHERE proposal_id = ? ORDER BY chain'),
    insertKey: db.prepare(
      'INSERT INTO pool_keys (pool_id, chain, curve, public_key, address, device, handle, ceremony_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    keyConflict: db.prepare(
      'SELECT pool_id, chain, public_key, address, device, handle FROM pool_keys WHERE (pool_id = ? AND chain = ?) OR public_key = ? OR lower(address) = lower(?) OR (device = ? AND handle = ?) LIMIT 1',
    ),
    keysOfPool: db.prepare('SELECT * FROM pool_keys WHERE pool_id = ? ORDER BY chain'),
    allKeys: db.prepare('SELECT * FROM pool_keys ORDER BY pool_id, chain'),
    // Stored addresses are canonical (EIP-55, lowercase bech32, base58): an exact match uses the unique index.
    keyByAddress: db.prepare('SELECT k.* FROM key_addresses a JOIN pool_keys k ON k.pool_id = a.pool_id AND k.chain = a.chain WHERE a.address = ?'),
    insertKeyAddress: db.prepare('INSERT INTO key_addresses (address, pool_id, chain) VALUES (?, ?, ?)'),
    getKey: db.prepare('SELECT * FROM pool_keys WHERE pool_id = ? AND chain = ?'),
    insertWithdrawal: db.prepare(`INSERT INTO withdrawals (id, pool_id, chain, asset, amount, to_address, requester_id, idempotency_key, sign_once_key,
      unsigned_tx, digest, max_fee, policy_version, required_approvals, state, reasons, approval_message, signed_tx, tx_hash, created_at, updated_at,
      committed_at, not_before, expires_at, contract_call) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`),
    getWithdrawal: db.prepare('SELECT * FROM withdrawals WHERE id = ?'),
    byIdempotencyKey: db.prepare('SELECT * FROM withdrawals WHERE requester_id = ? AND idempotency_key = ?'),
    liveClaim: db.prepare(`SELECT w.id FROM withdrawal_claims c JOIN withdrawals w ON w.id = c.withdrawal_id
      WHERE c.pool_id = ? AND c.chain = ? AND c.claim = ? AND w.state IN (${inList(LIVE_STATES)}) LIMIT 1`),
    insertClaim: db.prepare('INSERT INTO withdrawal_claims (withdrawal_id, pool_id, chain, claim) VALUES (?, ?, ?, ?)'),
    claimsOf: db.prepare('SELECT claim FROM withdrawal_claims WHERE withdrawal_id = ? ORDER BY claim'),
    liveSignOnce: db.prepare(`SELECT id FROM withdrawals WHERE pool_id = ? AND chain = ? AND sign_once_key = ? AND state IN (${inList(LIVE_STATES)}) LIMIT 1`),
    updateWithdrawal: db.prepare(`UPDATE withdrawals SET state = @state, reasons = @reasons, signed_tx = @signedTx, tx_hash = @txHash,
      committed_at = @committedAt, not_before = @notBefore, policy_version = @policyVersion, required_approvals = @requiredApprovals,
      approval_message = @approvalMessage, updated_at = @now WHERE id = @id AND state = @from`),
    committedSince: db.prepare(
      `SELECT amount, committed_at FROM withdrawals WHERE pool_id = ? AND asset = ? AND committed_at > ? AND state IN (${inList(COMMITTED_STATES)}) ORDER BY committed_at`,
    ),
    committedBetween: db.prepare(
      `SELECT amount FROM withdrawals WHERE pool_id = ? AND asset = ? AND committed_at > ? AND committed_at < ? AND state IN (${inList(COMMITTED_STATES)})`,
    ),
    committedSumLimbsBetween: db.prepare(
      `SELECT ${Array.from({ length: SUM_LIMBS }, (_, k) => `SUM(CAST(substr(amount, ${-LIMB_DIGITS * (k + 1)}, ${LIMB_DIGITS}) AS INTEGER)) AS l${k}`).join(', ')}
       FROM withdrawals WHERE pool_id = ? AND asset = ? AND committed_at > ? AND committed_at < ? AND state IN (${inList(COMMITTED_STATES)})`,
    ).safeIntegers(true),
    unreleased: db.prepare(
      `SELECT id, amount, committed_at FROM withdrawals INDEXED BY withdrawals_state
        WHERE state IN (${inList(UNRELEASED_STATES)}) AND pool_id = ? AND asset = ? AND committed_at IS NOT NULL`,
    ),
    usageMinute: db.prepare('SELECT total FROM usage_minutes WHERE pool_id = ? AND asset = ? AND minute = ?'),
    setUsageMinute: db.prepare(
      'INSERT INTO usage_minutes (pool_id, asset, minute, total) VALUES (?, ?, ?, ?) ON CONFLICT (pool_id, asset, minute) DO UPDATE SET total = excluded.total',
    ),
    deleteUsageMinute: db.prepare('DELETE FROM usage_minutes WHERE pool_id = ? AND asset = ? AND minute = ?'),
    usageMinutesAfter: db.prepare('SELECT total FROM usage_minutes WHERE pool_id = ? AND asset = ? AND minute > ?').pluck(),
    insertApproval: db.prepare('INSERT INTO approvals (withdrawal_id, approver_id, decision, signature, message, created_at) VALUES (?, ?, ?, ?, ?, ?)'),
    getApproval: db.prepare('SELECT 1 FROM approvals WHERE withdrawal_id = ? AND approver_id = ?'),
    approvalsOf: db.prepare('SELECT * FROM approvals WHERE withdrawal_id = ? ORDER BY created_at, approver_id'),
    copyToSuperseded: db.prepare(`INSERT INTO superseded_approvals (withdrawal_id, approver_id, decision, signature, message, created_at, superseded_at)
      SELECT withdrawal_id, approver_id, decision, signature, message, created_at, ? FROM approvals WHERE withdrawal_id = ?`),
    deleteApprovals: db.prepare('DELETE FROM approvals WHERE withdrawal_id = ?'),
    auditHead: db.prepare('SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1'),
    insertAudit: db.prepare('INSERT INTO audit (seq, at, type, actor, subject, data, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?)'),
    auditAfter: db.prepare('SELECT * FROM audit WHERE seq > ? ORDER BY seq LIMIT ?'),
    auditAll: db.prepare('SELECT * FROM audit ORDER BY seq'),
    getSetting: db.prepare('SELECT value FROM settings WHERE key = ?'),
    setSetting: db.prepare('INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value'),
    ping: db.prepare('SELECT 1 AS ok'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

function createTx(db: Db, s: Statements): StoreTx {
  /** Keeps the minute totals in step with a withdrawal's change, inside the same transaction. */
  const applyUsage = (before: Withdrawal | null, after: Withdrawal) => {
    for (const { share, sign } of usageChanges(before, after)) {
      const row = s.usageMinute.get(share.poolId, share.asset, share.minute) as Row | undefined;
      const total = (row ? BigInt(str(row.total)) : 0n) + sign * share.amount;
      if (total < 0n) throw new StoreError('usage_inconsistent', `the usage total of pool ${share.poolId} (${share.asset}) would fall below zero; the store needs repair`);
      if (total === 0n) s.deleteUsageMinute.run(share.poolId, share.asset, share.minute);
      else s.setUsageMinute.run(share.poolId, share.asset, share.minute, total.toString());
    }
  };
  const listCache = new Map<string, Database.Statement>();
  const listStatement = (filter: WithdrawalFilter): Database.Statement => {
    const key = `${filter.poolId !== undefined}:${filter.state !== undefined}`;
    let stmt = listCache.get(key);
    if (!stmt) {
      const where = [filter.poolId !== undefined ? 'pool_id = @poolId' : null, filter.state !== undefined ? 'state = @state' : null].filter(Boolean);
      stmt = db.prepare(`SELECT * FROM withdrawals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT @limit OFFSET @offset`);
      listCache.set(key, stmt);
    }
    return stmt;
  };

  return {
    async insertPrincipal(p) {
      s.insertPrincipal.run(p.id, p.name, p.role, p.tokenHash, p.createdAt);
    },
    async principalByTokenHash(hash) {
      const r = s.principalByTokenHash.get(hash) as Row | undefined;
      return r ? rowToPrincipal(r) : null;
    },
    async principalById(id) {
      const r = s.principalById.get(id) as Row | undefined;
      return r ? rowToPrincipal(r) : null;
    },
    async listPrincipals() {
      return (s.listPrincipals.all() as Row[]).map(rowToPrincipal);
    },

    async insertApprover(a: Approver) {
      if (s.getApprover.get(a.id)) throw new ConflictError('approver_exists', `approver "${a.id}" is already enrolled`);
      const other = s.approverByKey.get(a.publicKey) as Row | undefined;
      if (other) throw new ConflictError('approver_key_conflict', `approver "${str(other.id)}" already uses this public key`);
      s.insertApprover.run(a.id, a.publicKey);
    },
    async getApprover(id) {
      const r = s.getApprover.get(id) as Row | undefined;
      return r ? rowToApprover(r) : null;
    },
    async listApprovers() {
      return (s.listApprovers.all() as Row[]).map(rowToApprover);
    },

    async insertPool(pool: Pool, policy: PolicyDocument) {
      if (s.getPool.get(pool.id)) throw new ConflictError('pool_exists', `pool "${pool.id}" already exists`);
      s.insertPool.run(pool.id, pool.owner, JSON.stringify(pool.chains), pool.status, JSON.stringify(pool.approvers), pool.policyVersion, pool.createdAt);
      s.insertPolicy.run(pool.id, pool.policyVersion, JSON.stringify(policy));
    },
    async getPool(id) {
      const r = s.getPool.get(id) as Row | undefined;
      return r ? rowToPool(r) : null;
    },
    async listPools() {
      return (s.listPools.all() as Row[]).map(rowToPool);
    },
    async setPoolStatus(id, status) {
      s.setPoolStatus.run(status, id);
    },
    async getPolicy(poolId, version) {
      const r = s.getPolicy.get(poolId, version) as Row | undefined;
      return r ? (JSON.parse(str(r.document)) as PolicyDocument) : null;
    },
    async insertKey(k: PoolKey) {
      const clash = s.keyConflict.get(k.poolId, k.chain, k.publicKey, k.address, k.device, k.handle) as Row | undefined;
      if (clash) {
        const what =
          clash.pool_id === k.poolId && clash.chain === k.chain
            ? `pool "${k.poolId}" already has a key on ${k.chain}`
            : `the key (public key, address or device handle) already belongs to pool "${str(clash.pool_id)}"`;
        throw new ConflictError('key_conflict', `${what}: a key belongs to exactly one pool and a pool has one key per chain`);
      }
      s.insertKey.run(k.poolId, k.chain, k.curve, k.publicKey, k.address, k.device, k.handle, k.ceremonyId, k.createdAt);
      for (const a of everyAddressOfKey(parseChainId(k.chain), k.publicKey, k.address)) s.insertKeyAddress.run(a, k.poolId, k.chain);
    },
    async insertPolicyVersion(poolId, version, policy) {
      if (s.getPolicy.get(poolId, version)) throw new ConflictError('policy_version_exists', `policy version ${version} of pool "${poolId}" exists and is immutable`);
      s.insertPolicy.run(poolId, version, JSON.stringify(policy));
    },
    async latestPolicyVersion(poolId) {
      return num((s.latestPolicyVersion.get(poolId) as Row).v ?? 0);
    },
    async setPoolPolicyVersion(poolId, version) {
      s.setPoolPolicyVersion.run(version, poolId);
    },
    async setPoolApprovers(poolId, approvers) {
      s.setPoolApprovers.run(JSON.stringify(approvers), poolId);
    },

    async insertProposal(p: Proposal) {
      s.insertProposal.run(
        p.id, p.poolId, p.change.action, JSON.stringify(p.change), JSON.stringify(p.binding), p.proposedBy, p.requiredApprovals, p.state,
        p.approvalMessage, p.createdAt, p.updatedAt, p.appliedVersion, p.reason,
      );
    },
    async getProposal(id) {
      const r = s.getProposal.get(id) as Row | undefined;
      return r ? rowToProposal(r) : null;
    },
    async listProposals(filter) {
      const where = [filter.poolId !== undefined ? 'pool_id = @poolId' : null, filter.state !== undefined ? 'state = @state' : null].filter(Boolean);
      const key = `proposals:${where.join(',')}`;
      let stmt = listCache.get(key);
      if (!stmt) {
        stmt = db.prepare(`SELECT * FROM proposals ${where.length ? 'WHERE ' + where.join(' AND ') : ''} ORDER BY created_at DESC, id DESC LIMIT @limit`);
        listCache.set(key, stmt);
      }
      return (stmt.all({ ...(filter.poolId !== undefined ? { poolId: filter.poolId } : {}), ...(filter.state !== undefined ? { state: filter.state } : {}), limit: filter.limit }) as Row[]).map(rowToProposal);
    },
    async updateProposal(id, from, patch, now) {
      const current = s.getProposal.get(id) as Row | undefined;
      if (!current || current.state !== from) throw new ConflictError('state_changed', `proposal ${id} is no longer "${from}"`);
      s.updateProposal.run(patch.state, patch.appliedVersion ?? optNum(current.applied_version), patch.reason ?? (current.reason as string | null) ?? null, now, id, from);
      return rowToProposal(s.getProposal.get(id) as Row);
    },
    async insertProposalApproval(a: ProposalApproval) {
      if (s.getProposalApproval.get(a.proposalId, a.adminId)) throw new ConflictError('duplicate_approval', `${a.adminId} has already voted on proposal ${a.proposalId}`);
      s.insertProposalApproval.run(a.proposalId, a.adminId, a.decision, a.signature, a.message, a.createdAt);
    },
    async insertControlProof(p: ControlProof) {
      s.insertControlProof.run(p.proposalId, p.poolId, p.chain, p.address, p.format, p.signature, p.createdAt);
    },
    async controlProofsOf(proposalId) {
      return (s.controlProofsOf.all(proposalId) as Row[]).map(rowToControlProof);
    },
    async proposalApprovalsOf(proposalId) {
      return (s.proposalApprovalsOf.all(proposalId) as Row[]).map(rowToProposalApproval);
    },

    async allKeys() {
      return (s.allKeys.all() as Row[]).map(rowToKey);
    },
    async keysOfPool(poolId) {
      return (s.keysOfPool.all(poolId) as Row[]).map(rowToKey);
    },
    async getKey(poolId, chain) {
      const r = s.getKey.get(poolId, chain) as Row | undefined;
      return r ? rowToKey(r) : null;
    },
    async keyByAddress(address) {
      const r = s.keyByAddress.get(address) as Row | undefined;
      return r ? rowToKey(r) : null;
    },

    async insertWithdrawal(w: Withdrawal, claims: readonly string[] = []) {
      if (w.idempotencyKey !== null && s.byIdempotencyKey.get(w.requesterId, w.idempotencyKey)) {
        throw new ConflictError('duplicate_idempotency_key', `Idempotency-Key "${w.idempotencyKey}" was already used by this requester`);
      }
      if ((LIVE_STATES as readonly string[]).includes(w.state)) {
        const holder = s.liveSignOnce.get(w.poolId, w.chain, w.signOnceKey) as Row | undefined;
        if (holder) {
          throw new ConflictError(
            'sign_once',
            `${w.signOnceKey.replace(':', ' ')} on ${w.chain} is already used by withdrawal ${str(holder.id)} of pool ${w.poolId}; one transaction per nonce is signed`,
            { details: { conflictingWithdrawal: str(holder.id) } },
          );
        }
        for (const claim of claims) {
          const claimant = s.liveClaim.get(w.poolId, w.chain, claim) as Row | undefined;
          if (claimant) {
            throw new ConflictError('claim_in_use', `${claim} is already being spent by withdrawal ${str(claimant.id)}; a UTXO is spent by one live request only`, {
              details: { conflictingWithdrawal: str(claimant.id) },
            });
          }
        }
      }
      s.insertWithdrawal.run(
        w.id, w.poolId, w.chain, w.asset, w.amount.toString(), w.to, w.requesterId, w.idempotencyKey, w.signOnceKey,
        w.unsignedTx, w.digest, w.maxFee.toString(), w.policyVersion, w.requiredApprovals, w.state, JSON.stringify(w.reasons),
        w.approvalMessage, w.signedTx, w.txHash, w.createdAt, w.updatedAt, w.committedAt, w.notBefore, w.expiresAt,
        w.contractCall === null ? null : JSON.stringify(w.contractCall),
      );
      for (const claim of claims) s.insertClaim.run(w.id, w.poolId, w.chain, claim);
      applyUsage(null, w);
    },
    async claimsOf(withdrawalId) {
      return (s.claimsOf.all(withdrawalId) as Row[]).map((r) => str(r.claim));
    },
    async getWithdrawal(id) {
      const r = s.getWithdrawal.get(id) as Row | undefined;
      return r ? rowToWithdrawal(r) : null;
    },
    async withdrawalByIdempotencyKey(requesterId, key) {
      const r = s.byIdempotencyKey.get(requesterId, key) as Row | undefined;
      return r ? rowToWithdrawal(r) : null;
    },
    async listWithdrawals(filter) {
      const rows = listStatement(filter).all({
        ...(filter.poolId !== undefined ? { poolId: filter.poolId } : {}),
        ...(filter.state !== undefined ? { state: filter.state } : {}),
        limit: filter.limit,
        offset: filter.offset ?? 0,
      }) as Row[];
      return rows.map(rowToWithdrawal);
    },
    async withdrawalsInStates(states) {
      if (states.length === 0) return [];
      const rows = db.prepare(`SELECT * FROM withdrawals WHERE state IN (${states.map(() => '?').join(', ')}) ORDER BY created_at, id`).all(...states) as Row[];
      return rows.map(rowToWithdrawal);
    },
    async updateWithdrawal(id, from, patch: WithdrawalPatch, now) {
      const current = s.getWithdrawal.get(id) as Row | undefined;
      if (!current || current.state !== from) {
        throw new ConflictError('state_changed', `withdrawal ${id} is no longer "${from}"${current ? ` (it is "${str(current.state)}")` : ''}`);
      }
      const w = rowToWithdrawal(current);
      const info = s.updateWithdrawal.run({
        id,
        from,
        now,
        state: patch.state,
        reasons: JSON.stringify(patch.reasons ?? w.reasons),
        signedTx: patch.signedTx ?? w.signedTx,
        txHash: patch.txHash ?? w.txHash,
        committedAt: patch.committedAt !== undefined ? patch.committedAt : w.committedAt,
        notBefore: patch.notBefore !== undefined ? patch.notBefore : w.notBefore,
        policyVersion: patch.policyVersion ?? w.policyVersion,
        requiredApprovals: patch.requiredApprovals ?? w.requiredApprovals,
        approvalMessage: patch.approvalMessage ?? w.approvalMessage,
      });
      if (info.changes !== 1) throw new ConflictError('state_changed', `withdrawal ${id} is no longer "${from}"`);
      const updated = rowToWithdrawal(s.getWithdrawal.get(id) as Row);
      applyUsage(w, updated);
      return updated;
    },
    async committedSince(poolId, asset, since) {
      // The minutes wholly inside the window from their running totals (usage-minutes.ts)...
      let total = 0n;
      for (const t of s.usageMinutesAfter.iterate(poolId, asset, minuteOf(since)) as IterableIterator<string>) total += BigInt(t);
      // ...and the minute that holds `since` from its withdrawals, exactly in SQL: amounts are decimal
      // text of up to 78 digits, summed as limbs of 15 digits, each limb's sum an exact 64-bit integer,
      // recombined as a bigint. A sum that would overflow 64 bits makes SQLite raise "integer
      // overflow": then sum row by row.
      const until = nextMinuteStart(since);
      try {
        const limbs = s.committedSumLimbsBetween.get(poolId, asset, since, until) as Row;
        let boundary = 0n;
        for (let k = SUM_LIMBS - 1; k >= 0; k--) boundary = boundary * LIMB_BASE + ((limbs[`l${k}`] as bigint | null) ?? 0n);
        return total + boundary;
      } catch (error) {
        if (!(error instanceof Database.SqliteError) || !/integer overflow/i.test(error.message)) throw error;
      }
      for (const r of s.committedBetween.iterate(poolId, asset, since, until) as IterableIterator<Row>) total += BigInt(str(r.amount));
      return total;
    },
    async unreleasedEntries(poolId, asset) {
      return (s.unreleased.all(poolId, asset) as Row[]).map((r) => ({ amount: BigInt(str(r.amount)), committedAt: num(r.committed_at), id: str(r.id) }));
    },
    async committedEntriesSince(poolId, asset, since) {
      return (s.committedSince.all(poolId, asset, since) as Row[]).map((r) => ({ amount: BigInt(str(r.amount)), committedAt: num(r.committed_at) }));
    },

    async insertApproval(a: Approval) {
      if (s.getApproval.get(a.withdrawalId, a.approverId)) {
        throw new ConflictError('duplicate_approval', `${a.approverId} has already voted on withdrawal ${a.withdrawalId}`);
      }
      s.insertApproval.run(a.withdrawalId, a.approverId, a.decision, a.signature, a.message, a.createdAt);
    },
    async approvalsOf(withdrawalId) {
      return (s.approvalsOf.all(withdrawalId) as Row[]).map(rowToApproval);
    },
    async supersedeApprovals(withdrawalId, now) {
      s.copyToSuperseded.run(now, withdrawalId);
      return s.deleteApprovals.run(withdrawalId).changes;
    },

    async appendAudit(input: AuditInput, now: number) {
      const head = s.auditHead.get() as Row | undefined;
      const entry = nextAuditEntry(head ? { seq: num(head.seq), hash: str(head.hash) } : null, input, now);
      s.insertAudit.run(entry.seq, entry.at, entry.type, entry.actor, entry.subject, JSON.stringify(entry.data), entry.prevHash, entry.hash);
      return entry;
    },

    async getSetting(key) {
      const r = s.getSetting.get(key) as Row | undefined;
      return r ? str(r.value) : null;
    },
    async setSetting(key, value) {
      s.setSetting.run(key, value);
    },
  };
}

function asStoreError(error: unknown): unknown {
  if (error instanceof CustodyError) return error;
  if (error instanceof Database.SqliteError) {
    if (error.code.startsWith('SQLITE_CONSTRAINT')) {
      return new ConflictError('constraint', `the store refused the change: ${error.message}`, { cause: error });
    }
    return new StoreError('store_failed', `the store could not complete the step: ${error.message}`, { cause: error });
  }
  return error;
}

/** At most this many transactions share one COMMIT. */
const MAX_BATCH = 64;

interface Waiting {
  readonly fn: (t: StoreTx) => Promise<unknown>;
  readonly resolve: (value: unknown) => void;
  readonly reject: (error: unknown) => void;
}

export interface SqliteStoreOptions {
  readonly path: string;
}

export function openSqliteStore(options: SqliteStoreOptions): Store {
  mkdirSync(dirname(options.path), { recursive: true });
  let db: Db;
  let reader: Db;
  try {
    db = new Database(options.path);
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
    db.pragma('busy_timeout = 5000');
    migrate(db);
    // A second, read-only connection for Store.read: in WAL mode it sees the last commit and never
    // waits for the writer; SQLite refuses any write on it.
    reader = new Database(options.path, { readonly: true, fileMustExist: true });
    reader.pragma('busy_timeout = 5000');
  } catch (error) {
    throw asStoreError(error);
  }
  const statements = prepareStatements(db);
  const tx = createTx(db, statements);
  const reads: StoreReads = createTx(reader, prepareStatements(reader));
  let closed = false;
  let pending: Waiting[] = [];
  let scheduled = false;
  let running: Promise<void> = Promise.resolve();

  /**
   * Group commit: the transactions requested in one turn of the event loop run one after another
   * inside a single SQLite transaction, each in its own savepoint, and share one durable COMMIT (one
   * fsync). A transaction that throws is rolled back to its savepoint alone and rejected; the others
   * resolve only once the COMMIT returned, so no caller ever sees a result that is not on disk. If the
   * COMMIT fails, every transaction of the batch fails with it.
   */
  const runBatch = async (): Promise<void> => {
    scheduled = false;
    const batch = pending.splice(0, MAX_BATCH);
    if (pending.length > 0) schedule();
    if (closed) {
      for (const w of batch) w.reject(new StoreError('store_closed', 'the store is closed'));
      return;
    }
    try {
      db.exec('BEGIN IMMEDIATE');
    } catch (error) {
      const e = asStoreError(error);
      for (const w of batch) w.reject(e);
      return;
    }
    const done: { w: Waiting; value: unknown }[] = [];
    // Set when a step's writes could not be undone alone: then nothing of the batch may commit.
    let aborted: unknown = null;
    for (const w of batch) {
      if (aborted !== null || !db.inTransaction) {
        // SQLite rolled the whole transaction back (I/O error, disk full): nothing of this batch stands.
        w.reject(aborted ?? new StoreError('store_failed', 'the store rolled back the transaction; try again'));
        continue;
      }
      try {
        db.exec('SAVEPOINT step');
        const value = await w.fn(tx);
        db.exec('RELEASE step');
        done.push({ w, value });
      } catch (error) {
        try {
          if (db.inTransaction) db.exec('ROLLBACK TO step; RELEASE step');
        } catch (rollbackError) {
          aborted = asStoreError(rollbackError) ?? new StoreError('store_failed', 'a step could not be rolled back; nothing of its batch was kept');
        }
        w.reject(asStoreError(error));
      }
    }
    try {
      if (aborted !== null) throw aborted;
      if (!db.inTransaction) throw new StoreError('store_failed', 'the store rolled back the transaction; try again');
      db.exec('COMMIT');
    } catch (error) {
      try {
        if (db.inTransaction) db.exec('ROLLBACK');
      } catch {
        // The connection is in trouble; the error below is what callers need.
      }
      const e = asStoreError(error);
      for (const d of done) d.w.reject(e);
      return;
    }
    for (const d of done) d.w.resolve(d.value);
  };
  const schedule = () => {
    if (scheduled) return;
    scheduled = true;
    // After the I/O of this turn: every transaction requested meanwhile joins the batch.
    setImmediate(() => {
      running = running.then(runBatch, runBatch);
    });
  };

  const store: Store = {
    transaction<T>(fn: (t: StoreTx) => Promise<T>): Promise<T> {
      if (closed) return Promise.reject(new StoreError('store_closed', 'the store is closed'));
      return new Promise<T>((resolve, reject) => {
        pending.push({ fn, resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
    async read<T>(fn: (r: StoreReads) => Promise<T>): Promise<T> {
      if (closed) throw new StoreError('store_closed', 'the store is closed');
      try {
        return await fn(reads);
      } catch (error) {
        throw asStoreError(error);
      }
    },
    async auditAfter(after, limit) {
      return (statements.auditAfter.all(after, limit) as Row[]).map(rowToAudit);
    },
    async verifyAudit(): Promise<AuditVerification> {
      function* entries(): Generator<AuditEntry & { readonly storedData: string }> {
        for (const r of statements.auditAll.iterate() as IterableIterator<Row>) yield rowToStoredAudit(r);
      }
      return verifyAuditChain(entries());
    },
    async ping() {
      try {
        return (statements.ping.get() as Row).ok === 1;
      } catch {
        return false;
      }
    },
    async close() {
      if (closed) return;
      while (pending.length > 0 || scheduled) await new Promise((r) => setImmediate(r));
      await running;
      closed = true;
      reader.close();
      db.close();
    },
  };
  return store;
}
