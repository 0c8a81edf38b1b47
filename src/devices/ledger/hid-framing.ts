/**
 * Ledger USB HID framing (LedgerHQ/app-ethereum doc/ethapp.adoc, "Transport protocol"): an APDU travels
 * in fixed-size packets `channel u16be | tag 0x05 | sequence u16be (from 0) | payload`, zero-padded;
 * packet 0's payload starts with the total length u16be (request: the APDU; response: data and the
 * 2-byte status word). Pure: transport-node-hid.ts moves the packets.
 */
import { DeviceError } from '../../../common/errors.js';

export const HID_PACKET_SIZE = 64;
/** The channel the Ethereum app doc names; any u16 works as long as the device echoes it. */
export const LEDGER_HID_CHANNEL = 0x0101;
export const MAX_HID_APDU_BYTES = 0xffff;

const TAG_APDU = 0x05;
const HEADER_BYTES = 5;
const LENGTH_BYTES = 2;

function assertU16(value: number, field: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new DeviceError('invalid', 'ledger_bad_framing_input', `"${field}" expected an integer 0-65535, got ${value}`);
  }
}

function assertPacketSize(packetSize: number): void {
  if (!Number.isInteger(packetSize) || packetSize < HEADER_BYTES + LENGTH_BYTES + 1 || packetSize > 0xffff) {
    throw new DeviceError('invalid', 'ledger_bad_framing_input', `"packetSize" expected an integer 8-65535, got ${packetSize}`);
  }
}

/** The packets that carry `apdu` to the device on `channel`, each exactly `packetSize` bytes. */
export function encodeHidFrames(channel: number, apdu: Uint8Array, packetSize = HID_PACKET_SIZE): Uint8Array[] {
  assertU16(channel, 'channel');
  assertPacketSize(packetSize);
  if (apdu.length === 0 || apdu.length > MAX_HID_APDU_BYTES) {
    throw new DeviceError('invalid', 'ledger_bad_framing_input', `"apdu" expected 1 to ${MAX_HID_APDU_BYTES} bytes, got ${apdu.length}`);
  }
  const stream = new Uint8Array(LENGTH_BYTES + apdu.length);
  new DataView(stream.buffer).setUint16(0, apdu.length);
  stream.set(apdu, LENGTH_BYTES);
  const perPacket = packetSize - HEADER_BYTES;
  const packets: Uint8Array[] = [];
  for (let seq = 0, offset = 0; offset < stream.length; seq++, offset += perPacket) {
    const packet = new Uint8Array(packetSize);
    const view = new DataView(packet.buffer);
    view.setUint16(0, channel);
    view.setUint8(2, TAG_APDU);
    view.setUint16(3, seq);
    packet.set(stream.subarray(offset, offset + perPacket), HEADER_BYTES);
    packets.push(packet);
  }
  return packets;
}

export interface HidResponseReader {
  /** Takes the next packet; returns the whole response (data and status word) once it is complete. */
  push(packet: Uint8Array): Uint8Array | null;
}

/**
 * Reassembles one response from `channel`. Every packet's channel, tag and sequence number is checked;
 * a mismatch, a response shorter than a status word or a packet after completion is refused.
 */
export function createHidResponseReader(channel: number): HidResponseReader {
  assertU16(channel, 'channel');
  let sequence = 0;
  let received = 0;
  let response: Uint8Array | null = null;

  const refuse = (message: string) => new DeviceError('unavailable', 'ledger_framing_error', `Ledger HID response refused: ${message}`);

  return {
    push(packet: Uint8Array): Uint8Array | null {
      if (response !== null && received === response.length) throw refuse('a packet arrived after the response was complete');
      const first = response === null;
      if (packet.length < HEADER_BYTES + (first ? LENGTH_BYTES : 1)) throw refuse(`packet of ${packet.length} bytes is too short`);
      const view = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
      const gotChannel = view.getUint16(0);
      if (gotChannel !== channel) throw refuse(`channel 0x${gotChannel.toString(16).padStart(4, '0')}, expected 0x${channel.toString(16).padStart(4, '0')}`);
      const tag = view.getUint8(2);
      if (tag !== TAG_APDU) throw refuse(`tag 0x${tag.toString(16).padStart(2, '0')}, expected 0x05`);
      const gotSequence = view.getUint16(3);
      if (gotSequence !== sequence) throw refuse(`sequence ${gotSequence}, expected ${sequence}`);
      let payload = packet.subarray(HEADER_BYTES);
      if (response === null) {
        const length = view.getUint16(HEADER_BYTES);
        if (length < 2) throw refuse(`length ${length} leaves no room for the status word`);
        response = new Uint8Array(length);
        payload = payload.subarray(LENGTH_BYTES);
      }
      const take = payload.subarray(0, response.length - received);
      response.set(take, received);
      received += take.length;
      sequence++;
      return received === response.length ? response : null;
    },
  };
}
