/**
 * The Ledger mode's TCP server, compatible with Speculos' APDU port (LedgerHQ/speculos
 * speculos/mcu/apdu.py): request `u32be N | N bytes of APDU`, response `u32be len(data) | data | SW1 SW2`
 * (the length leaves out the status word), each response in one write because
 * @ledgerhq/hw-transport-node-speculos does not reassemble a response split across segments.
 *
 * A request longer than a short APDU (5 + 255 bytes) is answered 0x6700 and the connection closed, since
 * its length cannot be trusted to find the next one; a request that does not complete within 5 s closes
 * the connection; idle connections close after 5 minutes. Nothing a client sends stops the process.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { SW, type LedgerApp } from './ledger-app.js';

export const MAX_APDU_BYTES = 5 + 255;
export const PARTIAL_REQUEST_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 300_000;

export interface LedgerServerOptions {
  readonly app: LedgerApp;
  readonly log: (line: string) => void;
}

function encodeResponse(response: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + response.length);
  out.writeUInt32BE(response.length - 2, 0);
  out.set(response, 4);
  return out;
}

export function createLedgerServer(options: LedgerServerOptions): Server {
  const statusOnly = (statusWord: number) => encodeResponse(Uint8Array.of(statusWord >> 8, statusWord & 0xff));

  return createServer((socket: Socket) => {
    let buffer: Buffer = Buffer.alloc(0);
    let partialTimer: NodeJS.Timeout | null = null;

    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (partialTimer) clearTimeout(partialTimer);
    });

    socket.on('data', (data: Buffer) => {
      buffer = buffer.length === 0 ? data : Buffer.concat([buffer, data]);
      while (buffer.length >= 4) {
        const length = buffer.readUInt32BE(0);
        if (length > MAX_APDU_BYTES) {
          options.log(`ledger: refused a ${length}-byte request and closed the connection`);
          buffer = Buffer.alloc(0);
          socket.end(statusOnly(SW.WRONG_LENGTH));
          return;
        }
        if (buffer.length < 4 + length) break;
        const apdu = new Uint8Array(buffer.subarray(4, 4 + length));
        buffer = buffer.subarray(4 + length);
        if (!socket.destroyed) socket.write(encodeResponse(options.app.handle(apdu)));
      }
      if (partialTimer) clearTimeout(partialTimer);
      partialTimer = buffer.length > 0 ? setTimeout(() => socket.destroy(), PARTIAL_REQUEST_TIMEOUT_MS) : null;
    });
  });
}
