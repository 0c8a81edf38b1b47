/**
 * The version 2 upgrade of the approval message (SPEC section 5; store migration 8): a request still
 * open whose message is version 1 (it does not carry the transaction, so no approver's client and no
 * device can check it) gets a version 2 message built from its stored transaction, goes back to
 * `pending_approval`, and its earlier votes move to `superseded_approvals`: they approved a text that
 * is no longer accepted anywhere, so they no longer count. Each upgrade is audited. Run once at start,
 * before the gateway serves; a request already upgraded is left alone.
 */
import { createHash } from 'node:crypto';
import { APPROVAL_VERSION } from '../../common/approval-message.js';
import { decodeTransaction } from '../../common/chains/adapters.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import type { WithdrawalState } from '../domain/withdrawal.js';
import { timelockDelayMs } from '../../common/policy/evaluate.js';
import { approvalMessageFor } from '../quorum/approval-message.js';
import { policyOf, requirePool, type ServiceContext } from './context.js';
import { poolOfAddress } from './usage.js';

const OPEN: readonly WithdrawalState[] = ['pending_approval', 'approved', 'timelocked'];

function messageVersion(text: string): unknown {
  try {
    return (JSON.parse(text) as { version?: unknown }).version;
  } catch {
    return null;
  }
}

/** Upgrades every open request with an older message; returns the ids upgraded. */
export async function upgradeApprovalMessages(ctx: ServiceContext): Promise<readonly string[]> {
  const stale = (await ctx.store.read((tx) => tx.withdrawalsInStates(OPEN))).filter((w) => messageVersion(w.approvalMessage) !== APPROVAL_VERSION);
  const upgraded: string[] = [];
  for (const w of stale) {
    await ctx.store.transaction(async (tx) => {
      const current = await tx.getWithdrawal(w.id);
      if (!current || !OPEN.includes(current.state) || messageVersion(current.approvalMessage) === APPROVAL_VERSION) return;
      const pool = await requirePool(tx, current.poolId);
      const key = await tx.getKey(current.poolId, current.chain);
      const policy = await policyOf(tx, pool.id, current.policyVersion);
      const now = ctx.now();
      let decoded;
      try {
        decoded = decodeTransaction(current.chain, current.unsignedTx, key === null ? null : hexToBytes(key.publicKey));
      } catch (error) {
        // Decode what you sign: a stored transaction that cannot be fully decoded is never approved again.
        const reasons = [{ code: 'undecodable_transaction', message: `the stored transaction cannot be decoded: ${error instanceof Error ? error.message : String(error)}` }];
        await tx.updateWithdrawal(current.id, current.state, { state: 'denied', reasons }, now);
        await tx.appendAudit({ type: 'withdrawal.denied', actor: 'system', subject: `withdrawal:${current.id}`, data: { reasons } }, now);
        return;
      }
      const message = approvalMessageFor(
        current,
        {
          call: decoded.call,
          timelockMs: timelockDelayMs(policy, current.asset, current.amount),
          destinationPool: (await poolOfAddress(tx, current.chain, current.to)) ?? undefined,
        },
        'approve',
      );
      const superseded = await tx.supersedeApprovals(current.id, now);
      const reasons = [{ code: 'approval_message_upgraded', message: 'the approval message is now version 2 (it carries the transaction): earlier approvals no longer count; approve again' }];
      await tx.updateWithdrawal(current.id, current.state, { state: 'pending_approval', committedAt: null, notBefore: null, approvalMessage: message, reasons }, now);
      await tx.appendAudit(
        {
          type: 'withdrawal.approval_message_upgraded',
          actor: 'system',
          subject: `withdrawal:${current.id}`,
          data: { from: messageVersion(current.approvalMessage), to: APPROVAL_VERSION, previousState: current.state, supersededApprovals: superseded, messageSha256: sha256Hex(message) },
        },
        now,
      );
      upgraded.push(current.id);
    });
  }
  if (upgraded.length > 0) ctx.log.warn({ upgraded: upgraded.length }, 'open withdrawals got version 2 approval messages; their earlier approvals no longer count');
  return upgraded;
}

function sha256Hex(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

