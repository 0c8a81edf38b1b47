import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadConfig, requireHsmPin } from '../src/config.js';

describe('configuration from the environment', () => {
  it('when nothing is set, then the SPEC defaults apply', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const c = loadConfig({ DATA_DIR: dir });
    expect(c).toMatchObject({ port: 8080, host: '127.0.0.1', dataDir: dir, databaseUrl: null, hsmUrl: 'tcp://127.0.0.1:9999', hsmPin: null, logLevel: 'info' });
  });

  it('when HSM_PIN is unset but the demo PIN file exists under DATA_DIR/demo, then the PIN comes from it, marked as the demo', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    mkdirSync(join(dir, 'demo'));
    writeFileSync(join(dir, 'demo', 'hsm-pin'), 'demo-pin\n');
    expect(loadConfig({ DATA_DIR: dir })).toMatchObject({ hsmPin: 'demo-pin', hsmPinSource: 'demo' });
    expect(loadConfig({ DATA_DIR: dir, HSM_PIN: 'env-pin-0123456789' })).toMatchObject({ hsmPin: 'env-pin-0123456789', hsmPinSource: 'HSM_PIN' });
  });

  it('when the old demo PIN file sits beside the sealed state (DATA_DIR/hsm-pin), then it is not used', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'hsm-pin'), 'old-demo-pin-beside-state\n');
    expect(loadConfig({ DATA_DIR: dir }).hsmPin).toBeNull();
  });

  it('when HSM_PIN_FILE is outside DATA_DIR and readable by its owner only, then the PIN comes from it', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    const secrets = mkdtempSync(join(tmpdir(), 'cfg-secrets-'));
    const file = join(secrets, 'pin');
    writeFileSync(file, 'a-strong-pin-from-a-file\n', { mode: 0o600 });
    expect(loadConfig({ DATA_DIR: dir, HSM_PIN_FILE: file })).toMatchObject({ hsmPin: 'a-strong-pin-from-a-file', hsmPinSource: 'HSM_PIN_FILE' });
  });

  it('when HSM_PIN_FILE is inside DATA_DIR, readable by others, missing, or given with HSM_PIN, then loading fails saying what to do', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'pin'), 'a-strong-pin-in-datadir\n', { mode: 0o600 });
    expect(() => loadConfig({ DATA_DIR: dir, HSM_PIN_FILE: join(dir, 'pin') })).toThrow(/inside DATA_DIR .*keep the PIN outside/);
    const secrets = mkdtempSync(join(tmpdir(), 'cfg-secrets-'));
    const open = join(secrets, 'pin');
    writeFileSync(open, 'a-strong-pin-world-read\n');
    chmodSync(open, 0o644);
    expect(() => loadConfig({ DATA_DIR: dir, HSM_PIN_FILE: open })).toThrow(/readable or writable by others \(mode 0644\): chmod 600/);
    expect(() => loadConfig({ DATA_DIR: dir, HSM_PIN_FILE: join(secrets, 'absent') })).toThrow(/cannot be read: create it/);
    expect(() => loadConfig({ DATA_DIR: dir, HSM_PIN_FILE: open, HSM_PIN: 'another-strong-pin' })).toThrow(/not both/);
  });

  it('when the PIN is short or has too few distinct characters, then loading fails with its minimum strength', () => {
    expect(() => loadConfig({ HSM_PIN: '1234' })).toThrow(/4 characters; use at least 12/);
    expect(() => loadConfig({ HSM_PIN: 'aaaaaaaaaaaabbbb' })).toThrow(/fewer than 4 distinct characters/);
  });

  it('when a value is malformed, then loading fails naming the variable', () => {
    expect(() => loadConfig({ PORT: '80a' })).toThrowErrorMatchingInlineSnapshot(`[ValidationError: PORT must be a TCP port number 0-65535, got "80a"]`);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL must be one of/);
    expect(() => loadConfig({ HSM_URL: 'http://x' })).toThrow(/HSM_URL must look like tcp:\/\/HOST:PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
    expect(() => loadConfig({ LEDGER_URL: 'usb' })).toThrow(/LEDGER_URL must be "hid" or tcp:\/\/HOST:PORT/);
    expect(() => loadConfig({ PKCS11_MODULE: '/usr/lib/softhsm/libsofthsm2.so', PKCS11_PIN: '1234' })).toThrow(/PKCS11_TOKEN_LABEL must be set too/);
  });

  it('when a Ledger and a PKCS#11 token are configured, then both are in the configuration and the PIN is kept as given', () => {
    const c = loadConfig({ LEDGER_URL: 'tcp://127.0.0.1:40000', PKCS11_MODULE: '/m.so', PKCS11_TOKEN_LABEL: 'custody', PKCS11_PIN: '1234' });
    expect(c.ledgerUrl).toBe('tcp://127.0.0.1:40000');
    expect(c.pkcs11).toEqual({ module: '/m.so', tokenLabel: 'custody', pin: '1234' });
    expect(loadConfig({ LEDGER_URL: 'hid' }).ledgerUrl).toBe('hid');
  });

  it('when no PIN can be found, then requireHsmPin says how to give one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    expect(() => requireHsmPin(loadConfig({ DATA_DIR: dir }))).toThrow(/set HSM_PIN/);
  });
});
