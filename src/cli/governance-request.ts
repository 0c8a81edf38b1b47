/**
 * Device governance request files (docs/backup.md): the offline, file-based way admins approve what
 * the simulator itself governs (common/device-changes.ts), a backup export or a change of the backup
 * custodians. `custody backup propose` / `custody custodians propose` read the device's own governance
 * state (GOVERNANCE_STATE for the device) and write a request; each admin runs `custody approve
 * --governance FILE`, which checks the request, shows it, and appends their signature; `custody backup
 * create --request FILE` / `custody custodians apply --request FILE` send the change and the signatures
 * to the device, which checks them again against what it holds (hsm-sim/device-governance.ts).
 *
 * The file holds the exact governance message to sign (RFC 8785 text, common/governance-message.ts,
 * scope `device`), the change it names by hash, and the admins' signatures over the message:
 *
 *   {"kind": "custody.governance-request", "version": 1, "message": "<canonical text>",
 *    "change": {…}, "approvals": [{"admin", "publicKey", "signature"}]}
 *
 * Nothing in the file is trusted by the approver's client: it recomputes the change's hash, and the
 * custodians' ids and fingerprints it shows come from the message it signs.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync, renameSync, writeFileSync } from 'node:fs';
import {
  GOVERNANCE_KIND,
  GOVERNANCE_VERSION,
  canonicalGovernanceMessage,
  keyFingerprint,
  parseGovernanceMessage,
  sameSummary,
  type DeviceGovernanceMessage,
  type DeviceSummary,
  type MemberSummary,
} from '../../common/governance-message.js';
import {
  DeviceChangeError,
  MAX_CUSTODIANS,
  changeHash,
  custodiansAfter,
  parseCustodiansChange,
  parseExportBackupChange,
  type CustodiansChange,
  type CustodianEntry,
  type DeviceChange,
  type ExportBackupChange,
} from '../../common/device-changes.js';
import { ConflictError, CustodyError, ValidationError, isCustodyError } from '../../common/errors.js';
import { loadConfig, requireHsmPin } from '../config.js';
import { createSimDevice } from '../devices/sim/client.js';
import type { ApprovalEvidence } from '../devices/signing-device.js';
import { CUSTODIANS_SETTING } from '../service/run-ceremony.js';
import type { Store } from '../store/store.js';

export const REQUEST_KIND = 'custody.governance-request';

export interface RequestApproval {
  /** The admin's id, as the message's device summary names the key. */
  readonly admin: string;
  readonly publicKey: string;
  readonly signature: string;
}

export interface GovernanceRequestFile {
  readonly kind: typeof REQUEST_KIND;
  readonly version: 1;
  /** The governance message every admin signs, verbatim. */
  readonly message: string;
  readonly change: DeviceChange;
  readonly approvals: readonly RequestApproval[];
}

/** A request read and checked: the message it carries and its change, parsed. */
export interface CheckedRequest {
  readonly file: GovernanceRequestFile;
  readonly message: DeviceGovernanceMessage;
  readonly change: DeviceChange;
}

/** The device's own governance: its id, what a device-scope message must name as `before`, and its sequence. */
export interface DeviceGovernanceState {
  readonly device: string;
  readonly summary: DeviceSummary;
  readonly sequence: number;
}

/** Reads the device's governance state from a device that holds one (the simulator). */
export async function readDeviceGovernance(device: {
  info(): Promise<{ readonly id: string }>;
  governanceState(poolId: string): Promise<{ readonly summary: string; readonly sequence: number } | null>;
}): Promise<DeviceGovernanceState> {
  const id = (await device.info()).id;
  const state = await device.governanceState('');
  if (state === null) throw new ValidationError('no_device_governance', `device ${id} holds no governance of its own; backups and custodians are governed in the simulator`);
  return { device: id, summary: JSON.parse(state.summary) as DeviceSummary, sequence: state.sequence };
}

/** The message of a new request for `change`, from the state the device holds now. */
export function proposeRequest(state: DeviceGovernanceState, change: DeviceChange, after: DeviceSummary): GovernanceRequestFile {
  if (state.summary.admins.length === 0) {
    throw new ValidationError('no_admins', `device ${state.device} has no admins enrolled: nobody can approve; a ceremony plan with admins enrols them`);
  }
  const message: DeviceGovernanceMessage = {
    kind: GOVERNANCE_KIND,
    version: GOVERNANCE_VERSION,
    proposalId: randomUUID(),
    device: state.device,
    scope: 'device',
    action: change.action,
    sequence: state.sequence,
    before: state.summary,
    after,
    change: changeHash(change),
    decision: 'approve',
  };
  return { kind: REQUEST_KIND, version: 1, message: canonicalGovernanceMessage(message), change, approvals: [] };
}

function refuse(why: string): never {
  throw new ValidationError('invalid_request', `refusing this request: ${why}; nothing was signed or sent`);
}

function summaryLine(m: MemberSummary): string {
  return `${m.id} (key fingerprint ${m.fingerprint.slice(0, 16)}…)`;
}

/**
 * Reads and checks a request file: the message is a canonical device-scope governance message with
 * decision approve, its `change` is the hash of the file's change, and the change is one the device
 * applies (custodians: the message's `after` is its `before` with the change applied; export: every key
 * is one of the custodians its `before` names, the threshold splits them, nothing else changes).
 */
export function readRequest(path: string): CheckedRequest {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ValidationError('bad_file', `cannot read the request ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const r = value as Partial<GovernanceRequestFile>;
  if (typeof r !== 'object' || r === null || r.kind !== REQUEST_KIND || r.version !== 1 || typeof r.message !== 'string' || !Array.isArray(r.approvals)) {
    throw new ValidationError('bad_file', `${path} is not a ${REQUEST_KIND} version 1 file (made by custody backup propose or custody custodians propose)`);
  }
  let message: DeviceGovernanceMessage;
  try {
    const parsed = parseGovernanceMessage(r.message);
    if (parsed.scope !== 'device') refuse(`the message is for pool ${parsed.pool}, not the device itself`);
    message = parsed;
  } catch (error) {
    if (isCustodyError(error)) throw error;
    refuse(error instanceof Error ? error.message : String(error));
  }
  if (message.decision !== 'approve') refuse(`the message's decision is "${message.decision}"`);
  let change: DeviceChange;
  try {
    change = message.action === 'custodians' ? parseCustodiansChange(r.change) : parseExportBackupChange(r.change);
  } catch (error) {
    refuse(`its change is not a ${message.action} change: ${error instanceof DeviceChangeError ? error.message : String(error)}`);
  }
  if (changeHash(change) !== message.change) refuse('the message does not commit to the change in the file (its "change" is another hash)');
  if (change.action === 'export-backup') checkExport(message, change);
  else checkCustodiansChange(message, change);
  for (const [i, a] of r.approvals.entries()) {
    if (typeof a !== 'object' || a === null || typeof a.publicKey !== 'string' || typeof a.signature !== 'string' || typeof a.admin !== 'string') {
      throw new ValidationError('bad_file', `${path}: approvals[${i}] must be {admin, publicKey, signature}`);
    }
  }
  return { file: r as GovernanceRequestFile, message, change };
}

function checkExport(message: DeviceGovernanceMessage, change: ExportBackupChange): void {
  if (!sameSummary(message.before, message.after)) refuse('an export must change nothing the device holds, but the message states another "after" than "before"');
  for (const key of change.custodians) {
    if (!message.before.custodians.some((c) => c.fingerprint === keyFingerprint(key))) {
      refuse(`custodian key ${keyFingerprint(key)} (fingerprint) is not one of the device's custodians the message names`);
    }
  }
  if (new Set(change.custodians).size !== change.custodians.length) refuse('a custodian key is named twice');
  if (change.threshold < 2 || change.threshold > change.custodians.length || change.custodians.length > MAX_CUSTODIANS) {
    refuse(`a backup needs 2 ≤ threshold (${change.threshold}) ≤ custodians (${change.custodians.length}) ≤ ${MAX_CUSTODIANS}`);
  }
}

function checkCustodiansChange(message: DeviceGovernanceMessage, change: CustodiansChange): void {
  let after: MemberSummary[];
  try {
    after = custodiansAfter(message.before.custodians, change, (m) => m.fingerprint, (e) => ({ id: e.id, fingerprint: keyFingerprint(e.publicKey) }));
  } catch (error) {
    refuse(error instanceof DeviceChangeError ? error.message : String(error));
  }
  const expected: DeviceSummary = { ...message.before, custodians: after };
  if (!sameSummary(expected, message.after)) refuse('the message\'s "after" is not its "before" with this change applied');
}

/** The custodians an export names, in share order, by the id and fingerprint the message's device summary gives them. */
export function exportCustodians(checked: CheckedRequest): MemberSummary[] {
  if (checked.change.action !== 'export-backup') return [];
  return checked.change.custodians.map((key) => checked.message.before.custodians.find((c) => c.fingerprint === keyFingerprint(key)) as MemberSummary);
}

/** The admin an approval key is, by the message's summary; null for a key that is no admin. */
export function adminOf(message: DeviceGovernanceMessage, publicKey: string): MemberSummary | null {
  return message.before.admins.find((a) => a.fingerprint === keyFingerprint(publicKey)) ?? null;
}

type Row = readonly [string, string];

/** What an admin reads before approving: sections of a heading and label/value rows (approve.ts renders them). */
export function requestScreen(checked: CheckedRequest): (string | readonly Row[])[] {
  const { message, change } = checked;
  const admins = `${message.before.quorum} of ${message.before.admins.map((a) => a.id).join(', ')}`;
  const head: Row[] = [
    ['device', `${message.device} (device governance sequence ${message.sequence})`],
    ['admin quorum', admins],
  ];
  if (change.action === 'export-backup') {
    const custodians = exportCustodians(checked);
    return [
      `backup export ${message.proposalId}: the device's whole state (every pool key) leaves it encrypted under a fresh key split among these custodians`,
      [
        ...head,
        ['threshold', `any ${change.threshold} of the ${custodians.length} shares restore every key`],
        ...custodians.map((c, i): Row => [`share ${i + 1}`, `custodian ${summaryLine(c)}, encrypted to key ${change.custodians[i] as string}`]),
      ],
      'the export counts once: these approvals never make a second backup',
    ];
  }
  const rows: Row[] = [...head];
  for (const a of change.add) rows.push(['+ custodian', `${a.id} (key ${a.publicKey}, fingerprint ${keyFingerprint(a.publicKey).slice(0, 16)}…)`]);
  for (const id of change.remove) {
    const was = message.before.custodians.find((c) => c.id === id);
    rows.push(['- custodian', was ? summaryLine(was) : id]);
  }
  rows.push(['custodians after', message.after.custodians.length === 0 ? 'none (no backup can be made)' : message.after.custodians.map((c) => c.id).join(', ')]);
  return [`custodians change ${message.proposalId}: who the device's backups may be encrypted to`, rows];
}

/** The file with `approval` added (an admin who approved before is replaced, so a re-run does not count twice). */
export function withApproval(file: GovernanceRequestFile, approval: RequestApproval): GovernanceRequestFile {
  return { ...file, approvals: [...file.approvals.filter((a) => a.publicKey !== approval.publicKey), approval] };
}

/** Writes a request: a new one never over an existing file; an approved one in place, through a temporary file. */
export function writeRequest(path: string, file: GovernanceRequestFile, mode: 'new' | 'replace'): void {
  const text = JSON.stringify(file, null, 2) + '\n';
  if (mode === 'new') {
    try {
      writeFileSync(path, text, { flag: 'wx' });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'EEXIST') throw new ValidationError('file_exists', `${path} already exists; choose another --out`);
      throw error;
    }
    return;
  }
  const tmp = `${path}.${process.pid}.tmp`;
  writeFileSync(tmp, text);
  renameSync(tmp, path);
}

/** The approvals as the device takes them: every signature over the request's one message. */
export function approvalEvidence(checked: CheckedRequest): ApprovalEvidence[] {
  return checked.file.approvals.map((a) => ({ publicKey: a.publicKey, message: checked.file.message, signature: a.signature }));
}

/** Fails before the device is asked when the file has fewer approvals than the quorum its message names. */
export function assertEnoughApprovals(checked: CheckedRequest, path: string): void {
  const have = new Set(checked.file.approvals.map((a) => a.publicKey)).size;
  const need = checked.message.before.quorum;
  if (have < need) {
    throw new CustodyError('forbidden', 'approvals_missing', `${path} has ${have} admin approval${have === 1 ? '' : 's'}, the device needs ${need}: ${have === 0 ? 'each admin' : 'another admin'} runs custody approve --governance ${path} --key FILE`);
  }
}

/**
 * A device refusal of a request, with what to do next: a stale request (the device's governance
 * moved on, or this export was made already) is proposed again; a refused quorum needs approvals.
 */
export function nextStepOf(error: unknown, propose: string): unknown {
  if (!isCustodyError(error)) return error;
  if (error.code === 'device_stale_governance') {
    return new ConflictError('stale_request', `${error.message}; make a new request with ${propose} and have the admins approve it`, { cause: error });
  }
  if (error.code === 'device_quorum_refused') {
    return new CustodyError('forbidden', 'request_refused', `${error.message}; nothing was changed or exported`, { cause: error });
  }
  return error;
}

/** The simulator at HSM_URL, logged in with HSM_PIN: the device that governs its backups and custodians. */
export function openSim() {
  const config = loadConfig();
  return createSimDevice({ url: config.hsmUrl, pin: requireHsmPin(config) });
}

/** The custodians' public keys the gateway recorded (the ceremony, custody custodians apply): public, and checked against the fingerprints the device holds before use. */
export async function recordedCustodians(store: Store): Promise<CustodianEntry[]> {
  const text = await store.read((r) => r.getSetting(CUSTODIANS_SETTING));
  return text === null ? [] : (JSON.parse(text) as CustodianEntry[]);
}
