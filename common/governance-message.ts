/**
 * The governance message: the exact text admins sign to approve a change to a pool (a policy version,
 * unfreezing, a change of approvers) or a proof of control (the pool's keys signing a challenge). RFC 8785 canonical JSON, Ed25519 over its UTF-8 bytes, like the
 * approval message of a withdrawal. Shared by the gateway and the HSM simulator, which checks it
 * before it changes a pool's binding.
 *
 * `change` is the sha256 (hex) of the canonical JSON of the proposed change; `binding` is the sha256 of
 * the canonical JSON of the pool's device binding once applied: `{approvers:[{id,publicKey}], threshold}`.
 */
import { createHash } from 'node:crypto';
import { canonicalize } from 'json-canonicalize';

export const GOVERNANCE_KIND = 'custody.governance';
export const GOVERNANCE_VERSION = 1;
export const MAX_GOVERNANCE_MESSAGE_BYTES = 4096;

export interface GovernanceMessage {
  readonly kind: typeof GOVERNANCE_KIND;
  readonly version: typeof GOVERNANCE_VERSION;
  readonly proposalId: string;
  readonly pool: string;
  readonly action: 'policy' | 'unfreeze' | 'approvers' | 'attest-control';
  readonly change: string;
  readonly binding: string;
  readonly decision: 'approve' | 'reject';
}

export interface Binding {
  readonly approvers: readonly { readonly id: string; readonly publicKey: string }[];
  readonly threshold: number;
}

export class GovernanceMessageError extends Error {
  override readonly name = 'GovernanceMessageError';
}

export function sha256Canonical(value: unknown): string {
  return createHash('sha256').update(canonicalize(value), 'utf8').digest('hex');
}

/** The canonical form hashed into `binding`: approvers sorted by public key, so order does not matter. */
export function bindingHash(binding: Binding): string {
  const approvers = [...binding.approvers].map((a) => ({ id: a.id, publicKey: a.publicKey.toLowerCase() })).sort((a, b) => (a.publicKey < b.publicKey ? -1 : 1));
  return sha256Canonical({ approvers, threshold: binding.threshold });
}

export function canonicalGovernanceMessage(message: GovernanceMessage): string {
  return canonicalize(message);
}

const FIELDS = ['kind', 'version', 'proposalId', 'pool', 'action', 'change', 'binding', 'decision'] as const;

export function parseGovernanceMessage(text: string): GovernanceMessage {
  if (Buffer.byteLength(text, 'utf8') > MAX_GOVERNANCE_MESSAGE_BYTES) throw new GovernanceMessageError('governance message too long');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new GovernanceMessageError('governance message is not JSON');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GovernanceMessageError('governance message is not an object');
  const r = value as Record<string, unknown>;
  const extra = Object.keys(r).find((k) => !(FIELDS as readonly string[]).includes(k));
  if (extra) throw new GovernanceMessageError(`governance message has unknown field "${extra}"`);
  if (r.kind !== GOVERNANCE_KIND || r.version !== GOVERNANCE_VERSION) throw new GovernanceMessageError('not a custody.governance version 1 message');
  for (const f of ['proposalId', 'pool', 'change', 'binding'] as const) if (typeof r[f] !== 'string') throw new GovernanceMessageError(`governance message "${f}" must be a string`);
  if (!['policy', 'unfreeze', 'approvers', 'attest-control'].includes(r.action as string)) throw new GovernanceMessageError('governance message "action" is unknown');
  if (r.decision !== 'approve' && r.decision !== 'reject') throw new GovernanceMessageError('governance message "decision" must be approve or reject');
  const message = r as unknown as GovernanceMessage;
  if (canonicalGovernanceMessage(message) !== text) throw new GovernanceMessageError('governance message is not in RFC 8785 canonical form');
  return message;
}
