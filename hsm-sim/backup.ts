/**
 * Backups inside the simulator (SPEC rule 8; file formats in common/backup-format.ts): the whole
 * sealed state (attestation key, admins, custodians, pool bindings, keys) encrypted under a fresh
 * wrapping key that is split among custodians by Shamir's scheme and never leaves the device in one
 * piece, each share encrypted to its custodian's X25519 key; and the restore of such a backup from at
 * least the threshold of shares. Who the custodians are and whether the export is approved is decided
 * before, by hsm-sim/device-governance.ts.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import { combine, split } from 'shamir-secret-sharing';
import { MAX_CUSTODIANS } from '../common/device-changes.js';
import {
  BACKUP_KIND,
  BackupFormatError,
  SHARE_KIND,
  backupHeaderOf,
  makeShareFile,
  open,
  seal,
  shareHash,
  type BackupFile,
  type BackupHeader,
  type EncryptedShareFile,
} from '../common/backup-format.js';
import type { SimState } from './sealed-state.js';

/** A backup of `state` and one share per recipient, share i encrypted to `recipients[i]`. */
export async function createBackup(state: SimState, deviceId: string, threshold: number, recipients: readonly Uint8Array[]): Promise<{ backup: BackupFile; shares: EncryptedShareFile[] }> {
  const custodians = recipients.length;
  if (!Number.isInteger(threshold) || threshold < 2 || custodians > MAX_CUSTODIANS || threshold > custodians) {
    throw new BackupFormatError(`a backup needs 2 ≤ threshold (${threshold}) ≤ custodians (${custodians}) ≤ ${MAX_CUSTODIANS}`);
  }
  recipients.forEach((r, i) => {
    if (r.length !== 32) throw new BackupFormatError(`custodian ${i + 1}'s public key must be a 32-byte X25519 key, got ${r.length} bytes`);
  });
  const wrappingKey = randomBytes(32);
  const plaintext = Buffer.from(canonicalize(state), 'utf8');
  try {
    const shares = await split(new Uint8Array(wrappingKey), custodians, threshold);
    const backupId = randomUUID();
    const header: BackupHeader = {
      kind: BACKUP_KIND,
      version: 1,
      backupId,
      deviceId,
      createdAt: new Date().toISOString(),
      threshold,
      custodians,
      shareHashes: shares.map(shareHash),
      keys: Object.entries(state.keys)
        .sort(([a], [b]) => (a < b ? -1 : 1))
        .map(([handle, k]) => ({ handle, poolId: k.poolId, chain: k.chain, curve: k.curve, publicKey: k.publicKey })),
      pools: Object.keys(state.pools).sort(),
    };
    const backup: BackupFile = { ...header, cipher: { name: 'aes-256-gcm', ...seal(wrappingKey, plaintext, canonicalize(header)) } };
    const files = shares.map((share, i) => makeShareFile({ kind: SHARE_KIND, version: 1, backupId, deviceId, index: i + 1, threshold, custodians }, share, recipients[i] as Uint8Array));
    for (const share of shares) share.fill(0);
    return { backup, shares: files };
  } finally {
    wrappingKey.fill(0);
    plaintext.fill(0);
  }
}

function parseBackup(text: string): BackupFile {
  let b: BackupFile;
  try {
    b = JSON.parse(text) as BackupFile;
  } catch {
    throw new BackupFormatError('the backup is not JSON');
  }
  const hex = (v: unknown) => typeof v === 'string' && /^([0-9a-f]{2})+$/.test(v);
  if (
    typeof b !== 'object' || b === null || b.kind !== BACKUP_KIND || b.version !== 1 || typeof b.backupId !== 'string' || typeof b.deviceId !== 'string' ||
    !Number.isInteger(b.threshold) || !Number.isInteger(b.custodians) || !Array.isArray(b.shareHashes) || b.shareHashes.length !== b.custodians ||
    !b.shareHashes.every((h) => typeof h === 'string' && /^[0-9a-f]{64}$/.test(h)) || !Array.isArray(b.keys) || !Array.isArray(b.pools) ||
    !b.cipher || b.cipher.name !== 'aes-256-gcm' || !hex(b.cipher.iv) || !hex(b.cipher.ciphertext) || !hex(b.cipher.tag)
  ) {
    throw new BackupFormatError('this is not a custody backup file (kind custody.backup, version 1) or it is damaged');
  }
  return b;
}

function assertState(value: unknown, backup: BackupFile): SimState {
  const s = value as SimState;
  const ok =
    typeof s === 'object' && s !== null && s.version === 1 && typeof s.attestationSecretKey === 'string' && /^[0-9a-f]{64}$/.test(s.attestationSecretKey) &&
    typeof s.pools === 'object' && s.pools !== null && typeof s.keys === 'object' && s.keys !== null;
  if (!ok) throw new BackupFormatError('the backup opened but does not hold a device state');
  const keys = Object.entries(s.keys).map(([handle, k]) => `${handle} ${k.poolId} ${k.chain} ${k.publicKey}`).sort();
  const listed = backup.keys.map((k) => `${k.handle} ${k.poolId} ${k.chain} ${k.publicKey}`).sort();
  if (keys.join('\n') !== listed.join('\n')) throw new BackupFormatError('the backup\'s keys do not match the keys its header lists');
  return s;
}

/** The device state a backup holds, opened with at least its threshold of shares. */
export async function openBackup(text: string, shares: readonly Uint8Array[]): Promise<SimState> {
  const backup = parseBackup(text);
  if (shares.length < backup.threshold) throw new BackupFormatError(`${shares.length} shares given, this backup needs ${backup.threshold}`);
  const seen = new Set<string>();
  shares.forEach((share, i) => {
    const hash = shareHash(share);
    if (!backup.shareHashes.includes(hash)) throw new BackupFormatError(`share ${i + 1} given is corrupted or belongs to another backup`);
    if (seen.has(hash)) throw new BackupFormatError(`share ${i + 1} given is the same share twice`);
    seen.add(hash);
  });
  const key = await combine([...shares]);
  try {
    const plain = open(key, backup.cipher, canonicalize(backupHeaderOf(backup)));
    if (plain === null) throw new BackupFormatError('the shares do not open this backup');
    try {
      return assertState(JSON.parse(plain.toString('utf8')), backup);
    } finally {
      plain.fill(0);
    }
  } finally {
    key.fill(0);
  }
}
