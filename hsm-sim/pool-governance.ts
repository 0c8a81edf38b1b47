/**
 * Governed changes to a pool inside the device (SPEC sections 4 and 9; common/governance-message.ts):
 * the pool's state summary as governance messages name it, and what a proposed change (a policy
 * version, a change of approvers, unfreezing) makes of the binding the device holds. The device
 * computes the result itself from the change; the admins' messages must state that same result.
 */
import { isValidApproverKey } from '../common/approver-key.js';
import { memberSummaries, sha256Canonical, type PoolSummary } from '../common/governance-message.js';
import type { PolicyDocument } from '../common/policy/policy.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { changeStamps, holdPolicy, type HeldPolicy } from './pool-policy.js';
import type { PoolBinding } from './sealed-state.js';

/** The pool as governance messages name it. */
export function poolSummary(binding: PoolBinding, held: HeldPolicy | null): PoolSummary {
  return {
    approvers: memberSummaries(binding.approvers),
    threshold: binding.threshold,
    policy: held?.hash ?? 'none',
    policyVersion: binding.policyVersion ?? 0,
  };
}

/** A change GOVERN_POOL carries, as the gateway proposed it. */
export type PoolChange =
  | { readonly action: 'policy'; readonly policy: PolicyDocument }
  | { readonly action: 'approvers'; readonly add: readonly { readonly id: string; readonly publicKey: string }[]; readonly remove: readonly string[] }
  | { readonly action: 'unfreeze' };

export class PoolChangeError extends Error {
  override readonly name = 'PoolChangeError';
}

/** Parses the change's JSON; its hash is what the admins' messages name. */
export function parsePoolChange(text: string): { change: PoolChange; hash: string } {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new PoolChangeError('the change is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new PoolChangeError('the change is not an object');
  const r = value as Record<string, unknown>;
  const fields = (names: string[]) => {
    const extra = Object.keys(r).find((k) => !names.includes(k));
    if (extra) throw new PoolChangeError(`the change has unknown field "${extra}"`);
  };
  let change: PoolChange;
  if (r.action === 'policy') {
    fields(['action', 'policy']);
    change = { action: 'policy', policy: r.policy as PolicyDocument };
  } else if (r.action === 'unfreeze') {
    fields(['action']);
    change = { action: 'unfreeze' };
  } else if (r.action === 'approvers') {
    fields(['action', 'add', 'remove']);
    const add = r.add;
    const remove = r.remove;
    if (!Array.isArray(add) || !Array.isArray(remove) || add.length + remove.length > 128) throw new PoolChangeError('"add" and "remove" must be lists');
    for (const a of add as unknown[]) {
      const m = a as Record<string, unknown>;
      if (typeof m !== 'object' || m === null || typeof m.id !== 'string' || typeof m.publicKey !== 'string' || !/^([0-9a-f]{2}){32,33}$/.test(m.publicKey) || !isValidApproverKey(hexToBytes(m.publicKey))) {
        throw new PoolChangeError('"add" entries must be {id, publicKey} with a valid Ed25519 or secp256k1 key in lowercase hex');
      }
    }
    if (!(remove as unknown[]).every((x) => typeof x === 'string')) throw new PoolChangeError('"remove" must list approver ids');
    change = { action: 'approvers', add: add as { id: string; publicKey: string }[], remove: remove as string[] };
  } else {
    throw new PoolChangeError(`the device applies no change "${String(r.action).slice(0, 40)}" to a pool`);
  }
  return { change, hash: sha256Canonical(value) };
}

/** The binding once `change` is applied at `now`, and the policy it holds then; throws PoolChangeError when it cannot apply. */
export function applyPoolChange(binding: PoolBinding, held: HeldPolicy | null, change: PoolChange, now: number): { binding: PoolBinding; held: HeldPolicy | null } {
  const sequence = (binding.sequence ?? 0) + 1;
  if (change.action === 'unfreeze') {
    // A pool frozen by the gateway alone (no admin's signed freeze reached the device) is unfrozen by the same governed change.
    return { binding: { ...binding, frozen: false, sequence }, held };
  }
  if (change.action === 'policy') {
    let next: HeldPolicy;
    try {
      next = holdPolicy(JSON.stringify(change.policy));
    } catch (error) {
      throw new PoolChangeError(`the new policy cannot be held: ${error instanceof Error ? error.message : String(error)}`);
    }
    const tiers = next.policy.quorum.map((t) => t.approvals);
    if (Math.max(...tiers) > binding.approvers.length) throw new PoolChangeError(`the new policy's tiers need up to ${Math.max(...tiers)} approvals, the pool has ${binding.approvers.length} approvers`);
    const stamps = changeStamps(next.document, held?.document ?? null, binding.allowlistAddedAt ?? {}, now);
    return {
      binding: { ...binding, threshold: Math.min(...tiers), policy: next.text, policyVersion: (binding.policyVersion ?? 0) + 1, allowlistAddedAt: stamps, sequence },
      held: next,
    };
  }
  let approvers = [...binding.approvers];
  for (const id of change.remove) {
    if (!approvers.some((a) => a.id === id)) throw new PoolChangeError(`"${id}" is not an approver of the pool`);
    approvers = approvers.filter((a) => a.id !== id);
  }
  for (const a of change.add) {
    if (approvers.some((x) => x.id === a.id || x.publicKey === a.publicKey)) throw new PoolChangeError(`"${a.id}" or its key is already an approver of the pool`);
    approvers.push({ id: a.id, publicKey: a.publicKey });
  }
  if (approvers.length === 0 || approvers.length > 64) throw new PoolChangeError('a pool keeps 1 to 64 approvers');
  const most = held ? Math.max(...held.policy.quorum.map((t) => t.approvals)) : binding.threshold;
  if (most > approvers.length) throw new PoolChangeError(`the pool's policy needs up to ${most} approvals; ${approvers.length} approvers would be left`);
  return { binding: { ...binding, approvers, sequence }, held };
}
