/**
 * Environment -> typed configuration, validated once at start (SPEC section 9 names the variables).
 * The CLI reads the same variables, so it works on the same data as the gateway.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ValidationError } from '../common/errors.js';

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface Config {
  readonly port: number;
  readonly host: string;
  readonly dataDir: string;
  /** PostgreSQL connection string; null means SQLite in dataDir. */
  readonly databaseUrl: string | null;
  readonly hsmUrl: string;
  /** The simulator PIN: HSM_PIN, else the demo PIN file `DATA_DIR/hsm-pin` written by `npm start`. */
  readonly hsmPin: string | null;
  readonly logLevel: LogLevel;
  readonly pkcs11: { readonly module: string; readonly tokenLabel: string; readonly pin: string } | null;
  /** LEDGER_URL: `hid` for a Ledger on USB, or tcp://HOST:PORT for Speculos or `hsm-sim --mode ledger`; null when no Ledger is used. */
  readonly ledgerUrl: string | null;
}

export type Env = Readonly<Record<string, string | undefined>>;

/** Path of the demo PIN file that `npm start` writes when HSM_PIN is not set. */
export function demoPinPath(dataDir: string): string {
  return join(dataDir, 'hsm-pin');
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
  let hsmPin = env.HSM_PIN || null;
  if (hsmPin === null && existsSync(demoPinPath(dataDir))) {
    hsmPin = readFileSync(demoPinPath(dataDir), 'utf8').trim() || null;
  }
  return {
    port: parsePort(env.PORT, 'PORT', 8080),
    host: env.HOST || '127.0.0.1',
    dataDir,
    databaseUrl,
    hsmUrl,
    hsmPin,
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
      `no HSM PIN: set HSM_PIN, or run npm start once to create the demo PIN file ${demoPinPath(config.dataDir)}`,
    );
  }
  return config.hsmPin;
}
