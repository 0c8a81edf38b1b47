/**
 * The policy on contract calls (src/policy/contract-calls.ts through evaluateWithdrawal): each
 * transaction is built by ethers and decoded by the shared decoder, so the policy judges exactly what
 * the device would sign. An allowed (contract, selector) no longer lets any arguments through.
 */
import { describe, expect, it } from 'vitest';
import { Interface, Transaction as EthersTx } from 'ethers';
import { parsePolicyDocument } from '../../common/policy/document.js';
import { declaredFunctions } from '../../common/policy/contract-call-rules.js';
import { evaluateWithdrawal, type PolicyInput } from '../../common/policy/evaluate.js';
import { decodeTransaction } from '../../common/chains/adapters.js';

const NOW = Date.parse('2026-12-01T12:00:00Z');
const USDC = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const TOKEN = `erc20:${USDC}`;
const ROUTER = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const ATTACKER = '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB';
const VAULT = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const NEWCOMER = '0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb';
const MAX_UINT256 = (1n << 256n) - 1n;
const DEPOSIT = 'deposit(address to, uint256 amount)';
const erc20 = new Interface([
  'function approve(address spender, uint256 value)',
  'function increaseAllowance(address spender, uint256 addedValue)',
  'function transferFrom(address from, address to, uint256 value)',
  `function ${DEPOSIT}`,
]);

const basePolicy = {
  quorum: [{ upTo: { [TOKEN]: '1000000' }, approvals: 2 }, { approvals: 3 }],
  assets: { ETH: { maxPerTx: '1000000000000000000' }, [TOKEN]: { maxPerTx: '5000000', limits: [{ window: '24h', max: '8000000' }] } },
  allowlist: [{ address: ROUTER, label: 'settlement router' }, { address: VAULT, label: 'vault' }, { address: NEWCOMER, label: 'new desk', addedAt: '2026-12-01T00:00:00Z' }],
  newAddressCoolingOff: '24h',
  contractCalls: [
    { contract: USDC, selector: '0x095ea7b3', label: 'router allowance', args: { spender: { oneOf: [ROUTER, NEWCOMER] }, value: { max: '2000000' } } },
    { contract: USDC, selector: '0x39509351' },
    { contract: USDC, selector: '0x23b872dd' },
    { contract: VAULT, selector: '0x47e7ef24', function: DEPOSIT },
  ],
};

function input(data: string, options: { policy?: object; contract?: string; usage?: bigint; argumentPools?: [string, string][] } = {}): PolicyInput {
  const policy = parsePolicyDocument(options.policy ?? basePolicy);
  const unsigned = EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, gasLimit: 90_000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: options.contract ?? USDC, value: 0n, data }).unsignedSerialized;
  const d = decodeTransaction('eip155:11155111', unsigned, null, { functions: declaredFunctions(policy) });
  return {
    policy,
    chain: 'eip155:11155111',
    poolStatus: 'active',
    asset: d.asset,
    amount: d.amount,
    to: d.to,
    fee: 1n,
    feeAsset: 'ETH',
    contractCall: d.call,
    callAddressPools: new Map(options.argumentPools ?? []),
    poolId: 'pool-a',
    destinationPool: null,
    now: NOW,
    usage: [{ window: '24h', windowMs: 86_400_000, committed: options.usage ?? 0n }],
  };
}

const approve = (spender: string, value: bigint) => erc20.encodeFunctionData('approve', [spender, value]);
const codes = (i: PolicyInput) => evaluateWithdrawal(i).reasons.map((r) => r.code);

describe('the approve(attacker, 2^256-1) attack', () => {
  it('when a requester asks for an unlimited allowance to an unknown spender on an allowed token, then every rule it breaks denies it', () => {
    const d = evaluateWithdrawal(input(approve(ATTACKER, MAX_UINT256)));
    expect(d.allowed).toBe(false);
    expect(d.reasons.map((r) => r.code).sort()).toEqual(['call_argument_not_allowed', 'call_argument_not_allowed', 'destination_not_allowlisted', 'over_max_per_tx', 'unlimited_allowance', 'velocity_exceeded']);
    expect(d.reasons.find((r) => r.code === 'unlimited_allowance')?.message).toMatchInlineSnapshot(
      `"the transaction lets 0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB spend 115792089237316195423570985008687907853269984665640564039457584007913129639935 of erc20:0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238, an unlimited allowance (at or above 2^96-1); only a "contractCalls" entry with "unlimited": true allows that"`,
    );
    expect(d.reasons.find((r) => r.code === 'call_argument_not_allowed')?.message).toMatchInlineSnapshot(
      `"argument spender of approve(address spender, uint256 value) on 0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238 is 0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB, not one the policy allows (0x8ba1f109551bD432803012645Ac136ddd64DBA72, 0xD1220A0cf47c7B9Be7A2E6BA89F429762e7b9aDb)"`,
    );
  });

  it('when the entry has no constraints and the pool no allowlist, then the unlimited allowance alone still denies it', () => {
    const open = { quorum: [{ approvals: 1 }], assets: { [TOKEN]: {} }, contractCalls: [{ contract: USDC, selector: '0x095ea7b3' }] };
    expect(codes(input(approve(ATTACKER, MAX_UINT256), { policy: open }))).toEqual(['unlimited_allowance']);
  });

  it('when the token is not an asset of the pool, then an allowance of it is refused like a transfer of it', () => {
    const noToken = { quorum: [{ approvals: 1 }], assets: { ETH: {} }, contractCalls: [{ contract: USDC, selector: '0x095ea7b3' }] };
    expect(codes(input(approve(ROUTER, 1n), { policy: noToken }))).toEqual(['asset_not_allowed']);
  });
});

describe('allowances within the policy', () => {
  it('when the spender and amount are within the entry, then the approve is allowed, its quorum tier chosen by the token amount', () => {
    expect(evaluateWithdrawal(input(approve(ROUTER, 1_000_000n)))).toMatchObject({ allowed: true, reasons: [], requiredApprovals: 2 });
    expect(evaluateWithdrawal(input(approve(ROUTER, 1_000_001n)))).toMatchObject({ allowed: true, requiredApprovals: 3 });
  });

  it('when the amount is above the argument maximum by one, then it is denied; at the maximum it passes', () => {
    expect(codes(input(approve(ROUTER, 2_000_000n)))).toEqual([]);
    expect(codes(input(approve(ROUTER, 2_000_001n)))).toEqual(['call_argument_not_allowed']);
  });

  it('when allowances already committed fill the token window, then another one is denied by velocity', () => {
    expect(codes(input(approve(ROUTER, 1_000_000n), { usage: 7_000_000n }))).toEqual([]);
    expect(codes(input(approve(ROUTER, 1_000_001n), { usage: 7_000_000n }))).toEqual(['velocity_exceeded']);
  });

  it('when a pinned spender is still in its cooling-off, then the approve waits for it like a transfer would', () => {
    expect(codes(input(approve(NEWCOMER, 1n)))).toEqual(['destination_cooling_off']);
  });

  it('when increaseAllowance reaches 2^96-1, then it is unlimited; one less passes the unlimited rule', () => {
    const open = { quorum: [{ approvals: 1 }], assets: { [TOKEN]: {} }, contractCalls: [{ contract: USDC, selector: '0x39509351' }] };
    const unlimited = (1n << 96n) - 1n;
    expect(codes(input(erc20.encodeFunctionData('increaseAllowance', [ROUTER, unlimited]), { policy: open }))).toEqual(['unlimited_allowance']);
    expect(codes(input(erc20.encodeFunctionData('increaseAllowance', [ROUTER, unlimited - 1n]), { policy: open }))).toEqual([]);
  });

  it('when the entry says "unlimited": true, then an unlimited approve to an allowlisted spender passes on a token without limits', () => {
    const unlimited = { ...basePolicy, assets: { [TOKEN]: {} }, contractCalls: [{ contract: USDC, selector: '0x095ea7b3', unlimited: true }] };
    expect(codes(input(approve(ROUTER, MAX_UINT256), { policy: unlimited }))).toEqual([]);
    expect(codes(input(approve(ATTACKER, MAX_UINT256), { policy: unlimited }))).toEqual(['destination_not_allowlisted']);
  });
});

describe('every address argument is a destination', () => {
  it('when transferFrom takes from an address off the allowlist, then it is denied naming the argument', () => {
    const d = evaluateWithdrawal(input(erc20.encodeFunctionData('transferFrom', [ATTACKER, ROUTER, 5n])));
    expect(d.reasons.map((r) => r.code)).toEqual(['destination_not_allowlisted']);
    expect(d.reasons[0]?.message).toMatch(/^argument from = 0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB of transferFrom\(address from, address to, uint256 value\) is not on the pool's allowlist/);
  });

  it("when an address argument is the pool's own address, then it is no destination", () => {
    expect(codes(input(erc20.encodeFunctionData('transferFrom', [ATTACKER, ROUTER, 5n]), { argumentPools: [[ATTACKER.toLowerCase(), 'pool-a']] }))).toEqual([]);
  });

  it("when an address argument belongs to another pool, then it is commingling unless the policy lists that pool", () => {
    const data = erc20.encodeFunctionData('transferFrom', [VAULT, ROUTER, 5n]);
    expect(codes(input(data, { argumentPools: [[VAULT.toLowerCase(), 'pool-b']] }))).toEqual(['commingling']);
    expect(codes(input(data, { policy: { ...basePolicy, internalTransfers: ['pool-b'] }, argumentPools: [[VAULT.toLowerCase(), 'pool-b']] }))).toEqual([]);
  });

  it('when a declared function names a receiver off the allowlist, then it is denied; an allowlisted one passes', () => {
    const deposit = (to: string) => erc20.encodeFunctionData('deposit', [to, 5n]);
    expect(codes(input(deposit(ROUTER), { contract: VAULT }))).toEqual([]);
    expect(codes(input(deposit(ATTACKER), { contract: VAULT }))).toEqual(['destination_not_allowlisted']);
  });
});

describe('calls the policy cannot read', () => {
  it('when the policy allows the selector but the call was decoded without its function, then it is denied as unknown_function', () => {
    const i = input(erc20.encodeFunctionData('deposit', [ROUTER, 5n]), { contract: VAULT });
    const bare = { ...i, contractCall: { contract: VAULT, selector: '0x47e7ef24' } };
    expect(evaluateWithdrawal(bare).reasons).toEqual([
      {
        code: 'unknown_function',
        message: `the transaction calls 0x47e7ef24 of contract ${VAULT}, which the policy allows as ${DEPOSIT}, but its call data was not decoded by that signature`,
      },
    ]);
  });

  it('when the entry or the allowlisted argument is tied to another chain, then it does not apply on this one', () => {
    const elsewhere = 'eip155:1';
    const tied = {
      ...basePolicy,
      contractCalls: [{ contract: VAULT, selector: '0x47e7ef24', function: DEPOSIT, chain: elsewhere }],
    };
    expect(codes(input(erc20.encodeFunctionData('deposit', [ROUTER, 5n]), { contract: VAULT, policy: tied }))).toEqual(['contract_call_not_allowed']);
    const routerElsewhere = { ...basePolicy, allowlist: [{ address: ROUTER, chain: elsewhere }, { address: VAULT }] };
    expect(codes(input(erc20.encodeFunctionData('deposit', [ROUTER, 5n]), { contract: VAULT, policy: routerElsewhere }))).toEqual(['destination_not_allowlisted']);
  });

  it('when no entry names the contract and selector, then it is denied as contract_call_not_allowed', () => {
    expect(codes(input(erc20.encodeFunctionData('deposit', [ROUTER, 5n]), { contract: ROUTER }))).toEqual(['contract_call_not_allowed']);
  });
});
