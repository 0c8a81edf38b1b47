/**
 * `custody custodians` (also `custody custodian`; runbook docs/backup.md): the backup custodians.
 *
 * - `keygen --out FILE`: a custodian's X25519 key pair (RFC 7748). The public key goes into the ceremony
 *   plan's `custodians` or a custodians change; the file (mode 0600) stays with the custodian, who needs
 *   it to open their share at a restore.
 * - `propose [--add ID=PUBKEY]... [--remove ID]... --out FILE`: a request to change who the simulator's
 *   backups may be encrypted to, from the device's own governance state; the admins approve it with
 *   `custody approve --governance FILE` (src/cli/governance-request.ts).
 * - `apply --request FILE`: the device applies the approved change itself (GOVERN_DEVICE); the store
 *   records the custodians' public keys for `custody backup propose`, with an audit entry.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CUSTODIAN_KEY_KIND } from '../../common/backup-format.js';
import { DeviceChangeError, custodiansAfter, parseCustodiansChange, type CustodianEntry, type CustodiansChange } from '../../common/device-changes.js';
import { keyFingerprint, memberSummaries, sameSummary } from '../../common/governance-message.js';
import { ValidationError, isCustodyError } from '../../common/errors.js';
import { loadConfig } from '../config.js';
import { openStore } from '../main.js';
import { CUSTODIANS_SETTING } from '../service/run-ceremony.js';
import { approvalEvidence, assertEnoughApprovals, nextStepOf, openSim, proposeRequest, readDeviceGovernance, readRequest, writeRequest } from './governance-request.js';
import { action, emit } from './output.js';

export interface CustodianKey {
  readonly publicKey: string;
  readonly secretKey: string;
}

export function readCustodianKeyFile(path: string): CustodianKey {
  let k: { kind?: unknown; publicKey?: unknown; secretKey?: unknown };
  try {
    k = JSON.parse(readFileSync(path, 'utf8')) as typeof k;
  } catch (error) {
    throw new ValidationError('bad_key_file', `cannot read custodian key file ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  if (k.kind !== CUSTODIAN_KEY_KIND || typeof k.secretKey !== 'string' || !/^[0-9a-f]{64}$/.test(k.secretKey)) {
    throw new ValidationError('bad_key_file', `${path} is not a custodian key file (made by custody custodian keygen)`);
  }
  const publicKey = bytesToHex(x25519.getPublicKey(hexToBytes(k.secretKey)));
  if (publicKey !== k.publicKey) throw new ValidationError('bad_key_file', `${path}: its public key does not match its secret key`);
  return { publicKey, secretKey: k.secretKey };
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** `--add ID=PUBKEY` and `--remove ID` as the change the device applies; its parser names what is wrong. */
function custodiansChange(add: readonly string[], remove: readonly string[]): CustodiansChange {
  const entries = add.map((arg) => {
    const m = /^([^=]+)=([0-9a-fA-F]{64})$/.exec(arg);
    if (!m) throw new ValidationError('bad_custodian', `--add "${arg.slice(0, 80)}": expected ID=PUBKEY, the X25519 public key in 64 hex digits (custody custodians keygen prints it)`);
    return { id: m[1] as string, publicKey: (m[2] as string).toLowerCase() };
  });
  try {
    return parseCustodiansChange({ action: 'custodians', add: entries, remove: [...remove] });
  } catch (error) {
    throw new ValidationError('invalid_change', `the custodians change: ${error instanceof DeviceChangeError ? error.message : String(error)}`);
  }
}

export function registerCustodian(program: Command): void {
  const custodians = program.command('custodians').alias('custodian').description('backup custodians: their keys, and governed changes of who the simulator\'s backups may be encrypted to');
  custodians
    .command('keygen')
    .description('generate an X25519 key pair for receiving an encrypted backup share; prints the public key')
    .requiredOption('--out <file>', 'where to write the key file (mode 0600)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { out: string; json?: boolean }) => {
        if (existsSync(opts.out)) throw new ValidationError('file_exists', `${opts.out} already exists; choose another --out`);
        const secret = x25519.utils.randomSecretKey();
        const key = { kind: CUSTODIAN_KEY_KIND, version: 1, publicKey: bytesToHex(x25519.getPublicKey(secret)), secretKey: bytesToHex(secret) };
        secret.fill(0);
        writeFileSync(opts.out, JSON.stringify(key, null, 2) + '\n', { mode: 0o600, flag: 'wx' });
        const fingerprint = keyFingerprint(key.publicKey);
        emit(opts, { publicKey: key.publicKey, fingerprint, file: opts.out }, () => [
          `public key:  ${key.publicKey}`,
          `fingerprint: ${fingerprint} (what admins see when they approve a backup to you)`,
          `key file:    ${opts.out} (keep it; it opens your backup share)`,
        ]);
      }),
    );

  custodians
    .command('propose')
    .description('write a request to add or remove backup custodians in the simulator, for the admins to approve (custody approve --governance FILE)')
    .option('--add <id=pubkey>', 'a custodian to add: ID=PUBKEY (repeat)', collect)
    .option('--remove <id>', 'a custodian to remove (repeat)', collect)
    .requiredOption('--out <file>', 'where to write the request (not overwritten)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { add?: string[]; remove?: string[]; out: string; json?: boolean }) => {
        const change = custodiansChange(opts.add ?? [], opts.remove ?? []);
        if (existsSync(opts.out)) throw new ValidationError('file_exists', `${opts.out} already exists; choose another --out`);
        const device = openSim();
        let state;
        try {
          state = await readDeviceGovernance(device);
        } finally {
          await device.close();
        }
        let after;
        try {
          after = custodiansAfter(state.summary.custodians, change, (m) => m.fingerprint, (e) => ({ id: e.id, fingerprint: keyFingerprint(e.publicKey) }));
        } catch (error) {
          throw new ValidationError('invalid_change', `device ${state.device}: ${error instanceof DeviceChangeError ? error.message : String(error)}`);
        }
        const request = proposeRequest(state, change, { ...state.summary, custodians: after });
        writeRequest(opts.out, request, 'new');
        emit(opts, { request: opts.out, device: state.device, sequence: state.sequence, custodians: after.map((c) => c.id), quorum: state.summary.quorum }, () => [
          `custodians request for device ${state.device} (governance sequence ${state.sequence}): afterwards ${after.length === 0 ? 'no custodians' : after.map((c) => c.id).join(', ')}`,
          `written to ${opts.out}; ${state.summary.quorum} admins approve it: custody approve --governance ${opts.out} --key ADMIN_KEY_FILE`,
          `then: custody custodians apply --request ${opts.out}`,
        ]);
      }),
    );

  custodians
    .command('apply')
    .description('have the simulator apply an approved custodians change (it checks the admins\' approvals itself)')
    .requiredOption('--request <file>', 'the request, approved by the admin quorum')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { request: string; json?: boolean }) => {
        const checked = readRequest(opts.request);
        if (checked.change.action !== 'custodians') throw new ValidationError('wrong_request', `${opts.request} is a backup export request; make the backup with custody backup create --request ${opts.request}`);
        const change = checked.change;
        const config = loadConfig();
        const store = await openStore(config);
        try {
          const device = openSim();
          let resumed = false;
          try {
            assertEnoughApprovals(checked, opts.request);
            try {
              await device.governDevice(change, approvalEvidence(checked));
            } catch (error) {
              // Applied before, and the store not told (the command stopped in between): record it now.
              if (!(isCustodyError(error) && error.code === 'device_stale_governance')) throw nextStepOf(error, 'custody custodians propose');
              const state = await readDeviceGovernance(device);
              if (!(state.sequence === checked.message.sequence + 1 && sameSummary(state.summary, checked.message.after))) throw nextStepOf(error, 'custody custodians propose');
              resumed = true;
            }
          } finally {
            await device.close();
          }
          const recorded = await store.transaction(async (tx) => {
            const text = await tx.getSetting(CUSTODIANS_SETTING);
            const before = text === null ? [] : (JSON.parse(text) as CustodianEntry[]);
            const next = [...before.filter((c) => !change.remove.includes(c.id) && !change.add.some((a) => a.id === c.id)), ...change.add].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
            await tx.setSetting(CUSTODIANS_SETTING, JSON.stringify(next));
            await tx.appendAudit(
              {
                type: 'custodians.changed',
                actor: 'cli',
                subject: 'custodians',
                data: { device: checked.message.device, add: change.add, remove: change.remove, sequence: checked.message.sequence, proposalId: checked.message.proposalId, approvedBy: checked.file.approvals.map((a) => a.admin) },
              },
              Date.now(),
            );
            return next;
          });
          // The store's keys must be the ones the device holds, or custody backup propose could not name them.
          const complete = sameSummary({ ...checked.message.after, custodians: memberSummaries(recorded) }, checked.message.after);
          const ids = checked.message.after.custodians.map((c) => c.id);
          emit(opts, { device: checked.message.device, sequence: checked.message.sequence + 1, custodians: ids, resumed, storeComplete: complete }, () => [
            `device ${checked.message.device} now holds custodians ${ids.length === 0 ? '(none)' : ids.join(', ')} (governance sequence ${checked.message.sequence + 1})${resumed ? '; it had applied this change already, now recorded' : ''}`,
            ...(complete ? [] : ['the store does not know every custodian\'s public key (they were enrolled before it recorded them): name them as --custodian ID=PUBKEY in custody backup propose']),
          ]);
        } finally {
          await store.close();
        }
      }),
    );
}
