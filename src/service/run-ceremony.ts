/**
 * Use case: a key ceremony from a plan (SPEC sections 7 and 9).
 *
 * Enroll the approvers, bind the admins (and, in the simulator, the plan's backup custodians:
 * docs/backup.md) in each device, bind each pool to its approvers and base threshold inside its device
 * (the plan's `device`, or the pool's own), generate each pool's key per chain inside that device,
 * record pools, policies and keys with their audit entries, and return the transcript: per key, the
 * statement its device made of it and of its pool, signed by the device's attestation key, and per
 * device its statement of its governance (common/attestation.ts). The gateway writes no statement a
 * device signs; it checks each one against what it recorded before it puts it in the transcript. A
 * device without an attestation key (Ledger, PKCS#11) leaves its keys unattested. Safe to re-run: what
 * exists is kept and reported, never made twice, and attested again.
 */
import { policyControls, policyGapWarnings } from '../policy/gaps.js';
import { createHash, randomUUID } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import { curveForChain, parseChainId } from '../../common/chain-id.js';
import { type CeremonyPlan, type PlannedPool } from '../domain/ceremony-plan.js';
import { baseThreshold, policyHash } from '../../common/policy/document.js';
import { ConflictError, DeviceError, ValidationError, isCustodyError } from '../../common/errors.js';
import { memberSummaries, sameSummary, type DeviceSummary, type PoolSummary } from '../../common/governance-message.js';
import type { CustodianEntry } from '../../common/device-changes.js';
import type { Pool, PoolKey } from '../domain/pool.js';
import type { DeviceInfo, DeviceKey, EnrolledApprover, SigningDevice } from '../devices/signing-device.js';
import { deviceAttestationProblem, keyAttestationProblem, type DeviceStatement, type KeyStatement, type SignedStatement } from '../../common/attestation.js';
import type { DeviceSet } from '../devices/device-set.js';
import type { Store } from '../store/store.js';
import { addressForKey, assertDestination } from '../chains/addresses.js';

export const TRANSCRIPT_KIND = 'custody.ceremony-transcript';
/**
 * Version 2: every key carries its device's own statement. Version 1 carried one signature over the
 * whole transcript made by the retired ATTEST opcode, which signed whatever bytes the gateway sent.
 */
export const TRANSCRIPT_VERSION = 2;

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
  /** The device's statement of this key and its pool, signed by its attestation key; null when the device has none (Ledger, PKCS#11): the key is unattested. */
  readonly attestation: SignedStatement<KeyStatement> | null;
}

export interface CeremonyPool {
  readonly id: string;
  readonly owner: string;
  readonly approvers: readonly string[];
  readonly threshold: number;
  readonly keys: readonly CeremonyKey[];
}

/** Where the gateway keeps the custodians' public keys (the device holds them too, and is the one that decides). */
export const CUSTODIANS_SETTING = 'custodians';

/** A device the ceremony used, as it described itself. */
export interface TranscriptDevice extends DeviceInfo {
  /** Its statement of its governance (admins, quorum, custodians) and of what it enforces; null when it has no attestation key. */
  readonly attestation: SignedStatement<DeviceStatement> | null;
}

export interface Transcript {
  readonly kind: typeof TRANSCRIPT_KIND;
  readonly version: typeof TRANSCRIPT_VERSION;
  readonly ceremonyId: string;
  /** The gateway's clock when the transcript was written; each statement carries its device's clock. */
  readonly at: string;
  readonly planSha256: string;
  /** The plan's device type. */
  readonly planDevice: string;
  readonly devices: readonly TranscriptDevice[];
  readonly approvers: readonly EnrolledApprover[];
  readonly admins: readonly string[];
  readonly adminQuorum: number;
  /** The backup custodians, when the plan's device holds exactly them. */
  readonly custodians?: readonly CustodianEntry[];
  readonly pools: readonly CeremonyPool[];
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
        // A ceremony that stopped after binding but before recording resumes with the device's binding,
        // but only if it is the plan's: a pool bound beforehand by someone else is not taken over.
        if (!(isCustodyError(error) && error.kind === 'conflict')) throw error;
        await assertPlannedBinding(poolDevice, poolInfo, p, approvers, threshold);
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

  // Each device states its governance after the ceremony bound it; a key's statement was made when it was recorded.
  const transcriptDevices: TranscriptDevice[] = [];
  for (const type of types) {
    const deviceInfo = infos.get(type) as DeviceInfo;
    transcriptDevices.push({ ...deviceInfo, attestation: await attestDevice(devices.get(type), deviceInfo) });
  }
  const all = pools.flatMap((p) => p.keys);
  const unattested = all.filter((k) => k.attestation === null);
  const attesting = transcriptDevices.filter((d) => d.attestation !== null).map((d) => d.id);
  if (all.length > unattested.length) progress(`${all.length - unattested.length} keys attested by device ${attesting.join(', ')}`);
  if (unattested.length > 0) {
    const without = [...new Set(unattested.map((k) => k.device))];
    progress(`${unattested.length} keys unattested: device ${without.join(', ')} has no attestation key, so only their addresses can be checked against their public keys`);
  }
  const transcript: Transcript = {
    kind: TRANSCRIPT_KIND,
    version: TRANSCRIPT_VERSION,
    ceremonyId,
    at: new Date(deps.now()).toISOString(),
    planSha256: sha256Hex(planText),
    planDevice: plan.device,
    devices: transcriptDevices,
    approvers: plan.approvers,
    ...(custodiansHeld.has(plan.device) ? { custodians: plan.custodians } : {}),
    admins: plan.admins,
    adminQuorum: plan.adminQuorum,
    pools,
  };
  await store.transaction((tx) =>
    tx.appendAudit({ type: 'ceremony.completed', actor: 'ceremony', subject: `ceremony:${ceremonyId}`, data: { planSha256: transcript.planSha256, transcriptSha256: sha256Hex(canonicalize(transcript)) } }, deps.now()),
  );
  return transcript;
}

/**
 * Refuses to resume with a pool the device holds bound otherwise than the plan says (other approvers,
 * threshold or policy) and never changed by governance since: it was not bound by this plan's ceremony.
 * A device that holds no governance (Ledger, PKCS#11) holds no binding to compare.
 */
async function assertPlannedBinding(device: SigningDevice, info: DeviceInfo, planned: PlannedPool, approvers: readonly EnrolledApprover[], threshold: number): Promise<void> {
  const held = await device.governanceState(planned.id);
  if (held === null || held.sequence > 0) return;
  const planSummary: PoolSummary = { approvers: memberSummaries(approvers), threshold, policy: policyHash(planned.policyDocument), policyVersion: 1 };
  if (held.summary !== canonicalize(planSummary)) {
    const summary = JSON.parse(held.summary) as PoolSummary;
    throw new ConflictError(
      'pool_bound_otherwise',
      `pool ${planned.id} is already bound in device ${info.id} to ${summary.approvers.map((a) => a.id).join(', ')} with threshold ${summary.threshold} and policy ${summary.policy.slice(0, 12)}…, not as the plan binds it (${planned.approvers.join(', ')}, threshold ${threshold}, policy ${planSummary.policy.slice(0, 12)}…): it was bound outside this ceremony; use another pool id or device`,
    );
  }
}

/** The device's statement of its governance, checked before it is kept; null for a device with no attestation key. */
async function attestDevice(device: SigningDevice, info: DeviceInfo): Promise<SignedStatement<DeviceStatement> | null> {
  const attestationPublicKey = info.attestationPublicKey;
  if (attestationPublicKey === null || !device.attestDevice) return null;
  const signed = await device.attestDevice();
  const problem = deviceAttestationProblem({ ...info, attestationPublicKey }, signed);
  if (problem) throw new DeviceError('internal', 'attestation_mismatch', `device ${info.id}: ${problem}`);
  return signed;
}

/** The device's statement of a key it holds, checked against what the ceremony recorded; null for a device with no attestation key. */
async function attestKey(device: SigningDevice, info: DeviceInfo, poolId: string, key: Omit<CeremonyKey, 'attestation'>): Promise<SignedStatement<KeyStatement> | null> {
  const attestationPublicKey = info.attestationPublicKey;
  if (attestationPublicKey === null || !device.attestKey) return null;
  if (key.device !== info.id) {
    throw new ConflictError('key_on_other_device', `pool ${poolId}: its key on ${key.chain} is held by device ${key.device}, not by the configured ${info.type} device ${info.id}, which cannot attest it`);
  }
  const signed = await device.attestKey(key.handle);
  const problem = keyAttestationProblem({ ...info, attestationPublicKey }, poolId, key, signed);
  if (problem) throw new DeviceError('internal', 'attestation_mismatch', `pool ${poolId} ${key.chain}: ${problem}`);
  return signed;
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
    const kept = { chain: chain.id, curve: stored.curve, address: stored.address, publicKey: stored.publicKey, device: stored.device, handle: stored.handle, createdAt: new Date(stored.createdAt).toISOString(), created: false };
    return { ...kept, attestation: await attestKey(on.device, on.info, poolId, kept) };
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
  const made = { chain: key.chain, curve: key.curve, address: key.address, publicKey: key.publicKey, device: key.device, handle: key.handle, createdAt: new Date(key.createdAt).toISOString(), created: true };
  return { ...made, attestation: await attestKey(on.device, info, poolId, made) };
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

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}
