/**
 * What signs an approver's messages in the CLI: the approver's Ed25519 key file (`--key`), or a Ledger
 * running the Ethereum app (`--ledger`, EIP-191 personal message at a BIP32 path) reached through
 * LEDGER_URL. The Ledger shows the message on its screen; the person there confirms or refuses.
 */
import { bytesToHex } from '@noble/hashes/utils.js';
import { ValidationError } from '../../common/errors.js';
import { readPublicKey, signPersonalMessage } from '../devices/ledger/ledger-device.js';
import { ledgerTransport } from '../main.js';
import type { Config } from '../config.js';
import { readApproverKeyFile, readPassphrase, signWithApproverKey } from './approver-key-file.js';

/** The standard first Ethereum account: where an approver's Ledger key is unless `--path` says otherwise. */
export const DEFAULT_APPROVER_PATH = "m/44'/60'/0'/0/0";

export interface ApprovalSigner {
  /** Hex of the approver public key the signatures verify with. */
  readonly publicKey: string;
  /** Hex of the signature over the UTF-8 bytes of `message` (Ed25519, or EIP-191 r || s || v). */
  sign(message: string): Promise<string>;
  close(): Promise<void>;
}

export async function keyFileSigner(path: string, passphraseFile: string | undefined): Promise<ApprovalSigner> {
  const key = readApproverKeyFile(path, await readPassphrase(passphraseFile, `passphrase of ${path}: `));
  return { publicKey: key.publicKey, sign: async (message) => signWithApproverKey(key, message), close: async () => {} };
}

export async function ledgerSigner(config: Config, path: string): Promise<ApprovalSigner> {
  if (config.ledgerUrl === null) throw new ValidationError('missing_ledger', 'set LEDGER_URL to "hid" (a Ledger on USB) or tcp://HOST:PORT to approve with a Ledger');
  const transport = ledgerTransport(config.ledgerUrl);
  try {
    const publicKey = bytesToHex(await readPublicKey(transport, path));
    return {
      publicKey,
      sign: async (message) => bytesToHex(await signPersonalMessage(transport, path, message)),
      close: () => transport.close(),
    };
  } catch (error) {
    await transport.close();
    throw error;
  }
}
