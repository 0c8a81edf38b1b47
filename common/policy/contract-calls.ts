/**
 * The policy's rules on contract calls (docs/policy.md, "Contract calls"): a pure function from a
 * call decoded by ABI (common/chains/ethereum/contract-call.ts) and the pool's policy to the reasons
 * that deny it.
 *
 * A call passes only if an entry of `contractCalls` names its contract and selector, its call data was
 * decoded by that entry's function, every argument constraint of the entry holds, and an ERC-20
 * allowance is not unlimited unless the entry says `"unlimited": true`. Every address argument is a
 * destination: it must pass the allowlist with its cooling-off and the commingling rule, as `to` does
 * (the pool's own address excepted: nothing leaves the pool to it). The token amount of an ERC-20 call
 * is the request's amount of `erc20:<contract>` (the decoder says so), so the per-transaction maximum,
 * velocity windows, quorum tiers and time lock of that token apply to it as to a transfer.
 */
import { erc20Effect, ERC20_FUNCTIONS } from '../chains/ethereum/contract-call.js';
import type { DecodedCall } from '../chains/decoded-transaction.js';
import { UNLIMITED_ALLOWANCE, type CallArgumentRule, type ContractCallRule, type Policy } from './policy.js';
import type { Reason } from './policy.js';

export interface CallSubject {
  readonly policy: Policy;
  /** The request's CAIP-2 chain: entries tied to another chain do not apply to it. */
  readonly chain: string;
  readonly poolId: string;
  readonly call: DecodedCall;
  /** The request's destination, which the general rules check already. */
  readonly to: string;
  /** Pools of this gateway holding an address argument of the call, by lowercase address. */
  readonly argumentPools: ReadonlyMap<string, string>;
  readonly now: number;
}

/** The address arguments of a decoded call: what the destination rules apply to. */
export function callAddresses(call: DecodedCall): readonly { readonly name: string; readonly address: string }[] {
  return (call.args ?? []).filter((a) => a.type === 'address').map((a) => ({ name: a.name, address: a.value }));
}

function ruleOf(policy: Policy, chain: string, call: DecodedCall): ContractCallRule | undefined {
  const contract = call.contract.toLowerCase();
  return policy.contractCalls?.find((r) => r.contract === contract && r.selector === call.selector && (r.chain === undefined || r.chain === chain));
}

function argumentReasons(rule: ContractCallRule, call: DecodedCall): Reason[] {
  const reasons: Reason[] = [];
  const refuse = (name: string, why: string) =>
    reasons.push({ code: 'call_argument_not_allowed', message: `argument ${name} of ${rule.function} on ${call.contract} ${why}` });
  for (const [name, c] of Object.entries(rule.args) as [string, CallArgumentRule][]) {
    const arg = call.args?.find((a) => a.name === name);
    if (!arg) {
      refuse(name, 'is missing from the decoded call');
      continue;
    }
    const same = arg.type === 'address' ? (v: string) => v.toLowerCase() === arg.value.toLowerCase() : (v: string) => v === arg.value;
    if (c.oneOf !== undefined && !c.oneOf.some(same)) refuse(name, `is ${arg.value}, not one the policy allows (${c.oneOf.join(', ')})`);
    if (c.min !== undefined && BigInt(arg.value) < c.min) refuse(name, `is ${arg.value}, below the policy's minimum ${c.min}`);
    if (c.max !== undefined && BigInt(arg.value) > c.max) refuse(name, `is ${arg.value}, above the policy's maximum ${c.max}`);
  }
  return reasons;
}

function unlimitedReason(rule: ContractCallRule, call: DecodedCall): Reason[] {
  const allowance = call.selector === ERC20_FUNCTIONS.approve.selector || call.selector === ERC20_FUNCTIONS.increaseAllowance.selector;
  const effect = allowance ? erc20Effect(call) : null;
  if (effect === null || effect.amount < UNLIMITED_ALLOWANCE || rule.unlimited) return [];
  return [
    {
      code: 'unlimited_allowance',
      message: `the transaction lets ${effect.recipient} spend ${effect.amount} of erc20:${call.contract}, an unlimited allowance (at or above 2^96-1); only a "contractCalls" entry with "unlimited": true allows that`,
    },
  ];
}

function destinationReasons(s: CallSubject): Reason[] {
  const { policy, call, now } = s;
  const reasons: Reason[] = [];
  for (const { name, address } of callAddresses(call)) {
    const key = address.toLowerCase();
    if (key === s.to.toLowerCase()) continue;
    const pool = s.argumentPools.get(key);
    if (pool === s.poolId) continue;
    const what = `argument ${name} = ${address} of ${call.function ?? call.selector}`;
    if (pool !== undefined && !policy.internalTransfers?.includes(pool)) {
      reasons.push({
        code: 'commingling',
        message: `${what} belongs to pool ${pool}: assets of one pool never serve another unless its policy lists that pool in "internalTransfers" (a governed policy change)`,
      });
    }
    if (policy.allowlist === undefined) continue;
    const entry = policy.allowlist.find((e) => e.address.toLowerCase() === key && (e.chain === undefined || e.chain === s.chain));
    if (!entry) {
      reasons.push({ code: 'destination_not_allowlisted', message: `${what} is not on the pool's allowlist (every address argument of a call is a destination)` });
    } else if (entry.addedAt !== undefined && policy.newAddressCoolingOffMs !== undefined && now < entry.addedAt + policy.newAddressCoolingOffMs) {
      reasons.push({
        code: 'destination_cooling_off',
        message: `${what} was added to the allowlist recently and is usable from ${new Date(entry.addedAt + policy.newAddressCoolingOffMs).toISOString()}`,
      });
    }
  }
  return reasons;
}

/** Every reason the policy denies this contract call; empty when it allows it. */
export function contractCallReasons(s: CallSubject): Reason[] {
  const { call } = s;
  const rule = ruleOf(s.policy, s.chain, call);
  if (!rule) {
    return [
      {
        code: 'contract_call_not_allowed',
        message: `the transaction calls function ${call.function ?? call.selector} of contract ${call.contract}, which the pool's policy does not allow (a governed policy change can add it to "contractCalls")`,
      },
    ];
  }
  if (call.function !== rule.function || call.args === undefined) {
    return [
      {
        code: 'unknown_function',
        message: `the transaction calls ${call.selector} of contract ${call.contract}, which the policy allows as ${rule.function}, but its call data was not decoded by that signature`,
      },
    ];
  }
  return [...argumentReasons(rule, call), ...unlimitedReason(rule, call), ...destinationReasons(s)];
}
