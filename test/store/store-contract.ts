/**
 * The behaviour every Store shows, whatever holds the data (src/store/store.ts): the core rules'
 * constraints (key conflicts, sign-once, claims, idempotency, duplicate votes), compare-and-set,
 * rollback together with the audit entry, committed usage sums, serialized transactions, the audit
 * chain, and amounts near 2^256 kept exactly. sqlite-contract.test.ts and postgres-store.test.ts run
 * it; the error texts are pinned so both stores say the same thing.
 */
import { poolOutput } from '../../common/chains/bitcoin/address.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { afterEach, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { MAX_UINT256 } from '../../common/amount.js';
import type { ChainId } from '../../common/chain-id.js';
import type { PoolKey } from '../../src/domain/pool.js';
import type { ControlProof, Proposal } from '../../src/domain/proposal.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import type { Store } from '../../src/store/store.js';

export const SEPOLIA = 'eip155:11155111' as ChainId;
export const BITCOIN_TESTNET = 'bip122:000000000933ea01ad0ee984209779ba' as ChainId;

/** What a contract run gets from opening a store: a fresh, empty store (and whatever else the runner keeps). */
export interface OpenedStore {
  readonly store: Store;
}

export const key = (over: Partial<PoolKey> = {}): PoolKey => ({
  poolId: 'client-a', chain: SEPOLIA, curve: 'secp256k1', publicKey: '02' + 'aa'.repeat(32), address: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
  device: 'sim-1', handle: 'k_1', ceremonyId: 'c1', createdAt: 1, ...over,
});

let n = 0;
/** A pending withdrawal of pool client-a with a fresh id and nonce, amount above 2^255. */
export function withdrawal(over: Partial<Withdrawal> = {}): Withdrawal {
  n += 1;
  return {
    id: `00000000-0000-4000-8000-${String(n).padStart(12, '0')}`, poolId: 'client-a', chain: SEPOLIA, asset: 'ETH',
    amount: (1n << 255n) + BigInt(n), to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', requesterId: 'p1', idempotencyKey: null,
    signOnceKey: `nonce:${n}`, contractCall: null, unsignedTx: '0x02', digest: 'ab'.repeat(32), maxFee: 630000000000000n, policyVersion: 1, requiredApprovals: 2,
    state: 'pending_approval', reasons: [], approvalMessage: '{}', signedTx: null, txHash: null, createdAt: 1000 + n, updatedAt: 1000 + n,
    committedAt: null, notBefore: null, expiresAt: null, ...over,
  };
}

/** A requester p1, an approver alice, pools client-a and client-b, and client-a's Sepolia key. */
export async function seed(store: Store): Promise<void> {
  await store.transaction(async (tx) => {
    await tx.insertPrincipal({ id: 'p1', name: 'ops', role: 'requester', tokenHash: 'h1', createdAt: 1 });
    await tx.insertApprover({ id: 'alice', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' });
    await tx.insertPool({ id: 'client-a', owner: 'A', chains: [SEPOLIA], status: 'active', approvers: ['alice'], policyVersion: 1, createdAt: 1 }, { quorum: [{ approvals: 1 }], assets: {} });
    await tx.insertPool({ id: 'client-b', owner: 'B', chains: [SEPOLIA], status: 'active', approvers: ['alice'], policyVersion: 1, createdAt: 1 }, { quorum: [{ approvals: 1 }], assets: {} });
    await tx.insertKey(key());
  });
}

export function describeStoreContract(name: string, openStore: () => Promise<OpenedStore>): void {
  describe(`${name} (store contract)`, () => {
    const open: Store[] = [];
    const fresh = async (): Promise<Store> => {
      const { store } = await openStore();
      open.push(store);
      return store;
    };
    afterEach(async () => {
      for (const s of open.splice(0)) await s.close();
    });

    it('when records are written, then they come back exactly, amounts near 2^256 and times in ms included', async () => {
      const store = await fresh();
      await seed(store);
      const now = 1_767_225_600_123;
      const pending = withdrawal({
        amount: MAX_UINT256, maxFee: MAX_UINT256 - 1n, idempotencyKey: 'k-1', reasons: [{ code: 'within_limits', message: 'fits every limit' }],
        contractCall: { contract: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', selector: '0xa9059cbb' }, createdAt: now, updatedAt: now, expiresAt: now + 86_400_000,
      });
      const signed = withdrawal({ amount: 0n, maxFee: 0n, state: 'signed', signedTx: '0x02f8', txHash: '0x' + 'cd'.repeat(32), committedAt: now, notBefore: now + 1 });
      await store.transaction(async (tx) => {
        await tx.insertWithdrawal(pending);
        await tx.insertWithdrawal(signed);
        await tx.setSetting('device-id', 'sim-1');
        await tx.setSetting('device-id', 'sim-2');
      });
      const read = await store.transaction(async (tx) => ({
        pending: await tx.getWithdrawal(pending.id),
        signed: await tx.getWithdrawal(signed.id),
        byKey: await tx.withdrawalByIdempotencyKey('p1', 'k-1'),
        unknown: await tx.getWithdrawal('no-such-id'),
        pool: await tx.getPool('client-a'),
        pools: (await tx.listPools()).map((p) => p.id),
        policy: await tx.getPolicy('client-a', 1),
        principal: await tx.principalByTokenHash('h1'),
        principalById: await tx.principalById('p1'),
        principals: await tx.listPrincipals(),
        approver: await tx.getApprover('alice'),
        approvers: await tx.listApprovers(),
        key: await tx.getKey('client-a', SEPOLIA),
        keys: await tx.allKeys(),
        setting: await tx.getSetting('device-id'),
        noSetting: await tx.getSetting('nothing'),
      }));
      expect(read).toEqual({
        pending,
        signed,
        byKey: pending,
        unknown: null,
        pool: { id: 'client-a', owner: 'A', chains: [SEPOLIA], status: 'active', approvers: ['alice'], policyVersion: 1, createdAt: 1 },
        pools: ['client-a', 'client-b'],
        policy: { quorum: [{ approvals: 1 }], assets: {} },
        principal: { id: 'p1', name: 'ops', role: 'requester', tokenHash: 'h1', createdAt: 1 },
        principalById: { id: 'p1', name: 'ops', role: 'requester', tokenHash: 'h1', createdAt: 1 },
        principals: [{ id: 'p1', name: 'ops', role: 'requester', tokenHash: 'h1', createdAt: 1 }],
        approver: { id: 'alice', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' },
        approvers: [{ id: 'alice', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' }],
        key: key(),
        keys: [key()],
        setting: 'sim-2',
        noSetting: null,
      });
    });

    it('when pools, policy versions and approvers change, then changes show and duplicates are refused', async () => {
      const store = await fresh();
      await seed(store);
      const policy2 = { quorum: [{ approvals: 2 }], assets: { ETH: { maxPerTx: '1000' } } };
      await store.transaction(async (tx) => {
        await tx.insertPolicyVersion('client-a', 2, policy2);
        await tx.setPoolPolicyVersion('client-a', 2);
        await tx.setPoolApprovers('client-a', ['alice', 'bob']);
        await tx.setPoolStatus('client-a', 'frozen');
      });
      const read = await store.transaction(async (tx) => ({
        pool: await tx.getPool('client-a'),
        latest: await tx.latestPolicyVersion('client-a'),
        none: await tx.latestPolicyVersion('no-such-pool'),
        policy: await tx.getPolicy('client-a', 2),
      }));
      expect(read).toEqual({ pool: expect.objectContaining({ status: 'frozen', approvers: ['alice', 'bob'], policyVersion: 2 }), latest: 2, none: 0, policy: policy2 });
      await expect(store.transaction((tx) => tx.insertPolicyVersion('client-a', 2, policy2))).rejects.toMatchObject({
        code: 'policy_version_exists', message: 'policy version 2 of pool "client-a" exists and is immutable',
      });
      await expect(
        store.transaction((tx) => tx.insertPool({ id: 'client-a', owner: 'X', chains: [], status: 'active', approvers: [], policyVersion: 1, createdAt: 2 }, { quorum: [], assets: {} })),
      ).rejects.toMatchObject({ code: 'pool_exists', message: 'pool "client-a" already exists' });
      await expect(store.transaction((tx) => tx.insertApprover({ id: 'alice', publicKey: 'ff'.repeat(32) }))).rejects.toMatchObject({
        code: 'approver_exists', message: 'approver "alice" is already enrolled',
      });
      await expect(store.transaction((tx) => tx.insertApprover({ id: 'bob', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' }))).rejects.toMatchObject({
        code: 'approver_key_conflict', message: 'approver "alice" already uses this public key',
      });
    });

    it('when a key would be shared or a pool would get a second key on a chain, then key_conflict (rule 1)', async () => {
      const store = await fresh();
      await seed(store);
      const insert = (k: PoolKey) => store.transaction((tx) => tx.insertKey(k));
      await expect(insert(key({ publicKey: '02' + 'bb'.repeat(32), address: '0x' + '11'.repeat(20), handle: 'k_2' }))).rejects.toMatchObject({
        code: 'key_conflict',
        message: `pool "client-a" already has a key on ${SEPOLIA}: a key belongs to exactly one pool and a pool has one key per chain`,
      });
      await expect(insert(key({ poolId: 'client-b', address: '0x' + '11'.repeat(20), handle: 'k_2' }))).rejects.toMatchObject({
        code: 'key_conflict',
        message: 'the key (public key, address or device handle) already belongs to pool "client-a": a key belongs to exactly one pool and a pool has one key per chain',
      });
      await expect(insert(key({ poolId: 'client-b', publicKey: '02' + 'bb'.repeat(32), address: '0x8BA1F109551BD432803012645AC136DDD64DBA72', handle: 'k_2' }))).rejects.toMatchObject({ code: 'key_conflict' });
      await expect(insert(key({ poolId: 'client-b', publicKey: '02' + 'bb'.repeat(32), address: '0x' + '11'.repeat(20) }))).rejects.toMatchObject({ code: 'key_conflict' });
      await insert(key({ poolId: 'client-b', publicKey: '02' + 'bb'.repeat(32), address: '0x' + '11'.repeat(20), handle: 'k_2' }));
      expect((await store.transaction((tx) => tx.keysOfPool('client-b'))).length).toBe(1);
      expect((await store.transaction((tx) => tx.allKeys())).map((k) => k.poolId)).toEqual(['client-a', 'client-b']);
    });

    it('when a key is looked up by its address, then its pool comes back, and an unknown address gives null', async () => {
      const store = await fresh();
      await seed(store);
      const k = key();
      expect((await store.read((tx) => tx.keyByAddress(k.address)))?.poolId).toBe('client-a');
      expect(await store.read((tx) => tx.keyByAddress('0x' + '22'.repeat(20)))).toBeNull();
      // A Bitcoin key controls both its P2WPKH and its P2TR address: either finds the pool.
      const btc = 'bip122:000000000933ea01ad0ee984209779ba' as ChainId;
      const publicKey = bytesToHex(secp256k1.getPublicKey(new Uint8Array(32).fill(5), true));
      const [p2wpkh, p2tr] = (['p2wpkh', 'p2tr'] as const).map((t) => poolOutput(hexToBytes(publicKey), t, 'testnet').address);
      await store.transaction((tx) => tx.insertKey(key({ poolId: 'client-b', chain: btc, publicKey, address: p2wpkh as string, handle: 'k_btc' })));
      expect((await store.read((tx) => tx.keyByAddress(p2tr as string)))?.poolId).toBe('client-b');
      expect((await store.read((tx) => tx.keyByAddress(p2wpkh as string)))?.address).toBe(p2wpkh);
    });

    it('when a second live request claims the same nonce, then sign_once; once the first failed, the nonce is free again (rule 5)', async () => {
      const store = await fresh();
      await seed(store);
      const first = withdrawal({ signOnceKey: 'nonce:42' });
      await store.transaction((tx) => tx.insertWithdrawal(first));
      await expect(store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:42' })))).rejects.toMatchObject({
        code: 'sign_once',
        message: `nonce 42 on ${SEPOLIA} is already used by withdrawal ${first.id} of pool client-a; one transaction per nonce is signed`,
        details: { conflictingWithdrawal: first.id },
      });
      await store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:42', poolId: 'client-b' })));
      await store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:42', state: 'failed' })));
      await store.transaction((tx) => tx.updateWithdrawal(first.id, 'pending_approval', { state: 'denied' }, 5));
      await store.transaction((tx) => tx.insertWithdrawal(withdrawal({ signOnceKey: 'nonce:42' })));
    });

    it('when a second live request spends a claimed outpoint, then claim_in_use; once the first is cancelled, the outpoint is free', async () => {
      const store = await fresh();
      await seed(store);
      const utxo = (vout: number) => `utxo:${'ee'.repeat(32)}:${vout}`;
      const first = withdrawal({ chain: BITCOIN_TESTNET, asset: 'BTC', signOnceKey: 'inputs:1' });
      await store.transaction((tx) => tx.insertWithdrawal(first, [utxo(1), utxo(0)]));
      expect(await store.transaction((tx) => tx.claimsOf(first.id))).toEqual([utxo(0), utxo(1)]);
      const second = withdrawal({ chain: BITCOIN_TESTNET, asset: 'BTC', signOnceKey: 'inputs:2' });
      await expect(store.transaction((tx) => tx.insertWithdrawal(second, [utxo(2), utxo(1)]))).rejects.toMatchObject({
        code: 'claim_in_use',
        message: `${utxo(1)} is already being spent by withdrawal ${first.id}; a UTXO is spent by one live request only`,
        details: { conflictingWithdrawal: first.id },
      });
      expect(await store.transaction((tx) => tx.getWithdrawal(second.id))).toBeNull();
      await store.transaction((tx) => tx.insertWithdrawal(withdrawal({ chain: BITCOIN_TESTNET, asset: 'BTC', poolId: 'client-b' }), [utxo(1)]));
      await store.transaction((tx) => tx.updateWithdrawal(first.id, 'pending_approval', { state: 'cancelled' }, 5));
      await store.transaction((tx) => tx.insertWithdrawal(second, [utxo(2), utxo(1)]));
      expect(await store.transaction((tx) => tx.claimsOf(second.id))).toEqual([utxo(1), utxo(2)]);
    });

    it('when an idempotency key or an approver vote repeats, then the store refuses it', async () => {
      const store = await fresh();
      await seed(store);
      const w = withdrawal({ idempotencyKey: 'k1' });
      await store.transaction((tx) => tx.insertWithdrawal(w));
      await expect(store.transaction((tx) => tx.insertWithdrawal(withdrawal({ idempotencyKey: 'k1' })))).rejects.toMatchObject({
        code: 'duplicate_idempotency_key', message: 'Idempotency-Key "k1" was already used by this requester',
      });
      expect((await store.transaction((tx) => tx.withdrawalByIdempotencyKey('p1', 'k1')))?.id).toBe(w.id);
      expect(await store.transaction((tx) => tx.withdrawalByIdempotencyKey('p1', 'k2'))).toBeNull();
      const vote = { withdrawalId: w.id, approverId: 'alice', decision: 'approve' as const, signature: 'ab', message: '{}', createdAt: 1 };
      await store.transaction((tx) => tx.insertApproval(vote));
      await expect(store.transaction((tx) => tx.insertApproval({ ...vote, decision: 'reject' }))).rejects.toMatchObject({
        code: 'duplicate_approval', message: `alice has already voted on withdrawal ${w.id}`,
      });
      expect(await store.transaction((tx) => tx.approvalsOf(w.id))).toEqual([vote]);
    });

    it('when a transition finds the request in another state, then state_changed and nothing changes', async () => {
      const store = await fresh();
      await seed(store);
      const w = withdrawal({ reasons: [{ code: 'r', message: 'kept' }] });
      await store.transaction((tx) => tx.insertWithdrawal(w));
      const approved = await store.transaction((tx) => tx.updateWithdrawal(w.id, 'pending_approval', { state: 'approved', committedAt: 50 }, 50));
      expect(approved).toEqual({ ...w, state: 'approved', committedAt: 50, updatedAt: 50 });
      await expect(store.transaction((tx) => tx.updateWithdrawal(w.id, 'pending_approval', { state: 'cancelled' }, 60))).rejects.toMatchObject({
        code: 'state_changed', message: `withdrawal ${w.id} is no longer "pending_approval" (it is "approved")`,
      });
      await expect(store.transaction((tx) => tx.updateWithdrawal('no-such-id', 'approved', { state: 'signing' }, 60))).rejects.toMatchObject({
        code: 'state_changed', message: 'withdrawal no-such-id is no longer "approved"',
      });
      const signing = await store.transaction((tx) => tx.updateWithdrawal(w.id, 'approved', { state: 'signing', notBefore: null, policyVersion: 2, requiredApprovals: 3 }, 70));
      const signed = await store.transaction((tx) => tx.updateWithdrawal(w.id, 'signing', { state: 'signed', signedTx: '0x02f8', txHash: '0xab' }, 80));
      expect(signing).toMatchObject({ state: 'signing', policyVersion: 2, requiredApprovals: 3, committedAt: 50 });
      expect(signed).toEqual({ ...signing, state: 'signed', signedTx: '0x02f8', txHash: '0xab', updatedAt: 80 });
      expect(await store.transaction((tx) => tx.getWithdrawal(w.id))).toEqual(signed);
    });

    it('when withdrawals are listed, then newest first, filtered and paged; by state, oldest first', async () => {
      const store = await fresh();
      await seed(store);
      const [a, b, c, d] = [
        withdrawal({ createdAt: 10 }), withdrawal({ createdAt: 20, state: 'approved', committedAt: 20 }),
        withdrawal({ createdAt: 30, poolId: 'client-b' }), withdrawal({ createdAt: 40, state: 'denied' }),
      ] as [Withdrawal, Withdrawal, Withdrawal, Withdrawal];
      await store.transaction(async (tx) => {
        for (const w of [c, a, d, b]) await tx.insertWithdrawal(w);
      });
      const ids = (ws: readonly Withdrawal[]) => ws.map((w) => w.id);
      const lists = await store.transaction(async (tx) => ({
        all: ids(await tx.listWithdrawals({ limit: 10 })),
        page: ids(await tx.listWithdrawals({ limit: 2, offset: 1 })),
        pool: ids(await tx.listWithdrawals({ poolId: 'client-a', limit: 10 })),
        poolState: ids(await tx.listWithdrawals({ poolId: 'client-a', state: 'pending_approval', limit: 10 })),
        state: ids(await tx.listWithdrawals({ state: 'denied', limit: 10 })),
        live: ids(await tx.withdrawalsInStates(['pending_approval', 'approved'])),
        none: ids(await tx.withdrawalsInStates([])),
      }));
      expect(lists).toEqual({
        all: ids([d, c, b, a]), page: ids([c, b]), pool: ids([d, b, a]), poolState: ids([a]), state: ids([d]), live: ids([a, b, c]), none: [],
      });
    });

    it('when proposals are voted, applied and proven, then votes count once, the state is compare-and-set and the proofs come back', async () => {
      const store = await fresh();
      await seed(store);
      const proposal: Proposal = {
        id: 'prop-1', poolId: 'client-a', change: { action: 'attest-control', challenge: 'audit 2026-01' },
        binding: { approvers: [{ id: 'alice', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' }], threshold: 1 },
        proposedBy: 'bob', requiredApprovals: 1, state: 'pending', approvalMessage: '{"proposal":"prop-1"}', createdAt: 5, updatedAt: 5, appliedVersion: null, reason: null,
      };
      const older: Proposal = { ...proposal, id: 'prop-0', change: { action: 'unfreeze' }, createdAt: 4, updatedAt: 4 };
      await store.transaction(async (tx) => {
        await tx.insertProposal(older);
        await tx.insertProposal(proposal);
      });
      const vote = { proposalId: 'prop-1', adminId: 'alice', decision: 'approve' as const, signature: 'cd', message: '{}', createdAt: 6 };
      await store.transaction((tx) => tx.insertProposalApproval(vote));
      await expect(store.transaction((tx) => tx.insertProposalApproval(vote))).rejects.toMatchObject({ code: 'duplicate_approval', message: 'alice has already voted on proposal prop-1' });
      const proofs: ControlProof[] = [
        { proposalId: 'prop-1', poolId: 'client-a', chain: SEPOLIA, address: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', format: 'eip191', signature: '0x' + 'ab'.repeat(65), createdAt: 7 },
        { proposalId: 'prop-1', poolId: 'client-a', chain: BITCOIN_TESTNET, address: 'tb1qexample', format: 'bitcoin-message', signature: 'SGVsbG8=', createdAt: 7 },
      ];
      const applied = await store.transaction(async (tx) => {
        for (const p of proofs) await tx.insertControlProof(p);
        return tx.updateProposal('prop-1', 'pending', { state: 'applied' }, 8);
      });
      expect(applied).toEqual({ ...proposal, state: 'applied', updatedAt: 8 });
      await expect(store.transaction((tx) => tx.updateProposal('prop-1', 'pending', { state: 'failed', reason: 'late' }, 9))).rejects.toMatchObject({
        code: 'state_changed', message: 'proposal prop-1 is no longer "pending"',
      });
      const failed = await store.transaction((tx) => tx.updateProposal('prop-0', 'pending', { state: 'failed', reason: 'device refused' }, 9));
      expect(failed).toMatchObject({ state: 'failed', reason: 'device refused', appliedVersion: null });
      const read = await store.transaction(async (tx) => ({
        proposal: await tx.getProposal('prop-1'),
        missing: await tx.getProposal('nope'),
        votes: await tx.proposalApprovalsOf('prop-1'),
        proofs: await tx.controlProofsOf('prop-1'),
        all: (await tx.listProposals({ limit: 10 })).map((p) => p.id),
        pending: await tx.listProposals({ poolId: 'client-a', state: 'pending', limit: 10 }),
        first: (await tx.listProposals({ poolId: 'client-a', limit: 1 })).map((p) => p.id),
      }));
      expect(read).toEqual({ proposal: applied, missing: null, votes: [vote], proofs: [proofs[1], proofs[0]], all: ['prop-1', 'prop-0'], pending: [], first: ['prop-1'] });
    });

    it('when a transaction throws, then its writes and its audit entry are both rolled back (rule 6)', async () => {
      const store = await fresh();
      await seed(store);
      const w = withdrawal();
      await expect(
        store.transaction(async (tx) => {
          await tx.insertWithdrawal(w);
          await tx.appendAudit({ type: 'withdrawal.submitted', actor: 'ops', subject: `withdrawal:${w.id}`, data: {} }, 1);
          throw new Error('device said no');
        }),
      ).rejects.toThrow('device said no');
      expect(await store.transaction((tx) => tx.getWithdrawal(w.id))).toBeNull();
      expect(await store.auditAfter(0, 10)).toEqual([]);
    });

    it('when reads run beside a transaction, then they see only what has committed, and they cannot write', async () => {
      const store = await fresh();
      await seed(store);
      const w = withdrawal();
      let seenInside: Withdrawal | null | undefined;
      let release: () => void = () => undefined;
      const gate = new Promise<void>((r) => (release = r));
      const writing = store.transaction(async (tx) => {
        await tx.insertWithdrawal(w);
        seenInside = await store.read((r) => r.getWithdrawal(w.id));
        await gate;
      });
      await new Promise((r) => setTimeout(r, 50));
      release();
      await writing;
      expect(seenInside).toBeNull();
      expect(await store.read((r) => r.getWithdrawal(w.id))).toEqual(w);
      expect(await store.read((r) => r.principalByTokenHash('h1'))).toMatchObject({ id: 'p1', name: 'ops' });
      // The type offers no writes; a cast cannot get one past the store either.
      const sneak = store.read((r) => (r as unknown as { insertWithdrawal(x: Withdrawal): Promise<void> }).insertWithdrawal(withdrawal()));
      await expect(sneak).rejects.toMatchObject({ name: 'StoreError' });
      expect(await store.read((r) => r.listWithdrawals({ limit: 10 }))).toEqual([w]);
    });

    it('when unreleased amounts are listed, then only approved, time-locked and signing requests of that pool and asset come back', async () => {
      const store = await fresh();
      await seed(store);
      const rows = [
        withdrawal({ state: 'approved', committedAt: 10, amount: 1n }),
        withdrawal({ state: 'timelocked', committedAt: 20, amount: 2n }),
        withdrawal({ state: 'signing', committedAt: 30, amount: 4n }),
        withdrawal({ state: 'signed', committedAt: 40, amount: 8n }),
        withdrawal({ state: 'pending_approval', amount: 16n }),
        withdrawal({ state: 'approved', committedAt: 50, amount: 32n, poolId: 'client-b' }),
      ];
      await store.transaction(async (tx) => {
        for (const r of rows) await tx.insertWithdrawal(r);
      });
      const entries = await store.read((tx) => tx.unreleasedEntries('client-a', 'ETH'));
      expect([...entries].sort((a, b) => a.committedAt - b.committedAt)).toEqual(rows.slice(0, 3).map((r) => ({ amount: r.amount, committedAt: r.committedAt, id: r.id })));
    });

    it('when committed usage is summed, then only committed states inside the window count', async () => {
      const store = await fresh();
      await seed(store);
      const rows = [
        withdrawal({ amount: 5n, state: 'approved', committedAt: 100 }),
        withdrawal({ amount: 7n, state: 'signed', committedAt: 200 }),
        withdrawal({ amount: 11n, state: 'cancelled', committedAt: 300 }),
        withdrawal({ amount: 13n, state: 'pending_approval' }),
        withdrawal({ amount: 17n, state: 'timelocked', committedAt: 50 }),
      ];
      await store.transaction(async (tx) => {
        for (const r of rows) await tx.insertWithdrawal(r);
      });
      expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 0))).toBe(29n);
      expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 100))).toBe(7n);
      expect(await store.transaction((tx) => tx.committedEntriesSince('client-a', 'ETH', 60))).toEqual([{ amount: 5n, committedAt: 100 }, { amount: 7n, committedAt: 200 }]);
      expect(await store.transaction((tx) => tx.committedSince('client-a', 'BTC', 0))).toBe(0n);
    });

    it('when withdrawals enter, move within and leave the committed states, then every window sum equals the sum over the withdrawals themselves (property)', async () => {
      const store = await fresh();
      await seed(store);
      const MIN = 60_000;
      const states = ['pending_approval', 'approved', 'timelocked', 'signing', 'signed', 'failed', 'cancelled', 'expired', 'denied'] as const;
      const live: Withdrawal[] = [];
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.record({
              kind: fc.constantFrom('insert', 'update', 'update'),
              pick: fc.nat(),
              state: fc.constantFrom(...states),
              // Times cluster around a few minute boundaries so that windows often start inside a minute.
              at: fc.oneof(fc.integer({ min: 0, max: 5 * MIN }), fc.constantFrom(MIN - 1, MIN, MIN + 1, 2 * MIN, 3 * MIN - 1)),
              amount: fc.oneof(fc.bigInt({ min: 1n, max: 10n ** 18n }), fc.constant(MAX_UINT256)),
              asset: fc.constantFrom('ETH', 'erc20:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed'),
            }),
            { minLength: 1, maxLength: 12 },
          ),
          fc.array(fc.integer({ min: -1, max: 6 * MIN }), { minLength: 1, maxLength: 6 }),
          async (ops, sinces) => {
            await store.transaction(async (tx) => {
              for (const op of ops) {
                const committedAt = ['approved', 'timelocked', 'signing', 'signed', 'failed', 'cancelled', 'expired'].includes(op.state) ? op.at : null;
                if (op.kind === 'insert' || live.length === 0) {
                  // Unique nonces keep sign-once out of the way; the states decide the usage.
                  const w = withdrawal({ amount: op.amount, asset: op.asset, state: op.state, committedAt, signOnceKey: `nonce:p${live.length}:${op.pick}` });
                  await tx.insertWithdrawal(w);
                  live.push(w);
                } else {
                  const i = op.pick % live.length;
                  const w = live[i] as Withdrawal;
                  live[i] = await tx.updateWithdrawal(w.id, w.state, { state: op.state, committedAt }, 1);
                }
              }
            });
            for (const since of sinces) {
              for (const asset of ['ETH', 'erc20:0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed']) {
                const expected = live
                  .filter((w) => w.asset === asset && w.committedAt !== null && w.committedAt > since && ['approved', 'timelocked', 'signing', 'signed'].includes(w.state))
                  .reduce((sum, w) => sum + w.amount, 0n);
                expect(await store.transaction((tx) => tx.committedSince('client-a', asset, since))).toBe(expected);
                expect(await store.read((r) => r.committedSince('client-a', asset, since))).toBe(expected);
              }
            }
          },
        ),
        { numRuns: 25 },
      );
    });

    it('when committed amounts near 2^256 are summed, then the total is exact beyond 2^256', async () => {
      const store = await fresh();
      await seed(store);
      await store.transaction(async (tx) => {
        await tx.insertWithdrawal(withdrawal({ amount: MAX_UINT256, state: 'approved', committedAt: 10 }));
        await tx.insertWithdrawal(withdrawal({ amount: MAX_UINT256 - 1n, state: 'signing', committedAt: 20 }));
      });
      expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 0))).toBe(2n * MAX_UINT256 - 1n);
      expect(await store.transaction((tx) => tx.committedEntriesSince('client-a', 'ETH', 0))).toEqual([
        { amount: MAX_UINT256, committedAt: 10 },
        { amount: MAX_UINT256 - 1n, committedAt: 20 },
      ]);
    });

    it('when 50 transactions race to spend one limit, then they are serialized and only those that fit pass', async () => {
      const store = await fresh();
      await seed(store);
      const LIMIT = 10n;
      const attempts = Array.from({ length: 50 }, () =>
        store.transaction(async (tx) => {
          const used = await tx.committedSince('client-a', 'ETH', 0);
          await new Promise((r) => setTimeout(r, 1));
          if (used + 1n > LIMIT) return false;
          await tx.insertWithdrawal(withdrawal({ amount: 1n, state: 'approved', committedAt: 10 }));
          return true;
        }),
      );
      const results = await Promise.all(attempts);
      expect(results.filter(Boolean).length).toBe(10);
      expect(await store.transaction((tx) => tx.committedSince('client-a', 'ETH', 0))).toBe(LIMIT);
    });

    it('when audit entries are appended, then they chain, page by sequence and verify', async () => {
      const store = await fresh();
      const entries = await store.transaction(async (tx) => [
        await tx.appendAudit({ type: 'a', actor: 'x', subject: 's', data: { amount: MAX_UINT256.toString(), nested: { z: 1, a: [true, null] } } }, 1),
        await tx.appendAudit({ type: 'b', actor: 'x', subject: 's', data: {} }, 2),
      ]);
      const third = await store.transaction((tx) => tx.appendAudit({ type: 'c', actor: 'y', subject: 't', data: { note: 'ünïcødé ✓' } }, 3));
      expect(entries[0]).toMatchObject({ seq: 1, at: '1970-01-01T00:00:00.001Z', prevHash: '0'.repeat(64) });
      expect(entries[1]!.prevHash).toBe(entries[0]!.hash);
      expect(third).toMatchObject({ seq: 3, prevHash: entries[1]!.hash });
      expect(await store.auditAfter(0, 10)).toEqual([...entries, third]);
      expect((await store.auditAfter(1, 1)).map((e) => e.type)).toEqual(['b']);
      expect(await store.verifyAudit()).toEqual({ ok: true, entries: 3, headHash: third.hash });
    });

    it('when the store is closed, then it no longer answers and refuses transactions', async () => {
      const store = await fresh();
      expect(await store.ping()).toBe(true);
      expect(await store.verifyAudit()).toEqual({ ok: true, entries: 0, headHash: null });
      await store.close();
      await store.close();
      expect(await store.ping()).toBe(false);
      await expect(store.transaction((tx) => tx.listPools())).rejects.toMatchObject({ name: 'StoreError', code: 'store_closed' });
      await expect(store.read((r) => r.listPools())).rejects.toMatchObject({ name: 'StoreError', code: 'store_closed' });
    });
  });
}
