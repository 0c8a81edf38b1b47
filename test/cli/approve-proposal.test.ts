/**
 * `custody approve --proposal` checks before it shows (src/cli/approve.ts `checkProposal`): the
 * gateway's state before the change (policy document, approvers' keys) must hash to the governance
 * message's `before`, and the change must make of it the message's `after`; then the screen shows what
 * changes against that state (src/policy/policy-diff.ts). Any mismatch is refused naming the field.
 * The end-to-end runs are in test/e2e/governance.test.ts and test/e2e/approve-hostile.test.ts.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { canonicalGovernanceMessage, GOVERNANCE_KIND, GOVERNANCE_VERSION, memberSummaries, sha256Canonical, type PoolGovernanceMessage } from '../../common/governance-message.js';
import { policyHash } from '../../common/policy/document.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import { ApprovalRefusedError, checkProposal, proposalScreen } from '../../src/cli/approve.js';

const ROOT = join(import.meta.dirname, '..', '..');
const plan = JSON.parse(readFileSync(join(ROOT, 'examples', 'ceremony-plan.json'), 'utf8')) as {
  approvers: { id: string; publicKey: string }[];
  pools: { id: string; policy: PolicyDocument }[];
};
const ID = '0b6f1d2e-3c4a-4b5d-8e9f-a0b1c2d3e4f5';
const BEFORE = plan.pools.find((p) => p.id === 'client-b')!.policy;
const APPROVERS = plan.approvers.filter((a) => a.id === 'bob' || a.id === 'carol');
const DAVE = { id: 'dave', publicKey: 'ab'.repeat(32) };
const NEXT: PolicyDocument = { ...BEFORE, assets: { ETH: { maxPerTx: '100000000000000000', limits: BEFORE.assets.ETH!.limits! } }, newAddressCoolingOff: '24h' };
const SUMMARY = { approvers: memberSummaries(APPROVERS), threshold: 2, policy: policyHash(BEFORE), policyVersion: 1 };

function message(change: unknown, after: PoolGovernanceMessage['after'], action: PoolGovernanceMessage['action']): string {
  return canonicalGovernanceMessage({
    kind: GOVERNANCE_KIND, version: GOVERNANCE_VERSION, proposalId: ID, device: 'sim-0123456789abcdef', scope: 'pool', pool: 'client-b', action,
    sequence: 3, before: SUMMARY, after, change: sha256Canonical(change), decision: 'approve',
  });
}

function policyView(overrides: Record<string, unknown> = {}, after = { ...SUMMARY, policy: policyHash(NEXT), policyVersion: 2 }): Record<string, unknown> {
  const change = { action: 'policy', policy: NEXT };
  return {
    id: ID, pool: 'client-b', action: 'policy', change, proposedBy: 'alice', approvalMessage: message(change, after, 'policy'),
    before: { policyVersion: 1, policy: BEFORE, approvers: APPROVERS, threshold: 2 },
    ...overrides,
  };
}

function refusedField(view: Record<string, unknown>): string {
  try {
    checkProposal(ID, view);
  } catch (error) {
    if (error instanceof ApprovalRefusedError) return error.field;
    throw error;
  }
  throw new Error('not refused');
}

describe('checking a proposal before it is shown', () => {
  it('when the state before and the change agree with the message, then the screen shows what the policy changes, field by field', () => {
    expect(proposalScreen(checkProposal(ID, policyView()))).toEqual([
      `proposal ${ID}`,
      '  pool      client-b (device sim-0123456789abcdef, governance sequence 3)',
      '  action    policy (proposed by alice)',
      `  policy    version 1 (${policyHash(BEFORE).slice(0, 16)}…) -> version 2 (${policyHash(NEXT).slice(0, 16)}…)`,
      "what the new policy changes against version 1 (both checked against the message's hashes):",
      '  ~ max per tx ETH  1 ETH (1000000000000000000 base units) -> 0.1 ETH (100000000000000000 base units)',
      '  + cooling-off     none -> 24h',
    ]);
  });

  it('when the gateway shows another policy as the one before, then it is refused naming "before.policy"', () => {
    const looser = { ...BEFORE, assets: { ETH: { maxPerTx: '100000000000000000000' } } };
    expect(refusedField(policyView({ before: { policyVersion: 1, policy: looser, approvers: APPROVERS, threshold: 2 } }))).toBe('before.policy');
  });

  it('when the gateway shows an approver with another key than the message\'s fingerprint, then it is refused naming "before.approvers"', () => {
    const swapped = [APPROVERS[0]!, { id: 'carol', publicKey: DAVE.publicKey }];
    expect(refusedField(policyView({ before: { policyVersion: 1, policy: BEFORE, approvers: swapped, threshold: 2 } }))).toBe('before.approvers');
  });

  it('when the message\'s policy after is not the hash of the proposed policy, then it is refused naming "after.policy"', () => {
    const other = { ...NEXT, assets: { ETH: { maxPerTx: '999000000000000000000' } } };
    expect(refusedField(policyView({}, { ...SUMMARY, policy: policyHash(other), policyVersion: 2 }))).toBe('after.policy');
  });

  it('when an approver change\'s message names approvers the change does not make, then it is refused naming "after.approvers"', () => {
    const change = { action: 'approvers', add: [DAVE], remove: [] };
    const honest = { ...SUMMARY, approvers: memberSummaries([...APPROVERS, DAVE]) };
    const view = (after: typeof SUMMARY) => policyView({ action: 'approvers', change, approvalMessage: message(change, after, 'approvers') });
    expect(proposalScreen(checkProposal(ID, view(honest)))).toContainEqual(expect.stringMatching(/^ {2}\+ approver {2}dave \(key [0-9a-f]{16}…\)$/));
    const mallory = { ...SUMMARY, approvers: memberSummaries([...APPROVERS, { id: 'dave', publicKey: 'cd'.repeat(32) }]) };
    expect(refusedField(view(mallory))).toBe('after.approvers');
  });

  it('when the gateway gives no state before or commits to another change, then nothing is shown', () => {
    expect(refusedField(policyView({ before: undefined }))).toBe('before');
    expect(refusedField(policyView({ change: { action: 'policy', policy: BEFORE } }))).toBe('change');
    expect(refusedField(policyView({ before: { policyVersion: 2, policy: BEFORE, approvers: APPROVERS, threshold: 2 } }))).toBe('before.policyVersion');
  });
});
