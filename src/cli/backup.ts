/**
 * `custody backup create --custodians N --threshold M --out DIR [--recipient KEY]...`: the simulator
 * at HSM_URL exports its state under a fresh wrapping key split into N shares (any M restore it), each
 * optionally encrypted to a custodian's X25519 key. `custody backup restore --backup FILE --share FILE...
 * [--custodian-key FILE]...`: restores into a fresh simulator and checks the keys came back exactly.
 * File formats: common/backup-format.ts; runbook: docs/backup.md.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { hexToBytes } from '@noble/hashes/utils.js';
import { BackupFormatError, SHARE_KIND, shareBytes, type BackupFile, type ShareFile } from '../../common/backup-format.js';
import { loadConfig, requireHsmPin } from '../config.js';
import { ValidationError } from '../../common/errors.js';
import { createSimDevice } from '../devices/sim/client.js';
import { readCustodianKeyFile } from './custodian.js';
import { action, emit } from './output.js';

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new ValidationError('bad_file', `cannot read ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** A custodian's public key: 64 hex characters, or a custodian key file. */
function recipientKey(value: string): Uint8Array {
  if (/^[0-9a-fA-F]{64}$/.test(value)) return hexToBytes(value.toLowerCase());
  if (existsSync(value)) return hexToBytes(readCustodianKeyFile(value).publicKey);
  throw new ValidationError('bad_recipient', `--recipient "${value.slice(0, 80)}" is neither a 32-byte X25519 public key in hex nor a custodian key file`);
}

function openSim() {
  const config = loadConfig();
  return createSimDevice({ url: config.hsmUrl, pin: requireHsmPin(config) });
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

export function registerBackup(program: Command): void {
  const backup = program.command('backup').description('backups of the HSM simulator, split among custodians');
  backup
    .command('create')
    .description('export the simulator\'s keys and bindings under a wrapping key split into N custodian shares, any M of which restore it')
    .requiredOption('--custodians <n>', 'number of shares (2-16)')
    .requiredOption('--threshold <m>', 'shares needed to restore (2-N)')
    .requiredOption('--out <dir>', 'directory for backup.json and share-<i>.json')
    .option('--recipient <key>', 'a custodian\'s X25519 public key (hex) or key file, once per custodian in share order', collect)
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { custodians: string; threshold: string; out: string; recipient?: string[]; json?: boolean }) => {
        const custodians = Number(opts.custodians);
        const threshold = Number(opts.threshold);
        if (!Number.isInteger(custodians) || !Number.isInteger(threshold) || threshold < 2 || custodians < threshold || custodians > 16) {
          throw new ValidationError('invalid_split', `--threshold ${opts.threshold} and --custodians ${opts.custodians}: need 2 ≤ M ≤ N ≤ 16`);
        }
        const given = opts.recipient ?? [];
        if (given.length !== 0 && given.length !== custodians) throw new ValidationError('invalid_recipients', `give no --recipient, or exactly ${custodians} (one per share), not ${given.length}`);
        const recipients = given.length === 0 ? Array.from({ length: custodians }, () => null) : given.map(recipientKey);
        mkdirSync(opts.out, { recursive: true, mode: 0o700 });
        const files = ['backup.json', ...Array.from({ length: custodians }, (_, i) => `share-${i + 1}.json`)].map((f) => join(opts.out, f));
        const clash = files.find((f) => existsSync(f));
        if (clash) throw new ValidationError('file_exists', `${clash} already exists; choose an empty --out directory`);
        const device = openSim();
        let made: { backup: string; shares: string[] };
        try {
          made = await device.exportBackup(threshold, recipients);
        } finally {
          await device.close();
        }
        const header = JSON.parse(made.backup) as BackupFile;
        writeFileSync(files[0] as string, made.backup + '\n', { mode: 0o600, flag: 'wx' });
        made.shares.forEach((share, i) => writeFileSync(files[i + 1] as string, share + '\n', { mode: 0o600, flag: 'wx' }));
        const summary = { backupId: header.backupId, deviceId: header.deviceId, keys: header.keys.length, pools: header.pools, threshold, custodians, files };
        emit(opts, summary, () => [
          `backup ${header.backupId} of device ${header.deviceId}: ${header.keys.length} keys, pools ${header.pools.join(', ')}`,
          `written to ${files[0]}`,
          ...files.slice(1).map((f, i) => `share ${i + 1}: ${f}${given[i] ? ` (encrypted to ${given[i]?.slice(0, 16)}…)` : ''}`),
          `any ${threshold} of the ${custodians} shares restore it: hand each share to a different custodian and delete it here`,
        ]);
      }),
    );

  backup
    .command('restore')
    .description('restore a backup into a fresh simulator (HSM_URL, HSM_PIN) from at least the threshold of shares')
    .requiredOption('--backup <file>', 'backup.json')
    .requiredOption('--share <file>', 'a share file (repeat for each)', collect)
    .option('--custodian-key <file>', 'a custodian key file that opens an encrypted share (repeat as needed)', collect)
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { backup: string; share: string[]; custodianKey?: string[]; json?: boolean }) => {
        const backupText = readFileSync(opts.backup, 'utf8');
        const header = readJson<BackupFile>(opts.backup, 'backup file');
        if (header.kind !== 'custody.backup') throw new ValidationError('bad_file', `${opts.backup} is not a custody backup file`);
        const keys = (opts.custodianKey ?? []).map(readCustodianKeyFile);
        const shares: Uint8Array[] = [];
        for (const path of opts.share) {
          const file = readJson<ShareFile>(path, 'share file');
          if (file.kind !== SHARE_KIND) throw new ValidationError('bad_file', `${path} is not a backup share file`);
          if (file.backupId !== header.backupId || file.deviceId !== header.deviceId) {
            throw new ValidationError('wrong_backup', `${path} belongs to backup ${file.backupId} of device ${file.deviceId}, not backup ${header.backupId} of device ${header.deviceId}`);
          }
          const key = 'encryptedTo' in file ? keys.find((k) => k.publicKey === file.encryptedTo) : undefined;
          try {
            shares.push(shareBytes(file, key ? hexToBytes(key.secretKey) : null));
          } catch (error) {
            throw new ValidationError('bad_share', `${path}: ${error instanceof BackupFormatError ? error.message : String(error)}`);
          }
        }
        if (shares.length < header.threshold) throw new ValidationError('too_few_shares', `${shares.length} shares given, this backup needs ${header.threshold}`);
        const device = openSim();
        try {
          const restored = await device.importBackup(backupText, shares);
          const now = (await device.listKeys()).map((k) => `${k.handle} ${k.poolId} ${k.chain} ${k.publicKey}`).sort();
          const expected = header.keys.map((k) => `${k.handle} ${k.poolId} ${k.chain} ${k.publicKey}`).sort();
          if (now.join('\n') !== expected.join('\n')) throw new ValidationError('restore_mismatch', 'the restored device does not hold exactly the keys the backup lists');
          emit(opts, { deviceId: restored.deviceId, keys: restored.keys, pools: header.pools }, () => [
            `restored device ${restored.deviceId}: ${restored.keys} keys, pools ${header.pools.join(', ')}; every public key checked against the backup`,
          ]);
        } finally {
          await device.close();
        }
      }),
    );
}
