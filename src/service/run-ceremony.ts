/**
 * Use case: a key ceremony from a plan (SPEC sections 7 and 9).
 *
 * Enroll the approvers, bind the admins (and, in the simulator, the plan's backup custodians:
 * docs/backup.md) in each device, bind each pool to its approvers and base threshold inside its device
 * (the plan's `device`, or the pool's own), generate each pool's key per chain inside that device,
 * record pools, policies and keys with their audit entries, and return a transcript signed by the
 * attestation key of the plan's device (when it has one). Safe to re-run: what exists is kept and
 * reported, never made twice.
 */
import { policyControls, policyGapWarnings } from '../policy/gaps.js';
import { createHash, randomUUID } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import { bytesToHex } from '@noble/hashes/utils.js';
import { curveForChain, parseChainId } from '../../common/chain-id.js';
import { type CeremonyPlan, type PlannedPool } from '../domain/ceremony-plan.js';
import { baseThreshold } from '../../common/policy/document.js';
import { ConflictError, ValidationError, isCustodyError } from '../../common/errors.js';
import { memberSummaries, sameSummary, type DeviceSummary } from '../../common/governance-message.js';
import type { CustodianEntry } from '../../common/device-changes.js';
import type { Pool, PoolKey } from '../domain/pool.js';
import type { DeviceInfo, DeviceKey, EnrolledApprover, SigningDevice } from '../devices/signing-device.js';
import type { DeviceSet } from '../devices/device-set.js';
import type { Store } from '../store/store.js';
import { addressForKey, assertDestination } from '../chains/addresses.js';

export const TRANSCRIPT_KIND = 'custody.ceremony-transcript';
/** The attestation key signs these bytes followed by the canonical transcript body. */
export const TRANSCRIPT_DOMAIN = 'custody.ceremony-transcript.v1\n';

export interface CeremonyKey {
  readonly chain: string;
  readonly curve: string;
  readonly address: string;
  readonly publicKey: string;
  /** Id of the device that holds the key. */
  readonly device: string;
  /** Key handle (simulator), BIP32 path (Ledger) or label (PKCS#11). */
  readonly handle: string;
  /** When the key was generated (ISO 8601), by this ceremony or an earlier one. */
  readonly createdAt: string;
  readonly created: boolean;
}

export interface CeremonyPool {
  readonly id: string;
  readonly owner: string;
  readonly approvers: readonly string[];
  readonly threshold: number;
  readonly keys: readonly CeremonyKey[];
}

export interface TranscriptBody {
  readonly kind: typeof TRANSCRIPT_KIND;
  readonly version: 1;
  readonly ceremonyId: string;
  readonly at: string;
  readonly planSha256: string;
  readonly device: DeviceInfo;
  readonly approvers: readonly EnrolledApprover[];
  /** The backup custodians the plan's device holds, when the plan named them and the device holds exactly them. */
  readonly custodians?: readonly CustodianEntry[];
  readonly pools: readonly CeremonyPool[];
}

/** Where the gateway keeps the custodians' public keys (the device holds them too, and is the one that decides). */
export const CUSTODIANS_SETTING = 'custodians';

export interface Transcript extends TranscriptBody {
  /** The plan device's attestation over the body; null when that device has no attestation key (Ledger, PKCS#11). */
  readonly attestation: { readonly publicKey: string; readonly signature: string } | null;
}

export interface CeremonyDeps {
  readonly store: Store;
  readonly devices: DeviceSet;
  readonly now: () => number;
  readonly progress: (line: string) => void;
}

export async function runCeremony(deps: CeremonyDeps, plan: CeremonyPlan, planText: string): Promise<Transcript> {
  const { store, devices, progress } = deps;
  const ceremonyId = randomUUID();
  validateAllowlists(plan);
  validateDevices(plan);

  // Every device the plan names answers before anything is written; the plan's own device attests.
  const types = [...new Set([plan.device, ...plan.pools.map((p) => p.device)])];
  const infos = new Map<string, DeviceInfo>();
  for (const type of types) {
    const info = await devices.get(type).info();
    if (info.type !== type) throw new ValidationError('device_mismatch', `the plan names device "${type}" but the configured ${type} device says it is "${info.type}" (${info.id})`);
    infos.set(type, info);
    progress(`device ${info.id} (${info.model} ${info.firmware}) unlocked`);
  }
  const info = infos.get(plan.device) as DeviceInfo;
  const device = devices.get(plan.device);

  // 1. Approvers and governance.
  await store.transaction(async (tx) => {
    for (const a of plan.approvers) {
      const existing = await tx.getApprover(a.id);
      if (existing && existing.publicKey !== a.publicKey) {
        throw new ConflictError('approver_conflict', `approver "${a.id}" is already enrolled with a different key; approver changes are governed, not re-planned`);
      }
      if (!existing) {
        await tx.insertApprover(a);
        await tx.appendAudit({ type: 'approver.enrolled', actor: 'ceremony', subject: `approver:${a.id}`, data: { publicKey: a.publicKey, ceremonyId } }, deps.now());
      }
    }
    const governance = JSON.stringify({ admins: plan.admins, adminQuorum: plan.adminQuorum });
    const current = await tx.getSetting('governance');
    if (current === null) {
      await tx.setSetting('governance', governance);
      await tx.appendAudit({ type: 'governance.set', actor: 'ceremony', subject: 'governance', data: { admins: plan.admins, adminQuorum: plan.adminQuorum, ceremonyId } }, deps.now());
    }
  });
  progress(`approvers enrolled: ${plan.approvers.map((a) => a.id).join(', ')}`);
  const custodiansHeld = new Set<string>();
  if (plan.admins.length > 0) {
    const admins = plan.admins.map((id) => plan.approvers.find((a) => a.id === id) as EnrolledApprover);
    for (const type of types) {
      const id = (infos.get(type) as DeviceInfo).id;
      // Only the simulator makes backups: the plan's custodians are enrolled there (the plan parser refuses them without one).
      const custodians = type === 'sim' ? plan.custodians : [];
      try {
        await devices.get(type).enrollGovernance(admins, plan.adminQuorum, custodians);
        progress(`admins bound in device ${id}: ${plan.admins.join(', ')}, quorum ${plan.adminQuorum}`);
      } catch (error) {
        if (!(isCustodyError(error) && error.kind === 'conflict')) throw error;
        progress(`admins already bound in device ${id}, keeping them`);
      }
      if (custodians.length > 0) {
        if (await holdsCustodians(devices.get(type), custodians)) {
          custodiansHeld.add(type);
          progress(`backup custodians bound in device ${id}: ${custodians.map((c) => c.id).join(', ')}`);
        } else {
          progress(`device ${id} holds other backup custodians than the plan's; they change only by the admin quorum (custody custodians propose)`);
        }
      }
    }
  }
  if (custodiansHeld.size > 0) {
    await store.transaction(async (tx) => {
      if ((await tx.getSetting(CUSTODIANS_SETTING)) !== null) return;
      await tx.setSetting(CUSTODIANS_SETTING, JSON.stringify(plan.custodians));
      await tx.appendAudit({ type: 'custodians.enrolled', actor: 'ceremony', subject: 'custodians', data: { custodians: plan.custodians, ceremonyId } }, deps.now());
    });
  }

  const deviceKeys = new Map<string, readonly DeviceKey[]>();
  for (const type of types) deviceKeys.set(type, await devices.get(type).listKeys());
  const pools: CeremonyPool[] = [];
  for (const p of plan.pools) {
    const approvers = p.approvers.map((id) => {
      const a = plan.approvers.find((x) => x.id === id);
      if (!a) throw new ValidationError('invalid_plan', `pool "${p.id}" names unknown approver "${id}"`);
      return a;
    });
    const threshold = baseThreshold(p.policy);
    for (const warning of policyGapWarnings(p.id, policyControls(p.policy, p.chains))) progress(warning);
    const existing = await store.transaction((tx) => tx.getPool(p.id));

    const poolDevice = devices.get(p.device);
    const poolInfo = infos.get(p.device) as DeviceInfo;
    if (!existing) {
      try {
        await poolDevice.enrollPool(p.id, approvers, threshold, p.policyDocument);
        progress(`pool ${p.id}: bound in device ${poolInfo.id} to ${approvers.length} approvers, threshold ${threshold}`);
      } catch (error) {
        // A ceremony that stopped after binding but before recording resumes with the device's binding.
        if (!(isCustodyError(error) && error.kind === 'conflict')) throw error;
        progress(`pool ${p.id}: already bound in the device (resuming an interrupted ceremony)`);
      }
      const pool: Pool = { id: p.id, owner: p.owner, chains: p.chains, status: 'active', approvers: p.approvers, policyVersion: 1, createdAt: deps.now() };
      await store.transaction(async (tx) => {
        await tx.insertPool(pool, p.policyDocument);
        await tx.appendAudit(
          {
            type: 'pool.created',
            actor: 'ceremony',
            subject: `pool:${p.id}`,
            data: { owner: p.owner, chains: p.chains, approvers: p.approvers, threshold, policyVersion: 1, policySha256: sha256Hex(canonicalize(p.policyDocument)), ceremonyId },
          },
          deps.now(),
        );
      });
    } else {
      progress(`pool ${p.id}: exists, keeping it`);
      const missing = p.chains.filter((c) => !existing.chains.includes(c));
      if (missing.length > 0) {
        throw new ConflictError('pool_conflict', `pool "${p.id}" exists without chains ${missing.join(', ')}; adding chains to a pool is not part of a re-run`);
      }
    }

    const keys: CeremonyKey[] = [];
    for (const chainId of p.chains) {
      keys.push(await ensureKey(deps, { device: poolDevice, info: poolInfo, keys: deviceKeys.get(p.device) ?? [] }, p, chainId, ceremonyId));
    }
    pools.push({ id: p.id, owner: p.owner, approvers: p.approvers, threshold, keys });
  }

  const body: TranscriptBody = {
    kind: TRANSCRIPT_KIND,
    version: 1,
    ceremonyId,
    at: new Date(deps.now()).toISOString(),
    planSha256: sha256Hex(planText),
    device: info,
    approvers: plan.approvers,
    ...(custodiansHeld.has(plan.device) ? { custodians: plan.custodians } : {}),
    pools,
  };
  let attestation: Transcript['attestation'] = null;
  if (info.attestationPublicKey !== null) {
    attestation = { publicKey: info.attestationPublicKey, signature: bytesToHex(await device.attest(transcriptStatement(body))) };
    progress('transcript signed by the device attestation key');
  } else {
    progress(`device ${info.id} has no attestation key: the transcript is not attested`);
  }
  await store.transaction((tx) =>
    tx.appendAudit({ type: 'ceremony.completed', actor: 'ceremony', subject: `ceremony:${ceremonyId}`, data: { planSha256: body.planSha256, transcriptSha256: sha256Hex(canonicalize(body)) } }, deps.now()),
  );
  return { ...body, attestation };
}

async function ensureKey(
  deps: CeremonyDeps,
  on: { readonly device: SigningDevice; readonly info: DeviceInfo; readonly keys: readonly DeviceKey[] },
  planned: PlannedPool,
  chainId: string,
  ceremonyId: string,
): Promise<CeremonyKey> {
  const poolId = planned.id;
  const chain = parseChainId(chainId);
  const stored = await deps.store.transaction((tx) => tx.getKey(poolId, chain.id));
  if (stored) {
    deps.progress(`pool ${poolId}: key on ${chain.id} exists (${stored.address}), not making a second one`);
    return { chain: chain.id, curve: stored.curve, address: stored.address, publicKey: stored.publicKey, device: stored.device, handle: stored.handle, createdAt: new Date(stored.createdAt).toISOString(), created: false };
  }
  const { info } = on;
  const onDevice = on.keys.find((k) => k.poolId === poolId && k.chain === chain.id);
  const generated = onDevice ?? (await on.device.generateKey(poolId, chain.id, curveForChain(chain.family)));
  const key: PoolKey = {
    poolId,
    chain: chain.id,
    curve: generated.curve,
    publicKey: generated.publicKey,
    address: addressForKey(chain, generated.publicKey, planned.bitcoinAddressType),
    device: info.id,
    handle: generated.handle,
    ceremonyId,
    createdAt: deps.now(),
  };
  await deps.store.transaction(async (tx) => {
    await tx.insertKey(key);
    await tx.appendAudit(
      { type: 'key.generated', actor: 'ceremony', subject: `pool:${poolId}`, data: { chain: key.chain, curve: key.curve, publicKey: key.publicKey, address: key.address, device: key.device, handle: key.handle, ceremonyId } },
      deps.now(),
    );
  });
  deps.progress(`pool ${poolId}: key generated on ${chain.id}: ${key.address}`);
  return { chain: key.chain, curve: key.curve, address: key.address, publicKey: key.publicKey, device: key.device, handle: key.handle, createdAt: new Date(key.createdAt).toISOString(), created: true };
}

/** True when the device's own governance names exactly these custodians (ids and key fingerprints). */
async function holdsCustodians(device: SigningDevice, custodians: readonly CustodianEntry[]): Promise<boolean> {
  const state = await device.governanceState('');
  if (state === null) return false;
  const held = JSON.parse(state.summary) as DeviceSummary;
  return sameSummary({ ...held, custodians: memberSummaries(custodians) }, held);
}

/** What a backend cannot hold, refused before anything is written. */
function validateDevices(plan: CeremonyPlan): void {
  for (const p of plan.pools) {
    for (const c of p.chains) {
      const family = parseChainId(c).family;
      if (p.device === 'ledger' && family !== 'eip155') {
        throw new ValidationError('invalid_plan', `pool "${p.id}": a Ledger signs with its Ethereum app, so it holds EVM keys only, not ${c}; put this pool on another device`);
      }
      if (p.device === 'pkcs11' && family === 'bip122' && p.bitcoinAddressType === 'p2tr') {
        throw new ValidationError('invalid_plan', `pool "${p.id}": PKCS#11 has no BIP-340 Schnorr mechanism, so a P2TR pool cannot live on a PKCS#11 token; use "bitcoinAddressType": "p2wpkh" or another device`);
      }
    }
  }
}

/** Every allowlist address must be valid on at least one of the pool's chains. */
function validateAllowlists(plan: CeremonyPlan): void {
  for (const p of plan.pools) {
    for (const entry of p.policy.allowlist ?? []) {
      const ok = p.chains.some((c) => {
        try {
          assertDestination(parseChainId(c), entry.address, 'allowlist');
          return true;
        } catch {
          return false;
        }
      });
      if (!ok) throw new ValidationError('invalid_plan', `pool "${p.id}": allowlist address "${entry.address}" is not valid on any of its chains (${p.chains.join(', ')})`);
    }
  }
}

export function transcriptStatement(body: TranscriptBody): Uint8Array {
  return new TextEncoder().encode(TRANSCRIPT_DOMAIN + canonicalize(body));
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
