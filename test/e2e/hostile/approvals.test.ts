/**
 * A compromised gateway against the real simulator, the approvals themselves (SPEC rules 2 and 4,
 * section 5): it sends a transaction the device decodes fine, with approvals it made up, collected
 * elsewhere or bent: a version 1 message (no transaction in it), a key not enrolled for the pool, one
 * approver counted twice, a rejection, a forged signature, approvals of two requests, another pool's.
 * Each must be refused with QUORUM_REFUSED and no signature; the honest set still signs after them.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { canonicalize } from 'json-canonicalize';
import { bytesToHex } from '@noble/hashes/utils.js';
import { canonicalApprovalMessage, withDecision } from '../../../common/approval-message.js';
import { Status, type ApprovalRecord } from '../../../common/sim-protocol.js';
import { approval, ethereumTx, messageFor } from '../../hsm-sim/fixtures.js';
import { expectRefused, expectSigned, outsiderApproval, startDeviceUnderAttack, type DeviceUnderAttack } from './device-under-attack.js';

let device: DeviceUnderAttack;
beforeAll(async () => {
  device = await startDeviceUnderAttack();
});
afterAll(async () => {
  await device?.stop();
});

const tx = ethereumTx({ nonce: 9n });
const m = messageFor(tx);
const sign = (approvals: readonly ApprovalRecord[], over: { handle?: string; poolId?: string } = {}) =>
  device.link.sign({ handle: over.handle ?? device.poolA.eth.handle, poolId: over.poolId ?? 'pool-a', unsignedTx: tx.unsignedTx, approvals });

describe('messages the device does not accept', () => {
  it('when alice and bob signed a version 1 message of this transaction (its digest, no unsignedTx), then QUORUM_REFUSED', async () => {
    // Version 1's fields: what the transaction does and its digest, but not the transaction.
    const v1 = canonicalize({ kind: m.kind, version: 1, requestId: m.requestId, pool: m.pool, chain: m.chain, asset: m.asset, amount: m.amount, to: m.to, maxFee: m.maxFee, digest: m.digest, policyVersion: m.policyVersion, decision: m.decision });
    expect(v1).not.toContain('unsignedTx');
    expectRefused(await sign([approval('alice', v1), approval('bob', v1)]), Status.QUORUM_REFUSED, /version must be 2 \(got 1\)/);
  });

  it('when the message says version 1 but carries the transaction, or is not canonical, then QUORUM_REFUSED', async () => {
    const relabelled = canonicalize({ ...m, version: 1 });
    expectRefused(await sign([approval('alice', relabelled), approval('bob', relabelled)]), Status.QUORUM_REFUSED, /version must be 2/);
    const pretty = JSON.stringify(m, null, 2);
    expectRefused(await sign([approval('alice', pretty), approval('bob', pretty)]), Status.QUORUM_REFUSED, /not in RFC 8785 canonical form/);
  });
});

describe('approvers the device does not count', () => {
  it('when one of the two approvals is by a key nobody enrolled (mallory, with her own valid signature), then QUORUM_REFUSED', async () => {
    expectRefused(await sign([approval('alice', m), outsiderApproval('mallory', m)]), Status.QUORUM_REFUSED, /approval 2: the key is not an enrolled approver of pool pool-a/);
  });

  it('when one is by an approver enrolled only for another pool (dave, pool C), then QUORUM_REFUSED', async () => {
    expectRefused(await sign([approval('alice', m), outsiderApproval('dave', m)]), Status.QUORUM_REFUSED, /approval 2: the key is not an enrolled approver of pool pool-a/);
  });

  it('when alice\'s one approval is sent twice (the same bytes), or alice signs twice under two requests, then QUORUM_REFUSED', async () => {
    const once = approval('alice', m);
    expectRefused(await sign([once, once]), Status.QUORUM_REFUSED, /approval 2: alice is counted already \(one approval per approver\)/);
    expectRefused(await sign([once, approval('alice', { ...m, requestId: '00000000-0000-4000-8000-000000000001' })]), Status.QUORUM_REFUSED, /approval 2: names another request than approval 1/);
  });

  it('when bob\'s message is his rejection of this request (decision "reject"), alone or beside alice\'s approval, then QUORUM_REFUSED', async () => {
    const rejection = withDecision(canonicalApprovalMessage(m), 'reject');
    expectRefused(await sign([approval('alice', m), approval('bob', rejection)]), Status.QUORUM_REFUSED, /approval 2: decision is "reject", not "approve"/);
    expectRefused(await sign([approval('alice', rejection), approval('bob', rejection)]), Status.QUORUM_REFUSED, /decision is "reject"/);
  });

  it('when bob\'s approval carries alice\'s signature, or a signature over another text, then QUORUM_REFUSED', async () => {
    expectRefused(await sign([approval('alice', m), approval('bob', m, 'alice')]), Status.QUORUM_REFUSED, /approval 2: the signature does not verify with bob's key/);
    const other = approval('bob', { ...m, policyVersion: 2 });
    expectRefused(await sign([approval('alice', m), { ...approval('bob', m), signature: other.signature }]), Status.QUORUM_REFUSED, /approval 2: the signature does not verify with bob's key/);
  });

  it('when only one approval comes, or none, then QUORUM_REFUSED naming the threshold', async () => {
    expectRefused(await sign([approval('alice', m)]), Status.QUORUM_REFUSED, /1 valid approvals, pool pool-a needs at least 2/);
    expectRefused(await sign([]), Status.QUORUM_REFUSED, /0 valid approvals/);
  });

  it('when pool A\'s approvals are sent with pool B\'s key, under either pool\'s name, then QUORUM_REFUSED', async () => {
    const poolA = [approval('bob', m), approval('carol', m)];
    expectRefused(await sign(poolA, { handle: device.poolB.eth.handle, poolId: 'pool-b' }), Status.QUORUM_REFUSED, /names pool pool-a, not pool-b/);
    expectRefused(await sign(poolA, { handle: device.poolB.eth.handle }), Status.QUORUM_REFUSED, /belongs to pool pool-b, not pool-a/);
  });
});

describe('the positive control', () => {
  it('when the honest set signs after all of that, then the device signs this transaction (nothing refused changed the binding)', async () => {
    const result = expectSigned(await sign([approval('carol', m), approval('alice', m)]));
    expect(bytesToHex(result.signatures[0] as Uint8Array)).toMatch(/^[0-9a-f]{128}$/);
  });
});
