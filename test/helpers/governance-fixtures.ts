/**
 * Governance messages for tests that play a gateway against the simulator at the wire
 * (common/governance-message.ts): what the device holds for a pool (GOVERNANCE_STATE), an honest
 * pool-scoped message on that state, and an admin's signature of it as the protocol carries it.
 */
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalGovernanceMessage, sha256Canonical, type PoolGovernanceMessage, type PoolSummary } from '../../common/governance-message.js';
import { decodeGovernanceStateResult, encodeGovernanceStateCommand, Opcode, STATUS_NAMES, type ApprovalRecord } from '../../common/sim-protocol.js';
import { APPROVERS, signText } from '../hsm-sim/fixtures.js';
import type { RawSimLink } from './raw-sim-link.js';

export interface HeldState {
  readonly summary: PoolSummary;
  readonly sequence: number;
}

/** What the device holds for `poolId`: the summary and sequence a governance message must name. */
export async function readGovernanceState(link: RawSimLink, poolId: string): Promise<HeldState> {
  const a = await link.request(Opcode.GOVERNANCE_STATE, encodeGovernanceStateCommand({ poolId }));
  if (STATUS_NAMES[a.status] !== 'OK') throw new Error(`GOVERNANCE_STATE of ${poolId} answered ${STATUS_NAMES[a.status] ?? a.status}`);
  const r = decodeGovernanceStateResult(a.fields);
  return { summary: JSON.parse(r.summary) as PoolSummary, sequence: r.sequence };
}

/** An honest governance message of `action` and `change` on `state`, stating `after` (by default, `state` unchanged). */
export function poolGovernanceMessage(m: { device: string; poolId: string; action: PoolGovernanceMessage['action']; change?: unknown; state: HeldState; after?: PoolSummary; proposalId?: string }): string {
  const change = m.change ?? { action: m.action };
  return canonicalGovernanceMessage({
    kind: 'custody.governance',
    version: 2,
    proposalId: m.proposalId ?? `p-${m.action}-${sha256Canonical(change).slice(0, 8)}-${m.state.sequence}`,
    device: m.device,
    scope: 'pool',
    pool: m.poolId,
    action: m.action,
    sequence: m.state.sequence,
    before: m.state.summary,
    after: m.after ?? m.state.summary,
    change: sha256Canonical(change),
    decision: 'approve',
  });
}

/** `who` (an approver of test/hsm-sim/fixtures.ts enrolled as admin) signs `text`. */
export function adminApproval(who: string, text: string): ApprovalRecord {
  const admin = APPROVERS.find((a) => a.id === who);
  if (!admin) throw new Error(`no test approver ${who}`);
  return { publicKey: hexToBytes(admin.publicKey), message: text, signature: signText(text, who) };
}
