/**
 * The simulator's state, sealed on disk: AES-256-GCM under a key derived from the PIN with scrypt
 * (RFC 7914). File layout: magic "CSIMSTAT" | u8 format 1 | u8 log2 N | u8 r | u8 p | salt[16] |
 * nonce[12] | ciphertext | tag[16]; the header (everything before the ciphertext) is the AAD.
 * Written atomically and durably: temp file, fsync, rename, fsync of the directory.
 *
 * Changes between two snapshots go to an append-only journal beside it, so that a change costs one
 * small sealed record and one fsync whatever the size of the state (10,000 pools would otherwise
 * rewrite megabytes per key). Journal layout: magic "CSIMJRNL" | the snapshot's nonce[12], then
 * records u32 length | nonce[12] | ciphertext | tag[16], each sealed with the same key, its AAD the
 * journal header and the record's index. A journal naming another snapshot is left over from an
 * interrupted compaction (the snapshot already holds it) and is discarded; a last record cut short or
 * failing authentication was never acknowledged (the write did not finish) and is dropped; any other
 * record that fails authentication means the journal was altered, and the state does not open.
 * When the journal outgrows the snapshot, the state is compacted into a new snapshot.
 */
import { createCipheriv, createDecipheriv, randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { closeSync, existsSync, fdatasyncSync, fsyncSync, ftruncateSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';

const MAGIC = Buffer.from('CSIMSTAT', 'ascii');
const FORMAT = 1;
const LOG2_N = 15;
const R = 8;
const P = 1;
const HEADER_BYTES = MAGIC.length + 4 + 16 + 12;
export const STATE_FILE = 'state.sealed';
export const JOURNAL_FILE = 'state.journal';
const JOURNAL_MAGIC = Buffer.from('CSIMJRNL', 'ascii');
const JOURNAL_HEADER_BYTES = JOURNAL_MAGIC.length + 12;
/** The journal is compacted once it is larger than the snapshot and than this. */
const COMPACT_AFTER_BYTES = 1024 * 1024;

export interface PoolBinding {
  readonly approvers: { readonly id: string; readonly publicKey: string }[];
  readonly threshold: number;
  /**
   * The pool's policy document (RFC 8785 text), bound at the ceremony and changed only by governance;
   * absent in a state sealed before the device held policies (the pool then signs nothing until a
   * governed policy change binds one).
   */
  readonly policy?: string;
  readonly policyVersion?: number;
  /** When each allowlist entry became usable, by the device's own clock (ms), by lowercase address. */
  readonly allowlistAddedAt?: Readonly<Record<string, number>>;
  /** The pool's governance sequence: the number of governance changes applied to it (0 at the ceremony). */
  readonly sequence?: number;
  /** Frozen by an admin's signed freeze message; only the admin quorum unfreezes. */
  readonly frozen?: boolean;
}

/** What the device signed (SPEC rule 5), kept for its velocity windows, sign-once and an identical answer to a repeated SIGN. */
export interface SignedRecord {
  readonly poolId: string;
  readonly chain: string;
  readonly asset: string;
  /** Base units, decimal. */
  readonly amount: string;
  /** When the device signed, by its own clock (ms). */
  readonly at: number;
  readonly requestId: string;
  /** The chain's replay key and the outputs it spends: another transaction naming one of them is refused unless it is an approved replacement. */
  readonly spends: readonly string[];
  /** The request this one replaced (its amount stops counting), if any. */
  readonly replaces?: string;
  readonly scheme: 'ecdsa-secp256k1' | 'schnorr-bip340' | 'ed25519';
  readonly signatures: readonly string[];
  readonly recoveries: readonly (0 | 1 | null)[];
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
  /** Backup custodians' X25519 public keys (hex), enrolled at the ceremony or by governance. */
  readonly custodians?: readonly { readonly id: string; readonly publicKey: string }[];
  /** The device-wide governance sequence (custodian changes, backup exports). */
  readonly sequence?: number;
}

export interface SimState {
  readonly version: 1;
  readonly attestationSecretKey: string;
  /** The admins whose quorum may rebind a pool; absent until enrolled. */
  governance?: GovernanceBinding;
  readonly pools: Record<string, PoolBinding>;
  readonly keys: Record<string, KeyEntry>;
  /** What the device signed, by `<pool> <chain> <digest hex>`. */
  signed?: Record<string, SignedRecord>;
  /** When the device first saw a complete quorum for a time-locked transaction (ms), by the same key. */
  quorumSeen?: Record<string, number>;
}

/** One journal record: pool bindings, keys, the admins, signatures and quorum sightings set by one device operation. */
export interface StateChange {
  readonly pools?: Readonly<Record<string, PoolBinding>>;
  readonly keys?: Readonly<Record<string, KeyEntry>>;
  readonly governance?: GovernanceBinding;
  readonly signed?: Readonly<Record<string, SignedRecord>>;
  readonly quorumSeen?: Readonly<Record<string, number>>;
}

/** Applies a change to the state in place. */
export function applyChange(state: SimState, change: StateChange): void {
  if (change.pools) Object.assign(state.pools, change.pools);
  if (change.keys) Object.assign(state.keys, change.keys);
  if (change.governance) state.governance = change.governance;
  if (change.signed) state.signed = Object.assign(state.signed ?? {}, change.signed);
  if (change.quorumSeen) state.quorumSeen = Object.assign(state.quorumSeen ?? {}, change.quorumSeen);
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
  private journalFd: number | null = null;
  private journalHeader = Buffer.alloc(0);
  private journalBytes = 0;
  private journalRecords = 0;
  private snapshotBytes = 0;

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
    const store = new SealedStore(dir, { salt: Buffer.from(salt), log2N, r, p }, key);
    store.snapshotBytes = file.length;
    store.replayJournal(Buffer.from(nonce), state);
    return { store, state };
  }

  /** Applies the journal of the snapshot sealed with `snapshotNonce` to `state`, and opens it for appending. */
  private replayJournal(snapshotNonce: Buffer, state: SimState): void {
    const path = join(this.dir, JOURNAL_FILE);
    const expected = Buffer.concat([JOURNAL_MAGIC, snapshotNonce]);
    const file = existsSync(path) ? readFileSync(path) : null;
    if (file === null || file.length < JOURNAL_HEADER_BYTES || !file.subarray(0, JOURNAL_HEADER_BYTES).equals(expected)) {
      // No journal, or one left over from a compaction that the snapshot already holds.
      this.startJournal(snapshotNonce);
      return;
    }
    let offset = JOURNAL_HEADER_BYTES;
    let index = 0;
    while (offset < file.length) {
      const start = offset;
      const complete = file.length - offset >= 4 && file.length - offset >= 4 + 12 + file.readUInt32BE(offset) + 16;
      let change: StateChange | null = null;
      if (complete) {
        const length = file.readUInt32BE(offset);
        const nonce = file.subarray(offset + 4, offset + 16);
        const ciphertext = file.subarray(offset + 16, offset + 16 + length);
        const tag = file.subarray(offset + 16 + length, offset + 32 + length);
        offset += 32 + length;
        try {
          const decipher = createDecipheriv('aes-256-gcm', this.key, nonce);
          decipher.setAAD(recordAad(expected, index));
          decipher.setAuthTag(tag);
          const plain = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
          change = JSON.parse(plain.toString('utf8')) as StateChange;
          plain.fill(0);
        } catch {
          change = null;
        }
      }
      if (change === null) {
        // The last record, cut short or unreadable, was never acknowledged: drop it. Any other is tampering.
        if (!complete || offset === file.length) {
          const fd = openSync(path, 'r+');
          try {
            ftruncateSync(fd, start);
            fsyncSync(fd);
          } finally {
            closeSync(fd);
          }
          offset = start;
          break;
        }
        throw new SealedStateError(`${path}: record ${index} fails authentication; the journal was altered`);
      }
      applyChange(state, change);
      index += 1;
    }
    this.journalHeader = expected;
    this.journalRecords = index;
    this.journalBytes = offset;
    this.journalFd = openSync(path, 'a', 0o600);
  }

  /** Replaces the journal with an empty one for the snapshot sealed with `snapshotNonce`. */
  private startJournal(snapshotNonce: Buffer): void {
    if (this.journalFd !== null) closeSync(this.journalFd);
    this.journalHeader = Buffer.concat([JOURNAL_MAGIC, snapshotNonce]);
    const path = join(this.dir, JOURNAL_FILE);
    writeDurably(this.dir, path, this.journalHeader);
    this.journalRecords = 0;
    this.journalBytes = JOURNAL_HEADER_BYTES;
    this.journalFd = openSync(path, 'a', 0o600);
  }

  /** Appends one change to the journal, durably (fdatasync) before it returns. */
  append(change: StateChange): void {
    if (this.journalFd === null) throw new SealedStateError('the journal is not open');
    const nonce = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, nonce);
    cipher.setAAD(recordAad(this.journalHeader, this.journalRecords));
    const plain = Buffer.from(JSON.stringify(change), 'utf8');
    const ciphertext = Buffer.concat([cipher.update(plain), cipher.final()]);
    plain.fill(0);
    const length = Buffer.alloc(4);
    length.writeUInt32BE(ciphertext.length);
    const record = Buffer.concat([length, nonce, ciphertext, cipher.getAuthTag()]);
    writeSync(this.journalFd, record);
    fdatasyncSync(this.journalFd);
    this.journalRecords += 1;
    this.journalBytes += record.length;
  }

  /** True when the journal has grown past the snapshot: time to `save` the whole state. */
  compactionDue(): boolean {
    return this.journalBytes > Math.max(COMPACT_AFTER_BYTES, this.snapshotBytes);
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

    writeDurably(this.dir, join(this.dir, STATE_FILE), body);
    this.snapshotBytes = body.length;
    // The new snapshot holds everything: a crash before the new journal is in place leaves the old
    // one, which names the old snapshot and is discarded at the next open.
    this.startJournal(nonce);
  }
}

function recordAad(journalHeader: Buffer, index: number): Buffer {
  const i = Buffer.alloc(4);
  i.writeUInt32BE(index);
  return Buffer.concat([journalHeader, i]);
}

/** Temp file, fsync, rename, fsync of the directory. */
function writeDurably(dir: string, path: string, body: Buffer): void {
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, body);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
  const dirFd = openSync(dir, 'r');
  try {
    fsyncSync(dirFd);
  } finally {
    closeSync(dirFd);
  }
}
