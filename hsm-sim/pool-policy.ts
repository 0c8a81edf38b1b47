/**
 * The policy the device holds for each pool (SPEC rules 2 and 3, section 4): the document bound at the
 * ceremony and changed only by governance, parsed with the same rules the gateway uses
 * (common/policy/), and evaluated on the device's own decoding of the transaction, with its own
 * clock, its own index of every pool's addresses and its own journal of what it signed. The gateway's
 * compromise therefore buys nothing the pool's policy would refuse.
 *
 * Allowlist entries carry the device's own record of when they became usable: entries of the
 * ceremony's document keep the `addedAt` written there (none: usable at once); an entry new in a
 * governed version becomes usable a cooling-off period after the device applied it (never earlier,
 * whatever the document says), an entry already listed keeps the time it had.
 */
import { canonicalize } from 'json-canonicalize';
import { nativeAsset, parseChainId } from '../common/chain-id.js';
import { addressIndexKey, everyAddressOfKey } from '../common/chains/key-addresses.js';
import type { DecodedCall, DecodedTransaction } from '../common/chains/decoded-transaction.js';
import { decodeTransaction } from '../common/chains/adapters.js';
import { parsePolicyDocument, policyHash } from '../common/policy/document.js';
import { evaluateWithdrawal, velocityWindows, type PolicyDecision, type WindowUsage } from '../common/policy/evaluate.js';
import { declaredFunctions } from '../common/policy/contract-call-rules.js';
import { callAddresses } from '../common/policy/contract-calls.js';
import type { Policy, PolicyDocument } from '../common/policy/policy.js';
import type { KeyEntry, PoolBinding } from './sealed-state.js';

/** A policy document the device holds, parsed once. */
export interface HeldPolicy {
  /** RFC 8785 text, as sealed. */
  readonly text: string;
  readonly document: PolicyDocument;
  readonly policy: Policy;
  /** common/policy/document.ts policyHash: what governance messages and attestations name. */
  readonly hash: string;
}

/** Parses a policy document; throws (with the JSON path at fault) when it is not a valid one. */
export function holdPolicy(text: string): HeldPolicy {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new Error('the policy is not JSON');
  }
  const policy = parsePolicyDocument(value, 'policy');
  const document = value as PolicyDocument;
  return { text: canonicalize(document), document, policy, hash: policyHash(document) };
}

/** The device's usable-from times of a ceremony's allowlist: the `addedAt` written there, if any. */
export function enrolmentStamps(document: PolicyDocument): Record<string, number> {
  const stamps: Record<string, number> = {};
  for (const e of document.allowlist ?? []) if (e.addedAt !== undefined) stamps[e.address.toLowerCase()] = Date.parse(e.addedAt);
  return stamps;
}

/** The usable-from times once `next` replaces `previous` at `now` (see the module comment). */
export function changeStamps(next: PolicyDocument, previous: PolicyDocument | null, previousStamps: Readonly<Record<string, number>>, now: number): Record<string, number> {
  const before = new Set((previous?.allowlist ?? []).map((e) => e.address.toLowerCase()));
  const stamps: Record<string, number> = {};
  for (const e of next.allowlist ?? []) {
    const address = e.address.toLowerCase();
    if (before.has(address)) {
      const kept = previousStamps[address];
      if (kept !== undefined) stamps[address] = kept;
    } else {
      stamps[address] = Math.max(e.addedAt === undefined ? now : Date.parse(e.addedAt), now);
    }
  }
  return stamps;
}

/** The policy as the device applies it: its allowlist's `addedAt` are the device's own stamps. */
function stamped(held: HeldPolicy, stamps: Readonly<Record<string, number>>): Policy {
  const allowlist = held.policy.allowlist;
  if (allowlist === undefined) return held.policy;
  return {
    ...held.policy,
    allowlist: allowlist.map(({ addedAt: _written, ...entry }) => {
      const stamp = stamps[entry.address.toLowerCase()];
      return stamp === undefined ? entry : { ...entry, addedAt: stamp };
    }),
  };
}

/** Which pool of this device controls an address: every address of every key, family-wide as the gateway reads it. */
export class AddressBook {
  private readonly pools = new Map<string, string>();

  add(key: Pick<KeyEntry, 'poolId' | 'chain' | 'publicKey'>): void {
    const chain = parseChainId(key.chain);
    for (const address of everyAddressOfKey(chain, key.publicKey)) this.pools.set(addressIndexKey(chain.family, address), key.poolId);
  }

  poolOf(chain: string, address: string): string | null {
    return this.pools.get(addressIndexKey(parseChainId(chain).family, address)) ?? null;
  }
}

export interface DeviceDecisionInput {
  readonly poolId: string;
  readonly chain: string;
  readonly binding: PoolBinding;
  readonly held: HeldPolicy;
  /** The transaction to sign, as received, and the device's decoding of it. */
  readonly unsignedTx: string;
  readonly decoded: DecodedTransaction;
  readonly addresses: AddressBook;
  /** The amounts of this asset the device signed for this pool in each of the policy's windows. */
  readonly usage: (windows: readonly { readonly window: string; readonly windowMs: number }[]) => WindowUsage[];
  readonly now: number;
}

/**
 * The pool's policy's decision on the device's own decoding. A contract call is decoded again with the
 * functions the held policy declares (what the approvals state is only what they say).
 */
export function deviceDecision(input: DeviceDecisionInput): PolicyDecision {
  const policy = stamped(input.held, input.binding.allowlistAddedAt ?? {});
  const { decoded } = input;
  const stated = decoded.call;
  let call: DecodedCall | null = null;
  if (stated !== null) {
    try {
      call = decodeTransaction(input.chain, input.unsignedTx, null, { functions: declaredFunctions(policy) }).call;
    } catch {
      call = { contract: stated.contract, selector: stated.selector };
    }
  }
  const argumentPools = new Map<string, string>();
  if (call !== null) {
    for (const { address } of callAddresses(call)) {
      const pool = input.addresses.poolOf(input.chain, address);
      if (pool !== null) argumentPools.set(address.toLowerCase(), pool);
    }
  }
  return evaluateWithdrawal({
    policy,
    chain: input.chain,
    poolId: input.poolId,
    poolStatus: input.binding.frozen === true ? 'frozen' : 'active',
    asset: decoded.asset,
    amount: decoded.amount,
    to: decoded.to,
    fee: decoded.maxFee,
    feeAsset: nativeAsset(parseChainId(input.chain).family),
    contractCall: call,
    callAddressPools: argumentPools,
    destinationPool: input.addresses.poolOf(input.chain, decoded.to),
    now: input.now,
    usage: input.usage(velocityWindows(policy, decoded.asset)),
  });
}
