/**
 * Proof of control: what a pool key signs when it proves it controls its address, in each chain's
 * standard message format, so that auditors check it with common tools. Shared by the gateway, the
 * devices that hash before signing (simulator, PKCS#11) and the verifier.
 *
 * - Ethereum: EIP-191 personal message, keccak256("\x19Ethereum Signed Message:\n" + length + message),
 *   a 65-byte r || s || v signature (v 27/28), as `eth_sign`/`personal_sign` and ethers' verifyMessage use.
 * - Bitcoin: the signed-message format of Bitcoin Core (double SHA-256 of the varint-prefixed magic
 *   "Bitcoin Signed Message:\n" and message), compact recoverable signature in base64 whose header byte
 *   names the address type as BIP-137 says (39-42: P2WPKH). Taproot addresses need BIP-322 instead.
 * - Solana: Ed25519 over the UTF-8 bytes of the message.
 *
 * A challenge is printable text of at most 1024 bytes: never a transaction. An EVM or Bitcoin key only
 * ever signs a digest with its message prefix here, and a Solana message that is valid UTF-8 text cannot
 * be a transaction message (legacy messages start with a signer count of at most a few, versioned ones
 * with a byte of 0x80 or more, which no UTF-8 text starts with).
 */
import { createHash } from 'node:crypto';
import { CompactSize } from '@scure/btc-signer';
import { eip191Signer } from 'micro-eth-signer';
import { hexToBytes } from '@noble/hashes/utils.js';

export const MAX_CHALLENGE_BYTES = 1024;
export const BITCOIN_MESSAGE_MAGIC = 'Bitcoin Signed Message:\n';

export type ControlFormat = 'eip191' | 'bitcoin-message' | 'ed25519';

/** Why a challenge is not acceptable, or null. */
export function challengeProblem(challenge: string): string | null {
  const bytes = Buffer.byteLength(challenge, 'utf8');
  if (bytes === 0 || bytes > MAX_CHALLENGE_BYTES) return `the challenge must be 1 to ${MAX_CHALLENGE_BYTES} bytes of text, got ${bytes}`;
  if (Buffer.from(challenge, 'utf8').toString('utf8') !== challenge) return 'the challenge is not well-formed Unicode text';
  // Printable text only: no control characters (tab and newline allowed inside, not first).
  if (/[\u0000-\u0008\u000b-\u001f\u007f-\u009f]/.test(challenge) || /^\s/.test(challenge)) return 'the challenge must be printable text that does not start with white space';
  return null;
}

/** The message format of a chain family. */
export function controlFormat(chain: string): ControlFormat {
  if (chain.startsWith('eip155:')) return 'eip191';
  if (chain.startsWith('bip122:')) return 'bitcoin-message';
  return 'ed25519';
}

/** What the key signs: a 32-byte digest for ECDSA formats, the message bytes for Ed25519. */
export function controlSigningInput(format: ControlFormat, challenge: string): Uint8Array {
  const message = new TextEncoder().encode(challenge);
  switch (format) {
    case 'eip191':
      return hexToBytes(eip191Signer.getHash(message).replace(/^0x/, ''));
    case 'bitcoin-message': {
      const magic = new TextEncoder().encode(BITCOIN_MESSAGE_MAGIC);
      const preimage = Buffer.concat([CompactSize.encode(BigInt(magic.length)), magic, CompactSize.encode(BigInt(message.length)), message]);
      return createHash('sha256').update(createHash('sha256').update(preimage).digest()).digest();
    }
    case 'ed25519':
      return message;
  }
}
