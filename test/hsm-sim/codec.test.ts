/**
 * The device protocol codec (common/sim-protocol.ts, docs/device-protocol.md): every opcode's request
 * and answer survive encode → decode, every decoder refuses a truncated encoding and a trailing byte,
 * request decoders enforce the device's limits with the messages it answers, and the byte layout of
 * the spec's "Example" section is pinned. Properties run with a fixed seed, so a failure replays; the
 * report names the counterexample and the path to it.
 */
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import {
  decodeAttestDeviceCommand,
  decodeAttestDeviceResult,
  decodeAttestKeyCommand,
  decodeAttestKeyResult,
  decodeEnrollGovernanceCommand,
  decodeEnrollGovernanceResult,
  decodeEnrollPoolCommand,
  decodeEnrollPoolResult,
  decodeErrorFields,
  decodeExportBackupCommand,
  decodeExportBackupResult,
  decodeFrame,
  decodeGenerateKeyCommand,
  decodeGenerateKeyResult,
  decodeGetKeyCommand,
  decodeGetKeyResult,
  decodeImportBackupCommand,
  decodeImportBackupResult,
  decodeInfoCommand,
  decodeInfoResult,
  decodeListKeysCommand,
  decodeListKeysResult,
  decodeLoginCommand,
  decodeLoginResult,
  decodePingCommand,
  decodePingResult,
  decodeGovernPoolCommand,
  decodeFreezePoolCommand,
  decodeGovernanceStateCommand,
  decodeGovernanceStateResult,
  decodeGovernDeviceCommand,
  decodeGovernDeviceResult,
  decodeFreezePoolResult,
  decodeGovernPoolResult,
  decodeSignCommand,
  decodeSignMessageCommand,
  decodeSignMessageResult,
  decodeSignResult,
  encodeAttestDeviceCommand,
  encodeAttestDeviceResult,
  encodeAttestKeyCommand,
  encodeAttestKeyResult,
  encodeEnrollGovernanceCommand,
  encodeEnrollGovernanceResult,
  encodeEnrollPoolCommand,
  encodeEnrollPoolResult,
  encodeExportBackupCommand,
  encodeExportBackupResult,
  encodeFrame,
  encodeGenerateKeyCommand,
  encodeGenerateKeyResult,
  encodeGetKeyCommand,
  encodeGetKeyResult,
  encodeImportBackupCommand,
  encodeImportBackupResult,
  encodeInfoCommand,
  encodeInfoResult,
  encodeListKeysCommand,
  encodeListKeysResult,
  encodeLoginCommand,
  encodeLoginResult,
  encodePingCommand,
  encodePingResult,
  encodeGovernPoolCommand,
  encodeFreezePoolCommand,
  encodeGovernanceStateCommand,
  encodeGovernanceStateResult,
  encodeGovernDeviceCommand,
  encodeGovernDeviceResult,
  encodeFreezePoolResult,
  encodeGovernPoolResult,
  encodeSignCommand,
  encodeSignMessageCommand,
  encodeSignMessageResult,
  encodeSignResult,
  errorFields,
  FieldWriter,
  DEVICE_RULES,
  MAX_APPROVALS,
  MAX_CUSTODIAN_RECORDS,
  MAX_STATEMENT_BYTES,
  MAX_UNSIGNED_TX_BYTES,
  Opcode,
  Status,
  writeApprovals,
  type ApprovalRecord,
  type CurveName,
  type KeyRecord,
  type MemberRecord,
  type SchemeName,
} from '../../common/sim-protocol.js';
import { APPROVER_SIGNATURE_BYTES, approverKeyScheme } from '../../common/approver-key.js';
import { MAX_APPROVAL_MESSAGE_BYTES } from '../../common/approval-message.js';
import { MAX_CHALLENGE_BYTES } from '../../common/control-message.js';

/** Fixed, so a failing run replays as it is; fast-check prints the seed and path of the counterexample. */
const RUNS = { seed: 0x51_3c0d, numRuns: 150 } as const;

/** The check the simulator passes to its decoders (hsm-sim/server.ts). */
const checkKey = (publicKey: Uint8Array): number | null => {
  const scheme = approverKeyScheme(publicKey);
  return scheme === null ? null : APPROVER_SIGNATURE_BYTES[scheme];
};
const MAX_CHALLENGE_FIELD = 4 * MAX_CHALLENGE_BYTES;

// Values the decoders accept. A code point is at most 4 UTF-8 bytes, so `text(n)` stays within n bytes.
const text = (maxBytes: number) => fc.string({ unit: 'binary', maxLength: Math.floor(maxBytes / 4) });
const bytes = (length: number) => fc.uint8Array({ minLength: length, maxLength: length });
const blob = fc.uint8Array({ maxLength: 80 });
const curve = fc.constantFrom<CurveName>('secp256k1', 'ed25519');
const key: fc.Arbitrary<KeyRecord> = fc.record({ handle: text(64), poolId: text(64), chain: text(80), curve, publicKey: blob });
const members: fc.Arbitrary<MemberRecord[]> = fc.array(fc.record({ id: text(64), publicKey: fc.oneof(bytes(32), bytes(33)) }), { maxLength: 5 });
const custodians: fc.Arbitrary<MemberRecord[]> = fc.array(fc.record({ id: text(64), publicKey: bytes(32) }), { maxLength: 5 });
const approvals: fc.Arbitrary<ApprovalRecord[]> = fc.array(
  fc.oneof(
    fc.record({ publicKey: bytes(32), message: text(400), signature: bytes(64) }),
    fc.record({ publicKey: bytes(33), message: text(400), signature: bytes(65) }),
  ),
  { maxLength: 4 },
);
const recovery = fc.constantFrom<0 | 1 | null>(0, 1, null);
const none: fc.Arbitrary<undefined> = fc.constant(undefined);

interface Codec {
  readonly name: string;
  readonly opcode: Opcode;
  readonly side: 'request' | 'answer';
  /** False for a request or answer with no fields, which has nothing to cut short. */
  readonly hasFields: boolean;
  /** Encoded values, each with what it must decode to. */
  readonly samples: fc.Arbitrary<{ readonly value: unknown; readonly fields: Buffer }>;
  readonly decode: (fields: Buffer) => unknown;
}

function codec<T>(opcode: Opcode, side: Codec['side'], value: fc.Arbitrary<T>, encode: (v: T) => Buffer, decode: (fields: Buffer) => unknown): Codec {
  const name = `${Object.entries(Opcode).find(([, v]) => v === opcode)?.[0]} ${side}`;
  return { name, opcode, side, hasFields: value !== none, samples: value.map((v) => ({ value: v as unknown, fields: encode(v) })), decode };
}

const CODECS: readonly Codec[] = [
  codec(Opcode.PING, 'request', none, () => encodePingCommand(), decodePingCommand),
  codec(Opcode.PING, 'answer', none, () => encodePingResult(), decodePingResult),
  codec(Opcode.INFO, 'request', none, () => encodeInfoCommand(), decodeInfoCommand),
  codec(
    Opcode.INFO,
    'answer',
    fc.record({ deviceId: text(40), model: text(40), firmware: text(16), attestationPublicKey: fc.oneof(bytes(0), bytes(32)), checksQuorum: fc.boolean(), unlocked: fc.boolean(), enforces: fc.subarray([...DEVICE_RULES]) }),
    encodeInfoResult,
    decodeInfoResult,
  ),
  codec(Opcode.LOGIN, 'request', fc.record({ pin: text(256) }), encodeLoginCommand, decodeLoginCommand),
  codec(Opcode.LOGIN, 'answer', none, () => encodeLoginResult(), decodeLoginResult),
  codec(
    Opcode.ENROLL_POOL,
    'request',
    fc.record({ poolId: text(64), threshold: fc.integer({ min: 0, max: 255 }), approvers: members, policy: text(2000) }),
    encodeEnrollPoolCommand,
    (f) => decodeEnrollPoolCommand(f, checkKey),
  ),
  codec(Opcode.ENROLL_POOL, 'answer', none, () => encodeEnrollPoolResult(), decodeEnrollPoolResult),
  codec(Opcode.GENERATE_KEY, 'request', fc.record({ poolId: text(64), chain: text(80), curve }), encodeGenerateKeyCommand, decodeGenerateKeyCommand),
  codec(Opcode.GENERATE_KEY, 'answer', key, encodeGenerateKeyResult, decodeGenerateKeyResult),
  codec(Opcode.GET_KEY, 'request', fc.record({ handle: text(64) }), encodeGetKeyCommand, decodeGetKeyCommand),
  codec(Opcode.GET_KEY, 'answer', key, encodeGetKeyResult, decodeGetKeyResult),
  codec(Opcode.LIST_KEYS, 'request', none, () => encodeListKeysCommand(), decodeListKeysCommand),
  codec(Opcode.LIST_KEYS, 'answer', fc.array(key, { maxLength: 4 }), encodeListKeysResult, decodeListKeysResult),
  codec(
    Opcode.ENROLL_GOVERNANCE,
    'request',
    fc.record({ quorum: fc.integer({ min: 0, max: 255 }), admins: members, custodians }),
    encodeEnrollGovernanceCommand,
    (f) => decodeEnrollGovernanceCommand(f, checkKey),
  ),
  codec(Opcode.ENROLL_GOVERNANCE, 'answer', none, () => encodeEnrollGovernanceResult(), decodeEnrollGovernanceResult),
  codec(
    Opcode.GOVERN_POOL,
    'request',
    fc.record({ poolId: text(64), change: text(2000), approvals }),
    encodeGovernPoolCommand,
    (f) => decodeGovernPoolCommand(f, MAX_APPROVAL_MESSAGE_BYTES, checkKey),
  ),
  codec(Opcode.GOVERN_POOL, 'answer', none, () => encodeGovernPoolResult(), decodeGovernPoolResult),
  codec(Opcode.FREEZE_POOL, 'request', fc.record({ poolId: text(64), approvals }), encodeFreezePoolCommand, (f) => decodeFreezePoolCommand(f, MAX_APPROVAL_MESSAGE_BYTES, checkKey)),
  codec(Opcode.FREEZE_POOL, 'answer', none, () => encodeFreezePoolResult(), decodeFreezePoolResult),
  codec(Opcode.GOVERNANCE_STATE, 'request', fc.record({ poolId: text(64) }), encodeGovernanceStateCommand, decodeGovernanceStateCommand),
  codec(Opcode.GOVERNANCE_STATE, 'answer', fc.record({ summary: text(4000), sequence: fc.nat() }), encodeGovernanceStateResult, decodeGovernanceStateResult),
  codec(Opcode.GOVERN_DEVICE, 'request', fc.record({ change: text(2000), approvals }), encodeGovernDeviceCommand, (f) => decodeGovernDeviceCommand(f, MAX_APPROVAL_MESSAGE_BYTES, checkKey)),
  codec(Opcode.GOVERN_DEVICE, 'answer', none, () => encodeGovernDeviceResult(), decodeGovernDeviceResult),
  codec(
    Opcode.SIGN,
    'request',
    fc.record({ handle: text(64), poolId: text(64), unsignedTx: text(800), approvals }),
    encodeSignCommand,
    (f) => decodeSignCommand(f, MAX_APPROVAL_MESSAGE_BYTES, checkKey),
  ),
  codec(
    Opcode.SIGN,
    'answer',
    fc
      .tuple(fc.constantFrom<SchemeName>('ecdsa-secp256k1', 'schnorr-bip340', 'ed25519'), fc.array(fc.tuple(bytes(64), recovery), { minLength: 1, maxLength: 4 }))
      .map(([scheme, parts]) => ({ scheme, signatures: parts.map(([s]) => s), recoveries: parts.map(([, r]) => r) })),
    encodeSignResult,
    decodeSignResult,
  ),
  codec(
    Opcode.SIGN_MESSAGE,
    'request',
    fc.record({ handle: text(64), poolId: text(64), challenge: text(MAX_CHALLENGE_FIELD), approvals }),
    encodeSignMessageCommand,
    (f) => decodeSignMessageCommand(f, MAX_CHALLENGE_FIELD, MAX_APPROVAL_MESSAGE_BYTES, checkKey),
  ),
  codec(Opcode.SIGN_MESSAGE, 'answer', fc.record({ signature: bytes(64), recovery }), encodeSignMessageResult, decodeSignMessageResult),
  codec(Opcode.ATTEST_KEY, 'request', fc.record({ handle: text(64) }), encodeAttestKeyCommand, decodeAttestKeyCommand),
  codec(Opcode.ATTEST_KEY, 'answer', fc.record({ statement: text(2000), signature: bytes(64) }), encodeAttestKeyResult, decodeAttestKeyResult),
  codec(Opcode.ATTEST_DEVICE, 'request', none, () => encodeAttestDeviceCommand(), decodeAttestDeviceCommand),
  codec(Opcode.ATTEST_DEVICE, 'answer', fc.record({ statement: text(2000), signature: bytes(64) }), encodeAttestDeviceResult, decodeAttestDeviceResult),
  codec(
    Opcode.EXPORT_BACKUP,
    'request',
    fc.record({ threshold: fc.integer({ min: 0, max: 255 }), custodians: fc.array(bytes(32), { maxLength: 5 }), approvals }),
    encodeExportBackupCommand,
    (f) => decodeExportBackupCommand(f, MAX_APPROVAL_MESSAGE_BYTES, checkKey),
  ),
  codec(Opcode.EXPORT_BACKUP, 'answer', fc.record({ backup: text(400), shares: fc.array(text(120), { maxLength: 5 }) }), encodeExportBackupResult, decodeExportBackupResult),
  codec(Opcode.IMPORT_BACKUP, 'request', fc.record({ backup: text(400), shares: fc.array(blob, { maxLength: 5 }) }), encodeImportBackupCommand, decodeImportBackupCommand),
  codec(Opcode.IMPORT_BACKUP, 'answer', fc.record({ deviceId: text(40), keys: fc.nat({ max: 0xffffffff }) }), encodeImportBackupResult, decodeImportBackupResult),
];

const refusal = (pattern: RegExp) => expect.objectContaining({ name: 'ProtocolError', message: expect.stringMatching(pattern) });

/** What a decoder threw, as its message (for inline snapshots); fails the test if it did not throw. */
function refused(decode: () => unknown): string {
  try {
    decode();
  } catch (error) {
    expect(error).toMatchObject({ name: 'ProtocolError' });
    return (error as Error).message;
  }
  throw new Error('the decoder accepted it');
}

describe('every opcode has one codec', () => {
  it('when the codec table is listed, then each opcode has its request and its answer codec', () => {
    for (const side of ['request', 'answer'] as const) {
      const byNumber = (a: number, b: number) => a - b;
      expect(CODECS.filter((c) => c.side === side).map((c) => c.opcode).sort(byNumber)).toEqual(Object.values(Opcode).sort(byNumber));
    }
  });
});

describe.each(CODECS.map((c) => [c.name, c] as const))('%s', (_, c) => {
  it('when a value is encoded and decoded, then it comes back equal', () => {
    fc.assert(
      fc.property(c.samples, ({ value, fields }) => {
        expect(c.decode(fields)).toEqual(value);
      }),
      RUNS,
    );
  });

  if (c.hasFields) {
    it('when the encoding is cut short, then the decoder refuses a truncated field', () => {
      fc.assert(
        fc.property(c.samples, fc.nat(), ({ fields }, cut) => {
          expect(() => c.decode(fields.subarray(0, cut % fields.length))).toThrow(refusal(/^truncated field: /));
        }),
        RUNS,
      );
    });
  }

  it('when a byte follows the encoding, then the decoder refuses the trailing byte', () => {
    fc.assert(
      fc.property(c.samples, fc.integer({ min: 0, max: 255 }), ({ fields }, extra) => {
        expect(() => c.decode(Buffer.concat([fields, Buffer.from([extra])]))).toThrow(refusal(/^1 unexpected trailing bytes$/));
      }),
      RUNS,
    );
  });
});

describe('request decoders enforce the device limits with its messages', () => {
  const member = (id: string, length = 32): MemberRecord => ({ id, publicKey: new Uint8Array(length) });
  const many = (n: number) => Array.from({ length: n }, (_, i) => member(`a${i}`));

  it('when a PIN is longer than 256 bytes, then LOGIN is refused naming the pin', () => {
    expect(refused(() => decodeLoginCommand(encodeLoginCommand({ pin: 'x'.repeat(257) })))).toMatchInlineSnapshot(`"pin longer than 256 bytes"`);
  });

  it('when a pool id, chain or handle is over its length, then the field is named', () => {
    expect(refused(() => decodeEnrollPoolCommand(encodeEnrollPoolCommand({ poolId: 'p'.repeat(65), threshold: 1, approvers: [], policy: '{}' }), checkKey))).toMatchInlineSnapshot(
      `"poolId longer than 64 bytes"`,
    );
    expect(refused(() => decodeGenerateKeyCommand(encodeGenerateKeyCommand({ poolId: 'p', chain: 'c'.repeat(81), curve: 'ed25519' })))).toMatchInlineSnapshot(
      `"chain longer than 80 bytes"`,
    );
    expect(refused(() => decodeGetKeyCommand(encodeGetKeyCommand({ handle: 'k'.repeat(65) })))).toMatchInlineSnapshot(`"handle longer than 64 bytes"`);
    expect(refused(() => decodeAttestKeyCommand(encodeAttestKeyCommand({ handle: 'k'.repeat(65) })))).toMatchInlineSnapshot(`"handle longer than 64 bytes"`);
  });

  it('when more than 64 approvers or admins come, then ENROLL_POOL and ENROLL_GOVERNANCE are refused', () => {
    const over = many(MAX_APPROVALS + 1);
    expect(refused(() => decodeEnrollPoolCommand(encodeEnrollPoolCommand({ poolId: 'p', threshold: 1, approvers: over, policy: '{}' }), checkKey))).toMatchInlineSnapshot(
      `"at most 64 approvers"`,
    );
    expect(refused(() => decodeEnrollGovernanceCommand(encodeEnrollGovernanceCommand({ quorum: 1, admins: over, custodians: [] }), checkKey))).toMatchInlineSnapshot(
      `"at most 64 admins"`,
    );
    expect(decodeEnrollPoolCommand(encodeEnrollPoolCommand({ poolId: 'p', threshold: 1, approvers: many(MAX_APPROVALS), policy: '{}' }), checkKey).approvers).toHaveLength(MAX_APPROVALS);
  });

  it('when an approver or admin key is neither 32 nor 33 bytes, then it is refused with its length', () => {
    expect(refused(() => decodeEnrollPoolCommand(encodeEnrollPoolCommand({ poolId: 'p', threshold: 1, approvers: [member('a', 31)], policy: '{}' }), checkKey))).toMatchInlineSnapshot(
      `"approver key must be 32 or 33 bytes, got 31"`,
    );
    expect(refused(() => decodeEnrollGovernanceCommand(encodeEnrollGovernanceCommand({ quorum: 1, admins: [member('a', 34)], custodians: [] }), checkKey))).toMatchInlineSnapshot(
      `"admin key must be 32 or 33 bytes, got 34"`,
    );
    expect(refused(() => decodeEnrollPoolCommand(encodeEnrollPoolCommand({ poolId: 'p', threshold: 1, approvers: [{ id: 'i'.repeat(65), publicKey: new Uint8Array(32) }], policy: '{}' }), checkKey))).toMatchInlineSnapshot(
      `"approver id longer than 64 bytes"`,
    );
  });

  it('when approvals break the limits, then SIGN, SIGN_MESSAGE, GOVERN_POOL, FREEZE_POOL, GOVERN_DEVICE and EXPORT_BACKUP are refused alike', () => {
    const tooMany = new FieldWriter().u16(MAX_APPROVALS + 1).toBuffer();
    const badKey = writeApprovals(new FieldWriter(), [{ publicKey: new Uint8Array(20), message: 'm', signature: new Uint8Array(64) }]).toBuffer();
    const badSignature = writeApprovals(new FieldWriter(), [{ publicKey: new Uint8Array(33), message: 'm', signature: new Uint8Array(64) }]).toBuffer();
    const longMessage = writeApprovals(new FieldWriter(), [{ publicKey: new Uint8Array(32), message: 'm'.repeat(MAX_APPROVAL_MESSAGE_BYTES + 1), signature: new Uint8Array(64) }]).toBuffer();
    const decoders = [
      (tail: Buffer) => decodeSignCommand(Buffer.concat([new FieldWriter().str('k').str('p').bytes(Buffer.from('tx')).toBuffer(), tail]), MAX_APPROVAL_MESSAGE_BYTES, checkKey),
      (tail: Buffer) => decodeSignMessageCommand(Buffer.concat([new FieldWriter().str('k').str('p').str('c').toBuffer(), tail]), MAX_CHALLENGE_FIELD, MAX_APPROVAL_MESSAGE_BYTES, checkKey),
      (tail: Buffer) => decodeGovernPoolCommand(Buffer.concat([new FieldWriter().str('p').bytes(Buffer.from('{}')).toBuffer(), tail]), MAX_APPROVAL_MESSAGE_BYTES, checkKey),
      (tail: Buffer) => decodeFreezePoolCommand(Buffer.concat([new FieldWriter().str('p').toBuffer(), tail]), MAX_APPROVAL_MESSAGE_BYTES, checkKey),
      (tail: Buffer) => decodeGovernDeviceCommand(Buffer.concat([new FieldWriter().bytes(Buffer.from('{}')).toBuffer(), tail]), MAX_APPROVAL_MESSAGE_BYTES, checkKey),
      (tail: Buffer) => decodeExportBackupCommand(Buffer.concat([new FieldWriter().u8(2).u8(0).toBuffer(), tail]), MAX_APPROVAL_MESSAGE_BYTES, checkKey),
    ];
    for (const decode of decoders) {
      expect([tooMany, badKey, badSignature, longMessage].map((tail) => refused(() => decode(tail)))).toEqual([
        'at most 64 approvals',
        'approval public key must be 32 or 33 bytes, got 20',
        'approval signature must be 65 bytes, got 64',
        'approval message longer than 131072 bytes',
      ]);
    }
  });

  it('when a string field is not UTF-8 or SIGN carries too long a transaction, then it is refused', () => {
    const notUtf8 = new FieldWriter().u16(2).raw(Uint8Array.from([0xc3, 0x28])).toBuffer();
    expect(refused(() => decodeGetKeyCommand(notUtf8))).toMatchInlineSnapshot(`"handle is not valid UTF-8"`);
    const tx = 'a'.repeat(MAX_UNSIGNED_TX_BYTES + 1);
    expect(refused(() => decodeSignCommand(encodeSignCommand({ handle: 'k', poolId: 'p', unsignedTx: tx, approvals: [] }), MAX_APPROVAL_MESSAGE_BYTES, checkKey))).toMatchInlineSnapshot(
      `"unsignedTx longer than 100000 bytes"`,
    );
    const challenge = 'c'.repeat(MAX_CHALLENGE_FIELD + 1);
    expect(
      refused(() => decodeSignMessageCommand(encodeSignMessageCommand({ handle: 'k', poolId: 'p', challenge, approvals: [] }), MAX_CHALLENGE_FIELD, MAX_APPROVAL_MESSAGE_BYTES, checkKey)),
    ).toMatchInlineSnapshot(`"challenge longer than 4096 bytes"`);
  });

  it('when GENERATE_KEY names an unknown curve, then it is refused', () => {
    expect(refused(() => decodeGenerateKeyCommand(new FieldWriter().str('p').str('eip155:1').u8(9).toBuffer()))).toMatchInlineSnapshot(`"unknown curve code"`);
  });

  it('when a custodian key is not 32 bytes or too many custodians come, then ENROLL_GOVERNANCE and EXPORT_BACKUP are refused naming them', () => {
    const admin = [member('admin')];
    expect(refused(() => decodeEnrollGovernanceCommand(encodeEnrollGovernanceCommand({ quorum: 1, admins: admin, custodians: [member('c', 33)] }), checkKey))).toMatchInlineSnapshot(
      `"custodian key must be 32 bytes, got 33"`,
    );
    const crowd = Array.from({ length: MAX_CUSTODIAN_RECORDS + 1 }, (_, i) => member(`c${i}`));
    expect(refused(() => decodeEnrollGovernanceCommand(encodeEnrollGovernanceCommand({ quorum: 1, admins: admin, custodians: crowd }), checkKey))).toMatchInlineSnapshot(
      `"at most 16 custodians"`,
    );
    const empty = new FieldWriter().u8(2).u8(2).bytes(new Uint8Array(32)).bytes(new Uint8Array(0)).u16(0).toBuffer();
    expect(refused(() => decodeExportBackupCommand(empty, MAX_APPROVAL_MESSAGE_BYTES, checkKey))).toMatchInlineSnapshot(`"custodian 2's key must be 32 bytes (X25519), got 0"`);
    const many = new FieldWriter().u8(2).u8(MAX_CUSTODIAN_RECORDS + 1).toBuffer();
    expect(refused(() => decodeExportBackupCommand(many, MAX_APPROVAL_MESSAGE_BYTES, checkKey))).toMatchInlineSnapshot(`"at most 16 custodians"`);
    const two = { threshold: 2, custodians: [new Uint8Array(32), new Uint8Array(32).fill(9)], approvals: [] };
    expect(decodeExportBackupCommand(encodeExportBackupCommand(two), MAX_APPROVAL_MESSAGE_BYTES, checkKey)).toEqual(two);
  });
});

describe('answer decoders refuse what the device never sends', () => {
  it('when a signature is not 64 bytes, a recovery id is not 0, 1 or 0xff or a statement is over its size, then it is refused', () => {
    expect(refused(() => decodeSignMessageResult(new FieldWriter().bytes(new Uint8Array(63)).u8(0).toBuffer()))).toMatchInlineSnapshot(`"signature must be 64 bytes, got 63"`);
    expect(refused(() => decodeSignMessageResult(encodeSignMessageResult({ signature: new Uint8Array(64), recovery: 7 })))).toMatchInlineSnapshot(`"recovery id 7"`);
    expect(refused(() => decodeAttestKeyResult(encodeAttestKeyResult({ statement: '{}', signature: new Uint8Array(65) })))).toMatchInlineSnapshot(`"signature must be 64 bytes, got 65"`);
    expect(refused(() => decodeAttestKeyResult(encodeAttestKeyResult({ statement: 'x'.repeat(MAX_STATEMENT_BYTES + 1), signature: new Uint8Array(64) })))).toMatchInlineSnapshot(`"statement longer than 65536 bytes"`);
    expect(refused(() => decodeSignResult(new FieldWriter().u8(1).bytes(new Uint8Array(64)).bytes(Uint8Array.from([2])).toBuffer()))).toMatchInlineSnapshot(`"recovery id 2"`);
  });
});

describe('the byte layout of docs/device-protocol.md "Example"', () => {
  const hex = (s: string) => s.replaceAll(' ', '');

  it('when PING goes with request id 7, then the frames are the documented bytes both ways', () => {
    const request = encodeFrame(Opcode.PING, 7, encodePingCommand());
    const answer = encodeFrame(Status.OK, 7, encodePingResult());
    expect(request.toString('hex')).toBe(hex('00000006 01 01 00000007'));
    expect(answer.toString('hex')).toBe(hex('00000006 01 00 00000007'));
    const decoded = decodeFrame(request);
    expect(decoded).toMatchObject({ kind: 'frame', frame: { version: 1, code: Opcode.PING, requestId: 7 } });
    if (decoded.kind === 'frame') expect(decodePingCommand(decoded.frame.fields)).toBeUndefined();
  });

  it('when LOGIN with PIN 1234 is answered WRONG_PIN, then the frames are the documented bytes both ways', () => {
    const request = encodeFrame(Opcode.LOGIN, 1, encodeLoginCommand({ pin: '1234' }));
    const answer = encodeFrame(Status.WRONG_PIN, 1, errorFields('wrong PIN'));
    expect(request.toString('hex')).toBe(hex('0000000c 01 03 00000001 0004 31323334'));
    expect(answer.toString('hex')).toBe(hex('00000011 01 05 00000001 0009 77726f6e672050494e'));
    const [req, ans] = [decodeFrame(request), decodeFrame(answer)];
    if (req.kind !== 'frame' || ans.kind !== 'frame') throw new Error('the documented frames did not decode');
    expect(decodeLoginCommand(req.frame.fields)).toEqual({ pin: '1234' });
    expect(ans.frame.code).toBe(Status.WRONG_PIN);
    expect(decodeErrorFields(ans.frame.fields)).toBe('wrong PIN');
  });

  it('when GENERATE_KEY asks for treasury on eip155:1, then its fields are laid out as the opcode table says', () => {
    // str poolId | str chain | u8 curve (1 = secp256k1)
    const fields = encodeGenerateKeyCommand({ poolId: 'treasury', chain: 'eip155:1', curve: 'secp256k1' });
    expect(fields.toString('hex')).toBe(hex('0008 7472656173757279 0008 6569703135353a31 01'));
  });
});
