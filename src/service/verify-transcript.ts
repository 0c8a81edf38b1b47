/**
 * Offline verification of a ceremony transcript (SPEC section 7, `custody ceremony verify`).
 *
 * A transcript is the gateway's record; only its devices' statements (common/attestation.ts) are the
 * devices' word. So every key the transcript lists on a device with an attestation key must carry
 * that device's statement of exactly this key: signed by the device's attestation key, naming this
 * pool, chain, handle and public key, listing the address, and stating the pool's approvers (by key
 * fingerprint) and threshold the transcript lists. Each device states its admins and quorum. The
 * simulator's id must derive from its attestation key, and `device` pins which device that must be.
 * With the plan: its hash, and that each pool's approvers, threshold and policy hash as the device
 * holds them, and the device's admins and quorum, are the plan's. Keys on a device without an
 * attestation key (Ledger, PKCS#11) are reported unattested: only their addresses are checked against
 * their public keys. Reports the first thing that does not match, in one line.
 */
import { createHash } from 'node:crypto';
import { z } from 'zod';
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalize } from 'json-canonicalize';
import { deviceAttestationProblem, keyAttestationProblem, simDeviceId, type DeviceStatement, type KeyStatement } from '../../common/attestation.js';
import { parseChainId } from '../../common/chain-id.js';
import { everyAddressOfKey } from '../../common/chains/key-addresses.js';
import { memberSummaries, type MemberSummary } from '../../common/governance-message.js';
import { baseThreshold, policyHash } from '../../common/policy/document.js';
import { isCustodyError } from '../../common/errors.js';
import { parseCeremonyPlan, type CeremonyPlan } from '../domain/ceremony-plan.js';
import { TRANSCRIPT_KIND, TRANSCRIPT_VERSION, type Transcript } from './run-ceremony.js';

export interface UnattestedKey {
  readonly pool: string;
  readonly chain: string;
  readonly device: string;
  readonly reason: string;
}

export interface TranscriptCheck {
  readonly ok: boolean;
  /** Keys checked (all of them when ok). */
  readonly keys: number;
  /** Keys whose device statement verified. */
  readonly attested: number;
  /** The devices whose attestation key signed the statements. */
  readonly attestedBy: readonly string[];
  readonly unattested: readonly UnattestedKey[];
  /** The first mismatch, when not ok. */
  readonly problem?: string;
}

export interface VerifyOptions {
  /** The plan the transcript was made from (its exact text, whose sha256 the transcript names). */
  readonly planText?: string;
  /** The id of the device that must have attested the keys (as recorded for the ceremony). */
  readonly device?: string;
}

const signed = z.strictObject({ statement: z.unknown(), signature: z.string() });
const transcriptSchema = z.strictObject({
  kind: z.literal(TRANSCRIPT_KIND),
  version: z.literal(TRANSCRIPT_VERSION),
  ceremonyId: z.string(),
  at: z.string(),
  planSha256: z.string(),
  planDevice: z.string(),
  devices: z.array(
    z.strictObject({
      id: z.string(),
      type: z.enum(['sim', 'ledger', 'pkcs11']),
      model: z.string(),
      firmware: z.string(),
      attestationPublicKey: z.string().regex(/^[0-9a-f]{64}$/, 'expected a 32-byte Ed25519 key in lowercase hex').nullable(),
      checksQuorum: z.boolean(),
      enforces: z.array(z.string()),
      attestation: signed.nullable(),
    }),
  ),
  approvers: z.array(z.strictObject({ id: z.string(), publicKey: z.string() })),
  admins: z.array(z.string()),
  adminQuorum: z.number(),
  pools: z.array(
    z.strictObject({
      id: z.string(),
      owner: z.string(),
      approvers: z.array(z.string()),
      threshold: z.number(),
      keys: z.array(
        z.strictObject({
          chain: z.string(),
          curve: z.string(),
          address: z.string(),
          publicKey: z.string(),
          device: z.string(),
          handle: z.string(),
          createdAt: z.string(),
          created: z.boolean(),
          attestation: signed.nullable(),
        }),
      ),
    }),
  ),
});

const NO_ATTESTATION_KEY: Readonly<Record<string, string>> = {
  ledger: 'a Ledger has no attestation key',
  pkcs11: 'a PKCS#11 token has no attestation key',
};

/** Two lists of members (id and key fingerprint) as one line. */
const members = (list: readonly MemberSummary[]): string => (list.length === 0 ? 'none' : list.map((m) => `${m.id} (${m.fingerprint.slice(0, 12)}…)`).join(', '));
const same = (a: unknown, b: unknown): boolean => canonicalize(a) === canonicalize(b);

export function verifyTranscript(value: unknown, options: VerifyOptions = {}): TranscriptCheck {
  let keys = 0;
  let attested = 0;
  const attestedBy = new Set<string>();
  const unattested: UnattestedKey[] = [];
  const fail = (problem: string): TranscriptCheck => ({ ok: false, keys, attested, attestedBy: [...attestedBy], unattested, problem });

  if (typeof value !== 'object' || value === null) return fail('the transcript is not a JSON object');
  const head = value as Record<string, unknown>;
  if (head.kind !== TRANSCRIPT_KIND) return fail(`not a ${TRANSCRIPT_KIND} document`);
  if (head.version === 1) {
    return fail('a version 1 transcript: its one signature was made by the retired ATTEST opcode over bytes the gateway chose, which proves nothing about the keys; re-run the ceremony (it keeps every key) for a version 2 transcript');
  }
  const parsed = transcriptSchema.safeParse(value);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return fail(`the transcript's ${issue?.path.map(String).join('.') || 'shape'} is not what a ceremony writes: ${issue?.message ?? 'invalid'}`);
  }
  const t = parsed.data as unknown as Transcript;

  let plan: CeremonyPlan | null = null;
  if (options.planText !== undefined) {
    const hash = createHash('sha256').update(options.planText, 'utf8').digest('hex');
    if (hash !== t.planSha256) return fail(`the plan's sha256 ${hash} is not the transcript's ${t.planSha256}`);
    try {
      plan = parseCeremonyPlan(JSON.parse(options.planText));
    } catch (error) {
      return fail(`the plan does not parse: ${isCustodyError(error) ? error.message : 'not JSON'}`);
    }
  }

  // The approvers and admins the transcript lists, by the fingerprints devices state.
  const approverKeys = new Map(t.approvers.map((a) => [a.id, a.publicKey]));
  const summaryOf = (ids: readonly string[], what: string): MemberSummary[] | string => {
    const missing = ids.find((id) => !approverKeys.has(id));
    if (missing !== undefined) return `${what} names "${missing}", who is not among the transcript's approvers`;
    return memberSummaries(ids.map((id) => ({ id, publicKey: approverKeys.get(id) as string })));
  };
  if (plan) {
    if (!same(sorted(t.approvers.map((a) => `${a.id} ${a.publicKey.toLowerCase()}`)), sorted(plan.approvers.map((a) => `${a.id} ${a.publicKey.toLowerCase()}`)))) {
      return fail("the transcript's approvers and their keys are not the plan's");
    }
    if (!same(t.admins, plan.admins) || t.adminQuorum !== plan.adminQuorum) return fail(`the transcript's admins (${t.admins.join(', ') || 'none'}, quorum ${t.adminQuorum}) are not the plan's`);
  }
  const admins = summaryOf(t.admins, 'admins');
  if (typeof admins === 'string') return fail(admins);

  // Devices: a simulator always has an attestation key, its id derives from it, and it states its governance.
  const devices = new Map<string, Transcript['devices'][number]>();
  for (const d of t.devices) {
    if (devices.has(d.id)) return fail(`device ${d.id} is listed twice`);
    devices.set(d.id, d);
    if (d.attestationPublicKey === null) {
      if (d.type === 'sim') return fail(`device ${d.id} is a simulator without an attestation key: every simulator has one`);
      if (d.attestation !== null) return fail(`device ${d.id} has no attestation key, yet the transcript carries a statement of it`);
      continue;
    }
    if (d.type === 'sim' && d.id !== simDeviceId(hexToBytes(d.attestationPublicKey))) {
      return fail(`device id ${d.id} is not derived from its attestation key (${simDeviceId(hexToBytes(d.attestationPublicKey))})`);
    }
    if (d.attestation === null) return fail(`device ${d.id} has an attestation key but the transcript carries no statement of its governance`);
    const problem = deviceAttestationProblem({ ...d, attestationPublicKey: d.attestationPublicKey }, d.attestation);
    if (problem) return fail(`device ${d.id}: ${problem}`);
    const governance = (d.attestation.statement as DeviceStatement).governance;
    if (t.admins.length > 0 && (!same(governance.admins, admins) || governance.quorum !== t.adminQuorum)) {
      return fail(`device ${d.id} holds admins ${members(governance.admins)} with quorum ${governance.quorum}, not the transcript's ${members(admins)} with quorum ${t.adminQuorum}`);
    }
  }
  const pinned = options.device === undefined ? undefined : devices.get(options.device);
  if (options.device !== undefined && (pinned === undefined || pinned.attestationPublicKey === null)) {
    const attesting = t.devices.filter((d) => d.attestationPublicKey !== null).map((d) => d.id);
    return fail(`the transcript is not attested by device ${options.device} (its attesting devices: ${attesting.join(', ') || 'none'})`);
  }

  // Keys: each on a listed device, its address its public key's, never shared (SPEC rule 1), attested where its device can.
  const seen = new Map<string, string>();
  const once = (what: string, value: string, where: string): string | null => {
    const earlier = seen.get(`${what} ${value}`);
    if (earlier !== undefined) return `${where}: ${what} ${value} is also listed for ${earlier}: no key is shared by two pools`;
    seen.set(`${what} ${value}`, where);
    return null;
  };
  const planned = new Map((plan?.pools ?? []).map((p) => [p.id, p]));
  const poolIds = new Set<string>();
  for (const pool of t.pools) {
    if (poolIds.has(pool.id)) return fail(`pool ${pool.id} is listed twice`);
    poolIds.add(pool.id);
    const approvers = summaryOf(pool.approvers, `pool ${pool.id}'s approvers`);
    if (typeof approvers === 'string') return fail(approvers);
    const fromPlan = planned.get(pool.id);
    if (plan) {
      if (!fromPlan) return fail(`pool ${pool.id} is not in the plan`);
      if (fromPlan.owner !== pool.owner || !same(fromPlan.approvers, pool.approvers) || baseThreshold(fromPlan.policy) !== pool.threshold) {
        return fail(`pool ${pool.id}: its owner, approvers or threshold in the transcript are not the plan's`);
      }
      const chains = pool.keys.map((k) => k.chain);
      if (!same(sorted(chains), sorted(fromPlan.chains))) return fail(`pool ${pool.id} has keys on ${chains.join(', ') || 'no chain'}, the plan names ${fromPlan.chains.join(', ')}`);
    }
    for (const key of pool.keys) {
      const where = `pool ${pool.id} ${key.chain}`;
      let addresses: string[];
      try {
        addresses = everyAddressOfKey(parseChainId(key.chain), key.publicKey.toLowerCase());
      } catch (error) {
        return fail(`${where}: ${error instanceof Error ? error.message : 'bad key'}`);
      }
      if (!addresses.includes(key.address)) return fail(`${where}: address ${key.address} is not an address of its public key (${addresses.join(' or ')})`);
      const shared = once('public key', key.publicKey.toLowerCase(), where) ?? once('address', key.address, where) ?? once('handle', `${key.device} ${key.handle}`, where);
      if (shared) return fail(shared);
      const device = devices.get(key.device);
      if (!device) return fail(`${where}: its device ${key.device} is not among the transcript's devices`);
      if (fromPlan && device.type !== fromPlan.device) return fail(`${where}: the key is on a ${device.type} device (${device.id}), the plan puts the pool on ${fromPlan.device}`);
      if (device.attestationPublicKey === null) {
        if (key.attestation !== null) return fail(`${where}: device ${device.id} has no attestation key, yet the key carries a statement`);
        unattested.push({ pool: pool.id, chain: key.chain, device: device.id, reason: NO_ATTESTATION_KEY[device.type] ?? 'its device has no attestation key' });
        keys += 1;
        continue;
      }
      if (key.attestation === null) return fail(`${where}: the key is on device ${device.id}, which has an attestation key, but carries no statement of it`);
      if (options.device !== undefined && device.id !== options.device) return fail(`${where}: attested by device ${device.id}, not by ${options.device}`);
      const problem = keyAttestationProblem({ ...device, attestationPublicKey: device.attestationPublicKey }, pool.id, key, key.attestation);
      if (problem) return fail(`${where}: ${problem}`);
      const state = (key.attestation.statement as KeyStatement).poolState;
      if (!same(state.approvers, approvers) || state.threshold !== pool.threshold) {
        return fail(`${where}: device ${device.id} binds the pool to ${members(state.approvers)} with threshold ${state.threshold}, not the transcript's ${members(approvers)} with threshold ${pool.threshold}`);
      }
      if (fromPlan && state.policy !== policyHash(fromPlan.policyDocument)) {
        return fail(`${where}: device ${device.id} holds policy version ${state.policyVersion} (sha256 ${state.policy}), not the plan's (${policyHash(fromPlan.policyDocument)})`);
      }
      attestedBy.add(device.id);
      attested += 1;
      keys += 1;
    }
  }
  if (plan) {
    const missing = plan.pools.find((p) => !poolIds.has(p.id));
    if (missing) return fail(`pool ${missing.id} of the plan is not in the transcript`);
  }
  if (keys > 0 && attested === 0) {
    return fail(`no key is attested: their devices (${[...new Set(unattested.map((u) => u.device))].join(', ')}) have no attestation key, so only their addresses could be checked against their public keys`);
  }
  return { ok: true, keys, attested, attestedBy: [...attestedBy], unattested };
}

function sorted(values: readonly string[]): string[] {
  return [...values].sort();
}
