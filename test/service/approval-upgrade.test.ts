/**
 * The version 2 upgrade of approval messages (SPEC section 5, store migration 8): requests still open
 * with a version 1 message get a version 2 message carrying their transaction; their earlier votes
 * are kept in superseded_approvals and no longer count; the request is then approved again and signed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { Transaction } from 'ethers';
import { canonicalize } from 'json-canonicalize';
import { parseApprovalMessage } from '../../common/approval-message.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { SigningDevice } from '../../src/devices/signing-device.js';
import type { ServiceContext } from '../../src/service/context.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import { upgradeApprovalMessages } from '../../src/service/upgrade-approval-messages.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { servicePool, submitEth, voteAs } from '../helpers/service-pool.js';
import { ALLOWLISTED, APPROVER_SECRETS } from '../helpers/gateway-stack.js';

let sim: SimProcess;
let device: SigningDevice;

beforeAll(async () => {
  sim = await startSim();
  device = createSimDevice({ url: sim.url, pin: sim.pin });
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

/** What the gateway published before the upgrade: the fields without the transaction. */
function versionOne(w: Withdrawal): string {
  return canonicalize({
    kind: 'custody.approval', version: 1, requestId: w.id, pool: w.poolId, chain: w.chain, asset: w.asset, amount: w.amount.toString(), to: w.to,
    maxFee: w.maxFee.toString(), digest: w.digest, policyVersion: w.policyVersion, decision: 'approve',
  });
}

/** Rewinds a request to how a gateway before the upgrade left it: a version 1 message and alice's vote on it. */
async function asBeforeTheUpgrade(ctx: ServiceContext, w: Withdrawal): Promise<void> {
  const old = versionOne(w);
  await ctx.store.transaction(async (tx) => {
    await tx.updateWithdrawal(w.id, w.state, { state: w.state, approvalMessage: old }, 1);
    const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(old), hexToBytes(APPROVER_SECRETS.alice as string)));
    await tx.insertApproval({ withdrawalId: w.id, approverId: 'alice', decision: 'approve', signature, message: old, createdAt: 1 });
  });
}

describe('approval message upgrade', () => {
  it('when a pending request has a version 1 message, then it gets a version 2 message with its transaction, the old vote no longer counts, and two new votes sign it', async () => {
    const ctx = await servicePool(device, 'upgrade-a', { quorum: [{ approvals: 2 }], assets: { ETH: {} } }, Date.now);
    const w = await submitEth(ctx, 'upgrade-a', 0, 1000n);
    await asBeforeTheUpgrade(ctx, w);

    expect(await upgradeApprovalMessages(ctx)).toEqual([w.id]);
    const upgraded = (await ctx.store.read((tx) => tx.getWithdrawal(w.id))) as Withdrawal;
    const message = parseApprovalMessage(upgraded.approvalMessage);
    expect(message).toMatchObject({ version: 2, unsignedTx: w.unsignedTx, requestId: w.id, timelock: 'none' });
    expect(upgraded.state).toBe('pending_approval');
    expect(upgraded.reasons.map((r) => r.code)).toEqual(['approval_message_upgraded']);
    expect(await ctx.store.read((tx) => tx.approvalsOf(w.id))).toEqual([]);
    const audit = await ctx.store.auditAfter(0, 100);
    expect(audit.find((e) => e.type === 'withdrawal.approval_message_upgraded')?.data).toMatchObject({ from: 1, to: 2, supersededApprovals: 1 });
    // A second start finds nothing to upgrade.
    expect(await upgradeApprovalMessages(ctx)).toEqual([]);

    // alice's vote on the old text is gone: one new vote is not enough, two are.
    expect((await voteAs(ctx, upgraded, 'alice')).state).toBe('pending_approval');
    const signed = await voteAs(ctx, upgraded, 'bob');
    expect(signed.state).toBe('signed');
    expect(Transaction.from(signed.signedTx as string).to).toBe(ALLOWLISTED);
    expect((await ctx.store.verifyAudit()).ok).toBe(true);
  });

  it('when an approved request held by a frozen pool has a version 1 message, then it goes back to pending approval and its amount no longer counts', async () => {
    const ctx = await servicePool(device, 'upgrade-b', { quorum: [{ approvals: 2 }], assets: { ETH: { limits: [{ window: '1h', max: '5000' }] } } }, Date.now);
    const w = await submitEth(ctx, 'upgrade-b', 0, 4000n);
    await voteAs(ctx, w, 'alice');
    await ctx.store.transaction((tx) => tx.setPoolStatus('upgrade-b', 'frozen'));
    const approved = await voteAs(ctx, w, 'bob');
    expect(approved.state).toBe('approved');
    expect(await ctx.store.read((tx) => tx.committedSince('upgrade-b', 'ETH', 0))).toBe(4000n);
    await ctx.store.transaction((tx) => tx.updateWithdrawal(w.id, 'approved', { state: 'approved', approvalMessage: versionOne(w) }, 1));

    expect(await upgradeApprovalMessages(ctx)).toEqual([w.id]);
    const upgraded = (await ctx.store.read((tx) => tx.getWithdrawal(w.id))) as Withdrawal;
    expect(upgraded).toMatchObject({ state: 'pending_approval', committedAt: null, notBefore: null });
    expect(await ctx.store.read((tx) => tx.committedSince('upgrade-b', 'ETH', 0))).toBe(0n);
    expect(await ctx.store.read((tx) => tx.approvalsOf(w.id))).toEqual([]);
  });
});
