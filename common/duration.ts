/**
 * Durations as written in ceremony plans and policies: `<n>s|m|h|d` (SPEC section 9).
 * In code a duration is a whole number of milliseconds.
 */
import { ValidationError } from './errors.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^([1-9][0-9]{0,6})([smhd])$/;

export function parseDuration(value: unknown, field: string): number {
  if (typeof value !== 'string') throw new ValidationError('invalid_duration', `"${field}" expected a duration like "24h", got ${typeof value}`);
  const m = DURATION.exec(value);
  if (!m) throw new ValidationError('invalid_duration', `"${field}" expected a duration <n>s|m|h|d such as "1h" or "24h", got "${value}"`);
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

export function formatDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${Math.ceil(ms / 1000)}s`;
}
