/**
 * `custody backup propose|create|restore` (SPEC sections 3 rule 8 and 7; runbook docs/backup.md): the
 * simulator at HSM_URL exports its state only encrypted to custodians it holds, and only once its admin
 * quorum approved exactly that export.
 *
 * - `propose --threshold M [--custodian ID[=PUBKEY]]... --out REQUEST.json`: reads the device's
 *   governance state and writes the request the admins sign (src/cli/governance-request.ts); the
 *   custodians' public keys come from the store (recorded by the ceremony and `custody custodians
 *   apply`) unless given, and must be the ones the device holds. Default: every custodian.
 * - each admin: `custody approve --governance REQUEST.json --key FILE`.
 * - `create --request REQUEST.json --out DIR`: the device checks the approvals and exports; writes
 *   backup.json and share-<i>.json (share i encrypted to the i-th custodian), audited in the store.
 * - `restore --backup FILE --share FILE... --custodian-key FILE...`: restores into a fresh simulator and
 *   checks the keys came back exactly. File formats: common/backup-format.ts.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { hexToBytes } from '@noble/hashes/utils.js';
import { BackupFormatError, SHARE_KIND, shareBytes, type BackupFile, type ShareFile } from '../../common/backup-format.js';
import { exportBackupChange, type CustodianEntry } from '../../common/device-changes.js';
import { keyFingerprint } from '../../common/governance-message.js';
import { loadConfig } from '../config.js';
import { ConflictError, ValidationError } from '../../common/errors.js';
import { openStore } from '../main.js';
import { readCustodianKeyFile } from './custodian.js';
import {
  approvalEvidence,
  assertEnoughApprovals,
  exportCustodians,
  nextStepOf,
  openSim,
  proposeRequest,
  readDeviceGovernance,
  readRequest,
  recordedCustodians,
  writeRequest,
} from './governance-request.js';
import { action, emit } from './output.js';

function readJson<T>(path: string, what: string): T {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as T;
  } catch (error) {
    throw new ValidationError('bad_file', `cannot read ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `ID` or `ID=PUBKEY` (64 hex digits). */
function custodianArgument(value: string): { id: string; publicKey: string | null } {
  const m = /^([^=]+)(?:=([0-9a-fA-F]{64}))?$/.exec(value);
  if (!m) throw new ValidationError('bad_custodian', `--custodian "${value.slice(0, 80)}": expected ID or ID=PUBKEY (the X25519 public key in 64 hex digits)`);
  return { id: m[1] as string, publicKey: m[2]?.toLowerCase() ?? null };
}

export function registerBackup(program: Command): void {
  const backup = program.command('backup').description('backups of the HSM simulator, encrypted to its custodians, under its admin quorum');
  backup
    .command('propose')
    .description('write a backup export request for the admins to approve (custody approve --governance FILE), from the device\'s own governance state')
    .requiredOption('--threshold <m>', 'shares needed to restore (2 to the number of custodians)')
    .option('--custodian <id>', 'a custodian to hold a share, as ID (key recorded by the ceremony) or ID=PUBKEY; repeat in share order (default: every custodian the device holds)', collect)
    .requiredOption('--out <file>', 'where to write the request (not overwritten)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { threshold: string; custodian?: string[]; out: string; json?: boolean }) => {
        const threshold = Number(opts.threshold);
        if (!Number.isInteger(threshold) || threshold < 2) throw new ValidationError('invalid_threshold', `--threshold ${opts.threshold}: a backup needs at least 2 shares to restore`);
        if (existsSync(opts.out)) throw new ValidationError('file_exists', `${opts.out} already exists; choose another --out`);
        const config = loadConfig();
        const store = await openStore(config);
        const device = openSim();
        let state;
        let recorded: CustodianEntry[];
        try {
          recorded = await recordedCustodians(store);
          state = await readDeviceGovernance(device);
        } finally {
          await device.close();
          await store.close();
        }
        const held = state.summary.custodians;
        if (held.length === 0) {
          throw new ValidationError(
            'no_custodians',
            `device ${state.device} holds no backup custodians, so it makes no backup: enrol them first (custody custodians propose --add ID=PUBKEY ..., the admins approve, custody custodians apply)`,
          );
        }
        const chosen = (opts.custodian ?? held.map((c) => c.id)).map((arg) => {
          const { id, publicKey } = custodianArgument(arg);
          const onDevice = held.find((c) => c.id === id);
          if (!onDevice) throw new ValidationError('custodian_not_enrolled', `"${id}" is not a custodian of device ${state.device} (it holds ${held.map((c) => c.id).join(', ')})`);
          const key = publicKey ?? recorded.find((c) => c.id === id)?.publicKey;
          if (key === undefined) throw new ValidationError('custodian_key_unknown', `the store has no public key for custodian "${id}": give it as --custodian ${id}=PUBKEY`);
          if (keyFingerprint(key) !== onDevice.fingerprint) {
            throw new ConflictError('custodian_key_mismatch', `the key given for custodian "${id}" (fingerprint ${keyFingerprint(key).slice(0, 16)}…) is not the one device ${state.device} holds (${onDevice.fingerprint.slice(0, 16)}…)`);
          }
          return key;
        });
        if (threshold > chosen.length) throw new ValidationError('invalid_threshold', `--threshold ${threshold} is more than the ${chosen.length} custodians`);
        const request = proposeRequest(state, exportBackupChange(chosen, threshold), state.summary);
        writeRequest(opts.out, request, 'new');
        const ids = chosen.map((k) => (held.find((c) => c.fingerprint === keyFingerprint(k)) as { id: string }).id);
        emit(opts, { request: opts.out, device: state.device, sequence: state.sequence, threshold, custodians: ids, quorum: state.summary.quorum }, () => [
          `backup request for device ${state.device} (governance sequence ${state.sequence}): any ${threshold} of ${ids.join(', ')} restore it`,
          `written to ${opts.out}; ${state.summary.quorum} admins approve it: custody approve --governance ${opts.out} --key ADMIN_KEY_FILE`,
          `then: custody backup create --request ${opts.out} --out DIR`,
        ]);
      }),
    );

  backup
    .command('create')
    .description('export the simulator\'s keys and bindings as the approved request says: a wrapping key split into one share per custodian, each encrypted to them')
    .requiredOption('--request <file>', 'the request, approved by the admin quorum (custody backup propose, custody approve --governance)')
    .requiredOption('--out <dir>', 'directory for backup.json and share-<i>.json')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { request: string; out: string; json?: boolean }) => {
        const checked = readRequest(opts.request);
        if (checked.change.action !== 'export-backup') throw new ValidationError('wrong_request', `${opts.request} is a ${checked.change.action} request, not a backup export; apply it with custody custodians apply`);
        assertEnoughApprovals(checked, opts.request);
        const { custodians: keys, threshold } = checked.change;
        const holders = exportCustodians(checked);
        mkdirSync(opts.out, { recursive: true, mode: 0o700 });
        const files = ['backup.json', ...keys.map((_, i) => `share-${i + 1}.json`)].map((f) => join(opts.out, f));
        const clash = files.find((f) => existsSync(f));
        if (clash) throw new ValidationError('file_exists', `${clash} already exists; choose an empty --out directory`);
        const config = loadConfig();
        const store = await openStore(config);
        try {
          const device = openSim();
          let made: { backup: string; shares: string[] };
          try {
            made = await device.exportBackup(threshold, keys.map((k) => hexToBytes(k)), approvalEvidence(checked));
          } catch (error) {
            throw nextStepOf(error, 'custody backup propose');
          } finally {
            await device.close();
          }
          const header = JSON.parse(made.backup) as BackupFile;
          // Fail closed (SPEC rule 6): no backup file is written unless the export is in the audit trail.
          await store.transaction((tx) =>
            tx.appendAudit(
              {
                type: 'backup.exported',
                actor: 'cli',
                subject: `device:${header.deviceId}`,
                data: { backupId: header.backupId, threshold, custodians: holders, sequence: checked.message.sequence, proposalId: checked.message.proposalId, approvedBy: checked.file.approvals.map((a) => a.admin) },
              },
              Date.now(),
            ),
          );
          writeFileSync(files[0] as string, made.backup + '\n', { mode: 0o600, flag: 'wx' });
          made.shares.forEach((share, i) => writeFileSync(files[i + 1] as string, share + '\n', { mode: 0o600, flag: 'wx' }));
          const shares = holders.map((c, i) => ({ custodian: c.id, file: files[i + 1] as string }));
          emit(opts, { backupId: header.backupId, deviceId: header.deviceId, keys: header.keys.length, pools: header.pools, threshold, custodians: keys.length, backup: files[0], shares }, () => [
            `backup ${header.backupId} of device ${header.deviceId}: ${header.keys.length} keys, pools ${header.pools.join(', ')}`,
            `written to ${files[0]}`,
            ...shares.map((s, i) => `share ${i + 1}: ${s.file} (encrypted to custodian ${s.custodian})`),
            `any ${threshold} of the ${keys.length} shares restore it: hand each share to its custodian and delete it here`,
          ]);
        } finally {
          await store.close();
        }
      }),
    );

  backup
    .command('restore')
    .description('restore a backup into a fresh simulator (HSM_URL, HSM_PIN) from at least the threshold of shares, opened with their custodians\' keys')
    .requiredOption('--backup <file>', 'backup.json')
    .requiredOption('--share <file>', 'a share file (repeat for each)', collect)
    .option('--custodian-key <file>', 'a custodian key file that opens a share (repeat for each)', collect)
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
          for (const share of shares) share.fill(0);
          await device.close();
        }
      }),
    );
}
