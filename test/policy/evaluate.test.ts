/**
 * The policy engine, rule by rule at each boundary, and properties over random inputs.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { parsePolicyDocument } from '../../common/policy/document.js';
import { evaluateWithdrawal, requiredApprovals, type PolicyInput } from '../../common/policy/evaluate.js';
import type { Policy } from '../../common/policy/policy.js';

const ETH = 10n ** 18n;
const NOW = Date.parse('2026-11-25T12:00:00Z');
const HOT = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const NEW = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

const policy: Policy = parsePolicyDocument({
  quorum: [{ upTo: { ETH: '1000000000000000000' }, approvals: 2 }, { approvals: 3 }],
  assets: { ETH: { maxPerTx: '5000000000000000000', limits: [{ window: '1h', max: '8000000000000000000' }, { window: '24h', max: '20000000000000000000' }] } },
  allowlist: [{ address: HOT, label: 'hot' }, { address: NEW, label: 'new', addedAt: '2026-11-25T00:00:00Z' }],
  newAddressCoolingOff: '24h',
  timelock: { above: { ETH: '3000000000000000000' }, delay: '1h' },
  maxFee: { ETH: '10000000000000000' },
  requestExpiry: '72h',
});

function input(over: Partial<PolicyInput> = {}): PolicyInput {
  return {
    policy,
    poolStatus: 'active',
    asset: 'ETH',
    amount: ETH / 2n,
    to: HOT,
    fee: 21000n * 30_000_000_000n,
    feeAsset: 'ETH',
    contractCall: null,
    chain: 'eip155:11155111',
    poolId: 'pool-a',
    destinationPool: null,
    now: NOW,
    usage: [
      { window: '1h', windowMs: 3_600_000, committed: 0n },
      { window: '24h', windowMs: 86_400_000, committed: 0n },
    ],
    ...over,
  };
}
const codes = (i: PolicyInput) => evaluateWithdrawal(i).reasons.map((r) => r.code);

describe('each rule at its boundary', () => {
  it('when everything is within policy, then the request is allowed with no reasons and an expiry', () => {
    const d = evaluateWithdrawal(input());
    expect(d).toEqual({ allowed: true, reasons: [], requiredApprovals: 2, timelockUntil: null, expiresAt: NOW + 72 * 3_600_000 });
  });

  it('when the amount equals maxPerTx, then it passes; one more wei is denied', () => {
    expect(codes(input({ amount: 5n * ETH }))).not.toContain('over_max_per_tx');
    expect(codes(input({ amount: 5n * ETH + 1n }))).toContain('over_max_per_tx');
  });

  it('when committed plus amount equals a window max, then it passes; one more wei is denied naming the window', () => {
    const usage = [{ window: '1h', windowMs: 3_600_000, committed: 7n * ETH }, { window: '24h', windowMs: 86_400_000, committed: 7n * ETH }];
    expect(codes(input({ amount: ETH, usage }))).toEqual([]);
    const d = evaluateWithdrawal(input({ amount: ETH + 1n, usage }));
    expect(d.reasons).toEqual([{ code: 'velocity_exceeded', message: `the 1h limit of ${8n * ETH} ETH would be exceeded: ${7n * ETH} used, ${ETH} remaining, ${ETH + 1n} requested` }]);
  });

  it('when the usage of a window is not supplied, then the request is denied (fail closed)', () => {
    expect(codes(input({ usage: [] }))).toEqual(['velocity_unknown', 'velocity_unknown']);
  });

  it('when the destination is not allowlisted, then it is denied; case does not matter for Ethereum', () => {
    expect(codes(input({ to: '0x000000000000000000000000000000000000dEaD' }))).toEqual(['destination_not_allowlisted']);
    expect(codes(input({ to: HOT.toLowerCase() }))).toEqual([]);
  });

  it('when an allowlist entry was added within the cooling-off period, then it is not yet usable, and usable after', () => {
    expect(codes(input({ to: NEW }))).toEqual(['destination_cooling_off']);
    expect(codes(input({ to: NEW, now: Date.parse('2026-11-26T00:00:00Z') }))).toEqual([]);
  });

  it('when the fee cap is reached exactly, then it passes; above, it is denied', () => {
    expect(codes(input({ fee: 10_000_000_000_000_000n }))).toEqual([]);
    expect(codes(input({ fee: 10_000_000_000_000_001n }))).toEqual(['fee_over_cap']);
  });

  it('when the asset is not in the policy, then it is denied', () => {
    expect(codes(input({ asset: 'SOL', feeAsset: 'SOL' }))).toContain('asset_not_allowed');
  });

  it('when the pool is frozen, then everything is denied', () => {
    expect(codes(input({ poolStatus: 'frozen' }))).toEqual(['pool_frozen']);
  });

  it('when the amount is above the time-lock threshold, then it is allowed with a time lock; at the threshold, without', () => {
    expect(evaluateWithdrawal(input({ amount: 3n * ETH })).timelockUntil).toBeNull();
    expect(evaluateWithdrawal(input({ amount: 3n * ETH + 1n })).timelockUntil).toBe(NOW + 3_600_000);
  });

  it('when the amount is at the first tier bound, then 2 approvals; above, 3', () => {
    expect(requiredApprovals(policy, 'ETH', ETH)).toBe(2);
    expect(requiredApprovals(policy, 'ETH', ETH + 1n)).toBe(3);
    expect(requiredApprovals(policy, 'BTC', 1n)).toBe(3);
  });

  it('when the transaction calls a contract, then it is denied unless the policy lists that contract and selector', () => {
    const fn = 'setApprovalForAll(address operator, bool approved)';
    const call = { contract: HOT, selector: '0xa22cb465', function: fn, args: [{ name: 'operator', type: 'address', value: HOT }, { name: 'approved', type: 'bool', value: 'true' }] };
    const denied = evaluateWithdrawal(input({ amount: 0n, contractCall: call }));
    expect(denied.reasons.map((r) => r.code)).toEqual(['contract_call_not_allowed']);
    expect(denied.reasons[0]?.message).toMatch(/setApprovalForAll\(address operator, bool approved\) of contract 0x8ba1/);
    const allowing = { ...policy, contractCalls: parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: {}, contractCalls: [{ contract: HOT.toLowerCase(), selector: '0xA22CB465', function: fn }] }).contractCalls ?? [] };
    expect(evaluateWithdrawal(input({ policy: allowing, amount: 0n, contractCall: call })).allowed).toBe(true);
    expect(evaluateWithdrawal(input({ policy: allowing, amount: 0n, contractCall: { ...call, selector: '0x095ea7b3' } })).allowed).toBe(false);
    expect(evaluateWithdrawal(input({ policy: allowing, amount: 0n, contractCall: { ...call, contract: NEW } })).allowed).toBe(false);
  });

  it('when several rules fail, then every reason is listed', () => {
    const d = evaluateWithdrawal(input({ poolStatus: 'frozen', amount: 9n * ETH, to: NEW, fee: 10n ** 17n }));
    expect(d.reasons.map((r) => r.code)).toEqual(['pool_frozen', 'over_max_per_tx', 'velocity_exceeded', 'destination_cooling_off', 'fee_over_cap']);
    expect(d.allowed).toBe(false);
  });
});

describe('one spelling per asset', () => {
  const TOKEN = 'erc20:0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
  it('when "assets" names one token in lowercase and in EIP-55 (a limit on one, none on the other), then the policy is refused naming both', () => {
    const doc = { quorum: [{ approvals: 1 }], assets: { [TOKEN]: {}, [TOKEN.toLowerCase()]: { maxPerTx: '1' } } };
    expect(() => parsePolicyDocument(doc)).toThrow(`policy.assets: "${TOKEN.toLowerCase()}" and "${TOKEN}" name the same asset; write it once`);
  });

  it('when a tier, the time lock or the fee cap names one asset twice in two cases, then the policy is refused', () => {
    const base = { quorum: [{ approvals: 1 }], assets: { [TOKEN]: {} } };
    const twice = { [TOKEN]: '1', [TOKEN.toLowerCase()]: '1000' };
    expect(() => parsePolicyDocument({ ...base, quorum: [{ upTo: twice, approvals: 1 }, { approvals: 1 }] })).toThrow(/policy.quorum\[0\].upTo: .* name the same asset/);
    expect(() => parsePolicyDocument({ ...base, timelock: { above: twice, delay: '1h' } })).toThrow(/policy.timelock.above: .* name the same asset/);
    expect(() => parsePolicyDocument({ ...base, maxFee: { ETH: '1', eth: '2' } })).toThrow(/policy.maxFee: "eth" and "ETH" name the same asset/);
  });
});

describe('properties', () => {
  const arbitraryInput = fc.record({
    amount: fc.bigInt({ min: 1n, max: 30n * ETH }),
    used1h: fc.bigInt({ min: 0n, max: 10n * ETH }),
    used24h: fc.bigInt({ min: 0n, max: 25n * ETH }),
    fee: fc.bigInt({ min: 0n, max: 10n ** 17n }),
    frozen: fc.boolean(),
  });

  it('when any request is decided, then allowed means within maxPerTx and every window, and reasons are empty exactly when allowed', () => {
    fc.assert(
      fc.property(arbitraryInput, (r) => {
        const d = evaluateWithdrawal(
          input({
            amount: r.amount,
            fee: r.fee,
            poolStatus: r.frozen ? 'frozen' : 'active',
            usage: [{ window: '1h', windowMs: 3_600_000, committed: r.used1h }, { window: '24h', windowMs: 86_400_000, committed: r.used24h }],
          }),
        );
        expect(d.allowed).toBe(d.reasons.length === 0);
        if (d.allowed) {
          expect(r.frozen).toBe(false);
          expect(r.amount <= 5n * ETH).toBe(true);
          expect(r.used1h + r.amount <= 8n * ETH).toBe(true);
          expect(r.used24h + r.amount <= 20n * ETH).toBe(true);
          expect(r.fee <= 10n ** 16n).toBe(true);
        }
      }),
      { numRuns: 2000 },
    );
  });

  it('when the amount grows, then the required approvals never decrease', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 10n * ETH }), fc.bigInt({ min: 0n, max: 10n * ETH }), (a, extra) => {
        expect(requiredApprovals(policy, 'ETH', a + extra)).toBeGreaterThanOrEqual(requiredApprovals(policy, 'ETH', a));
      }),
      { numRuns: 1000 },
    );
  });
});
