/**
 * Proof-of-control signatures as auditors' tools expect them (common/control-message.ts says what is
 * signed): EIP-191 as 0x-hex r || s || v (ethers' verifyMessage), Bitcoin as the base64 compact
 * signature whose header byte is 39 + recovery id for a P2WPKH address (BIP-137; Bitcoin Core's
 * verifymessage reads the same layout), Solana as base58 of the Ed25519 signature. Each is checked
 * against the key's address before it is handed out.
 */
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, concatBytes } from '@noble/hashes/utils.js';
import { base58, base64 } from '@scure/base';
import { controlFormat, controlSigningInput, type ControlFormat } from '../../common/control-message.js';
import { CustodyError, ValidationError } from '../../common/errors.js';
import { bitcoinNetwork, parseChainId } from '../../common/chain-id.js';
import { ethAddressFromPublicKey } from '../../common/chains/ethereum/address.js';
import { poolAddressType, poolOutput } from '../../common/chains/bitcoin/address.js';

/** BIP-137 header base of a compact signature by the key of a native SegWit (P2WPKH) address. */
const BIP137_P2WPKH = 39;

/** Refuses keys whose address has no supported message format (P2TR needs BIP-322). */
export function assertControlProvable(chain: string, address: string, publicKeyHex: string): ControlFormat {
  const parsed = parseChainId(chain);
  if (parsed.family === 'bip122' && poolAddressType(Buffer.from(publicKeyHex, 'hex'), address, bitcoinNetwork(parsed)) !== 'p2wpkh') {
    throw new ValidationError('unsupported_proof', `${address} on ${chain} is not a P2WPKH address: proving control of a Taproot address needs BIP-322, which this version does not sign`);
  }
  return controlFormat(chain);
}

function recoveredKey(digest: Uint8Array, signature: Uint8Array, recovery: number): Uint8Array {
  return secp256k1.Signature.fromBytes(signature, 'compact').addRecoveryBit(recovery).recoverPublicKey(digest).toBytes(true);
}

/** The device's signature in the chain's usual encoding, checked to come from `address`'s key. */
export function encodeControlProof(
  chain: string,
  address: string,
  challenge: string,
  signed: { readonly signature: Uint8Array; readonly recovery: 0 | 1 | null },
): { format: ControlFormat; signature: string } {
  const format = controlFormat(chain);
  const input = controlSigningInput(format, challenge);
  const mismatch = () => new CustodyError('internal', 'signature_mismatch', `the device's proof-of-control signature does not come from ${address}`);
  try {
    if (format === 'ed25519') {
      if (!ed25519.verify(signed.signature, input, base58.decode(address))) throw mismatch();
      return { format, signature: base58.encode(signed.signature) };
    }
    if (signed.recovery === null) throw mismatch();
    const key = recoveredKey(input, signed.signature, signed.recovery);
    if (format === 'eip191') {
      if (ethAddressFromPublicKey(key).toLowerCase() !== address.toLowerCase()) throw mismatch();
      return { format, signature: '0x' + bytesToHex(signed.signature) + (27 + signed.recovery).toString(16) };
    }
    if (poolOutput(key, 'p2wpkh', bitcoinNetwork(parseChainId(chain))).address !== address) throw mismatch();
    return { format, signature: base64.encode(concatBytes(Uint8Array.of(BIP137_P2WPKH + signed.recovery), signed.signature)) };
  } catch (error) {
    if (error instanceof CustodyError) throw error;
    throw mismatch();
  }
}
