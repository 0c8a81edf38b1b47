/**
 * Use case: break glass. Any single admin freezes a pool at once (SPEC section 4): signing stops,
 * even for approved requests, until the pool is unfrozen by the admin quorum.
 *
 * The gateway's freeze (the store's pool status) needs only the admin's token. To freeze the device
 * too, so that a compromised gateway cannot get the pool's keys to sign either (SPEC rule 2), the admin
 * also signs the pool's freeze message (common/governance-message.ts, action `freeze`): the device
 * holding the pool's keys checks that one enrolled admin signed it for exactly the state and sequence
 * it holds, and from then refuses SIGN with FROZEN until a governed unfreeze. The store is frozen
 * first, in its own transaction with its audit entry, so the gateway stops claiming at once whatever
 * the device answers; what each device answered is audited after.
 */
import {
  canonicalGovernanceMessage,
  GOVERNANCE_KIND,
  GOVERNANCE_VERSION,
  sha256Canonical,
  type PoolGovernanceMessage,
} from '../../common/governance-message.js';
import { AuthError, ValidationError } from '../../common/errors.js';
import type { Pool } from '../domain/pool.js';
import type { Principal } from '../domain/principal.js';
import type { ApprovalEvidence } from '../devices/signing-device.js';
import type { StoreReads } from '../store/store.js';
import { assertSignatureHex, verifyApproverSignature } from '../quorum/approver-signature.js';
import { requirePool, type ServiceContext } from './context.js';
import { heldGovernance, poolGovernanceState, readGovernance, type HeldGovernance } from './governance.js';

/** What a freeze message names as its change: a freeze changes nothing but the pool's status. */
export const FREEZE_CHANGE = sha256Canonical({ action: 'freeze' });

/** What one device holding the pool's keys did with the freeze. */
export interface DeviceFreeze {
  /** The device id the pool's keys name. */
  readonly device: string;
  readonly frozen: boolean;
  /** Why it was not frozen; null when it was. */
  readonly reason: string | null;
}

export interface FreezeOutcome {
  readonly pool: Pool;
  /** True when the admin's signed freeze message came with the freeze. */
  readonly signed: boolean;
  /** True only when every device holding the pool's keys froze the pool itself. */
  readonly deviceFrozen: boolean;
  readonly devices: readonly DeviceFreeze[];
}

/**
 * The exact text an admin signs to freeze the pool in its device, built from the store's state: the
 * pool's summary as before and after, its device and the governance sequence that device holds. Deterministic: the same
 * state gives the same text (proposal id `freeze-<pool>-<sequence>`), so it can be read, signed offline
 * and posted. Null when no admins are enrolled (no device would accept it).
 */
export async function freezeMessageOf(tx: StoreReads, pool: Pool, held: HeldGovernance | null): Promise<string | null> {
  if ((await tx.getSetting('governance')) === null) return null;
  const state = await poolGovernanceState(tx, pool, held);
  const message: PoolGovernanceMessage = {
    kind: GOVERNANCE_KIND,
    version: GOVERNANCE_VERSION,
    proposalId: `freeze-${pool.id}-${state.sequence}`,
    device: state.device,
    scope: 'pool',
    pool: pool.id,
    action: 'freeze',
    sequence: state.sequence,
    before: state.summary,
    after: state.summary,
    change: FREEZE_CHANGE,
    decision: 'approve',
  };
  return canonicalGovernanceMessage(message);
}

export async function poolFreezeMessage(ctx: ServiceContext, poolId: string): Promise<string | null> {
  const held = await heldGovernance(ctx, poolId);
  return ctx.store.read(async (r) => freezeMessageOf(r, await requirePool(r, poolId), held));
}

const NOT_SIGNED = 'no signed freeze message came with the freeze: only the gateway is frozen';

/**
 * Freezes the pool in the store at once; with `signature` (the calling admin's, over the pool's
 * current freeze message), also in every device that holds the pool's keys. A signature that does not
 * verify refuses the whole call (400), freezing nothing: the admin may freeze without one.
 */
export async function freezePool(ctx: ServiceContext, admin: Principal, poolId: string, reason: string | null, signature: string | null = null): Promise<FreezeOutcome> {
  const signatureHex = signature === null ? null : assertSignatureHex(signature, 'signature');
  const held = signatureHex === null ? null : await heldGovernance(ctx, poolId);
  const done = await ctx.store.transaction(async (tx) => {
    const pool = await requirePool(tx, poolId);
    let evidence: ApprovalEvidence | null = null;
    if (signatureHex !== null) {
      const governance = await readGovernance(tx);
      if (!governance.admins.includes(admin.name)) throw new AuthError('forbidden', 'not_an_admin', `"${admin.name}" is not one of the admins of the ceremony: a device accepts only an enrolled admin's freeze`);
      const key = await tx.getApprover(admin.name);
      if (!key) throw new AuthError('forbidden', 'not_an_admin', `"${admin.name}" has no enrolled key`);
      const message = (await freezeMessageOf(tx, pool, held)) as string;
      if (!verifyApproverSignature(key.publicKey, message, signatureHex)) {
        throw new ValidationError(
          'bad_freeze_signature',
          `"signature" does not verify with ${admin.name}'s key over pool ${pool.id}'s current freezeMessage (GET /v1/pools/${pool.id}); a change applied since it was read changes the message: read it again`,
        );
      }
      evidence = { publicKey: key.publicKey, message, signature: signatureHex };
    }
    const devices = [...new Set((await tx.keysOfPool(pool.id)).map((k) => k.device))];
    if (pool.status !== 'frozen') {
      await tx.setPoolStatus(pool.id, 'frozen');
      await tx.appendAudit(
        {
          type: 'pool.frozen',
          actor: admin.name,
          subject: `pool:${pool.id}`,
          data: { reason, signed: evidence !== null, ...(evidence !== null ? { messageSha256: sha256Canonical(evidence.message), signature: evidence.signature } : {}) },
        },
        ctx.now(),
      );
      ctx.log.warn({ pool: pool.id, admin: admin.name, signed: evidence !== null }, 'pool frozen');
    }
    return { pool: { ...pool, status: 'frozen' as const }, evidence, devices };
  });
  const { pool, evidence, devices } = done;
  if (evidence === null) return { pool, signed: false, deviceFrozen: false, devices: devices.map((device) => ({ device, frozen: false, reason: NOT_SIGNED })) };

  const results: DeviceFreeze[] = [];
  for (const device of devices) results.push(await freezeOnDevice(ctx, device, pool.id, evidence));
  await ctx.store.transaction(async (tx) =>
    tx.appendAudit({ type: 'pool.device_freeze', actor: admin.name, subject: `pool:${pool.id}`, data: { messageSha256: sha256Canonical(evidence.message), devices: results } }, ctx.now()),
  );
  const deviceFrozen = results.length > 0 && results.every((r) => r.frozen);
  if (deviceFrozen) ctx.log.warn({ pool: pool.id, devices: results }, 'pool frozen in its device');
  else ctx.log.error({ pool: pool.id, devices: results }, 'the pool is frozen in the gateway but not in every device that holds its keys');
  return { pool, signed: true, deviceFrozen, devices: results };
}

/** Forwards the signed freeze to one device; a device that holds no freeze, refuses or does not answer is reported, not thrown. */
async function freezeOnDevice(ctx: ServiceContext, deviceId: string, poolId: string, evidence: ApprovalEvidence): Promise<DeviceFreeze> {
  try {
    const device = ctx.devices.forKey({ device: deviceId });
    if (!(await device.info()).enforces.includes('freeze')) {
      return { device: deviceId, frozen: false, reason: 'this device holds no freeze: only the gateway\'s freeze stops it signing' };
    }
    await device.freezePool(poolId, evidence);
    return { device: deviceId, frozen: true, reason: null };
  } catch (error) {
    return { device: deviceId, frozen: false, reason: `the device did not freeze the pool: ${error instanceof Error ? error.message : String(error)}` };
  }
}
