/**
 * The Ledger Ethereum app's commands (LedgerHQ/app-ethereum doc/ethapp.adoc): BIP32 paths, GET ETH
 * PUBLIC ADDRESS (E0 02), SIGN ETH TRANSACTION (E0 04), GET APP CONFIGURATION (E0 06), SIGN ETH
 * PERSONAL MESSAGE (E0 08), the dashboard's GET APP AND VERSION (B0 01), and the one table that maps
 * status words to errors saying what to do next. Pure: bytes in, bytes out; transports move them.
 *
 * An APDU is `CLA INS P1 P2 Lc data` with Lc one byte, so data is at most 255 bytes; long payloads go
 * in chunks, the first one P1 00 and the next ones P1 80.
 */
import { DeviceError, type ErrorKind } from '../../../common/errors.js';

const CLA_ETHEREUM = 0xe0;
const INS_GET_ADDRESS = 0x02;
const INS_SIGN_TRANSACTION = 0x04;
const INS_GET_CONFIGURATION = 0x06;
const INS_SIGN_PERSONAL_MESSAGE = 0x08;
const P1_FIRST_CHUNK = 0x00;
const P1_NEXT_CHUNK = 0x80;
const MAX_APDU_DATA_BYTES = 255;
/** Data bytes per chunk: what hw-app-eth sent for years, well inside every app version's buffer. */
export const CHUNK_BYTES = 150;
export const MAX_PATH_DEPTH = 10;
const HARDENED = 0x80000000;

const SW_OK = 0x9000;

// ---- status words ----------------------------------------------------------------------------------

interface StatusMeaning {
  readonly kind: ErrorKind;
  readonly code: string;
  readonly message: string;
}

const WRONG_APP: StatusMeaning = {
  kind: 'unavailable',
  code: 'ledger_wrong_app',
  message: 'the Ethereum app is not open on the Ledger: open it on the device and try again',
};

/** What each status word means and what to do about it (app-ethereum doc; devices.md). */
export const LEDGER_STATUS_WORDS: ReadonlyMap<number, StatusMeaning> = new Map([
  [0x6985, { kind: 'forbidden', code: 'ledger_rejected_on_device', message: 'rejected on the Ledger (someone pressed Reject): nothing was signed; if the request is right, send it again and approve it on the device' }],
  [0x5501, { kind: 'forbidden', code: 'ledger_refused_on_device', message: 'refused on the Ledger by its user: nothing was signed' }],
  [0x5515, { kind: 'unavailable', code: 'ledger_locked', message: 'the Ledger is locked: unlock it with its PIN and try again' }],
  [0x6e00, WRONG_APP],
  [0x6e01, WRONG_APP],
  [0x6d00, { kind: 'unavailable', code: 'ledger_ins_not_supported', message: 'the open app does not know this command: open the Ethereum app (update it if it is old)' }],
  [0x6a80, { kind: 'invalid', code: 'ledger_incorrect_data', message: 'the Ethereum app refused the data as incorrect; for a contract call, enable blind signing in the app\'s settings' }],
  [0x6b00, { kind: 'internal', code: 'ledger_bad_parameters', message: 'the Ethereum app refused the P1/P2 parameters: update the Ethereum app' }],
  [0x6982, { kind: 'unavailable', code: 'ledger_security_status', message: 'security status not satisfied: unlock the Ledger, open the Ethereum app and keep the device awake' }],
  [0x6700, { kind: 'internal', code: 'ledger_wrong_length', message: 'the Ethereum app refused the length of the command: update the Ethereum app' }],
]);

/** A status word other than 0x9000, mapped through LEDGER_STATUS_WORDS. */
export class LedgerStatusError extends DeviceError {
  readonly statusWord: number;
  constructor(statusWord: number, command: string) {
    const hex = '0x' + statusWord.toString(16).padStart(4, '0');
    const meaning = LEDGER_STATUS_WORDS.get(statusWord) ?? {
      kind: 'unavailable' as const,
      code: 'ledger_status',
      message: 'the Ledger answered an unexpected status: check that the Ethereum app is open and up to date',
    };
    super(meaning.kind, meaning.code, `${command}: ${meaning.message} (status ${hex})`, { details: { statusWord: hex } });
    this.statusWord = statusWord;
  }
}

/** The error when the open app is `name` rather than Ethereum (GET APP AND VERSION). */
export function wrongAppError(name: string): DeviceError {
  return new DeviceError(WRONG_APP.kind, WRONG_APP.code, `the open app on the Ledger is "${name}": ${WRONG_APP.message}`);
}

function protocolError(command: string, message: string): DeviceError {
  return new DeviceError('unavailable', 'ledger_protocol_error', `${command}: malformed answer from the Ledger (${message})`);
}

/** The data of a response (data || SW1 SW2) whose status is 0x9000; otherwise its mapped error. */
export function responseData(response: Uint8Array, command: string): Uint8Array {
  if (response.length < 2) throw protocolError(command, `${response.length} bytes, no status word`);
  const statusWord = ((response[response.length - 2] as number) << 8) | (response[response.length - 1] as number);
  if (statusWord !== SW_OK) throw new LedgerStatusError(statusWord, command);
  return response.subarray(0, response.length - 2);
}

// ---- APDUs and paths -------------------------------------------------------------------------------

export function encodeApdu(cla: number, ins: number, p1: number, p2: number, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  for (const [field, value] of [['CLA', cla], ['INS', ins], ['P1', p1], ['P2', p2]] as const) {
    if (!Number.isInteger(value) || value < 0 || value > 0xff) throw new DeviceError('invalid', 'ledger_bad_apdu', `"${field}" expected one byte, got ${value}`);
  }
  if (data.length > MAX_APDU_DATA_BYTES) throw new DeviceError('invalid', 'ledger_bad_apdu', `APDU data expected at most ${MAX_APDU_DATA_BYTES} bytes, got ${data.length}`);
  const apdu = new Uint8Array(5 + data.length);
  apdu.set([cla, ins, p1, p2, data.length]);
  apdu.set(data, 5);
  return apdu;
}

/** Parses `m/44'/60'/0'/0/0` (the `m/` is optional, `h` marks hardened too): 1 to 10 indices. */
export function parseBip32Path(path: string): number[] {
  const bad = (why: string) => new DeviceError('invalid', 'ledger_bad_path', `BIP32 path "${path.slice(0, 80)}" ${why}`);
  const parts = path.replace(/^m\//, '').split('/');
  if (path === 'm' || path === '' || parts.length > MAX_PATH_DEPTH) throw bad(`must have 1 to ${MAX_PATH_DEPTH} levels`);
  return parts.map((part) => {
    const m = /^([0-9]{1,10})(['hH]?)$/.exec(part);
    if (!m) throw bad(`has a bad level "${part.slice(0, 20)}"`);
    const index = Number(m[1]);
    if (index >= HARDENED) throw bad(`has level ${index}, expected below 2^31`);
    return m[2] ? index + HARDENED : index;
  });
}

export function formatBip32Path(indices: readonly number[]): string {
  return ['m', ...indices.map((i) => (i >= HARDENED ? `${i - HARDENED}'` : String(i)))].join('/');
}

/** `count | u32be index…`, the form every Ethereum app command starts with. */
export function encodeBip32Path(path: string | readonly number[]): Uint8Array {
  const indices = typeof path === 'string' ? parseBip32Path(path) : path;
  if (indices.length === 0 || indices.length > MAX_PATH_DEPTH) throw new DeviceError('invalid', 'ledger_bad_path', `BIP32 path must have 1 to ${MAX_PATH_DEPTH} levels, got ${indices.length}`);
  const out = new Uint8Array(1 + 4 * indices.length);
  const view = new DataView(out.buffer);
  out[0] = indices.length;
  indices.forEach((index, i) => {
    if (!Number.isInteger(index) || index < 0 || index > 0xffffffff) throw new DeviceError('invalid', 'ledger_bad_path', `BIP32 index ${index} is not a u32`);
    view.setUint32(1 + 4 * i, index);
  });
  return out;
}

// ---- B0 01 GET APP AND VERSION, E0 06 GET APP CONFIGURATION ---------------------------------------

export const GET_APP_AND_VERSION = Uint8Array.of(0xb0, 0x01, 0x00, 0x00, 0x00);
export const GET_APP_CONFIGURATION = Uint8Array.of(CLA_ETHEREUM, INS_GET_CONFIGURATION, 0x00, 0x00, 0x00);

export interface AppAndVersion {
  readonly name: string;
  readonly version: string;
  readonly flags: Uint8Array;
}

/** `format 1 | name length | name | version length | version | flags length | flags`. */
export function parseAppAndVersion(data: Uint8Array): AppAndVersion {
  const command = 'GET APP AND VERSION';
  if (data[0] !== 1) throw protocolError(command, `format ${data[0] ?? 'missing'}, expected 1`);
  let offset = 1;
  const field = (what: string): Uint8Array => {
    const length = data[offset];
    if (length === undefined || offset + 1 + length > data.length) throw protocolError(command, `${what} runs past the answer`);
    const value = data.subarray(offset + 1, offset + 1 + length);
    offset += 1 + length;
    return value;
  };
  const ascii = (bytes: Uint8Array) => String.fromCharCode(...bytes);
  const name = ascii(field('app name'));
  const version = ascii(field('version'));
  const flags = offset < data.length ? field('flags').slice() : new Uint8Array(0);
  return { name, version, flags };
}

export interface AppConfiguration {
  readonly blindSigningEnabled: boolean;
  readonly version: string;
}

/** `flags | major | minor | patch`; flag 0x01 = blind signing (arbitrary contract data) enabled. */
export function parseAppConfiguration(data: Uint8Array): AppConfiguration {
  if (data.length < 4) throw protocolError('GET APP CONFIGURATION', `${data.length} bytes, expected at least 4`);
  return { blindSigningEnabled: ((data[0] as number) & 0x01) === 1, version: `${data[1]}.${data[2]}.${data[3]}` };
}

// ---- E0 02 GET ETH PUBLIC ADDRESS ------------------------------------------------------------------

export function getAddressApdu(path: string | readonly number[], options: { display?: boolean; chainCode?: boolean } = {}): Uint8Array {
  return encodeApdu(CLA_ETHEREUM, INS_GET_ADDRESS, options.display ? 0x01 : 0x00, options.chainCode ? 0x01 : 0x00, encodeBip32Path(path));
}

export interface AddressResponse {
  /** Uncompressed SEC1 point, 65 bytes. */
  readonly publicKey: Uint8Array;
  /** `0x` and the 40 hex characters exactly as the device sent them. */
  readonly address: string;
  readonly chainCode: Uint8Array | null;
}

/** `0x41 | 65-byte public key | 0x28 | 40 ASCII hex chars | [32-byte chain code]`. */
export function parseAddressResponse(data: Uint8Array, withChainCode = false): AddressResponse {
  const command = 'GET ETH PUBLIC ADDRESS';
  if (data[0] !== 65 || data[1] !== 0x04) throw protocolError(command, 'expected a 65-byte uncompressed public key');
  if (data[66] !== 40) throw protocolError(command, 'expected 40 address characters');
  const chars = String.fromCharCode(...data.subarray(67, 107));
  if (!/^[0-9a-fA-F]{40}$/.test(chars)) throw protocolError(command, 'the address is not 40 hex characters');
  const expectedLength = 107 + (withChainCode ? 32 : 0);
  if (data.length !== expectedLength) throw protocolError(command, `${data.length} bytes, expected ${expectedLength}`);
  return { publicKey: data.slice(1, 66), address: '0x' + chars, chainCode: withChainCode ? data.slice(107, 139) : null };
}

// ---- E0 04 SIGN ETH TRANSACTION --------------------------------------------------------------------

/** Start offsets of the top-level items of the RLP list that makes up `list` (Yellow Paper appendix B). */
function rlpListItemOffsets(list: Uint8Array): number[] {
  const bad = (why: string) => new DeviceError('invalid', 'ledger_bad_transaction', `the unsigned transaction is not a well-formed RLP list: ${why}`);
  const header = (offset: number): { payload: number; end: number; list: boolean } => {
    const b = list[offset];
    if (b === undefined) throw bad('it ends inside an item');
    const long = (base: number): { payload: number; end: number } => {
      const n = b - base;
      if (offset + 1 + n > list.length) throw bad('a length runs past the end');
      let length = 0;
      for (let i = 0; i < n; i++) length = length * 256 + (list[offset + 1 + i] as number);
      return { payload: offset + 1 + n, end: offset + 1 + n + length };
    };
    if (b < 0x80) return { payload: offset, end: offset + 1, list: false };
    if (b < 0xb8) return { payload: offset + 1, end: offset + 1 + b - 0x80, list: false };
    if (b < 0xc0) return { ...long(0xb7), list: false };
    if (b < 0xf8) return { payload: offset + 1, end: offset + 1 + b - 0xc0, list: true };
    return { ...long(0xf7), list: true };
  };
  const top = header(0);
  if (!top.list || top.end !== list.length) throw bad('expected one list spanning the whole transaction');
  const offsets: number[] = [];
  for (let offset = top.payload; offset < top.end; ) {
    offsets.push(offset);
    offset = header(offset).end;
    if (offset > top.end) throw bad('an item runs past the end of the list');
  }
  return offsets;
}

/** Typed transactions (EIP-2718) start with a type byte below 0x80; legacy ones with an RLP list. */
export function isTypedTransaction(tx: Uint8Array): boolean {
  return tx.length > 0 && (tx[0] as number) < 0x80;
}

/**
 * The chunks of SIGN ETH TRANSACTION: `path | tx` cut into CHUNK_BYTES pieces, P1 00 then P1 80. A legacy
 * EIP-155 transaction ends with `chainId, 0, 0`; the app may take a chunk that ends just before them
 * for a complete pre-EIP-155 transaction, so the last chunk must hold those items and at least one byte
 * before them: when it would not, the last cut moves back (those items take at most 35 bytes).
 */
export function signTransactionApdus(path: string | readonly number[], tx: Uint8Array): Uint8Array[] {
  if (tx.length === 0) throw new DeviceError('invalid', 'ledger_bad_transaction', 'the unsigned transaction is empty');
  const encodedPath = encodeBip32Path(path);
  const payload = new Uint8Array(encodedPath.length + tx.length);
  payload.set(encodedPath);
  payload.set(tx, encodedPath.length);

  const cuts: number[] = [];
  for (let offset = 0; offset < payload.length; offset += CHUNK_BYTES) cuts.push(offset);
  if (!isTypedTransaction(tx) && cuts.length > 1) {
    const items = rlpListItemOffsets(tx);
    if (items.length === 9) {
      const tailStart = encodedPath.length + (items[6] as number);
      if ((cuts[cuts.length - 1] as number) >= tailStart) cuts[cuts.length - 1] = tailStart - 1;
    }
  }
  return cuts.map((cut, i) =>
    encodeApdu(CLA_ETHEREUM, INS_SIGN_TRANSACTION, i === 0 ? P1_FIRST_CHUNK : P1_NEXT_CHUNK, 0x00, payload.subarray(cut, cuts[i + 1] ?? payload.length)),
  );
}

export interface EthereumSignatureResponse {
  readonly v: number;
  readonly r: Uint8Array;
  readonly s: Uint8Array;
}

/** `v(1) | r(32) | s(32)`, the answer to the last chunk of E0 04 and E0 08. */
export function parseSignatureResponse(data: Uint8Array, command = 'SIGN ETH TRANSACTION'): EthereumSignatureResponse {
  if (data.length !== 65) throw protocolError(command, `${data.length} bytes, expected v | r | s (65)`);
  return { v: data[0] as number, r: data.slice(1, 33), s: data.slice(33, 65) };
}

/**
 * The chain id as the app folds it into a legacy `v` byte: ids above u32 keep their 4 most significant
 * bytes (the behaviour hw-app-eth's getV documents and undoes).
 */
export function deviceChainId(chainId: bigint): bigint {
  let bytes = chainId.toString(16);
  if (bytes.length % 2 === 1) bytes = '0' + bytes;
  return bytes.length > 8 ? BigInt('0x' + bytes.slice(0, 8)) : chainId;
}

/** The y parity a legacy EIP-155 signature's one-byte `v` encodes: v = (chainId·2 + 35 + parity) mod 256. */
export function legacyParity(v: number, chainId: bigint): 0 | 1 {
  const base = Number((deviceChainId(chainId) * 2n + 35n) & 0xffn);
  const parity = (v - base) & 0xff;
  if (parity !== 0 && parity !== 1) {
    throw protocolError('SIGN ETH TRANSACTION', `v ${v} does not encode a parity for chain id ${chainId}`);
  }
  return parity;
}

// ---- E0 08 SIGN ETH PERSONAL MESSAGE ---------------------------------------------------------------

/** First chunk `path | u32be message length | bytes`, then bytes; at most CHUNK_BYTES data per APDU. */
export function signPersonalMessageApdus(path: string | readonly number[], message: Uint8Array): Uint8Array[] {
  const encodedPath = encodeBip32Path(path);
  const head = new Uint8Array(encodedPath.length + 4);
  head.set(encodedPath);
  new DataView(head.buffer).setUint32(encodedPath.length, message.length);
  const firstBytes = CHUNK_BYTES - head.length;
  const first = new Uint8Array(head.length + Math.min(firstBytes, message.length));
  first.set(head);
  first.set(message.subarray(0, firstBytes), head.length);
  const apdus = [encodeApdu(CLA_ETHEREUM, INS_SIGN_PERSONAL_MESSAGE, P1_FIRST_CHUNK, 0x00, first)];
  for (let offset = firstBytes; offset < message.length; offset += CHUNK_BYTES) {
    apdus.push(encodeApdu(CLA_ETHEREUM, INS_SIGN_PERSONAL_MESSAGE, P1_NEXT_CHUNK, 0x00, message.subarray(offset, offset + CHUNK_BYTES)));
  }
  return apdus;
}
