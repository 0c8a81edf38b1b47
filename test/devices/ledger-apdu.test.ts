/**
 * The Ethereum app's commands (src/devices/ledger/apdu.ts) against app-ethereum doc/ethapp.adoc, and the
 * Ledger device adapter (ledger-device.ts) over a recorded APDU transcript built on the EIP-155 worked
 * example (test/vectors/eip155-example.json: key 0x46…46, its signature v 37).
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { RLP } from 'micro-eth-signer/core/rlp.js';
import { Transaction } from 'ethers';
import {
  CHUNK_BYTES,
  encodeBip32Path,
  formatBip32Path,
  GET_APP_AND_VERSION,
  GET_APP_CONFIGURATION,
  getAddressApdu,
  legacyParity,
  LEDGER_STATUS_WORDS,
  LedgerStatusError,
  parseAddressResponse,
  parseAppAndVersion,
  parseAppConfiguration,
  parseBip32Path,
  parseSignatureResponse,
  responseData,
  signPersonalMessageApdus,
  signTransactionApdus,
} from '../../src/devices/ledger/apdu.js';
import { createLedgerDevice, poolKeyPath } from '../../src/devices/ledger/ledger-device.js';
import type { ApduTransport } from '../../src/devices/ledger/transport.js';
import type { SignRequest, SigningDevice } from '../../src/devices/signing-device.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'));
const eip155 = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'eip155-example.json'), 'utf8')) as {
  privateKey: string;
  signingData: string;
  signingHash: string;
  v: number;
  signedTx: string;
};
const ok = (data: Uint8Array | string = new Uint8Array(0)) => new Uint8Array([...(typeof data === 'string' ? bytes(data) : data), 0x90, 0x00]);
const PATH = "m/44'/60'/0'/0/0";
const PATH_BYTES = '058000002c8000003c800000000000000000000000';

describe('BIP32 paths', () => {
  it("when m/44'/60'/0'/0/0 is encoded, then it is 05 8000002c 8000003c 80000000 00000000 00000000", () => {
    expect(hex(encodeBip32Path(PATH))).toBe(PATH_BYTES);
    expect(hex(encodeBip32Path("44h/60H/0'/0/0"))).toBe(PATH_BYTES);
  });

  it('when a path is parsed and formatted, then it comes back the same', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.integer({ min: 0, max: 0x7fffffff }), fc.boolean()), { minLength: 1, maxLength: 10 }), (levels) => {
        const text = 'm/' + levels.map(([i, h]) => `${i}${h ? "'" : ''}`).join('/');
        expect(formatBip32Path(parseBip32Path(text))).toBe(text);
      }),
    );
  });

  it('when a path has 11 levels, an index of 2^31 or a non-number, then it is refused', () => {
    expect(() => parseBip32Path('m' + '/0'.repeat(11))).toThrowErrorMatchingInlineSnapshot(`[DeviceError: BIP32 path "m/0/0/0/0/0/0/0/0/0/0/0" must have 1 to 10 levels]`);
    expect(() => parseBip32Path("m/2147483648'")).toThrowErrorMatchingInlineSnapshot(`[DeviceError: BIP32 path "m/2147483648'" has level 2147483648, expected below 2^31]`);
    expect(() => parseBip32Path('m/44/x')).toThrowErrorMatchingInlineSnapshot(`[DeviceError: BIP32 path "m/44/x" has a bad level "x"]`);
    expect(() => parseBip32Path('m')).toThrow(expect.objectContaining({ code: 'ledger_bad_path' }));
  });

  it('when a pool key path is derived, then it is m/44\'/60\'/A\'/0/0 with A from sha256 of the pool and chain, stable', () => {
    const path = poolKeyPath('treasury', 'eip155:1');
    expect(path).toMatch(/^m\/44'\/60'\/[0-9]+'\/0\/0$/);
    expect(poolKeyPath('treasury', 'eip155:1')).toBe(path);
    expect(poolKeyPath('treasury', 'eip155:10')).not.toBe(path);
    expect(path).not.toBe(PATH);
  });
});

describe('GET ETH PUBLIC ADDRESS (E0 02)', () => {
  const secret = bytes(eip155.privateKey);
  const publicKey = secp256k1.getPublicKey(secret, false);
  const answer = (address: string) => new Uint8Array([65, ...publicKey, 40, ...Buffer.from(address, 'ascii')]);

  it('when the address is asked without display, then the APDU is E0 02 00 00 15 | path', () => {
    expect(hex(getAddressApdu(PATH))).toBe('e002000015' + PATH_BYTES);
    expect(hex(getAddressApdu(PATH, { display: true, chainCode: true })).slice(0, 10)).toBe('e002010115');
  });

  it('when the answer is parsed, then it gives the 65-byte key and the address as sent', () => {
    const parsed = parseAddressResponse(answer('9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F'));
    expect(hex(parsed.publicKey)).toBe(hex(publicKey));
    expect(parsed.address).toBe('0x9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F');
    expect(parsed.chainCode).toBeNull();
    const withChainCode = parseAddressResponse(new Uint8Array([...answer('9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F'), ...new Uint8Array(32).fill(7)]), true);
    expect(hex(withChainCode.chainCode as Uint8Array)).toBe('07'.repeat(32));
  });

  it('when the answer is cut short or the address is not hex, then it is refused as a protocol error', () => {
    expect(() => parseAddressResponse(answer('9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F').subarray(0, 100))).toThrow(expect.objectContaining({ code: 'ledger_protocol_error' }));
    expect(() => parseAddressResponse(answer('zz8A62f656a8d1615C1294fd71e9CFb3E4855A4F'))).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: GET ETH PUBLIC ADDRESS: malformed answer from the Ledger (the address is not 40 hex characters)]`,
    );
  });
});

describe('SIGN ETH TRANSACTION (E0 04)', () => {
  /** A legacy EIP-155 transaction with `dataLength` bytes of call data. */
  const legacyTx = (dataLength: number, chainId = 1n) =>
    RLP.encode([9n, 20_000_000_000n, 21_000n, bytes('35'.repeat(20)), 10n ** 18n, new Uint8Array(dataLength).fill(0xab), chainId, new Uint8Array(0), new Uint8Array(0)]);
  const chunksOf = (apdus: Uint8Array[]) => apdus.map((a) => a.subarray(5));

  it('when the EIP-155 example is sent, then it is one APDU E0 04 00 00 with path | transaction', () => {
    const apdus = signTransactionApdus(PATH, bytes(eip155.signingData));
    expect(apdus.map(hex)).toEqual(['e0040000' + (21 + 45).toString(16) + PATH_BYTES + eip155.signingData.slice(2)]);
  });

  it('when a typed transaction is longer than one chunk, then chunks of 150 bytes follow with P1 80', () => {
    const tx = bytes(
      Transaction.from({ type: 2, chainId: 1, nonce: 1, maxFeePerGas: 1n, maxPriorityFeePerGas: 1n, gasLimit: 100_000, to: '0x' + '35'.repeat(20), data: '0x' + 'cd'.repeat(400) })
        .unsignedSerialized,
    );
    const apdus = signTransactionApdus(PATH, tx);
    expect(apdus.map((a) => hex(a.subarray(0, 4)))).toEqual(['e0040000', 'e0048000', 'e0048000', 'e0048000']);
    expect(chunksOf(apdus).map((c) => c.length)).toEqual([150, 150, 150, 21 + tx.length - 450]);
    expect(hex(Buffer.concat(chunksOf(apdus)))).toBe(PATH_BYTES + hex(tx));
  });

  it('when a 150-byte cut would leave a legacy transaction\'s chainId, 0, 0 alone in the last chunk, then the last cut moves back', () => {
    const dataLength = Array.from({ length: 200 }, (_, i) => i).find((n) => (21 + legacyTx(n).length) % CHUNK_BYTES === 3) as number;
    const tx = legacyTx(dataLength);
    const apdus = signTransactionApdus(PATH, tx);
    const chunks = chunksOf(apdus);
    expect(hex(chunks.at(-1) as Uint8Array)).toBe('ab018080');
    expect(hex(Buffer.concat(chunks))).toBe(PATH_BYTES + hex(tx));
  });

  it('when any legacy transaction is chunked, then every chunk has at most 150 bytes and the last holds chainId, 0, 0 and more', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 700 }), fc.bigInt({ min: 1n, max: 10n ** 15n }), (dataLength, chainId) => {
        const tx = legacyTx(dataLength, chainId);
        const tail = RLP.encode([chainId, new Uint8Array(0), new Uint8Array(0)]).length - 1;
        const chunks = chunksOf(signTransactionApdus(PATH, tx));
        expect(chunks.every((c) => c.length >= 1 && c.length <= CHUNK_BYTES)).toBe(true);
        expect((chunks.at(-1) as Uint8Array).length).toBeGreaterThan(tail);
        expect(hex(Buffer.concat(chunks))).toBe(PATH_BYTES + hex(tx));
      }),
    );
  });

  it('when the answer is v | r | s, then it is split; any other length is refused', () => {
    const answer = new Uint8Array(65).fill(2);
    answer[0] = 0x25;
    expect(parseSignatureResponse(answer)).toMatchObject({ v: 0x25 });
    expect(() => parseSignatureResponse(answer.subarray(0, 64))).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: SIGN ETH TRANSACTION: malformed answer from the Ledger (64 bytes, expected v | r | s (65))]`,
    );
  });

  it('when a legacy v byte is read back, then the parity comes out for small and large chain ids, and a v that fits neither is refused', () => {
    expect(legacyParity(eip155.v, 1n)).toBe(0);
    expect(legacyParity(38, 1n)).toBe(1);
    expect(legacyParity((1337 * 2 + 35 + 1) & 0xff, 1337n)).toBe(1);
    // Above u32 the app keeps the 4 most significant bytes of the chain id.
    expect(legacyParity((0x01020304 * 2 + 35) & 0xff, 0x0102030405n)).toBe(0);
    expect(() => legacyParity(40, 1n)).toThrow(expect.objectContaining({ code: 'ledger_protocol_error' }));
  });
});

describe('SIGN ETH PERSONAL MESSAGE (E0 08)', () => {
  it('when a short message is sent, then one APDU: path | u32be length | message', () => {
    expect(signPersonalMessageApdus(PATH, Buffer.from('hello')).map(hex)).toEqual(['e00800001e' + PATH_BYTES + '00000005' + hex(Buffer.from('hello'))]);
  });

  it('when a long message is sent, then it goes in chunks of at most 150 data bytes, P1 00 then 80', () => {
    const message = new Uint8Array(400).fill(0x61);
    const apdus = signPersonalMessageApdus(PATH, message);
    expect(apdus.map((a) => a[2])).toEqual([0x00, 0x80, 0x80]);
    expect(apdus.map((a) => a[4])).toEqual([150, 150, 400 - (150 - 25) - 150]);
    expect(hex(Buffer.concat(apdus.map((a, i) => a.subarray(i === 0 ? 5 + 25 : 5))))).toBe(hex(message));
  });
});

describe('GET APP AND VERSION (B0 01) and GET APP CONFIGURATION (E0 06)', () => {
  it('when the Ethereum app answers, then its name, version and flags are read', () => {
    const answer = bytes('01' + '08' + hex(Buffer.from('Ethereum')) + '06' + hex(Buffer.from('1.10.4')) + '0102');
    expect(parseAppAndVersion(answer)).toEqual({ name: 'Ethereum', version: '1.10.4', flags: Uint8Array.of(2) });
    expect(() => parseAppAndVersion(bytes('010845'))).toThrowErrorMatchingInlineSnapshot(`[DeviceError: GET APP AND VERSION: malformed answer from the Ledger (app name runs past the answer)]`);
    expect(() => parseAppAndVersion(bytes('02'))).toThrow(/format 2, expected 1/);
  });

  it('when the configuration answers flags 01 and 1.10.4, then blind signing is on', () => {
    expect(hex(GET_APP_CONFIGURATION)).toBe('e006000000');
    expect(hex(GET_APP_AND_VERSION)).toBe('b001000000');
    expect(parseAppConfiguration(bytes('01010a04'))).toEqual({ blindSigningEnabled: true, version: '1.10.4' });
    expect(parseAppConfiguration(bytes('00010a04')).blindSigningEnabled).toBe(false);
  });
});

describe('status words', () => {
  it.each([
    [0x6985, 'ledger_rejected_on_device', 'forbidden'],
    [0x5501, 'ledger_refused_on_device', 'forbidden'],
    [0x5515, 'ledger_locked', 'unavailable'],
    [0x6e00, 'ledger_wrong_app', 'unavailable'],
    [0x6e01, 'ledger_wrong_app', 'unavailable'],
    [0x6d00, 'ledger_ins_not_supported', 'unavailable'],
    [0x6a80, 'ledger_incorrect_data', 'invalid'],
    [0x6b00, 'ledger_bad_parameters', 'internal'],
    [0x6982, 'ledger_security_status', 'unavailable'],
    [0x6700, 'ledger_wrong_length', 'internal'],
    [0x6f00, 'ledger_status', 'unavailable'],
  ])('when a response ends in %d, then it is %s (%s)', (statusWord, code, kind) => {
    const error = (() => {
      try {
        responseData(Uint8Array.of(1, 2, statusWord >> 8, statusWord & 0xff), 'CMD');
      } catch (e) {
        return e;
      }
      return null;
    })();
    expect(error).toBeInstanceOf(LedgerStatusError);
    expect(error).toMatchObject({ code, kind, statusWord });
  });

  it('when a response ends in 9000, then its data is returned; the table covers every listed status', () => {
    expect(hex(responseData(Uint8Array.of(1, 2, 0x90, 0x00), 'CMD'))).toBe('0102');
    expect([...LEDGER_STATUS_WORDS.keys()].sort()).toEqual([0x5501, 0x5515, 0x6700, 0x6982, 0x6985, 0x6a80, 0x6b00, 0x6d00, 0x6e00, 0x6e01].sort());
  });

  it('when the user rejects or the device is locked, then the message says what happened and what to do', () => {
    expect(() => responseData(Uint8Array.of(0x69, 0x85), 'SIGN ETH TRANSACTION')).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: SIGN ETH TRANSACTION: rejected on the Ledger (someone pressed Reject): nothing was signed; if the request is right, send it again and approve it on the device (status 0x6985)]`,
    );
    expect(() => responseData(Uint8Array.of(0x55, 0x15), 'GET ETH PUBLIC ADDRESS')).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: GET ETH PUBLIC ADDRESS: the Ledger is locked: unlock it with its PIN and try again (status 0x5515)]`,
    );
    expect(() => responseData(Uint8Array.of(0x90), 'CMD')).toThrow(expect.objectContaining({ code: 'ledger_protocol_error' }));
  });
});

describe('createLedgerDevice over a recorded transcript (EIP-155 example)', () => {
  const secret = bytes(eip155.privateKey);
  const uncompressed = secp256k1.getPublicKey(secret, false);
  const addressAnswer = ok(new Uint8Array([65, ...uncompressed, 40, ...Buffer.from('9d8A62f656a8d1615C1294fd71e9CFb3E4855A4F', 'ascii')]));
  const signed = Transaction.from(eip155.signedTx);
  const r = signed.signature?.r.slice(2) as string;
  const s = signed.signature?.s.slice(2) as string;
  const n = secp256k1.Point.Fn.ORDER;

  /** Answers each APDU with the next recorded response after checking the request is the recorded one. */
  function transcript(steps: [request: string, response: Uint8Array][]): ApduTransport & { remaining(): number } {
    const queue = [...steps];
    return {
      async exchange(apdu) {
        const step = queue.shift();
        if (!step) throw new Error(`unexpected APDU ${hex(apdu)}`);
        expect(hex(apdu)).toBe(step[0]);
        return step[1];
      },
      async close() {},
      remaining: () => queue.length,
    };
  }

  const request = (overrides: Partial<SignRequest> = {}): SignRequest => ({
    handle: PATH,
    poolId: 'treasury',
    scheme: 'ecdsa-secp256k1',
    payload: bytes(eip155.signingHash),
    digest: bytes(eip155.signingHash),
    approvals: [],
    transaction: { chain: 'eip155:1', unsignedTx: eip155.signingData },
    ...overrides,
  });
  const signApdu = 'e0040000' + (21 + 45).toString(16) + PATH_BYTES + eip155.signingData.slice(2);

  it('when the device signs the example, then the signature is the published one with recovery 0, checked against the key', async () => {
    const t = transcript([
      ['e002000015' + PATH_BYTES, addressAnswer],
      [signApdu, ok('25' + r + s)],
    ]);
    const sig = await createLedgerDevice({ transport: t }).sign(request());
    expect(hex(sig.signature)).toBe(r + s);
    expect(sig.recovery).toBe(0);
    expect(sig.parts).toHaveLength(1);
    expect(t.remaining()).toBe(0);
  });

  it('when the device answers a high S, then it is returned as n - s with the parity flipped', async () => {
    const highS = (n - BigInt('0x' + s)).toString(16).padStart(64, '0');
    const t = transcript([
      ['e002000015' + PATH_BYTES, addressAnswer],
      [signApdu, ok('26' + r + highS)],
    ]);
    const sig = await createLedgerDevice({ transport: t }).sign(request());
    expect(hex(sig.signature)).toBe(r + s);
    expect(sig.recovery).toBe(0);
  });

  it('when the signature does not recover to the key of the path, then it is refused as signature_mismatch', async () => {
    const t = transcript([
      ['e002000015' + PATH_BYTES, addressAnswer],
      [signApdu, ok('26' + r + s)],
    ]);
    await expect(createLedgerDevice({ transport: t }).sign(request())).rejects.toMatchObject({ code: 'signature_mismatch' });
  });

  it('when the transaction does not hash to the digest, then nothing is sent to the device', async () => {
    const t = transcript([]);
    await expect(createLedgerDevice({ transport: t }).sign(request({ digest: keccak_256(Uint8Array.of(1)) }))).rejects.toMatchObject({ code: 'ledger_digest_mismatch' });
  });

  it('when the chain or scheme is not EVM ECDSA, then nothing is sent to the device', async () => {
    const d: SigningDevice = createLedgerDevice({ transport: transcript([]) });
    await expect(d.sign(request({ transaction: { chain: 'bip122:000000000019d6689c085ae165831e93', unsignedTx: eip155.signingData } }))).rejects.toMatchObject({
      code: 'ledger_unsupported_chain',
    });
    await expect(d.sign(request({ scheme: 'ed25519' }))).rejects.toMatchObject({ code: 'ledger_unsupported_scheme' });
    await expect(d.generateKey('treasury', 'solana:5eykt4UsFv8P8NJdTREpY1vzqKqZKvdp', 'ed25519')).rejects.toMatchObject({ code: 'ledger_unsupported_chain' });
    // No attestation key: the capability is absent, so a ceremony lists its keys unattested.
    expect([d.attestKey, d.attestDevice]).toEqual([undefined, undefined]);
    expect(await d.listKeys()).toEqual([]);
  });

  it('when the device reports an address that is not its key\'s, then the key is refused', async () => {
    const wrong = ok(new Uint8Array([65, ...uncompressed, 40, ...Buffer.from('00'.repeat(20), 'ascii')]));
    const d = createLedgerDevice({ transport: transcript([['e002000015' + PATH_BYTES, wrong]]) });
    await expect(d.publicKey(PATH)).rejects.toMatchObject({ code: 'ledger_protocol_error' });
  });
});
