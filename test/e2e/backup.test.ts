/**
 * Backups through the CLI and real processes (docs/backup.md): a ceremony whose plan names five
 * custodians enrols them in the simulator; the admin quorum changes them (vault-5 out, vault-6 in)
 * with a request file each admin signs offline; a 3-of-5 backup is proposed, refused with one admin's
 * approval, made with two (every share encrypted to its custodian), and refused when made again from
 * the same request. Three shares restore it into a fresh simulator with another PIN and data
 * directory; the gateway, pointed at it, signs a withdrawal from the same address (checked by ethers).
 * Two shares, a corrupted share, a share without its key, a share of another backup and a non-fresh
 * target are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transaction } from 'ethers';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ALLOWLISTED, APPROVER_SECRETS, PLAN, SEPOLIA, poolAddress, runCli, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { shareBytes, type ShareFile } from '../../common/backup-format.js';
import { keyFingerprint } from '../../common/governance-message.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { approverKeyFromSecret, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';

let stack: Stack;
let fresh: SimProcess;
const dir = mkdtempSync(join(tmpdir(), 'backup-e2e-'));
const PASSPHRASE = 'admin key file passphrase';
/** Custodian key files and public keys by id: vault-1 … vault-6. */
const custodians: Record<string, { file: string; publicKey: string }> = {};
const adminKey = (who: string) => join(dir, `${who}.key`);
const share = (i: number, backup = 'backup') => join(dir, backup, `share-${i}.json`);
/** The custodians of the 3-of-5 backup, in share order. */
const HOLDERS = ['vault-1', 'vault-2', 'vault-3', 'vault-4', 'vault-6'];

beforeAll(async () => {
  // Custodians make their keys on their own machines: no device, no store.
  for (let i = 1; i <= 6; i++) {
    const file = join(dir, `vault-${i}.key`);
    const made = await runCli(['custodians', 'keygen', '--out', file, '--json'], { DATA_DIR: join(dir, 'custodian-machine') });
    expect(made.code).toBe(0);
    custodians[`vault-${i}`] = { file, publicKey: (JSON.parse(made.stdout) as { publicKey: string }).publicKey };
  }
  const plan = JSON.parse(readFileSync(PLAN, 'utf8')) as Record<string, unknown>;
  plan.custodians = [1, 2, 3, 4, 5].map((i) => ({ id: `vault-${i}`, publicKey: custodians[`vault-${i}`]?.publicKey }));
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(plan, null, 2));
  stack = await startStack({ plan: join(dir, 'plan.json') });
  for (const who of ['alice', 'bob', 'carol']) writeApproverKeyFile(adminKey(who), approverKeyFromSecret(APPROVER_SECRETS[who] as string, who), PASSPHRASE);
  fresh = await startSim({ dataDir: join(dir, 'fresh-hsm'), pin: 'another PIN for the restored device' });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await fresh?.stop();
});

const onFresh = () => ({ HSM_URL: fresh.url, HSM_PIN: fresh.pin });
const approve = (request: string, who: string, extra: string[] = [], env: Record<string, string> = {}) =>
  stack.cli(['approve', '--governance', request, '--key', adminKey(who), '--yes', ...extra], { CUSTODY_KEY_PASSPHRASE: PASSPHRASE, ...env });
const restoreArgs = (shares: number[], backup = join(dir, 'backup', 'backup.json')) => [
  'backup', 'restore', '--backup', backup, ...shares.flatMap((i) => ['--share', share(i)]), ...HOLDERS.flatMap((id) => ['--custodian-key', custodians[id]?.file as string]), '--json',
];

describe('custodians enrolled at the ceremony, changed by the admin quorum', () => {
  it('when the plan names five custodians, then the device holds them and a custodians change needs two admins, applies once, and is recorded', async () => {
    const device = createSimDevice({ url: stack.sim.url, pin: stack.sim.pin });
    try {
      const state = await device.governanceState('');
      expect((JSON.parse(state.summary) as { custodians: { id: string }[] }).custodians.map((c) => c.id)).toEqual(['vault-1', 'vault-2', 'vault-3', 'vault-4', 'vault-5']);
    } finally {
      await device.close();
    }
    const request = join(dir, 'custodians-request.json');
    const proposed = await stack.cli(['custodians', 'propose', '--add', `vault-6=${custodians['vault-6']?.publicKey}`, '--remove', 'vault-5', '--out', request, '--json']);
    expect(proposed.code).toBe(0);
    expect(JSON.parse(proposed.stdout)).toMatchObject({ custodians: HOLDERS, quorum: 2 });

    const shown = await approve(request, 'alice');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toContain(`+ custodian`);
    expect(shown.stdout).toContain(`vault-6 (key ${custodians['vault-6']?.publicKey}, fingerprint ${keyFingerprint(custodians['vault-6']?.publicKey as string).slice(0, 16)}…)`);
    expect(shown.stdout).toMatch(/- custodian\s+vault-5 \(key fingerprint [0-9a-f]{16}…\)/);
    expect(shown.stdout).toMatch(/1 of the 2 admin approvals the device needs; next: 1 more admin/);
    const short = await stack.cli(['custodians', 'apply', '--request', request]);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(/has 1 admin approval, the device needs 2: another admin runs custody approve --governance/);

    expect((await approve(request, 'carol')).code).toBe(0);
    const applied = await stack.cli(['custodians', 'apply', '--request', request, '--json']);
    expect(applied.code).toBe(0);
    expect(JSON.parse(applied.stdout)).toMatchObject({ custodians: HOLDERS, storeComplete: true, resumed: false });
    const again = await stack.cli(['custodians', 'apply', '--request', request, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ resumed: true });
  });
});

describe('a 3-of-5 backup approved by the admin quorum', () => {
  const request = join(dir, 'backup-request.json');

  it('when the operator proposes it and alice approves, then the admin sees the device, sequence, threshold and every custodian, and one approval is refused', async () => {
    const proposed = await stack.cli(['backup', 'propose', '--threshold', '3', '--out', request, '--json']);
    expect(proposed.code).toBe(0);
    expect(JSON.parse(proposed.stdout)).toMatchObject({ threshold: 3, custodians: HOLDERS, quorum: 2, sequence: 1 });
    const shown = await approve(request, 'alice');
    expect(shown.code).toBe(0);
    expect(shown.stdout).toMatch(/device\s+sim-[0-9a-f]{16} \(device governance sequence 1\)/);
    expect(shown.stdout).toMatch(/threshold\s+any 3 of the 5 shares restore every key/);
    HOLDERS.forEach((id, i) => {
      const key = custodians[id]?.publicKey as string;
      expect(shown.stdout).toContain(`share ${i + 1}`);
      expect(shown.stdout).toContain(`custodian ${id} (key fingerprint ${keyFingerprint(key).slice(0, 16)}…), encrypted to key ${key}`);
    });
    const short = await stack.cli(['backup', 'create', '--request', request, '--out', join(dir, 'backup')]);
    expect(short.code).not.toBe(0);
    expect(short.stderr).toMatch(/has 1 admin approval, the device needs 2/);
  });

  it('when bob approves too, then the backup holds public keys and bindings but no secret, and each share is encrypted to its custodian', async () => {
    const approved = await approve(request, 'bob', ['--json']);
    expect(JSON.parse(approved.stdout)).toMatchObject({ admin: 'bob', approvals: 2, quorum: 2 });
    const made = await stack.cli(['backup', 'create', '--request', request, '--out', join(dir, 'backup'), '--json']);
    expect(made.code).toBe(0);
    const summary = JSON.parse(made.stdout) as { keys: number; pools: string[]; shares: { custodian: string }[] };
    expect(summary).toMatchObject({ keys: 3, pools: ['client-a', 'client-b'] });
    expect(summary.shares.map((s) => s.custodian)).toEqual(HOLDERS);
    const backup = readFileSync(join(dir, 'backup', 'backup.json'), 'utf8');
    expect(Object.keys(JSON.parse(backup) as object).sort()).toEqual(['backupId', 'cipher', 'createdAt', 'custodians', 'deviceId', 'keys', 'kind', 'pools', 'shareHashes', 'threshold', 'version']);
    expect(backup).not.toContain('secretKey');
    HOLDERS.forEach((id, i) => {
      const file = JSON.parse(readFileSync(share(i + 1), 'utf8')) as Record<string, unknown>;
      expect(file).not.toHaveProperty('share');
      expect(file.encryptedTo).toBe(custodians[id]?.publicKey);
    });
    const audit = await stack.api('GET', '/v1/audit?after=0', stack.tokens.auditor);
    expect((audit.body.entries as { type: string }[]).map((e) => e.type)).toEqual(expect.arrayContaining(['custodians.enrolled', 'custodians.changed', 'backup.exported']));
  });

  it('when the same approved request is used again, then the device refuses it as stale and says to propose again', async () => {
    const again = await stack.cli(['backup', 'create', '--request', request, '--out', join(dir, 'again')]);
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/it was applied already or another change came first; propose it again; make a new request with custody backup propose/);
  });
});

describe('restoring the backup', () => {
  it('when only 2 shares, a corrupted share or a share without its custodian key is given, then the restore is refused saying why', async () => {
    const two = await stack.cli(restoreArgs([1, 2]), onFresh());
    expect(two.code).not.toBe(0);
    expect(two.stderr).toMatch(/2 shares given, this backup needs 3/);
    const corrupted = JSON.parse(readFileSync(share(4), 'utf8')) as { ciphertext: string };
    corrupted.ciphertext = (corrupted.ciphertext[0] === 'a' ? 'b' : 'a') + corrupted.ciphertext.slice(1);
    writeFileSync(join(dir, 'corrupted.json'), JSON.stringify(corrupted));
    const keys = HOLDERS.flatMap((id) => ['--custodian-key', custodians[id]?.file as string]);
    const bad = await stack.cli(['backup', 'restore', '--backup', join(dir, 'backup', 'backup.json'), '--share', share(1), '--share', share(2), '--share', join(dir, 'corrupted.json'), ...keys], onFresh());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/corrupted\.json: share 4 does not open/);
    const noKey = await stack.cli(['backup', 'restore', '--backup', join(dir, 'backup', 'backup.json'), '--share', share(1), '--share', share(2), '--share', share(3)], onFresh());
    expect(noKey.stderr).toMatch(/encrypted to custodian key/);
  });

  it('when a decrypted share has a changed byte, then the device itself names it and keeps its state', async () => {
    const device = createSimDevice({ url: fresh.url, pin: fresh.pin });
    try {
      const opened = [1, 2, 3].map((i) => {
        const secret = (JSON.parse(readFileSync(custodians[HOLDERS[i - 1] as string]?.file as string, 'utf8')) as { secretKey: string }).secretKey;
        return shareBytes(JSON.parse(readFileSync(share(i), 'utf8')) as ShareFile, hexToBytes(secret));
      });
      const third = opened[2] as Uint8Array;
      third[5] = (third[5] as number) ^ 1;
      await expect(device.importBackup(readFileSync(join(dir, 'backup', 'backup.json'), 'utf8'), opened)).rejects.toThrow(/share 3 given is corrupted or belongs to another backup/);
      expect(await device.listKeys()).toEqual([]);
    } finally {
      await device.close();
    }
  });

  it('when 3 shares restore into a fresh simulator, then it has the same device id, keys and custodians, and the gateway pointed at it signs from the same address', async () => {
    const addressBefore = poolAddress(stack, 'client-a');
    const restored = await stack.cli(restoreArgs([1, 3, 5]), onFresh());
    expect(restored.code).toBe(0);
    const backup = JSON.parse(readFileSync(join(dir, 'backup', 'backup.json'), 'utf8')) as { deviceId: string };
    expect(JSON.parse(restored.stdout)).toMatchObject({ deviceId: backup.deviceId, keys: 3 });
    const device = createSimDevice({ url: fresh.url, pin: fresh.pin });
    try {
      const state = await device.governanceState('');
      // The export was counted before the backup was made: the restored device is past that sequence too.
      expect({ custodians: (JSON.parse(state.summary) as { custodians: { id: string }[] }).custodians.map((c) => c.id), sequence: state.sequence }).toEqual({ custodians: HOLDERS, sequence: 2 });
    } finally {
      await device.close();
    }

    await stack.sim.kill('SIGKILL');
    stack.env.HSM_URL = fresh.url;
    stack.env.HSM_PIN = fresh.pin;
    await stack.restartGateway();
    const submitted = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, {
      pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: '100000000000000000', to: ALLOWLISTED, nonce: '77', gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
    });
    let last = submitted;
    for (const who of ['alice', 'bob'] as const) {
      last = await stack.api('POST', `/v1/withdrawals/${submitted.body.id as string}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
    }
    expect(last.body.state).toBe('signed');
    expect(Transaction.from(last.body.signedTx as string).from).toBe(addressBefore);
  });

  it('when a share of another backup is mixed in, or the target already holds keys, then the restore is refused', async () => {
    // The restored device holds the original's custodians and admins: a second backup is approved the same way.
    const request = join(dir, 'second-request.json');
    expect((await stack.cli(['backup', 'propose', '--threshold', '2', '--custodian', 'vault-1', '--custodian', 'vault-2', '--out', request])).code).toBe(0);
    expect((await approve(request, 'bob')).code).toBe(0);
    expect((await approve(request, 'carol')).code).toBe(0);
    const second = await stack.cli(['backup', 'create', '--request', request, '--out', join(dir, 'second'), '--json']);
    expect(second.code).toBe(0);
    const keys = HOLDERS.flatMap((id) => ['--custodian-key', custodians[id]?.file as string]);
    const mixed = await stack.cli(['backup', 'restore', '--backup', join(dir, 'second', 'backup.json'), '--share', share(1, 'second'), '--share', share(2), ...keys], onFresh());
    expect(mixed.code).not.toBe(0);
    expect(mixed.stderr).toMatch(/share-2\.json belongs to backup .* not backup/);
    const again = await stack.cli(restoreArgs([2, 3, 4]), onFresh());
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/restore only into a fresh simulator/);
  });
});
