/**
 * The PKCS#11 backend (OASIS PKCS#11 Base Specification v2.40; Ed25519 from PKCS#11 v3.0) over
 * pkcs11js: pool keys are generated on the token, private, sensitive and never extractable, and every
 * signature is made there. docs/pkcs11.md says how to configure it.
 *
 * - One session per device, opened lazily on first use (load the module, C_Initialize, find the slot
 *   by token label, open a R/W session, log in as user) and reused; calls run one at a time, because
 *   a PKCS#11 session must not be used by two operations at once.
 * - A key's handle is its label `custody:<poolId>:<chain>` (the form PoolKey.handle records); the
 *   private and public objects share that label and a random 16-byte CKA_ID.
 * - CKM_ECDSA returns a bare r|s with a random nonce, half the time high-S, and no recovery id: the
 *   gateway normalizes s to the low half (BIP-62, EIP-2), finds the recovery id by recovering the
 *   key, and verifies every signature before returning it.
 * - A token cannot check approvals: `checksQuorum` is false, the enroll and rebind calls do nothing,
 *   and the gateway's own quorum checks are the only ones on this backend.
 * - The PIN is never logged nor put in an error. It is a JavaScript string (pkcs11js takes one), so it
 *   cannot be zeroed; private keys never enter this process at all.
 */
import { randomBytes } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import pkcs11js, { PKCS11, type Handle, type Template } from 'pkcs11js';
import { assertChainId } from '../../../common/chain-id.js';
import { CustodyError, DeviceError, type ErrorKind } from '../../../common/errors.js';
import { POOL_ID, type Curve } from '../../domain/pool.js';
import type { ControlSignRequest, DeviceInfo, DeviceKey, DeviceSignature, GeneratedKey, SignRequest, SigningDevice } from '../signing-device.js';
import { controlFormat, controlSigningInput } from '../../../common/control-message.js';
import { compressedKey, recoversToKey } from '../../../common/libsecp256k1.js';

export interface Pkcs11DeviceOptions {
  /** Path of the token's PKCS#11 library (PKCS11_MODULE). */
  readonly module: string;
  /** The token's label (PKCS11_TOKEN_LABEL), without the blank padding. */
  readonly tokenLabel: string;
  /** The user PIN (PKCS11_PIN). */
  readonly pin: string;
}

/** PKCS#11 v3.0 (pkcs11t.h) Edwards-curve values, absent from pkcs11js 2.1.7, which follows v2.40. */
const CKK_EC_EDWARDS = 0x40;
const CKM_EC_EDWARDS_KEY_PAIR_GEN = 0x1055;
const CKM_EDDSA = 0x1057;

/** CKA_EC_PARAMS given at generation: DER OID 1.3.132.0.10 (secp256k1, SEC 2) and 1.3.101.112 (Ed25519, RFC 8410). */
const EC_PARAMS: Readonly<Record<Curve, string>> = { secp256k1: '06052b8104000a', ed25519: '06032b6570' };
/**
 * The CKA_EC_PARAMS a token reports for an Ed25519 key: the OID, or the DER PrintableString
 * "edwards25519" that PKCS#11 v3.0 also allows (SoftHSM2 2.6.1 stores the latter on the private key).
 */
const ED25519_PARAMS_READ = new Set([EC_PARAMS.ed25519, '130c656477617264733235353139']);
/** CKA_EC_POINT is a DER OCTET STRING: `04 41 04|X|Y` (uncompressed SEC1) or `04 20 | key` (RFC 8032). */
const EC_POINT_PREFIX: Readonly<Record<Curve, string>> = { secp256k1: '044104', ed25519: '0420' };
const EC_POINT_LENGTH: Readonly<Record<Curve, number>> = { secp256k1: 67, ed25519: 34 };

const LABEL_PREFIX = 'custody:';
const KEY_LABEL = /^custody:([^:]+):(.+)$/;
/** The most hashes one sign call covers (one Bitcoin transaction's inputs), as on the simulator. */
const MAX_HASHES = 256;
const SECP256K1_ORDER = secp256k1.Point.Fn.ORDER;

interface LoadedModule {
  readonly library: PKCS11;
  users: number;
}

/**
 * A module is initialized once per process and shared: a second C_Initialize fails, and one device's
 * C_Finalize would end every other device's sessions. The last device to close finalizes it.
 */
const loadedModules = new Map<string, LoadedModule>();
/**
 * Tokens a device of this process is logged in to. PKCS#11 login state belongs to the process, so a
 * second device on the same token would be let in whatever PIN it holds: it is refused instead.
 */
const tokensInUse = new Set<string>();

interface OpenToken {
  readonly library: PKCS11;
  readonly slot: Handle;
  readonly session: Handle;
}

interface TokenKey extends DeviceKey {
  readonly privateKey: Handle;
  readonly publicKeyBytes: Uint8Array;
}

type Part = DeviceSignature['parts'][number];

function isPkcs11Error(error: unknown): error is Error & { readonly code: number; readonly method: string } {
  return error instanceof pkcs11js.Pkcs11Error;
}

function failure(kind: ErrorKind, code: string, message: string, cause?: unknown): DeviceError {
  return new DeviceError(kind, code, message, cause === undefined ? {} : { cause });
}

/** Any error of a PKCS#11 call as a DeviceError that names the function and the CKR_ value. */
function asDeviceError(error: unknown): CustodyError {
  if (error instanceof CustodyError) return error;
  if (isPkcs11Error(error)) {
    return new DeviceError('unavailable', 'pkcs11_error', `the PKCS#11 token answered ${error.message} to ${error.method || 'a call'}`, {
      cause: error,
      details: { ckr: error.message, method: error.method },
    });
  }
  return failure('unavailable', 'pkcs11_error', `the PKCS#11 module failed: ${error instanceof Error ? error.message : String(error)}`, error);
}

function acquireModule(path: string): PKCS11 {
  const loaded = loadedModules.get(path);
  if (loaded) {
    loaded.users += 1;
    return loaded.library;
  }
  const library = new PKCS11();
  try {
    library.load(path);
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw failure(
      'unavailable',
      'pkcs11_module_missing',
      `cannot load the PKCS#11 module "${path}" (${reason}); set PKCS11_MODULE to the path of the token's PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so`,
      error,
    );
  }
  try {
    // OS locking: the async calls run on libuv's thread pool, and two devices may use one module.
    library.C_Initialize({ flags: pkcs11js.CKF_OS_LOCKING_OK });
  } catch (error) {
    library.close();
    throw asDeviceError(error);
  }
  loadedModules.set(path, { library, users: 1 });
  return library;
}

function releaseModule(path: string): void {
  const loaded = loadedModules.get(path);
  if (!loaded) return;
  loaded.users -= 1;
  if (loaded.users > 0) return;
  loadedModules.delete(path);
  try {
    loaded.library.C_Finalize();
  } finally {
    loaded.library.close();
  }
}

/** Token labels are blank-padded to 32 characters. */
function findSlot(library: PKCS11, tokenLabel: string): Handle {
  const seen: string[] = [];
  for (const slot of library.C_GetSlotList(true)) {
    const token = library.C_GetTokenInfo(slot);
    if ((token.flags & pkcs11js.CKF_TOKEN_INITIALIZED) === 0) continue;
    const label = token.label.trimEnd();
    if (label === tokenLabel) return slot;
    seen.push(JSON.stringify(label));
  }
  throw failure(
    'unavailable',
    'pkcs11_token_not_found',
    `no initialized PKCS#11 token is labelled "${tokenLabel}" (tokens seen: ${seen.length > 0 ? seen.join(', ') : 'none'}); set PKCS11_TOKEN_LABEL to one of them`,
  );
}

/** A CK_ULONG attribute: native byte order and size (little-endian, 4 or 8 bytes on the platforms Node runs on). */
function readUlong(value: Buffer): number {
  return value.length === 8 ? Number(value.readBigUInt64LE(0)) : value.readUInt32LE(0);
}

function keyLabel(poolId: string, chain: string): string {
  return `${LABEL_PREFIX}${poolId}:${chain}`;
}

/** Ed25519 wants the message itself; ECDSA wants one 32-byte hash per signature. */
function hashesToSign(request: SignRequest): Uint8Array[] {
  if (request.digest.length !== 32) throw failure('invalid', 'pkcs11_bad_request', `"digest" expected 32 bytes, got ${request.digest.length}`);
  const digestHex = bytesToHex(request.digest);
  const hashedPayload = bytesToHex(sha256(request.payload));
  if (request.scheme === 'ed25519') {
    // C_Sign refuses an empty input (CKR_ARGUMENTS_BAD); no transaction is empty.
    if (request.payload.length === 0) throw failure('invalid', 'pkcs11_bad_request', '"payload" must not be empty for ed25519');
    if (hashedPayload !== digestHex) throw failure('invalid', 'pkcs11_bad_request', '"digest" must be sha256 of the payload for ed25519');
    return [request.payload];
  }
  const count = request.payload.length / 32;
  if (!Number.isInteger(count) || count < 1 || count > MAX_HASHES) {
    throw failure('invalid', 'pkcs11_bad_request', `"payload" must be 1 to ${MAX_HASHES} hashes of 32 bytes for ${request.scheme}, got ${request.payload.length} bytes`);
  }
  // CKM_ECDSA accepts any input length and would sign a truncated or padded value: this split into
  // exact 32-byte hashes is the guard. The approvals name the digest, so it must bind every hash.
  if (!(count === 1 && bytesToHex(request.payload) === digestHex) && hashedPayload !== digestHex) {
    throw failure('invalid', 'pkcs11_bad_request', '"digest" must equal the payload hash, or be sha256 of the payload hashes');
  }
  return Array.from({ length: count }, (_, i) => request.payload.slice(i * 32, (i + 1) * 32));
}

/** Low-S r|s and its recovery id from the token's r|s, or an error when it does not verify. */
export function finishEcdsa(raw: Buffer, hash: Uint8Array, publicKey: Uint8Array, handle: string): Part {
  if (raw.length !== 64) throw failure('unavailable', 'pkcs11_bad_signature', `the token returned a ${raw.length}-byte ECDSA signature for ${handle}, expected 64`);
  const parsed = secp256k1.Signature.fromBytes(raw, 'compact');
  const bytes = (parsed.hasHighS() ? new secp256k1.Signature(parsed.r, SECP256K1_ORDER - parsed.s) : parsed).toBytes('compact');
  const key = compressedKey(publicKey);
  // The signature verifies under the key exactly when one of its recovery ids recovers to it (libsecp256k1).
  // Ids 2 and 3 (r ≥ p − n) occur with probability about 2^-128 and are not representable in Ethereum's v.
  const recovery = ([0, 1] as const).find((bit) => recoversToKey(hash, bytes, bit, key));
  if (recovery === undefined) {
    throw failure('unavailable', 'pkcs11_bad_signature', `the token's ECDSA signature does not verify against the public key of ${handle}; nothing was returned`);
  }
  return { signature: bytes, recovery };
}

export function createPkcs11Device(options: Pkcs11DeviceOptions): SigningDevice {
  const tokenKey = `${options.module}\n${options.tokenLabel}`;
  let current: OpenToken | null = null;
  let closed = false;
  /** A wrong PIN is not tried again: each try counts against the token's retry limit. */
  let pinRefusal: DeviceError | null = null;
  let queue: Promise<unknown> = Promise.resolve();

  const openToken = (): OpenToken => {
    if (pinRefusal) throw pinRefusal;
    if (current) return current;
    if (tokensInUse.has(tokenKey)) {
      throw failure('conflict', 'pkcs11_token_in_use', `another PKCS#11 device of this process is logged in to token "${options.tokenLabel}"; use one device per token`);
    }
    const library = acquireModule(options.module);
    try {
      const slot = findSlot(library, options.tokenLabel);
      const session = library.C_OpenSession(slot, pkcs11js.CKF_RW_SESSION | pkcs11js.CKF_SERIAL_SESSION);
      try {
        library.C_Login(session, pkcs11js.CKU_USER, options.pin);
      } catch (error) {
        library.C_CloseSession(session);
        if (isPkcs11Error(error) && error.code === pkcs11js.CKR_PIN_INCORRECT) {
          pinRefusal = failure('unavailable', 'pkcs11_wrong_pin', `the PKCS#11 token "${options.tokenLabel}" refused the user PIN (CKR_PIN_INCORRECT); check PKCS11_PIN and restart`, error);
          throw pinRefusal;
        }
        if (isPkcs11Error(error) && error.code === pkcs11js.CKR_PIN_LOCKED) {
          throw failure('unavailable', 'pkcs11_pin_locked', `the user PIN of PKCS#11 token "${options.tokenLabel}" is locked (CKR_PIN_LOCKED); the security officer must unlock or reset it`, error);
        }
        throw error;
      }
      tokensInUse.add(tokenKey);
      current = { library, slot, session };
      return current;
    } catch (error) {
      releaseModule(options.module);
      throw error;
    }
  };

  /** Logout and close are best effort: the token may be gone already; the module is released anyway. */
  const closeToken = (token: OpenToken): void => {
    current = null;
    tokensInUse.delete(tokenKey);
    try {
      token.library.C_Logout(token.session);
    } catch {
      // already logged out or the session is gone
    }
    try {
      token.library.C_CloseSession(token.session);
    } catch {
      // the session is gone
    }
    releaseModule(options.module);
  };

  /** Runs `work` once every earlier call has finished, on the one session, opened if need be. */
  const exclusive = <T>(work: (token: OpenToken) => T | Promise<T>): Promise<T> => {
    if (closed) return Promise.reject(failure('unavailable', 'device_closed', 'the PKCS#11 device is closed'));
    const run = queue.then(async () => {
      const token = openToken();
      try {
        return await work(token);
      } catch (error) {
        // After a failed call the session's state is not known (a failed C_Sign leaves its operation
        // active; the token may be gone): close it, and let the next call open a fresh one. The
        // failed call itself is not retried.
        if (isPkcs11Error(error) && current === token) closeToken(token);
        throw error;
      }
    });
    queue = run.catch(() => undefined);
    return run.catch((error: unknown) => {
      throw asDeviceError(error);
    });
  };

  const findObjects = (token: OpenToken, template: Template): Handle[] => {
    token.library.C_FindObjectsInit(token.session, template);
    try {
      const found: Handle[] = [];
      for (;;) {
        const batch = token.library.C_FindObjects(token.session, 64);
        if (batch.length === 0) return found;
        found.push(...batch);
      }
    } finally {
      token.library.C_FindObjectsFinal(token.session);
    }
  };

  const readAttribute = (token: OpenToken, object: Handle, type: number): Buffer => {
    const [attribute] = token.library.C_GetAttributeValue(token.session, object, [{ type }]);
    if (!attribute) throw failure('unavailable', 'pkcs11_error', `the token returned no value for attribute 0x${type.toString(16)}`);
    return attribute.value;
  };

  const curveOf = (token: OpenToken, privateKey: Handle, label: string): Curve => {
    const keyType = readUlong(readAttribute(token, privateKey, pkcs11js.CKA_KEY_TYPE));
    const params = readAttribute(token, privateKey, pkcs11js.CKA_EC_PARAMS).toString('hex');
    if (keyType === pkcs11js.CKK_EC && params === EC_PARAMS.secp256k1) return 'secp256k1';
    if (keyType === CKK_EC_EDWARDS && ED25519_PARAMS_READ.has(params)) return 'ed25519';
    throw failure('invalid', 'pkcs11_key_unsupported', `the key "${label}" is neither secp256k1 nor Ed25519 (key type 0x${keyType.toString(16)}, EC params ${params}); it was not made by this gateway`);
  };

  /** The raw public key from CKA_EC_POINT, checked to be a point of the curve. */
  const publicKeyOf = (token: OpenToken, publicKey: Handle, curve: Curve, label: string): Uint8Array => {
    const point = readAttribute(token, publicKey, pkcs11js.CKA_EC_POINT);
    const prefix = EC_POINT_PREFIX[curve];
    if (point.length !== EC_POINT_LENGTH[curve] || !point.toString('hex').startsWith(prefix)) {
      throw failure('unavailable', 'pkcs11_error', `the CKA_EC_POINT of "${label}" is not a DER octet string holding a ${curve} point`);
    }
    const raw = new Uint8Array(point.subarray(2));
    return curve === 'secp256k1' ? secp256k1.Point.fromBytes(raw).toBytes(true) : ed25519.Point.fromBytes(raw).toBytes();
  };

  const loadKey = (token: OpenToken, handle: string): TokenKey => {
    const match = KEY_LABEL.exec(handle);
    const privateKeys = match ? findObjects(token, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }, { type: pkcs11js.CKA_LABEL, value: handle }]) : [];
    const [privateKey] = privateKeys;
    if (!match || !privateKey) throw failure('not_found', 'pkcs11_key_missing', `no private key labelled "${handle.slice(0, 120)}" on PKCS#11 token "${options.tokenLabel}"`);
    if (privateKeys.length > 1) {
      throw failure('conflict', 'pkcs11_key_ambiguous', `${privateKeys.length} private keys are labelled "${handle}" on token "${options.tokenLabel}"; remove the ones this gateway did not make`);
    }
    const curve = curveOf(token, privateKey, handle);
    const id = readAttribute(token, privateKey, pkcs11js.CKA_ID);
    const [publicKey] = findObjects(token, [
      { type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PUBLIC_KEY },
      { type: pkcs11js.CKA_LABEL, value: handle },
      { type: pkcs11js.CKA_ID, value: id },
    ]);
    if (!publicKey) throw failure('not_found', 'pkcs11_key_missing', `the public key object of "${handle}" is missing from token "${options.tokenLabel}"`);
    const publicKeyBytes = publicKeyOf(token, publicKey, curve, handle);
    return { handle, poolId: match[1] as string, chain: match[2] as string, curve, publicKey: bytesToHex(publicKeyBytes), publicKeyBytes, privateKey };
  };

  const signOnToken = async (token: OpenToken, mechanism: number, privateKey: Handle, data: Uint8Array): Promise<Buffer> => {
    token.library.C_SignInit(token.session, { mechanism }, privateKey);
    return token.library.C_SignAsync(token.session, Buffer.from(data), Buffer.alloc(128));
  };

  const publicView = (key: TokenKey): DeviceKey => ({ handle: key.handle, poolId: key.poolId, chain: key.chain, curve: key.curve, publicKey: key.publicKey });

  const device = {
    info(): Promise<DeviceInfo> {
      return exclusive((token) => {
        const info = token.library.C_GetTokenInfo(token.slot);
        return {
          id: `pkcs11-${info.serialNumber.trim()}`,
          type: 'pkcs11',
          model: `${info.model.trim()} (${info.manufacturerID.trim()})`,
          firmware: `${info.firmwareVersion.major}.${info.firmwareVersion.minor}`,
          attestationPublicKey: null,
          checksQuorum: false,
          enforces: [],
        };
      });
    },

    /** A token cannot hold approvers: the gateway's quorum checks are the only ones on this backend. */
    async enrollPool(): Promise<void> {},

    /** As enrollPool: nothing to bind inside a PKCS#11 token. */
    async enrollGovernance(): Promise<void> {},

    /** Nothing to change in the device: the gateway checks the admins' approvals (docs/threat-model.md). */
    async governPool(): Promise<void> {},

    /** The device holds no freeze: the gateway's freeze is the only one on this backend. */
    async freezePool(): Promise<void> {},

    async governanceState(): Promise<null> {
      return null;
    },

    async generateKey(poolId: string, chain: string, curve: Curve): Promise<GeneratedKey> {
      if (!POOL_ID.test(poolId)) throw failure('invalid', 'pkcs11_bad_request', `"poolId" expected lowercase letters, digits and dashes, got "${poolId.slice(0, 80)}"`);
      assertChainId(chain);
      const label = keyLabel(poolId, chain);
      return exclusive(async (token) => {
        if (findObjects(token, [{ type: pkcs11js.CKA_LABEL, value: label }]).length > 0) {
          throw failure('conflict', 'device_already_exists', `the token already holds a key labelled "${label}": a pool has one key per chain`);
        }
        const id = randomBytes(16);
        const common: Template = [
          { type: pkcs11js.CKA_TOKEN, value: true },
          { type: pkcs11js.CKA_LABEL, value: label },
          { type: pkcs11js.CKA_ID, value: id },
          ...(curve === 'ed25519' ? [{ type: pkcs11js.CKA_KEY_TYPE, value: CKK_EC_EDWARDS }] : []),
        ];
        const pair = await token.library.C_GenerateKeyPairAsync(
          token.session,
          { mechanism: curve === 'ed25519' ? CKM_EC_EDWARDS_KEY_PAIR_GEN : pkcs11js.CKM_EC_KEY_PAIR_GEN },
          [...common, { type: pkcs11js.CKA_VERIFY, value: true }, { type: pkcs11js.CKA_EC_PARAMS, value: Buffer.from(EC_PARAMS[curve], 'hex') }],
          [
            ...common,
            { type: pkcs11js.CKA_PRIVATE, value: true },
            { type: pkcs11js.CKA_SENSITIVE, value: true },
            { type: pkcs11js.CKA_EXTRACTABLE, value: false },
            { type: pkcs11js.CKA_SIGN, value: true },
          ],
        );
        try {
          return { handle: label, curve, publicKey: bytesToHex(publicKeyOf(token, pair.publicKey, curve, label)) };
        } catch (error) {
          // A pair whose public key cannot be read is useless and would block the label: remove it.
          token.library.C_DestroyObject(token.session, pair.privateKey);
          token.library.C_DestroyObject(token.session, pair.publicKey);
          throw error;
        }
      });
    },

    publicKey(handle: string): Promise<DeviceKey> {
      return exclusive((token) => publicView(loadKey(token, handle)));
    },

    listKeys(): Promise<readonly DeviceKey[]> {
      return exclusive((token) => {
        const labels = new Set<string>();
        for (const object of findObjects(token, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }])) {
          const label = readAttribute(token, object, pkcs11js.CKA_LABEL).toString('utf8');
          if (label.startsWith(LABEL_PREFIX)) labels.add(label);
        }
        return [...labels].sort().map((label) => publicView(loadKey(token, label)));
      });
    },

    async sign(request: SignRequest): Promise<DeviceSignature> {
      if (request.scheme === 'schnorr-bip340') {
        throw failure(
          'invalid',
          'pkcs11_unsupported_scheme',
          'PKCS#11 has no BIP-340 Schnorr mechanism, so a PKCS#11 token cannot sign for a Taproot (P2TR) pool; keep such pools on another device',
        );
      }
      const messages = hashesToSign(request);
      return exclusive(async (token) => {
        const key = loadKey(token, request.handle);
        if (key.poolId !== request.poolId) {
          throw failure('forbidden', 'pkcs11_key_pool_mismatch', `key "${key.handle}" belongs to pool ${key.poolId}, not ${request.poolId}`);
        }
        const curve: Curve = request.scheme === 'ed25519' ? 'ed25519' : 'secp256k1';
        if (key.curve !== curve) throw failure('invalid', 'pkcs11_bad_request', `scheme ${request.scheme} cannot sign with the ${key.curve} key "${key.handle}"`);
        const parts: Part[] = [];
        for (const message of messages) {
          if (request.scheme === 'ed25519') {
            const signature = new Uint8Array(await signOnToken(token, CKM_EDDSA, key.privateKey, message));
            if (signature.length !== 64 || !ed25519.verify(signature, message, key.publicKeyBytes)) {
              throw failure('unavailable', 'pkcs11_bad_signature', `the token's Ed25519 signature does not verify against the public key of ${key.handle}; nothing was returned`);
            }
            parts.push({ signature, recovery: null });
          } else {
            parts.push(finishEcdsa(await signOnToken(token, pkcs11js.CKM_ECDSA, key.privateKey, message), message, key.publicKeyBytes, key.handle));
          }
        }
        const first = parts[0] as Part;
        return { scheme: request.scheme, signature: first.signature, recovery: first.recovery, parts };
      });
    },

    /** A token checks no approvals: the gateway verified the admin quorum; the message format is fixed by the key's chain. */
    async signMessage(request: ControlSignRequest): Promise<{ signature: Uint8Array; recovery: 0 | 1 | null }> {
      const format = controlFormat(request.chain);
      const input = controlSigningInput(format, request.challenge);
      return exclusive(async (token) => {
        const key = loadKey(token, request.handle);
        if (key.poolId !== request.poolId || key.chain !== request.chain) {
          throw failure('forbidden', 'pkcs11_key_pool_mismatch', `key "${key.handle}" belongs to pool ${key.poolId} on ${key.chain}, not ${request.poolId} on ${request.chain}`);
        }
        if (format === 'ed25519') {
          const signature = new Uint8Array(await signOnToken(token, CKM_EDDSA, key.privateKey, input));
          if (signature.length !== 64 || !ed25519.verify(signature, input, key.publicKeyBytes)) {
            throw failure('unavailable', 'pkcs11_bad_signature', `the token's Ed25519 signature does not verify against the public key of ${key.handle}; nothing was returned`);
          }
          return { signature, recovery: null };
        }
        return finishEcdsa(await signOnToken(token, pkcs11js.CKM_ECDSA, key.privateKey, input), input, key.publicKeyBytes, key.handle);
      });
    },

    close(): Promise<void> {
      if (closed) return Promise.resolve();
      closed = true;
      const done = queue.then(() => {
        if (current) closeToken(current);
      });
      queue = done.catch(() => undefined);
      return done.catch((error: unknown) => {
        throw asDeviceError(error);
      });
    },
  } satisfies SigningDevice;
  return device;
}
