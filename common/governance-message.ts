/**
 * The governance message: the exact text admins sign to approve a change the device applies itself
 * (SPEC sections 4 and 9): a pool's policy version, its unfreezing, a change of its approvers, a
 * proof of control (its keys sign a challenge), and, for the whole device, a change of the backup
 * custodians or a backup export; and the text one admin signs to freeze a pool (break glass). RFC 8785
 * canonical JSON, signed over its UTF-8 bytes like the approval message of a withdrawal (Ed25519 or
 * EIP-191, common/approver-key.ts). Shared by the gateway, the CLI and the HSM simulator.
 *
 * A message names what it changes in terms the device can check against what it holds:
 * - `scope` `pool` (with `pool`) or `device`;
 * - `before` and `after`: the state summary (`PoolSummary` or `DeviceSummary`: members as ids with
 *   key fingerprints, thresholds, the policy's hash and version) before and once applied;
 * - `sequence`: the governance sequence the device holds before the change. The device applies a
 *   change only when `before` equals what it holds and `sequence` is its sequence, then counts it
 *   (so a message is never applied twice, and one made before another change no longer applies);
 *   a proof of control changes nothing and leaves the sequence as it is; a freeze counts in it (so an
 *   unfreeze approved before a freeze no longer applies after it);
 * - `change`: sha256 of the canonical change itself (the new policy document, the approvers with
 *   their keys, the challenge, the custodians' keys and threshold of an export).
 */
import { createHash } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';

export const GOVERNANCE_KIND = 'custody.governance';
export const GOVERNANCE_VERSION = 2;
export const MAX_GOVERNANCE_MESSAGE_BYTES = 16 * 1024;

export const POOL_ACTIONS = ['policy', 'unfreeze', 'approvers', 'attest-control', 'freeze'] as const;
export const DEVICE_ACTIONS = ['custodians', 'export-backup'] as const;
export type PoolAction = (typeof POOL_ACTIONS)[number];
export type DeviceAction = (typeof DEVICE_ACTIONS)[number];
export type GovernanceAction = PoolAction | DeviceAction;

/** Actions whose `after` equals their `before`: they change no binding or policy (a freeze still counts in the sequence). */
export const STATELESS_ACTIONS: readonly GovernanceAction[] = ['attest-control', 'freeze'];

/** A member of a pool's approvers, the admins or the custodians, as a message names it. */
export interface MemberSummary {
  readonly id: string;
  /** sha256 (hex) of the member's public key bytes. */
  readonly fingerprint: string;
}

/**
 * A pool's binding as the device holds it: approvers, base threshold, policy. Whether it is frozen is
 * not part of it: a freeze may reach the gateway alone (without an admin's signed message), and the
 * unfreeze that follows must still apply.
 */
export interface PoolSummary {
  /** Sorted by id. */
  readonly approvers: readonly MemberSummary[];
  readonly threshold: number;
  /** common/policy/document.ts policyHash, or "none" when the device holds no policy for the pool. */
  readonly policy: string;
  readonly policyVersion: number;
}

/** The device's governance: its admins and their quorum, and the backup custodians. */
export interface DeviceSummary {
  readonly admins: readonly MemberSummary[];
  readonly quorum: number;
  readonly custodians: readonly MemberSummary[];
}

interface MessageBase {
  readonly kind: typeof GOVERNANCE_KIND;
  readonly version: typeof GOVERNANCE_VERSION;
  readonly proposalId: string;
  /** The device the change is for (its id from INFO). */
  readonly device: string;
  readonly sequence: number;
  readonly change: string;
  readonly decision: 'approve' | 'reject';
}

export interface PoolGovernanceMessage extends MessageBase {
  readonly scope: 'pool';
  readonly pool: string;
  readonly action: PoolAction;
  readonly before: PoolSummary;
  readonly after: PoolSummary;
}

export interface DeviceGovernanceMessage extends MessageBase {
  readonly scope: 'device';
  readonly action: DeviceAction;
  readonly before: DeviceSummary;
  readonly after: DeviceSummary;
}

export type GovernanceMessage = PoolGovernanceMessage | DeviceGovernanceMessage;

export class GovernanceMessageError extends Error {
  override readonly name = 'GovernanceMessageError';
}

export function sha256Canonical(value: unknown): string {
  return createHash('sha256').update(canonicalize(value), 'utf8').digest('hex');
}

/** sha256 (hex) of a public key given in hex. */
export function keyFingerprint(publicKeyHex: string): string {
  return createHash('sha256').update(Buffer.from(publicKeyHex.toLowerCase(), 'hex')).digest('hex');
}

/** Members as a message names them: id and key fingerprint, sorted by id. */
export function memberSummaries(members: readonly { readonly id: string; readonly publicKey: string }[]): MemberSummary[] {
  return members.map((m) => ({ id: m.id, fingerprint: keyFingerprint(m.publicKey) })).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

export function canonicalGovernanceMessage(message: GovernanceMessage): string {
  return canonicalize(message);
}

/** True when two summaries are the same state. */
export function sameSummary(a: PoolSummary | DeviceSummary, b: PoolSummary | DeviceSummary): boolean {
  return canonicalize(a) === canonicalize(b);
}

const HEX64 = /^[0-9a-f]{64}$/;
const BASE_FIELDS = ['kind', 'version', 'proposalId', 'device', 'scope', 'action', 'sequence', 'before', 'after', 'change', 'decision'];

function fail(message: string): never {
  throw new GovernanceMessageError(`governance message ${message}`);
}

function assertMembers(value: unknown, field: string): void {
  if (!Array.isArray(value) || value.length > 64) fail(`"${field}" must be a list of at most 64 members`);
  for (const m of value as unknown[]) {
    if (typeof m !== 'object' || m === null || Array.isArray(m)) fail(`"${field}" members must be objects`);
    const r = m as Record<string, unknown>;
    if (Object.keys(r).some((k) => k !== 'id' && k !== 'fingerprint') || typeof r.id !== 'string' || typeof r.fingerprint !== 'string' || !HEX64.test(r.fingerprint)) {
      fail(`"${field}" members must be {id, fingerprint} with a sha256 fingerprint`);
    }
  }
}

function assertCount(value: unknown, field: string): void {
  if (!Number.isSafeInteger(value) || (value as number) < 0) fail(`"${field}" must be a non-negative integer`);
}

function assertSummary(scope: 'pool' | 'device', value: unknown, field: string): void {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail(`"${field}" must be an object`);
  const r = value as Record<string, unknown>;
  const fields = scope === 'pool' ? ['approvers', 'threshold', 'policy', 'policyVersion'] : ['admins', 'quorum', 'custodians'];
  const extra = Object.keys(r).find((k) => !fields.includes(k));
  if (extra) fail(`"${field}" has unknown field "${extra}"`);
  if (scope === 'pool') {
    assertMembers(r.approvers, `${field}.approvers`);
    assertCount(r.threshold, `${field}.threshold`);
    if (typeof r.policy !== 'string' || (r.policy !== 'none' && !HEX64.test(r.policy))) fail(`"${field}.policy" must be a sha256 hash or "none"`);
    assertCount(r.policyVersion, `${field}.policyVersion`);
  } else {
    assertMembers(r.admins, `${field}.admins`);
    assertCount(r.quorum, `${field}.quorum`);
    assertMembers(r.custodians, `${field}.custodians`);
  }
}

/** Parses and checks a governance message; it must be exactly its own RFC 8785 form. */
export function parseGovernanceMessage(text: string): GovernanceMessage {
  if (Buffer.byteLength(text, 'utf8') > MAX_GOVERNANCE_MESSAGE_BYTES) fail('too long');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    fail('is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('is not an object');
  const r = value as Record<string, unknown>;
  if (r.kind !== GOVERNANCE_KIND || r.version !== GOVERNANCE_VERSION) fail(`is not a ${GOVERNANCE_KIND} version ${GOVERNANCE_VERSION} message`);
  const scope = r.scope;
  if (scope !== 'pool' && scope !== 'device') fail('"scope" must be pool or device');
  const allowed = scope === 'pool' ? [...BASE_FIELDS, 'pool'] : BASE_FIELDS;
  const extra = Object.keys(r).find((k) => !allowed.includes(k));
  if (extra) fail(`has unknown field "${extra}"`);
  for (const f of scope === 'pool' ? ['proposalId', 'device', 'pool', 'change'] : ['proposalId', 'device', 'change']) if (typeof r[f] !== 'string') fail(`"${f}" must be a string`);
  if (!HEX64.test(r.change as string)) fail('"change" must be a sha256 hash');
  const actions: readonly string[] = scope === 'pool' ? POOL_ACTIONS : DEVICE_ACTIONS;
  if (!actions.includes(r.action as string)) fail(`"action" ${JSON.stringify(r.action)} is not a ${scope} action`);
  assertCount(r.sequence, 'sequence');
  assertSummary(scope, r.before, 'before');
  assertSummary(scope, r.after, 'after');
  if (r.decision !== 'approve' && r.decision !== 'reject') fail('"decision" must be approve or reject');
  const message = r as unknown as GovernanceMessage;
  if (canonicalGovernanceMessage(message) !== text) fail('is not in RFC 8785 canonical form');
  return message;
}
