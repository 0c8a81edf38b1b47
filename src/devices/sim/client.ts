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
  decodeAttestDeviceResult,
  decodeAttestKeyResult,
  decodeEnrollGovernanceResult,
  decodeEnrollPoolResult,
  decodeErrorFields,
  decodeExportBackupResult,
  decodeFrame,
  decodeGenerateKeyResult,
  decodeGetKeyResult,
  decodeImportBackupResult,
  decodeInfoResult,
  decodeListKeysResult,
  decodeLoginResult,
  decodeGovernPoolResult,
  decodeFreezePoolResult,
  decodeGovernanceStateResult,
  decodeGovernDeviceResult,
  decodeSignMessageResult,
  decodeSignResult,
  encodeAttestDeviceCommand,
  encodeAttestKeyCommand,
  encodeEnrollGovernanceCommand,
  encodeEnrollPoolCommand,
  encodeExportBackupCommand,
  encodeFrame,
  encodeGenerateKeyCommand,
  encodeGetKeyCommand,
  encodeImportBackupCommand,
  encodeInfoCommand,
  encodeListKeysCommand,
  encodeLoginCommand,
  encodeGovernPoolCommand,
  encodeFreezePoolCommand,
  encodeGovernanceStateCommand,
  encodeGovernDeviceCommand,
  encodeSignCommand,
  encodeSignMessageCommand,
  decodeTimelockedFields,
  DEVICE_RULES,
  Opcode,
  Status,
  STATUS_NAMES,
  type DeviceRule,
  type ApprovalRecord,
  type AttestationResult,
  type KeyRecord,
  type MemberRecord,
} from '../../../common/sim-protocol.js';
import { DeviceError, type ErrorKind } from '../../../common/errors.js';
import { parseStatementText, type AttestationStatement, type DeviceStatement, type KeyStatement, type SignedStatement } from '../../../common/attestation.js';
import { canonicalize } from 'json-canonicalize';
import type { PolicyDocument } from '../../../common/policy/policy.js';
import type { Curve } from '../../domain/pool.js';
import type { ApprovalEvidence, ControlSignRequest, DeviceInfo, DeviceKey, DeviceSignature, EnrolledApprover, EnrolledCustodian, GeneratedKey, SignRequest, SigningDevice } from '../signing-device.js';

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
  [Status.POLICY_REFUSED]: { kind: 'policy', code: 'device_policy_refused' },
  [Status.TIMELOCKED]: { kind: 'conflict', code: 'device_timelocked' },
  [Status.FROZEN]: { kind: 'conflict', code: 'device_frozen' },
  [Status.STALE_GOVERNANCE]: { kind: 'conflict', code: 'device_stale_governance' },
};

function approvalRecord(a: ApprovalEvidence): ApprovalRecord {
  return { publicKey: hexToBytes(a.publicKey), message: a.message, signature: hexToBytes(a.signature) };
}

function memberRecord(a: EnrolledApprover | EnrolledCustodian): MemberRecord {
  return { id: a.id, publicKey: hexToBytes(a.publicKey) };
}

function deviceKey(k: KeyRecord): DeviceKey {
  return { handle: k.handle, poolId: k.poolId, chain: k.chain, curve: k.curve, publicKey: bytesToHex(k.publicKey) };
}

/** A signing call's answer that does not decode: the device broke the protocol, the request was not bad. */
function decodeSigningAnswer<T>(decode: () => T, what: string): T {
  try {
    return decode();
  } catch (error) {
    throw new DeviceError('internal', 'device_protocol_error', `${what} ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A statement the device sent, read as common/attestation.ts says; one that is not is the device breaking the protocol. */
function signedStatement<S extends AttestationStatement['subject']>(answer: AttestationResult, subject: S): SignedStatement<Extract<AttestationStatement, { subject: S }>> {
  const statement = decodeSigningAnswer(() => parseStatementText(answer.statement), `the device's ${subject} statement:`);
  if (statement.subject !== subject) throw new DeviceError('internal', 'device_protocol_error', `the device answered a ${statement.subject} statement for a ${subject} attestation`);
  return { statement: statement as Extract<AttestationStatement, { subject: S }>, signature: bytesToHex(answer.signature) };
}

function parseUrl(url: string): { host: string; port: number } {
  const m = /^tcp:\/\/([^:/\s]+):([0-9]{1,5})$/.exec(url);
  if (!m) throw new DeviceError('invalid', 'device_bad_url', `HSM_URL must look like tcp://HOST:PORT, got "${url}"`);
  return { host: m[1] as string, port: Number(m[2]) };
}

/**
 * What the simulator offers besides SigningDevice (docs/backup.md): backups split among the custodians
 * it holds, under the admin quorum, and the governed change of those custodians.
 */
export interface SimBackups {
  exportBackup(threshold: number, custodians: readonly Uint8Array[], approvals: readonly ApprovalEvidence[]): Promise<{ backup: string; shares: string[] }>;
  importBackup(backup: string, shares: readonly Uint8Array[]): Promise<{ deviceId: string; keys: number }>;
  governDevice(change: unknown, approvals: readonly ApprovalEvidence[]): Promise<void>;
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
            let details: Record<string, unknown> | undefined;
            try {
              if (r.frame.code === Status.TIMELOCKED) {
                const locked = decodeTimelockedFields(r.frame.fields);
                message = locked.message;
                details = { until: locked.until };
              } else {
                message = decodeErrorFields(r.frame.fields);
              }
            } catch {
              // keep the status name
            }
            const mapped = STATUS_ERRORS[r.frame.code] ?? { kind: 'internal' as const, code: 'device_error' };
            p.reject(new DeviceError(mapped.kind, mapped.code, `HSM refused: ${message}`, details === undefined ? {} : { details }));
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
          decodeLoginResult(await send(s, Opcode.LOGIN, encodeLoginCommand({ pin: options.pin })));
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

  /** Sends one request's fields (from its opcode's encoder); resolves with the OK answer's fields, for its decoder. */
  const call = async (opcode: number, fields: Buffer): Promise<Buffer> => {
    const s = await connection();
    return send(s, opcode, fields);
  };

  const device = {
    async info(): Promise<DeviceInfo> {
      const i = decodeInfoResult(await call(Opcode.INFO, encodeInfoCommand()));
      const attestationPublicKey = i.attestationPublicKey.length > 0 ? bytesToHex(i.attestationPublicKey) : null;
      const enforces = i.enforces.filter((r): r is DeviceRule => (DEVICE_RULES as readonly string[]).includes(r));
      return { id: i.deviceId, type: 'sim', model: i.model, firmware: i.firmware, attestationPublicKey, checksQuorum: i.checksQuorum, enforces };
    },

    async enrollPool(poolId: string, approvers: readonly EnrolledApprover[], threshold: number, policy: PolicyDocument): Promise<void> {
      const fields = encodeEnrollPoolCommand({ poolId, threshold, approvers: approvers.map(memberRecord), policy: canonicalize(policy) });
      decodeEnrollPoolResult(await call(Opcode.ENROLL_POOL, fields));
    },

    async enrollGovernance(admins: readonly EnrolledApprover[], quorum: number, custodians: readonly EnrolledCustodian[] = []): Promise<void> {
      const fields = encodeEnrollGovernanceCommand({ quorum, admins: admins.map(memberRecord), custodians: custodians.map(memberRecord) });
      decodeEnrollGovernanceResult(await call(Opcode.ENROLL_GOVERNANCE, fields));
    },

    async governPool(poolId: string, change: unknown, approvals: readonly ApprovalEvidence[]): Promise<void> {
      decodeGovernPoolResult(await call(Opcode.GOVERN_POOL, encodeGovernPoolCommand({ poolId, change: canonicalize(change), approvals: approvals.map(approvalRecord) })));
    },

    async freezePool(poolId: string, approval: ApprovalEvidence): Promise<void> {
      decodeFreezePoolResult(await call(Opcode.FREEZE_POOL, encodeFreezePoolCommand({ poolId, approvals: [approvalRecord(approval)] })));
    },

    async governanceState(poolId: string): Promise<{ summary: string; sequence: number }> {
      return decodeGovernanceStateResult(await call(Opcode.GOVERNANCE_STATE, encodeGovernanceStateCommand({ poolId })));
    },

    /** A governed change of the device itself (its backup custodians), with the admins' signed governance messages. */
    async governDevice(change: unknown, approvals: readonly ApprovalEvidence[]): Promise<void> {
      decodeGovernDeviceResult(await call(Opcode.GOVERN_DEVICE, encodeGovernDeviceCommand({ change: canonicalize(change), approvals: approvals.map(approvalRecord) })));
    },

    /**
     * Backups (a simulator feature, not part of SigningDevice): the device exports its state under a
     * wrapping key split into one share per custodian, share i encrypted to `custodians[i]` (X25519 keys
     * the device holds as custodians), any `threshold` of which restore it, once the admin quorum's
     * `approvals` approve exactly this export.
     */
    async exportBackup(threshold: number, custodians: readonly Uint8Array[], approvals: readonly ApprovalEvidence[]): Promise<{ backup: string; shares: string[] }> {
      const fields = encodeExportBackupCommand({ threshold, custodians, approvals: approvals.map(approvalRecord) });
      const made = decodeExportBackupResult(await call(Opcode.EXPORT_BACKUP, fields));
      return { backup: made.backup, shares: [...made.shares] };
    },

    /** Restores a backup into this fresh simulator from share bytes (decrypted already). */
    async importBackup(backup: string, shares: readonly Uint8Array[]): Promise<{ deviceId: string; keys: number }> {
      return decodeImportBackupResult(await call(Opcode.IMPORT_BACKUP, encodeImportBackupCommand({ backup, shares })));
    },

    async signMessage(request: ControlSignRequest): Promise<{ signature: Uint8Array; recovery: 0 | 1 | null }> {
      const fields = encodeSignMessageCommand({ handle: request.handle, poolId: request.poolId, challenge: request.challenge, approvals: request.approvals.map(approvalRecord) });
      const answer = await call(Opcode.SIGN_MESSAGE, fields);
      return decodeSigningAnswer(() => decodeSignMessageResult(answer), 'SIGN_MESSAGE answered');
    },

    async generateKey(poolId: string, chain: string, curve: Curve): Promise<GeneratedKey> {
      const k = decodeGenerateKeyResult(await call(Opcode.GENERATE_KEY, encodeGenerateKeyCommand({ poolId, chain, curve })));
      return { handle: k.handle, curve: k.curve, publicKey: bytesToHex(k.publicKey) };
    },

    async publicKey(handle: string): Promise<DeviceKey> {
      return deviceKey(decodeGetKeyResult(await call(Opcode.GET_KEY, encodeGetKeyCommand({ handle }))));
    },

    async listKeys(): Promise<readonly DeviceKey[]> {
      return decodeListKeysResult(await call(Opcode.LIST_KEYS, encodeListKeysCommand())).map(deviceKey);
    },

    async sign(request: SignRequest): Promise<DeviceSignature> {
      // The device decodes the transaction itself and derives what to sign: no hash is sent.
      const fields = encodeSignCommand({ handle: request.handle, poolId: request.poolId, unsignedTx: request.transaction.unsignedTx, approvals: request.approvals.map(approvalRecord) });
      const answer = await call(Opcode.SIGN, fields);
      const result = decodeSigningAnswer(() => decodeSignResult(answer), 'HSM answered SIGN with');
      if (result.scheme !== request.scheme) throw new DeviceError('internal', 'device_protocol_error', `HSM answered scheme ${result.scheme}, the gateway expected ${request.scheme}`);
      const parts = result.signatures.map((signature, i) => ({ signature, recovery: result.recoveries[i] ?? null }));
      const first = parts[0] as DeviceSignature['parts'][number];
      return { scheme: result.scheme, signature: first.signature, recovery: first.recovery, parts };
    },

    async attestKey(handle: string): Promise<SignedStatement<KeyStatement>> {
      const answer = await call(Opcode.ATTEST_KEY, encodeAttestKeyCommand({ handle }));
      return signedStatement(decodeSigningAnswer(() => decodeAttestKeyResult(answer), 'ATTEST_KEY answered'), 'key');
    },

    async attestDevice(): Promise<SignedStatement<DeviceStatement>> {
      const answer = await call(Opcode.ATTEST_DEVICE, encodeAttestDeviceCommand());
      return signedStatement(decodeSigningAnswer(() => decodeAttestDeviceResult(answer), 'ATTEST_DEVICE answered'), 'device');
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
