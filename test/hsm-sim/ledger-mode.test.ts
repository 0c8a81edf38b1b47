/**
 * `hsm-sim --mode ledger` as a real process: an independent client (Ledger's hw-app-eth over
 * hw-transport-node-speculos, loaded as CommonJS since their ESM builds do not resolve under Node) and
 * the gateway's own Ledger device over createSpeculosTransport get the same keys and signatures that
 * ethers verifies; the simulator-only F0 controls stand in for the person at the device; malformed
 * input gets status words and the process stays up.
 */
import { connect, type Socket } from 'node:net';
import { createRequire } from 'node:module';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { computeAddress, hexlify, Signature, Transaction, verifyMessage } from 'ethers';
import type EthModule from '@ledgerhq/hw-app-eth';
import type SpeculosModule from '@ledgerhq/hw-transport-node-speculos';
import { encodeBip32Path, GET_APP_CONFIGURATION, parseAppConfiguration, responseData } from '../../src/devices/ledger/apdu.js';
import { createLedgerDevice, IDENTITY_PATH, poolKeyPath, signPersonalMessage } from '../../src/devices/ledger/ledger-device.js';
import { createSpeculosTransport, type ApduTransport } from '../../src/devices/ledger/transport.js';
import type { DeviceSignature, SignRequest } from '../../src/devices/signing-device.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';

const require = createRequire(import.meta.url);
const Eth = (require('@ledgerhq/hw-app-eth') as typeof EthModule).default;
const SpeculosTransport = (require('@ledgerhq/hw-transport-node-speculos') as typeof SpeculosModule).default;

const LEDGER = ['--mode', 'ledger'] as const;
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h.replace(/^0x/, ''), 'hex'));
/** hw-app-eth takes paths without the leading `m/`. */
const bare = (path: string) => path.replace(/^m\//, '');

let sim: SimProcess;
let speculos: SpeculosModule.default;
let eth: EthModule.default;
let transport: ApduTransport;

beforeAll(async () => {
  sim = await startSim({ args: LEDGER });
  speculos = await SpeculosTransport.open({ apduPort: sim.port });
  eth = new Eth(speculos);
  transport = createSpeculosTransport({ port: sim.port, timeoutMs: 5_000 });
});
afterAll(async () => {
  await speculos?.close();
  await transport?.close();
  await sim?.stop();
});

/** Sends a simulator control APDU (CLA F0) and expects 9000. */
async function control(apdu: string): Promise<void> {
  expect(hex(await transport.exchange(bytes(apdu + '00')))).toBe('9000');
}

function unsignedEip1559(): Transaction {
  return Transaction.from({ type: 2, chainId: 1, nonce: 7, maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, gasLimit: 21_000n, to: '0x' + '35'.repeat(20), value: 10n ** 17n });
}

/** Legacy EIP-155 on chain 1337 (its v wraps a byte) with 300 bytes of call data (several chunks). */
function unsignedLegacy(): Transaction {
  return Transaction.from({ type: 0, chainId: 1337, nonce: 3, gasPrice: 20_000_000_000n, gasLimit: 100_000n, to: '0x' + '36'.repeat(20), value: 1n, data: '0x' + 'ab'.repeat(300) });
}

function signRequest(handle: string, tx: Transaction): SignRequest {
  const digest = bytes(tx.unsignedHash);
  return {
    handle,
    poolId: 'treasury',
    scheme: 'ecdsa-secp256k1',
    payload: digest,
    digest,
    approvals: [],
    transaction: { chain: `eip155:${tx.chainId}`, unsignedTx: tx.unsignedSerialized },
  };
}

/** The sender ethers recovers once our device's signature is attached. */
function senderOf(tx: Transaction, sig: DeviceSignature): string {
  const signed = tx.clone();
  signed.signature = Signature.from({ r: '0x' + hex(sig.signature.subarray(0, 32)), s: '0x' + hex(sig.signature.subarray(32)), yParity: sig.recovery as 0 | 1 });
  return signed.from as string;
}

describe('an independent client: hw-app-eth over hw-transport-node-speculos', () => {
  it('when the configuration and an address are read, then 1.10.4 with blind signing, and the address of the 65-byte key', async () => {
    expect(await eth.getAppConfiguration()).toMatchObject({ arbitraryDataEnabled: 1, version: '1.10.4' });
    const { publicKey, address } = await eth.getAddress(bare(IDENTITY_PATH));
    expect(publicKey).toMatch(/^04[0-9a-f]{128}$/);
    expect(address).toBe(computeAddress('0x' + publicKey));
  });

  it('when an EIP-1559 transaction is signed, then ethers recovers the address of the path', async () => {
    const path = bare(poolKeyPath('treasury', 'eip155:1'));
    const { address } = await eth.getAddress(path);
    const tx = unsignedEip1559();
    const { v, r, s } = await eth.signTransaction(path, tx.unsignedSerialized.slice(2), null);
    tx.signature = Signature.from({ r: '0x' + r, s: '0x' + s, v: Number.parseInt(v, 16) });
    expect(tx.from).toBe(address);
  });

  it('when a legacy EIP-155 transaction on chain 1337 with 300 bytes of data is signed, then ethers recovers the address', async () => {
    const path = bare(poolKeyPath('treasury', 'eip155:1337'));
    const { address } = await eth.getAddress(path);
    const tx = unsignedLegacy();
    const { v, r, s } = await eth.signTransaction(path, tx.unsignedSerialized.slice(2), null);
    expect(BigInt('0x' + v) - 1337n * 2n - 35n).toBeLessThanOrEqual(1n);
    tx.signature = Signature.from({ r: '0x' + r, s: '0x' + s, v: BigInt('0x' + v) });
    expect(tx.from).toBe(address);
  });
});

describe('the gateway\'s Ledger device over createSpeculosTransport', () => {
  const device = () => createLedgerDevice({ transport });

  it('when info is read, then a ledger device named after the Ethereum app, with an id from its identity key', async () => {
    const info = await device().info();
    expect(info).toMatchObject({ type: 'ledger', model: 'Ledger Ethereum 1.10.4', firmware: '1.10.4', attestationPublicKey: null, checksQuorum: false });
    expect(info.id).toMatch(/^ledger-[0-9a-f]{16}$/);
    expect(parseAppConfiguration(responseData(await transport.exchange(GET_APP_CONFIGURATION), 'GET APP CONFIGURATION'))).toEqual({ blindSigningEnabled: true, version: '1.10.4' });
  });

  it('when a pool key is generated, then its handle is the pool path and its address is what hw-app-eth reads there, every time', async () => {
    const key = await device().generateKey('treasury', 'eip155:1', 'secp256k1');
    expect(key.handle).toBe(poolKeyPath('treasury', 'eip155:1'));
    expect(key.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
    expect(computeAddress('0x' + key.publicKey)).toBe((await eth.getAddress(bare(key.handle))).address);
    expect(await device().generateKey('treasury', 'eip155:1', 'secp256k1')).toEqual(key);
    expect(await device().publicKey(key.handle)).toEqual({ ...key, poolId: '', chain: '' });
  });

  it('when an EIP-1559 transaction is signed, then ethers recovers the pool address, and the signature is hw-app-eth\'s (RFC 6979)', async () => {
    const key = await device().generateKey('treasury', 'eip155:1', 'secp256k1');
    const tx = unsignedEip1559();
    const sig = await device().sign(signRequest(key.handle, tx));
    expect(senderOf(tx, sig)).toBe(computeAddress('0x' + key.publicKey));
    const theirs = await eth.signTransaction(bare(key.handle), tx.unsignedSerialized.slice(2), null);
    expect(hex(sig.signature)).toBe(theirs.r + theirs.s);
  });

  it('when a long legacy EIP-155 transaction is signed in chunks, then ethers recovers the pool address', async () => {
    const key = await device().generateKey('treasury', 'eip155:1337', 'secp256k1');
    const tx = unsignedLegacy();
    const sig = await device().sign(signRequest(key.handle, tx));
    expect(senderOf(tx, sig)).toBe(computeAddress('0x' + key.publicKey));
    expect(sig.parts).toEqual([{ signature: sig.signature, recovery: sig.recovery }]);
  });

  it('when an approver signs a personal message with the Ledger, then ethers.verifyMessage gives the address of the path', async () => {
    const path = "m/44'/60'/5'/0/0";
    const { address } = await eth.getAddress(bare(path));
    for (const message of ['approve withdrawal w-1', 'x'.repeat(400)]) {
      const signature = await signPersonalMessage(transport, path, message);
      expect(signature).toHaveLength(65);
      expect(verifyMessage(message, hexlify(signature))).toBe(address);
    }
  });

  it('when two operations overlap, then the second fails at once with ledger_busy; a readiness check during a signing gets the last info', async () => {
    const d = device();
    const first = d.info();
    await expect(d.info()).rejects.toMatchObject({ code: 'ledger_busy', kind: 'conflict' });
    const info = await first;
    const busy = d.publicKey("m/44'/60'/5'/0/0");
    await expect(d.generateKey('pool-x', 'eip155:1', 'secp256k1')).rejects.toMatchObject({ code: 'ledger_busy' });
    expect(await d.info()).toEqual(info);
    await busy;
    const exchange = transport.exchange(bytes('b001000000'));
    await expect(transport.exchange(bytes('b001000000'))).rejects.toMatchObject({ code: 'ledger_busy' });
    await exchange;
  });
});

describe('the person at the device (simulator controls, CLA F0)', () => {
  const device = () => createLedgerDevice({ transport });

  it('when the next signing is rejected on the device, then sign fails with ledger_rejected_on_device and returns nothing; the one after works', async () => {
    const key = await device().generateKey('treasury', 'eip155:1', 'secp256k1');
    const tx = unsignedEip1559();
    await control('f0010000');
    const error = await device()
      .sign(signRequest(key.handle, tx))
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'ledger_rejected_on_device', kind: 'forbidden', statusWord: 0x6985 });
    expect((error as Error).message).toMatchInlineSnapshot(
      `"SIGN ETH TRANSACTION: rejected on the Ledger (someone pressed Reject): nothing was signed; if the request is right, send it again and approve it on the device (status 0x6985)"`,
    );
    await control('f0010000');
    await expect(signPersonalMessage(transport, key.handle, 'hello')).rejects.toMatchObject({ code: 'ledger_rejected_on_device' });
    expect(senderOf(tx, await device().sign(signRequest(key.handle, tx)))).toBe(computeAddress('0x' + key.publicKey));
  });

  it('when the device is locked, then every call fails with ledger_locked until it is unlocked', async () => {
    const key = await device().generateKey('treasury', 'eip155:1', 'secp256k1');
    await control('f0020100');
    try {
      await expect(device().info()).rejects.toMatchObject({ code: 'ledger_locked', kind: 'unavailable' });
      await expect(device().sign(signRequest(key.handle, unsignedEip1559()))).rejects.toMatchObject({ code: 'ledger_locked' });
    } finally {
      await control('f0020000');
    }
    expect((await device().info()).type).toBe('ledger');
  });

  it('when the dashboard is open instead of the Ethereum app, then info and signing fail with ledger_wrong_app', async () => {
    const key = await device().generateKey('treasury', 'eip155:1', 'secp256k1');
    await control('f0030000');
    try {
      await expect(device().info()).rejects.toThrowErrorMatchingInlineSnapshot(
        `[DeviceError: the open app on the Ledger is "BOLOS": the Ethereum app is not open on the Ledger: open it on the device and try again]`,
      );
      await expect(device().sign(signRequest(key.handle, unsignedEip1559()))).rejects.toMatchObject({ code: 'ledger_wrong_app', statusWord: 0x6e00 });
    } finally {
      await control('f0030100');
    }
    expect((await device().info()).model).toBe('Ledger Ethereum 1.10.4');
  });
});

/** A raw Speculos-protocol connection: sends `u32be N | APDU`, collects `data | SW` answers. */
class Raw {
  private buffer = Buffer.alloc(0);
  private readonly answers: string[] = [];
  closed = false;
  private constructor(private readonly socket: Socket) {
    socket.on('data', (d: Buffer) => {
      this.buffer = Buffer.concat([this.buffer, d]);
      while (this.buffer.length >= 4 && this.buffer.length >= 6 + this.buffer.readUInt32BE(0)) {
        const length = this.buffer.readUInt32BE(0);
        this.answers.push(this.buffer.subarray(4, 6 + length).toString('hex'));
        this.buffer = this.buffer.subarray(6 + length);
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
  sendFrame(frame: Buffer): void {
    this.socket.write(frame);
  }
  send(apdu: Uint8Array): void {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(apdu.length);
    this.sendFrame(Buffer.concat([head, apdu]));
  }
  async next(timeoutMs = 3_000): Promise<string> {
    const start = Date.now();
    while (Date.now() - start < timeoutMs) {
      const a = this.answers.shift();
      if (a !== undefined) return a;
      if (this.closed) return 'closed';
      await new Promise((r) => setTimeout(r, 5));
    }
    throw new Error('no answer and no close');
  }
  close(): void {
    this.socket.destroy();
  }
}

describe('malformed input', () => {
  const path = Buffer.from(encodeBip32Path(IDENTITY_PATH)).toString('hex');
  const apdu = (head: string, data = '') => bytes(head + (data.length / 2).toString(16).padStart(2, '0') + data);

  it.each([
    ['an APDU shorter than 4 bytes', bytes('e002'), '6700'],
    ['an empty APDU', new Uint8Array(0), '6700'],
    ['an Lc that does not match the data', bytes('e002000005aabb'), '6700'],
    ['an unknown class', apdu('aa010000'), '6e00'],
    ['an unknown instruction', apdu('e0ff0000'), '6d00'],
    ['a path with no levels', apdu('e0020000', '00'), '6a80'],
    ['a path with 11 levels', apdu('e0020000', '0b' + '00000000'.repeat(11)), '6a80'],
    ['a path shorter than its count', apdu('e0020000', '05' + '8000002c'), '6a80'],
    ['GET ADDRESS with P1 02', apdu('e0020200', path), '6b00'],
    ['a next transaction chunk without a first one', apdu('e0048000', 'aa'), '6a80'],
    ['a transaction of unknown type 5', apdu('e0040000', path + '05c0'), '6a80'],
    ['a legacy transaction of 3 items', apdu('e0040000', path + 'c3010203'), '6a80'],
    ['a transaction longer than its RLP list', apdu('e0040000', path + 'c101' + '02'), '6a80'],
    ['a personal message announcing 4 GiB', apdu('e0080000', path + 'ffffffff'), '6a80'],
    ['a personal message with no length', apdu('e0080000', path + '0000'), '6a80'],
    ['a simulator control with bad P1', apdu('f0010100'), '6b00'],
    ['an unknown simulator control', apdu('f0090000'), '6d00'],
    ['a simulator control with data', apdu('f0010000', 'aa'), '6700'],
  ])('when the device gets %s, then it answers %s', async (_what, request, statusWord) => {
    const raw = await Raw.open();
    raw.send(request);
    expect(await raw.next()).toBe(statusWord);
    raw.close();
  });

  it('when a frame announces more than a short APDU, then 6700 and the connection is closed', async () => {
    const raw = await Raw.open();
    raw.sendFrame(Buffer.from('7fffffff', 'hex'));
    expect(await raw.next()).toBe('6700');
    expect(await raw.next()).toBe('closed');
  });

  it('when hundreds of random APDUs are sent, then each gets an answer ending in a status word, and the app still answers (property)', async () => {
    const raw = await Raw.open();
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 260 }).filter((a) => a[0] !== 0xf0),
        async (request) => {
          raw.send(request);
          const answer = await raw.next();
          expect(answer).toMatch(/^([0-9a-f]{2})*[0-9a-f]{4}$/);
        },
      ),
      { numRuns: 300 },
    );
    raw.send(bytes('b001000000'));
    expect(await raw.next()).toBe('0108' + hex(Buffer.from('Ethereum')) + '06' + hex(Buffer.from('1.10.4')) + '0100' + '9000');
    raw.close();
    expect(sim.process.exitCode).toBeNull();
  });
});

describe('the process', () => {
  // Every simulator these tests start, and every client of one, goes when the test ends, passed or failed.
  const started: SimProcess[] = [];
  const clients: { close(): Promise<void> }[] = [];
  const start = async (options: Parameters<typeof startSim>[0]) => {
    const s = await startSim(options);
    started.push(s);
    return s;
  };
  afterEach(async () => {
    for (const c of clients.splice(0)) await c.close();
    for (const s of started.splice(0)) await s.kill();
  });

  it('when ledger mode starts without a PIN, then it exits with 2 and says the PIN is needed', async () => {
    await expect(start({ pin: '', args: LEDGER })).rejects.toThrow(/exited with 2 .*needs the PIN/s);
  });

  it('when the simulator goes away and comes back on the same data and port, then calls fail meanwhile and the device is the same after', async () => {
    const first = await start({ args: LEDGER });
    const t = createSpeculosTransport({ port: first.port, timeoutMs: 3_000 });
    const d = createLedgerDevice({ transport: t });
    clients.push(d);
    const id = (await d.info()).id;
    await first.kill();
    await expect(d.info()).rejects.toMatchObject({ kind: 'unavailable' });
    await start({ dataDir: first.dataDir, pin: first.pin, port: first.port, args: LEDGER });
    expect((await d.info()).id).toBe(id);
    await expect(start({ dataDir: first.dataDir, pin: 'wrong', args: LEDGER })).rejects.toThrow(/exited with 1 .*wrong PIN/s);
  });
});
