/**
 * A Ledger running its Ethereum app, as a SigningDevice (LedgerHQ/app-ethereum doc/ethapp.adoc).
 *
 * Keys are derived on the device from its seed, so "generating" a pool key picks a path:
 * m/44'/60'/A'/0/0 with A = (first 4 bytes of sha256("custody-pool:" + poolId + ":" + chain)) & 0x7fffffff,
 * the same key every time for the same pool and chain. Account 0 (m/44'/60'/0'/0/0) names the device
 * (`ledger-` + sha256 of its compressed key) and is never a pool key.
 *
 * The Ledger holds no pool bindings and cannot check a quorum: the gateway checks the approvals, and the
 * Ledger adds a person's confirmation on its screen. It signs EVM transactions only, from their bytes,
 * and shows them before signing. Every signature is checked to recover to the path's key over the
 * request's digest before it is returned. One operation at a time; a signing call is never retried.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, concatBytes, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { addr } from 'micro-eth-signer';
import { DeviceError, isCustodyError } from '../../../common/errors.js';
import type { Curve } from '../../domain/pool.js';
import type { ControlSignRequest, DeviceInfo, DeviceKey, DeviceSignature, GeneratedKey, SignRequest, SigningDevice } from '../signing-device.js';
import { controlFormat } from '../../../common/control-message.js';
import {
  formatBip32Path,
  GET_APP_AND_VERSION,
  getAddressApdu,
  isTypedTransaction,
  legacyParity,
  parseAddressResponse,
  parseAppAndVersion,
  parseBip32Path,
  parseSignatureResponse,
  responseData,
  signPersonalMessageApdus,
  signTransactionApdus,
  wrongAppError,
} from './apdu.js';
import { createOneAtATime, type ApduTransport } from './transport.js';

export interface LedgerDeviceOptions {
  readonly transport: ApduTransport;
}

const HARDENED = 0x80000000;
/** The device's identity key, never a pool key. */
export const IDENTITY_PATH = "m/44'/60'/0'/0/0";
const ETHEREUM_APP = 'Ethereum';
const EVM_CHAIN = /^eip155:([1-9][0-9]{0,15})$/;

/** The path of the key of (pool, chain): m/44'/60'/A'/0/0, A from sha256 of the pair, never 0. */
export function poolKeyPath(poolId: string, chain: string): string {
  const hash = sha256(utf8ToBytes(`custody-pool:${poolId}:${chain}`));
  const account = new DataView(hash.buffer, hash.byteOffset, 4).getUint32(0) & 0x7fffffff;
  if (account === 0) {
    throw new DeviceError('invalid', 'ledger_path_collision', `pool "${poolId}" on ${chain} maps to account 0, the Ledger's identity key: use another pool id`);
  }
  return formatBip32Path([44 + HARDENED, 60 + HARDENED, account + HARDENED, 0, 0]);
}

function evmChainId(chain: string): bigint {
  const m = EVM_CHAIN.exec(chain);
  if (!m) {
    throw new DeviceError('invalid', 'ledger_unsupported_chain', `a Ledger signs with its Ethereum app, which signs EVM transactions only: chain "${chain.slice(0, 80)}" is not an eip155 chain`);
  }
  return BigInt(m[1] as string);
}

/** The key at `path`: its compressed form, checked against the address the device computed. */
export async function readPublicKey(transport: ApduTransport, path: string): Promise<Uint8Array> {
  const command = 'GET ETH PUBLIC ADDRESS';
  const { publicKey, address } = parseAddressResponse(responseData(await transport.exchange(getAddressApdu(path)), command));
  let point;
  try {
    point = secp256k1.Point.fromBytes(publicKey);
  } catch (error) {
    throw new DeviceError('unavailable', 'ledger_protocol_error', `${command}: the Ledger answered a public key that is not on secp256k1`, { cause: error });
  }
  if (addr.fromPublicKey(publicKey).toLowerCase() !== address.toLowerCase()) {
    throw new DeviceError('unavailable', 'ledger_protocol_error', `${command}: the Ledger's address ${address} is not the address of the key it returned`);
  }
  return point.toBytes(true);
}

const CURVE_ORDER = secp256k1.Point.Fn.ORDER;

/**
 * r || s (low-S; a high S is replaced by n - s and the parity flipped) after checking that it recovers
 * to `publicKey` over `digest`; `signature_mismatch` otherwise.
 */
function checkedSignature(r: Uint8Array, s: Uint8Array, parity: 0 | 1, digest: Uint8Array, publicKey: Uint8Array): { signature: Uint8Array; recovery: 0 | 1 } {
  const mismatch = (why: string) => new DeviceError('internal', 'signature_mismatch', `the Ledger's signature was refused: ${why}`);
  let sig;
  try {
    sig = new secp256k1.Signature(BigInt('0x' + bytesToHex(r)), BigInt('0x' + bytesToHex(s)), parity);
  } catch {
    throw mismatch('r or s is out of range');
  }
  if (sig.hasHighS()) sig = new secp256k1.Signature(sig.r, CURVE_ORDER - sig.s, parity === 0 ? 1 : 0);
  const recovery = sig.recovery === 1 ? 1 : 0;
  let recovered: string;
  try {
    recovered = bytesToHex(sig.recoverPublicKey(digest).toBytes(true));
  } catch {
    throw mismatch('no public key recovers from it');
  }
  if (recovered !== bytesToHex(publicKey)) throw mismatch('it does not recover to the key of the signing path');
  return { signature: sig.toBytes('compact'), recovery };
}

function decodeUnsignedTx(hex: string): Uint8Array {
  if (!/^0x(?:[0-9a-fA-F]{2})+$/.test(hex)) throw new DeviceError('invalid', 'ledger_bad_transaction', '"transaction.unsignedTx" expected 0x-prefixed hex of the unsigned transaction');
  return hexToBytes(hex.slice(2));
}

/**
 * Signs `message` with EIP-191 personal_sign (SIGN ETH PERSONAL MESSAGE, E0 08) on the key at `path`,
 * for an approver who approves with a Ledger: 65 bytes r || s || v, v = 27 + parity.
 */
export async function signPersonalMessage(transport: ApduTransport, path: string, message: Uint8Array | string): Promise<Uint8Array> {
  const bytes = typeof message === 'string' ? utf8ToBytes(message) : message;
  const publicKey = await readPublicKey(transport, path);
  let data: Uint8Array = new Uint8Array(0);
  for (const apdu of signPersonalMessageApdus(parseBip32Path(path), bytes)) {
    data = responseData(await transport.exchange(apdu), 'SIGN ETH PERSONAL MESSAGE');
  }
  const { v, r, s } = parseSignatureResponse(data, 'SIGN ETH PERSONAL MESSAGE');
  if (v !== 27 && v !== 28) throw new DeviceError('unavailable', 'ledger_protocol_error', `SIGN ETH PERSONAL MESSAGE: v ${v}, expected 27 or 28`);
  const digest = keccak_256(concatBytes(utf8ToBytes(`\x19Ethereum Signed Message:\n${bytes.length}`), bytes));
  const checked = checkedSignature(r, s, v === 27 ? 0 : 1, digest, publicKey);
  return concatBytes(checked.signature, Uint8Array.of(27 + checked.recovery));
}

export function createLedgerDevice(options: LedgerDeviceOptions) {
  const { transport } = options;
  const oneAtATime = createOneAtATime();
  const call = async (apdu: Uint8Array, command: string) => responseData(await transport.exchange(apdu), command);

  const keyAt = (path: string) => readPublicKey(transport, path);
  const readInfo = (): Promise<DeviceInfo> =>
    oneAtATime(async () => {
      const app = parseAppAndVersion(await call(GET_APP_AND_VERSION, 'GET APP AND VERSION'));
      if (app.name !== ETHEREUM_APP) throw wrongAppError(app.name);
      const identity = await keyAt(IDENTITY_PATH);
      return {
        id: 'ledger-' + bytesToHex(sha256(identity)).slice(0, 16),
        type: 'ledger',
        model: `Ledger ${app.name} ${app.version}`,
        firmware: app.version,
        attestationPublicKey: null,
        checksQuorum: false,
          enforces: [],
      };
    });
  // A Ledger busy with a signing is alive: readiness checks get what it said last rather than a busy error.
  let lastInfo: DeviceInfo | null = null;

  const device = {
    async info(): Promise<DeviceInfo> {
      try {
        lastInfo = await readInfo();
        return lastInfo;
      } catch (error) {
        if (lastInfo !== null && isCustodyError(error) && error.code === 'ledger_busy') return lastInfo;
        throw error;
      }
    },

    /** Nothing to bind: the Ledger keeps no approvers; the gateway checks the quorum before it signs. */
    async enrollPool(): Promise<void> {},

    /** Nothing to bind: governance quorums are checked by the gateway. */
    async enrollGovernance(): Promise<void> {},

    /** Nothing to change in the device: the gateway checks the admins' approvals (docs/threat-model.md). */
    async governPool(): Promise<void> {},

    /** The device holds no freeze: the gateway's freeze is the only one on this backend. */
    async freezePool(): Promise<void> {},

    async governanceState(): Promise<null> {
      return null;
    },

    /** The key of (pool, chain) at its derived path; the same key each time (the device derives it). */
    generateKey(poolId: string, chain: string, curve: Curve): Promise<GeneratedKey> {
      return oneAtATime(async () => {
        evmChainId(chain);
        if (curve !== 'secp256k1') throw new DeviceError('invalid', 'ledger_unsupported_chain', `a Ledger's Ethereum app holds secp256k1 keys only, not ${curve}`);
        const path = poolKeyPath(poolId, chain);
        return { handle: path, curve, publicKey: bytesToHex(await keyAt(path)) };
      });
    },

    /** The key at a path; the Ledger does not know which pool uses it, so poolId and chain are ''. */
    publicKey(handle: string): Promise<DeviceKey> {
      return oneAtATime(async () => ({ handle, poolId: '', chain: '', curve: 'secp256k1' as const, publicKey: bytesToHex(await keyAt(handle)) }));
    },

    /** A Ledger cannot enumerate the keys it could derive. */
    async listKeys(): Promise<readonly DeviceKey[]> {
      return [];
    },

    sign(request: SignRequest): Promise<DeviceSignature> {
      return oneAtATime(async () => {
        if (request.scheme !== 'ecdsa-secp256k1') {
          throw new DeviceError('invalid', 'ledger_unsupported_scheme', `a Ledger's Ethereum app signs with ecdsa-secp256k1 only, not ${request.scheme}`);
        }
        const chainId = evmChainId(request.transaction.chain);
        const path = parseBip32Path(request.handle);
        const tx = decodeUnsignedTx(request.transaction.unsignedTx);
        if (bytesToHex(keccak_256(tx)) !== bytesToHex(request.digest)) {
          throw new DeviceError('invalid', 'ledger_digest_mismatch', 'the unsigned transaction does not hash (keccak256) to the digest the approvals name');
        }
        const publicKey = await readPublicKey(transport, request.handle);
        let data: Uint8Array = new Uint8Array(0);
        for (const apdu of signTransactionApdus(path, tx)) data = await call(apdu, 'SIGN ETH TRANSACTION');
        const { v, r, s } = parseSignatureResponse(data);
        let parity: 0 | 1;
        if (isTypedTransaction(tx)) {
          if (v !== 0 && v !== 1) throw new DeviceError('unavailable', 'ledger_protocol_error', `SIGN ETH TRANSACTION: v ${v} for a typed transaction, expected 0 or 1`);
          parity = v;
        } else {
          parity = legacyParity(v, chainId);
        }
        const part = checkedSignature(r, s, parity, request.digest, publicKey);
        return { scheme: request.scheme, signature: part.signature, recovery: part.recovery, parts: [part] };
      });
    },

    /** EIP-191 only (the Ethereum app's personal message); the person at the device sees and confirms the challenge. */
    signMessage(request: ControlSignRequest): Promise<{ signature: Uint8Array; recovery: 0 | 1 | null }> {
      return oneAtATime(async () => {
        if (controlFormat(request.chain) !== 'eip191') {
          throw new DeviceError('invalid', 'ledger_unsupported_chain', `a Ledger's Ethereum app signs EIP-191 messages only, not for ${request.chain}`);
        }
        const signed = await signPersonalMessage(transport, request.handle, request.challenge);
        return { signature: signed.subarray(0, 64), recovery: ((signed[64] as number) - 27) as 0 | 1 };
      });
    },

    close(): Promise<void> {
      return transport.close();
    },
  } satisfies SigningDevice;
  return device;
}
