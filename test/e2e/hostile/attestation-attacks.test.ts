/**
 * Red team, attestation (SPEC section 7; docs/device-protocol.md "Attestation"): a compromised gateway
 * that holds the simulator PIN and speaks the wire protocol directly (test/helpers/raw-sim-link.ts)
 * tries to get the device's attestation key to vouch for a key the device did not make for a pool,
 * or to pass a transcript off as the ceremony's. The real simulator processes, the real `custody` CLI
 * for `ceremony run` and `ceremony verify`, and code we did not write for the independent checks
 * (noble's Ed25519 for the signatures, ethers' computeAddress for the Ethereum addresses).
 *
 * What it tries, each refused:
 * - the retired ATTEST opcode over bytes of its choosing, and ATTEST_KEY or ATTEST_DEVICE carrying
 *   more than their fields or a handle that names no key;
 * - a transcript listing an attacker's address or key in place of the pool's, with the statement left
 *   as it is, edited, or removed, or with the simulator passed off as a device without attestation key;
 * - another pool's key and its genuine statement, including a pool the attacker bound itself on the
 *   same device (which will not bind the ceremony's pool again nor make it a second key);
 * - a statement of another device, spliced in or with the whole transcript made there;
 * - a device the attacker bound before the ceremony with a laxer policy: the ceremony does not take
 *   the pool over, and a transcript the attacker writes from the device's genuine statements fails the
 *   plan (the control: a device holding the pool bound as the plan says is resumed from).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalize } from 'json-canonicalize';
import { computeAddress } from 'ethers';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { ATTESTATION_DOMAIN, type KeyStatement } from '../../../common/attestation.js';
import {
  decodeAttestDeviceResult,
  decodeAttestKeyResult,
  decodeErrorFields,
  decodeInfoResult,
  encodeAttestKeyCommand,
  encodeEnrollPoolCommand,
  encodeGenerateKeyCommand,
  encodeInfoCommand,
  FieldWriter,
  Opcode,
  Status,
  STATUS_NAMES,
} from '../../../common/sim-protocol.js';
import { startSim, type SimProcess } from '../../helpers/sim-process.js';
import { openRawSimLink, type RawAnswer, type RawSimLink } from '../../helpers/raw-sim-link.js';
import { PLAN, SEPOLIA, runCli, type CliResult } from '../../helpers/gateway-stack.js';
import { openPolicy } from '../../helpers/open-policy.js';

const BTC_TESTNET = 'bip122:000000000933ea01ad0ee984209779ba';
/** 0x30: the opcode that signed whatever bytes came with it. */
const RETIRED_ATTEST = 0x30;
const planJson = JSON.parse(readFileSync(PLAN, 'utf8')) as { approvers: { id: string; publicKey: string }[]; pools: { id: string; approvers: string[]; policy: unknown }[] };
const planMembers = (pool: string) =>
  planJson.approvers.filter((a) => planJson.pools.find((p) => p.id === pool)!.approvers.includes(a.id)).map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));

interface Signed {
  statement: Record<string, unknown>;
  signature: string;
}
interface TranscriptKey {
  chain: string;
  curve: string;
  address: string;
  publicKey: string;
  device: string;
  handle: string;
  createdAt: string;
  created: boolean;
  attestation: Signed | null;
}
interface TranscriptJson {
  devices: { id: string; type: string; attestationPublicKey: string | null; attestation: Signed | null }[];
  pools: { id: string; keys: TranscriptKey[] }[];
}

/** A device the attacker drives: the real process, a logged-in raw link, and a data directory for the CLI. */
interface Device {
  readonly sim: SimProcess;
  readonly link: RawSimLink;
  readonly env: Record<string, string>;
}

const dirs: string[] = [];
const devices: Device[] = [];
async function startDevice(): Promise<Device> {
  const dataDir = mkdtempSync(join(tmpdir(), 'attestation-attacks-'));
  dirs.push(dataDir);
  const sim = await startSim({ dataDir: join(dataDir, 'hsm') });
  const link = await openRawSimLink(sim.port, sim.pin);
  const device = { sim, link, env: { DATA_DIR: dataDir, HSM_URL: sim.url, HSM_PIN: sim.pin } };
  devices.push(device);
  return device;
}

/** Runs the example plan's ceremony on `device` through the CLI; the transcript it wrote. */
async function ceremony(device: Device): Promise<{ path: string; transcript: TranscriptJson; run: CliResult }> {
  const path = join(device.env.DATA_DIR as string, 'transcript.json');
  const run = await runCli(['ceremony', 'run', PLAN, '--out', path], device.env);
  return { path, transcript: run.code === 0 ? (JSON.parse(readFileSync(path, 'utf8')) as TranscriptJson) : (null as unknown as TranscriptJson), run };
}

const expectOk = (what: string, a: RawAnswer): Buffer => {
  if (a.status !== Status.OK) throw new Error(`${what} answered ${STATUS_NAMES[a.status]}: ${decodeErrorFields(a.fields)}`);
  return a.fields;
};
async function attestKey(device: Device, handle: string): Promise<Signed> {
  const a = decodeAttestKeyResult(expectOk('ATTEST_KEY', await device.link.request(Opcode.ATTEST_KEY, encodeAttestKeyCommand({ handle }))));
  return { statement: JSON.parse(a.statement) as Record<string, unknown>, signature: bytesToHex(a.signature) };
}
async function attestDevice(device: Device): Promise<Signed> {
  const a = decodeAttestDeviceResult(expectOk('ATTEST_DEVICE', await device.link.request(Opcode.ATTEST_DEVICE)));
  return { statement: JSON.parse(a.statement) as Record<string, unknown>, signature: bytesToHex(a.signature) };
}
async function info(device: Device) {
  return decodeInfoResult(expectOk('INFO', await device.link.request(Opcode.INFO, encodeInfoCommand())));
}
/** A key the attacker has the device make for `pool` (bound first if `approvers` are given), with the device's genuine statement of it. */
async function keyOf(device: Device, pool: string, chain: string, bind?: { approvers: { id: string; publicKey: Uint8Array }[]; policy: object }): Promise<TranscriptKey> {
  if (bind) await device.link.enrollPool(pool, bind.approvers, 2, bind.policy as never);
  const key = await device.link.generateKey(pool, chain, 'secp256k1');
  const attestation = await attestKey(device, key.handle);
  const statement = attestation.statement as unknown as KeyStatement;
  return { chain, curve: 'secp256k1', address: statement.addresses[0] as string, publicKey: bytesToHex(key.publicKey), device: statement.device, handle: key.handle, createdAt: statement.attestedAt, created: true, attestation };
}

let a: Device;
let honest: { path: string; transcript: TranscriptJson };
let deviceA: string;

beforeAll(async () => {
  a = await startDevice();
  const made = await ceremony(a);
  if (made.run.code !== 0) throw new Error(`the ceremony failed: ${made.run.stderr}`);
  honest = made;
  deviceA = honest.transcript.devices[0]!.id;
}, 120_000);

afterAll(async () => {
  for (const d of devices.splice(0)) {
    d.link.close();
    await d.sim.stop();
  }
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** The honest transcript with `edit` applied, written to a file of its own. */
function forged(edit: (t: TranscriptJson) => void): string {
  const t = structuredClone(honest.transcript);
  edit(t);
  const path = join(a.env.DATA_DIR as string, `forged-${Math.random().toString(36).slice(2)}.json`);
  writeFileSync(path, JSON.stringify(t, null, 2));
  return path;
}
const clientA = (t: TranscriptJson) => t.pools.find((p) => p.id === 'client-a')!;
const ethKey = (t: TranscriptJson, pool = 'client-a') => t.pools.find((p) => p.id === pool)!.keys.find((k) => k.chain === SEPOLIA)!;

/** verify refuses it: exit status 1 and one line naming why. */
async function expectRefusedTranscript(path: string, reason: RegExp, args: string[] = ['--plan', PLAN]): Promise<void> {
  const r = await runCli(['ceremony', 'verify', path, ...args], a.env);
  expect({ code: r.code, lines: r.stdout.trimEnd().split('\n').length }).toEqual({ code: 1, lines: 1 });
  expect(r.stdout).toMatch(new RegExp('^transcript does NOT verify: ' + reason.source));
}

// The attacker's own key and address, for a forged entry.
const attackerSecret = secp256k1.utils.randomSecretKey();
const ATTACKER_KEY = bytesToHex(secp256k1.getPublicKey(attackerSecret, true));
const ATTACKER_ADDRESS = computeAddress('0x' + ATTACKER_KEY);

describe('the device signs no bytes the gateway chose', () => {
  it('when the retired ATTEST opcode comes with a statement of the attacker\'s, then the device answers UNKNOWN_OPCODE and signs nothing', async () => {
    const statement = canonicalize({ ...(ethKey(honest.transcript).attestation as Signed).statement, publicKey: ATTACKER_KEY, addresses: [ATTACKER_ADDRESS] });
    for (const bytes of [statement, ATTESTATION_DOMAIN + statement, 'custody-hsm-sim attestation v1\n' + statement]) {
      const answer = await a.link.request(RETIRED_ATTEST, new FieldWriter().bytes(Buffer.from(bytes, 'utf8')).toBuffer());
      expect({ status: STATUS_NAMES[answer.status], message: decodeErrorFields(answer.fields) }).toEqual({ status: 'UNKNOWN_OPCODE', message: 'unknown opcode 0x30' });
    }
  });

  it('when ATTEST_KEY or ATTEST_DEVICE carry bytes after their fields, then they are refused as malformed', async () => {
    const handle = ethKey(honest.transcript).handle;
    const smuggled = Buffer.concat([encodeAttestKeyCommand({ handle }), new FieldWriter().bytes(Buffer.from('{"pool":"client-a"}')).toBuffer()]);
    for (const [opcode, fields] of [[Opcode.ATTEST_KEY, smuggled], [Opcode.ATTEST_DEVICE, new FieldWriter().str('client-a').toBuffer()]] as const) {
      const answer = await a.link.request(opcode, fields);
      expect({ status: STATUS_NAMES[answer.status], message: decodeErrorFields(answer.fields) }).toMatchObject({ status: 'BAD_REQUEST', message: expect.stringMatching(/unexpected trailing bytes$/) });
    }
  });

  it('when ATTEST_KEY names a handle the device holds no key under, then it is NOT_FOUND', async () => {
    for (const handle of ['__proto__', 'constructor', 'k_' + '00'.repeat(12), '']) {
      const answer = await a.link.request(Opcode.ATTEST_KEY, encodeAttestKeyCommand({ handle }));
      expect(STATUS_NAMES[answer.status]).toBe('NOT_FOUND');
    }
  });
});

describe('the honest transcript', () => {
  it('when it is verified with the plan and its device, then it passes, and noble and ethers agree with every statement', async () => {
    const r = await runCli(['ceremony', 'verify', honest.path, '--plan', PLAN, '--device', deviceA], a.env);
    expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 0, stdout: `transcript verifies: 3 keys, 3 attested by device ${deviceA}, 0 unattested\n` });
    const attestationKey = hexToBytes(honest.transcript.devices[0]!.attestationPublicKey as string);
    const signed = [honest.transcript.devices[0]!.attestation!, ...honest.transcript.pools.flatMap((p) => p.keys.map((k) => k.attestation!))];
    for (const s of signed) expect(ed25519.verify(hexToBytes(s.signature), new TextEncoder().encode(ATTESTATION_DOMAIN + canonicalize(s.statement)), attestationKey)).toBe(true);
    for (const pool of honest.transcript.pools) {
      const eth = pool.keys.find((k) => k.chain === SEPOLIA)!;
      expect(computeAddress('0x' + (eth.attestation!.statement as unknown as KeyStatement).publicKey)).toBe(eth.address);
    }
  });
});

describe('a transcript that lists the attacker\'s key', () => {
  it.each([
    ['its address only', (k: TranscriptKey) => (k.address = ATTACKER_ADDRESS), /pool client-a eip155:11155111: address 0x[0-9a-fA-F]{40} is not an address of its public key/],
    [
      'its address and public key',
      (k: TranscriptKey) => Object.assign(k, { address: ATTACKER_ADDRESS, publicKey: ATTACKER_KEY }),
      /pool client-a eip155:11155111: public key [0-9a-f]{66} is not the one the device attests/,
    ],
    [
      'its address and public key, and the statement edited to match',
      (k: TranscriptKey) => {
        Object.assign(k, { address: ATTACKER_ADDRESS, publicKey: ATTACKER_KEY });
        Object.assign(k.attestation!.statement, { publicKey: ATTACKER_KEY, addresses: [ATTACKER_ADDRESS] });
      },
      /pool client-a eip155:11155111: the statement's signature does not verify under device sim-[0-9a-f]{16}'s attestation key/,
    ],
    [
      'its address and public key, and no statement',
      (k: TranscriptKey) => Object.assign(k, { address: ATTACKER_ADDRESS, publicKey: ATTACKER_KEY, attestation: null }),
      /pool client-a eip155:11155111: the key is on device sim-[0-9a-f]{16}, which has an attestation key, but carries no statement of it/,
    ],
    [
      'a statement stripped of a field',
      (k: TranscriptKey) => delete (k.attestation!.statement.poolState as Record<string, unknown>).frozen,
      /pool client-a eip155:11155111: attestation statement poolState.frozen: /,
    ],
  ])('when the pool\'s entry gets %s, then verify refuses it', async (_, edit, reason) => {
    await expectRefusedTranscript(forged((t) => edit(ethKey(t))), reason);
  });

  it('when the simulator is passed off as a device without an attestation key, then verify refuses it', async () => {
    const asLedger = (t: TranscriptJson) => Object.assign(t.devices[0]!, { type: 'ledger', attestationPublicKey: null, attestation: null });
    const noStatements = (t: TranscriptJson) => {
      asLedger(t);
      for (const p of t.pools) for (const k of p.keys) Object.assign(k, { address: k === ethKey(t) ? ATTACKER_ADDRESS : k.address, publicKey: k === ethKey(t) ? ATTACKER_KEY : k.publicKey, attestation: null });
    };
    await expectRefusedTranscript(forged(noStatements), /pool client-a eip155:11155111: the key is on a ledger device \(sim-[0-9a-f]{16}\), the plan puts the pool on sim/);
    await expectRefusedTranscript(forged(noStatements), /no key is attested: their devices \(sim-[0-9a-f]{16}\) have no attestation key/, []);
  });

  it('when the pool\'s approvers or threshold are edited, then the device\'s statement gives it away even without the plan', async () => {
    const path = forged((t) => Object.assign(clientA(t), { approvers: ['alice'], threshold: 1 }));
    await expectRefusedTranscript(path, /pool client-a eip155:11155111: device sim-[0-9a-f]{16} binds the pool to alice \([0-9a-f]{12}…\), bob .*, carol .* with threshold 2, not the transcript's alice \([0-9a-f]{12}…\) with threshold 1/, []);
  });
});

describe('another pool\'s key', () => {
  it('when client-b\'s key and its genuine statement are listed as client-a\'s, then verify names the other pool', async () => {
    const path = forged((t) => Object.assign(ethKey(t), structuredClone(ethKey(honest.transcript, 'client-b'))));
    await expectRefusedTranscript(path, /pool client-a eip155:11155111: the statement attests a key of pool client-b, not of client-a/);
  });

  it('when the attacker binds a pool of its own on the device and splices in its key and statement, then verify names that pool; the statement edited to client-a fails its signature', async () => {
    const own = await keyOf(a, 'mallory-pool', SEPOLIA, { approvers: planMembers('client-a'), policy: openPolicy(2) });
    await expectRefusedTranscript(forged((t) => Object.assign(ethKey(t), structuredClone(own))), /pool client-a eip155:11155111: the statement attests a key of pool mallory-pool, not of client-a/);
    const renamed = structuredClone(own);
    renamed.attestation!.statement.pool = 'client-a';
    await expectRefusedTranscript(forged((t) => Object.assign(ethKey(t), renamed)), /pool client-a eip155:11155111: the statement's signature does not verify/);
  });

  it('when the attacker asks the device to bind client-a again or make it a second key, then the device refuses: no genuine statement can name its key client-a\'s', async () => {
    const enrol = encodeEnrollPoolCommand({ poolId: 'client-a', threshold: 1, approvers: planMembers('client-a').slice(0, 1), policy: JSON.stringify(openPolicy(1)) });
    const generate = encodeGenerateKeyCommand({ poolId: 'client-a', chain: SEPOLIA, curve: 'secp256k1' });
    const answers = [await a.link.request(Opcode.ENROLL_POOL, enrol), await a.link.request(Opcode.GENERATE_KEY, generate)];
    expect(answers.map((x) => STATUS_NAMES[x.status])).toEqual(['ALREADY_EXISTS', 'ALREADY_EXISTS']);
  });
});

describe('another device', () => {
  let b: Device;
  beforeAll(async () => {
    b = await startDevice();
  });

  it('when a key and statement made on the attacker\'s own simulator are spliced in, then verify names the other device; relabelled, the signature fails', async () => {
    const elsewhere = await keyOf(b, 'client-a', SEPOLIA, { approvers: planMembers('client-a'), policy: planJson.pools[0]!.policy as object });
    const deviceB = elsewhere.device;
    expect(deviceB).not.toBe(deviceA);
    await expectRefusedTranscript(forged((t) => Object.assign(ethKey(t), structuredClone(elsewhere))), /pool client-a eip155:11155111: its device sim-[0-9a-f]{16} is not among the transcript's devices/);
    const moved = { ...structuredClone(elsewhere), device: deviceA };
    await expectRefusedTranscript(forged((t) => Object.assign(ethKey(t), moved)), new RegExp(`pool client-a eip155:11155111: the statement was made by device ${deviceB}, not by ${deviceA}`));
    moved.attestation!.statement.device = deviceA;
    await expectRefusedTranscript(forged((t) => Object.assign(ethKey(t), moved)), /pool client-a eip155:11155111: the statement's signature does not verify under device sim-[0-9a-f]{16}'s attestation key/);
  });

  it('when the device\'s attestation key is swapped for the attacker\'s, then its id gives it away', async () => {
    const keyB = bytesToHex((await info(b)).attestationPublicKey);
    await expectRefusedTranscript(forged((t) => (t.devices[0]!.attestationPublicKey = keyB)), new RegExp(`device id ${deviceA} is not derived from its attestation key`));
  });

  it('when the whole ceremony is made on the attacker\'s simulator, then it verifies as that device\'s only, and --device with the ceremony\'s device refuses it', async () => {
    const other = await startDevice();
    const made = await ceremony(other);
    expect(made.run.code).toBe(0);
    const own = await runCli(['ceremony', 'verify', made.path, '--plan', PLAN], a.env);
    expect(own.stdout).toMatch(/^transcript verifies: 3 keys, 3 attested by device sim-[0-9a-f]{16}, 0 unattested\n$/);
    expect(own.stdout).not.toContain(deviceA);
    await expectRefusedTranscript(made.path, new RegExp(`the transcript is not attested by device ${deviceA} \\(its attesting devices: sim-[0-9a-f]{16}\\)`), ['--plan', PLAN, '--device', deviceA]);
  });
});

describe('a device bound before the ceremony', () => {
  it('when the device holds client-a bound exactly as the plan binds it (an interrupted ceremony), then the ceremony resumes and its transcript verifies', async () => {
    const d = await startDevice();
    await d.link.enrollPool('client-a', planMembers('client-a'), 2, planJson.pools[0]!.policy as never);
    const run = await ceremony(d);
    expect(run.run.code).toBe(0);
    expect(run.run.stderr).toContain('pool client-a: already bound in the device (resuming an interrupted ceremony)');
    expect((await runCli(['ceremony', 'verify', run.path, '--plan', PLAN], d.env)).code).toBe(0);
  });

  it('when the attacker bound client-a with a laxer policy first, then the ceremony refuses to take it over, and a transcript made of the device\'s genuine statements fails the plan', async () => {
    const c = await startDevice();
    // The plan's approvers and threshold, but no limits, no allowlist, no time lock.
    const lax = { quorum: [{ approvals: 2 }], assets: { ETH: {}, BTC: {} } };
    await c.link.enrollPool('client-a', planMembers('client-a'), 2, lax as never);
    const run = await ceremony(c);
    expect(run.run.code).toBe(1);
    expect(run.run.stderr).toMatch(/pool client-a is already bound in device sim-[0-9a-f]{16} to alice, bob, carol with threshold 2 and policy [0-9a-f]{12}…, not as the plan binds it .*: it was bound outside this ceremony/);

    // The attacker writes the transcript itself from statements the device really made.
    const deviceInfo = await info(c);
    const keys = [await keyOf(c, 'client-a', SEPOLIA), await keyOf(c, 'client-a', BTC_TESTNET)];
    const path = forged((t) => {
      t.devices[0] = {
        ...t.devices[0]!,
        id: deviceInfo.deviceId,
        attestationPublicKey: bytesToHex(deviceInfo.attestationPublicKey),
        attestation: null,
      };
      clientA(t).keys = keys;
    });
    const transcript = JSON.parse(readFileSync(path, 'utf8')) as TranscriptJson;
    transcript.devices[0]!.attestation = await attestDevice(c);
    writeFileSync(path, JSON.stringify(transcript));
    await expectRefusedTranscript(path, new RegExp(`pool client-a eip155:11155111: device ${deviceInfo.deviceId} holds policy version 1 \\(sha256 [0-9a-f]{64}\\), not the plan's \\([0-9a-f]{64}\\)`));
  });
});
