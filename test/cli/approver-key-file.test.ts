/**
 * Approver key files: the secret key is sealed under the passphrase (scrypt, AES-256-GCM with the
 * public fields as associated data); the `custody approver keygen` command writes such a file.
 */
import { describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { generateApproverKey, readApproverKeyFile, signWithApproverKey, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';
import { runCli } from '../helpers/gateway-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'approver-key-'));
const PASSPHRASE = 'correct horse battery staple';

describe('approver key files', () => {
  const key = generateApproverKey('alice');
  const path = join(dir, 'alice.key');
  writeApproverKeyFile(path, key, PASSPHRASE);

  it('when a key is written and read back with its passphrase, then it is the same key, the file is 0600 and holds no secret in the clear', () => {
    expect(readApproverKeyFile(path, PASSPHRASE)).toEqual(key);
    expect(statSync(path).mode & 0o777).toBe(0o600);
    const text = readFileSync(path, 'utf8');
    expect(text).not.toContain(key.secretKey);
    expect(JSON.parse(text)).toMatchObject({ kind: 'custody.approver-key', version: 2, id: 'alice', publicKey: key.publicKey, kdf: { name: 'scrypt' }, cipher: { name: 'aes-256-gcm' } });
    const signature = signWithApproverKey(key, 'hello');
    expect(ed25519.verify(hexToBytes(signature), new TextEncoder().encode('hello'), hexToBytes(key.publicKey))).toBe(true);
  });

  it('when the passphrase is wrong, or a public field was changed, then reading refuses', () => {
    expect(() => readApproverKeyFile(path, 'wrong passphrase')).toThrow(/the passphrase does not open/);
    const file = JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
    const renamed = join(dir, 'renamed.key');
    writeFileSync(renamed, JSON.stringify({ ...file, id: 'mallory' }));
    expect(() => readApproverKeyFile(renamed, PASSPHRASE)).toThrow(/does not open/);
    const swapped = join(dir, 'swapped.key');
    writeFileSync(swapped, JSON.stringify({ ...file, publicKey: generateApproverKey(null).publicKey }));
    expect(() => readApproverKeyFile(swapped, PASSPHRASE)).toThrow(/does not open/);
  });

  it('when the file is an old unencrypted one, damaged, or not a key file, then it is refused saying what to do', () => {
    const old = join(dir, 'old.key');
    writeFileSync(old, JSON.stringify({ kind: 'custody.approver-key', version: 1, id: 'bob', publicKey: key.publicKey, secretKey: key.secretKey }));
    expect(() => readApproverKeyFile(old, PASSPHRASE)).toThrow(/unencrypted key file of an earlier version; make a new key/);
    const damaged = join(dir, 'damaged.key');
    writeFileSync(damaged, JSON.stringify({ ...JSON.parse(readFileSync(path, 'utf8')), cipher: { name: 'aes-256-gcm', iv: '00' } }));
    expect(() => readApproverKeyFile(damaged, PASSPHRASE)).toThrow(/is damaged/);
    const other = join(dir, 'other.json');
    writeFileSync(other, '{"hello":1}');
    expect(() => readApproverKeyFile(other, PASSPHRASE)).toThrow(/is not a custody approver key file/);
    expect(() => writeApproverKeyFile(join(dir, 'short.key'), key, 'short')).toThrow(/at least 8 characters/);
    expect(() => writeApproverKeyFile(path, key, PASSPHRASE)).toThrow(/already exists/);
  });

  it('when custody approver keygen runs with a passphrase file, then the key file opens with that passphrase; without any passphrase and no terminal, it says how to give one', async () => {
    const passphraseFile = join(dir, 'passphrase');
    writeFileSync(passphraseFile, PASSPHRASE + '\n');
    const out = join(dir, 'cli.key');
    const made = await runCli(['approver', 'keygen', '--out', out, '--id', 'carol', '--passphrase-file', passphraseFile, '--json'], {});
    expect(made.code).toBe(0);
    const { publicKey } = JSON.parse(made.stdout) as { publicKey: string };
    expect(readApproverKeyFile(out, PASSPHRASE).publicKey).toBe(publicKey);
    const none = await runCli(['approver', 'keygen', '--out', join(dir, 'none.key')], { CUSTODY_KEY_PASSPHRASE: '' });
    expect(none.code).not.toBe(0);
    expect(none.stderr).toMatch(/set CUSTODY_KEY_PASSPHRASE, give --passphrase-file FILE/);
  });
});
