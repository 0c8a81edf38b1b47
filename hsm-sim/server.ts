/**
 * The simulator's TCP server: frames in, one answer per request (docs/device-protocol.md). Every
 * connection logs in with the PIN before it may use keys. Bad frames get an error status; a frame
 * that never completes, an oversized length or an idle connection is closed; nothing a client sends
 * can crash the process.
 */
import { createServer, type Server, type Socket } from 'node:net';
import {
  decodeFrame,
  encodeFrame,
  errorFields,
  FieldReader,
  FieldWriter,
  MAX_FRAME_BYTES,
  Opcode,
  PROTOCOL_VERSION,
  ProtocolError,
  schemeName,
  curveName,
  Status,
  writeKey,
  decodeSignCommand,
  encodeSignResult,
  readApprovals as readApprovalRecords,
  MAX_APPROVALS,
  type ApprovalRecord,
  type Frame,
} from '../common/sim-protocol.js';
import { MAX_APPROVAL_MESSAGE_BYTES } from '../common/approval-message.js';
import { MAX_CHALLENGE_BYTES } from '../common/control-message.js';
import { APPROVER_SIGNATURE_BYTES, approverKeyScheme } from '../common/approver-key.js';
import { DeviceRefusal, FIRMWARE, MODEL, SimDevice, freshState } from './device.js';
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

  const handle = async (frame: Frame, session: { loggedIn: boolean }): Promise<Buffer> => {
    const r = new FieldReader(frame.fields);
    const w = new FieldWriter();
    switch (frame.code) {
      case Opcode.PING:
        r.end();
        return w.toBuffer();
      case Opcode.INFO: {
        r.end();
        return w
          .str(device ? device.id : '')
          .str(MODEL)
          .str(FIRMWARE)
          .bytes(device ? device.attestationPublicKey : new Uint8Array(0))
          .u8(1)
          .u8(device ? 1 : 0)
          .toBuffer();
      }
      case Opcode.LOGIN: {
        const pin = r.str('pin', 256);
        r.end();
        await login(pin);
        session.loggedIn = true;
        return w.toBuffer();
      }
      case Opcode.ENROLL_POOL: {
        const poolId = r.str('poolId', 64);
        const threshold = r.u8('threshold');
        const count = r.u16('approver count');
        if (count > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} approvers`);
        const approvers = [];
        for (let i = 0; i < count; i++) approvers.push({ id: r.str('approver id', 64), publicKey: approverKey(r, 'approver key') });
        r.end();
        requireDevice(session.loggedIn).enrollPool(poolId, approvers, threshold);
        return w.toBuffer();
      }
      case Opcode.ENROLL_GOVERNANCE: {
        const quorum = r.u8('quorum');
        const count = r.u16('admin count');
        if (count > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} admins`);
        const admins = [];
        for (let i = 0; i < count; i++) admins.push({ id: r.str('admin id', 64), publicKey: approverKey(r, 'admin key') });
        r.end();
        requireDevice(session.loggedIn).enrollGovernance(admins, quorum);
        return w.toBuffer();
      }
      case Opcode.REBIND_POOL: {
        const poolId = r.str('poolId', 64);
        const threshold = r.u8('threshold');
        const count = r.u16('approver count');
        if (count > MAX_APPROVALS) throw new ProtocolError(`at most ${MAX_APPROVALS} approvers`);
        const approvers = [];
        for (let i = 0; i < count; i++) approvers.push({ id: r.str('approver id', 64), publicKey: approverKey(r, 'approver key') });
        const approvals = readApprovals(r);
        r.end();
        requireDevice(session.loggedIn).rebindPool(poolId, approvers, threshold, approvals);
        return w.toBuffer();
      }
      case Opcode.SIGN_MESSAGE: {
        const handleId = r.str('handle', 64);
        const poolId = r.str('poolId', 64);
        const challenge = r.str('challenge', 4 * MAX_CHALLENGE_BYTES);
        const approvals = readApprovals(r);
        r.end();
        const signed = requireDevice(session.loggedIn).signMessage(handleId, poolId, challenge, approvals);
        return w.bytes(signed.signature).u8(signed.recovery ?? 0xff).toBuffer();
      }
      case Opcode.EXPORT_BACKUP: {
        const threshold = r.u8('threshold');
        const count = r.u8('custodians');
        const recipients: (Uint8Array | null)[] = [];
        for (let i = 0; i < count; i++) {
          const key = r.bytes('custodian key');
          if (key.length !== 0 && key.length !== 32) throw new ProtocolError(`custodian ${i + 1}'s key must be empty or 32 bytes`);
          recipients.push(key.length === 0 ? null : key);
        }
        r.end();
        const made = await requireDevice(session.loggedIn).exportBackup(threshold, recipients);
        w.bytes(Buffer.from(made.backup, 'utf8')).u8(made.shares.length);
        for (const share of made.shares) w.bytes(Buffer.from(share, 'utf8'));
        return w.toBuffer();
      }
      case Opcode.IMPORT_BACKUP: {
        const backup = Buffer.from(r.bytes('backup')).toString('utf8');
        const count = r.u8('shares');
        const shares: Uint8Array[] = [];
        for (let i = 0; i < count; i++) shares.push(r.bytes('share'));
        r.end();
        const restored = await requireDevice(session.loggedIn).importBackup(backup, shares);
        device = restored;
        options.log(`restored backup into ${options.dataDir}: device ${restored.id}, ${restored.listKeys().length} keys`);
        return w.str(restored.id).u32(restored.listKeys().length).toBuffer();
      }
      case Opcode.GENERATE_KEY: {
        const poolId = r.str('poolId', 64);
        const chain = r.str('chain', 80);
        const curve = curveName(r.u8('curve'));
        r.end();
        if (!curve) throw new ProtocolError('unknown curve code');
        return writeKey(w, requireDevice(session.loggedIn).generateKey(poolId, chain, curve)).toBuffer();
      }
      case Opcode.GET_KEY: {
        const handleId = r.str('handle', 64);
        r.end();
        return writeKey(w, requireDevice(session.loggedIn).getKey(handleId)).toBuffer();
      }
      case Opcode.LIST_KEYS: {
        r.end();
        const keys = requireDevice(session.loggedIn).listKeys();
        w.u32(keys.length);
        for (const k of keys) writeKey(w, k);
        return w.toBuffer();
      }
      case Opcode.SIGN: {
        const command = decodeSignCommand(frame.fields, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
        return encodeSignResult(requireDevice(session.loggedIn).sign(command));
      }
      case Opcode.ATTEST: {
        const statement = r.bytes('statement');
        r.end();
        return w.bytes(requireDevice(session.loggedIn).attest(statement)).toBuffer();
      }
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
        if (error instanceof DeviceRefusal) {
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

/** An approver's public key: 32 bytes (Ed25519) or 33 (compressed secp256k1, EIP-191 approvals). */
function approverKey(r: FieldReader, what: string): Uint8Array {
  const key = r.bytes(what);
  if (approverKeyScheme(key) === null) throw new ProtocolError(`${what} must be 32 or 33 bytes, got ${key.length}`);
  return key;
}

/** Approvals as the protocol carries them (common/sim-protocol.ts), each key of a known approver scheme. */
function readApprovals(r: FieldReader): ApprovalRecord[] {
  return readApprovalRecords(r, MAX_APPROVAL_MESSAGE_BYTES, approverSignatureBytes);
}

function approverSignatureBytes(publicKey: Uint8Array): number | null {
  const scheme = approverKeyScheme(publicKey);
  return scheme === null ? null : APPROVER_SIGNATURE_BYTES[scheme];
}
