/**
 * `custody approver keygen --out FILE`: an approver makes their Ed25519 approval key on their own
 * machine; only the public key goes into the ceremony plan. `custody approver ledger-key [--path P]`:
 * an approver who approves with a Ledger reads the public key to put in the plan from the device.
 */
import type { Command } from 'commander';
import { ValidationError } from '../../common/errors.js';
import { APPROVER_ID } from '../domain/pool.js';
import { generateApproverKey, PASSPHRASE_ENV, readPassphrase, writeApproverKeyFile } from './approver-key-file.js';
import { action, emit } from './output.js';
import { loadConfig } from '../config.js';
import { ethAddressFromPublicKey } from '../../common/chains/ethereum/address.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { DEFAULT_APPROVER_PATH, ledgerSigner } from './approval-signer.js';

export function registerApprover(program: Command): void {
  const approver = program.command('approver').description('approver keys');
  approver
    .command('keygen')
    .description('generate an Ed25519 approval key into FILE (mode 0600, secret key encrypted under a passphrase) and print its public key')
    .requiredOption('--out <file>', 'where to write the key file')
    .option('--id <id>', 'the approver id this key is for')
    .option('--passphrase-file <file>', 'read the passphrase from FILE (default $CUSTODY_KEY_PASSPHRASE, else asked twice)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { out: string; id?: string; passphraseFile?: string; json?: boolean }) => {
        if (opts.id !== undefined && !APPROVER_ID.test(opts.id)) throw new ValidationError('invalid_id', `--id "${opts.id}" is not a valid approver id`);
        const passphrase = await readPassphrase(opts.passphraseFile, 'new key file passphrase: ');
        if (opts.passphraseFile === undefined && !process.env[PASSPHRASE_ENV] && (await readPassphrase(undefined, 'again: ')) !== passphrase) {
          throw new ValidationError('passphrase_mismatch', 'the two passphrases differ; nothing was written');
        }
        const key = generateApproverKey(opts.id ?? null);
        writeApproverKeyFile(opts.out, key, passphrase);
        emit(opts, { publicKey: key.publicKey, file: opts.out, id: key.id }, () => [
          `public key: ${key.publicKey}`,
          `key file:   ${opts.out} (keep it secret; put only the public key in the ceremony plan)`,
        ]);
      }),
    );

  approver
    .command('ledger-key')
    .description('read the public key of your approval key on a Ledger (Ethereum app, via LEDGER_URL), for the ceremony plan')
    .option('--path <path>', `BIP32 path of the key (default ${DEFAULT_APPROVER_PATH})`)
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { path?: string; json?: boolean }) => {
        const path = opts.path ?? DEFAULT_APPROVER_PATH;
        const signer = await ledgerSigner(loadConfig(), path);
        await signer.close();
        const address = ethAddressFromPublicKey(hexToBytes(signer.publicKey));
        emit(opts, { publicKey: signer.publicKey, address, path }, () => [
          `public key: ${signer.publicKey} (put this in the ceremony plan; approvals are EIP-191 signatures)`,
          `address:    ${address} at ${path}`,
        ]);
      }),
    );
}
