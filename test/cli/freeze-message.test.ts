/**
 * `custody freeze` signs only a freeze (src/cli/freeze.ts, common/governance-message.ts): a message
 * the gateway serves as the pool's freeze message that is anything else (another action, change,
 * pool, or a state after that differs from before) could count as the admin's vote for a governed
 * change, so it is refused naming the field. The end-to-end run is test/e2e/freeze.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { canonicalGovernanceMessage, GOVERNANCE_KIND, GOVERNANCE_VERSION, sha256Canonical, type PoolGovernanceMessage } from '../../common/governance-message.js';
import { ApprovalRefusedError } from '../../src/cli/approve.js';
import { checkFreezeMessage } from '../../src/cli/freeze.js';

const SUMMARY = { approvers: [{ id: 'bob', fingerprint: 'ab'.repeat(32) }], threshold: 1, policy: 'cd'.repeat(32), policyVersion: 3 };
const FREEZE: PoolGovernanceMessage = {
  kind: GOVERNANCE_KIND,
  version: GOVERNANCE_VERSION,
  proposalId: 'freeze-client-b-4',
  device: 'sim-0123456789abcdef',
  scope: 'pool',
  pool: 'client-b',
  action: 'freeze',
  sequence: 4,
  before: SUMMARY,
  after: SUMMARY,
  change: sha256Canonical({ action: 'freeze' }),
  decision: 'approve',
};

function refusedField(text: unknown, pool = 'client-b'): string {
  try {
    checkFreezeMessage(pool, text);
  } catch (error) {
    if (error instanceof ApprovalRefusedError) return error.field;
    throw error;
  }
  throw new Error('not refused');
}

describe('the freeze message check', () => {
  it('when the message is a freeze of this pool, then it is accepted as it is', () => {
    expect(checkFreezeMessage('client-b', canonicalGovernanceMessage(FREEZE))).toEqual(FREEZE);
  });

  it('when the gateway sends an unfreeze or a policy change as the freeze message, then it is refused naming "action"', () => {
    expect(refusedField(canonicalGovernanceMessage({ ...FREEZE, action: 'unfreeze' }))).toBe('action');
    expect(refusedField(canonicalGovernanceMessage({ ...FREEZE, action: 'policy', after: { ...SUMMARY, policy: 'ef'.repeat(32), policyVersion: 4 } }))).toBe('action');
  });

  it('when the change, the pool, the state after or the decision is not a freeze\'s, then the field is named', () => {
    expect(refusedField(canonicalGovernanceMessage({ ...FREEZE, change: sha256Canonical({ action: 'unfreeze' }) }))).toBe('change');
    expect(refusedField(canonicalGovernanceMessage(FREEZE), 'client-a')).toBe('pool');
    expect(refusedField(canonicalGovernanceMessage({ ...FREEZE, after: { ...SUMMARY, threshold: 2 } }))).toBe('after');
    expect(refusedField(canonicalGovernanceMessage({ ...FREEZE, decision: 'reject' }))).toBe('decision');
  });

  it('when there is no message or it is not canonical, then it is refused before anything is signed', () => {
    expect(refusedField(undefined)).toBe('freezeMessage');
    expect(refusedField(JSON.stringify(FREEZE, null, 1))).toBe('freezeMessage');
    expect(() => checkFreezeMessage('client-b', undefined)).toThrowErrorMatchingInlineSnapshot(
      `[ApprovalRefusedError: refusing to sign: the gateway answered without a "freezeMessage" string (no admins are enrolled, or the token is not an admin's); nothing was posted, report this request to your security officer]`,
    );
  });
});
