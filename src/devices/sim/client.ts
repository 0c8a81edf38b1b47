/**
 * The gateway's client of the HSM simulator (docs/device-protocol.md): one TCP connection, opened
 * lazily and logged in with the PIN, requests multiplexed by request id, a timeout per call. After a
 * dropped connection the next call reconnects. A SIGN is never retried: if the connection drops or
 * the call times out, the outcome is unknown and the caller decides (ARCHITECTURE "never retry a
 * signing call"). The only file in src/ that opens sockets.
 */
import { connect, type Socket } from 'node:net';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import {
  CURVE_CODES,
  decodeFrame,
  encodeFrame,
  FieldReader,
  FieldWriter,
  Opcode,
  readKey,
  SCHEME_CODES,
  schemeName,
  Status,
  STATUS_NAMES,
  encodeSignCommand,
  decodeSignResult,
  writeApprovals as writeApprovalRecords,
  type ApprovalRecord,
  type KeyRecord,
  type SignResult,
} from '../../../common/sim-protocol.js';
import { DeviceError, type ErrorKind } from '../../../common/errors.js';
import type { Curve } from '../../domain/pool.js';
import type { ApprovalEvidence, ControlSignRequest, DeviceInfo, DeviceKey, DeviceSignature, EnrolledApprover, GeneratedKey, SignRequest, SigningDevice } from '../signing-device.js';

export interface SimDeviceOptions {
  /** tcp://HOST:PORT */
  readonly url: string;
  readonly pin: string;
  /** Per-call timeout; default 10 s. */
  readonly timeoutMs?: number;
}

interface Pending {
  readonly opcode: number;
  readonly resolve: (fields: Buffer) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

const STATUS_ERRORS: Readonly<Record<number, { kind: ErrorKind; code: string }>> = {
  [Status.BAD_FRAME]: { kind: 'internal', code: 'device_protocol_error' },
  [Status.UNKNOWN_OPCODE]: { kind: 'internal', code: 'device_protocol_error' },
  [Status.BAD_REQUEST]: { kind: 'invalid', code: 'device_bad_request' },
  [Status.NOT_LOGGED_IN]: { kind: 'unavailable', code: 'device_not_logged_in' },
  [Status.WRONG_PIN]: { kind: 'forbidden', code: 'device_wrong_pin' },
  [Status.LOCKED]: { kind: 'unavailable', code: 'device_locked' },
  [Status.NOT_FOUND]: { kind: 'not_found', code: 'device_key_not_found' },
  [Status.ALREADY_EXISTS]: { kind: 'conflict', code: 'device_already_exists' },
  [Status.QUORUM_REFUSED]: { kind: 'forbidden', code: 'device_quorum_refused' },
  [Status.INTERNAL]: { kind: 'unavailable', code: 'device_internal_error' },
  [Status.TOO_LARGE]: { kind: 'invalid', code: 'device_bad_request' },
  [Status.TRANSACTION_MISMATCH]: { kind: 'forbidden', code: 'device_transaction_mismatch' },
};

function approvalRecord(a: ApprovalEvidence): ApprovalRecord {
  return { publicKey: hexToBytes(a.publicKey), message: a.message, signature: hexToBytes(a.signature) };
}

function parseUrl(url: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:/\s]+):([0-9]{1,5})$/.exec(url);
  if (!m) throw new DeviceError('invalid', 'device_bad_url', `HSM_URL must look like tcp://HOST:PORT, got "${url}"`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/** What the simulator offers besides SigningDevice: backups split among custodians (docs/backup.md). */
export interface SimBackups {
  exportBackup(threshold: number, recipients: readonly (Uint8Array | null)[]): Promise<{ backup: string; shares: string[] }>;
  importBackup(backup: string, shares: readonly Uint8Array[]): Promise<{ deviceId: string; keys: number }>;
}

export function createSimDevice(options: SimDeviceOptions) {
  const { host, port } = parseUrl(options.url);
  const timeoutMs = options.timeoutMs ?? 10_000;
  let socket: Socket | null = null;
  let ready: Promise<Socket> | null = null;
  let nextId = 1;
  let closed = false;
  const pending = new Map<number, Pending>();

  const unavailable = (code: string, message: string, cause?: unknown) =>
    new DeviceError('unavailable', code, message, cause === undefined ? {} : { cause });

  const failAll = (error: (p: Pending) => Error) => {
    for (const [id, p] of pending) {
      clearTimeout(p.timer);
      pending.delete(id);
      p.reject(error(p));
    }
  };

  const lostMessage = (p: Pending) =>
    p.opcode === Opcode.SIGN
      ? 'the connection to the HSM dropped during SIGN: the outcome is unknown; it is not retried'
      : `the connection to the HSM at ${options.url} dropped`;

  const open = (): Promise<Socket> =>
    new Promise<Socket>((resolve, reject) => {
      const s = connect({ host, port });
      s.setNoDelay(true);
      let buffer: Buffer = Buffer.alloc(0);
      s.once('connect', () => resolve(s));
      s.once('error', (error) => {
        reject(unavailable('device_unavailable', `cannot reach the HSM at ${options.url} (${error.message}); is hsm-sim running? npm start starts it`, error));
      });
      s.on('data', (data: Buffer) => {
        buffer = buffer.length === 0 ? data : Buffer.concat([buffer, data]);
        for (;;) {
          const r = decodeFrame(buffer);
          if (r.kind === 'incomplete') break;
          if (r.kind !== 'frame') {
            s.destroy();
            return;
          }
          buffer = Buffer.from(r.rest);
          const p = pending.get(r.frame.requestId);
          if (!p) continue;
          pending.delete(r.frame.requestId);
          clearTimeout(p.timer);
          if (r.frame.code === Status.OK) {
            p.resolve(r.frame.fields);
          } else {
            let message = STATUS_NAMES[r.frame.code] ?? `status ${r.frame.code}`;
            try {
              message = new FieldReader(r.frame.fields).str('message');
            } catch {
              // keep the status name
            }
            const mapped = STATUS_ERRORS[r.frame.code] ?? { kind: 'internal' as const, code: 'device_error' };
            p.reject(new DeviceError(mapped.kind, mapped.code, `HSM refused: ${message}`));
          }
        }
      });
      s.on('close', () => {
        if (socket === s) {
          socket = null;
          ready = null;
        }
        failAll((p) => unavailable('device_unavailable', lostMessage(p)));
      });
    });

  const send = (s: Socket, opcode: number, fields: Buffer): Promise<Buffer> =>
    new Promise<Buffer>((resolve, reject) => {
      const id = nextId;
      nextId = nextId >= 0xfffffffe ? 1 : nextId + 1;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(
          new DeviceError(
            'unavailable',
            'device_timeout',
            opcode === Opcode.SIGN
              ? `the HSM did not answer SIGN within ${timeoutMs} ms: the outcome is unknown; it is not retried`
              : `the HSM did not answer within ${timeoutMs} ms`,
          ),
        );
      }, timeoutMs);
      pending.set(id, { opcode, resolve, reject, timer });
      s.write(encodeFrame(opcode, id, fields));
    });

  const connection = (): Promise<Socket> => {
    if (closed) return Promise.reject(unavailable('device_closed', 'the HSM client is closed'));
    if (ready) return ready;
    ready = open().then(
      async (s) => {
        socket = s;
        try {
          await send(s, Opcode.LOGIN, new FieldWriter().str(options.pin).toBuffer());
        } catch (error) {
          s.destroy();
          throw error;
        }
        return s;
      },
      (error: unknown) => {
        ready = null;
        throw error;
      },
    );
    ready.catch(() => {
      ready = null;
    });
    return ready;
  };

  const call = async (opcode: number, fields: Buffer = Buffer.alloc(0)): Promise<FieldReader> => {
    const s = await connection();
    return new FieldReader(await send(s, opcode, fields));
  };

  const writeMembers = (w: FieldWriter, members: readonly EnrolledApprover[]) => {
    w.u16(members.length);
    for (const a of members) w.str(a.id).bytes(hexToBytes(a.publicKey));
    return w;
  };
  const writeApprovals = (w: FieldWriter, approvals: readonly ApprovalEvidence[]) => writeApprovalRecords(w, approvals.map(approvalRecord));

  const toDeviceKey = (k: KeyRecord): DeviceKey => ({ handle: k.handle, poolId: k.poolId, chain: k.chain, curve: k.curve, publicKey: bytesToHex(k.publicKey) });

  const device = {
    async info(): Promise<DeviceInfo> {
      const r = await call(Opcode.INFO);
      const id = r.str('id');
      const model = r.str('model');
      const firmware = r.str('firmware');
      const attestation = r.bytes('attestation key');
      const checksQuorum = r.u8('checksQuorum') === 1;
      r.u8('unlocked');
      r.end();
      return { id, type: 'sim', model, firmware, attestationPublicKey: attestation.length > 0 ? bytesToHex(attestation) : null, checksQuorum };
    },

    async enrollPool(poolId: string, approvers: readonly EnrolledApprover[], threshold: number): Promise<void> {
      (await call(Opcode.ENROLL_POOL, writeMembers(new FieldWriter().str(poolId).u8(threshold), approvers).toBuffer())).end();
    },

    async enrollGovernance(admins: readonly EnrolledApprover[], quorum: number): Promise<void> {
      (await call(Opcode.ENROLL_GOVERNANCE, writeMembers(new FieldWriter().u8(quorum), admins).toBuffer())).end();
    },

    async rebindPool(poolId: string, approvers: readonly EnrolledApprover[], threshold: number, approvals: readonly ApprovalEvidence[]): Promise<void> {
      const w = writeApprovals(writeMembers(new FieldWriter().str(poolId).u8(threshold), approvers), approvals);
      (await call(Opcode.REBIND_POOL, w.toBuffer())).end();
    },

    /**
     * Backups (a simulator feature, not part of SigningDevice): the device exports its state under a
     * wrapping key split into one share per custodian (encrypted to the custodian's X25519 key, or plain
     * for null), any `threshold` of which restore it.
     */
    async exportBackup(threshold: number, recipients: readonly (Uint8Array | null)[]): Promise<{ backup: string; shares: string[] }> {
      const w = new FieldWriter().u8(threshold).u8(recipients.length);
      for (const r of recipients) w.bytes(r ?? new Uint8Array(0));
      const r = await call(Opcode.EXPORT_BACKUP, w.toBuffer());
      const backup = Buffer.from(r.bytes('backup')).toString('utf8');
      const count = r.u8('shares');
      const shares: string[] = [];
      for (let i = 0; i < count; i++) shares.push(Buffer.from(r.bytes('share')).toString('utf8'));
      r.end();
      return { backup, shares };
    },

    /** Restores a backup into this fresh simulator from share bytes (decrypted already). */
    async importBackup(backup: string, shares: readonly Uint8Array[]): Promise<{ deviceId: string; keys: number }> {
      const w = new FieldWriter().bytes(Buffer.from(backup, 'utf8')).u8(shares.length);
      for (const s of shares) w.bytes(s);
      const r = await call(Opcode.IMPORT_BACKUP, w.toBuffer());
      const deviceId = r.str('device id');
      const keys = r.u32('keys');
      r.end();
      return { deviceId, keys };
    },

    async signMessage(request: ControlSignRequest): Promise<{ signature: Uint8Array; recovery: 0 | 1 | null }> {
      const r = await call(Opcode.SIGN_MESSAGE, writeApprovals(new FieldWriter().str(request.handle).str(request.poolId).str(request.challenge), request.approvals).toBuffer());
      const signature = r.bytes('signature', 64);
      const recovery = r.u8('recovery');
      r.end();
      if (recovery !== 0 && recovery !== 1 && recovery !== 0xff) throw new DeviceError('internal', 'device_protocol_error', `SIGN_MESSAGE answered recovery id ${recovery}`);
      return { signature, recovery: recovery === 0xff ? null : recovery };
    },

    async generateKey(poolId: string, chain: string, curve: Curve): Promise<GeneratedKey> {
      const r = await call(Opcode.GENERATE_KEY, new FieldWriter().str(poolId).str(chain).u8(CURVE_CODES[curve]).toBuffer());
      const k = readKey(r);
      r.end();
      return { handle: k.handle, curve: k.curve, publicKey: bytesToHex(k.publicKey) };
    },

    async publicKey(handle: string): Promise<DeviceKey> {
      const r = await call(Opcode.GET_KEY, new FieldWriter().str(handle).toBuffer());
      const k = readKey(r);
      r.end();
      return toDeviceKey(k);
    },

    async listKeys(): Promise<readonly DeviceKey[]> {
      const r = await call(Opcode.LIST_KEYS);
      const n = r.u32('count');
      const keys: DeviceKey[] = [];
      for (let i = 0; i < n; i++) keys.push(toDeviceKey(readKey(r)));
      r.end();
      return keys;
    },

    async sign(request: SignRequest): Promise<DeviceSignature> {
      // The device decodes the transaction itself and derives what to sign: no hash is sent.
      const fields = encodeSignCommand({ handle: request.handle, poolId: request.poolId, unsignedTx: request.transaction.unsignedTx, approvals: request.approvals.map(approvalRecord) });
      const r = await call(Opcode.SIGN, fields);
      let result: SignResult;
      try {
        result = decodeSignResult(r.rest());
      } catch (error) {
        throw new DeviceError('internal', 'device_protocol_error', `HSM answered SIGN with ${error instanceof Error ? error.message : String(error)}`);
      }
      if (result.scheme !== request.scheme) throw new DeviceError('internal', 'device_protocol_error', `HSM answered scheme ${result.scheme}, the gateway expected ${request.scheme}`);
      const parts = result.signatures.map((signature, i) => ({ signature, recovery: result.recoveries[i] ?? null }));
      const first = parts[0] as DeviceSignature['parts'][number];
      return { scheme: result.scheme, signature: first.signature, recovery: first.recovery, parts };
    },

    async attest(statement: Uint8Array): Promise<Uint8Array> {
      const r = await call(Opcode.ATTEST, new FieldWriter().bytes(statement).toBuffer());
      const signature = r.bytes('signature', 64);
      r.end();
      return signature;
    },

    async close(): Promise<void> {
      closed = true;
      const s = socket;
      socket = null;
      ready = null;
      if (s) {
        await new Promise<void>((resolve) => {
          s.once('close', () => resolve());
          s.end();
          setTimeout(() => s.destroy(), 1_000).unref();
        });
      }
    },
  } satisfies SigningDevice & SimBackups;
  return device;
}
