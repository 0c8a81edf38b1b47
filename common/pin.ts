/**
 * The device PIN at rest (docs/threat-model.md): read from a file outside the data directory that
 * only its owner can read, and strong enough to resist an offline attack on a copy of the sealed
 * state. Shared by the gateway's configuration and the simulator's command line.
 */
import { readFileSync, statSync } from 'node:fs';
import { isAbsolute, relative, resolve } from 'node:path';
import { ValidationError } from './errors.js';

/** The shortest PIN accepted outside the demo: a PIN guards every key, and a copy of the sealed state can be attacked offline. */
export const MIN_PIN_LENGTH = 12;

/** A PIN's strength: at least MIN_PIN_LENGTH characters, not all one character, at most 256 (the device's limit). */
export function pinWeakness(pin: string): string | null {
  if (pin.length < MIN_PIN_LENGTH) return `is ${pin.length} characters; use at least ${MIN_PIN_LENGTH} (e.g. openssl rand -base64 18)`;
  if (pin.length > 256) return 'is longer than 256 characters';
  if (new Set(pin).size < 4) return 'uses fewer than 4 distinct characters';
  return null;
}

function isInside(dir: string, path: string): boolean {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
}

/** HSM_PIN_FILE: a file outside DATA_DIR that only its owner can read (a copy of DATA_DIR must not unseal the keys). */
export function readPinFile(path: string, dataDir: string): string {
  const file = resolve(path);
  if (isInside(dataDir, file)) {
    throw new ValidationError('invalid_config', `HSM_PIN_FILE ${file} is inside DATA_DIR ${dataDir}: keep the PIN outside the data directory, so that a copy of it unseals nothing`);
  }
  let mode: number;
  try {
    mode = statSync(file).mode;
  } catch {
    throw new ValidationError('invalid_config', `HSM_PIN_FILE ${file} cannot be read: create it (mode 0600) with the PIN on one line`);
  }
  if ((mode & 0o077) !== 0) {
    throw new ValidationError('invalid_config', `HSM_PIN_FILE ${file} is readable or writable by others (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): chmod 600 ${file}`);
  }
  return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
}
