/**
 * Use cases of governance (SPEC sections 4 and 9): an admin proposes a new policy version, the
 * unfreezing of a pool, a change of its approvers, or a proof of control (its keys sign a challenge); `adminQuorum` other admins approve it by signing
 * its governance message (RFC 8785, Ed25519, like withdrawal approvals); then it is applied. A change
 * of the pool's device binding (approvers, base threshold) is first made in the device, which checks
 * the admins' signatures itself; then the store records the change with its audit entry, and every
 * open withdrawal of the pool is re-evaluated (the stricter outcome wins).
 */
import { randomUUID } from 'node:crypto';
import {
  canonicalGovernanceMessage,
  GOVERNANCE_KIND,
  GOVERNANCE_VERSION,
  memberSummaries,
  parseGovernanceMessage,
  sameSummary,
  sha256Canonical,
  type PoolGovernanceMessage,
  type PoolSummary,
} from '../../common/governance-message.js';
import { assertPolicyChains, baseThreshold, parsePolicyDocument, policyHash } from '../../common/policy/document.js';
import { AuthError, ConflictError, NotFoundError, StoreError, ValidationError, isCustodyError } from '../../common/errors.js';
import type { Approver, Pool } from '../domain/pool.js';
import type { Policy, PolicyDocument } from '../../common/policy/policy.js';
import type { Principal } from '../domain/principal.js';
import type { ControlProof, Governance, Proposal, ProposalApproval, ProposalChange } from '../domain/proposal.js';
import { challengeProblem } from '../../common/control-message.js';
import { assertControlProvable, encodeControlProof } from '../chains/control-proof.js';
import type { ApprovalEvidence } from '../devices/signing-device.js';
import type { StoreReads, StoreTx } from '../store/store.js';
import { assertSignatureHex, verifyApproverSignature } from '../quorum/approver-signature.js';
import { policyOf, requirePool, type ServiceContext } from './context.js';
import { reevaluatePool } from './reevaluate.js';

export async function readGovernance(tx: StoreTx): Promise<Governance> {
  const text = await tx.getSetting('governance');
  if (text === null) throw new ConflictError('no_governance', 'no admins are enrolled: run the key ceremony with "admins" and "adminQuorum" first');
  return JSON.parse(text) as Governance;
}

async function requireProposal(tx: StoreReads, id: string): Promise<Proposal> {
  const p = await tx.getProposal(id);
  if (!p) throw new NotFoundError('proposal_not_found', `proposal "${id}" does not exist`);
  return p;
}

/** The proposal's published governance message with `decision`. */
export function governanceMessageFor(p: Pick<Proposal, 'approvalMessage'>, decision: 'approve' | 'reject'): string {
  return canonicalGovernanceMessage({ ...parseGovernanceMessage(p.approvalMessage), decision });
}

/** Actions the device counts in the pool's governance sequence (a proof of control changes nothing). */
const SEQUENCED: readonly ProposalChange['action'][] = ['policy', 'approvers', 'unfreeze'];

/** What the pool's device holds (summary and governance sequence), read before a store transaction; null when it holds no governance. */
export interface HeldGovernance {
  readonly summary: PoolSummary;
  readonly sequence: number;
}

/**
 * Reads what the pool's device holds. The device counts the changes and freezes applied to the pool
 * (a freeze may reach it without this gateway), so the sequence governance messages name is its.
 */
export async function heldGovernance(ctx: ServiceContext, poolId: string): Promise<HeldGovernance | null> {
  const keys = await ctx.store.read((r) => r.keysOfPool(poolId));
  const first = keys[0];
  if (!first) return null;
  const state = await ctx.devices.forKey(first).governanceState(poolId);
  return state === null ? null : { summary: JSON.parse(state.summary) as PoolSummary, sequence: state.sequence };
}

/**
 * The pool as the store holds it, in the terms governance messages use (common/governance-message.ts),
 * and its governance sequence: the device's when it holds governance (`held`), whose binding and
 * policy must then be the store's (fail closed: ConflictError `device_store_disagree`), otherwise the
 * number of applied changes in the store.
 */
export async function poolGovernanceState(tx: StoreReads, pool: Pool, held: HeldGovernance | null = null): Promise<{ summary: PoolSummary; sequence: number; device: string }> {
  const doc = await tx.getPolicy(pool.id, pool.policyVersion);
  if (!doc) throw new StoreError('policy_missing', `pool ${pool.id} has no policy version ${pool.policyVersion}`);
  const approvers: Approver[] = [];
  for (const id of pool.approvers) {
    const a = await tx.getApprover(id);
    if (!a) throw new StoreError('approver_missing', `approver "${id}" of pool "${pool.id}" has no key in the store`);
    approvers.push(a);
  }
  const applied = await tx.listProposals({ poolId: pool.id, state: 'applied', limit: 1_000_000 });
  const keys = await tx.keysOfPool(pool.id);
  const summary: PoolSummary = {
    approvers: memberSummaries(approvers),
    threshold: baseThreshold(parsePolicyDocument(doc, 'policy')),
    policy: policyHash(doc),
    policyVersion: pool.policyVersion,
  };
  if (held !== null && !sameSummary(held.summary, summary)) {
    throw new ConflictError(
      'device_store_disagree',
      `pool ${pool.id}: its device holds another binding or policy (version ${held.summary.policyVersion}, policy ${held.summary.policy.slice(0, 16)}…) than the store (version ${summary.policyVersion}, policy ${summary.policy.slice(0, 16)}…); nothing is proposed until they agree`,
    );
  }
  return {
    summary,
    sequence: held?.sequence ?? applied.filter((x) => SEQUENCED.includes(x.change.action)).length,
    device: keys[0]?.device ?? '',
  };
}

function assertTiersFit(policy: Policy, approvers: number, field: string): void {
  policy.quorum.forEach((tier, i) => {
    if (tier.approvals > approvers) {
      throw new ValidationError('invalid_policy', `${field}.quorum[${i}].approvals: ${tier.approvals} is more than the pool's ${approvers} approvers`);
    }
  });
}

/** The pool's approvers and policy once `change` is applied, checked. */
async function resultingPool(tx: StoreTx, pool: Pool, change: ProposalChange): Promise<{ approvers: Approver[]; policy: Policy }> {
  let ids = [...pool.approvers];
  const fresh: Approver[] = [];
  let policy = await policyOf(tx, pool.id, pool.policyVersion);
  if (change.action === 'policy') {
    policy = parsePolicyDocument(change.policy, 'policy');
    assertPolicyChains(policy, pool.chains, 'policy');
  } else if (change.action === 'unfreeze') {
    if (pool.status !== 'frozen') throw new ConflictError('not_frozen', `pool "${pool.id}" is not frozen`);
  } else if (change.action === 'attest-control') {
    const problem = challengeProblem(change.challenge);
    if (problem) throw new ValidationError('invalid_challenge', `"challenge": ${problem}`);
    for (const key of await tx.keysOfPool(pool.id)) assertControlProvable(key.chain, key.address, key.publicKey);
  } else {
    if (change.add.length === 0 && change.remove.length === 0) throw new ValidationError('empty_change', 'name approvers to "add" or "remove"');
    for (const id of change.remove) {
      if (!ids.includes(id)) throw new ValidationError('unknown_approver', `"${id}" is not an approver of pool "${pool.id}"`);
    }
    ids = ids.filter((id) => !change.remove.includes(id));
    for (const a of change.add) {
      if (ids.includes(a.id)) throw new ValidationError('approver_exists', `"${a.id}" is already an approver of pool "${pool.id}"`);
      const known = await tx.getApprover(a.id);
      if (known && known.publicKey !== a.publicKey) throw new ConflictError('approver_conflict', `approver "${a.id}" is enrolled with another key`);
      if (!known) {
        const other = (await tx.listApprovers()).find((x) => x.publicKey === a.publicKey);
        if (other) throw new ConflictError('approver_conflict', `this public key already belongs to approver "${other.id}"`);
        fresh.push(a);
      }
      ids.push(a.id);
    }
    if (ids.length === 0) throw new ValidationError('no_approvers', 'a pool must keep at least one approver');
  }
  assertTiersFit(policy, ids.length, 'policy');
  const approvers: Approver[] = [];
  for (const id of ids) {
    const a = (await tx.getApprover(id)) ?? fresh.find((x) => x.id === id);
    if (!a) throw new StoreError('approver_missing', `approver "${id}" of pool "${pool.id}" has no key in the store`);
    approvers.push({ id: a.id, publicKey: a.publicKey });
  }
  return { approvers, policy };
}

export async function proposeChange(ctx: ServiceContext, admin: Principal, poolId: string, change: ProposalChange): Promise<Proposal> {
  const held = await heldGovernance(ctx, poolId);
  return ctx.store.transaction(async (tx) => {
    const governance = await readGovernance(tx);
    if (!governance.admins.includes(admin.name)) throw new AuthError('forbidden', 'not_an_admin', `"${admin.name}" is not one of the admins of the ceremony`);
    const pool = await requirePool(tx, poolId);
    const after = await resultingPool(tx, pool, change);
    const current = await poolGovernanceState(tx, pool, held);
    const now = ctx.now();
    const id = randomUUID();
    const afterSummary: PoolSummary =
      change.action === 'attest-control'
        ? current.summary
        : {
            approvers: memberSummaries(after.approvers),
            threshold: baseThreshold(after.policy),
            policy: change.action === 'policy' ? policyHash(change.policy) : current.summary.policy,
            policyVersion: change.action === 'policy' ? pool.policyVersion + 1 : pool.policyVersion,
          };
    const message: PoolGovernanceMessage = {
      kind: GOVERNANCE_KIND,
      version: GOVERNANCE_VERSION,
      proposalId: id,
      device: current.device,
      scope: 'pool',
      pool: pool.id,
      action: change.action,
      sequence: current.sequence,
      before: current.summary,
      after: afterSummary,
      change: sha256Canonical(change),
      decision: 'approve',
    };
    const proposal: Proposal = {
      id,
      poolId: pool.id,
      change,
      binding: { approvers: after.approvers, threshold: baseThreshold(after.policy) },
      proposedBy: admin.name,
      requiredApprovals: governance.adminQuorum,
      state: 'pending',
      approvalMessage: canonicalGovernanceMessage(message),
      createdAt: now,
      updatedAt: now,
      appliedVersion: null,
      reason: null,
    };
    await tx.insertProposal(proposal);
    await tx.appendAudit(
      {
        type: 'governance.proposed',
        actor: admin.name,
        subject: `proposal:${proposal.id}`,
        data: { pool: pool.id, action: change.action, changeSha256: sha256Canonical(change), sequence: message.sequence, messageSha256: sha256Canonical(proposal.approvalMessage) },
      },
      now,
    );
    ctx.log.info({ proposal: proposal.id, pool: pool.id, action: change.action, admin: admin.name }, 'governance proposal');
    return proposal;
  });
}

export interface ProposalVote {
  readonly signature: string;
  readonly decision: 'approve' | 'reject';
}

export async function approveProposal(ctx: ServiceContext, admin: Principal, proposalId: string, vote: ProposalVote): Promise<Proposal> {
  const signature = assertSignatureHex(vote.signature, 'signature');
  const pending = await ctx.store.read((r) => r.getProposal(proposalId));
  const held = pending === null ? null : await heldGovernance(ctx, pending.poolId);
  const recorded = await ctx.store.transaction(async (tx) => {
    const governance = await readGovernance(tx);
    const p = await requireProposal(tx, proposalId);
    if (p.state !== 'pending') throw new ConflictError('not_pending', `proposal ${p.id} is "${p.state}" and takes no more votes`);
    if (!governance.admins.includes(admin.name)) throw new AuthError('forbidden', 'not_an_admin', `"${admin.name}" is not an admin`);
    if (admin.name === p.proposedBy) throw new AuthError('forbidden', 'proposer_cannot_approve', `${admin.name} proposed this change and cannot approve it`);
    const key = await tx.getApprover(admin.name);
    if (!key) throw new AuthError('forbidden', 'not_an_admin', `"${admin.name}" has no enrolled key`);
    const stale = await staleness(tx, p, held);
    if (stale !== null) {
      const failed = await tx.updateProposal(p.id, 'pending', { state: 'failed', reason: stale }, ctx.now());
      await tx.appendAudit({ type: 'governance.failed', actor: 'system', subject: `proposal:${p.id}`, data: { reason: stale } }, ctx.now());
      return { proposal: failed, ready: false, stale };
    }
    const message = governanceMessageFor(p, vote.decision);
    if (!verifyApproverSignature(key.publicKey, message, signature)) {
      throw new ValidationError(
        'bad_approval_signature',
        `the signature does not verify with ${admin.name}'s key over this proposal's approvalMessage with decision "${vote.decision}"`,
      );
    }
    const now = ctx.now();
    const approval: ProposalApproval = { proposalId: p.id, adminId: admin.name, decision: vote.decision, signature, message, createdAt: now };
    await tx.insertProposalApproval(approval);
    await tx.appendAudit({ type: 'governance.approval', actor: admin.name, subject: `proposal:${p.id}`, data: { decision: vote.decision, signature } }, now);
    if (vote.decision === 'reject') {
      const rejected = await tx.updateProposal(p.id, 'pending', { state: 'rejected', reason: `rejected by ${admin.name}` }, now);
      await tx.appendAudit({ type: 'governance.rejected', actor: admin.name, subject: `proposal:${p.id}`, data: {} }, now);
      return { proposal: rejected, ready: false, stale: null };
    }
    const approvals = (await tx.proposalApprovalsOf(p.id)).filter((a) => a.decision === 'approve' && governance.admins.includes(a.adminId) && a.adminId !== p.proposedBy);
    return { proposal: p, ready: new Set(approvals.map((a) => a.adminId)).size >= p.requiredApprovals, stale: null };
  });
  if (recorded.stale !== null) throw new ConflictError('stale_proposal', recorded.stale);
  if (!recorded.ready) return recorded.proposal;
  return applyProposal(ctx, recorded.proposal);
}

/**
 * Null when the proposal still names the pool as it is; otherwise why it can no longer be applied (another
 * change was applied since it was made: its "before" and sequence are no longer the pool's).
 */
async function staleness(tx: StoreReads, p: Proposal, held: HeldGovernance | null): Promise<string | null> {
  const message = parseGovernanceMessage(p.approvalMessage);
  if (message.scope !== 'pool') return 'this proposal is not about a pool';
  let current;
  try {
    current = await poolGovernanceState(tx, await requirePool(tx, p.poolId), held);
  } catch (error) {
    if (isCustodyError(error) && error.code === 'device_store_disagree') return `${error.message}: propose it again once they do`;
    throw error;
  }
  if (current.sequence === message.sequence && sameSummary(current.summary, message.before)) return null;
  return `the pool changed since this proposal was made (governance sequence ${message.sequence}, now ${current.sequence}): it can no longer be applied; propose it again`;
}

async function applyProposal(ctx: ServiceContext, p: Proposal): Promise<Proposal> {
  const fail = (reason: string) =>
    ctx.store.transaction(async (tx) => {
      const failed = await tx.updateProposal(p.id, 'pending', { state: 'failed', reason }, ctx.now());
      await tx.appendAudit({ type: 'governance.failed', actor: 'system', subject: `proposal:${p.id}`, data: { reason } }, ctx.now());
      return failed;
    });
  // 1. The device first: it checks the admins' signatures and the state they name itself.
  const held = await heldGovernance(ctx, p.poolId);
  const prepared = await ctx.store.transaction(async (tx) => {
    const evidence: ApprovalEvidence[] = [];
    for (const a of await tx.proposalApprovalsOf(p.id)) {
      if (a.decision !== 'approve') continue;
      const key = await tx.getApprover(a.adminId);
      if (key) evidence.push({ publicKey: key.publicKey, message: a.message, signature: a.signature });
    }
    return { evidence, stale: await staleness(tx, p, held), keys: await tx.keysOfPool(p.poolId) };
  });
  if (prepared.stale !== null) return fail(prepared.stale);
  if (p.change.action === 'attest-control') return proveControl(ctx, p, p.change.challenge, prepared.evidence);
  try {
    // Every device holding one of the pool's keys applies the change (devices that hold no governance ignore it).
    const devices = new Set(prepared.keys.map((k) => ctx.devices.forKey({ device: k.device })));
    for (const device of devices) await device.governPool(p.poolId, p.change, prepared.evidence);
  } catch (error) {
    if (isCustodyError(error) && error.kind === 'unavailable') throw error;
    const stale = isCustodyError(error) && error.code === 'device_stale_governance';
    return fail(`the device refused the change${stale ? ' (it holds another state: propose it again)' : ''}: ${error instanceof Error ? error.message : String(error)}`);
  }

  // 2. The store, with the audit entry, and the re-evaluation of open withdrawals.
  const applied = await ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    const pool = await requirePool(tx, p.poolId);
    let version: number | undefined;
    const change = p.change;
    if (change.action === 'policy') {
      version = (await tx.latestPolicyVersion(pool.id)) + 1;
      const previous = await tx.getPolicy(pool.id, pool.policyVersion);
      await tx.insertPolicyVersion(pool.id, version, stampAllowlist(change.policy, previous, now));
      await tx.setPoolPolicyVersion(pool.id, version);
    } else if (change.action === 'unfreeze') {
      await tx.setPoolStatus(pool.id, 'active');
    } else if (change.action === 'approvers') {
      for (const a of change.add) if (!(await tx.getApprover(a.id))) await tx.insertApprover(a);
      await tx.setPoolApprovers(pool.id, p.binding.approvers.map((a) => a.id));
    }
    const done = await tx.updateProposal(p.id, 'pending', { state: 'applied', ...(version !== undefined ? { appliedVersion: version } : {}) }, now);
    await tx.appendAudit(
      { type: 'governance.applied', actor: 'system', subject: `proposal:${p.id}`, data: { pool: pool.id, action: change.action, policyVersion: version ?? pool.policyVersion } },
      now,
    );
    if (change.action !== 'unfreeze') await reevaluatePool(ctx, tx, pool.id, now);
    return done;
  });
  ctx.log.info({ proposal: p.id, pool: p.poolId, action: p.change.action }, 'governance change applied');
  return applied;
}

/**
 * A proof of control, once the admin quorum approved it: every key of the pool signs the challenge in
 * its chain's message format on its own device (which checks the admins' approvals itself when it can),
 * each signature is checked against the key's address, and the proofs are stored with the audit entry.
 */
async function proveControl(ctx: ServiceContext, p: Proposal, challenge: string, evidence: readonly ApprovalEvidence[]): Promise<Proposal> {
  const fail = (reason: string) =>
    ctx.store.transaction(async (tx) => {
      const failed = await tx.updateProposal(p.id, 'pending', { state: 'failed', reason }, ctx.now());
      await tx.appendAudit({ type: 'governance.failed', actor: 'system', subject: `proposal:${p.id}`, data: { reason } }, ctx.now());
      return failed;
    });
  const keys = await ctx.store.read((r) => r.keysOfPool(p.poolId));
  const proofs: ControlProof[] = [];
  for (const key of keys) {
    try {
      const signed = await ctx.devices.forKey(key).signMessage({ handle: key.handle, poolId: p.poolId, chain: key.chain, challenge, approvals: evidence });
      proofs.push({ proposalId: p.id, poolId: p.poolId, chain: key.chain, address: key.address, ...encodeControlProof(key.chain, key.address, challenge, signed), createdAt: ctx.now() });
    } catch (error) {
      return fail(`the ${key.chain} key did not sign the challenge: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const applied = await ctx.store.transaction(async (tx) => {
    const now = ctx.now();
    for (const proof of proofs) await tx.insertControlProof(proof);
    const done = await tx.updateProposal(p.id, 'pending', { state: 'applied' }, now);
    await tx.appendAudit(
      { type: 'pool.control-proven', actor: 'system', subject: `proposal:${p.id}`, data: { pool: p.poolId, challengeSha256: sha256Canonical(challenge), proofs: proofs.map((x) => ({ chain: x.chain, address: x.address, format: x.format, signature: x.signature })) } },
      now,
    );
    return done;
  });
  ctx.log.info({ proposal: p.id, pool: p.poolId, keys: proofs.length }, 'proof of control signed');
  return applied;
}

/**
 * Allowlist entries new in this version become usable only after the cooling-off period counted from
 * now: their `addedAt` is the time the version is applied (never earlier, whatever the proposal said).
 * Entries already in the previous version keep the `addedAt` they had.
 */
function stampAllowlist(next: PolicyDocument, previous: PolicyDocument | null, now: number): PolicyDocument {
  if (!next.allowlist) return next;
  const before = new Map((previous?.allowlist ?? []).map((e) => [e.address.toLowerCase(), e]));
  const allowlist = next.allowlist.map((e) => {
    const old = before.get(e.address.toLowerCase());
    if (old) return old.addedAt === undefined ? (({ addedAt: _dropped, ...rest }) => rest)(e) : { ...e, addedAt: old.addedAt };
    const given = e.addedAt === undefined ? now : Math.max(Date.parse(e.addedAt), now);
    return { ...e, addedAt: new Date(given).toISOString() };
  });
  return { ...next, allowlist };
}

/**
 * The pool as a proposal's message names it before the change, in full: the policy document of the
 * version its `before.policyVersion` names (versions are immutable) and the approvers its
 * `before.approvers` name, with their public keys (an approver id keeps its key). The admin's client
 * shows the change against it after checking it hashes to what the message names; null for a
 * message that names no pool.
 */
export interface ProposalBefore {
  readonly policyVersion: number;
  readonly policy: PolicyDocument | null;
  readonly approvers: readonly Approver[];
  readonly threshold: number;
}

async function proposalBefore(r: StoreReads, p: Proposal): Promise<ProposalBefore | null> {
  const message = parseGovernanceMessage(p.approvalMessage);
  if (message.scope !== 'pool') return null;
  const approvers: Approver[] = [];
  for (const m of message.before.approvers) {
    const a = await r.getApprover(m.id);
    if (a) approvers.push({ id: a.id, publicKey: a.publicKey });
  }
  return { policyVersion: message.before.policyVersion, policy: await r.getPolicy(p.poolId, message.before.policyVersion), approvers, threshold: message.before.threshold };
}

export async function getProposal(
  ctx: ServiceContext,
  id: string,
): Promise<{ proposal: Proposal; approvals: readonly ProposalApproval[]; proofs: readonly ControlProof[]; before: ProposalBefore | null }> {
  return ctx.store.read(async (r) => {
    const proposal = await requireProposal(r, id);
    return { proposal, approvals: await r.proposalApprovalsOf(id), proofs: await r.controlProofsOf(id), before: await proposalBefore(r, proposal) };
  });
}
