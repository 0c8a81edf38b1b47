import { mkdtempSync, writeFileSync } from 'node:fs';
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

  it('when HSM_PIN is unset but the demo PIN file exists, then the PIN comes from the file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    writeFileSync(join(dir, 'hsm-pin'), 'demo-pin\n');
    expect(loadConfig({ DATA_DIR: dir }).hsmPin).toBe('demo-pin');
    expect(loadConfig({ DATA_DIR: dir, HSM_PIN: 'env-pin' }).hsmPin).toBe('env-pin');
  });

  it('when a value is malformed, then loading fails naming the variable', () => {
    expect(() => loadConfig({ PORT: '80a' })).toThrowErrorMatchingInlineSnapshot(`[ValidationError: PORT must be a TCP port number 0-65535, got "80a"]`);
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).toThrow(/LOG_LEVEL must be one of/);
    expect(() => loadConfig({ HSM_URL: 'http://x' })).toThrow(/HSM_URL must look like tcp:\/\/HOST:PORT/);
    expect(() => loadConfig({ DATABASE_URL: 'mysql://x' })).toThrow(/DATABASE_URL/);
  });

  it('when no PIN can be found, then requireHsmPin says how to give one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'cfg-'));
    expect(() => requireHsmPin(loadConfig({ DATA_DIR: dir }))).toThrow(/set HSM_PIN/);
  });
});
