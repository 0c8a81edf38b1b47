/**
 * The Ledger over USB HID: APDUs cut into 64-byte packets by hid-framing.ts (LedgerHQ/app-ethereum
 * doc/ethapp.adoc, "Transport protocol") and moved by node-hid. The only file that imports node-hid, and
 * only when a USB Ledger is first used, so the gateway runs on machines without libusb.
 *
 * Discovery: vendor 0x2c97; interface 0 on Linux (hidraw, which needs LedgerHQ/udev-rules), usage page
 * 0xffa0 elsewhere. node-hid writes take a leading report id 0x00 (65 bytes); reads are 64 bytes.
 * One exchange at a time (a second fails with `ledger_busy`). After any failure (unplugged, timeout,
 * garbled packets) the device is closed and the next exchange opens it again; nothing is retried.
 */
import { DeviceError } from '../../../common/errors.js';
import { createHidResponseReader, encodeHidFrames, HID_PACKET_SIZE, LEDGER_HID_CHANNEL } from './hid-framing.js';
import { createOneAtATime, type ApduTransport } from './transport.js';

export const LEDGER_USB_VENDOR_ID = 0x2c97;
const LEDGER_USAGE_PAGE = 0xffa0;
const REPORT_ID = 0x00;

/** The HID access the transport needs; node-hid in production, a fake in tests. */
export interface HidDevice {
  /** Writes one report: the report id, then one packet. */
  write(report: Uint8Array): Promise<void>;
  /** One packet from the device, or null when none came within `timeoutMs`. */
  read(timeoutMs: number): Promise<Uint8Array | null>;
  close(): Promise<void>;
}

export interface NodeHidTransportOptions {
  /** Opens the device; by default the first Ledger node-hid finds. */
  readonly openDevice?: () => Promise<HidDevice>;
  /** Per exchange, including a user's time to confirm on the device; default 120 s. */
  readonly timeoutMs?: number;
  readonly channel?: number;
}

/** The first Ledger on USB, through node-hid loaded on demand. */
export async function openLedgerHidDevice(): Promise<HidDevice> {
  let hid: typeof import('node-hid');
  try {
    hid = await import('node-hid');
  } catch (error) {
    throw new DeviceError(
      'unavailable',
      'ledger_hid_unavailable',
      'node-hid could not be loaded (it needs libusb-1.0-0 and libudev1): install them, or reach a Ledger emulator with LEDGER_URL=tcp://HOST:PORT',
      { cause: error },
    );
  }
  const onLinux = process.platform === 'linux';
  const found = (await hid.devicesAsync()).find(
    (d) => d.vendorId === LEDGER_USB_VENDOR_ID && (onLinux ? d.interface === 0 : d.usagePage === LEDGER_USAGE_PAGE) && d.path !== undefined,
  );
  if (!found?.path) {
    throw new DeviceError(
      'unavailable',
      'ledger_not_found',
      `no Ledger found on USB: plug it in and unlock it${onLinux ? ' (on Linux, install the LedgerHQ/udev-rules for hidraw access)' : ''}`,
    );
  }
  const device = await hid.HIDAsync.open(found.path);
  return {
    async write(report: Uint8Array): Promise<void> {
      await device.write(Array.from(report));
    },
    async read(timeoutMs: number): Promise<Uint8Array | null> {
      const packet = await device.read(timeoutMs);
      return packet && packet.length > 0 ? new Uint8Array(packet) : null;
    },
    close: () => device.close(),
  };
}

export function createNodeHidTransport(options: NodeHidTransportOptions = {}): ApduTransport {
  const openDevice = options.openDevice ?? openLedgerHidDevice;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const channel = options.channel ?? LEDGER_HID_CHANNEL;
  const oneAtATime = createOneAtATime();
  let device: HidDevice | null = null;
  let closed = false;

  const asDeviceError = (error: unknown): DeviceError =>
    error instanceof DeviceError
      ? error
      : new DeviceError('unavailable', 'ledger_unavailable', `the Ledger on USB failed (${error instanceof Error ? error.message : String(error)}): is it plugged in and unlocked?`, {
          cause: error,
        });

  const drop = async (d: HidDevice) => {
    if (device === d) device = null;
    await d.close().catch(() => undefined);
  };

  const exchangeOn = async (d: HidDevice, packets: readonly Uint8Array[], deadline: number): Promise<Uint8Array> => {
    for (const packet of packets) {
      const report = new Uint8Array(1 + packet.length);
      report[0] = REPORT_ID;
      report.set(packet, 1);
      await d.write(report);
    }
    const reader = createHidResponseReader(channel);
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) throw new DeviceError('unavailable', 'ledger_timeout', `the Ledger on USB did not answer within ${timeoutMs} ms: the outcome is unknown`);
      const packet = await d.read(remaining);
      if (packet === null) continue;
      const response = reader.push(packet);
      if (response) return response;
    }
  };

  return {
    exchange(apdu: Uint8Array): Promise<Uint8Array> {
      return oneAtATime(async () => {
        if (closed) throw new DeviceError('unavailable', 'ledger_closed', 'the Ledger transport is closed');
        const deadline = Date.now() + timeoutMs;
        const packets = encodeHidFrames(channel, apdu, HID_PACKET_SIZE);
        if (!device) {
          try {
            device = await openDevice();
          } catch (error) {
            throw asDeviceError(error);
          }
        }
        const d = device;
        try {
          return await exchangeOn(d, packets, deadline);
        } catch (error) {
          // The device's state is unknown (unplugged, or an answer may still come): start afresh next time.
          await drop(d);
          throw asDeviceError(error);
        }
      });
    },

    async close(): Promise<void> {
      closed = true;
      if (device) await drop(device);
    },
  };
}
