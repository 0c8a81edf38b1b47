/**
 * The HSM simulator's wire protocol (docs/device-protocol.md): length-prefixed binary frames over TCP,
 * shared by the simulator and the gateway's client. Pure: no I/O.
 *
 *   frame    = u32be length | body[length]            (1 <= length <= MAX_FRAME_BYTES)
 *   request  = u8 version (1) | u8 opcode | u32be requestId | fields
 *   response = u8 version (1) | u8 status | u32be requestId | fields (status OK) or str message
 *
 * Fields are written in a fixed order per opcode: u8, u16be, u32be, `str` (u16be length + UTF-8),
 * `bytes` (u32be length + bytes). A reader refuses truncated fields and trailing bytes.
 */

export const PROTOCOL_VERSION = 1;
/** 16 MiB: a 10,000-pool ceremony transcript to attest is about 4 MB, and LIST_KEYS of as many keys about 1.5 MB. */
export const MAX_FRAME_BYTES = 16 * 1024 * 1024;
export const HEADER_BYTES = 6;

export const Opcode = {
  PING: 0x01,
  INFO: 0x02,
  LOGIN: 0x03,
  ENROLL_POOL: 0x10,
  GENERATE_KEY: 0x11,
  GET_KEY: 0x12,
  LIST_KEYS: 0x13,
  ENROLL_GOVERNANCE: 0x14,
  REBIND_POOL: 0x15,
  SIGN: 0x20,
  SIGN_MESSAGE: 0x22,
  ATTEST: 0x30,
  EXPORT_BACKUP: 0x40,
  IMPORT_BACKUP: 0x41,
} as const;
export type Opcode = (typeof Opcode)[keyof typeof Opcode];

export const Status = {
  OK: 0x00,
  BAD_FRAME: 0x01,
  UNKNOWN_OPCODE: 0x02,
  BAD_REQUEST: 0x03,
  NOT_LOGGED_IN: 0x04,
  WRONG_PIN: 0x05,
  LOCKED: 0x06,
  NOT_FOUND: 0x07,
  ALREADY_EXISTS: 0x08,
  QUORUM_REFUSED: 0x09,
  INTERNAL: 0x0a,
  TOO_LARGE: 0x0b,
  /** SIGN: an approval names another transaction than the one to sign, or states what it does not do. */
  TRANSACTION_MISMATCH: 0x0c,
} as const;
export type Status = (typeof Status)[keyof typeof Status];

export const STATUS_NAMES: Readonly<Record<number, string>> = Object.fromEntries(Object.entries(Status).map(([k, v]) => [v, k]));

export const CURVE_CODES = { secp256k1: 1, ed25519: 2 } as const;
export const SCHEME_CODES = { 'ecdsa-secp256k1': 1, 'schnorr-bip340': 2, ed25519: 3 } as const;
export type CurveName = keyof typeof CURVE_CODES;
export type SchemeName = keyof typeof SCHEME_CODES;

export function curveName(code: number): CurveName | null {
  return (Object.keys(CURVE_CODES) as CurveName[]).find((k) => CURVE_CODES[k] === code) ?? null;
}

export function schemeName(code: number): SchemeName | null {
  return (Object.keys(SCHEME_CODES) as SchemeName[]).find((k) => SCHEME_CODES[k] === code) ?? null;
}

/** What the attestation key signs: this prefix, then the statement bytes. */
export const ATTESTATION_DOMAIN = 'custody-hsm-sim attestation v1\n';

export class ProtocolError extends Error {
  override readonly name = 'ProtocolError';
}

export class FieldWriter {
  private readonly parts: Buffer[] = [];

  u8(v: number): this {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
    return this;
  }

  u16(v: number): this {
    const b = Buffer.alloc(2);
    b.writeUInt16BE(v);
    this.parts.push(b);
    return this;
  }

  u32(v: number): this {
    const b = Buffer.alloc(4);
    b.writeUInt32BE(v);
    this.parts.push(b);
    return this;
  }

  str(v: string): this {
    const bytes = Buffer.from(v, 'utf8');
    if (bytes.length > 0xffff) throw new ProtocolError('string field longer than 65535 bytes');
    return this.u16(bytes.length).raw(bytes);
  }

  bytes(v: Uint8Array): this {
    return this.u32(v.length).raw(v);
  }

  raw(v: Uint8Array): this {
    this.parts.push(Buffer.from(v.buffer, v.byteOffset, v.byteLength));
    return this;
  }

  toBuffer(): Buffer {
    return Buffer.concat(this.parts);
  }
}

export class FieldReader {
  private offset = 0;

  constructor(private readonly buf: Buffer) {}

  private take(n: number, what: string): Buffer {
    if (this.offset + n > this.buf.length) throw new ProtocolError(`truncated field: ${what}`);
    const out = this.buf.subarray(this.offset, this.offset + n);
    this.offset += n;
    return out;
  }

  u8(what = 'u8'): number {
    return this.take(1, what).readUInt8(0);
  }

  u16(what = 'u16'): number {
    return this.take(2, what).readUInt16BE(0);
  }

  u32(what = 'u32'): number {
    return this.take(4, what).readUInt32BE(0);
  }

  str(what = 'string', maxBytes = 0xffff): string {
    const n = this.u16(`${what} length`);
    if (n > maxBytes) throw new ProtocolError(`${what} longer than ${maxBytes} bytes`);
    const bytes = this.take(n, what);
    const text = bytes.toString('utf8');
    if (!Buffer.from(text, 'utf8').equals(bytes)) throw new ProtocolError(`${what} is not valid UTF-8`);
    return text;
  }

  bytes(what = 'bytes', exact?: number): Uint8Array {
    const n = this.u32(`${what} length`);
    if (exact !== undefined && n !== exact) throw new ProtocolError(`${what} must be ${exact} bytes, got ${n}`);
    return new Uint8Array(this.take(n, what));
  }

  /** The bytes not read yet (for a codec that reads the rest of a frame itself). */
  rest(): Buffer {
    const out = this.buf.subarray(this.offset);
    this.offset = this.buf.length;
    return out;
  }

  end(): void {
    if (this.offset !== this.buf.length) throw new ProtocolError(`${this.buf.length - this.offset} unexpected trailing bytes`);
  }
}

/** One frame: the length prefix and the body. */
export function encodeFrame(kindOrStatus: number, requestId: number, fields: Buffer): Buffer {
  const length = HEADER_BYTES + fields.length;
  if (length > MAX_FRAME_BYTES) throw new ProtocolError(`frame of ${length} bytes exceeds ${MAX_FRAME_BYTES}`);
  const head = Buffer.alloc(4 + HEADER_BYTES);
  head.writeUInt32BE(length, 0);
  head.writeUInt8(PROTOCOL_VERSION, 4);
  head.writeUInt8(kindOrStatus, 5);
  head.writeUInt32BE(requestId >>> 0, 6);
  return Buffer.concat([head, fields]);
}

export interface Frame {
  readonly version: number;
  /** Opcode in a request, status in a response. */
  readonly code: number;
  readonly requestId: number;
  readonly fields: Buffer;
}

export type FrameResult =
  | { readonly kind: 'frame'; readonly frame: Frame; readonly rest: Buffer }
  | { readonly kind: 'incomplete' }
  | { readonly kind: 'oversized'; readonly length: number }
  | { readonly kind: 'malformed'; readonly reason: string; readonly rest: Buffer };

/** Takes one frame off the front of `buf`, if a whole one is there. */
export function decodeFrame(buf: Buffer): FrameResult {
  if (buf.length < 4) return { kind: 'incomplete' };
  const length = buf.readUInt32BE(0);
  if (length > MAX_FRAME_BYTES) return { kind: 'oversized', length };
  if (buf.length < 4 + length) return { kind: 'incomplete' };
  const body = buf.subarray(4, 4 + length);
  const rest = buf.subarray(4 + length);
  if (length < HEADER_BYTES) return { kind: 'malformed', reason: `frame body of ${length} bytes is shorter than the ${HEADER_BYTES}-byte header`, rest };
  return {
    kind: 'frame',
    frame: { version: body.readUInt8(0), code: body.readUInt8(1), requestId: body.readUInt32BE(2), fields: Buffer.from(body.subarray(HEADER_BYTES)) },
    rest,
  };
}

export function errorFields(message: string): Buffer {
  return new FieldWriter().str(message.slice(0, 1000)).toBuffer();
}

export interface KeyRecord {
  readonly handle: string;
  readonly poolId: string;
  readonly chain: string;
  readonly curve: CurveName;
  readonly publicKey: Uint8Array;
}

export function writeKey(w: FieldWriter, k: KeyRecord): FieldWriter {
  return w.str(k.handle).str(k.poolId).str(k.chain).u8(CURVE_CODES[k.curve]).bytes(k.publicKey);
}

export function readKey(r: FieldReader): KeyRecord {
  const handle = r.str('handle');
  const poolId = r.str('poolId');
  const chain = r.str('chain');
  const curve = curveName(r.u8('curve'));
  if (!curve) throw new ProtocolError('unknown curve code');
  return { handle, poolId, chain, curve, publicKey: r.bytes('publicKey') };
}

/** One approver's (or admin's) signed message, as the device receives it. */
export interface ApprovalRecord {
  readonly publicKey: Uint8Array;
  readonly message: string;
  readonly signature: Uint8Array;
}

/** At most this many approvals travel in one request. */
export const MAX_APPROVALS = 64;

/** `u16 n`, n × (`bytes publicKey`, `bytes message` (UTF-8), `bytes signature`). */
export function writeApprovals(w: FieldWriter, approvals: readonly ApprovalRecord[]): FieldWriter {
  if (approvals.length > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} approvals`);
  w.u16(approvals.length);
  for (const a of approvals) w.bytes(a.publicKey).bytes(Buffer.from(a.message, 'utf8')).bytes(a.signature);
  return w;
}

/**
 * Reads what writeApprovals wrote. `checkKey` returns the signature length the key's scheme takes, or
 * null for a key of no known scheme; messages are refused above `maxMessageBytes` or when not UTF-8.
 */
export function readApprovals(r: FieldReader, maxMessageBytes: number, checkKey: (publicKey: Uint8Array) => number | null): ApprovalRecord[] {
  const count = r.u16('approval count');
  if (count > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} approvals`);
  const approvals: ApprovalRecord[] = [];
  for (let i = 0; i < count; i++) {
    const publicKey = r.bytes('approval public key');
    const signatureBytes = checkKey(publicKey);
    if (signatureBytes === null) throw new ProtocolError(`approval public key must be 32 or 33 bytes, got ${publicKey.length}`);
    const message = utf8(r.bytes('approval message'), 'approval message', maxMessageBytes);
    approvals.push({ publicKey, message, signature: r.bytes('approval signature', signatureBytes) });
  }
  return approvals;
}

function utf8(bytes: Uint8Array, what: string, maxBytes: number): string {
  if (bytes.length > maxBytes) throw new ProtocolError(`${what} longer than ${maxBytes} bytes`);
  const text = Buffer.from(bytes).toString('utf8');
  if (!Buffer.from(text, 'utf8').equals(Buffer.from(bytes))) throw new ProtocolError(`${what} is not valid UTF-8`);
  return text;
}

/**
 * SIGN (docs/device-protocol.md): the pool key's handle, the pool, the unsigned transaction in the
 * API's encoding, and the approvals. The device decodes the transaction itself and signs only it; the
 * gateway sends no hash.
 */
export interface SignCommand {
  readonly handle: string;
  readonly poolId: string;
  readonly unsignedTx: string;
  readonly approvals: readonly ApprovalRecord[];
}

/** The largest unsigned transaction SIGN carries, in bytes of its text encoding. */
export const MAX_UNSIGNED_TX_BYTES = 100_000;

export function encodeSignCommand(c: SignCommand): Buffer {
  return writeApprovals(new FieldWriter().str(c.handle).str(c.poolId).bytes(Buffer.from(c.unsignedTx, 'utf8')), c.approvals).toBuffer();
}

export function decodeSignCommand(fields: Buffer, maxMessageBytes: number, checkKey: (publicKey: Uint8Array) => number | null): SignCommand {
  const r = new FieldReader(fields);
  const handle = r.str('handle', 64);
  const poolId = r.str('poolId', 64);
  const unsignedTx = utf8(r.bytes('unsignedTx'), 'unsignedTx', MAX_UNSIGNED_TX_BYTES);
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { handle, poolId, unsignedTx, approvals };
}

/** SIGN's answer: the scheme the device chose for the key and transaction, and one signature per hash signed. */
export interface SignResult {
  readonly scheme: SchemeName;
  readonly signatures: readonly Uint8Array[];
  /** ECDSA recovery id of each signature; null for Schnorr and Ed25519. */
  readonly recoveries: readonly (0 | 1 | null)[];
}

export function encodeSignResult(s: SignResult): Buffer {
  if (s.signatures.length !== s.recoveries.length || s.signatures.some((x) => x.length !== 64)) throw new ProtocolError('one 64-byte signature per recovery id');
  return new FieldWriter()
    .u8(SCHEME_CODES[s.scheme])
    .bytes(Buffer.concat(s.signatures.map((x) => Buffer.from(x))))
    .bytes(Uint8Array.from(s.recoveries.map((x) => x ?? 0xff)))
    .toBuffer();
}

export function decodeSignResult(fields: Buffer): SignResult {
  const r = new FieldReader(fields);
  const scheme = schemeName(r.u8('scheme'));
  const signatures = r.bytes('signatures');
  const recoveries = r.bytes('recoveries');
  r.end();
  if (!scheme) throw new ProtocolError('unknown signature scheme code');
  if (recoveries.length === 0 || signatures.length !== recoveries.length * 64) throw new ProtocolError('a malformed list of signatures');
  return {
    scheme,
    signatures: Array.from(recoveries, (_, i) => signatures.slice(i * 64, (i + 1) * 64)),
    recoveries: Array.from(recoveries, (x) => {
      if (x !== 0 && x !== 1 && x !== 0xff) throw new ProtocolError(`recovery id ${x}`);
      return x === 0xff ? null : x;
    }),
  };
}
