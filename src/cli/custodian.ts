/**
 * `custody custodian keygen --out FILE`: a backup custodian's X25519 key pair (RFC 7748). The public
 * key goes to the operator for `custody backup create --recipient`; the file (mode 0600) stays with the
 * custodian, who needs it to open their share at a restore.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { x25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { CUSTODIAN_KEY_KIND } from '../../common/backup-format.js';
import { ValidationError } from '../../common/errors.js';
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

export function registerCustodian(program: Command): void {
  program
    .command('custodian')
    .description('backup custodians\' keys')
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
        emit(opts, { publicKey: key.publicKey, file: opts.out }, () => [`public key: ${key.publicKey}`, `key file:   ${opts.out} (keep it; it opens your backup share)`]);
      }),
    );
}
