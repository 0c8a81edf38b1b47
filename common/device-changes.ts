/**
 * The device-scope governed changes (common/governance-message.ts, scope `device`; SPEC rule 8):
 * a change of the backup custodians, and the description of a backup export. Shared by the simulator,
 * which applies and checks them against what it holds, and the CLI, which proposes them and shows an
 * admin what they approve. A governance message names a change by `sha256Canonical` of the value these
 * functions return, so the two sides hash the very same JSON.
 *
 * - custodians: `{"action":"custodians","add":[{"id","publicKey"}],"remove":[ids]}`, the public keys
 *   X25519 (RFC 7748) in lowercase hex; applied by GOVERN_DEVICE.
 * - export: `{"action":"export-backup","custodians":[public keys in share order],"threshold":M}`; the
 *   i-th key receives share i, any M shares restore the backup; carried by EXPORT_BACKUP.
 */
import { randomBytes } from 'node:crypto';
import { x25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { sha256Canonical } from './governance-message.js';

/** A backup is split among at most this many custodians, and a device enrols at most as many. */
export const MAX_CUSTODIANS = 16;
/** Custodian ids read like approver ids. */
export const CUSTODIAN_ID = /^[a-zA-Z0-9][a-zA-Z0-9._-]{0,63}$/;
const KEY_HEX = /^[0-9a-f]{64}$/;
/** 2^255 - 19: an X25519 u-coordinate at or above it is a second spelling of a smaller one. */
const P25519 = 2n ** 255n - 19n;

export interface CustodianEntry {
  readonly id: string;
  /** X25519 public key, 64 lowercase hex digits. */
  readonly publicKey: string;
}

export interface CustodiansChange {
  readonly action: 'custodians';
  readonly add: readonly CustodianEntry[];
  readonly remove: readonly string[];
}

export interface ExportBackupChange {
  readonly action: 'export-backup';
  /** The custodians' public keys in share order (share i to the i-th key). */
  readonly custodians: readonly string[];
  readonly threshold: number;
}

export type DeviceChange = CustodiansChange | ExportBackupChange;

export class DeviceChangeError extends Error {
  override readonly name = 'DeviceChangeError';
}

/**
 * Why a 32-byte string cannot be a custodian's X25519 key, or null: a share encrypted to a low-order
 * point (whose shared secret is the same for everyone) or to a second spelling of a key is refused.
 */
export function custodianKeyProblem(publicKey: Uint8Array): string | null {
  if (publicKey.length !== 32) return `an X25519 public key is 32 bytes, got ${publicKey.length}`;
  let u = 0n;
  for (let i = 31; i >= 0; i--) u = (u << 8n) | BigInt(publicKey[i] as number);
  if (u >= P25519) return 'not a canonical X25519 public key';
  const probe = randomBytes(32);
  try {
    x25519.getSharedSecret(probe, publicKey);
  } catch {
    return 'a low-order X25519 point, which no one holds the secret of';
  } finally {
    probe.fill(0);
  }
  return null;
}

/** The description an export's approvals name: the keys in share order and the threshold. */
export function exportBackupChange(custodians: readonly string[], threshold: number): ExportBackupChange {
  return { action: 'export-backup', custodians: [...custodians], threshold };
}

/** sha256Canonical of a change: what the governance messages' `change` must be. */
export function changeHash(change: DeviceChange): string {
  return sha256Canonical(change);
}

function entry(value: unknown, at: string): CustodianEntry {
  const m = value as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || Array.isArray(m) || Object.keys(m).some((k) => k !== 'id' && k !== 'publicKey')) {
    throw new DeviceChangeError(`${at} must be {id, publicKey}`);
  }
  if (typeof m.id !== 'string' || !CUSTODIAN_ID.test(m.id)) throw new DeviceChangeError(`${at}.id must be a custodian id (letters, digits, ".", "_", "-"; at most 64)`);
  if (typeof m.publicKey !== 'string' || !KEY_HEX.test(m.publicKey)) throw new DeviceChangeError(`${at}.publicKey must be an X25519 public key in 64 lowercase hex digits`);
  const problem = custodianKeyProblem(hexToBytes(m.publicKey));
  if (problem) throw new DeviceChangeError(`${at}.publicKey: ${problem}`);
  return { id: m.id, publicKey: m.publicKey };
}

/** Parses a custodians change (GOVERN_DEVICE's `change`, a request file's `change`); throws DeviceChangeError naming the field. */
export function parseCustodiansChange(value: unknown): CustodiansChange {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DeviceChangeError('the change is not an object');
  const r = value as Record<string, unknown>;
  const extra = Object.keys(r).find((k) => !['action', 'add', 'remove'].includes(k));
  if (extra) throw new DeviceChangeError(`the change has unknown field "${extra.slice(0, 40)}"`);
  if (r.action !== 'custodians') throw new DeviceChangeError(`the device applies no change "${String(r.action).slice(0, 40)}" to itself`);
  if (!Array.isArray(r.add) || !Array.isArray(r.remove)) throw new DeviceChangeError('"add" and "remove" must be lists');
  if (r.add.length + r.remove.length === 0) throw new DeviceChangeError('the change adds and removes no custodian');
  if (r.add.length > MAX_CUSTODIANS || r.remove.length > MAX_CUSTODIANS) throw new DeviceChangeError(`"add" and "remove" list at most ${MAX_CUSTODIANS} custodians each`);
  const add = r.add.map((a, i) => entry(a, `add[${i}]`));
  const remove = r.remove.map((id, i) => {
    if (typeof id !== 'string' || !CUSTODIAN_ID.test(id)) throw new DeviceChangeError(`remove[${i}] must be a custodian id`);
    return id;
  });
  return { action: 'custodians', add, remove };
}

/** Parses an export description; throws DeviceChangeError naming the field. */
export function parseExportBackupChange(value: unknown): ExportBackupChange {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new DeviceChangeError('the export is not an object');
  const r = value as Record<string, unknown>;
  const extra = Object.keys(r).find((k) => !['action', 'custodians', 'threshold'].includes(k));
  if (extra) throw new DeviceChangeError(`the export has unknown field "${extra.slice(0, 40)}"`);
  if (r.action !== 'export-backup') throw new DeviceChangeError('"action" must be "export-backup"');
  if (!Array.isArray(r.custodians) || !r.custodians.every((k) => typeof k === 'string' && KEY_HEX.test(k))) {
    throw new DeviceChangeError('"custodians" must list X25519 public keys in 64 lowercase hex digits');
  }
  if (!Number.isSafeInteger(r.threshold)) throw new DeviceChangeError('"threshold" must be an integer');
  return exportBackupChange(r.custodians as string[], r.threshold as number);
}

/**
 * The custodians once `change` is applied to `members` (sorted by id): every removed id must be there,
 * no added id or key may be; at most MAX_CUSTODIANS remain. `keyOf` tells a member's key identity (its
 * public key on the device, its fingerprint in a summary) and `make` turns an added entry into a member.
 */
export function custodiansAfter<T extends { readonly id: string }>(
  members: readonly T[],
  change: CustodiansChange,
  keyOf: (m: T) => string,
  make: (e: CustodianEntry) => T,
): T[] {
  let next = [...members];
  for (const id of change.remove) {
    if (!next.some((m) => m.id === id)) throw new DeviceChangeError(`"${id}" is not a custodian of this device`);
    next = next.filter((m) => m.id !== id);
  }
  for (const e of change.add) {
    const made = make(e);
    if (next.some((m) => m.id === e.id || keyOf(m) === keyOf(made))) throw new DeviceChangeError(`"${e.id}" or its key is a custodian of this device already`);
    next.push(made);
  }
  if (next.length > MAX_CUSTODIANS) throw new DeviceChangeError(`a device holds at most ${MAX_CUSTODIANS} custodians; ${next.length} would be left`);
  return next.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
