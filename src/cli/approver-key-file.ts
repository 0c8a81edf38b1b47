/**
 * Approver key files (`custody approver keygen`): an Ed25519 key pair (RFC 8032) whose secret key is
 * encrypted under a passphrase: scrypt (RFC 7914) derives a 256-bit key, AES-256-GCM seals the secret
 * with the file's public fields (kind, version, id, public key, KDF parameters) as associated data, so
 * no field can be swapped or altered unnoticed. Written with mode 0600; only the public key goes into
 * a ceremony plan.
 *
 * The passphrase comes from CUSTODY_KEY_PASSPHRASE, from `--passphrase-file`, or from a hidden prompt
 * when standard input is a terminal.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { canonicalize } from 'json-canonicalize';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { ValidationError } from '../../common/errors.js';

export const APPROVER_KEY_KIND = 'custody.approver-key';
export const PASSPHRASE_ENV = 'CUSTODY_KEY_PASSPHRASE';
/** scrypt cost: 2^17 × r 8 uses 128 MiB and a fraction of a second, as Ethereum keystores do. */
const SCRYPT = { name: 'scrypt', log2N: 17, r: 8, p: 1 } as const;
const MIN_PASSPHRASE = 8;

/** An unlocked approver key, in memory only. */
export interface ApproverKey {
  readonly id: string | null;
  readonly publicKey: string;
  readonly secretKey: string;
}

interface KeyFileHeader {
  readonly kind: typeof APPROVER_KEY_KIND;
  readonly version: 2;
  readonly id: string | null;
  readonly publicKey: string;
  readonly kdf: { readonly name: 'scrypt'; readonly log2N: number; readonly r: number; readonly p: number; readonly salt: string };
}

interface KeyFile extends KeyFileHeader {
  readonly cipher: { readonly name: 'aes-256-gcm'; readonly iv: string; readonly ciphertext: string; readonly tag: string };
}

export function approverKeyFromSecret(secretKeyHex: string, id: string | null): ApproverKey {
  return { id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(secretKeyHex))), secretKey: secretKeyHex };
}

export function generateApproverKey(id: string | null): ApproverKey {
  return approverKeyFromSecret(bytesToHex(ed25519.utils.randomSecretKey()), id);
}

function deriveKey(passphrase: string, kdf: KeyFileHeader['kdf']): Buffer {
  return scryptSync(passphrase.normalize('NFC'), Buffer.from(kdf.salt, 'hex'), 32, { N: 2 ** kdf.log2N, r: kdf.r, p: kdf.p, maxmem: 512 * 1024 * 1024 });
}

export function writeApproverKeyFile(path: string, key: ApproverKey, passphrase: string): void {
  if (existsSync(path)) throw new ValidationError('file_exists', `${path} already exists; choose another --out or move the old key away first`);
  if (passphrase.length < MIN_PASSPHRASE) throw new ValidationError('weak_passphrase', `the passphrase must have at least ${MIN_PASSPHRASE} characters`);
  const header: KeyFileHeader = {
    kind: APPROVER_KEY_KIND,
    version: 2,
    id: key.id,
    publicKey: key.publicKey,
    kdf: { name: SCRYPT.name, log2N: SCRYPT.log2N, r: SCRYPT.r, p: SCRYPT.p, salt: randomBytes(16).toString('hex') },
  };
  const wrappingKey = deriveKey(passphrase, header.kdf);
  const secret = Buffer.from(key.secretKey, 'hex');
  try {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', wrappingKey, iv);
    cipher.setAAD(Buffer.from(canonicalize(header), 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(secret), cipher.final()]);
    const file: KeyFile = { ...header, cipher: { name: 'aes-256-gcm', iv: iv.toString('hex'), ciphertext: ciphertext.toString('hex'), tag: cipher.getAuthTag().toString('hex') } };
    writeFileSync(path, JSON.stringify(file, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
  } finally {
    wrappingKey.fill(0);
    secret.fill(0);
  }
}

function badFile(path: string, why: string): ValidationError {
  return new ValidationError('bad_key_file', `${path} ${why}`);
}

export function readApproverKeyFile(path: string, passphrase: string): ApproverKey {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (error) {
    throw new ValidationError('bad_key_file', `cannot read approver key file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const f = parsed as Partial<KeyFile>;
  if (typeof f !== 'object' || f === null || f.kind !== APPROVER_KEY_KIND) throw badFile(path, 'is not a custody approver key file (made by custody approver keygen)');
  if (f.version !== 2) throw badFile(path, 'is an unencrypted key file of an earlier version; make a new key with custody approver keygen and have it enrolled');
  const kdf = f.kdf;
  const c = f.cipher;
  const hex = (v: unknown, bytes?: number) => typeof v === 'string' && /^([0-9a-f]{2})+$/.test(v) && (bytes === undefined || v.length === bytes * 2);
  if (
    !kdf || kdf.name !== 'scrypt' || !Number.isInteger(kdf.log2N) || kdf.log2N < 14 || kdf.log2N > 20 || !Number.isInteger(kdf.r) || kdf.r < 1 || kdf.r > 16 ||
    !Number.isInteger(kdf.p) || kdf.p < 1 || kdf.p > 4 || !hex(kdf.salt, 16) || !c || c.name !== 'aes-256-gcm' || !hex(c.iv, 12) || !hex(c.ciphertext, 32) || !hex(c.tag, 16) ||
    !hex(f.publicKey, 32) || !(f.id === null || typeof f.id === 'string')
  ) {
    throw badFile(path, 'is damaged: its fields are not those of an approver key file');
  }
  const header: KeyFileHeader = { kind: APPROVER_KEY_KIND, version: 2, id: f.id ?? null, publicKey: f.publicKey as string, kdf: { name: 'scrypt', log2N: kdf.log2N, r: kdf.r, p: kdf.p, salt: kdf.salt } };
  const wrappingKey = deriveKey(passphrase, header.kdf);
  let secret: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', wrappingKey, Buffer.from(c.iv, 'hex'));
    decipher.setAAD(Buffer.from(canonicalize(header), 'utf8'));
    decipher.setAuthTag(Buffer.from(c.tag, 'hex'));
    secret = Buffer.concat([decipher.update(Buffer.from(c.ciphertext, 'hex')), decipher.final()]);
  } catch {
    throw new ValidationError('wrong_passphrase', `the passphrase does not open ${path} (or the file was altered)`);
  } finally {
    wrappingKey.fill(0);
  }
  const key = approverKeyFromSecret(secret.toString('hex'), header.id);
  secret.fill(0);
  if (key.publicKey !== header.publicKey) throw badFile(path, 'is damaged: its public key does not match its secret key');
  return key;
}

export function signWithApproverKey(key: ApproverKey, message: string): string {
  const secret = hexToBytes(key.secretKey);
  try {
    return bytesToHex(ed25519.sign(new TextEncoder().encode(message), secret));
  } finally {
    secret.fill(0);
  }
}

/** Reads a line from the terminal without echoing it (raw mode; Enter ends it, Ctrl-C cancels). */
function promptHidden(question: string): Promise<string> {
  const stdin = process.stdin;
  return new Promise((resolve, reject) => {
    let answer = '';
    const finish = () => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      process.stderr.write('\n');
    };
    const onData = (chunk: string) => {
      for (const ch of chunk) {
        if (ch === '\r' || ch === '\n') {
          finish();
          resolve(answer);
          return;
        }
        if (ch === '\u0003') {
          finish();
          reject(new ValidationError('cancelled', 'cancelled at the passphrase prompt'));
          return;
        }
        answer = ch === '\u007f' || ch === '\b' ? answer.slice(0, -1) : answer + ch;
      }
    };
    process.stderr.write(question);
    stdin.setEncoding('utf8');
    stdin.setRawMode(true);
    stdin.resume();
    stdin.on('data', onData);
  });
}

/** The key file passphrase: CUSTODY_KEY_PASSPHRASE, a passphrase file, or a hidden prompt on a terminal. */
export async function readPassphrase(passphraseFile: string | undefined, question: string): Promise<string> {
  if (passphraseFile !== undefined) {
    try {
      return readFileSync(passphraseFile, 'utf8').replace(/\r?\n$/, '');
    } catch (error) {
      throw new ValidationError('bad_passphrase_file', `cannot read the passphrase file ${passphraseFile}: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  const fromEnv = process.env[PASSPHRASE_ENV];
  if (fromEnv) return fromEnv;
  if (process.stdin.isTTY) return promptHidden(question);
  throw new ValidationError('missing_passphrase', `the key file passphrase is needed: set ${PASSPHRASE_ENV}, give --passphrase-file FILE, or run in a terminal to be asked`);
}
