/**
 * `custody approver keygen --out FILE`: an approver makes their Ed25519 approval key on their own
 * machine; only the public key goes into the ceremony plan.
 */
import type { Command } from 'commander';
import { ValidationError } from '../domain/errors.js';
import { APPROVER_ID } from '../domain/pool.js';
import { generateApproverKey, writeApproverKeyFile } from './approver-key-file.js';
import { action, emit } from './output.js';

export function registerApprover(program: Command): void {
  const approver = program.command('approver').description('approver keys');
  approver
    .command('keygen')
    .description('generate an Ed25519 approval key into FILE (mode 0600) and print its public key')
    .requiredOption('--out <file>', 'where to write the key file')
    .option('--id <id>', 'the approver id this key is for')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { out: string; id?: string; json?: boolean }) => {
        if (opts.id !== undefined && !APPROVER_ID.test(opts.id)) throw new ValidationError('invalid_id', `--id "${opts.id}" is not a valid approver id`);
        const key = generateApproverKey(opts.id ?? null);
        writeApproverKeyFile(opts.out, key);
        emit(opts, { publicKey: key.publicKey, file: opts.out, id: key.id }, () => [
          `public key: ${key.publicKey}`,
          `key file:   ${opts.out} (keep it secret; put only the public key in the ceremony plan)`,
        ]);
      }),
    );
}
