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
 *
 * Each opcode has one codec for its request (`encodeXCommand`/`decodeXCommand`) and one for its OK
 * answer (`encodeXResult`/`decodeXResult`); the client and the simulator use only these, so the two
 * halves cannot disagree on a layout. Request decoders enforce the limits the device enforces on the
 * wire (string lengths, MAX_APPROVALS, approver key lengths); what a field means is the device's to check.
 */

export const PROTOCOL_VERSION = 1;
/** 16 MiB: LIST_KEYS of 10,000 pools' keys is about 1.5 MB, a policy document at most 4 MiB. */
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
  GOVERN_POOL: 0x15,
  FREEZE_POOL: 0x16,
  GOVERNANCE_STATE: 0x18,
  GOVERN_DEVICE: 0x19,
  SIGN: 0x20,
  SIGN_MESSAGE: 0x22,
  // 0x30 was ATTEST, which signed any bytes the caller sent with the attestation key: retired, never
  // reassigned, answered UNKNOWN_OPCODE (SPEC section 7; docs/device-protocol.md "Attestation").
  ATTEST_KEY: 0x31,
  ATTEST_DEVICE: 0x32,
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
  /** SIGN: the pool's policy held by the device refuses the transaction (limits, allowlist, commingling, fees, velocity, sign-once). */
  POLICY_REFUSED: 0x0d,
  /** SIGN: time-locked; the error fields add `str until` (ms since epoch, decimal): come back then. */
  TIMELOCKED: 0x0e,
  /** SIGN, SIGN_MESSAGE: the pool is frozen in the device. */
  FROZEN: 0x0f,
  /** A governance message names another state than the device holds (replayed, or made before another change, or an export already made). */
  STALE_GOVERNANCE: 0x10,
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

/** The message of an error answer (any status but OK), as errorFields wrote it; a TIMELOCKED answer's time follows it. */
export function decodeErrorFields(fields: Buffer): string {
  return new FieldReader(fields).str('message');
}

/** TIMELOCKED's error fields: the message, then when the device will sign (ms since epoch). */
export function timelockedFields(message: string, until: number): Buffer {
  return new FieldWriter().str(message.slice(0, 1000)).str(String(until)).toBuffer();
}

export function decodeTimelockedFields(fields: Buffer): { message: string; until: number } {
  const r = new FieldReader(fields);
  const message = r.str('message');
  const until = r.str('until', 20);
  r.end();
  if (!/^[0-9]{1,16}$/.test(until)) throw new ProtocolError('until must be a time in ms');
  return { message, until: Number(until) };
}

// Field groups several opcodes share.

/**
 * Tells the length of the signatures a public key's scheme makes, or null for a key of no known
 * scheme (the simulator passes common/approver-key.ts; the codec stays free of crypto).
 */
export type ApproverKeyCheck = (publicKey: Uint8Array) => number | null;

/** `key` = `str handle`, `str poolId`, `str chain`, `u8 curve`, `bytes publicKey`. */
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

/** An approver of a pool, an admin or a backup custodian (X25519 key), as ENROLL_POOL and ENROLL_GOVERNANCE bind them. */
export interface MemberRecord {
  readonly id: string;
  readonly publicKey: Uint8Array;
}

/** `u16 n`, n × (`str id`, `bytes publicKey`). */
function writeMembers(w: FieldWriter, members: readonly MemberRecord[]): FieldWriter {
  w.u16(members.length);
  for (const m of members) w.str(m.id).bytes(m.publicKey);
  return w;
}

/** Reads what writeMembers wrote: at most MAX_APPROVALS members, ids of at most 64 bytes, keys `checkKey` knows. */
function readMembers(r: FieldReader, role: 'approver' | 'admin', checkKey: ApproverKeyCheck): MemberRecord[] {
  const count = r.u16(`${role} count`);
  if (count > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} ${role}s`);
  const members: MemberRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.str(`${role} id`, 64);
    const publicKey = r.bytes(`${role} key`);
    if (checkKey(publicKey) === null) throw new ProtocolError(`${role} key must be 32 or 33 bytes, got ${publicKey.length}`);
    members.push({ id, publicKey });
  }
  return members;
}

/** One approver's (or admin's) signed message, as the device receives it. */
export interface ApprovalRecord {
  readonly publicKey: Uint8Array;
  readonly message: string;
  readonly signature: Uint8Array;
}

/** At most this many approvals (and approvers, and admins) travel in one request. */
export const MAX_APPROVALS = 64;

/** At most this many backup custodians travel in one request (common/device-changes.ts MAX_CUSTODIANS). */
export const MAX_CUSTODIAN_RECORDS = 16;

/** `u16 n`, n × (`bytes publicKey`, `bytes message` (UTF-8), `bytes signature`). */
export function writeApprovals(w: FieldWriter, approvals: readonly ApprovalRecord[]): FieldWriter {
  if (approvals.length > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} approvals`);
  w.u16(approvals.length);
  for (const a of approvals) w.bytes(a.publicKey).bytes(Buffer.from(a.message, 'utf8')).bytes(a.signature);
  return w;
}

/**
 * Reads what writeApprovals wrote. `checkKey` gives the signature length the key's scheme takes, or
 * null for a key of no known scheme; messages are refused above `maxMessageBytes` or when not UTF-8.
 */
export function readApprovals(r: FieldReader, maxMessageBytes: number, checkKey: ApproverKeyCheck): ApprovalRecord[] {
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

/** A backup document or share (JSON): read as UTF-8 without a check, its parser refuses what is not one. */
function jsonText(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('utf8');
}

/** The fields of a request or answer that has none. */
function encodeNoFields(): Buffer {
  return Buffer.alloc(0);
}

function decodeNoFields(fields: Buffer): void {
  new FieldReader(fields).end();
}

// One request codec (…Command) and one answer codec (…Result) per opcode, in opcode order. Decoders
// refuse truncated fields and trailing bytes; a field over its limit is refused with its name.

// PING (0x01): no fields either way.
export const encodePingCommand = encodeNoFields;
export const decodePingCommand = decodeNoFields;
export const encodePingResult = encodeNoFields;
export const decodePingResult = decodeNoFields;

// INFO (0x02): no request fields; answers `str deviceId`, `str model`, `str firmware`,
// `bytes attestationPublicKey`, `u8 checksQuorum`, `u8 unlocked`.
export const encodeInfoCommand = encodeNoFields;
export const decodeInfoCommand = decodeNoFields;

/** What INFO answers, logged in or not; the device id and attestation key are empty while the device is locked. */
export interface InfoResult {
  readonly deviceId: string;
  readonly model: string;
  readonly firmware: string;
  readonly attestationPublicKey: Uint8Array;
  readonly checksQuorum: boolean;
  readonly unlocked: boolean;
  /** The rules the device enforces itself (DEVICE_RULES), whatever the gateway does. */
  readonly enforces: readonly string[];
}

/**
 * The rules a device may enforce itself, as INFO and `GET /v1/devices` name them (docs/threat-model.md):
 * the quorum and its tier for the amount, the per-transaction maximum, the allowlist and its
 * cooling-off, no commingling, the fee cap, contract-call rules, velocity windows, the time lock,
 * freeze, sign-once, governed changes, backups only under quorum, attestation of its own state.
 */
export const DEVICE_RULES = [
  'quorum', 'quorum-tier', 'max-per-tx', 'allowlist', 'cooling-off', 'commingling', 'fee-cap', 'contract-calls', 'velocity', 'timelock', 'freeze', 'sign-once', 'governance', 'backup-quorum', 'attestation',
] as const;
export type DeviceRule = (typeof DEVICE_RULES)[number];

export function encodeInfoResult(i: InfoResult): Buffer {
  const w = new FieldWriter()
    .str(i.deviceId)
    .str(i.model)
    .str(i.firmware)
    .bytes(i.attestationPublicKey)
    .u8(i.checksQuorum ? 1 : 0)
    .u8(i.unlocked ? 1 : 0)
    .u16(i.enforces.length);
  for (const rule of i.enforces) w.str(rule);
  return w.toBuffer();
}

export function decodeInfoResult(fields: Buffer): InfoResult {
  const r = new FieldReader(fields);
  const deviceId = r.str('id');
  const model = r.str('model');
  const firmware = r.str('firmware');
  const attestationPublicKey = r.bytes('attestation key');
  const checksQuorum = r.u8('checksQuorum') === 1;
  const unlocked = r.u8('unlocked') === 1;
  const count = r.u16('rule count');
  if (count > DEVICE_RULES.length) throw new ProtocolError(`at most ${DEVICE_RULES.length} rules`);
  const enforces: string[] = [];
  for (let i = 0; i < count; i++) enforces.push(r.str('rule', 64));
  r.end();
  return { deviceId, model, firmware, attestationPublicKey, checksQuorum, unlocked, enforces };
}

// LOGIN (0x03): `str pin` (at most 256 bytes); no answer fields.
export interface LoginCommand {
  readonly pin: string;
}

export function encodeLoginCommand(c: LoginCommand): Buffer {
  return new FieldWriter().str(c.pin).toBuffer();
}

export function decodeLoginCommand(fields: Buffer): LoginCommand {
  const r = new FieldReader(fields);
  const pin = r.str('pin', 256);
  r.end();
  return { pin };
}

export const encodeLoginResult = encodeNoFields;
export const decodeLoginResult = decodeNoFields;

// ENROLL_POOL (0x10): `str poolId`, `u8 threshold`, `u16 n`, n × (`str approverId`, `bytes publicKey`),
// `bytes policy` (the pool's policy document, JSON, UTF-8); no answer fields.
export interface EnrollPoolCommand {
  readonly poolId: string;
  readonly threshold: number;
  readonly approvers: MemberRecord[];
  /** The policy document as JSON text: the device parses and holds it. */
  readonly policy: string;
}

/** The largest policy document a device holds (10,000 allowlist entries fit). */
export const MAX_POLICY_BYTES = 4 * 1024 * 1024;

export function encodeEnrollPoolCommand(c: EnrollPoolCommand): Buffer {
  return writeMembers(new FieldWriter().str(c.poolId).u8(c.threshold), c.approvers).bytes(Buffer.from(c.policy, 'utf8')).toBuffer();
}

export function decodeEnrollPoolCommand(fields: Buffer, checkKey: ApproverKeyCheck): EnrollPoolCommand {
  const r = new FieldReader(fields);
  const poolId = r.str('poolId', 64);
  const threshold = r.u8('threshold');
  const approvers = readMembers(r, 'approver', checkKey);
  const policy = utf8(r.bytes('policy'), 'policy', MAX_POLICY_BYTES);
  r.end();
  return { poolId, threshold, approvers, policy };
}

export const encodeEnrollPoolResult = encodeNoFields;
export const decodeEnrollPoolResult = decodeNoFields;

// GENERATE_KEY (0x11): `str poolId`, `str chain` (CAIP-2, at most 80 bytes), `u8 curve`; answers `key`.
export interface GenerateKeyCommand {
  readonly poolId: string;
  readonly chain: string;
  readonly curve: CurveName;
}

export function encodeGenerateKeyCommand(c: GenerateKeyCommand): Buffer {
  return new FieldWriter().str(c.poolId).str(c.chain).u8(CURVE_CODES[c.curve]).toBuffer();
}

export function decodeGenerateKeyCommand(fields: Buffer): GenerateKeyCommand {
  const r = new FieldReader(fields);
  const poolId = r.str('poolId', 64);
  const chain = r.str('chain', 80);
  const curve = curveName(r.u8('curve'));
  r.end();
  if (!curve) throw new ProtocolError('unknown curve code');
  return { poolId, chain, curve };
}

export function encodeGenerateKeyResult(k: KeyRecord): Buffer {
  return writeKey(new FieldWriter(), k).toBuffer();
}

export function decodeGenerateKeyResult(fields: Buffer): KeyRecord {
  const r = new FieldReader(fields);
  const key = readKey(r);
  r.end();
  return key;
}

// GET_KEY (0x12): `str handle`; answers `key`.
export interface GetKeyCommand {
  readonly handle: string;
}

export function encodeGetKeyCommand(c: GetKeyCommand): Buffer {
  return new FieldWriter().str(c.handle).toBuffer();
}

export function decodeGetKeyCommand(fields: Buffer): GetKeyCommand {
  const r = new FieldReader(fields);
  const handle = r.str('handle', 64);
  r.end();
  return { handle };
}

// The same `key` answer as GENERATE_KEY.
export const encodeGetKeyResult = encodeGenerateKeyResult;
export const decodeGetKeyResult = decodeGenerateKeyResult;

// LIST_KEYS (0x13): no request fields; answers `u32 n`, n × `key`.
export const encodeListKeysCommand = encodeNoFields;
export const decodeListKeysCommand = decodeNoFields;

export function encodeListKeysResult(keys: readonly KeyRecord[]): Buffer {
  const w = new FieldWriter().u32(keys.length);
  for (const k of keys) writeKey(w, k);
  return w.toBuffer();
}

export function decodeListKeysResult(fields: Buffer): KeyRecord[] {
  const r = new FieldReader(fields);
  const count = r.u32('count');
  const keys: KeyRecord[] = [];
  for (let i = 0; i < count; i++) keys.push(readKey(r));
  r.end();
  return keys;
}

// ENROLL_GOVERNANCE (0x14): `u8 quorum`, `u16 n`, n × (`str adminId`, `bytes publicKey`), `u16 c`,
// c × (`str custodianId`, `bytes publicKey` (32, X25519)); no answer fields. The custodians are who
// backups may be encrypted to (none: the device makes no backup until a governed custodians change).
export interface EnrollGovernanceCommand {
  readonly quorum: number;
  readonly admins: MemberRecord[];
  readonly custodians: MemberRecord[];
}

/** `u16 c`, c × (`str id`, `bytes publicKey`). */
function writeCustodians(w: FieldWriter, custodians: readonly MemberRecord[]): FieldWriter {
  w.u16(custodians.length);
  for (const c of custodians) w.str(c.id).bytes(c.publicKey);
  return w;
}

/** Reads what writeCustodians wrote: at most MAX_CUSTODIAN_RECORDS, ids of at most 64 bytes, 32-byte keys. */
function readCustodians(r: FieldReader): MemberRecord[] {
  const count = r.u16('custodian count');
  if (count > MAX_CUSTODIAN_RECORDS) throw new ProtocolError(`at most ${MAX_CUSTODIAN_RECORDS} custodians`);
  const custodians: MemberRecord[] = [];
  for (let i = 0; i < count; i++) {
    const id = r.str('custodian id', 64);
    custodians.push({ id, publicKey: r.bytes('custodian key', 32) });
  }
  return custodians;
}

export function encodeEnrollGovernanceCommand(c: EnrollGovernanceCommand): Buffer {
  return writeCustodians(writeMembers(new FieldWriter().u8(c.quorum), c.admins), c.custodians).toBuffer();
}

export function decodeEnrollGovernanceCommand(fields: Buffer, checkKey: ApproverKeyCheck): EnrollGovernanceCommand {
  const r = new FieldReader(fields);
  const quorum = r.u8('quorum');
  const admins = readMembers(r, 'admin', checkKey);
  const custodians = readCustodians(r);
  r.end();
  return { quorum, admins, custodians };
}

export const encodeEnrollGovernanceResult = encodeNoFields;
export const decodeEnrollGovernanceResult = decodeNoFields;

// GOVERN_POOL (0x15): `str poolId`, `bytes change` (the proposed change, JSON, UTF-8), `approvals` of
// governance messages; no answer fields. The device applies the change to what it holds only when the
// admin quorum approved exactly it, from exactly the state and sequence it holds.
export interface GovernPoolCommand {
  readonly poolId: string;
  /** The change as JSON: `{"action":"policy","policy":…}`, `{"action":"approvers","add":[{id,publicKey}],"remove":[ids]}` or `{"action":"unfreeze"}`. */
  readonly change: string;
  readonly approvals: readonly ApprovalRecord[];
}

export function encodeGovernPoolCommand(c: GovernPoolCommand): Buffer {
  return writeApprovals(new FieldWriter().str(c.poolId).bytes(Buffer.from(c.change, 'utf8')), c.approvals).toBuffer();
}

export function decodeGovernPoolCommand(fields: Buffer, maxMessageBytes: number, checkKey: ApproverKeyCheck): GovernPoolCommand {
  const r = new FieldReader(fields);
  const poolId = r.str('poolId', 64);
  const change = utf8(r.bytes('change'), 'change', MAX_POLICY_BYTES + 1024);
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { poolId, change, approvals };
}

export const encodeGovernPoolResult = encodeNoFields;
export const decodeGovernPoolResult = decodeNoFields;

// FREEZE_POOL (0x16): `str poolId`, `approvals` holding one admin's signed freeze message; no answer fields.
export interface FreezePoolCommand {
  readonly poolId: string;
  readonly approvals: readonly ApprovalRecord[];
}

export function encodeFreezePoolCommand(c: FreezePoolCommand): Buffer {
  return writeApprovals(new FieldWriter().str(c.poolId), c.approvals).toBuffer();
}

export function decodeFreezePoolCommand(fields: Buffer, maxMessageBytes: number, checkKey: ApproverKeyCheck): FreezePoolCommand {
  const r = new FieldReader(fields);
  const poolId = r.str('poolId', 64);
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { poolId, approvals };
}

export const encodeFreezePoolResult = encodeNoFields;
export const decodeFreezePoolResult = decodeNoFields;

// GOVERNANCE_STATE (0x18): `str poolId` (empty for the device's own governance); answers `bytes
// summary` (the PoolSummary or DeviceSummary of common/governance-message.ts, RFC 8785 JSON) and
// `u32 sequence`: what a governance message must name as `before` and `sequence`.
export interface GovernanceStateCommand {
  readonly poolId: string;
}

export function encodeGovernanceStateCommand(c: GovernanceStateCommand): Buffer {
  return new FieldWriter().str(c.poolId).toBuffer();
}

export function decodeGovernanceStateCommand(fields: Buffer): GovernanceStateCommand {
  const r = new FieldReader(fields);
  const poolId = r.str('poolId', 64);
  r.end();
  return { poolId };
}

export interface GovernanceStateResult {
  readonly summary: string;
  readonly sequence: number;
}

export function encodeGovernanceStateResult(g: GovernanceStateResult): Buffer {
  return new FieldWriter().bytes(Buffer.from(g.summary, 'utf8')).u32(g.sequence).toBuffer();
}

export function decodeGovernanceStateResult(fields: Buffer): GovernanceStateResult {
  const r = new FieldReader(fields);
  const summary = utf8(r.bytes('summary'), 'summary', 64 * 1024);
  const sequence = r.u32('sequence');
  r.end();
  return { summary, sequence };
}

// GOVERN_DEVICE (0x19): `bytes change` (the proposed device-scope change, JSON, UTF-8), `approvals` of
// governance messages; no answer fields. Like GOVERN_POOL for the device itself: the custodians change
// of common/device-changes.ts, applied once the admin quorum approved exactly it from exactly the device
// summary and sequence the device holds.
export interface GovernDeviceCommand {
  /** `{"action":"custodians","add":[{id,publicKey}],"remove":[ids]}`. */
  readonly change: string;
  readonly approvals: readonly ApprovalRecord[];
}

export function encodeGovernDeviceCommand(c: GovernDeviceCommand): Buffer {
  return writeApprovals(new FieldWriter().bytes(Buffer.from(c.change, 'utf8')), c.approvals).toBuffer();
}

export function decodeGovernDeviceCommand(fields: Buffer, maxMessageBytes: number, checkKey: ApproverKeyCheck): GovernDeviceCommand {
  const r = new FieldReader(fields);
  const change = utf8(r.bytes('change'), 'change', 16 * 1024);
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { change, approvals };
}

export const encodeGovernDeviceResult = encodeNoFields;
export const decodeGovernDeviceResult = decodeNoFields;

// SIGN (0x20): `str handle`, `str poolId`, `bytes unsignedTx` (UTF-8), `approvals` of approval messages;
// answers `u8 scheme`, `bytes signatures` (64 × k), `bytes recoveries` (k).

/**
 * What SIGN carries: the pool key's handle, the pool, the unsigned transaction in the API's encoding,
 * and the approvals. The device decodes the transaction itself and signs only it; the gateway sends
 * no hash.
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

export function decodeSignCommand(fields: Buffer, maxMessageBytes: number, checkKey: ApproverKeyCheck): SignCommand {
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

// SIGN_MESSAGE (0x22): `str handle`, `str poolId`, `str challenge`, `approvals` of governance messages;
// answers `bytes signature` (64), `u8 recovery` (0/1, 0xff for none).
export interface SignMessageCommand {
  readonly handle: string;
  readonly poolId: string;
  readonly challenge: string;
  readonly approvals: readonly ApprovalRecord[];
}

export function encodeSignMessageCommand(c: SignMessageCommand): Buffer {
  return writeApprovals(new FieldWriter().str(c.handle).str(c.poolId).str(c.challenge), c.approvals).toBuffer();
}

/** `maxChallengeBytes` bounds the challenge field; the device checks the challenge's text itself. */
export function decodeSignMessageCommand(fields: Buffer, maxChallengeBytes: number, maxMessageBytes: number, checkKey: ApproverKeyCheck): SignMessageCommand {
  const r = new FieldReader(fields);
  const handle = r.str('handle', 64);
  const poolId = r.str('poolId', 64);
  const challenge = r.str('challenge', maxChallengeBytes);
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { handle, poolId, challenge, approvals };
}

export interface SignMessageResult {
  readonly signature: Uint8Array;
  /** ECDSA recovery id, which the decoder accepts only as 0 or 1; null for Ed25519. */
  readonly recovery: number | null;
}

export function encodeSignMessageResult(s: SignMessageResult): Buffer {
  return new FieldWriter()
    .bytes(s.signature)
    .u8(s.recovery ?? 0xff)
    .toBuffer();
}

export function decodeSignMessageResult(fields: Buffer): SignMessageResult & { readonly recovery: 0 | 1 | null } {
  const r = new FieldReader(fields);
  const signature = r.bytes('signature', 64);
  const recovery = r.u8('recovery');
  r.end();
  if (recovery !== 0 && recovery !== 1 && recovery !== 0xff) throw new ProtocolError(`recovery id ${recovery}`);
  return { signature, recovery: recovery === 0xff ? null : recovery };
}

/** The largest statement ATTEST_KEY or ATTEST_DEVICE answers: 64 approvers and their fingerprints fit in 8 KiB. */
export const MAX_STATEMENT_BYTES = 64 * 1024;

// ATTEST_KEY (0x31): `str handle`; answers `bytes statement` (a key statement of common/attestation.ts,
// RFC 8785 JSON, UTF-8) and `bytes signature` (64, Ed25519 by the attestation key). The device builds
// the statement from its own state: the handle is all the caller chooses.
export interface AttestKeyCommand {
  readonly handle: string;
}

export function encodeAttestKeyCommand(c: AttestKeyCommand): Buffer {
  return new FieldWriter().str(c.handle).toBuffer();
}

export function decodeAttestKeyCommand(fields: Buffer): AttestKeyCommand {
  const r = new FieldReader(fields);
  const handle = r.str('handle', 64);
  r.end();
  return { handle };
}

/** A statement the device built and its signature over ATTESTATION_DOMAIN and the statement (common/attestation.ts). */
export interface AttestationResult {
  readonly statement: string;
  readonly signature: Uint8Array;
}

export function encodeAttestKeyResult(a: AttestationResult): Buffer {
  return new FieldWriter().bytes(Buffer.from(a.statement, 'utf8')).bytes(a.signature).toBuffer();
}

export function decodeAttestKeyResult(fields: Buffer): AttestationResult {
  const r = new FieldReader(fields);
  const statement = utf8(r.bytes('statement'), 'statement', MAX_STATEMENT_BYTES);
  const signature = r.bytes('signature', 64);
  r.end();
  return { statement, signature };
}

// ATTEST_DEVICE (0x32): no request fields; answers as ATTEST_KEY, with a device statement (its
// governance and the rules it enforces).
export const encodeAttestDeviceCommand = encodeNoFields;
export const decodeAttestDeviceCommand = decodeNoFields;
export const encodeAttestDeviceResult = encodeAttestKeyResult;
export const decodeAttestDeviceResult = decodeAttestKeyResult;

// EXPORT_BACKUP (0x40): `u8 threshold`, `u8 n`, n × `bytes custodianKey` (32, X25519, in share order),
// `approvals` of governance messages; answers `bytes backup`, `u8 n`, n × `bytes share` (each encrypted
// to its custodian). The device exports only to custodians it holds, once the admin quorum approved
// exactly these keys and this threshold at its current sequence.
export interface ExportBackupCommand {
  readonly threshold: number;
  /** The custodians' X25519 public keys: share i is encrypted to the i-th. */
  readonly custodians: readonly Uint8Array[];
  readonly approvals: readonly ApprovalRecord[];
}

export function encodeExportBackupCommand(c: ExportBackupCommand): Buffer {
  const w = new FieldWriter().u8(c.threshold).u8(c.custodians.length);
  for (const key of c.custodians) w.bytes(key);
  return writeApprovals(w, c.approvals).toBuffer();
}

export function decodeExportBackupCommand(fields: Buffer, maxMessageBytes: number, checkKey: ApproverKeyCheck): ExportBackupCommand {
  const r = new FieldReader(fields);
  const threshold = r.u8('threshold');
  const count = r.u8('custodians');
  if (count > MAX_CUSTODIAN_RECORDS) throw new ProtocolError(`at most ${MAX_CUSTODIAN_RECORDS} custodians`);
  const custodians: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const key = r.bytes('custodian key');
    if (key.length !== 32) throw new ProtocolError(`custodian ${i + 1}'s key must be 32 bytes (X25519), got ${key.length}`);
    custodians.push(key);
  }
  const approvals = readApprovals(r, maxMessageBytes, checkKey);
  r.end();
  return { threshold, custodians, approvals };
}

export interface ExportBackupResult {
  readonly backup: string;
  readonly shares: readonly string[];
}

export function encodeExportBackupResult(e: ExportBackupResult): Buffer {
  const w = new FieldWriter().bytes(Buffer.from(e.backup, 'utf8')).u8(e.shares.length);
  for (const share of e.shares) w.bytes(Buffer.from(share, 'utf8'));
  return w.toBuffer();
}

export function decodeExportBackupResult(fields: Buffer): ExportBackupResult {
  const r = new FieldReader(fields);
  const backup = jsonText(r.bytes('backup'));
  const count = r.u8('shares');
  const shares: string[] = [];
  for (let i = 0; i < count; i++) shares.push(jsonText(r.bytes('share')));
  r.end();
  return { backup, shares };
}

// IMPORT_BACKUP (0x41): `bytes backup`, `u8 k`, k × `bytes share`; answers `str deviceId`, `u32 keys`.
export interface ImportBackupCommand {
  readonly backup: string;
  /** The custodians' plain share bytes, decrypted already. */
  readonly shares: readonly Uint8Array[];
}

export function encodeImportBackupCommand(c: ImportBackupCommand): Buffer {
  const w = new FieldWriter().bytes(Buffer.from(c.backup, 'utf8')).u8(c.shares.length);
  for (const share of c.shares) w.bytes(share);
  return w.toBuffer();
}

export function decodeImportBackupCommand(fields: Buffer): ImportBackupCommand {
  const r = new FieldReader(fields);
  const backup = jsonText(r.bytes('backup'));
  const count = r.u8('shares');
  const shares: Uint8Array[] = [];
  for (let i = 0; i < count; i++) shares.push(r.bytes('share'));
  r.end();
  return { backup, shares };
}

/** The restored device's id and how many keys it holds. */
export interface ImportBackupResult {
  readonly deviceId: string;
  readonly keys: number;
}

export function encodeImportBackupResult(i: ImportBackupResult): Buffer {
  return new FieldWriter().str(i.deviceId).u32(i.keys).toBuffer();
}

export function decodeImportBackupResult(fields: Buffer): ImportBackupResult {
  const r = new FieldReader(fields);
  const deviceId = r.str('device id');
  const keys = r.u32('keys');
  r.end();
  return { deviceId, keys };
}
