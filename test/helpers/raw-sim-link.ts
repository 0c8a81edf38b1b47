/**
 * Test harness: a raw link to the HSM simulator (docs/device-protocol.md), speaking the wire protocol
 * with the codec of common/sim-protocol.ts and nothing of the gateway's client, for tests that play a
 * compromised gateway holding the PIN. Every answer comes back as its status and fields, refusals
 * included, so a test can assert the exact status the device chose.
 */
import type { PolicyDocument } from '../../common/policy/policy.js';
import { openPolicy } from './open-policy.js';
import { connect, type Socket } from 'node:net';
import {
  CURVE_CODES,
  decodeFrame,
  decodeSignResult,
  encodeFrame,
  encodeSignCommand,
  FieldReader,
  FieldWriter,
  Opcode,
  readKey,
  Status,
  STATUS_NAMES,
  type CurveName,
  type KeyRecord,
  type SignCommand,
  type SignResult,
} from '../../common/sim-protocol.js';

export interface RawAnswer {
  readonly status: number;
  readonly fields: Buffer;
}

/** What SIGN answered: OK with the signatures, or a refusal with its status and message (and no signature). */
export type SignAnswer =
  | { readonly status: typeof Status.OK; readonly statusName: 'OK'; readonly result: SignResult; readonly message: null }
  | { readonly status: number; readonly statusName: string; readonly result: null; readonly message: string };

export interface RawSimLink {
  request(opcode: number, fields?: Buffer): Promise<RawAnswer>;
  /** Binds a pool with its policy document (by default openPolicy: the native assets, one tier of `threshold`). */
  enrollPool(poolId: string, approvers: readonly { readonly id: string; readonly publicKey: Uint8Array }[], threshold: number, policy?: PolicyDocument): Promise<void>;
  generateKey(poolId: string, chain: string, curve: CurveName): Promise<KeyRecord>;
  sign(command: SignCommand): Promise<SignAnswer>;
  close(): void;
}

function errorText(fields: Buffer): string {
  try {
    return new FieldReader(fields).str('message');
  } catch {
    return '(no readable message)';
  }
}

/** Opens a connection to the simulator on loopback and logs in with `pin`. */
export async function openRawSimLink(port: number, pin: string, timeoutMs = 10_000): Promise<RawSimLink> {
  const socket: Socket = await new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
  let buffer: Buffer = Buffer.alloc(0);
  let nextId = 1;
  const waiting = new Map<number, { resolve: (a: RawAnswer) => void; reject: (e: Error) => void; timer: NodeJS.Timeout }>();
  const failAll = (error: Error) => {
    for (const [id, w] of waiting) {
      clearTimeout(w.timer);
      waiting.delete(id);
      w.reject(error);
    }
  };
  socket.on('data', (data: Buffer) => {
    buffer = Buffer.concat([buffer, data]);
    for (;;) {
      const r = decodeFrame(buffer);
      if (r.kind === 'incomplete') break;
      if (r.kind !== 'frame') {
        failAll(new Error(`the simulator sent an unreadable frame (${r.kind})`));
        socket.destroy();
        return;
      }
      buffer = Buffer.from(r.rest);
      const w = waiting.get(r.frame.requestId);
      if (!w) continue;
      clearTimeout(w.timer);
      waiting.delete(r.frame.requestId);
      w.resolve({ status: r.frame.code, fields: r.frame.fields });
    }
  });
  socket.on('close', () => failAll(new Error('the simulator closed the connection')));
  socket.on('error', () => undefined);

  const request = (opcode: number, fields: Buffer = Buffer.alloc(0)): Promise<RawAnswer> =>
    new Promise((resolve, reject) => {
      const id = nextId++;
      const timer = setTimeout(() => {
        waiting.delete(id);
        reject(new Error(`no answer to opcode 0x${opcode.toString(16)} within ${timeoutMs} ms`));
      }, timeoutMs);
      waiting.set(id, { resolve, reject, timer });
      socket.write(encodeFrame(opcode, id, fields));
    });

  const expectOk = (what: string, a: RawAnswer): FieldReader => {
    if (a.status !== Status.OK) throw new Error(`${what} answered ${STATUS_NAMES[a.status] ?? a.status}: ${errorText(a.fields)}`);
    return new FieldReader(a.fields);
  };

  expectOk('LOGIN', await request(Opcode.LOGIN, new FieldWriter().str(pin).toBuffer())).end();

  return {
    request,
    async enrollPool(poolId, approvers, threshold, policy = openPolicy(threshold)) {
      const w = new FieldWriter().str(poolId).u8(threshold).u16(approvers.length);
      for (const a of approvers) w.str(a.id).bytes(a.publicKey);
      w.bytes(Buffer.from(JSON.stringify(policy), 'utf8'));
      expectOk('ENROLL_POOL', await request(Opcode.ENROLL_POOL, w.toBuffer())).end();
    },
    async generateKey(poolId, chain, curve) {
      const r = expectOk('GENERATE_KEY', await request(Opcode.GENERATE_KEY, new FieldWriter().str(poolId).str(chain).u8(CURVE_CODES[curve]).toBuffer()));
      const key = readKey(r);
      r.end();
      return key;
    },
    async sign(command) {
      const a = await request(Opcode.SIGN, encodeSignCommand(command));
      if (a.status === Status.OK) return { status: Status.OK, statusName: 'OK', result: decodeSignResult(a.fields), message: null };
      return { status: a.status, statusName: STATUS_NAMES[a.status] ?? `0x${a.status.toString(16)}`, result: null, message: errorText(a.fields) };
    },
    close() {
      socket.destroy();
    },
  };
}
