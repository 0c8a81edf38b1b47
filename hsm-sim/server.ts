/**
 * The simulator's TCP server: frames in, one answer per request (docs/device-protocol.md). Every
 * connection logs in with the PIN before it may use keys. Bad frames get an error status; a frame
 * that never completes, an oversized length or an idle connection is closed; nothing a client sends
 * can crash the process.
 */
import { createServer, type Server, type Socket } from 'node:net';
import { canonicalize } from 'json-canonicalize';
import {
  decodeAttestDeviceCommand,
  decodeAttestKeyCommand,
  decodeEnrollGovernanceCommand,
  decodeEnrollPoolCommand,
  decodeExportBackupCommand,
  decodeFrame,
  decodeGenerateKeyCommand,
  decodeGetKeyCommand,
  decodeImportBackupCommand,
  decodeInfoCommand,
  decodeListKeysCommand,
  decodeLoginCommand,
  decodePingCommand,
  decodeGovernPoolCommand,
  decodeFreezePoolCommand,
  decodeGovernanceStateCommand,
  decodeGovernDeviceCommand,
  decodeSignCommand,
  decodeSignMessageCommand,
  encodeAttestDeviceResult,
  encodeAttestKeyResult,
  encodeEnrollGovernanceResult,
  encodeEnrollPoolResult,
  encodeExportBackupResult,
  encodeFrame,
  encodeGenerateKeyResult,
  encodeGetKeyResult,
  encodeImportBackupResult,
  encodeInfoResult,
  encodeListKeysResult,
  encodeLoginResult,
  encodePingResult,
  encodeGovernPoolResult,
  encodeFreezePoolResult,
  encodeGovernanceStateResult,
  encodeGovernDeviceResult,
  encodeSignMessageResult,
  encodeSignResult,
  errorFields,
  timelockedFields,
  MAX_FRAME_BYTES,
  Opcode,
  PROTOCOL_VERSION,
  ProtocolError,
  Status,
  type Frame,
} from '../common/sim-protocol.js';
import { MAX_APPROVAL_MESSAGE_BYTES } from '../common/approval-message.js';
import { MAX_CHALLENGE_BYTES } from '../common/control-message.js';
import { APPROVER_SIGNATURE_BYTES, approverKeyScheme } from '../common/approver-key.js';
import { DeviceRefusal, FIRMWARE, MODEL, SIM_ENFORCES, SimDevice, TimeLocked, freshState } from './device.js';
import { SealedStore, WrongPinError } from './sealed-state.js';
import { NO_FAULTS, decideFault, type FaultPlan } from './faults.js';

export const PARTIAL_FRAME_TIMEOUT_MS = 5_000;
export const IDLE_TIMEOUT_MS = 300_000;
const WRONG_PIN_DELAY_MS = 250;

export interface SimServerOptions {
  readonly dataDir: string;
  /** The device, when it was unsealed at start; otherwise the first correct LOGIN unseals it. */
  readonly device: SimDevice | null;
  readonly log: (line: string) => void;
  /** Injected faults (reliability tests); none by default. */
  readonly faults?: FaultPlan;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function createSimServer(options: SimServerOptions): Server {
  let device = options.device;
  const faults = options.faults ?? NO_FAULTS;
  let signatures = 0;

  const requireDevice = (loggedIn: boolean): SimDevice => {
    if (!device) throw new DeviceRefusal(Status.LOCKED, 'the device is locked: LOGIN with the PIN first');
    if (!loggedIn) throw new DeviceRefusal(Status.NOT_LOGGED_IN, 'LOGIN with the PIN first');
    return device;
  };

  const login = async (pin: string): Promise<void> => {
    if (pin.length === 0 || pin.length > 256) throw new DeviceRefusal(Status.BAD_REQUEST, 'PIN must be 1 to 256 characters');
    if (!device) {
      try {
        const opened = SealedStore.open(options.dataDir, pin, freshState);
        device = new SimDevice(opened.store, opened.state);
        options.log(`unsealed state in ${options.dataDir} (device ${device.id})`);
        return;
      } catch (error) {
        if (error instanceof WrongPinError) {
          await sleep(WRONG_PIN_DELAY_MS);
          throw new DeviceRefusal(Status.WRONG_PIN, 'wrong PIN');
        }
        throw error;
      }
    }
    if (!device.checkPin(pin)) {
      await sleep(WRONG_PIN_DELAY_MS);
      throw new DeviceRefusal(Status.WRONG_PIN, 'wrong PIN');
    }
  };

  // Each request is decoded in full (a malformed one is BAD_REQUEST) before the device is asked to act.
  const handle = async (frame: Frame, session: { loggedIn: boolean }): Promise<Buffer> => {
    const fields = frame.fields;
    switch (frame.code) {
      case Opcode.PING:
        decodePingCommand(fields);
        return encodePingResult();
      case Opcode.INFO:
        decodeInfoCommand(fields);
        return encodeInfoResult({
          deviceId: device ? device.id : '',
          model: MODEL,
          firmware: FIRMWARE,
          attestationPublicKey: device ? device.attestationPublicKey : new Uint8Array(0),
          checksQuorum: true,
          unlocked: device !== null,
          enforces: SIM_ENFORCES,
        });
      case Opcode.LOGIN: {
        const { pin } = decodeLoginCommand(fields);
        await login(pin);
        session.loggedIn = true;
        return encodeLoginResult();
      }
      case Opcode.ENROLL_POOL: {
        const c = decodeEnrollPoolCommand(fields, approverSignatureBytes);
        requireDevice(session.loggedIn).enrollPool(c.poolId, c.approvers, c.threshold, c.policy);
        return encodeEnrollPoolResult();
      }
      case Opcode.ENROLL_GOVERNANCE: {
        const c = decodeEnrollGovernanceCommand(fields, approverSignatureBytes);
        requireDevice(session.loggedIn).enrollGovernance(c.admins, c.quorum, c.custodians);
        return encodeEnrollGovernanceResult();
      }
      case Opcode.GOVERN_POOL: {
        const c = decodeGovernPoolCommand(fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        requireDevice(session.loggedIn).governPool(c.poolId, c.change, c.approvals);
        return encodeGovernPoolResult();
      }
      case Opcode.FREEZE_POOL: {
        const c = decodeFreezePoolCommand(fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        requireDevice(session.loggedIn).freezePool(c.poolId, c.approvals);
        return encodeFreezePoolResult();
      }
      case Opcode.GOVERNANCE_STATE: {
        const c = decodeGovernanceStateCommand(fields);
        const state = requireDevice(session.loggedIn).governanceState(c.poolId);
        return encodeGovernanceStateResult({ summary: canonicalize(state.summary), sequence: state.sequence });
      }
      case Opcode.GOVERN_DEVICE: {
        const c = decodeGovernDeviceCommand(fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        requireDevice(session.loggedIn).governDevice(c.change, c.approvals);
        return encodeGovernDeviceResult();
      }
      case Opcode.SIGN_MESSAGE: {
        const c = decodeSignMessageCommand(fields, 4 * MAX_CHALLENGE_BYTES, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        return encodeSignMessageResult(requireDevice(session.loggedIn).signMessage(c.handle, c.poolId, c.challenge, c.approvals));
      }
      case Opcode.EXPORT_BACKUP: {
        const c = decodeExportBackupCommand(fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        return encodeExportBackupResult(await requireDevice(session.loggedIn).exportBackup(c.threshold, c.custodians, c.approvals));
      }
      case Opcode.IMPORT_BACKUP: {
        const c = decodeImportBackupCommand(fields);
        const restored = await requireDevice(session.loggedIn).importBackup(c.backup, c.shares);
        device = restored;
        const keys = restored.listKeys().length;
        options.log(`restored backup into ${options.dataDir}: device ${restored.id}, ${keys} keys`);
        return encodeImportBackupResult({ deviceId: restored.id, keys });
      }
      case Opcode.GENERATE_KEY: {
        const c = decodeGenerateKeyCommand(fields);
        return encodeGenerateKeyResult(requireDevice(session.loggedIn).generateKey(c.poolId, c.chain, c.curve));
      }
      case Opcode.GET_KEY: {
        const c = decodeGetKeyCommand(fields);
        return encodeGetKeyResult(requireDevice(session.loggedIn).getKey(c.handle));
      }
      case Opcode.LIST_KEYS:
        decodeListKeysCommand(fields);
        return encodeListKeysResult(requireDevice(session.loggedIn).listKeys());
      case Opcode.SIGN: {
        const c = decodeSignCommand(fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        return encodeSignResult(requireDevice(session.loggedIn).sign(c));
      }
      case Opcode.ATTEST_KEY: {
        const c = decodeAttestKeyCommand(fields);
        return encodeAttestKeyResult(requireDevice(session.loggedIn).attest({ subject: 'key', handle: c.handle }));
      }
      case Opcode.ATTEST_DEVICE:
        decodeAttestDeviceCommand(fields);
        return encodeAttestDeviceResult(requireDevice(session.loggedIn).attest({ subject: 'device' }));
      default:
        throw new DeviceRefusal(Status.UNKNOWN_OPCODE, `unknown opcode 0x${frame.code.toString(16).padStart(2, '0')}`);
    }
  };

  const answer = async (socket: Socket, frame: Frame, session: { loggedIn: boolean }): Promise<void> => {
    let status: number = Status.OK;
    let fields: Buffer;
    const faultable = frame.code !== Opcode.PING && frame.code !== Opcode.LOGIN;
    if (faultable && faults.latencyMs > 0) await sleep(faults.latencyMs);
    const fault = faultable ? decideFault(faults) : 'proceed';
    if (fault === 'drop') {
      options.log(`fault: dropping the connection instead of answering opcode ${frame.code}`);
      socket.destroy();
      return;
    }
    if (fault === 'error') {
      status = Status.INTERNAL;
      fields = errorFields('injected fault: internal device error');
    } else if (frame.version !== PROTOCOL_VERSION) {
      status = Status.BAD_FRAME;
      fields = errorFields(`unsupported protocol version ${frame.version}; this device speaks ${PROTOCOL_VERSION}`);
    } else {
      try {
        fields = await handle(frame, session);
      } catch (error) {
        if (error instanceof TimeLocked) {
          status = error.status;
          fields = timelockedFields(error.message, error.until);
        } else if (error instanceof DeviceRefusal) {
          status = error.status;
          fields = errorFields(error.message);
        } else if (error instanceof ProtocolError) {
          status = Status.BAD_REQUEST;
          fields = errorFields(error.message);
        } else {
          status = Status.INTERNAL;
          fields = errorFields('internal device error');
          options.log(`internal error on opcode ${frame.code}: ${error instanceof Error ? error.message : String(error)}`);
        }
      }
    }
    if (status === Status.OK && (frame.code === Opcode.SIGN || frame.code === Opcode.SIGN_MESSAGE)) {
      signatures += 1;
      if (faults.crashAfterSigns !== null && signatures >= faults.crashAfterSigns) {
        options.log(`fault: crashing after ${signatures} signatures, before answering`);
        process.exit(70);
      }
    }
    if (!socket.destroyed) socket.write(encodeFrame(status, frame.requestId, fields));
  };

  return createServer((socket) => {
    const session = { loggedIn: false };
    let buffer: Buffer = Buffer.alloc(0);
    let partialTimer: NodeJS.Timeout | null = null;
    // Answers go out in request order even though handlers are async.
    let chain: Promise<void> = Promise.resolve();

    socket.setNoDelay(true);
    socket.setTimeout(IDLE_TIMEOUT_MS, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    socket.on('close', () => {
      if (partialTimer) clearTimeout(partialTimer);
    });

    const fail = (status: number, message: string, close: boolean) => {
      if (socket.destroyed) return;
      socket.write(encodeFrame(status, 0, errorFields(message)));
      if (close) socket.end();
    };

    socket.on('data', (data: Buffer) => {
      buffer = buffer.length === 0 ? data : Buffer.concat([buffer, data]);
      for (;;) {
        const result = decodeFrame(buffer);
        if (result.kind === 'incomplete') break;
        if (result.kind === 'oversized') {
          buffer = Buffer.alloc(0);
          fail(Status.TOO_LARGE, `frame length ${result.length} exceeds the maximum of ${MAX_FRAME_BYTES} bytes`, true);
          return;
        }
        buffer = Buffer.from(result.rest);
        if (result.kind === 'malformed') {
          fail(Status.BAD_FRAME, result.reason, false);
          continue;
        }
        const frame = result.frame;
        chain = chain
          .then(() => answer(socket, frame, session))
          .catch(() => {
            socket.destroy();
          });
      }
      if (partialTimer) clearTimeout(partialTimer);
      partialTimer =
        buffer.length > 0
          ? setTimeout(() => fail(Status.BAD_FRAME, `incomplete frame: no complete frame within ${PARTIAL_FRAME_TIMEOUT_MS} ms`, true), PARTIAL_FRAME_TIMEOUT_MS)
          : null;
    });
  });
}

/** The signature length of an approver's or admin's key (common/approver-key.ts), or null for a key of no known scheme. */
function approverSignatureBytes(publicKey: Uint8Array): number | null {
  const scheme = approverKeyScheme(publicKey);
  return scheme === null ? null : APPROVER_SIGNATURE_BYTES[scheme];
}
