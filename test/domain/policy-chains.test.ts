/**
 * Policy entries are tied to a chain (SPEC section 9): an allowlist entry, a contract call or a token
 * asset without `chain` applies only where the pool holds a single chain of its family; otherwise the
 * plan is refused naming the entry. Entries tied to another chain do not apply to a request.
 */
import { describe, expect, it } from 'vitest';
import { assertPolicyChains, parsePolicyDocument } from '../../common/policy/document.js';
import { evaluateWithdrawal } from '../../common/policy/evaluate.js';

const SEPOLIA = 'eip155:11155111';
const HOLESKY = 'eip155:17000';
const BTC_TEST = 'bip122:000000000933ea01ad0ee984209779ba';
const HOT = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const TOKEN = 'erc20:0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const policy = (doc: object) => parsePolicyDocument({ quorum: [{ approvals: 1 }], assets: { ETH: {} }, ...doc });

describe('policy entries and chains', () => {
  it('when an entry names no chain and the pool holds one chain of its family, then it is accepted (the example plan holds one EVM chain)', () => {
    expect(() => assertPolicyChains(policy({ allowlist: [{ address: HOT }, { address: 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx' }] }), [SEPOLIA, BTC_TEST], 'policy')).not.toThrow();
    expect(() => assertPolicyChains(policy({ assets: { [TOKEN]: {} } }), [SEPOLIA], 'policy')).not.toThrow();
  });

  it('when an entry names no chain and the pool holds two EVM chains, then the plan is refused naming the entry', () => {
    expect(() => assertPolicyChains(policy({ allowlist: [{ address: HOT }] }), [SEPOLIA, HOLESKY], 'pools[0].policy')).toThrow(
      `pools[0].policy.allowlist[0]: address ${HOT} could be on eip155:11155111 or eip155:17000; name its "chain"`,
    );
    expect(() => assertPolicyChains(policy({ assets: { ETH: {}, [TOKEN]: {} } }), [SEPOLIA, HOLESKY], 'policy')).toThrow(`policy.assets.${TOKEN}: token ${TOKEN} could be on`);
    expect(() => assertPolicyChains(policy({ allowlist: [{ address: HOT, chain: HOLESKY }] }), [SEPOLIA, HOLESKY], 'policy')).not.toThrow();
  });

  it('when an entry names a chain the pool does not hold, or its family is not held at all, then it is refused', () => {
    expect(() => assertPolicyChains(policy({ allowlist: [{ address: HOT, chain: HOLESKY }] }), [SEPOLIA], 'policy')).toThrow('policy.allowlist[0].chain: eip155:17000 is not a chain of the pool (eip155:11155111)');
    expect(() => assertPolicyChains(policy({ allowlist: [{ address: 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx' }] }), [SEPOLIA], 'policy')).toThrow('is for a bip122 chain, and the pool holds none');
  });

  it('when an allowlist entry or a token is tied to one chain, then a request on another chain is not covered by it', () => {
    const p = policy({ assets: { ETH: {}, [TOKEN]: { chain: HOLESKY } }, allowlist: [{ address: HOT, chain: HOLESKY }] });
    const decide = (chain: string, asset: string) =>
      evaluateWithdrawal({ policy: p, chain, poolStatus: 'active', asset, amount: 1n, to: HOT, fee: 1n, feeAsset: 'ETH', contractCall: null, poolId: 'a', destinationPool: null, now: 0, usage: [] }).reasons.map((r) => r.code);
    expect(decide(HOLESKY, TOKEN)).toEqual([]);
    expect(decide(SEPOLIA, TOKEN)).toEqual(['asset_not_allowed', 'destination_not_allowlisted']);
    expect(decide(SEPOLIA, 'ETH')).toEqual(['destination_not_allowlisted']);
  });
});
