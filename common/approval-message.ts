/**
 * The approval message (SPEC section 5): the exact text an approver signs, shared by the gateway
 * (which publishes it), the approver's client (which decodes and shows it) and the HSM simulator
 * (which verifies it again before signing).
 *
 * It is RFC 8785 (JSON Canonicalization Scheme) text, version 2: it carries `unsignedTx`, the exact
 * transaction the device will sign, and every other field a human reads is derivable from it (the
 * asset, amount, destination, fee cap, digest and decoded call), so a reader who decodes `unsignedTx`
 * itself can check the message says what the transaction does (`transactionDisagreement`). Approvers
 * sign its UTF-8 bytes. The gateway publishes it with `"decision":"approve"`; a rejection is the same
 * object with `"decision":"reject"`, canonicalized the same way.
 */
import { canonicalize } from 'json-canonicalize';
import { bytesToHex } from '@noble/hashes/utils.js';
import type { DecodedCall, DecodedTransaction } from './chains/decoded-transaction.js';

export const APPROVAL_KIND = 'custody.approval';
export const APPROVAL_VERSION = 2;
/** The largest approval message either side accepts, in bytes (a 256-input PSBT is about 45 kB of base64). */
export const MAX_APPROVAL_MESSAGE_BYTES = 128 * 1024;

export interface ApprovalMessage {
  readonly kind: typeof APPROVAL_KIND;
  readonly version: typeof APPROVAL_VERSION;
  readonly requestId: string;
  readonly pool: string;
  readonly chain: string;
  readonly asset: string;
  /** Base units, decimal string. */
  readonly amount: string;
  /** Destination address in the chain's canonical form. */
  readonly to: string;
  /** The most the transaction can pay in fees, native base units, decimal string. */
  readonly maxFee: string;
  /** Hex (lowercase, no 0x) of the 32-byte digest the approvals name. */
  readonly digest: string;
  readonly policyVersion: number;
  readonly decision: 'approve' | 'reject';
  /** The exact unsigned transaction in the API's encoding (Ethereum 0x-hex, Bitcoin base64 PSBT, Solana base64 wire message). */
  readonly unsignedTx: string;
  /** The delay before signing this request once approved (`<n>s|m|h|d`), or `none`: the policy does not time-lock it. */
  readonly timelock: string;
  /** Present only when the transaction calls a contract other than by an ERC-20 transfer. */
  readonly call?: DecodedCall;
  /** Present only for a replacement (fee bump): the id of the signed request it replaces. */
  readonly replaces?: string;
  /** Present only for an internal transfer: the pool of this gateway the destination belongs to. */
  readonly destinationPool?: string;
}

const REQUIRED: readonly (keyof ApprovalMessage)[] = [
  'kind', 'version', 'requestId', 'pool', 'chain', 'asset', 'amount', 'to', 'maxFee', 'digest', 'policyVersion', 'decision', 'unsignedTx', 'timelock',
];
const OPTIONAL: readonly (keyof ApprovalMessage)[] = ['call', 'replaces', 'destinationPool'];
const STRINGS = ['requestId', 'pool', 'chain', 'asset', 'amount', 'to', 'maxFee', 'digest', 'unsignedTx', 'timelock'] as const;

export class ApprovalMessageError extends Error {
  override readonly name = 'ApprovalMessageError';
}

/** The canonical text of an approval message. */
export function canonicalApprovalMessage(message: ApprovalMessage): string {
  return canonicalize(message);
}

/** The same message with another decision (an approver's reject signs this). */
export function withDecision(text: string, decision: ApprovalMessage['decision']): string {
  return canonicalApprovalMessage({ ...parseApprovalMessage(text), decision });
}

function assertCall(value: unknown): void {
  const bad = (why: string) => new ApprovalMessageError(`approval message "call" ${why}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw bad('must be an object');
  const call = value as Record<string, unknown>;
  for (const k of Object.keys(call)) if (!['contract', 'selector', 'function', 'args'].includes(k)) throw bad(`has unknown field "${k}"`);
  if (typeof call.contract !== 'string') throw bad('lacks its "contract"');
  if (typeof call.selector !== 'string' || !/^0x[0-9a-f]{8}$/.test(call.selector)) throw bad('"selector" must be 0x and 8 lowercase hex characters');
  if ('function' in call && typeof call.function !== 'string') throw bad('"function" must be a string');
  if ('args' in call) {
    if (!Array.isArray(call.args)) throw bad('"args" must be a list');
    for (const a of call.args as unknown[]) {
      const arg = a as Record<string, unknown>;
      if (typeof a !== 'object' || a === null || Object.keys(arg).sort().join() !== 'name,type,value' || typeof arg.name !== 'string' || typeof arg.type !== 'string' || typeof arg.value !== 'string') {
        throw bad('"args" entries must be {"name","type","value"} strings');
      }
    }
  }
}

/**
 * Parses approval message text and checks it is exactly the canonical form of a well-formed version 2
 * message: every field present with the right type, nothing else, and the bytes equal to their RFC 8785
 * form. A version 1 message (without the transaction) is refused.
 */
export function parseApprovalMessage(text: string): ApprovalMessage {
  if (Buffer.byteLength(text, 'utf8') > MAX_APPROVAL_MESSAGE_BYTES) {
    throw new ApprovalMessageError(`approval message longer than ${MAX_APPROVAL_MESSAGE_BYTES} bytes`);
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new ApprovalMessageError('approval message is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ApprovalMessageError('approval message is not a JSON object');
  }
  const record = value as Record<string, unknown>;
  if (record.kind !== APPROVAL_KIND) throw new ApprovalMessageError(`approval message kind must be "${APPROVAL_KIND}"`);
  if (record.version !== APPROVAL_VERSION) {
    throw new ApprovalMessageError(`approval message version must be ${APPROVAL_VERSION} (got ${JSON.stringify(record.version)}): version 1 messages do not carry the transaction and are no longer accepted`);
  }
  const extra = Object.keys(record).filter((k) => !(REQUIRED as readonly string[]).includes(k) && !(OPTIONAL as readonly string[]).includes(k));
  if (extra.length > 0) throw new ApprovalMessageError(`approval message has unknown field "${extra[0]}"`);
  for (const f of REQUIRED) if (!(f in record)) throw new ApprovalMessageError(`approval message lacks "${f}"`);
  for (const f of STRINGS) {
    if (typeof record[f] !== 'string') throw new ApprovalMessageError(`approval message "${f}" must be a string`);
  }
  if (!/^[0-9a-f]{64}$/.test(record.digest as string)) {
    throw new ApprovalMessageError('approval message "digest" must be 64 lowercase hex characters');
  }
  if (!/^(none|[1-9][0-9]{0,8}[smhd])$/.test(record.timelock as string)) {
    throw new ApprovalMessageError('approval message "timelock" must be "none" or a duration such as "24h"');
  }
  if (!Number.isSafeInteger(record.policyVersion) || (record.policyVersion as number) < 1) {
    throw new ApprovalMessageError('approval message "policyVersion" must be a positive integer');
  }
  if (record.decision !== 'approve' && record.decision !== 'reject') {
    throw new ApprovalMessageError('approval message "decision" must be "approve" or "reject"');
  }
  if ('call' in record) assertCall(record.call);
  for (const f of ['replaces', 'destinationPool'] as const) {
    if (f in record && typeof record[f] !== 'string') throw new ApprovalMessageError(`approval message "${f}" must be a string`);
  }
  const message = record as unknown as ApprovalMessage;
  if (canonicalApprovalMessage(message) !== text) {
    throw new ApprovalMessageError('approval message is not in RFC 8785 canonical form');
  }
  return message;
}

/**
 * Compares a message with the reader's own decoding of its `unsignedTx` (SPEC section 5): null when
 * every field the message states equals the decoding, otherwise the first field that differs and how.
 * The approver's client, the simulator and the gateway all use this one comparison.
 */
export function transactionDisagreement(message: ApprovalMessage, decoded: DecodedTransaction): string | null {
  const expected: [string, string, string][] = [
    ['asset', message.asset, decoded.asset],
    ['amount', message.amount, decoded.amount.toString()],
    ['to', message.to, decoded.to],
    ['maxFee', message.maxFee, decoded.maxFee.toString()],
    ['digest', message.digest, bytesToHex(decoded.digest)],
    ['call', message.call === undefined ? 'none' : canonicalize(message.call), decoded.call === null ? 'none' : canonicalize(decoded.call)],
  ];
  for (const [field, stated, actual] of expected) {
    if (stated !== actual) return `"${field}" says ${stated.slice(0, 200)} but the transaction has ${actual.slice(0, 200)}`;
  }
  return null;
}
