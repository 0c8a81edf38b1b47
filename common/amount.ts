/**
 * Amounts: integers in base units (wei, satoshi, lamport), `bigint` in code and decimal strings on the
 * wire (SPEC section 4). Never a JS number.
 */
import { ValidationError } from './errors.js';

/** 2^256 - 1: the largest value any supported chain can carry (EVM uint256). */
export const MAX_UINT256 = (1n << 256n) - 1n;

const DECIMAL = /^(0|[1-9][0-9]*)$/;

/**
 * Parses a non-negative decimal integer string into a bigint.
 * Refuses signs, fractions, exponents, leading zeros, whitespace and values above `max`.
 */
export function parseAmount(value: unknown, field: string, max: bigint = MAX_UINT256): bigint {
  if (typeof value !== 'string') {
    throw new ValidationError('invalid_amount', `"${field}" expected a decimal string of base units, got ${typeof value}`);
  }
  if (value.length > 80 || !DECIMAL.test(value)) {
    throw new ValidationError(
      'invalid_amount',
      `"${field}" expected a non-negative integer in base units as a decimal string (no sign, fraction, exponent or leading zeros)`,
    );
  }
  const n = BigInt(value);
  if (n > max) throw new ValidationError('invalid_amount', `"${field}" is too large (maximum ${max})`);
  return n;
}

/** Like parseAmount, and the value must be at least 1. */
export function parsePositiveAmount(value: unknown, field: string, max: bigint = MAX_UINT256): bigint {
  const n = parseAmount(value, field, max);
  if (n === 0n) throw new ValidationError('invalid_amount', `"${field}" must be greater than zero`);
  return n;
}

export function formatAmount(value: bigint): string {
  return value.toString(10);
}
