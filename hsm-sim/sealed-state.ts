/**
 * The simulator's state, sealed on disk: AES-256-GCM under a key derived from the PIN with scrypt
 * (RFC 7914). File layout: magic "CSIMSTAT" | u8 format 1 | u8 log2 N | u8 r | u8 p | salt[16] |
 * nonce[12] | ciphertext | tag[16]; the header (everything before the ciphertext) is the AAD.
 * Written atomically and durably: temp file, fsync, rename, fsync of the directory.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const MAGIC = Buffer.from('CSIMSTAT', 'ascii');
const FORMAT = 1;
const LOG2_N = 15;
const R = 8;
const P = 1;
const HEADER_BYTES = MAGIC.length + 4 + 16 + 12;
export const STATE_FILE = 'state.sealed';

export interface PoolBinding {
  readonly approvers: { readonly id: string; readonly publicKey: string }[];
  readonly threshold: number;
}

export interface KeyEntry {
  readonly poolId: string;
  readonly chain: string;
  readonly curve: 'secp256k1' | 'ed25519';
  /** Hex: lives only inside the sealed file and this process. */
  readonly secretKey: string;
  readonly publicKey: string;
}

export interface GovernanceBinding {
  readonly admins: { readonly id: string; readonly publicKey: string }[];
  readonly quorum: number;
}

export interface SimState {
  readonly version: 1;
  readonly attestationSecretKey: string;
  /** The admins whose quorum may rebind a pool; absent until enrolled. */
  readonly governance?: GovernanceBinding;
  readonly pools: Record<string, PoolBinding>;
  readonly keys: Record<string, KeyEntry>;
}

export class WrongPinError extends Error {
  override readonly name = 'WrongPinError';
}

export class SealedStateError extends Error {
  override readonly name = 'SealedStateError';
}

function deriveKey(pin: string, salt: Buffer, log2N: number, r: number, p: number): Buffer {
  return scryptSync(pin.normalize('NFC'), salt, 32, { N: 2 ** log2N, r, p, maxmem: 256 * 1024 * 1024 });
}

/** An unsealed state bound to its file and key; `save` reseals with a fresh nonce. */
export class SealedStore {
  private constructor(
    private readonly dir: string,
    private readonly header: { salt: Buffer; log2N: number; r: number; p: number },
    private readonly key: Buffer,
  ) {}

  static exists(dir: string): boolean {
    return existsSync(join(dir, STATE_FILE));
  }

  /** Opens the sealed state with the PIN, or creates it from `initial` when there is none. */
  static open(dir: string, pin: string, initial: () => SimState): { store: SealedStore; state: SimState } {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, STATE_FILE);
    if (!existsSync(path)) {
      const salt = randomBytes(16);
      const store = new SealedStore(dir, { salt, log2N: LOG2_N, r: R, p: P }, deriveKey(pin, salt, LOG2_N, R, P));
      const state = initial();
      store.save(state);
      return { store, state };
    }
    const file = readFileSync(path);
    if (file.length < HEADER_BYTES + 16 || !file.subarray(0, MAGIC.length).equals(MAGIC)) {
      throw new SealedStateError(`${path} is not a sealed simulator state`);
    }
    const format = file.readUInt8(8);
    if (format !== FORMAT) throw new SealedStateError(`${path} has unknown format ${format}`);
    const log2N = file.readUInt8(9);
    const r = file.readUInt8(10);
    const p = file.readUInt8(11);
    if (log2N < 10 || log2N > 20 || r < 1 || r > 32 || p < 1 || p > 16) throw new SealedStateError(`${path} has implausible scrypt parameters`);
    const salt = file.subarray(12, 28);
    const nonce = file.subarray(28, 40);
    const header = file.subarray(0, HEADER_BYTES);
    const ciphertext = file.subarray(HEADER_BYTES, file.length - 16);
    const tag = file.subarray(file.length - 16);
    const key = deriveKey(pin, Buffer.from(salt), log2N, r, p);
    let plain: Buffer;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, nonce);
      decipher.setAAD(header);
      decipher.setAuthTag(tag);
      plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
    } catch {
      key.fill(0);
      throw new WrongPinError('wrong PIN (or the sealed state was altered): the state cannot be unsealed');
    }
    const state = JSON.parse(plain.toString('utf8')) as SimState;
    plain.fill(0);
    return { store: new SealedStore(dir, { salt: Buffer.from(salt), log2N, r, p }, key), state };
  }

  /** True when `pin` derives this store's key (constant-time comparison). */
  checkPin(pin: string): boolean {
    const candidate = deriveKey(pin, this.header.salt, this.header.log2N, this.header.r, this.header.p);
    const ok = timingSafeEqual(candidate, this.key);
    candidate.fill(0);
    return ok;
  }

  save(state: SimState): void {
    const header = Buffer.alloc(HEADER_BYTES);
    MAGIC.copy(header, 0);
    header.writeUInt8(FORMAT, 8);
    header.writeUInt8(this.header.log2N, 9);
    header.writeUInt8(this.header.r, 10);
    header.writeUInt8(this.header.p, 11);
    this.header.salt.copy(header, 12);
    const nonce = randomBytes(12);
    nonce.copy(header, 28);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(header);
    const plain = Buffer.from(JSON.stringify(state), 'utf8');
    const body = Buffer.concat([header, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    plain.fill(0);

    const path = join(this.dir, STATE_FILE);
    const tmp = `${path}.tmp`;
    const fd = openSync(tmp, 'w', 0o600);
    try {
      writeSync(fd, body);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
    const dirFd = openSync(this.dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }
}
