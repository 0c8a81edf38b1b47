/**
 * Environment -> typed configuration, validated once at start (SPEC section 9 names the variables).
 * The CLI reads the same variables, so it works on the same data as the gateway.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValidationError } from '../common/errors.js';
import { pinWeakness, readPinFile } from '../common/pin.js';

export { MIN_PIN_LENGTH, pinWeakness } from '../common/pin.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** PostgreSQL connection string; null means SQLite in dataDir. */
  readonly databaseUrl: string | null;
  readonly hsmUrl: string;
  /**
   * The simulator PIN: HSM_PIN, else the file HSM_PIN_FILE (outside DATA_DIR, readable by its owner
   * only), else the demo PIN file `DATA_DIR/demo/hsm-pin` written by `npm start` (demo only).
   */
  readonly hsmPin: string | null;
  /** Where the PIN came from, for messages (never the PIN itself). */
  readonly hsmPinSource: 'HSM_PIN' | 'HSM_PIN_FILE' | 'demo' | null;
  readonly logLevel: LogLevel;
  readonly pkcs11: { readonly module: string; readonly tokenLabel: string; readonly pin: string } | null;
  /** LEDGER_URL: `hid` for a Ledger on USB, or tcp://HOST:PORT for Speculos or `hsm-sim --mode ledger`; null when no Ledger is used. */
  readonly ledgerUrl: string | null;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Path of the demo PIN file that `npm start` writes when neither HSM_PIN nor HSM_PIN_FILE is set. */
export function demoPinPath(dataDir: string): string {
  return join(dataDir, 'demo', 'hsm-pin');
}

function parsePort(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^[0-9]{1,5}$/.test(value) || Number(value) > 65535) {
    throw new ValidationError('invalid_config', `${name} must be a TCP port number 0-65535, got "${value}"`);
  }
  return Number(value);
}

function parsePkcs11(env: Env): Config['pkcs11'] {
  if (!env.PKCS11_MODULE) return null;
  const missing = (['PKCS11_TOKEN_LABEL', 'PKCS11_PIN'] as const).filter((name) => !env[name]);
  if (missing.length > 0) throw new ValidationError('invalid_config', `PKCS11_MODULE is set, so ${missing.join(' and ')} must be set too`);
  return { module: env.PKCS11_MODULE, tokenLabel: env.PKCS11_TOKEN_LABEL as string, pin: env.PKCS11_PIN as string };
}

function parseLedgerUrl(value: string | undefined): string | null {
  if (!value) return null;
  if (value !== 'hid' && !/^tcp:\/\/[^:/\s]+:[0-9]{1,5}$/.test(value)) {
    throw new ValidationError('invalid_config', `LEDGER_URL must be "hid" or tcp://HOST:PORT, got "${value.slice(0, 80)}"`);
  }
  return value;
}

export function loadConfig(env: Env = process.env): Config {
  const dataDir = resolve(env.DATA_DIR || './data');
  const logLevel = (env.LOG_LEVEL || 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) {
    throw new ValidationError('invalid_config', `LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}, got "${env.LOG_LEVEL}"`);
  }
  const hsmUrl = env.HSM_URL || 'tcp://127.0.0.1:9999';
  if (!/^tcp:\/\/[^:/\s]+:[0-9]{1,5}$/.test(hsmUrl)) {
    throw new ValidationError('invalid_config', `HSM_URL must look like tcp://HOST:PORT, got "${hsmUrl}"`);
  }
  const databaseUrl = env.DATABASE_URL || null;
  if (databaseUrl !== null && !/^postgres(ql)?:\/\//.test(databaseUrl)) {
    throw new ValidationError('invalid_config', 'DATABASE_URL must be a postgres:// or postgresql:// connection string');
  }
  let hsmPin: string | null = null;
  let hsmPinSource: Config['hsmPinSource'] = null;
  if (env.HSM_PIN && env.HSM_PIN_FILE) throw new ValidationError('invalid_config', 'set HSM_PIN or HSM_PIN_FILE, not both');
  if (env.HSM_PIN) {
    hsmPin = env.HSM_PIN;
    hsmPinSource = 'HSM_PIN';
  } else if (env.HSM_PIN_FILE) {
    hsmPin = readPinFile(env.HSM_PIN_FILE, dataDir);
    hsmPinSource = 'HSM_PIN_FILE';
  } else if (existsSync(demoPinPath(dataDir))) {
    hsmPin = readFileSync(demoPinPath(dataDir), 'utf8').trim() || null;
    hsmPinSource = hsmPin === null ? null : 'demo';
  }
  if (hsmPin !== null && hsmPinSource !== 'demo') {
    const weakness = pinWeakness(hsmPin);
    if (weakness !== null) throw new ValidationError('weak_hsm_pin', `the PIN from ${hsmPinSource} ${weakness}`);
  }
  return {
    port: parsePort(env.PORT, 'PORT', 8080),
    host: env.HOST || '127.0.0.1',
    dataDir,
    databaseUrl,
    hsmUrl,
    hsmPin,
    hsmPinSource,
    logLevel,
    pkcs11: parsePkcs11(env),
    ledgerUrl: parseLedgerUrl(env.LEDGER_URL),
  };
}

/** The PIN, or an error that says how to provide one. */
export function requireHsmPin(config: Config): string {
  if (config.hsmPin === null) {
    throw new ValidationError(
      'missing_hsm_pin',
      `no HSM PIN: set HSM_PIN or HSM_PIN_FILE (a file outside DATA_DIR, mode 0600), or run npm start once to create the demo PIN file ${demoPinPath(config.dataDir)}`,
    );
  }
  return config.hsmPin;
}
