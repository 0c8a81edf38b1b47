/**
 * Shared test material for the simulator: the RFC 8032 approver keys of the example plan and a
 * builder of signed approval evidence.
 */
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalApprovalMessage, type ApprovalMessage } from '../../common/approval-message.js';
import type { ApprovalEvidence } from '../../src/devices/signing-device.js';

export const SECRETS: Readonly<Record<string, string>> = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'demo-approver-keys.json'), 'utf8'),
).keys;

export const publicKeyOf = (who: string): string => bytesToHex(ed25519.getPublicKey(hexToBytes(SECRETS[who] as string)));
export const APPROVERS = ['alice', 'bob', 'carol'].map((id) => ({ id, publicKey: publicKeyOf(id) }));
export const SEPOLIA = 'eip155:11155111';

export function messageFor(digest: Uint8Array, over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  return {
    kind: 'custody.approval',
    version: 1,
    requestId: randomUUID(),
    pool: 'pool-a',
    chain: SEPOLIA,
    asset: 'ETH',
    amount: '1000',
    to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
    maxFee: '630000000000000',
    digest: bytesToHex(digest),
    policyVersion: 1,
    decision: 'approve',
    ...over,
  };
}

/** `who` signs the canonical text of `message`. */
export function evidence(who: string, message: ApprovalMessage, signer = who): ApprovalEvidence {
  const text = canonicalApprovalMessage(message);
  return { publicKey: publicKeyOf(who), message: text, signature: bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(SECRETS[signer] as string))) };
}
