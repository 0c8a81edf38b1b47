/**
 * pino JSON logs to stdout with secrets redacted (SPEC section 8, rule 8): tokens, PINs, approval
 * signatures and request bodies never reach a log line.
 */
import { pino, type Logger } from 'pino';
import type { LogLevel } from './config.js';

export type { Logger };

export const REDACTED_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'headers.authorization',
  'authorization',
  'token',
  '*.token',
  'pin',
  '*.pin',
  'hsmPin',
  '*.hsmPin',
  'signature',
  '*.signature',
  'secretKey',
  '*.secretKey',
  'body',
  'req.body',
];

export function createLogger(level: LogLevel, destination?: NodeJS.WritableStream): Logger {
  const options = { level, redact: { paths: REDACTED_PATHS, censor: '[redacted]' }, base: { service: 'custody-gateway' } };
  return destination ? pino(options, destination) : pino(options);
}
