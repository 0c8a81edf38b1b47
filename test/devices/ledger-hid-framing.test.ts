/**
 * Ledger USB HID framing (src/devices/ledger/hid-framing.ts) against the app-ethereum transport
 * description and, as an independent implementation, Ledger's own `@ledgerhq/devices/hid-framing`
 * (8.15.0, loaded as CommonJS: its ESM build does not resolve under Node).
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type HidFramingModule from '@ledgerhq/devices/hid-framing';
import { createHidResponseReader, encodeHidFrames, LEDGER_HID_CHANNEL } from '../../src/devices/ledger/hid-framing.js';

const require = createRequire(import.meta.url);
const createHIDframing = (require('@ledgerhq/devices/hid-framing') as typeof HidFramingModule).default;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

/** Feeds packets to a fresh reader; the response, or null if it never completed. */
function reassemble(channel: number, packets: readonly Uint8Array[]): Uint8Array | null {
  const reader = createHidResponseReader(channel);
  let out: Uint8Array | null = null;
  for (const p of packets) out = reader.push(p);
  return out;
}

function ledgerReassemble(channel: number, packets: readonly Uint8Array[]): Buffer | null | undefined {
  const framing = createHIDframing(channel, 64);
  let acc: Parameters<typeof framing.reduceResponse>[0] = null;
  for (const p of packets) acc = framing.reduceResponse(acc, Buffer.from(p));
  return framing.getReducedResult(acc);
}

describe('encodeHidFrames', () => {
  it('when an APDU fits in one packet, then one 64-byte packet: channel, tag 05, sequence 0, length, APDU, zeros', () => {
    const packets = encodeHidFrames(LEDGER_HID_CHANNEL, Uint8Array.of(0xb0, 0x01, 0x00, 0x00, 0x00));
    expect(packets).toHaveLength(1);
    expect(hex(packets[0] as Uint8Array)).toBe('0101050000' + '0005' + 'b001000000' + '00'.repeat(52));
  });

  it('when an APDU needs more than one packet, then packet 0 carries 57 bytes, the next ones 59, with counting sequence numbers', () => {
    const apdu = Uint8Array.from({ length: 200 }, (_, i) => i);
    const packets = encodeHidFrames(0x1234, apdu);
    expect(packets.map((p) => p.length)).toEqual([64, 64, 64, 64]);
    expect(packets.map((p) => hex(p.subarray(0, 5)))).toEqual(['1234050000', '1234050001', '1234050002', '1234050003']);
    expect(hex((packets[0] as Uint8Array).subarray(5, 7))).toBe('00c8');
    expect(Buffer.concat([(packets[0] as Uint8Array).subarray(7), ...packets.slice(1).map((p) => p.subarray(5))]).subarray(0, 200)).toEqual(Buffer.from(apdu));
    expect(hex((packets[3] as Uint8Array).subarray(5 + 200 - 57 - 59 - 59))).toBe('00'.repeat(59 - (200 - 57 - 59 - 59)));
  });

  it('when the APDU is empty or longer than 0xffff bytes, or the channel is not a u16, then it is refused', () => {
    expect(() => encodeHidFrames(1, new Uint8Array(0))).toThrowErrorMatchingInlineSnapshot(`[DeviceError: "apdu" expected 1 to 65535 bytes, got 0]`);
    expect(() => encodeHidFrames(1, new Uint8Array(0x10000))).toThrowErrorMatchingInlineSnapshot(`[DeviceError: "apdu" expected 1 to 65535 bytes, got 65536]`);
    expect(() => encodeHidFrames(0x10000, new Uint8Array(5))).toThrowErrorMatchingInlineSnapshot(`[DeviceError: "channel" expected an integer 0-65535, got 65536]`);
    expect(encodeHidFrames(1, new Uint8Array(0xffff))).toHaveLength(Math.ceil((2 + 0xffff) / 59));
  });
});

describe('against @ledgerhq/devices hid-framing', () => {
  const channel = fc.integer({ min: 0, max: 0xffff });
  const apdu = fc.uint8Array({ minLength: 1, maxLength: 700 });

  it('when any APDU is framed, then our packets equal Ledger makeBlocks', () => {
    fc.assert(
      fc.property(channel, apdu, (c, a) => {
        const ours = encodeHidFrames(c, a).map(hex);
        const theirs = createHIDframing(c, 64).makeBlocks(Buffer.from(a)).map(hex);
        expect(ours).toEqual(theirs);
      }),
    );
  });

  it('when a response of 2 or more bytes is framed by either side, then the other side reassembles it byte for byte', () => {
    const response = fc.uint8Array({ minLength: 2, maxLength: 700 });
    fc.assert(
      fc.property(channel, response, (c, r) => {
        const theirPackets = createHIDframing(c, 64).makeBlocks(Buffer.from(r));
        expect(hex(reassemble(c, theirPackets) as Uint8Array)).toBe(hex(r));
        expect(hex(ledgerReassemble(c, encodeHidFrames(c, r)) as Buffer)).toBe(hex(r));
        expect(hex(reassemble(c, encodeHidFrames(c, r)) as Uint8Array)).toBe(hex(r));
      }),
    );
  });
});

describe('createHidResponseReader', () => {
  const response = Uint8Array.from({ length: 130 }, (_, i) => i);
  const packets = () => encodeHidFrames(LEDGER_HID_CHANNEL, response);

  it('when packets arrive in order, then null until the last one, which gives the whole response', () => {
    const reader = createHidResponseReader(LEDGER_HID_CHANNEL);
    const [a, b, c] = packets() as [Uint8Array, Uint8Array, Uint8Array];
    expect(reader.push(a)).toBeNull();
    expect(reader.push(b)).toBeNull();
    expect(hex(reader.push(c) as Uint8Array)).toBe(hex(response));
  });

  it('when a packet comes on another channel, then it is refused', () => {
    const reader = createHidResponseReader(LEDGER_HID_CHANNEL);
    expect(() => reader.push(encodeHidFrames(0x0102, response)[0] as Uint8Array)).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: Ledger HID response refused: channel 0x0102, expected 0x0101]`,
    );
  });

  it('when a packet has another tag, then it is refused', () => {
    const packet = packets()[0] as Uint8Array;
    packet[2] = 0x02;
    expect(() => createHidResponseReader(LEDGER_HID_CHANNEL).push(packet)).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: Ledger HID response refused: tag 0x02, expected 0x05]`,
    );
  });

  it('when a packet is skipped or repeated, then the sequence number is refused', () => {
    const [a, b, c] = packets() as [Uint8Array, Uint8Array, Uint8Array];
    const skipped = createHidResponseReader(LEDGER_HID_CHANNEL);
    skipped.push(a);
    expect(() => skipped.push(c)).toThrowErrorMatchingInlineSnapshot(`[DeviceError: Ledger HID response refused: sequence 2, expected 1]`);
    const repeated = createHidResponseReader(LEDGER_HID_CHANNEL);
    repeated.push(a);
    expect(() => repeated.push(a)).toThrow(expect.objectContaining({ code: 'ledger_framing_error' }));
    expect(() => createHidResponseReader(LEDGER_HID_CHANNEL).push(b)).toThrow(/sequence 1, expected 0/);
  });

  it('when the announced length has no room for a status word, or a packet follows a complete response, then it is refused', () => {
    const short = encodeHidFrames(LEDGER_HID_CHANNEL, Uint8Array.of(0x90))[0] as Uint8Array;
    expect(() => createHidResponseReader(LEDGER_HID_CHANNEL).push(short)).toThrowErrorMatchingInlineSnapshot(
      `[DeviceError: Ledger HID response refused: length 1 leaves no room for the status word]`,
    );
    const reader = createHidResponseReader(LEDGER_HID_CHANNEL);
    const only = encodeHidFrames(LEDGER_HID_CHANNEL, Uint8Array.of(0x90, 0x00))[0] as Uint8Array;
    expect(hex(reader.push(only) as Uint8Array)).toBe('9000');
    expect(() => reader.push(only)).toThrow(/after the response was complete/);
  });

  it('when a packet is shorter than its header, then it is refused', () => {
    expect(() => createHidResponseReader(LEDGER_HID_CHANNEL).push(Uint8Array.of(0x01, 0x01, 0x05))).toThrow(/too short/);
  });
});
