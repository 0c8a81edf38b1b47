/**
 * Approver key files (`custody approver keygen`): an Ed25519 key pair as JSON, written with mode 0600.
 * Only the public key goes into a ceremony plan. (RFC 8032 for the key format.)
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { ValidationError } from '../domain/errors.js';

export const APPROVER_KEY_KIND = 'custody.approver-key';

export interface ApproverKeyFile {
  readonly kind: typeof APPROVER_KEY_KIND;
  readonly version: 1;
  readonly id: string | null;
  readonly publicKey: string;
  readonly secretKey: string;
}

export function approverKeyFromSecret(secretKeyHex: string, id: string | null): ApproverKeyFile {
  const secret = hexToBytes(secretKeyHex);
  return { kind: APPROVER_KEY_KIND, version: 1, id, publicKey: bytesToHex(ed25519.getPublicKey(secret)), secretKey: secretKeyHex };
}

export function generateApproverKey(id: string | null): ApproverKeyFile {
  return approverKeyFromSecret(bytesToHex(ed25519.utils.randomSecretKey()), id);
}

export function writeApproverKeyFile(path: string, key: ApproverKeyFile): void {
  if (existsSync(path)) throw new ValidationError('file_exists', `${path} already exists; choose another --out or move the old key away first`);
  writeFileSync(path, JSON.stringify(key, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
}

export function readApproverKeyFile(path: string): ApproverKeyFile {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ValidationError('bad_key_file', `cannot read approver key file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const k = parsed as Partial<ApproverKeyFile>;
  if (k.kind !== APPROVER_KEY_KIND || typeof k.secretKey !== 'string' || !/^[0-9a-f]{64}$/.test(k.secretKey)) {
    throw new ValidationError('bad_key_file', `${path} is not a custody approver key file (made by custody approver keygen)`);
  }
  const key = approverKeyFromSecret(k.secretKey, typeof k.id === 'string' ? k.id : null);
  if (k.publicKey !== key.publicKey) throw new ValidationError('bad_key_file', `${path}: its public key does not match its secret key`);
  return key;
}

export function signWithApproverKey(key: ApproverKeyFile, message: string): string {
  const secret = hexToBytes(key.secretKey);
  try {
    return bytesToHex(ed25519.sign(new TextEncoder().encode(message), secret));
  } finally {
    secret.fill(0);
  }
}
