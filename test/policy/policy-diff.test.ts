/**
 * The policy diff an admin reads before approving a new policy version (src/policy/policy-diff.ts),
 * from pool client-a's policy of examples/ceremony-plan.json (SPEC section 9): each field of the
 * document, added, removed or changed, one line each; allowlist stamps are not a change.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PolicyDocument } from '../../common/policy/policy.js';
import { policyDiff, type PolicyDiffLine } from '../../src/policy/policy-diff.js';

const plan = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'ceremony-plan.json'), 'utf8')) as { pools: { id: string; policy: PolicyDocument }[] };
const BASE = plan.pools.find((p) => p.id === 'client-a')!.policy;
const copy = (): PolicyDocument => JSON.parse(JSON.stringify(BASE)) as PolicyDocument;
const lines = (d: readonly PolicyDiffLine[]) => d.map((l) => `${l.change} ${l.what}: ${l.detail}`);

describe('the policy diff', () => {
  it('when the documents are the same policy, then there is no line', () => {
    expect(policyDiff(BASE, copy())).toEqual([]);
  });

  it('when only allowlist entries gain the store\'s addedAt stamps, then there is no line', () => {
    const stamped = copy();
    stamped.allowlist = stamped.allowlist!.map((e) => ({ ...e, addedAt: '2030-01-01T00:00:00.000Z' }));
    expect(policyDiff(BASE, stamped)).toEqual([]);
  });

  it('when limits, maxima, fee caps, cooling-off and expiry change, then each is one line with its before and after', () => {
    const next = copy();
    next.assets.ETH!.maxPerTx = '1000000000000000000';
    next.assets.ETH!.limits = [{ window: '1h', max: '2000000000000000000' }, { window: '7d', max: '9' }];
    next.maxFee = { ETH: '20000000000000000' };
    next.newAddressCoolingOff = '48h';
    delete next.requestExpiry;
    expect(lines(policyDiff(BASE, next))).toMatchInlineSnapshot(`
      [
        "~ max per tx ETH: 5000000000000000000 base units of ETH -> 1000000000000000000 base units of ETH",
        "~ limit ETH per 1h: 8000000000000000000 base units of ETH -> 2000000000000000000 base units of ETH",
        "- limit ETH per 24h: 20000000000000000000 base units of ETH -> none",
        "+ limit ETH per 7d: none -> 9 base units of ETH",
        "~ fee cap ETH: 10000000000000000 base units of ETH -> 20000000000000000 base units of ETH",
        "- fee cap BTC: 100000 base units of BTC -> uncapped",
        "~ cooling-off: 24h -> 48h",
        "- request expiry: 72h -> never",
      ]
    `);
  });

  it('when allowlist entries are added, removed or relabelled, then each names its address, label and chain', () => {
    const next = copy();
    next.allowlist = [
      { address: '0x8BA1F109551BD432803012645AC136DDD64DBA72', label: 'exchange hot wallet (renamed)' },
      { address: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', label: 'new desk', chain: 'eip155:11155111' },
    ];
    expect(lines(policyDiff(BASE, next))).toMatchInlineSnapshot(`
      [
        "~ allowlist: 0x8ba1f109551bD432803012645Ac136ddd64DBA72 "exchange hot wallet" -> 0x8BA1F109551BD432803012645AC136DDD64DBA72 "exchange hot wallet (renamed)"",
        "- allowlist: tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx "cold storage"",
        "+ allowlist: 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed "new desk" on eip155:11155111",
      ]
    `);
    const open = copy();
    delete open.allowlist;
    expect(lines(policyDiff(BASE, open))[0]).toBe('~ allowlist: only allowlisted destinations -> destinations not restricted');
  });

  it('when assets, quorum tiers, the time lock, internal transfers and contract calls change, then each is shown', () => {
    const next = copy();
    delete next.assets.BTC;
    next.assets['erc20:0x1c7d4b196cb0c7b01d743fbc6116a902379c7238'] = { maxPerTx: '1000000' };
    next.quorum = [{ upTo: { ETH: '1000000000000000000' }, approvals: 2 }, { approvals: 3 }];
    next.timelock = { above: { ETH: '2000000000000000000' }, delay: '2h' };
    next.internalTransfers = ['client-b'];
    next.contractCalls = [
      { contract: '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238', selector: '0x095ea7b3', label: 'router allowance', args: { spender: { oneOf: ['0x8ba1f109551bD432803012645Ac136ddd64DBA72'] }, value: { max: '2000000' } } },
    ];
    expect(lines(policyDiff(BASE, next, (amount, asset) => `${amount} ${asset}`))).toMatchInlineSnapshot(`
      [
        "- asset: BTC, max per tx 50000000 BTC, 100000000 BTC per 24h",
        "+ asset: erc20:0x1c7d4b196cb0c7b01d743fbc6116a902379c7238, max per tx 1000000 erc20:0x1c7d4b196cb0c7b01d743fbc6116a902379c7238",
        "- quorum tier: up to 1000000000000000000 ETH, 10000000 BTC: 2 approvals",
        "+ quorum tier: up to 1000000000000000000 ETH: 2 approvals",
        "~ time lock: above 3000000000000000000 ETH, signed 1h after the quorum -> above 2000000000000000000 ETH, signed 2h after the quorum",
        "+ internal transfers to: pool client-b",
        "+ contract call: 0x095ea7b3 on 0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238 "router allowance", arguments: spender one of 0x8ba1f109551bD432803012645Ac136ddd64DBA72; value max 2000000",
      ]
    `);
  });

  it('when the same tiers come in another order, then the new order is shown (the first tier that covers an amount applies)', () => {
    const next = copy();
    next.quorum = [...next.quorum].reverse();
    expect(lines(policyDiff(BASE, next, (a, asset) => `${a} ${asset}`))).toEqual(['~ quorum tiers: in this order: the rest: 3 approvals; up to 1000000000000000000 ETH, 10000000 BTC: 2 approvals']);
  });
});
