/**
 * The emulated Ledger's BIP32 seed, sealed under the PIN like the custody state (sealed-state.ts:
 * scrypt + AES-256-GCM, written atomically), in its own directory DIR/ledger so the two modes never share
 * a state file. The sealed state's random 32-byte device secret, created once, is the root; the seed is
 * HMAC-SHA512 of it under a label, so the secret itself never serves two purposes.
 */
import { join } from 'node:path';
import { hmac } from '@noble/hashes/hmac.js';
import { sha512 } from '@noble/hashes/sha2.js';
import { hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { freshState } from '../device.js';
import { SealedStore } from '../sealed-state.js';

const LEDGER_STATE_DIR = 'ledger';
const SEED_LABEL = utf8ToBytes('custody hsm-sim ledger seed v1');

/** Opens (or creates) the sealed state in DIR/ledger with the PIN; throws WrongPinError on a wrong PIN. */
export function openLedgerSeed(dataDir: string, pin: string): Uint8Array {
  const { state } = SealedStore.open(join(dataDir, LEDGER_STATE_DIR), pin, freshState);
  const secret = hexToBytes(state.attestationSecretKey);
  try {
    return hmac(sha512, SEED_LABEL, secret);
  } finally {
    secret.fill(0);
  }
}
