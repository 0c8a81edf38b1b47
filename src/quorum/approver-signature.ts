/**
 * Approver signatures as the gateway receives them: hex of a 64-byte Ed25519 signature or a 65-byte
 * EIP-191 signature (a hardware wallet), verified by the scheme of the approver's key
 * (common/approver-key.ts, the same check the simulator makes).
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { ValidationError } from '../../common/errors.js';
import { verifyApproverSignature as verify } from '../../common/approver-key.js';

export function assertSignatureHex(value: unknown, field: string): string {
  if (typeof value !== 'string' || !/^(0x)?(?:[0-9a-fA-F]{128}|[0-9a-fA-F]{130})$/.test(value)) {
    throw new ValidationError('invalid_signature', `"${field}" expected a 64-byte Ed25519 signature (128 hex characters) or a 65-byte EIP-191 signature (130)`);
  }
  return value.replace(/^0x/, '').toLowerCase();
}

/** True only for a valid signature; never throws on malformed input. */
export function verifyApproverSignature(publicKeyHex: string, message: string, signatureHex: string): boolean {
  try {
    return verify(hexToBytes(publicKeyHex), message, hexToBytes(signatureHex));
  } catch {
    return false;
  }
}
