/**
 * What every use case needs, built once by main.ts (no DI framework): the store, the key devices, a
 * clock and the logger.
 */
import type { DeviceSet } from '../devices/device-set.js';
import type { Logger } from '../logger.js';
import type { Store, StoreReads } from '../store/store.js';
import type { Pool } from '../domain/pool.js';
import type { Policy } from '../../common/policy/policy.js';
import type { Withdrawal } from '../domain/withdrawal.js';
import { NotFoundError, StoreError } from '../../common/errors.js';
import { parsePolicyDocument } from '../../common/policy/document.js';

export interface ServiceContext {
  readonly store: Store;
  /** The configured key devices; each key is signed with by the device that holds it. */
  readonly devices: DeviceSet;
  readonly now: () => number;
  readonly log: Logger;
}

export async function requirePool(tx: StoreReads, poolId: string): Promise<Pool> {
  const pool = await tx.getPool(poolId);
  if (!pool) throw new NotFoundError('pool_not_found', `pool "${poolId}" does not exist`);
  return pool;
}

export async function requireWithdrawal(tx: StoreReads, id: string): Promise<Withdrawal> {
  const w = await tx.getWithdrawal(id);
  if (!w) throw new NotFoundError('withdrawal_not_found', `withdrawal "${id}" does not exist`);
  return w;
}

/** Parsed policies by their document's JSON text: a policy version never changes, parsing is not free. */
const parsedPolicies = new Map<string, Policy>();
const PARSED_POLICIES = 1024;

/** The pool's policy at `version`; a missing version is a broken store, not a user error. */
export async function policyOf(tx: StoreReads, poolId: string, version: number): Promise<Policy> {
  const doc = await tx.getPolicy(poolId, version);
  if (!doc) throw new StoreError('policy_missing', `policy version ${version} of pool "${poolId}" is missing from the store`);
  const text = JSON.stringify(doc);
  let policy = parsedPolicies.get(text);
  if (!policy) {
    policy = parsePolicyDocument(doc);
    if (parsedPolicies.size >= PARSED_POLICIES) parsedPolicies.delete(parsedPolicies.keys().next().value as string);
    parsedPolicies.set(text, policy);
  }
  return policy;
}
