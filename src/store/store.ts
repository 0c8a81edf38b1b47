/**
 * The Store interface: everything the gateway keeps, behind one small interface that SQLite
 * (src/store/sqlite/) and PostgreSQL (src/store/postgres/) implement.
 *
 * Every change happens inside `transaction`, together with its audit entry (`tx.appendAudit`), so a
 * state transition and its record commit or vanish together (SPEC rules 6 and 7). Commits are durable
 * (SQLite: WAL with synchronous=FULL; PostgreSQL: synchronous_commit on). Transactions are serialized per store: a use case reads usage,
 * decides, and writes in one transaction, so two requests cannot both pass a limit only one fits.
 */
import type { Approver, Pool, PoolKey, PoolStatus } from '../domain/pool.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import type { Principal } from '../domain/principal.js';
import type { Approval, Reason, Withdrawal, WithdrawalState } from '../domain/withdrawal.js';
import type { ControlProof, Proposal, ProposalApproval, ProposalState } from '../domain/proposal.js';

export interface AuditInput {
  /** What happened, e.g. `withdrawal.submitted`, `withdrawal.approval`, `withdrawal.signed`, `pool.frozen`. */
  readonly type: string;
  /** Principal name or `system`. */
  readonly actor: string;
  /** What it happened to, e.g. `withdrawal:<id>`, `pool:<id>`. */
  readonly subject: string;
  /** JSON-serializable facts (bigints as decimal strings; never secrets, only their hashes). */
  readonly data: Readonly<Record<string, unknown>>;
}

export interface AuditEntry extends AuditInput {
  /** 1, 2, 3, … without gaps. */
  readonly seq: number;
  /** ISO 8601 time of the entry. */
  readonly at: string;
  /** Hash of the previous entry (64 zero hex digits for the first). */
  readonly prevHash: string;
  /** sha256 over the canonical JSON of { seq, at, type, actor, subject, data, prevHash }, hex. */
  readonly hash: string;
}

export interface AuditVerification {
  readonly ok: boolean;
  readonly entries: number;
  readonly headHash: string | null;
  /** The first entry that does not verify, and why. */
  readonly firstBad?: { readonly seq: number; readonly reason: string };
}

export interface WithdrawalFilter {
  readonly poolId?: string;
  readonly state?: WithdrawalState;
  /** Return requests created before this id's position (pagination); newest first. */
  readonly limit: number;
  readonly offset?: number;
}

/** The fields of a withdrawal a transition may change. */
export interface WithdrawalPatch {
  readonly state: WithdrawalState;
  readonly reasons?: readonly Reason[];
  readonly signedTx?: string;
  readonly txHash?: string;
  readonly committedAt?: number | null;
  readonly notBefore?: number | null;
  /** A new approval message (the version 2 upgrade of a request still open). */
  readonly approvalMessage?: string;
  readonly policyVersion?: number;
  readonly requiredApprovals?: number;
}

export interface StoreTx {
  // principals
  insertPrincipal(principal: Principal): Promise<void>;
  principalByTokenHash(tokenHash: string): Promise<Principal | null>;
  principalById(id: string): Promise<Principal | null>;
  listPrincipals(): Promise<readonly Principal[]>;

  // approvers (their Ed25519 approval keys)
  insertApprover(approver: Approver): Promise<void>;
  getApprover(id: string): Promise<Approver | null>;
  listApprovers(): Promise<readonly Approver[]>;

  // pools, policies and keys
  /** Inserts the pool and its policy version `pool.policyVersion`. Refuses an existing id. */
  insertPool(pool: Pool, policy: PolicyDocument): Promise<void>;
  getPool(id: string): Promise<Pool | null>;
  listPools(): Promise<readonly Pool[]>;
  setPoolStatus(id: string, status: PoolStatus): Promise<void>;
  getPolicy(poolId: string, version: number): Promise<PolicyDocument | null>;
  /** Adds an immutable policy version; refuses (ConflictError `policy_version_exists`) an existing one. */
  insertPolicyVersion(poolId: string, version: number, policy: PolicyDocument): Promise<void>;
  latestPolicyVersion(poolId: string): Promise<number>;
  setPoolPolicyVersion(poolId: string, version: number): Promise<void>;
  setPoolApprovers(poolId: string, approvers: readonly string[]): Promise<void>;
  /**
   * Refuses (ConflictError `key_conflict`) a second key for (pool, chain), or a public key, address or
   * (device, handle) already held by any pool (SPEC rule 1).
   */
  insertKey(key: PoolKey): Promise<void>;
  keysOfPool(poolId: string): Promise<readonly PoolKey[]>;
  /** Every pool key, by pool then chain. */
  allKeys(): Promise<readonly PoolKey[]>;
  getKey(poolId: string, chain: string): Promise<PoolKey | null>;
  /** The pool key whose address is `address` (Ethereum addresses compare case-insensitively), if any. */
  keyByAddress(address: string): Promise<PoolKey | null>;

  // withdrawals
  /**
   * Refuses (ConflictError `duplicate_idempotency_key`) a second request with the same requester and
   * idempotency key, and (ConflictError `sign_once`) a request whose (pool, chain, signOnceKey) is held
   * by another live request (SPEC rule 5), and (ConflictError `claim_in_use`) one whose claims (Bitcoin
   * outpoints) another live request of the pool and chain holds.
   */
  insertWithdrawal(withdrawal: Withdrawal, claims?: readonly string[]): Promise<void>;
  /** What a withdrawal claims besides its sign-once key (Bitcoin: `utxo:<txid>:<vout>` of each input). */
  claimsOf(withdrawalId: string): Promise<readonly string[]>;
  getWithdrawal(id: string): Promise<Withdrawal | null>;
  withdrawalByIdempotencyKey(requesterId: string, key: string): Promise<Withdrawal | null>;
  listWithdrawals(filter: WithdrawalFilter): Promise<readonly Withdrawal[]>;
  /** Requests in any of `states`, oldest first (used to resume work after a restart). */
  withdrawalsInStates(states: readonly WithdrawalState[]): Promise<readonly Withdrawal[]>;
  /**
   * Compare-and-set: applies the patch only if the request is still in `from`; returns the updated
   * request, or throws ConflictError `state_changed` when it is not.
   */
  updateWithdrawal(id: string, from: WithdrawalState, patch: WithdrawalPatch, now: number): Promise<Withdrawal>;
  /**
   * Sum of amounts of (pool, asset) withdrawals in a committed state with committedAt > since.
   */
  committedSince(poolId: string, asset: string, since: number): Promise<bigint>;
  /** Committed (amount, committedAt) pairs since `since`, oldest first, for "frees up at" reports. */
  committedEntriesSince(poolId: string, asset: string, since: number): Promise<readonly { amount: bigint; committedAt: number }[]>;
  /**
   * (amount, committedAt, id) of the (pool, asset) requests committed but not released yet (approved,
   * time-locked, signing): few at any time, read through the state index whatever the history.
   */
  unreleasedEntries(poolId: string, asset: string): Promise<readonly { amount: bigint; committedAt: number; id: string }[]>;

  // approvals
  /** Refuses (ConflictError `duplicate_approval`) a second approval by the same approver. */
  insertApproval(approval: Approval): Promise<void>;
  approvalsOf(withdrawalId: string): Promise<readonly Approval[]>;
  /**
   * Moves the request's votes out of its approvals into `superseded_approvals` (kept, never counted
   * again): its approval message was replaced. Returns how many moved.
   */
  supersedeApprovals(withdrawalId: string, now: number): Promise<number>;

  // governance
  insertProposal(proposal: Proposal): Promise<void>;
  getProposal(id: string): Promise<Proposal | null>;
  listProposals(filter: { readonly poolId?: string; readonly state?: ProposalState; readonly limit: number }): Promise<readonly Proposal[]>;
  /** Compare-and-set on the state, like updateWithdrawal. */
  updateProposal(id: string, from: ProposalState, patch: { readonly state: ProposalState; readonly appliedVersion?: number; readonly reason?: string }, now: number): Promise<Proposal>;
  /** Refuses (ConflictError `duplicate_approval`) a second vote by the same admin. */
  insertProposalApproval(approval: ProposalApproval): Promise<void>;
  proposalApprovalsOf(proposalId: string): Promise<readonly ProposalApproval[]>;
  insertControlProof(proof: ControlProof): Promise<void>;
  controlProofsOf(proposalId: string): Promise<readonly ControlProof[]>;

  // audit
  /** Appends to the hash chain inside this transaction. */
  appendAudit(input: AuditInput, now: number): Promise<AuditEntry>;

  // key-value settings (device id, ceremony ids, demo state)
  getSetting(key: string): Promise<string | null>;
  setSetting(key: string, value: string): Promise<void>;
}

/** The reads of StoreTx: what `Store.read` offers. */
export type StoreReads = Pick<
  StoreTx,
  | 'principalByTokenHash'
  | 'principalById'
  | 'listPrincipals'
  | 'getApprover'
  | 'listApprovers'
  | 'getPool'
  | 'listPools'
  | 'getPolicy'
  | 'latestPolicyVersion'
  | 'keysOfPool'
  | 'allKeys'
  | 'getKey'
  | 'keyByAddress'
  | 'claimsOf'
  | 'getWithdrawal'
  | 'withdrawalByIdempotencyKey'
  | 'listWithdrawals'
  | 'withdrawalsInStates'
  | 'committedSince'
  | 'committedEntriesSince'
  | 'unreleasedEntries'
  | 'approvalsOf'
  | 'getProposal'
  | 'listProposals'
  | 'proposalApprovalsOf'
  | 'controlProofsOf'
  | 'getSetting'
>;

export interface Store {
  /**
   * Runs `fn` in one serialized, durable transaction: all of it commits or none of it does. Throws
   * StoreError when the store cannot confirm the commit. `fn` must do no device I/O.
   */
  transaction<T>(fn: (tx: StoreTx) => Promise<T>): Promise<T>;
  /**
   * Runs `fn` on committed data only, outside the serialized transactions: for lookups and views
   * (authentication, GET routes, reports) that decide nothing. It does not wait for the transactions
   * under way, and cannot write (the store refuses it). Every decision that writes reads inside
   * `transaction` instead.
   */
  read<T>(fn: (r: StoreReads) => Promise<T>): Promise<T>;
  /** Audit entries with seq > after, at most `limit`, in order. */
  auditAfter(after: number, limit: number): Promise<readonly AuditEntry[]>;
  /** Recomputes the whole chain; reports the first altered, deleted, inserted or reordered entry. */
  verifyAudit(): Promise<AuditVerification>;
  /** True when the store answers a trivial query. */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
