/**
 * Offline verification of a ceremony transcript (SPEC section 7, `custody ceremony verify`): the device
 * attestation signature over the canonical transcript, each key's address recomputed from its public
 * key, the simulator's device id derived from its attestation key, and optionally the plan's hash.
 * Reports the first thing that does not match.
 */
import { createHash } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { ATTESTATION_DOMAIN } from '../../common/sim-protocol.js';
import { parseChainId } from '../../common/chain-id.js';
import { addressForKey } from '../chains/addresses.js';
import { BITCOIN_ADDRESS_TYPES } from '../../common/chains/bitcoin/address.js';
import { TRANSCRIPT_KIND, transcriptStatement, type Transcript, type TranscriptBody } from './run-ceremony.js';

export interface TranscriptCheck {
  readonly ok: boolean;
  readonly keys: number;
  /** The first mismatch, when not ok. */
  readonly problem?: string;
}

export function verifyTranscript(value: unknown, planText?: string): TranscriptCheck {
  const fail = (problem: string, keys = 0): TranscriptCheck => ({ ok: false, keys, problem });
  if (typeof value !== 'object' || value === null) return fail('the transcript is not a JSON object');
  const t = value as Partial<Transcript>;
  if (t.kind !== TRANSCRIPT_KIND || t.version !== 1) return fail(`not a ${TRANSCRIPT_KIND} version 1 document`);
  if (t.attestation === null) return fail('the transcript is not attested: the ceremony\'s device has no attestation key (Ledger, PKCS#11), so only its addresses can be checked');
  if (!t.attestation || typeof t.attestation.signature !== 'string' || typeof t.attestation.publicKey !== 'string') return fail('the transcript has no device attestation');
  if (!t.device || !Array.isArray(t.pools)) return fail('the transcript lacks its device or pools');
  const { attestation: attested, ...body } = t as Transcript;
  const attestation = attested as NonNullable<Transcript['attestation']>;
  let signatureOk = false;
  try {
    const statement = transcriptStatement(body as TranscriptBody);
    const domain = new TextEncoder().encode(ATTESTATION_DOMAIN);
    const signed = new Uint8Array(domain.length + statement.length);
    signed.set(domain);
    signed.set(statement, domain.length);
    signatureOk = ed25519.verify(hexToBytes(attestation.signature), signed, hexToBytes(attestation.publicKey as string), { zip215: false });
  } catch {
    signatureOk = false;
  }
  if (!signatureOk) return fail('the device attestation signature does not verify over the transcript (a byte was changed, or another key signed it)');
  if (body.device.attestationPublicKey !== attestation.publicKey) return fail('the attestation key is not the device\'s');
  if (body.device.type === 'sim') {
    const id = 'sim-' + createHash('sha256').update(hexToBytes(attestation.publicKey as string)).digest('hex').slice(0, 16);
    if (body.device.id !== id) return fail(`device id ${body.device.id} is not derived from its attestation key (${id})`);
  }
  if (planText !== undefined) {
    const hash = createHash('sha256').update(planText, 'utf8').digest('hex');
    if (hash !== body.planSha256) return fail(`the plan's sha256 ${hash} is not the transcript's ${body.planSha256}`);
  }
  let keys = 0;
  for (const pool of body.pools) {
    for (const key of pool.keys) {
      let addresses: string[];
      try {
        const chain = parseChainId(key.chain);
        // A Bitcoin key's address is its P2WPKH or its P2TR address, whichever the plan chose.
        addresses = BITCOIN_ADDRESS_TYPES.map((t) => addressForKey(chain, key.publicKey, t));
      } catch (error) {
        return fail(`pool ${pool.id} ${key.chain}: ${error instanceof Error ? error.message : 'bad key'}`, keys);
      }
      if (!addresses.includes(key.address)) {
        return fail(`pool ${pool.id} ${key.chain}: address ${key.address} is not an address of its public key (${[...new Set(addresses)].join(' or ')})`, keys);
      }
      keys += 1;
    }
  }
  return { ok: true, keys };
}
