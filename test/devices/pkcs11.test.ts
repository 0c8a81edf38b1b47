/**
 * The PKCS#11 backend against a real SoftHSM2 2.6.1 token: keys made on the token and never
 * extractable, ECDSA normalized to low-S with a recovery id (checked with ethers), Ed25519 (checked
 * with Node's crypto), and the refusals a caller relies on.
 */
import { openPolicy } from '../helpers/open-policy.js';
import { createHash, createPublicKey, randomBytes, verify } from 'node:crypto';
import { computeAddress, SigningKey } from 'ethers';
import pkcs11js, { PKCS11 } from 'pkcs11js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createPkcs11Device } from '../../src/devices/pkcs11/pkcs11-device.js';
import type { SignatureScheme, SignRequest } from '../../src/devices/signing-device.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';

const ETHEREUM = 'eip155:1';
const BITCOIN = 'bip122:000000000019d6689c085ae165831e93';
const SOLANA = 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp';
const SECP256K1_HALF_ORDER = 0x7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0n;
/** DER SubjectPublicKeyInfo prefix of an Ed25519 key (RFC 8410): the raw 32 bytes follow. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

const sha256 = (data: Uint8Array): Uint8Array => createHash('sha256').update(data).digest();
const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function signRequest(handle: string, poolId: string, scheme: SignatureScheme, payload: Uint8Array, digest?: Uint8Array): SignRequest {
  return {
    handle,
    poolId,
    scheme,
    payload,
    digest: digest ?? (payload.length === 32 && scheme !== 'ed25519' ? payload : sha256(payload)),
    approvals: [],
    transaction: { chain: ETHEREUM, unsignedTx: '0x' },
  };
}

/** The compressed public key (0x-hex) that ethers recovers from an r|s signature and v = 27 + recovery. */
function recoveredKey(hash: Uint8Array, part: { readonly signature: Uint8Array; readonly recovery: 0 | 1 | null }): string {
  if (part.recovery === null) throw new Error('an ECDSA signature came without its recovery id');
  const r = `0x${hex(part.signature.subarray(0, 32))}`;
  const s = `0x${hex(part.signature.subarray(32))}`;
  return SigningKey.computePublicKey(SigningKey.recoverPublicKey(hash, { r, s, v: 27 + part.recovery }), true);
}

/** The attributes of every private key on the token, read through a session of its own. */
function readPrivateKeyObjects(token: SoftHsmToken): { label: string; sensitive: boolean; extractable: boolean; neverExtractable: boolean; value: string }[] {
  const library = new PKCS11();
  library.load(token.module);
  library.C_Initialize();
  try {
    const slot = library.C_GetSlotList(true).find((s) => library.C_GetTokenInfo(s).label.trimEnd() === token.tokenLabel);
    if (!slot) throw new Error(`token ${token.tokenLabel} not found`);
    const session = library.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
    library.C_Login(session, pkcs11js.CKU_USER, token.pin);
    library.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
    const objects = library.C_FindObjects(session, 100);
    library.C_FindObjectsFinal(session);
    const flag = (object: Buffer, type: number) => library.C_GetAttributeValue(session, object, [{ type }])[0]?.value[0] === 1;
    const rows = objects.map((object) => {
      let value: string;
      try {
        value = `read ${library.C_GetAttributeValue(session, object, [{ type: pkcs11js.CKA_VALUE }])[0]?.value.length} bytes`;
      } catch (error) {
        value = (error as Error).message;
      }
      return {
        label: library.C_GetAttributeValue(session, object, [{ type: pkcs11js.CKA_LABEL }])[0]?.value.toString('utf8') ?? '',
        sensitive: flag(object, pkcs11js.CKA_SENSITIVE),
        extractable: flag(object, pkcs11js.CKA_EXTRACTABLE),
        neverExtractable: flag(object, pkcs11js.CKA_NEVER_EXTRACTABLE),
        value,
      };
    });
    library.C_Logout(session);
    library.C_CloseSession(session);
    return rows.sort((a, b) => a.label.localeCompare(b.label));
  } finally {
    library.C_Finalize();
    library.close();
  }
}

describe('the PKCS#11 device on a SoftHSM2 token', () => {
  let token: SoftHsmToken;
  let otherToken: SoftHsmToken;
  let device: ReturnType<typeof createPkcs11Device>;
  const handles: Record<string, string> = {};
  const publicKeys: Record<string, string> = {};

  beforeAll(() => {
    token = createSoftHsmToken({ label: 'custody-test' });
    otherToken = createSoftHsmToken({ label: 'custody-other', sharing: token });
    device = createPkcs11Device({ module: token.module, tokenLabel: token.tokenLabel, pin: token.pin });
  });

  afterAll(async () => {
    await device.close();
    token.cleanup();
  });

  it('when keys are generated for two pools, then each is a valid key of its curve, labelled by pool and chain', async () => {
    for (const [poolId, chain, curve] of [
      ['treasury', ETHEREUM, 'secp256k1'],
      ['treasury', BITCOIN, 'secp256k1'],
      ['treasury', SOLANA, 'ed25519'],
      ['payroll', ETHEREUM, 'secp256k1'],
      ['payroll', SOLANA, 'ed25519'],
    ] as const) {
      const key = await device.generateKey(poolId, chain, curve);
      expect(key.handle).toBe(`custody:${poolId}:${chain}`);
      expect(key.curve).toBe(curve);
      if (curve === 'secp256k1') {
        expect(key.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
        // ethers parses it as a point and derives the address from it.
        expect(computeAddress(`0x${key.publicKey}`)).toMatch(/^0x[0-9a-fA-F]{40}$/);
      } else {
        expect(createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(key.publicKey, 'hex')]), format: 'der', type: 'spki' }).asymmetricKeyType).toBe('ed25519');
      }
      handles[`${poolId} ${chain}`] = key.handle;
      publicKeys[key.handle] = key.publicKey;
      expect(await device.publicKey(key.handle)).toEqual({ ...key, poolId, chain });
    }
    expect(new Set(Object.values(publicKeys)).size).toBe(5);
    const listed = await device.listKeys();
    expect(listed.map((k) => `${k.poolId} ${k.chain} ${k.curve}`)).toEqual([
      `payroll ${ETHEREUM} secp256k1`,
      `payroll ${SOLANA} ed25519`,
      `treasury ${BITCOIN} secp256k1`,
      `treasury ${ETHEREUM} secp256k1`,
      `treasury ${SOLANA} ed25519`,
    ]);
    for (const k of listed) expect(k.publicKey).toBe(publicKeys[k.handle]);
  });

  it('when a second key is asked for the same pool and chain, then the token refuses it as a conflict', async () => {
    const error = await device.generateKey('treasury', ETHEREUM, 'secp256k1').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'device_already_exists', kind: 'conflict' });
    expect((error as Error).message).toMatchInlineSnapshot(`"the token already holds a key labelled "custody:treasury:eip155:1": a pool has one key per chain"`);
    expect(await device.listKeys()).toHaveLength(5);
  });

  it('when the private key objects are read from the token, then they are sensitive, never extractable, and their value cannot be read', async () => {
    await device.close();
    const objects = readPrivateKeyObjects(token);
    expect(objects.map((o) => o.label)).toEqual(Object.keys(publicKeys).sort());
    for (const o of objects) {
      expect(o).toEqual({ label: o.label, sensitive: true, extractable: false, neverExtractable: true, value: 'CKR_ATTRIBUTE_SENSITIVE' });
    }
    device = createPkcs11Device({ module: token.module, tokenLabel: token.tokenLabel, pin: token.pin });
  });

  it('when many random hashes are signed with ECDSA, then every signature is low-S and ethers recovers the key from it', async () => {
    const handle = handles[`treasury ${ETHEREUM}`] as string;
    const key = `0x${publicKeys[handle]}`;
    const recoveries = new Set<number>();
    for (let i = 0; i < 40; i++) {
      const hash = randomBytes(32);
      const signed = await device.sign(signRequest(handle, 'treasury', 'ecdsa-secp256k1', hash));
      expect(signed.scheme).toBe('ecdsa-secp256k1');
      expect(signed.parts).toHaveLength(1);
      expect(signed.signature).toHaveLength(64);
      expect(BigInt(`0x${hex(signed.signature.subarray(32))}`) <= SECP256K1_HALF_ORDER).toBe(true);
      expect(signed.recovery === 0 || signed.recovery === 1).toBe(true);
      recoveries.add(signed.recovery as number);
      const recovered = recoveredKey(hash, signed);
      expect(recovered).toBe(key);
      expect(computeAddress(recovered)).toBe(computeAddress(key));
    }
    // Both parities occur (each with probability 1/2 per signature): the id is computed, not assumed.
    expect([...recoveries].sort()).toEqual([0, 1]);
  });

  it('when a payload of several hashes is signed, then each hash gets its own signature that recovers to the key', async () => {
    const handle = handles[`treasury ${BITCOIN}`] as string;
    const hashes = Array.from({ length: 5 }, () => randomBytes(32));
    const payload = Buffer.concat(hashes);
    const signed = await device.sign(signRequest(handle, 'treasury', 'ecdsa-secp256k1', payload, sha256(payload)));
    expect(signed.parts).toHaveLength(5);
    expect(signed.signature).toEqual(signed.parts[0]?.signature);
    expect(signed.recovery).toBe(signed.parts[0]?.recovery);
    signed.parts.forEach((part, i) => {
      expect(recoveredKey(hashes[i] as Buffer, part)).toBe(`0x${publicKeys[handle]}`);
    });
  });

  it('when the digest does not bind the payload, or the payload is not whole 32-byte hashes, then the device refuses before signing', async () => {
    const handle = handles[`treasury ${BITCOIN}`] as string;
    const two = randomBytes(64);
    const unbound = await device.sign(signRequest(handle, 'treasury', 'ecdsa-secp256k1', two, randomBytes(32))).catch((e: unknown) => e);
    expect(unbound).toMatchObject({ code: 'pkcs11_bad_request', kind: 'invalid' });
    expect((unbound as Error).message).toMatchInlineSnapshot(`""digest" must equal the payload hash, or be sha256 of the payload hashes"`);
    const short = randomBytes(31);
    const ragged = await device.sign(signRequest(handle, 'treasury', 'ecdsa-secp256k1', short, sha256(short))).catch((e: unknown) => e);
    expect(ragged).toMatchObject({ code: 'pkcs11_bad_request', kind: 'invalid' });
    expect((ragged as Error).message).toMatchInlineSnapshot(`""payload" must be 1 to 256 hashes of 32 bytes for ecdsa-secp256k1, got 31 bytes"`);
  });

  it('when messages are signed with Ed25519, then Node crypto verifies each signature against the key', async () => {
    const handle = handles[`payroll ${SOLANA}`] as string;
    const publicKey = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, Buffer.from(publicKeys[handle] as string, 'hex')]), format: 'der', type: 'spki' });
    for (const length of [1, 32, 200, 1232]) {
      const message = randomBytes(length);
      const signed = await device.sign(signRequest(handle, 'payroll', 'ed25519', message));
      expect(signed).toMatchObject({ scheme: 'ed25519', recovery: null });
      expect(signed.parts).toHaveLength(1);
      expect(verify(null, message, publicKey, signed.signature)).toBe(true);
      expect(verify(null, Buffer.concat([message, Buffer.from([0])]), publicKey, signed.signature)).toBe(false);
    }
    const empty = await device.sign(signRequest(handle, 'payroll', 'ed25519', new Uint8Array(0))).catch((e: unknown) => e);
    expect(empty).toMatchObject({ code: 'pkcs11_bad_request', kind: 'invalid' });
  });

  it('when a key of one pool is asked to sign for another pool, then the device refuses it as forbidden', async () => {
    const handle = handles[`treasury ${ETHEREUM}`] as string;
    const error = await device.sign(signRequest(handle, 'payroll', 'ecdsa-secp256k1', randomBytes(32))).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'pkcs11_key_pool_mismatch', kind: 'forbidden' });
    expect((error as Error).message).toMatchInlineSnapshot(`"key "custody:treasury:eip155:1" belongs to pool treasury, not payroll"`);
  });

  it('when a handle names no key on the token, then the device answers pkcs11_key_missing', async () => {
    const error = await device.sign(signRequest('custody:treasury:eip155:5', 'treasury', 'ecdsa-secp256k1', randomBytes(32))).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'pkcs11_key_missing', kind: 'not_found' });
    expect((error as Error).message).toMatchInlineSnapshot(`"no private key labelled "custody:treasury:eip155:5" on PKCS#11 token "custody-test""`);
  });

  it('when a BIP-340 Schnorr signature is asked for, then the device refuses the scheme', async () => {
    const error = await device.sign(signRequest(handles[`treasury ${BITCOIN}`] as string, 'treasury', 'schnorr-bip340', randomBytes(32))).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'pkcs11_unsupported_scheme', kind: 'invalid' });
    expect((error as Error).message).toMatchInlineSnapshot(
      `"PKCS#11 has no BIP-340 Schnorr mechanism, so a PKCS#11 token cannot sign for a Taproot (P2TR) pool; keep such pools on another device"`,
    );
  });

  it('when the device describes itself, then it names the token, checks no quorum, has no attestation key, and enrollments do nothing', async () => {
    const info = await device.info();
    expect(info).toMatchObject({ type: 'pkcs11', model: 'SoftHSM v2 (SoftHSM project)', firmware: '2.6', attestationPublicKey: null, checksQuorum: false });
    expect(info.id).toMatch(/^pkcs11-[0-9a-f]{16}$/);
    await expect(device.enrollPool('treasury', [], 1, openPolicy(1))).resolves.toBeUndefined();
    await expect(device.enrollGovernance([], 1)).resolves.toBeUndefined();
    await expect(device.governPool('treasury', { action: 'unfreeze' }, [])).resolves.toBeUndefined();
    await expect(device.governanceState('treasury')).resolves.toBeNull();
    expect([device.attestKey, device.attestDevice]).toEqual([undefined, undefined]);
  });

  it('when a second device of this process opens a token already open, then it is refused rather than let in on the first one’s login', async () => {
    const second = createPkcs11Device({ module: token.module, tokenLabel: token.tokenLabel, pin: 'not-the-pin' });
    await expect(second.listKeys()).rejects.toMatchObject({ code: 'pkcs11_token_in_use', kind: 'conflict' });
    await second.close();
  });

  it('when the PIN is wrong, then the device answers pkcs11_wrong_pin without the PIN, and does not try it again', async () => {
    const pin = 'wrong-pin-4729';
    const wrong = createPkcs11Device({ module: otherToken.module, tokenLabel: otherToken.tokenLabel, pin });
    const first = await wrong.info().catch((e: unknown) => e);
    expect(first).toMatchObject({ code: 'pkcs11_wrong_pin', kind: 'unavailable' });
    expect((first as Error).message).toMatchInlineSnapshot(`"the PKCS#11 token "custody-other" refused the user PIN (CKR_PIN_INCORRECT); check PKCS11_PIN and restart"`);
    expect(JSON.stringify({ ...(first as object), message: (first as Error).message, stack: (first as Error).stack })).not.toContain(pin);
    expect(await wrong.listKeys().catch((e: unknown) => e)).toBe(first);
    await wrong.close();
    const right = createPkcs11Device({ module: otherToken.module, tokenLabel: otherToken.tokenLabel, pin: otherToken.pin });
    expect(await right.listKeys()).toEqual([]);
    await right.close();
  });

  it('when the module path does not exist, then the device answers pkcs11_module_missing naming the path and PKCS11_MODULE', async () => {
    const missing = createPkcs11Device({ module: '/nonexistent/libpkcs11.so', tokenLabel: token.tokenLabel, pin: token.pin });
    const error = await missing.info().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'pkcs11_module_missing', kind: 'unavailable' });
    expect((error as Error).message).toMatchInlineSnapshot(
      `"cannot load the PKCS#11 module "/nonexistent/libpkcs11.so" (/nonexistent/libpkcs11.so: cannot open shared object file: No such file or directory); set PKCS11_MODULE to the path of the token's PKCS#11 library, such as /usr/lib/softhsm/libsofthsm2.so"`,
    );
    await missing.close();
  });

  it('when no token has the label, then the device answers pkcs11_token_not_found listing the labels it saw', async () => {
    const unknown = createPkcs11Device({ module: token.module, tokenLabel: 'no-such-token', pin: token.pin });
    const error = await unknown.info().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'pkcs11_token_not_found', kind: 'unavailable' });
    const message = (error as Error).message;
    expect(message).toMatch(/^no initialized PKCS#11 token is labelled "no-such-token" \(tokens seen: .*\); set PKCS11_TOKEN_LABEL to one of them$/);
    expect(message).toContain('"custody-test"');
    expect(message).toContain('"custody-other"');
    await unknown.close();
  });

  it('when the device is closed and opened again, then the keys are still on the token and still sign', async () => {
    const before = await device.listKeys();
    await device.close();
    await expect(device.listKeys()).rejects.toMatchObject({ code: 'device_closed' });
    device = createPkcs11Device({ module: token.module, tokenLabel: token.tokenLabel, pin: token.pin });
    expect(await device.listKeys()).toEqual(before);
    const handle = handles[`payroll ${ETHEREUM}`] as string;
    const hash = randomBytes(32);
    const signed = await device.sign(signRequest(handle, 'payroll', 'ecdsa-secp256k1', hash));
    expect(recoveredKey(hash, signed)).toBe(`0x${publicKeys[handle]}`);
  });

  it('when calls are made concurrently, then they run one at a time on the one session and all succeed', async () => {
    // Interleaved on one session, a second C_SignInit would fail with CKR_OPERATION_ACTIVE.
    const handle = handles[`treasury ${ETHEREUM}`] as string;
    const hashes = Array.from({ length: 8 }, () => randomBytes(32));
    const [signed, listed, info] = await Promise.all([
      Promise.all(hashes.map((h) => device.sign(signRequest(handle, 'treasury', 'ecdsa-secp256k1', h)))),
      device.listKeys(),
      device.info(),
    ]);
    expect(listed).toHaveLength(5);
    expect(info.type).toBe('pkcs11');
    signed.forEach((result, i) => {
      expect(recoveredKey(hashes[i] as Buffer, result)).toBe(`0x${publicKeys[handle]}`);
    });
  });
});
