/**
 * Ethereum addresses: EIP-55 mixed-case checksums, and the address of a secp256k1 public key
 * (last 20 bytes of keccak256 of the uncompressed point, Yellow Paper appendix F).
 *
 * Case policy (EIP-55): an all-lowercase or all-uppercase address carries no checksum and is accepted;
 * a mixed-case address must carry the right checksum, since a wrong one means a typo.
 */
import { addr } from 'micro-eth-signer';
import { ValidationError } from '../../errors.js';

const HEX_ADDRESS = /^0x[0-9a-fA-F]{40}$/;

export function assertEthAddress(value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ValidationError('invalid_address', `"${field}" expected an Ethereum address string, got ${typeof value}`);
  if (!HEX_ADDRESS.test(value)) {
    throw new ValidationError('invalid_address', `"${field}" is not an Ethereum address (expected 0x followed by 40 hex digits)`);
  }
  const body = value.slice(2);
  const checksummed = addr.addChecksum(value.toLowerCase());
  const mixed = body !== body.toLowerCase() && body !== body.toUpperCase();
  if (mixed && checksummed !== value) {
    throw new ValidationError('bad_checksum', `"${field}" has a wrong EIP-55 checksum (did you mean a different address? ${value})`);
  }
  return checksummed;
}

/** EIP-55 address of a compressed (33-byte) or uncompressed (65-byte) secp256k1 public key. */
export function ethAddressFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 33 && publicKey.length !== 65) {
    throw new ValidationError('invalid_public_key', `secp256k1 public key expected 33 or 65 bytes, got ${publicKey.length}`);
  }
  return addr.fromPublicKey(publicKey);
}
