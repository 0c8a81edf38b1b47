/**
 * Backup and share files of the HSM simulator (docs/backup.md), shared by the simulator, which makes
 * and opens backups, and the CLI, which writes the files and decrypts custodians' shares.
 *
 * A backup holds the device state encrypted with AES-256-GCM under a fresh 256-bit wrapping key; the
 * backup's public header (everything but `cipher`, as RFC 8785 canonical JSON) is the associated data.
 * The wrapping key is split with Shamir's secret sharing (shamir-secret-sharing) into N shares, any M of
 * which recover it. Each share file is encrypted to one custodian's X25519 key enrolled in the device:
 * ECDH with a fresh ephemeral key, HKDF-SHA256 (salt: the backup id, info: "custody.backup-share.v1"),
 * AES-256-GCM with the share's header as associated data. The device never writes a share in the clear
 * (SPEC rule 8); a plain share file of an older version (`share` in hex) is still read at a restore. The
 * backup lists sha256 of every share, so a corrupted share or one of another backup is named before
 * anything is combined.
 */
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';
import { x25519 } from '@noble/curves/ed25519.js';
import { hkdf } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';

export const BACKUP_KIND = 'custody.backup';
export const SHARE_KIND = 'custody.backup-share';
export const CUSTODIAN_KEY_KIND = 'custody.custodian-key';
const SHARE_INFO = new TextEncoder().encode('custody.backup-share.v1');

export interface BackupHeader {
  readonly kind: typeof BACKUP_KIND;
  readonly version: 1;
  readonly backupId: string;
  readonly deviceId: string;
  readonly createdAt: string;
  readonly threshold: number;
  readonly custodians: number;
  /** sha256 (hex) of each share's bytes, by share index (1-based index = position + 1). */
  readonly shareHashes: readonly string[];
  /** What the backup holds, in the clear: public keys and bindings only. */
  readonly keys: readonly { readonly handle: string; readonly poolId: string; readonly chain: string; readonly curve: string; readonly publicKey: string }[];
  readonly pools: readonly string[];
}

export interface BackupFile extends BackupHeader {
  readonly cipher: { readonly name: 'aes-256-gcm'; readonly iv: string; readonly ciphertext: string; readonly tag: string };
}

export interface ShareHeader {
  readonly kind: typeof SHARE_KIND;
  readonly version: 1;
  readonly backupId: string;
  readonly deviceId: string;
  /** 1-based. */
  readonly index: number;
  readonly threshold: number;
  readonly custodians: number;
}

/** A share encrypted to its custodian: what the device makes. */
export type EncryptedShareFile = ShareHeader & { readonly encryptedTo: string; readonly ephemeralPublicKey: string; readonly nonce: string; readonly ciphertext: string; readonly tag: string };

/** What a restore reads: an encrypted share, or the plain share of an older version's backup. */
export type ShareFile = (ShareHeader & { readonly share: string }) | EncryptedShareFile;

export class BackupFormatError extends Error {
  override readonly name = 'BackupFormatError';
}

export function backupHeaderOf(file: BackupFile): BackupHeader {
  const { cipher: _cipher, ...header } = file;
  return header;
}

export function shareHash(share: Uint8Array): string {
  return bytesToHex(sha256(share));
}

/** AES-256-GCM under `key` with `aad`; returns hex fields. */
export function seal(key: Uint8Array, plaintext: Uint8Array, aad: string): { iv: string; ciphertext: string; tag: string } {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ciphertext = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  return { iv: iv.toString('hex'), ciphertext: ciphertext.toString('hex'), tag: cipher.getAuthTag().toString('hex') };
}

/** Opens what `seal` made; null when the key, the data or the associated data is not the original. */
export function open(key: Uint8Array, sealed: { iv: string; ciphertext: string; tag: string }, aad: string): Buffer | null {
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(sealed.iv, 'hex'));
    decipher.setAAD(Buffer.from(aad, 'utf8'));
    decipher.setAuthTag(Buffer.from(sealed.tag, 'hex'));
    return Buffer.concat([decipher.update(Buffer.from(sealed.ciphertext, 'hex')), decipher.final()]);
  } catch {
    return null;
  }
}

function shareKey(secret: Uint8Array, backupId: string): Uint8Array {
  return hkdf(sha256, secret, new TextEncoder().encode(backupId), SHARE_INFO, 32);
}

/** A share file encrypted to the custodian's X25519 public key: there is no other kind to make. */
export function makeShareFile(header: ShareHeader, share: Uint8Array, recipient: Uint8Array): EncryptedShareFile {
  const ephemeral = x25519.utils.randomSecretKey();
  const ephemeralPublicKey = bytesToHex(x25519.getPublicKey(ephemeral));
  const shared = x25519.getSharedSecret(ephemeral, recipient);
  const key = shareKey(shared, header.backupId);
  const encryptedTo = bytesToHex(recipient);
  const sealed = seal(key, share, canonicalize({ ...header, encryptedTo }));
  ephemeral.fill(0);
  shared.fill(0);
  key.fill(0);
  return { ...header, encryptedTo, ephemeralPublicKey, nonce: sealed.iv, ciphertext: sealed.ciphertext, tag: sealed.tag };
}

/** The share's bytes: decrypted with the custodian's X25519 secret key (or, for an older plain share, as written). */
export function shareBytes(file: ShareFile, custodianSecretKey: Uint8Array | null): Uint8Array {
  if ('share' in file) return hexToBytes(file.share);
  if (custodianSecretKey === null) throw new BackupFormatError(`share ${file.index} is encrypted to custodian key ${file.encryptedTo.slice(0, 16)}…: give that custodian's key file`);
  const shared = x25519.getSharedSecret(custodianSecretKey, hexToBytes(file.ephemeralPublicKey));
  const key = shareKey(shared, file.backupId);
  const { encryptedTo, ephemeralPublicKey: _e, nonce, ciphertext, tag, ...rest } = file;
  const plain = open(key, { iv: nonce, ciphertext, tag }, canonicalize({ ...rest, encryptedTo }));
  shared.fill(0);
  key.fill(0);
  if (plain === null) throw new BackupFormatError(`share ${file.index} does not open with the custodian key given (or the share file was altered)`);
  return new Uint8Array(plain);
}

