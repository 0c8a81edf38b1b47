/**
 * Red team, backups (SPEC rule 8; docs/backup.md): a compromised gateway that holds the simulator PIN
 * and speaks the wire protocol directly (test/helpers/raw-sim-link.ts) against the real simulator
 * process, trying to get the keys out. The device holds admins alice, bob and carol (quorum 2) and
 * custodians vault-1..3, and a pool with a key. What it tries, each refused by the device with its
 * status and an answer that is one message, with no backup, share or key in it:
 *
 * - EXPORT_BACKUP with no approvals, with one admin short, with one admin twice, with an outsider's;
 * - the admins' approvals of one export used for another (another threshold, order, or a custodian
 *   dropped), or with the gateway's own key in place of a custodian's;
 * - replaying the approvals of an export that was made;
 * - a custodians change (adding the gateway's key) signed by an outsider, with a stale `before`, or
 *   replayed after it applied, or made before an export was counted;
 * - an export from a device enrolled without custodians.
 *
 * The honest export in between comes back with every share encrypted to its custodian.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519, x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { randomUUID } from 'node:crypto';
import {
  FieldReader,
  Opcode,
  STATUS_NAMES,
  Status,
  decodeExportBackupResult,
  decodeGovernanceStateResult,
  decodeInfoResult,
  encodeEnrollGovernanceCommand,
  encodeExportBackupCommand,
  encodeGovernDeviceCommand,
  encodeGovernanceStateCommand,
  type ApprovalRecord,
} from '../../../common/sim-protocol.js';
import {
  GOVERNANCE_KIND,
  GOVERNANCE_VERSION,
  canonicalGovernanceMessage,
  keyFingerprint,
  memberSummaries,
  type DeviceGovernanceMessage,
  type DeviceSummary,
} from '../../../common/governance-message.js';
import { changeHash, exportBackupChange, type DeviceChange } from '../../../common/device-changes.js';
import { APPROVERS, SEPOLIA, approval } from '../../hsm-sim/fixtures.js';
import { openRawSimLink, type RawAnswer, type RawSimLink } from '../../helpers/raw-sim-link.js';
import { startSim, type SimProcess } from '../../helpers/sim-process.js';

const custodian = (n: number) => {
  const secret = new Uint8Array(32).fill(0x40 + n);
  return { id: `vault-${n}`, secret, publicKey: bytesToHex(x25519.getPublicKey(secret)) };
};
const VAULTS = [custodian(1), custodian(2), custodian(3)];
/** The gateway's own X25519 key, which it would like a share encrypted to. */
const GATEWAY_KEY = bytesToHex(x25519.getPublicKey(new Uint8Array(32).fill(0x66)));
const MALLORY_SECRET = ed25519.utils.randomSecretKey();

let sim: SimProcess;
let link: RawSimLink;
let deviceId: string;
let poolKey: string;

/** The device's own governance summary and sequence, as GOVERNANCE_STATE answers them. */
async function deviceState(l: RawSimLink = link): Promise<{ summary: DeviceSummary; sequence: number }> {
  const a = await l.request(Opcode.GOVERNANCE_STATE, encodeGovernanceStateCommand({ poolId: '' }));
  expect(STATUS_NAMES[a.status]).toBe('OK');
  const r = decodeGovernanceStateResult(a.fields);
  return { summary: JSON.parse(r.summary) as DeviceSummary, sequence: r.sequence };
}

/** The governance message admins sign for `change`, from `before` at `sequence` (the device's by default). */
async function messageFor(change: DeviceChange, over: Partial<DeviceGovernanceMessage> = {}, l: RawSimLink = link, device = deviceId): Promise<string> {
  const { summary, sequence } = await deviceState(l);
  const message: DeviceGovernanceMessage = {
    kind: GOVERNANCE_KIND,
    version: GOVERNANCE_VERSION,
    proposalId: randomUUID(),
    device,
    scope: 'device',
    action: change.action,
    sequence,
    before: summary,
    after: summary,
    change: changeHash(change),
    decision: 'approve',
    ...over,
  };
  return canonicalGovernanceMessage(message);
}

const signedBy = (text: string, ...admins: string[]): ApprovalRecord[] => admins.map((a) => approval(a, text));

function exportBackup(threshold: number, keys: readonly string[], approvals: readonly ApprovalRecord[], l: RawSimLink = link): Promise<RawAnswer> {
  return l.request(Opcode.EXPORT_BACKUP, encodeExportBackupCommand({ threshold, custodians: keys.map((k) => hexToBytes(k)), approvals }));
}

function governDevice(change: DeviceChange, approvals: readonly ApprovalRecord[]): Promise<RawAnswer> {
  return link.request(Opcode.GOVERN_DEVICE, encodeGovernDeviceCommand({ change: JSON.stringify(change), approvals }));
}

/**
 * The device refused with `status` and a message matching `why`, and the answer is that message alone:
 * no backup document, no share, no key (a 64-hex run is allowed only as a fingerprint it names).
 */
function expectRefused(answer: RawAnswer, status: number, why: RegExp, fingerprints: readonly string[] = []): void {
  const r = new FieldReader(answer.fields);
  const message = r.str('message');
  r.end();
  expect({ status: STATUS_NAMES[answer.status], message }).toEqual({ status: STATUS_NAMES[status], message: expect.stringMatching(why) });
  expect(message).not.toMatch(/custody\.backup|ciphertext|"share"|secretKey/);
  for (const hex of message.match(/[0-9a-f]{64}/g) ?? []) expect(fingerprints).toContain(hex);
  expect(message).not.toContain(poolKey);
}

const allKeys = VAULTS.map((v) => v.publicKey);

beforeAll(async () => {
  sim = await startSim();
  link = await openRawSimLink(sim.port, sim.pin);
  const admins = APPROVERS.map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));
  const enrolled = await link.request(Opcode.ENROLL_GOVERNANCE, encodeEnrollGovernanceCommand({ quorum: 2, admins, custodians: VAULTS.map((v) => ({ id: v.id, publicKey: hexToBytes(v.publicKey) })) }));
  expect(STATUS_NAMES[enrolled.status]).toBe('OK');
  await link.enrollPool('pool-a', admins, 2);
  poolKey = bytesToHex((await link.generateKey('pool-a', SEPOLIA, 'secp256k1')).publicKey);
  deviceId = decodeInfoResult((await link.request(Opcode.INFO)).fields).deviceId;
});

afterAll(async () => {
  link?.close();
  await sim?.stop();
});

describe('an export without the admin quorum', () => {
  it('when the device is asked what it enforces, then INFO lists backup-quorum', async () => {
    expect(decodeInfoResult((await link.request(Opcode.INFO)).fields).enforces).toContain('backup-quorum');
  });

  it('when EXPORT_BACKUP comes with no approvals, then QUORUM_REFUSED and no share', async () => {
    expectRefused(await exportBackup(2, allKeys, []), Status.QUORUM_REFUSED, /^0 valid admin approvals, 2 needed$/);
  });

  it('when only alice approved, or alice twice, then QUORUM_REFUSED: one admin short', async () => {
    const text = await messageFor(exportBackupChange(allKeys, 2));
    expectRefused(await exportBackup(2, allKeys, signedBy(text, 'alice')), Status.QUORUM_REFUSED, /^1 valid admin approvals, 2 needed$/);
    expectRefused(await exportBackup(2, allKeys, signedBy(text, 'alice', 'alice')), Status.QUORUM_REFUSED, /alice is counted already/);
  });

  it('when mallory, who is no admin, signs as the second admin, then QUORUM_REFUSED', async () => {
    const text = await messageFor(exportBackupChange(allKeys, 2));
    const mallory: ApprovalRecord = { publicKey: ed25519.getPublicKey(MALLORY_SECRET), message: text, signature: ed25519.sign(new TextEncoder().encode(text), MALLORY_SECRET) };
    expectRefused(await exportBackup(2, allKeys, [...signedBy(text, 'alice'), mallory]), Status.QUORUM_REFUSED, /governance approval 2: the key is not an enrolled admin/);
  });

  it('when the approvals of a 2-of-3 export are sent with another threshold, order or fewer custodians, then QUORUM_REFUSED: they approve another export', async () => {
    const approvals = signedBy(await messageFor(exportBackupChange(allKeys, 2)), 'alice', 'bob');
    for (const [threshold, keys] of [[3, allKeys], [2, [...allKeys].reverse()], [2, allKeys.slice(0, 2)]] as const) {
      expectRefused(await exportBackup(threshold, keys, approvals), Status.QUORUM_REFUSED, /approves another export-backup than the one requested/);
    }
  });
});

describe('an export to a key that is not a custodian', () => {
  it('when the gateway puts its own key in place of vault-3 under the admins\' approvals, then QUORUM_REFUSED naming the key\'s fingerprint', async () => {
    const approvals = signedBy(await messageFor(exportBackupChange(allKeys, 2)), 'alice', 'bob');
    const keys = [allKeys[0] as string, allKeys[1] as string, GATEWAY_KEY];
    expectRefused(await exportBackup(2, keys, approvals), Status.QUORUM_REFUSED, /^custodian key [0-9a-f]{64} \(sha256 fingerprint\) is not a custodian enrolled in this device/, [keyFingerprint(GATEWAY_KEY)]);
  });

  it('when the admins themselves were led to approve an export to that key, then the device still refuses it', async () => {
    const keys = [allKeys[0] as string, GATEWAY_KEY];
    const approvals = signedBy(await messageFor(exportBackupChange(keys, 2)), 'alice', 'bob');
    expectRefused(await exportBackup(2, keys, approvals), Status.QUORUM_REFUSED, /is not a custodian enrolled in this device/, [keyFingerprint(GATEWAY_KEY)]);
  });
});

describe('an approved export, and its approvals again', () => {
  it('when two admins approve a 2-of-3 export, then every share comes back encrypted to its custodian and the device counts the export', async () => {
    const before = await deviceState();
    const approvals = signedBy(await messageFor(exportBackupChange(allKeys, 2)), 'alice', 'bob');
    const answer = await exportBackup(2, allKeys, approvals);
    expect(STATUS_NAMES[answer.status]).toBe('OK');
    const made = decodeExportBackupResult(answer.fields);
    expect(made.shares).toHaveLength(3);
    made.shares.forEach((text, i) => {
      const share = JSON.parse(text) as Record<string, unknown>;
      expect(share).not.toHaveProperty('share');
      expect(share.encryptedTo).toBe(allKeys[i]);
    });
    expect(made.backup).not.toContain('secretKey');
    expect((await deviceState()).sequence).toBe(before.sequence + 1);

    // The same approvals once more: the export counted, they are stale.
    expectRefused(await exportBackup(2, allKeys, approvals), Status.STALE_GOVERNANCE, /made for this device at sequence \d+, and the device holds sequence \d+: it was applied already or another change came first; propose it again/);
  });
});

describe('custodians changes', () => {
  const addGateway: DeviceChange = { action: 'custodians', add: [{ id: 'gateway', publicKey: GATEWAY_KEY }], remove: [] };
  const afterAdding = (summary: DeviceSummary): DeviceSummary => ({
    ...summary,
    custodians: memberSummaries([...VAULTS.map((v) => ({ id: v.id, publicKey: v.publicKey })), { id: 'gateway', publicKey: GATEWAY_KEY }]),
  });

  it('when mallory signs the gateway\'s key into the custodians, then QUORUM_REFUSED and the custodians stay', async () => {
    const { summary } = await deviceState();
    const text = await messageFor(addGateway, { after: afterAdding(summary) });
    const mallory: ApprovalRecord = { publicKey: ed25519.getPublicKey(MALLORY_SECRET), message: text, signature: ed25519.sign(new TextEncoder().encode(text), MALLORY_SECRET) };
    expectRefused(await governDevice(addGateway, [...signedBy(text, 'alice'), mallory]), Status.QUORUM_REFUSED, /not an enrolled admin/, [keyFingerprint(GATEWAY_KEY)]);
    expect((await deviceState()).summary.custodians.map((c) => c.id)).toEqual(['vault-1', 'vault-2', 'vault-3']);
  });

  it('when the admins\' change names a `before` the device does not hold, then STALE_GOVERNANCE', async () => {
    const { summary } = await deviceState();
    const stale: DeviceSummary = { ...summary, custodians: summary.custodians.slice(0, 2) };
    const text = await messageFor(addGateway, { before: stale, after: afterAdding(summary) });
    expectRefused(await governDevice(addGateway, signedBy(text, 'alice', 'bob')), Status.STALE_GOVERNANCE, /with another state: it was applied already or another change came first; propose it again/);
  });

  it('when a change approved before an export is sent after it, then STALE_GOVERNANCE', async () => {
    const { summary } = await deviceState();
    const approvals = signedBy(await messageFor(addGateway, { after: afterAdding(summary) }), 'alice', 'bob');
    const exported = await exportBackup(2, allKeys, signedBy(await messageFor(exportBackupChange(allKeys, 2)), 'bob', 'carol'));
    expect(STATUS_NAMES[exported.status]).toBe('OK');
    expectRefused(await governDevice(addGateway, approvals), Status.STALE_GOVERNANCE, /propose it again/);
  });

  it('when the admin quorum approves a change, then it applies once and its replay is STALE_GOVERNANCE', async () => {
    const remove: DeviceChange = { action: 'custodians', add: [], remove: ['vault-3'] };
    const { summary, sequence } = await deviceState();
    const after = { ...summary, custodians: summary.custodians.filter((c) => c.id !== 'vault-3') };
    const approvals = signedBy(await messageFor(remove, { after }), 'alice', 'carol');
    expect(STATUS_NAMES[(await governDevice(remove, approvals)).status]).toBe('OK');
    expect(await deviceState()).toEqual({ summary: after, sequence: sequence + 1 });
    expectRefused(await governDevice(remove, approvals), Status.STALE_GOVERNANCE, /propose it again/);
    // vault-3 is no custodian now: an export to it is refused whatever the admins sign.
    const keys = allKeys;
    const exportApprovals = signedBy(await messageFor(exportBackupChange(keys, 2)), 'alice', 'bob');
    expectRefused(await exportBackup(2, keys, exportApprovals), Status.QUORUM_REFUSED, /is not a custodian enrolled in this device/, [keyFingerprint(allKeys[2] as string)]);
  });
});

describe('a device enrolled without custodians', () => {
  it('when the admin quorum approves an export there, then QUORUM_REFUSED: custodians must be enrolled by a governed change first', async () => {
    const bare = await startSim();
    const bareLink = await openRawSimLink(bare.port, bare.pin);
    try {
      const admins = APPROVERS.map((a) => ({ id: a.id, publicKey: hexToBytes(a.publicKey) }));
      expect(STATUS_NAMES[(await bareLink.request(Opcode.ENROLL_GOVERNANCE, encodeEnrollGovernanceCommand({ quorum: 2, admins, custodians: [] }))).status]).toBe('OK');
      await bareLink.enrollPool('pool-a', admins, 2);
      await bareLink.generateKey('pool-a', SEPOLIA, 'secp256k1');
      const bareId = decodeInfoResult((await bareLink.request(Opcode.INFO)).fields).deviceId;
      const keys = allKeys.slice(0, 2);
      const approvals = signedBy(await messageFor(exportBackupChange(keys, 2), {}, bareLink, bareId), 'alice', 'bob');
      const answer = await exportBackup(2, keys, approvals, bareLink);
      const message = new FieldReader(answer.fields).str('message');
      expect({ status: STATUS_NAMES[answer.status], message }).toEqual({
        status: 'QUORUM_REFUSED',
        message: 'no custodians are enrolled in this device: enrol them by a governed custodians change (custody custodians propose) before a backup',
      });
    } finally {
      bareLink.close();
      await bare.stop();
    }
  });
});
