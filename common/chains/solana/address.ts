/**
 * Solana addresses: the base58 encoding of a 32-byte Ed25519 public key.
 */
import { base58 } from '@scure/base';
import { ValidationError } from '../../errors.js';

export function solanaAddressFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new ValidationError('invalid_public_key', `Solana keys are 32-byte Ed25519 public keys, got ${publicKey.length} bytes`);
  return base58.encode(publicKey);
}

export function assertSolanaAddress(value: unknown, field: string): string {
  let bytes: Uint8Array;
  try {
    if (typeof value !== 'string' || value.length > 44) throw new Error('bad length');
    bytes = base58.decode(value);
  } catch {
    throw new ValidationError('invalid_address', `"${field}" is not a Solana address (base58 of 32 bytes)`);
  }
  if (bytes.length !== 32) throw new ValidationError('invalid_address', `"${field}" is not a Solana address (base58 of 32 bytes)`);
  return value as string;
}
