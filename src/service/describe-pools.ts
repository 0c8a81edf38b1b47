/**
 * Use case: what a pool is and how much of its limits is used (SPEC section 6, GET /v1/pools).
 */
import type { Pool, PoolKey } from '../domain/pool.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import { StoreError } from '../../common/errors.js';
import type { StoreReads } from '../store/store.js';
import { policyOf, requirePool, type ServiceContext } from './context.js';
import { canonicalEthAsset } from '../../common/chains/ethereum/transaction.js';
import { policyControls, type PolicyControls } from '../policy/gaps.js';
import { velocityUsage } from './usage.js';

export interface LimitUsage {
  readonly asset: string;
  readonly window: string;
  readonly max: bigint;
  readonly used: bigint;
  readonly remaining: bigint;
  /** When the oldest committed amount in the window leaves it (ms since epoch), if any is in it. */
  readonly nextFreeAt: number | null;
}

export interface PoolDescription {
  readonly pool: Pool;
  readonly keys: readonly PoolKey[];
  readonly policy: PolicyDocument;
  readonly usage: readonly LimitUsage[];
  /** The time lock and fee cap per asset, `none` where the policy sets none. */
  readonly controls: PolicyControls;
}

async function describe(tx: StoreReads, pool: Pool, now: number): Promise<PoolDescription> {
  const document = await tx.getPolicy(pool.id, pool.policyVersion);
  if (!document) throw new StoreError('policy_missing', `policy version ${pool.policyVersion} of pool "${pool.id}" is missing`);
  const policy = await policyOf(tx, pool.id, pool.policyVersion);
  const usage: LimitUsage[] = [];
  for (const [key, assetPolicy] of Object.entries(policy.assets)) {
    // Withdrawals record token assets with the contract in EIP-55 form; a plan may write it in lowercase.
    const asset = key.toLowerCase().startsWith('erc20:') ? canonicalEthAsset(key) : key;
    for (const limit of assetPolicy.limits) {
      const entries = await tx.committedEntriesSince(pool.id, asset, now - limit.windowMs);
      // What the policy counts: also amounts approved before the window and not yet released.
      const used = (await velocityUsage(tx, pool.id, policy, asset, now)).find((u) => u.windowMs === limit.windowMs)?.committed ?? 0n;
      const first = entries[0];
      usage.push({
        asset,
        window: limit.window,
        max: limit.max,
        used,
        remaining: used >= limit.max ? 0n : limit.max - used,
        nextFreeAt: first ? first.committedAt + limit.windowMs : null,
      });
    }
  }
  return { pool, keys: await tx.keysOfPool(pool.id), policy: document, usage, controls: policyControls(policy, pool.chains) };
}

export async function describePool(ctx: ServiceContext, poolId: string): Promise<PoolDescription> {
  return ctx.store.read(async (r) => describe(r, await requirePool(r, poolId), ctx.now()));
}

export async function describePools(ctx: ServiceContext): Promise<PoolDescription[]> {
  return ctx.store.read(async (r) => {
    const out: PoolDescription[] = [];
    for (const pool of await r.listPools()) out.push(await describe(r, pool, ctx.now()));
    return out;
  });
}
