/**
 * Approver signatures: Ed25519 (RFC 8032) over the UTF-8 bytes of the approval message, verified
 * strictly (canonical S, no small-order keys: noble's zip215=false mode).
 */
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ValidationError } from '../domain/errors.js';

export function assertSignatureHex(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^(0x)?[0-9a-fA-F]{128}$/.test(value)) {
    throw new ValidationError('invalid_signature', `"${field}" expected a 64-byte Ed25519 signature as 128 hex characters`);
  }
  return value.replace(/^0x/, '').toLowerCase();
}

/** True only for a valid signature; never throws on malformed input. */
export function verifyApproverSignature(publicKeyHex: string, message: string, signatureHex: string): boolean {
  try {
    return ed25519.verify(hexToBytes(signatureHex), new TextEncoder().encode(message), hexToBytes(publicKeyHex), { zip215: false });
  } catch {
    return false;
  }
}
