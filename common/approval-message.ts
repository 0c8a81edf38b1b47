/**
 * The approval message (SPEC section 5): the exact text an approver signs, shared by the gateway
 * (which publishes it) and the HSM simulator (which verifies it again before signing).
 *
 * It is RFC 8785 (JSON Canonicalization Scheme) text. Approvers sign its UTF-8 bytes with Ed25519.
 * The gateway publishes it with `"decision":"approve"`; a rejection is the same object with
 * `"decision":"reject"`, canonicalized the same way.
 */
import { canonicalize } from 'json-canonicalize';

export const APPROVAL_KIND = 'custody.approval';
export const APPROVAL_VERSION = 1;
/** The largest approval message either side accepts, in bytes. */
export const MAX_APPROVAL_MESSAGE_BYTES = 4096;

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
  /** Hex (lowercase, no 0x) of the 32-byte digest the device will sign. */
  readonly digest: string;
  readonly policyVersion: number;
  readonly decision: 'approve' | 'reject';
  /** Present only when the transaction calls a contract (other than an ERC-20 transfer): the function selector, `0x` + 8 hex. */
  readonly call?: string;
}

const FIELDS: readonly (keyof ApprovalMessage)[] = [
  'kind', 'version', 'requestId', 'pool', 'chain', 'asset', 'amount', 'to', 'maxFee', 'digest', 'policyVersion', 'decision',
];

export class ApprovalMessageError extends Error {
  override readonly name = 'ApprovalMessageError';
}

/** The canonical text of an approval message. */
export function canonicalApprovalMessage(message: ApprovalMessage): string {
  return canonicalize(message);
}

/**
 * Parses approval message text and checks it is exactly the canonical form of a well-formed message:
 * every field present with the right type, nothing else, and the bytes equal to their RFC 8785 form.
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
  const keys = Object.keys(record);
  const extra = keys.filter((k) => !(FIELDS as readonly string[]).includes(k) && k !== 'call');
  if (extra.length > 0) throw new ApprovalMessageError(`approval message has unknown field "${extra[0]}"`);
  for (const f of FIELDS) if (!(f in record)) throw new ApprovalMessageError(`approval message lacks "${f}"`);
  if (record.kind !== APPROVAL_KIND) throw new ApprovalMessageError(`approval message kind must be "${APPROVAL_KIND}"`);
  if (record.version !== APPROVAL_VERSION) throw new ApprovalMessageError(`approval message version must be ${APPROVAL_VERSION}`);
  for (const f of ['requestId', 'pool', 'chain', 'asset', 'amount', 'to', 'maxFee', 'digest'] as const) {
    if (typeof record[f] !== 'string') throw new ApprovalMessageError(`approval message "${f}" must be a string`);
  }
  if (!/^[0-9a-f]{64}$/.test(record.digest as string)) {
    throw new ApprovalMessageError('approval message "digest" must be 64 lowercase hex characters');
  }
  if (!Number.isSafeInteger(record.policyVersion) || (record.policyVersion as number) < 1) {
    throw new ApprovalMessageError('approval message "policyVersion" must be a positive integer');
  }
  if (record.decision !== 'approve' && record.decision !== 'reject') {
    throw new ApprovalMessageError('approval message "decision" must be "approve" or "reject"');
  }
  if ('call' in record && (typeof record.call !== 'string' || !/^0x[0-9a-f]{8}$/.test(record.call))) {
    throw new ApprovalMessageError('approval message "call" must be a 4-byte function selector, 0x and 8 lowercase hex characters');
  }
  const message = record as unknown as ApprovalMessage;
  if (canonicalApprovalMessage(message) !== text) {
    throw new ApprovalMessageError('approval message is not in RFC 8785 canonical form');
  }
  return message;
}
