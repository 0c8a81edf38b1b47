/**
 * How APDUs reach a Ledger (ledgerjs' `Transport.exchange`): one small interface, and its Speculos
 * implementation, APDU over TCP (LedgerHQ/speculos speculos/mcu/apdu.py): request `u32be N | N bytes of
 * APDU`, response `u32be len(data) | data | SW1 SW2` (the length leaves out the status word). The same
 * framing serves `hsm-sim --mode ledger`. The node-hid transport lives in transport-node-hid.ts.
 *
 * One exchange at a time: a second one while the first runs fails at once with `ledger_busy`, it is
 * not queued. After a dropped connection or a timeout the socket is discarded (a late answer must not
 * be taken for the next one's) and the next exchange connects again. Nothing is retried here.
 */
import { connect, type Socket } from 'node:net';
import { DeviceError } from '../../../common/errors.js';

export interface ApduTransport {
  /** Sends one APDU; resolves to the response, data followed by the 2-byte status word. */
  exchange(apdu: Uint8Array): Promise<Uint8Array>;
  close(): Promise<void>;
}

function busyError(): DeviceError {
  return new DeviceError('conflict', 'ledger_busy', 'the Ledger is busy with another request (one at a time): try again when it is done');
}

/** Runs one task at a time; a task started while another runs fails at once with `ledger_busy`. */
export function createOneAtATime(): <T>(task: () => Promise<T>) => Promise<T> {
  let running = false;
  return async <T>(task: () => Promise<T>): Promise<T> => {
    if (running) throw busyError();
    running = true;
    try {
      return await task();
    } finally {
      running = false;
    }
  };
}

export interface SpeculosTransportOptions {
  readonly host?: string;
  /** Speculos' APDU port (9999 by default in Speculos), or the port of `hsm-sim --mode ledger`. */
  readonly port: number;
  /** Per exchange, including a user's time to confirm on the device; default 120 s. */
  readonly timeoutMs?: number;
}

const MAX_RESPONSE_BYTES = 0xffff;

export function createSpeculosTransport(options: SpeculosTransportOptions): ApduTransport {
  const host = options.host ?? '127.0.0.1';
  const { port } = options;
  const timeoutMs = options.timeoutMs ?? 120_000;
  const where = `${host}:${port}`;
  const oneAtATime = createOneAtATime();
  let socket: Socket | null = null;
  let closed = false;

  const unavailable = (code: string, message: string, cause?: unknown) =>
    new DeviceError('unavailable', code, message, cause === undefined ? {} : { cause });

  const discard = () => {
    socket?.destroy();
    socket = null;
  };

  const open = (deadline: number): Promise<Socket> =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      const timer = setTimeout(() => {
        s.destroy();
        reject(unavailable('ledger_timeout', `no connection to the Ledger at ${where} within ${timeoutMs} ms`));
      }, Math.max(0, deadline - Date.now()));
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      // Kept for the socket's life: a later error is followed by 'close', which the exchange handles.
      s.on('error', (error) => {
        clearTimeout(timer);
        reject(unavailable('ledger_unavailable', `cannot reach the Ledger at ${where} (${error.message}); is Speculos or hsm-sim --mode ledger running?`, error));
      });
      s.on('close', () => {
        if (socket === s) socket = null;
      });
    });

  const exchangeOn = (s: Socket, apdu: Uint8Array, deadline: number): Promise<Uint8Array> =>
    new Promise<Uint8Array>((resolve, reject) => {
      let buffer = Buffer.alloc(0);
      const finish = (error: Error | null, response?: Uint8Array) => {
        clearTimeout(timer);
        s.off('data', onData);
        s.off('close', onClose);
        if (error) {
          if (socket === s) discard();
          reject(error);
        } else resolve(response as Uint8Array);
      };
      const onData = (data: Buffer) => {
        buffer = Buffer.concat([buffer, data]);
        if (buffer.length < 4) return;
        const length = buffer.readUInt32BE(0);
        if (length > MAX_RESPONSE_BYTES) {
          finish(unavailable('ledger_protocol_error', `the Ledger at ${where} announced a ${length}-byte response`));
          return;
        }
        if (buffer.length < 4 + length + 2) return;
        if (buffer.length > 4 + length + 2) {
          finish(unavailable('ledger_protocol_error', `the Ledger at ${where} sent more than one response`));
          return;
        }
        finish(null, new Uint8Array(buffer.subarray(4)));
      };
      const onClose = () => finish(unavailable('ledger_unavailable', `the connection to the Ledger at ${where} dropped during the exchange: its outcome is unknown`));
      const timer = setTimeout(
        () => finish(unavailable('ledger_timeout', `the Ledger at ${where} did not answer within ${timeoutMs} ms: the outcome is unknown`)),
        Math.max(0, deadline - Date.now()),
      );
      s.on('data', onData);
      s.on('close', onClose);
      const request = Buffer.alloc(4 + apdu.length);
      request.writeUInt32BE(apdu.length, 0);
      request.set(apdu, 4);
      s.write(request);
    });

  return {
    exchange(apdu: Uint8Array): Promise<Uint8Array> {
      return oneAtATime(async () => {
        if (closed) throw unavailable('ledger_closed', 'the Ledger transport is closed');
        if (apdu.length < 4) throw new DeviceError('invalid', 'ledger_bad_apdu', `an APDU has at least 4 bytes (CLA INS P1 P2), got ${apdu.length}`);
        const deadline = Date.now() + timeoutMs;
        socket ??= await open(deadline);
        return exchangeOn(socket, apdu, deadline);
      });
    },

    async close(): Promise<void> {
      closed = true;
      const s = socket;
      socket = null;
      if (s && !s.destroyed) {
        await new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.end();
          setTimeout(() => s.destroy(), 1_000).unref();
        });
      }
    },
  };
}
