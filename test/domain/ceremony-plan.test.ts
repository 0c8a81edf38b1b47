/**
 * The ceremony plan: the specification's example is accepted verbatim; every malformed plan is
 * refused with the JSON path at fault.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { baseThreshold, parseCeremonyPlan, parsePolicyDocument } from '../../src/domain/ceremony-plan.js';

const example = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'ceremony-plan.json'), 'utf8'));
const ETH = 10n ** 18n;

function variant(change: (plan: any) => void): unknown {
  const copy = structuredClone(example);
  change(copy);
  return copy;
}

describe('the example plan', () => {
  it('when the example plan is parsed, then its tiers, limits and durations come out exactly', () => {
    const plan = parseCeremonyPlan(example);
    expect(plan.approvers.map((a) => a.id)).toEqual(['alice', 'bob', 'carol']);
    expect(plan.admins).toEqual(['alice', 'bob', 'carol']);
    expect(plan.adminQuorum).toBe(2);
    const a = plan.pools[0]!;
    expect(a.id).toBe('client-a');
    expect(a.chains).toEqual(['eip155:11155111', 'bip122:000000000933ea01ad0ee984209779ba']);
    expect(a.policy.quorum).toEqual([{ upTo: { ETH, BTC: 10_000_000n }, approvals: 2 }, { approvals: 3 }]);
    expect(a.policy.assets.ETH).toEqual({
      maxPerTx: 5n * ETH,
      limits: [
        { window: '1h', windowMs: 3_600_000, max: 8n * ETH },
        { window: '24h', windowMs: 86_400_000, max: 20n * ETH },
      ],
    });
    expect(a.policy.timelock).toEqual({ above: { ETH: 3n * ETH }, delayMs: 3_600_000 });
    expect(a.policy.maxFee).toEqual({ ETH: 10_000_000_000_000_000n, BTC: 100_000n });
    expect(a.policy.newAddressCoolingOffMs).toBe(86_400_000);
    expect(a.policy.requestExpiryMs).toBe(72 * 3_600_000);
    expect(a.policy.allowlist?.map((e) => e.label)).toEqual(['exchange hot wallet', 'cold storage']);
    expect(baseThreshold(a.policy)).toBe(2);
    expect(a.policyDocument).toEqual(example.pools[0].policy);
    expect(plan.pools[1]!.approvers).toEqual(['bob', 'carol']);
  });
});

describe('malformed plans', () => {
  const cases: [string, (p: any) => void, RegExp][] = [
    ['an unknown top-level field', (p) => (p.extra = 1), /unknown field\(s\) "extra"/],
    ['an unknown policy field', (p) => (p.pools[0].policy.maxPerDay = '1'), /pools\[0\]\.policy: unknown field\(s\) "maxPerDay"/],
    ['version 2', (p) => (p.version = 2), /version/],
    ['a duplicate approver id', (p) => p.approvers.push({ ...p.approvers[0], publicKey: p.approvers[1].publicKey.replace('3d', '3e') }), /id "alice" appears twice|not a valid Ed25519/],
    ['two approvers with one key', (p) => (p.approvers[1].publicKey = p.approvers[0].publicKey), /public key .* is used by two approvers/],
    ['a malformed public key', (p) => (p.approvers[0].publicKey = 'xyz'), /approvers\[0\]\.publicKey: expected a 32-byte Ed25519 public key/],
    ['a pool naming an unknown approver', (p) => (p.pools[1].approvers = ['bob', 'mallory']), /pools\[1\]\.approvers\[1\]: "mallory" is not one of the plan's approvers/],
    ['an admin who is not an approver', (p) => (p.admins = ['alice', 'zed']), /admins\[1\]: "zed"/],
    ['an admin quorum above the admins', (p) => (p.adminQuorum = 4), /adminQuorum: 4 is more than the 3 admins/],
    ['a duplicate pool id', (p) => p.pools.push(structuredClone(p.pools[1])), /pools: id "client-b" appears twice/],
    ['a bad pool id', (p) => (p.pools[0].id = 'Client A'), /pools\[0\]\.id: expected a pool id/],
    ['a bad chain', (p) => (p.pools[0].chains = ['eip155:x']), /pools\[0\]\.chains\[0\]/],
    ['a fractional amount', (p) => (p.pools[0].policy.assets.ETH.maxPerTx = '1.5'), /pools\[0\]\.policy\.assets\.ETH\.maxPerTx: expected a decimal string/],
    ['a bad window', (p) => (p.pools[0].policy.assets.ETH.limits[0].window = '1w'), /window: expected a duration/],
    ['a middle tier without upTo', (p) => p.pools[0].policy.quorum.unshift({ approvals: 1 }), /quorum\[0\]: only the last tier may omit "upTo"/],
    ['a tier needing more approvers than the pool has', (p) => (p.pools[1].policy.quorum = [{ approvals: 3 }]), /pools\[1\]\.policy\.quorum\[0\]\.approvals: 3 is more than the pool's 2 approvers/],
    ['no quorum tier', (p) => (p.pools[1].policy.quorum = []), /at least one quorum tier/],
    ['a duplicate allowlist address', (p) => p.pools[1].policy.allowlist.push({ address: p.pools[1].policy.allowlist[0].address.toLowerCase() }), /listed twice/],
  ];
  for (const [name, change, message] of cases) {
    it(`when the plan has ${name}, then it is refused naming the place`, () => {
      expect(() => parseCeremonyPlan(variant(change))).toThrow(message);
    });
  }

  it('when a policy amount is written as a number, then the message names the path', () => {
    expect(() => parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: { ETH: { maxPerTx: 5 } } })).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: policy.assets.ETH.maxPerTx: Invalid input: expected string, received number]`,
    );
  });
});
