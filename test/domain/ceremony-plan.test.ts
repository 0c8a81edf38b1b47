/**
 * The ceremony plan: the specification's example is accepted verbatim; every malformed plan is
 * refused with the JSON path at fault; backup custodians are optional and checked.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parseCeremonyPlan } from '../../src/domain/ceremony-plan.js';
import { baseThreshold, parsePolicyDocument } from '../../common/policy/document.js';
import { x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';

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

describe('contract-call entries', () => {
  const USDC = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
  const VAULT = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
  const ROUTER = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
  const withCalls = (contractCalls: unknown[]) => variant((p) => (p.pools[1].policy.contractCalls = contractCalls));
  const rules = (contractCalls: unknown[]) => parseCeremonyPlan(withCalls(contractCalls)).pools[1]!.policy.contractCalls;

  it('when an entry names a known ERC-20 selector, then its function is the ERC-20 one and its constraints are parsed', () => {
    expect(rules([{ contract: USDC, selector: '0x095EA7B3', label: 'router', args: { spender: { oneOf: [ROUTER.toLowerCase()] }, value: { max: '1000000' } } }])).toEqual([
      {
        contract: USDC.toLowerCase(),
        selector: '0x095ea7b3',
        label: 'router',
        function: 'approve(address spender, uint256 value)',
        unlimited: false,
        args: { spender: { oneOf: [ROUTER] }, value: { max: 1_000_000n } },
      },
    ]);
  });

  it('when an entry declares the function of another selector, then it is parsed normalized', () => {
    expect(rules([{ contract: VAULT, selector: '0x47e7ef24', function: 'deposit(address to, uint amount)', args: { amount: { min: '1', max: '5' } } }])).toEqual([
      { contract: VAULT.toLowerCase(), selector: '0x47e7ef24', function: 'deposit(address to, uint256 amount)', unlimited: false, args: { amount: { min: 1n, max: 5n } } },
    ]);
  });

  it('when an approve entry says "unlimited": true, then the rule carries it', () => {
    expect(rules([{ contract: USDC, selector: '0x095ea7b3', unlimited: true }])?.[0]?.unlimited).toBe(true);
  });

  const refused: [string, unknown, string][] = [
    [
      'an unknown selector without "function"',
      { contract: VAULT, selector: '0x47e7ef24' },
      'pools[1].policy.contractCalls[0]: selector 0x47e7ef24 is not an ERC-20 function every reader knows (approve, increaseAllowance, transferFrom); declare its "function" with argument names, e.g. "deposit(address to, uint256 amount)"',
    ],
    [
      'a "function" whose selector differs',
      { contract: VAULT, selector: '0x12345678', function: 'deposit(address to, uint256 amount)' },
      'pools[1].policy.contractCalls[0].function: deposit(address to, uint256 amount) has selector 0x47e7ef24 (keccak256 of "deposit(address,uint256)"), not 0x12345678',
    ],
    [
      'another "function" for a known ERC-20 selector',
      { contract: USDC, selector: '0x095ea7b3', function: 'approve(address guy, uint256 wad)' },
      'pools[1].policy.contractCalls[0].function: 0x095ea7b3 is ERC-20 approve, whose function is approve(address spender, uint256 value); leave "function" out or write exactly that',
    ],
    [
      'the ERC-20 transfer selector',
      { contract: USDC, selector: '0xa9059cbb' },
      'pools[1].policy.contractCalls[0]: 0xa9059cbb is ERC-20 transfer, a token withdrawal that "assets" governs (asset erc20:<contract>), not a contract call',
    ],
    [
      'a "function" without argument names',
      { contract: VAULT, selector: '0x47e7ef24', function: 'deposit(address,uint256)' },
      '"pools[1].policy.contractCalls[0].function" argument 1 ("address") must be a type and a name, such as "address to"',
    ],
    [
      'a constraint on an argument the function lacks',
      { contract: USDC, selector: '0x095ea7b3', args: { amount: { max: '1' } } },
      'pools[1].policy.contractCalls[0].args.amount: approve(address spender, uint256 value) has no argument "amount" (its arguments: spender, value)',
    ],
    [
      'a "max" on an address argument',
      { contract: USDC, selector: '0x095ea7b3', args: { spender: { max: '1' } } },
      'pools[1].policy.contractCalls[0].args.spender: "min" and "max" apply to integer arguments; "spender" is address',
    ],
    [
      'a "min" above its "max"',
      { contract: USDC, selector: '0x095ea7b3', args: { value: { min: '5', max: '4' } } },
      'pools[1].policy.contractCalls[0].args.value: "min" 5 is above "max" 4',
    ],
    [
      'a value out of the argument\'s range',
      { contract: USDC, selector: '0x095ea7b3', args: { value: { max: '-1' } } },
      '"pools[1].policy.contractCalls[0].args.value.max" is outside the range of a uint256 (0 to 115792089237316195423570985008687907853269984665640564039457584007913129639935)',
    ],
    [
      'an address in "oneOf" with a wrong checksum',
      { contract: USDC, selector: '0x095ea7b3', args: { spender: { oneOf: ['0x8ba1f109551bD432803012645Ac136ddd64DBA7A'] } } },
      '"pools[1].policy.contractCalls[0].args.spender.oneOf[0]" has a wrong EIP-55 checksum (did you mean a different address? 0x8ba1f109551bD432803012645Ac136ddd64DBA7A)',
    ],
    [
      'an empty constraint',
      { contract: USDC, selector: '0x095ea7b3', args: { value: {} } },
      'pools[1].policy.contractCalls[0].args.value: expected "oneOf", "min" or "max"',
    ],
    [
      '"unlimited" on a function that sets no allowance',
      { contract: USDC, selector: '0x23b872dd', unlimited: true },
      'pools[1].policy.contractCalls[0].unlimited: only an ERC-20 approve or increaseAllowance sets an allowance that can be unlimited',
    ],
    [
      'an unknown constraint kind',
      { contract: USDC, selector: '0x095ea7b3', args: { value: { below: '1' } } },
      'pools[1].policy.contractCalls[0].args.value: unknown field(s) "below"',
    ],
  ];
  for (const [name, entry, message] of refused) {
    it(`when an entry has ${name}, then the plan is refused naming the entry`, () => {
      expect(() => parseCeremonyPlan(withCalls([entry]))).toThrow(message);
    });
  }

  it('when two entries declare one selector with different argument names, then the plan is refused naming both', () => {
    expect(() =>
      parseCeremonyPlan(
        withCalls([
          { contract: VAULT, selector: '0x47e7ef24', function: 'deposit(address to, uint256 amount)' },
          { contract: ROUTER, selector: '0x47e7ef24', function: 'deposit(address receiver, uint256 assets)' },
        ]),
      ),
    ).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: pools[1].policy.contractCalls[1].function: deposit(address receiver, uint256 assets) and pools[1].policy.contractCalls[0]'s deposit(address to, uint256 amount) share selector 0x47e7ef24; a selector is decoded by one signature]`,
    );
  });
});

describe('backup custodians in a plan', () => {
  const keyOf = (n: number) => bytesToHex(x25519.getPublicKey(new Uint8Array(32).fill(n)));
  const withCustodians = (custodians: unknown, change: (p: any) => void = () => undefined) =>
    variant((p) => {
      p.custodians = custodians;
      change(p);
    });

  it('when the example plan (no custodians) is parsed, then it enrols none', () => {
    expect(parseCeremonyPlan(example).custodians).toEqual([]);
  });

  it('when a plan names custodians, then their ids and lowercase keys come out in order', () => {
    const plan = parseCeremonyPlan(withCustodians([{ id: 'vault-1', publicKey: keyOf(1).toUpperCase() }, { id: 'vault-2', publicKey: keyOf(2) }]));
    expect(plan.custodians).toEqual([{ id: 'vault-1', publicKey: keyOf(1) }, { id: 'vault-2', publicKey: keyOf(2) }]);
  });

  const refused: [string, unknown, (p: any) => void, RegExp][] = [
    ['one custodian', [{ id: 'a', publicKey: keyOf(1) }], () => undefined, /custodians: a backup is split among at least 2 custodians/],
    ['a low-order key', [{ id: 'a', publicKey: keyOf(1) }, { id: 'b', publicKey: '00'.repeat(32) }], () => undefined, /custodians\[1\]\.publicKey: a low-order X25519 point/],
    ['a 33-byte key', [{ id: 'a', publicKey: keyOf(1) }, { id: 'b', publicKey: '02' + keyOf(2) }], () => undefined, /custodians\[1\]\.publicKey: expected a 32-byte X25519 public key/],
    ['two custodians with one key', [{ id: 'a', publicKey: keyOf(1) }, { id: 'b', publicKey: keyOf(1) }], () => undefined, /used by two custodians/],
    ['one id twice', [{ id: 'a', publicKey: keyOf(1) }, { id: 'a', publicKey: keyOf(2) }], () => undefined, /id "a" appears twice/],
    ['no admins', [{ id: 'a', publicKey: keyOf(1) }, { id: 'b', publicKey: keyOf(2) }], (p) => { delete p.admins; delete p.adminQuorum; }, /custodians: a backup export needs the admin quorum/],
    ['no simulator', [{ id: 'a', publicKey: keyOf(1) }, { id: 'b', publicKey: keyOf(2) }], (p) => { p.device = 'pkcs11'; }, /custodians: only the simulator makes backups/],
  ];
  for (const [name, custodians, change, message] of refused) {
    it(`when the custodians have ${name}, then the plan is refused naming them`, () => {
      expect(() => parseCeremonyPlan(withCustodians(custodians, change))).toThrow(message);
    });
  }
});
