/**
 * Test harness: a real SoftHSM2 token (SoftHSM2 2.6.1, softhsm2-util(1)) in a temporary token
 * directory. SoftHSM2 reads SOFTHSM2_CONF once, at C_Initialize, and sees only the tokens present
 * then: a test file creates all its tokens first, in one directory (`sharing`), before opening a
 * device.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { recordSecrets } from './suite-logs.js';

export const SOFTHSM_MODULE = '/usr/lib/softhsm/libsofthsm2.so';

export interface SoftHsmToken {
  readonly module: string;
  readonly tokenLabel: string;
  readonly pin: string;
  /** The softhsm2.conf that SOFTHSM2_CONF names. */
  readonly conf: string;
  cleanup(): void;
}

export interface SoftHsmTokenOptions {
  /** At most 32 characters; default `test-<random>`. */
  readonly label?: string;
  readonly pin?: string;
  /** Put the new token in the same token directory (and configuration) as this one. */
  readonly sharing?: SoftHsmToken;
}

export function createSoftHsmToken(options: SoftHsmTokenOptions = {}): SoftHsmToken {
  const conf = options.sharing?.conf ?? writeConf();
  const dir = dirname(conf);
  const tokenLabel = options.label ?? `test-${randomBytes(4).toString('hex')}`;
  const pin = options.pin ?? `pin-${randomBytes(8).toString('hex')}`;
  const soPin = `so-${randomBytes(8).toString('hex')}`;
  recordSecrets([pin, soPin]);
  process.env.SOFTHSM2_CONF = conf;
  execFileSync('softhsm2-util', ['--init-token', '--free', '--label', tokenLabel, '--so-pin', soPin, '--pin', pin], {
    env: { ...process.env, SOFTHSM2_CONF: conf },
    stdio: 'pipe',
  });
  return { module: SOFTHSM_MODULE, tokenLabel, pin, conf, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

function writeConf(): string {
  const dir = mkdtempSync(join(tmpdir(), 'softhsm-'));
  const tokens = join(dir, 'tokens');
  mkdirSync(tokens);
  const conf = join(dir, 'softhsm2.conf');
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\n`);
  return conf;
}
