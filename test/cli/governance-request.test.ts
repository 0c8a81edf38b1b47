/**
 * The admin's side of a device governance request (src/cli/governance-request.ts, docs/backup.md):
 * `custody approve --governance` reads the request file itself and refuses, before any key is unlocked,
 * a file whose message does not commit to its change, an export to a key that is not one of the
 * custodians the message names, an export that says it changes the device, a custodians change whose
 * `after` is not its `before` with the change applied, or a pool's message. The device refuses the
 * same things again (test/e2e/hostile/backup-attacks.test.ts); this is the human's screen not lying.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalGovernanceMessage, keyFingerprint, memberSummaries, parseGovernanceMessage, type DeviceSummary } from '../../common/governance-message.js';
import { exportBackupChange, type DeviceChange } from '../../common/device-changes.js';
import { proposeRequest, readRequest, requestScreen, type GovernanceRequestFile } from '../../src/cli/governance-request.js';

const dir = mkdtempSync(join(tmpdir(), 'governance-request-'));
const keyOf = (n: number) => bytesToHex(x25519.getPublicKey(new Uint8Array(32).fill(n)));
const VAULTS = [1, 2, 3].map((n) => ({ id: `vault-${n}`, publicKey: keyOf(n) }));
const SUMMARY: DeviceSummary = {
  admins: memberSummaries([{ id: 'alice', publicKey: 'aa'.repeat(32) }, { id: 'bob', publicKey: 'bb'.repeat(32) }]),
  quorum: 2,
  custodians: memberSummaries(VAULTS),
};
const STATE = { device: 'sim-0123456789abcdef', summary: SUMMARY, sequence: 4 };
let files = 0;

function written(file: GovernanceRequestFile): string {
  const path = join(dir, `request-${(files += 1)}.json`);
  writeFileSync(path, JSON.stringify(file));
  return path;
}

/** A request whose message is edited by `edit` after it was made (re-canonicalized, as a careful forger would). */
function forged(change: DeviceChange, after: DeviceSummary, edit: (m: Record<string, unknown>) => void, fileChange: unknown = change): string {
  const file = proposeRequest(STATE, change, after);
  const message = parseGovernanceMessage(file.message) as unknown as Record<string, unknown>;
  edit(message);
  return written({ ...file, message: canonicalGovernanceMessage(message as never), change: fileChange as DeviceChange });
}

describe('a backup export request', () => {
  const keys = VAULTS.map((v) => v.publicKey);

  it('when the request is honest, then the screen names the device, sequence, threshold and each share\'s custodian by id, fingerprint and key', () => {
    const checked = readRequest(written(proposeRequest(STATE, exportBackupChange(keys, 2), SUMMARY)));
    const lines = requestScreen(checked).flatMap((s) => (typeof s === 'string' ? [s] : s.map(([label, value]) => `${label}: ${value}`)));
    expect(lines).toContain('device: sim-0123456789abcdef (device governance sequence 4)');
    expect(lines).toContain('threshold: any 2 of the 3 shares restore every key');
    expect(lines).toContain(`share 3: custodian vault-3 (key fingerprint ${keyFingerprint(keyOf(3)).slice(0, 16)}…), encrypted to key ${keyOf(3)}`);
  });

  it('when the file\'s export is not the one the message hashes, then it is refused', () => {
    const path = forged(exportBackupChange(keys, 2), SUMMARY, () => undefined, exportBackupChange(keys, 3));
    expect(() => readRequest(path)).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: refusing this request: the message does not commit to the change in the file (its "change" is another hash); nothing was signed or sent]`,
    );
  });

  it('when the export names a key that is not one of the device\'s custodians, then it is refused naming its fingerprint', () => {
    const outsider = keyOf(9);
    const path = written(proposeRequest(STATE, exportBackupChange([keys[0] as string, outsider], 2), SUMMARY));
    expect(() => readRequest(path)).toThrow(`refusing this request: custodian key ${keyFingerprint(outsider)} (fingerprint) is not one of the device's custodians the message names`);
  });

  it('when the export states another `after` than `before`, or a threshold of 1, then it is refused', () => {
    const other = { ...SUMMARY, quorum: 1 };
    expect(() => readRequest(written(proposeRequest(STATE, exportBackupChange(keys, 2), other)))).toThrow(/an export must change nothing the device holds/);
    expect(() => readRequest(written(proposeRequest(STATE, exportBackupChange(keys, 1), SUMMARY)))).toThrow(/a backup needs 2 ≤ threshold \(1\) ≤ custodians \(3\)/);
  });

  it('when the message is a pool\'s, or its decision is reject, then it is refused', () => {
    expect(() => readRequest(forged(exportBackupChange(keys, 2), SUMMARY, (m) => Object.assign(m, { decision: 'reject' })))).toThrow(/the message's decision is "reject"/);
    expect(() => readRequest(forged(exportBackupChange(keys, 2), SUMMARY, (m) => Object.assign(m, { scope: 'pool', pool: 'client-a' })))).toThrow(/refusing this request: governance message "action" "export-backup" is not a pool action/);
  });
});

describe('a custodians change request', () => {
  const change: DeviceChange = { action: 'custodians', add: [{ id: 'vault-4', publicKey: keyOf(4) }], remove: ['vault-1'] };
  const after: DeviceSummary = { ...SUMMARY, custodians: memberSummaries([...VAULTS.slice(1), { id: 'vault-4', publicKey: keyOf(4) }]) };

  it('when the message\'s `after` is its `before` with the change applied, then the screen shows who comes and goes', () => {
    const lines = requestScreen(readRequest(written(proposeRequest(STATE, change, after)))).flatMap((s) => (typeof s === 'string' ? [s] : s.map(([l, v]) => `${l}: ${v}`)));
    expect(lines).toContain(`+ custodian: vault-4 (key ${keyOf(4)}, fingerprint ${keyFingerprint(keyOf(4)).slice(0, 16)}…)`);
    expect(lines).toContain(`- custodian: vault-1 (key fingerprint ${keyFingerprint(keyOf(1)).slice(0, 16)}…)`);
    expect(lines).toContain('custodians after: vault-2, vault-3, vault-4');
  });

  it('when the message states another result (the gateway\'s key slipped into `after`), then it is refused', () => {
    const slipped: DeviceSummary = { ...after, custodians: memberSummaries([...VAULTS.slice(1), { id: 'vault-4', publicKey: keyOf(8) }]) };
    expect(() => readRequest(written(proposeRequest(STATE, change, slipped)))).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: refusing this request: the message's "after" is not its "before" with this change applied; nothing was signed or sent]`,
    );
  });
});
