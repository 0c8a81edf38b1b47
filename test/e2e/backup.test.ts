/**
 * Backups through the CLI and real processes: a 3-of-5 backup of the simulator (shares encrypted to
 * five custodians' keys) is restored with 3 shares into a fresh simulator with another PIN and data
 * directory; the gateway, pointed at it, signs a withdrawal from the same address (checked by ethers).
 * Two shares, a corrupted share, a share of another backup and a non-fresh target are refused.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transaction } from 'ethers';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ALLOWLISTED, SEPOLIA, poolAddress, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { shareBytes, type ShareFile } from '../../common/backup-format.js';
import { createSimDevice } from '../../src/devices/sim/client.js';

let stack: Stack;
let fresh: SimProcess;
const dir = mkdtempSync(join(tmpdir(), 'backup-e2e-'));
const keys: string[] = [];
const share = (i: number) => join(dir, 'backup', `share-${i}.json`);

beforeAll(async () => {
  stack = await startStack();
  for (let i = 1; i <= 5; i++) {
    const file = join(dir, `custodian-${i}.key`);
    const made = await stack.cli(['custodian', 'keygen', '--out', file, '--json']);
    expect(made.code).toBe(0);
    keys.push(file);
  }
  fresh = await startSim({ dataDir: join(dir, 'fresh-hsm'), pin: 'another PIN for the restored device' });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await fresh?.stop();
});

const onFresh = () => ({ HSM_URL: fresh.url, HSM_PIN: fresh.pin });
const restoreArgs = (shares: number[], backup = join(dir, 'backup', 'backup.json')) => [
  'backup', 'restore', '--backup', backup, ...shares.flatMap((i) => ['--share', share(i)]), ...keys.flatMap((k) => ['--custodian-key', k]), '--json',
];

describe('a 3-of-5 backup', () => {
  it('when the backup is made, then the files hold the public keys and bindings but no secret, and each share is encrypted to its custodian', async () => {
    const made = await stack.cli(['backup', 'create', '--custodians', '5', '--threshold', '3', '--out', join(dir, 'backup'), ...keys.flatMap((k) => ['--recipient', k]), '--json']);
    expect(made.code).toBe(0);
    const summary = JSON.parse(made.stdout) as { keys: number; pools: string[] };
    expect(summary).toMatchObject({ keys: 3, pools: ['client-a', 'client-b'] });
    const backup = JSON.parse(readFileSync(join(dir, 'backup', 'backup.json'), 'utf8')) as Record<string, unknown>;
    expect(Object.keys(backup).sort()).toEqual(['backupId', 'cipher', 'createdAt', 'custodians', 'deviceId', 'keys', 'kind', 'pools', 'shareHashes', 'threshold', 'version']);
    for (let i = 1; i <= 5; i++) expect(JSON.parse(readFileSync(share(i), 'utf8'))).toHaveProperty('encryptedTo');
  });

  it('when only 2 shares, a corrupted share or a share without its custodian key is given, then the restore is refused saying why', async () => {
    const two = await stack.cli(restoreArgs([1, 2]), onFresh());
    expect(two.code).not.toBe(0);
    expect(two.stderr).toMatch(/2 shares given, this backup needs 3/);
    const corrupted = JSON.parse(readFileSync(share(4), 'utf8')) as { ciphertext: string };
    corrupted.ciphertext = (corrupted.ciphertext[0] === 'a' ? 'b' : 'a') + corrupted.ciphertext.slice(1);
    writeFileSync(join(dir, 'corrupted.json'), JSON.stringify(corrupted));
    const bad = await stack.cli(['backup', 'restore', '--backup', join(dir, 'backup', 'backup.json'), '--share', share(1), '--share', share(2), '--share', join(dir, 'corrupted.json'), ...keys.flatMap((k) => ['--custodian-key', k])], onFresh());
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/corrupted\.json: share 4 does not open/);
    const noKey = await stack.cli(['backup', 'restore', '--backup', join(dir, 'backup', 'backup.json'), '--share', share(1), '--share', share(2), '--share', share(3)], onFresh());
    expect(noKey.stderr).toMatch(/encrypted to custodian key/);
  });

  it('when a decrypted share has a changed byte, then the device itself names it and keeps its state', async () => {
    const device = createSimDevice({ url: fresh.url, pin: fresh.pin });
    try {
      const opened = [1, 2, 3].map((i) => shareBytes(JSON.parse(readFileSync(share(i), 'utf8')) as ShareFile, hexToBytes((JSON.parse(readFileSync(keys[i - 1] as string, 'utf8')) as { secretKey: string }).secretKey)));
      const third = opened[2] as Uint8Array;
      third[5] = (third[5] as number) ^ 1;
      await expect(device.importBackup(readFileSync(join(dir, 'backup', 'backup.json'), 'utf8'), opened)).rejects.toThrow(/share 3 given is corrupted or belongs to another backup/);
      expect(await device.listKeys()).toEqual([]);
    } finally {
      await device.close();
    }
  });

  it('when 3 shares restore into a fresh simulator, then it has the same device id and keys, and the gateway pointed at it signs from the same address', async () => {
    const addressBefore = poolAddress(stack, 'client-a');
    const restored = await stack.cli(restoreArgs([1, 3, 5]), onFresh());
    expect(restored.code).toBe(0);
    const backup = JSON.parse(readFileSync(join(dir, 'backup', 'backup.json'), 'utf8')) as { deviceId: string };
    expect(JSON.parse(restored.stdout)).toMatchObject({ deviceId: backup.deviceId, keys: 3 });

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
    const second = await stack.cli(['backup', 'create', '--custodians', '3', '--threshold', '2', '--out', join(dir, 'second'), '--json'], onFresh());
    expect(second.code).toBe(0);
    const mixed = await stack.cli(['backup', 'restore', '--backup', join(dir, 'second', 'backup.json'), '--share', join(dir, 'second', 'share-1.json'), '--share', share(2), ...keys.flatMap((k) => ['--custodian-key', k])], onFresh());
    expect(mixed.code).not.toBe(0);
    expect(mixed.stderr).toMatch(/share-2\.json belongs to backup .* not backup/);
    const again = await stack.cli(restoreArgs([2, 3, 4]), onFresh());
    expect(again.code).not.toBe(0);
    expect(again.stderr).toMatch(/restore only into a fresh simulator/);
  });
});
