/**
 * The simulator's Ledger mode: a Ledger running the Ethereum app 1.10.4, emulated at the APDU level
 * (LedgerHQ/app-ethereum doc/ethapp.adoc; status words as in docs/device-protocol.md "Ledger mode").
 * Keys are derived with BIP32 from one seed; signatures are RFC 6979, low-S.
 *
 * Answers `data || SW1 SW2` to every APDU and never throws: malformed input gets 0x6700 (length),
 * 0x6A80 (data), 0x6B00 (P1/P2), 0x6D00 (INS) or 0x6E00 (CLA). Simulator-only controls, CLA 0xF0, stand
 * in for the person at the device: F0 01 00 00 rejects the next signing (0x6985), F0 02 01/00 00 locks
 * and unlocks (0x5515), F0 03 00/01 00 switches to the dashboard and back to the Ethereum app.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { concatBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { HDKey } from '@scure/bip32';
import { addr } from 'micro-eth-signer';
import { RLP } from 'micro-eth-signer/core/rlp.js';

const ETHEREUM_APP_NAME = 'Ethereum';
const ETHEREUM_APP_VERSION = '1.10.4';
const DASHBOARD_NAME = 'BOLOS';
const DASHBOARD_VERSION = '2.2.3';

export const SW = {
  OK: 0x9000,
  LOCKED: 0x5515,
  WRONG_LENGTH: 0x6700,
  REJECTED: 0x6985,
  INCORRECT_DATA: 0x6a80,
  WRONG_P1_P2: 0x6b00,
  INS_NOT_SUPPORTED: 0x6d00,
  CLA_NOT_SUPPORTED: 0x6e00,
  TECHNICAL_PROBLEM: 0x6f00,
} as const;

const CLA_DASHBOARD = 0xb0;
const CLA_ETHEREUM = 0xe0;
const CLA_SIMULATOR = 0xf0;
const MAX_PATH_DEPTH = 10;
/** The largest transaction or message the emulated app takes. */
const MAX_SIGNED_BYTES = 65_536;

export interface LedgerApp {
  /** One APDU in, `data || SW1 SW2` out. */
  handle(apdu: Uint8Array): Uint8Array;
}

class Refusal extends Error {
  constructor(readonly statusWord: number) {
    super(`status 0x${statusWord.toString(16)}`);
  }
}

function refuse(statusWord: number): never {
  throw new Refusal(statusWord);
}

function reply(data: Uint8Array, statusWord: number = SW.OK): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data);
  out[data.length] = statusWord >> 8;
  out[data.length + 1] = statusWord & 0xff;
  return out;
}

/** `count | u32be…` at the start of `data`; the indices and the bytes after them. */
function readPath(data: Uint8Array): { path: number[]; rest: Uint8Array } {
  const count = data[0];
  if (count === undefined || count === 0 || count > MAX_PATH_DEPTH || data.length < 1 + 4 * count) refuse(SW.INCORRECT_DATA);
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const path = Array.from({ length: count }, (_, i) => view.getUint32(1 + 4 * i));
  return { path, rest: data.subarray(1 + 4 * count) };
}

/**
 * The full length of a transaction from its first bytes: a type byte (1 or 2) then an RLP list, or a
 * legacy RLP list. Null while the list header is still incomplete.
 */
function transactionLength(bytes: Uint8Array): number | null {
  if (bytes.length === 0) return null;
  const first = bytes[0] as number;
  let offset = 0;
  if (first < 0x80) {
    if (first !== 1 && first !== 2) refuse(SW.INCORRECT_DATA);
    offset = 1;
  }
  const b = bytes[offset];
  if (b === undefined) return null;
  if (b < 0xc0) refuse(SW.INCORRECT_DATA);
  if (b < 0xf8) return offset + 1 + (b - 0xc0);
  const n = b - 0xf7;
  if (n > 3) refuse(SW.INCORRECT_DATA);
  if (bytes.length < offset + 1 + n) return null;
  let length = 0;
  for (let i = 0; i < n; i++) length = length * 256 + (bytes[offset + 1 + i] as number);
  return offset + 1 + n + length;
}

function bytesToBigInt(bytes: Uint8Array): bigint {
  return bytes.length === 0 ? 0n : BigInt('0x' + Buffer.from(bytes).toString('hex'));
}

/**
 * How the `v` byte of a signature over `tx` follows from its parity, once `tx` is checked to be a whole
 * transaction: the parity for typed ones; for legacy EIP-155 ones chainId·2 + 35 + parity truncated to a
 * byte, with chain ids above u32 reduced to their 4 most significant bytes (as the app does and
 * hw-app-eth undoes); 27 + parity without a chain id.
 */
function transactionV(tx: Uint8Array): (parity: number) => number {
  const typed = (tx[0] as number) < 0x80;
  let items: unknown;
  try {
    items = RLP.decode(typed ? tx.subarray(1) : tx);
  } catch {
    refuse(SW.INCORRECT_DATA);
  }
  if (!Array.isArray(items)) refuse(SW.INCORRECT_DATA);
  if (typed) {
    if (items.length !== (tx[0] === 1 ? 8 : 9)) refuse(SW.INCORRECT_DATA);
    return (parity) => parity;
  }
  if (items.length === 6) return (parity) => 27 + parity;
  const [chainIdItem, r, s] = items.slice(6) as unknown[];
  if (items.length !== 9 || !(chainIdItem instanceof Uint8Array) || !(r instanceof Uint8Array) || !(s instanceof Uint8Array) || r.length > 0 || s.length > 0) {
    refuse(SW.INCORRECT_DATA);
  }
  if (bytesToBigInt(chainIdItem) === 0n) return (parity) => 27 + parity;
  const chainId = bytesToBigInt(chainIdItem.subarray(0, 4));
  return (parity) => Number((chainId * 2n + 35n + BigInt(parity)) & 0xffn);
}

/** A chunked signing in progress: its path and the bytes received so far. */
interface Pending {
  readonly path: number[];
  readonly bytes: Uint8Array;
}

export function createLedgerApp(seed: Uint8Array): LedgerApp {
  const master = HDKey.fromMasterSeed(seed);
  let locked = false;
  let dashboard = false;
  let rejectNext = false;
  let pendingTx: Pending | null = null;
  let pendingMessage: (Pending & { readonly total: number }) | null = null;

  const forget = () => {
    pendingTx = null;
    pendingMessage = null;
  };

  const withKey = <T>(path: number[], use: (key: HDKey) => T): T => {
    let key = master;
    for (const index of path) {
      const child = key.deriveChild(index);
      if (key !== master) key.wipePrivateData();
      key = child;
    }
    try {
      return use(key);
    } finally {
      if (key !== master) key.wipePrivateData();
    }
  };

  /** v | r | s over `hash`, v from the recovery bit; the next signing is refused if one was asked for. */
  const sign = (path: number[], hash: Uint8Array, v: (parity: number) => number): Uint8Array => {
    if (rejectNext) {
      rejectNext = false;
      refuse(SW.REJECTED);
    }
    const recovered = withKey(path, (key) => secp256k1.sign(hash, key.privateKey as Uint8Array, { prehash: false, lowS: true, format: 'recovered' }));
    return concatBytes(Uint8Array.of(v(recovered[0] as number)), recovered.subarray(1));
  };

  const getAddress = (p1: number, p2: number, data: Uint8Array): Uint8Array => {
    if (p1 > 1 || p2 > 1) refuse(SW.WRONG_P1_P2);
    const { path, rest } = readPath(data);
    if (rest.length !== 0 && rest.length !== 8) refuse(SW.INCORRECT_DATA);
    return withKey(path, (key) => {
      const publicKey = secp256k1.Point.fromBytes(key.publicKey as Uint8Array).toBytes(false);
      const address = utf8ToBytes(addr.fromPublicKey(publicKey).slice(2));
      return concatBytes(Uint8Array.of(publicKey.length), publicKey, Uint8Array.of(address.length), address, p2 === 1 ? (key.chainCode as Uint8Array) : new Uint8Array(0));
    });
  };

  const signTransaction = (p1: number, p2: number, data: Uint8Array): Uint8Array => {
    if (p2 !== 0 || (p1 !== 0x00 && p1 !== 0x80)) refuse(SW.WRONG_P1_P2);
    let current: Pending;
    if (p1 === 0x00) {
      const { path, rest } = readPath(data);
      current = { path, bytes: rest.slice() };
    } else {
      if (!pendingTx) return refuse(SW.INCORRECT_DATA);
      current = { path: pendingTx.path, bytes: concatBytes(pendingTx.bytes, data) };
    }
    pendingTx = null;
    const total = transactionLength(current.bytes);
    if (total !== null && (total > MAX_SIGNED_BYTES || current.bytes.length > total)) refuse(SW.INCORRECT_DATA);
    if (total === null || current.bytes.length < total) {
      pendingTx = current;
      return new Uint8Array(0);
    }
    return sign(current.path, keccak_256(current.bytes), transactionV(current.bytes));
  };

  const signPersonalMessage = (p1: number, p2: number, data: Uint8Array): Uint8Array => {
    if (p2 !== 0 || (p1 !== 0x00 && p1 !== 0x80)) refuse(SW.WRONG_P1_P2);
    let current: Pending & { readonly total: number };
    if (p1 === 0x00) {
      const { path, rest } = readPath(data);
      if (rest.length < 4) refuse(SW.INCORRECT_DATA);
      const total = new DataView(rest.buffer, rest.byteOffset, 4).getUint32(0);
      if (total > MAX_SIGNED_BYTES) refuse(SW.INCORRECT_DATA);
      current = { path, total, bytes: rest.slice(4) };
    } else {
      if (!pendingMessage) return refuse(SW.INCORRECT_DATA);
      current = { ...pendingMessage, bytes: concatBytes(pendingMessage.bytes, data) };
    }
    pendingMessage = null;
    if (current.bytes.length > current.total) refuse(SW.INCORRECT_DATA);
    if (current.bytes.length < current.total) {
      pendingMessage = current;
      return new Uint8Array(0);
    }
    const message = current.bytes;
    const hash = keccak_256(concatBytes(utf8ToBytes(`\x19Ethereum Signed Message:\n${message.length}`), message));
    return sign(current.path, hash, (parity) => 27 + parity);
  };

  const ethereum = (ins: number, p1: number, p2: number, data: Uint8Array): Uint8Array => {
    // Another command ends a chunked signing in progress.
    if (ins !== 0x04) pendingTx = null;
    if (ins !== 0x08) pendingMessage = null;
    switch (ins) {
      case 0x02:
        return getAddress(p1, p2, data);
      case 0x04:
        return signTransaction(p1, p2, data);
      case 0x06: {
        if (p1 !== 0 || p2 !== 0) refuse(SW.WRONG_P1_P2);
        const [major, minor, patch] = ETHEREUM_APP_VERSION.split('.').map(Number) as [number, number, number];
        return Uint8Array.of(0x01, major, minor, patch);
      }
      case 0x08:
        return signPersonalMessage(p1, p2, data);
      default:
        return refuse(SW.INS_NOT_SUPPORTED);
    }
  };

  const appAndVersion = (): Uint8Array => {
    const name = utf8ToBytes(dashboard ? DASHBOARD_NAME : ETHEREUM_APP_NAME);
    const version = utf8ToBytes(dashboard ? DASHBOARD_VERSION : ETHEREUM_APP_VERSION);
    return concatBytes(Uint8Array.of(0x01, name.length), name, Uint8Array.of(version.length), version, Uint8Array.of(0x01, 0x00));
  };

  const simulatorControl = (ins: number, p1: number, p2: number, data: Uint8Array): Uint8Array => {
    if (data.length !== 0) refuse(SW.WRONG_LENGTH);
    if (ins < 0x01 || ins > 0x03) refuse(SW.INS_NOT_SUPPORTED);
    if (p2 !== 0 || (ins === 0x01 ? p1 !== 0 : p1 > 1)) refuse(SW.WRONG_P1_P2);
    if (ins === 0x01) {
      rejectNext = true;
    } else {
      forget();
      if (ins === 0x02) locked = p1 === 1;
      else dashboard = p1 === 0;
    }
    return new Uint8Array(0);
  };

  const dispatch = (apdu: Uint8Array): Uint8Array => {
    if (apdu.length < 4 || (apdu.length > 4 && apdu.length !== 5 + (apdu[4] as number))) return refuse(SW.WRONG_LENGTH);
    const [cla = 0, ins = 0, p1 = 0, p2 = 0] = apdu;
    const data = apdu.subarray(5);
    if (cla === CLA_SIMULATOR) return simulatorControl(ins, p1, p2, data);
    if (locked) return refuse(SW.LOCKED);
    if (cla === CLA_DASHBOARD) {
      if (ins !== 0x01) refuse(SW.INS_NOT_SUPPORTED);
      if (p1 !== 0 || p2 !== 0) refuse(SW.WRONG_P1_P2);
      return appAndVersion();
    }
    if (cla !== CLA_ETHEREUM || dashboard) return refuse(SW.CLA_NOT_SUPPORTED);
    return ethereum(ins, p1, p2, data);
  };

  return {
    handle(apdu: Uint8Array): Uint8Array {
      try {
        return reply(dispatch(apdu));
      } catch (error) {
        forget();
        return reply(new Uint8Array(0), error instanceof Refusal ? error.statusWord : SW.TECHNICAL_PROBLEM);
      }
    },
  };
}
