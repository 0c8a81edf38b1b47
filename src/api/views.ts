/**
 * JSON views of domain objects for the API: bigints become decimal strings, times ISO 8601.
 * Nothing secret is ever in a view (token hashes, PINs, key material).
 */
import { DEVICE_RULES } from '../../common/sim-protocol.js';
import type { DeviceStatus } from '../devices/device-set.js';
import type { PoolKey } from '../domain/pool.js';
import type { Approval, Withdrawal } from '../domain/withdrawal.js';
import type { PoolDescription } from '../service/describe-pools.js';
import type { FreezeOutcome } from '../service/freeze-pool.js';

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

export function withdrawalView(w: Withdrawal, approvals: readonly Approval[]): Record<string, unknown> {
  return {
    id: w.id,
    pool: w.poolId,
    chain: w.chain,
    asset: w.asset,
    amount: w.amount.toString(),
    to: w.to,
    maxFee: w.maxFee.toString(),
    ...(w.contractCall !== null ? { contractCall: w.contractCall } : {}),
    state: w.state,
    reasons: w.reasons,
    requiredApprovals: w.requiredApprovals,
    approvals: approvals.map((a) => ({ approver: a.approverId, decision: a.decision, signature: a.signature, at: iso(a.createdAt) })),
    approvalMessage: w.approvalMessage,
    digest: w.digest,
    unsignedTx: w.unsignedTx,
    policyVersion: w.policyVersion,
    replaces: w.signOnceKey.includes(':r:') ? (w.signOnceKey.split(':r:').pop() as string) : null,
    createdAt: iso(w.createdAt),
    updatedAt: iso(w.updatedAt),
    notBefore: iso(w.notBefore),
    expiresAt: iso(w.expiresAt),
    ...(w.signedTx !== null ? { signedTx: w.signedTx, txHash: w.txHash } : {}),
  };
}

export function poolView(d: PoolDescription): Record<string, unknown> {
  return {
    id: d.pool.id,
    owner: d.pool.owner,
    status: d.pool.status,
    chains: d.pool.chains,
    approvers: d.pool.approvers,
    policyVersion: d.pool.policyVersion,
    policy: d.policy,
    keys: d.keys.map((k) => ({ chain: k.chain, curve: k.curve, address: k.address, publicKey: k.publicKey, device: k.device })),
    usage: d.usage.map((u) => ({
      asset: u.asset,
      window: u.window,
      max: u.max.toString(),
      used: u.used.toString(),
      remaining: u.remaining.toString(),
      nextFreeAt: iso(u.nextFreeAt),
    })),
    controls: d.controls,
  };
}

/** What a freeze reached: the gateway always; each device holding the pool's keys only with the admin's signed freeze message. */
export function freezeView(f: FreezeOutcome): Record<string, unknown> {
  return { signed: f.signed, deviceFrozen: f.deviceFrozen, devices: f.devices.map((d) => ({ device: d.device, frozen: d.frozen, reason: d.reason })) };
}

/**
 * A configured device: its state and identity, the rules it enforces itself (its INFO's list of
 * common/sim-protocol.ts DEVICE_RULES) and, derived from that list, the rules that rest on the gateway
 * alone for the pools whose keys it holds (docs/threat-model.md); a device that does not answer
 * reports neither, only its error. Then the pool keys it holds.
 */
export function deviceView(d: DeviceStatus, keys: readonly PoolKey[]): Record<string, unknown> {
  return {
    type: d.type,
    status: d.status,
    ...(d.info
      ? {
          id: d.info.id,
          model: d.info.model,
          firmware: d.info.firmware,
          checksQuorum: d.info.checksQuorum,
          attestationPublicKey: d.info.attestationPublicKey,
          enforces: DEVICE_RULES.filter((r) => d.info?.enforces.includes(r)),
          gatewayOnly: DEVICE_RULES.filter((r) => !d.info?.enforces.includes(r)),
        }
      : { error: d.error }),
    keys: keys.map((k) => ({ pool: k.poolId, chain: k.chain, address: k.address, device: k.device, handle: k.handle })),
  };
}
