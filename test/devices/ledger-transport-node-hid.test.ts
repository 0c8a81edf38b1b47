/**
 * The USB HID transport (src/devices/ledger/transport-node-hid.ts) driven by a fake HID device that
 * speaks the framing through Ledger's own `@ledgerhq/devices/hid-framing` (an independent
 * implementation): report ids, packets, reassembly, one exchange at a time, reopening after a failure.
 */
import { createRequire } from 'node:module';
import { describe, expect, it } from 'vitest';
import type HidFramingModule from '@ledgerhq/devices/hid-framing';
import { DeviceError } from '../../common/errors.js';
import { createNodeHidTransport, type HidDevice } from '../../src/devices/ledger/transport-node-hid.js';

const require = createRequire(import.meta.url);
const createHIDframing = (require('@ledgerhq/devices/hid-framing') as typeof HidFramingModule).default;

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

interface FakeOptions {
  /** The answer (data and status word) to a request APDU. */
  readonly answer?: (apdu: Uint8Array) => Uint8Array;
  /** Channel the fake answers on; the request's by default. */
  readonly answerChannel?: number;
  /** Delay before the answer is readable. */
  readonly delayMs?: number;
  readonly failWrites?: boolean;
}

/** A Ledger on a fake USB: reassembles written packets into APDUs and queues framed answers. */
class FakeLedger implements HidDevice {
  readonly writes: Uint8Array[] = [];
  readonly requests: Uint8Array[] = [];
  closed = false;
  private acc: Parameters<ReturnType<typeof createHIDframing>['reduceResponse']>[0] = null;
  private readonly outbox: Uint8Array[] = [];
  private wake: (() => void) | null = null;

  constructor(private readonly options: FakeOptions = {}) {}

  async write(report: Uint8Array): Promise<void> {
    if (this.closed) throw new Error('device closed');
    if (this.options.failWrites) throw new Error('could not write to HID device');
    this.writes.push(report.slice());
    const packet = Buffer.from(report.subarray(1));
    const channel = packet.readUInt16BE(0);
    const framing = createHIDframing(channel, 64);
    this.acc = framing.reduceResponse(this.acc, packet);
    const apdu = framing.getReducedResult(this.acc);
    if (!apdu) return;
    this.acc = null;
    this.requests.push(new Uint8Array(apdu));
    const answer = (this.options.answer ?? (() => Uint8Array.of(0x90, 0x00)))(new Uint8Array(apdu));
    const blocks = createHIDframing(this.options.answerChannel ?? channel, 64).makeBlocks(Buffer.from(answer));
    setTimeout(() => {
      this.outbox.push(...blocks);
      this.wake?.();
    }, this.options.delayMs ?? 0);
  }

  async read(timeoutMs: number): Promise<Uint8Array | null> {
    if (this.outbox.length === 0) {
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, timeoutMs);
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = null;
    }
    return this.outbox.shift() ?? null;
  }

  async close(): Promise<void> {
    this.closed = true;
  }
}

const APDU = Uint8Array.of(0xb0, 0x01, 0x00, 0x00, 0x00);

describe('the node-hid transport', () => {
  it('when an APDU is exchanged, then each write is report id 00 and a 64-byte packet on channel 0101, and a multi-packet answer is reassembled', async () => {
    const answer = new Uint8Array([...Array.from({ length: 150 }, (_, i) => i & 0xff), 0x90, 0x00]);
    const fake = new FakeLedger({ answer: () => answer });
    const transport = createNodeHidTransport({ openDevice: async () => fake });
    const apdu = new Uint8Array([0xe0, 0x04, 0x00, 0x00, 100, ...new Uint8Array(100).fill(7)]);
    expect(hex(await transport.exchange(apdu))).toBe(hex(answer));
    expect(fake.writes.map((w) => w.length)).toEqual([65, 65]);
    expect(fake.writes.map((w) => hex(w.subarray(0, 6)))).toEqual(['000101050000', '000101050001']);
    expect(fake.requests.map(hex)).toEqual([hex(apdu)]);
    await transport.close();
    expect(fake.closed).toBe(true);
  });

  it('when a second exchange starts while one runs, then it fails at once with ledger_busy and the first completes', async () => {
    const fake = new FakeLedger({ delayMs: 100 });
    const transport = createNodeHidTransport({ openDevice: async () => fake });
    const first = transport.exchange(APDU);
    await expect(transport.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_busy', kind: 'conflict' });
    expect(hex(await first)).toBe('9000');
    expect(fake.requests).toHaveLength(1);
  });

  it('when writing fails (unplugged), then the exchange fails as unavailable and the next one opens the device again', async () => {
    const devices = [new FakeLedger({ failWrites: true }), new FakeLedger()];
    const opened: FakeLedger[] = [];
    const transport = createNodeHidTransport({
      openDevice: async () => {
        const d = devices.shift() as FakeLedger;
        opened.push(d);
        return d;
      },
    });
    await expect(transport.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_unavailable', kind: 'unavailable' });
    expect(opened[0]?.closed).toBe(true);
    expect(hex(await transport.exchange(APDU))).toBe('9000');
    expect(opened).toHaveLength(2);
  });

  it('when the answer comes on another channel, then it is refused and the device is reopened next time', async () => {
    const devices = [new FakeLedger({ answerChannel: 0x0202 }), new FakeLedger()];
    const transport = createNodeHidTransport({ openDevice: async () => devices.shift() as FakeLedger });
    await expect(transport.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_framing_error' });
    expect(hex(await transport.exchange(APDU))).toBe('9000');
  });

  it('when no answer comes in time, then ledger_timeout says the outcome is unknown', async () => {
    const transport = createNodeHidTransport({ openDevice: async () => new FakeLedger({ delayMs: 1_000 }), timeoutMs: 50 });
    await expect(transport.exchange(APDU)).rejects.toThrowErrorMatchingInlineSnapshot(`[DeviceError: the Ledger on USB did not answer within 50 ms: the outcome is unknown]`);
  });

  it('when no Ledger can be opened, then the opener\'s DeviceError is passed on and any other failure becomes ledger_unavailable', async () => {
    const notFound = createNodeHidTransport({
      openDevice: async () => {
        throw new DeviceError('unavailable', 'ledger_not_found', 'no Ledger found on USB');
      },
    });
    await expect(notFound.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_not_found' });
    const noAccess = createNodeHidTransport({
      openDevice: async () => {
        throw new Error('cannot open device with path /dev/hidraw0');
      },
    });
    await expect(noAccess.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_unavailable', message: expect.stringContaining('/dev/hidraw0') });
  });

  it('when the transport is closed, then exchanges fail with ledger_closed', async () => {
    const transport = createNodeHidTransport({ openDevice: async () => new FakeLedger() });
    await transport.close();
    await expect(transport.exchange(APDU)).rejects.toMatchObject({ code: 'ledger_closed' });
  });
});
