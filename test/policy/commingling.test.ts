/**
 * No commingling (SPEC rule 1, section 1): a pool never pays an address of another pool of this
 * gateway unless its policy lists that pool as an allowed internal transfer, and never its own.
 */
import { describe, expect, it } from 'vitest';
import { parsePolicyDocument } from '../../common/policy/document.js';
import { evaluateWithdrawal, type PolicyInput } from '../../common/policy/evaluate.js';

const TO = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';

function input(policy: object, destinationPool: string | null): PolicyInput {
  return {
    policy: parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: { ETH: {} }, ...policy }),
    poolStatus: 'active',
    asset: 'ETH',
    amount: 1n,
    to: TO,
    fee: 1n,
    feeAsset: 'ETH',
    contractCall: null,
    chain: 'eip155:11155111',
    poolId: 'pool-a',
    destinationPool,
    now: 0,
    usage: [],
  };
}

const codes = (i: PolicyInput) => evaluateWithdrawal(i).reasons.map((r) => r.code);

describe('commingling', () => {
  it("when the destination is another pool's address, then it is denied with commingling", () => {
    expect(codes(input({}, 'pool-b'))).toEqual(['commingling']);
    expect(evaluateWithdrawal(input({}, 'pool-b')).reasons[0]?.message).toMatchInlineSnapshot(
      `"destination 0x8ba1f109551bD432803012645Ac136ddd64DBA72 belongs to pool pool-b: assets of one pool never pay into another unless its policy lists that pool in "internalTransfers" (a governed policy change)"`,
    );
  });

  it('when the policy lists the destination pool as an internal transfer, then it is allowed; another pool still is not', () => {
    expect(codes(input({ internalTransfers: ['pool-b'] }, 'pool-b'))).toEqual([]);
    expect(codes(input({ internalTransfers: ['pool-b'] }, 'pool-c'))).toEqual(['commingling']);
  });

  it("when the destination is the pool's own address, then it is denied, whatever the policy lists", () => {
    expect(codes(input({ internalTransfers: ['pool-a'] }, 'pool-a'))).toEqual(['own_address']);
  });

  it('when the destination belongs to no pool, then the rule does not apply', () => {
    expect(codes(input({}, null))).toEqual([]);
  });

  it('when internalTransfers names a pool twice or not a pool id, then the policy is refused naming the field', () => {
    expect(() => parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: {}, internalTransfers: ['pool-b', 'pool-b'] })).toThrow(/policy.internalTransfers: pool "pool-b" is listed twice/);
    expect(() => parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: {}, internalTransfers: ['Not A Pool'] })).toThrow(/internalTransfers/);
  });
});
