/**
 * Bad frames against the real process over raw sockets: every one gets an error status or a closed
 * connection, the process never crashes and never hangs a connection.
 */
import { openPolicy } from '../helpers/open-policy.js';
import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { decodeFrame, encodeFrame, encodeSignCommand, FieldReader, FieldWriter, Opcode, Status, writeApprovals, type Frame } from '../../common/sim-protocol.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { APPROVERS, SEPOLIA, approval, ethereumTx, evidence, messageFor } from './fixtures.js';

let sim: SimProcess;
beforeAll(async () => {
  sim = await startSim();
});
afterAll(async () => {
  await sim?.stop();
});

/** A raw connection that collects reply frames and notices when the server closes it. */
class Raw {
  private buffer: Buffer = Buffer.alloc(0);
  readonly frames: Frame[] = [];
  closed = false;
  private constructor(readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      for (;;) {
        const r = decodeFrame(this.buffer);
        if (r.kind !== 'frame') break;
        this.frames.push(r.frame);
        this.buffer = Buffer.from(r.rest);
      }
    });
    socket.on('close', () => {
      this.closed = true;
    });
    socket.on('error', () => undefined);
  }
  static open(): Promise<Raw> {
    return new Promise((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: sim.port }, () => resolve(new Raw(s)));
      s.once('error', reject);
    });
  }
  send(bytes: Buffer): void {
    this.socket.write(bytes);
  }
  async next(timeoutMs = 3_000): Promise<Frame | 'closed'> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      const f = this.frames.shift();
      if (f) return f;
      if (this.closed) return 'closed';
      await new Promise((r) => setTimeout(r, 10));
    }
    throw new Error('no reply and no close');
  }
  close(): void {
    this.socket.destroy();
  }
}

const message = (f: Frame | 'closed') => (f === 'closed' ? 'closed' : new FieldReader(f.fields).str());

async function stillAlive(): Promise<void> {
  const raw = await Raw.open();
  raw.send(encodeFrame(Opcode.PING, 77, Buffer.alloc(0)));
  const reply = await raw.next();
  raw.close();
  expect(reply).toMatchObject({ code: Status.OK, requestId: 77 });
}

describe('malformed input', () => {
  it('when a length prefix exceeds 16 MiB, then TOO_LARGE and the connection is closed', async () => {
    const raw = await Raw.open();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(0x7fffffff);
    raw.send(head);
    const reply = await raw.next();
    expect(reply).toMatchObject({ code: Status.TOO_LARGE });
    expect(await raw.next()).toBe('closed');
    await stillAlive();
  });

  it('when a frame is shorter than its header, then BAD_FRAME and the connection stays usable', async () => {
    const raw = await Raw.open();
    raw.send(Buffer.from([0, 0, 0, 2, 1, 1]));
    expect(await raw.next()).toMatchObject({ code: Status.BAD_FRAME });
    raw.send(encodeFrame(Opcode.PING, 5, Buffer.alloc(0)));
    expect(await raw.next()).toMatchObject({ code: Status.OK, requestId: 5 });
    raw.close();
  });

  it('when the opcode is unknown, the version wrong, a field truncated or keys used before LOGIN, then each gets its status', async () => {
    const raw = await Raw.open();
    raw.send(encodeFrame(0x7e, 1, Buffer.alloc(0)));
    const unknown = await raw.next();
    expect(unknown).toMatchObject({ code: Status.UNKNOWN_OPCODE, requestId: 1 });
    expect(message(unknown)).toMatchInlineSnapshot(`"unknown opcode 0x7e"`);
    const wrongVersion = encodeFrame(Opcode.PING, 2, Buffer.alloc(0));
    wrongVersion[4] = 9;
    raw.send(wrongVersion);
    expect(await raw.next()).toMatchObject({ code: Status.BAD_FRAME, requestId: 2 });
    raw.send(encodeFrame(Opcode.LOGIN, 3, Buffer.from([0, 10, 65])));
    const truncated = await raw.next();
    expect(truncated).toMatchObject({ code: Status.BAD_REQUEST, requestId: 3 });
    expect(message(truncated)).toMatchInlineSnapshot(`"truncated field: pin"`);
    raw.send(encodeFrame(Opcode.LIST_KEYS, 4, Buffer.alloc(0)));
    expect(await raw.next()).toMatchObject({ code: Status.NOT_LOGGED_IN, requestId: 4 });
    raw.send(encodeFrame(Opcode.PING, 6, Buffer.from([1])));
    expect(await raw.next()).toMatchObject({ code: Status.BAD_REQUEST, requestId: 6 });
    raw.close();
  });

  it('when a frame starts and never completes, then the server closes the connection within seconds', async () => {
    const raw = await Raw.open();
    raw.send(Buffer.from([0, 0, 0, 50, 1, 1]));
    const started = Date.now();
    const reply = await raw.next(10_000);
    expect(reply).toMatchObject({ code: Status.BAD_FRAME });
    expect(await raw.next(2_000)).toBe('closed');
    expect(Date.now() - started).toBeLessThan(8_000);
    await stillAlive();
  }, 15_000);

  it('when hundreds of random frames and bytes are sent, then every complete frame is answered or the connection closed, and the process lives (property)', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.record({ kind: fc.constant('frame' as const), opcode: fc.integer({ min: 0, max: 255 }), body: fc.uint8Array({ maxLength: 300 }) }),
          fc.record({ kind: fc.constant('bytes' as const), opcode: fc.constant(0), body: fc.uint8Array({ minLength: 1, maxLength: 64 }) }),
        ),
        async (input) => {
          const raw = await Raw.open();
          try {
            if (input.kind === 'frame') {
              raw.send(encodeFrame(input.opcode, 9, Buffer.from(input.body)));
              const reply = await raw.next();
              if (reply !== 'closed') expect(reply.requestId === 9 || reply.requestId === 0).toBe(true);
              if (reply !== 'closed' && input.opcode !== Opcode.PING && input.opcode !== Opcode.INFO) expect(reply.code).not.toBe(Status.OK);
            } else {
              raw.send(Buffer.from(input.body));
              raw.send(encodeFrame(Opcode.PING, 10, Buffer.alloc(0)));
            }
          } finally {
            raw.close();
          }
        },
      ),
      { numRuns: 1000 },
    );
    await stillAlive();
    expect(sim.process.exitCode).toBeNull();
  }, 60_000);

  it('when thousands of mutated copies of refused requests (SIGN below threshold, ENROLL of a bound pool, a governed change with a withdrawal approval) reach a logged-in session, then the process lives, each gets an answer, and what was refused changed nothing (property)', async () => {
    const device = createSimDevice({ url: sim.url, pin: sim.pin });
    try {
      await device.enrollPool('fuzz-pool', APPROVERS, 2, openPolicy(2));
      const key = await device.generateKey('fuzz-pool', SEPOLIA, 'secp256k1');
      const tx = ethereumTx({ nonce: 3n });
      const m = messageFor(tx, { pool: 'fuzz-pool' });
      const approvals = [evidence('alice', m)];
      const records = [approval('alice', m)];
      const keysBefore = await device.listKeys();
      // Real requests that must be refused as they are (one approval is below the threshold; the pool exists).
      const originals = [
        encodeFrame(Opcode.SIGN, 5, encodeSignCommand({ handle: key.handle, poolId: 'fuzz-pool', unsignedTx: tx.unsignedTx, approvals: records })),
        encodeFrame(Opcode.ENROLL_POOL, 5, new FieldWriter().str('fuzz-pool').u8(1).u16(1).str('mallory').bytes(hexToBytes(APPROVERS[0]!.publicKey)).bytes(Buffer.from(JSON.stringify(openPolicy(1)))).toBuffer()),
        encodeFrame(Opcode.GOVERN_POOL, 5, writeApprovals(new FieldWriter().str('fuzz-pool').bytes(Buffer.from(JSON.stringify({ action: 'approvers', add: [{ id: 'mallory', publicKey: 'ab'.repeat(32) }], remove: [] }))), records).toBuffer()),
        encodeFrame(Opcode.GENERATE_KEY, 5, new FieldWriter().str('fuzz-pool').str(SEPOLIA).u8(1).toBuffer()),
      ];
      const raw = await Raw.open();
      raw.send(encodeFrame(Opcode.LOGIN, 1, new FieldWriter().str(sim.pin).toBuffer()));
      expect(await raw.next()).toMatchObject({ code: Status.OK });
      let answered = 0;
      let generated = 0;
      await fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...originals.keys()),
          fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { minLength: 1, maxLength: 4 }),
          async (which, flips) => {
            const frame = Buffer.from(originals[which] as Buffer);
            // Keep the length prefix so the frame stays complete; mutate the body.
            for (const f of flips) frame[4 + (f.at % (frame.length - 4))] = f.value;
            raw.send(frame);
            const reply = await raw.next();
            if (reply === 'closed') throw new Error('a mutated frame closed the logged-in session');
            answered += 1;
            // A mutation can make another valid request (a pool id changed into a new one is a new
            // pool); only GENERATE_KEY adds keys. SIGN of a mutated transaction or approval never succeeds.
            if (reply.code === Status.OK && which === 3) generated += 1;
            if (which === 0) expect(reply.code).not.toBe(Status.OK);
          },
        ),
        { numRuns: 2000 },
      );
      raw.close();
      expect(answered).toBe(2000);
      const keysAfter = await device.listKeys();
      expect(keysAfter.length).toBe(keysBefore.length + generated);
      for (const k of keysBefore) expect(keysAfter).toContainEqual(k);
      // The pool's binding is as it was: one approval is still refused, two still sign.
      const request = { handle: key.handle, poolId: 'fuzz-pool', scheme: 'ecdsa-secp256k1' as const, payload: tx.digest, digest: tx.digest, transaction: { chain: SEPOLIA, unsignedTx: tx.unsignedTx } };
      await expect(device.sign({ ...request, approvals })).rejects.toMatchObject({ code: 'device_quorum_refused' });
      expect((await device.sign({ ...request, approvals: [evidence('alice', m), evidence('bob', m)] })).signature.length).toBe(64);
      await stillAlive();
    } finally {
      await device.close();
    }
  }, 120_000);

  it('when a LOGIN frame carries a valid but wrong PIN among valid fields, then WRONG_PIN, and ENROLL with junk fields is BAD_REQUEST after login', async () => {
    const raw = await Raw.open();
    raw.send(encodeFrame(Opcode.LOGIN, 1, new FieldWriter().str('nope').toBuffer()));
    expect(await raw.next()).toMatchObject({ code: Status.WRONG_PIN });
    raw.send(encodeFrame(Opcode.LOGIN, 2, new FieldWriter().str(sim.pin).toBuffer()));
    expect(await raw.next()).toMatchObject({ code: Status.OK });
    raw.send(encodeFrame(Opcode.ENROLL_POOL, 3, new FieldWriter().str('pool-x').u8(1).u16(1).str('a').bytes(new Uint8Array(31)).toBuffer()));
    expect(await raw.next()).toMatchObject({ code: Status.BAD_REQUEST });
    raw.close();
  });
});
