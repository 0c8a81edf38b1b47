/**
 * Device-scope governance inside the simulator (SPEC rule 8; common/device-changes.ts,
 * common/governance-message.ts scope `device`): the device's summary as governance messages name it,
 * the backup custodians it enrols at the ceremony, a governed change of those custodians
 * (GOVERN_DEVICE), and the admin quorum's authorisation of one backup export (EXPORT_BACKUP).
 *
 * Each function returns what the device is to commit (the new governance binding, with its sequence
 * counted) or a Refusal with the status to answer; device.ts commits. A custodian is who a backup share
 * may be encrypted to: the device never exports to a key it does not hold as a custodian, and never
 * without the admin quorum's approval of exactly these keys, this threshold, at its current sequence.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { Status } from '../common/sim-protocol.js';
import { keyFingerprint, memberSummaries, type DeviceSummary } from '../common/governance-message.js';
import {
  CUSTODIAN_ID,
  DeviceChangeError,
  MAX_CUSTODIANS,
  changeHash,
  custodianKeyProblem,
  custodiansAfter,
  exportBackupChange,
  parseCustodiansChange,
  type CustodianEntry,
  type CustodiansChange,
} from '../common/device-changes.js';
import { governanceRefusal, type ApprovalEvidence, type Refusal } from './quorum-check.js';
import type { GovernanceBinding } from './sealed-state.js';

export function isDeviceRefusal(value: object): value is Refusal {
  return 'status' in value && 'message' in value;
}

const refused = (message: string): Refusal => ({ status: Status.QUORUM_REFUSED, message });
const bad = (message: string): Refusal => ({ status: Status.BAD_REQUEST, message });

/** The device's governance as messages name it: admins, their quorum, the custodians (ids and key fingerprints). */
export function deviceSummary(governance: GovernanceBinding | undefined): DeviceSummary {
  return { admins: memberSummaries(governance?.admins ?? []), quorum: governance?.quorum ?? 0, custodians: memberSummaries(governance?.custodians ?? []) };
}

/** The custodians ENROLL_GOVERNANCE binds: at most MAX_CUSTODIANS, ids and keys distinct, each key a usable X25519 key; sorted by id. */
export function enrolledCustodians(list: readonly { readonly id: string; readonly publicKey: Uint8Array }[]): CustodianEntry[] | Refusal {
  if (list.length > MAX_CUSTODIANS) return bad(`custodians: at most ${MAX_CUSTODIANS}, got ${list.length}`);
  const ids = new Set<string>();
  const keys = new Set<string>();
  const out: CustodianEntry[] = [];
  for (const c of list) {
    if (!CUSTODIAN_ID.test(c.id)) return bad(`custodians: "${c.id.slice(0, 64)}" is not a custodian id`);
    const problem = custodianKeyProblem(c.publicKey);
    if (problem) return bad(`custodians: ${c.id}'s key is ${problem}`);
    const hex = bytesToHex(c.publicKey);
    if (ids.has(c.id) || keys.has(hex)) return bad(`custodians: ${c.id} or its key is listed twice`);
    ids.add(c.id);
    keys.add(hex);
    out.push({ id: c.id, publicKey: hex });
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export interface DeviceGovernanceInput {
  /** This device's id: a message for another device is refused. */
  readonly device: string;
  readonly governance: GovernanceBinding | undefined;
  readonly approvals: readonly ApprovalEvidence[];
}

/**
 * GOVERN_DEVICE: the governance binding once the custodians change is applied and counted (sequence
 * + 1), when the admin quorum approved exactly this change from exactly the summary and sequence the
 * device holds (a replayed or stale change: STALE_GOVERNANCE).
 */
export function governDevice(input: DeviceGovernanceInput, changeText: string): GovernanceBinding | Refusal {
  const governance = input.governance;
  if (!governance) return refused('no admins are enrolled in this device: its custodians cannot be changed');
  let change: CustodiansChange;
  try {
    change = parseCustodiansChange(JSON.parse(changeText) as unknown);
  } catch (error) {
    if (error instanceof SyntaxError) return bad('the change is not JSON');
    if (error instanceof DeviceChangeError) return bad(`custodians change: ${error.message}`);
    throw error;
  }
  const sequence = governance.sequence ?? 0;
  const before = deviceSummary(governance);
  const check = (after: DeviceSummary) =>
    governanceRefusal({ device: input.device, scope: 'device', action: 'custodians', change: changeHash(change), sequence, before, after, governance, approvals: input.approvals, required: governance.quorum });
  let next: CustodianEntry[];
  try {
    next = custodiansAfter(governance.custodians ?? [], change, (m) => m.publicKey, (e) => e);
  } catch (error) {
    if (!(error instanceof DeviceChangeError)) throw error;
    // A change that no longer applies is most often one applied already: its approvals are stale, and say so.
    const stale = check(before);
    return stale?.status === Status.STALE_GOVERNANCE ? stale : bad(`custodians change: ${error.message}`);
  }
  const after: GovernanceBinding = { ...governance, custodians: next, sequence: sequence + 1 };
  return check(deviceSummary(after)) ?? after;
}

/**
 * EXPORT_BACKUP: the governance binding with this export counted (sequence + 1), when every key is a
 * custodian the device holds (any of them, in the order the approvals name: a chosen subset may hold
 * the shares), the threshold splits them (2 ≤ M ≤ N ≤ MAX_CUSTODIANS), and the admin quorum approved
 * exactly these keys in this order and this threshold at the device's sequence. A key the device does
 * not hold as a custodian is refused before the approvals are read, named by its fingerprint.
 */
export function authorizeExport(input: DeviceGovernanceInput, threshold: number, custodians: readonly Uint8Array[]): GovernanceBinding | Refusal {
  const governance = input.governance;
  if (!governance) return refused('no admins are enrolled in this device: no backup can be approved');
  const enrolled = governance.custodians ?? [];
  if (enrolled.length === 0) return refused('no custodians are enrolled in this device: enrol them by a governed custodians change (custody custodians propose) before a backup');
  const keys = custodians.map((k) => bytesToHex(k));
  for (const key of keys) {
    if (!enrolled.some((c) => c.publicKey === key)) {
      return refused(`custodian key ${keyFingerprint(key)} (sha256 fingerprint) is not a custodian enrolled in this device: a backup is encrypted only to its custodians; enrol it by a governed custodians change first`);
    }
  }
  const twice = keys.find((k, i) => keys.indexOf(k) !== i);
  if (twice !== undefined) return bad(`custodian key ${keyFingerprint(twice)} is named twice: each custodian holds one share`);
  if (!Number.isInteger(threshold) || threshold < 2 || threshold > keys.length || keys.length > MAX_CUSTODIANS) {
    return bad(`a backup needs 2 ≤ threshold (${threshold}) ≤ custodians (${keys.length}) ≤ ${MAX_CUSTODIANS}`);
  }
  const summary = deviceSummary(governance);
  const sequence = governance.sequence ?? 0;
  const refusal = governanceRefusal({
    device: input.device,
    scope: 'device',
    action: 'export-backup',
    change: changeHash(exportBackupChange(keys, threshold)),
    sequence,
    before: summary,
    after: summary,
    governance,
    approvals: input.approvals,
    required: governance.quorum,
  });
  return refusal ?? { ...governance, sequence: sequence + 1 };
}
