/**
 * Fail closed (SPEC rule 6): when the audit entry or the store write around a signature cannot be
 * made, no signature is released. A real SQLite store wrapped to refuse chosen audit entries, and the
 * real simulator wrapped to count its signing calls. Also: two releases of one request at once make one
 * device call.
 */
import { openPolicy } from '../helpers/open-policy.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { Transaction } from 'ethers';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { createDeviceSet } from '../../src/devices/device-set.js';
import type { SigningDevice } from '../../src/devices/signing-device.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store, StoreTx } from '../../src/store/store.js';
import { StoreError } from '../../common/errors.js';
import { addressForKey } from '../../src/chains/addresses.js';
import { parseChainId, type ChainId } from '../../common/chain-id.js';
import type { ServiceContext } from '../../src/service/context.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import { submitWithdrawal } from '../../src/service/submit-withdrawal.js';
import { approveWithdrawal } from '../../src/service/approve-withdrawal.js';
import { runDueWork } from '../../src/service/due-work.js';
import { releaseSignature } from '../../src/service/release-signature.js';
import { withDecision } from '../../common/approval-message.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { ALLOWLISTED, APPROVER_SECRETS } from '../helpers/gateway-stack.js';

const CHAIN = 'eip155:11155111' as ChainId;
let sim: SimProcess;
let inner: SigningDevice;
let signCalls = 0;
let refuse: string | null = null;

/** The store, except that appending an audit entry of type `refuse` fails as a full disk would. */
function refusingStore(store: Store): Store {
  return {
    ...store,
    transaction: (fn) =>
      store.transaction((tx) => {
        const wrapped: StoreTx = {
          ...tx,
          appendAudit: (input, now) => (input.type === refuse ? Promise.reject(new StoreError('disk_full', 'the audit entry could not be written')) : tx.appendAudit(input, now)),
        };
        return fn(wrapped);
      }),
  };
}

beforeAll(async () => {
  sim = await startSim();
  inner = createSimDevice({ url: sim.url, pin: sim.pin });
});

afterAll(async () => {
  await inner?.close();
  await sim?.stop();
});

async function setUp(poolId: string): Promise<{ ctx: ServiceContext; store: Store }> {
  const counting: SigningDevice = { ...inner, sign: (request) => ((signCalls += 1), inner.sign(request)) };
  const store = openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'fail-closed-')), 'custody.db') });
  const keys = ['alice', 'bob'].map((id) => ({ id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[id] as string))) }));
  await inner.enrollPool(poolId, keys, 2, openPolicy(2));
  const key = await inner.generateKey(poolId, CHAIN, 'secp256k1');
  await store.transaction(async (tx) => {
    await tx.insertPrincipal({ id: 'p-ops', name: 'ops', role: 'requester', tokenHash: 'h-ops', createdAt: 0 });
    for (const k of keys) await tx.insertApprover(k);
    await tx.insertPool({ id: poolId, owner: 'fc', chains: [CHAIN], status: 'active', approvers: ['alice', 'bob'], policyVersion: 1, createdAt: 0 }, { quorum: [{ approvals: 2 }], assets: { ETH: {} } });
    await tx.insertKey({ poolId, chain: CHAIN, curve: 'secp256k1', publicKey: key.publicKey, address: addressForKey(parseChainId(CHAIN), key.publicKey), device: 'sim-test', handle: key.handle, ceremonyId: 'fc', createdAt: 0 });
  });
  const ctx: ServiceContext = { store: refusingStore(store), devices: createDeviceSet({ sim: () => counting }), now: Date.now, log: pino({ level: 'silent' }) };
  return { ctx, store };
}

function approve(ctx: ServiceContext, withdrawal: Withdrawal, who: string): Promise<Withdrawal> {
  const text = withDecision(withdrawal.approvalMessage, 'approve');
  const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(APPROVER_SECRETS[who] as string)));
  return approveWithdrawal(ctx, { id: `p-${who}`, name: who, role: 'approver', tokenHash: `h-${who}`, createdAt: 0 }, withdrawal.id, { decision: 'approve', signature });
}

async function approvedByBoth(ctx: ServiceContext, poolId: string): Promise<string> {
  const ops = { id: 'p-ops', name: 'ops', role: 'requester' as const, tokenHash: 'h-ops', createdAt: 0 };
  const { withdrawal } = await submitWithdrawal(ctx, ops, { pool: poolId, chain: CHAIN, asset: 'ETH', amount: '1000', to: ALLOWLISTED, nonce: '0', gasLimit: '21000', maxFeePerGas: '10', maxPriorityFeePerGas: '1' }, null);
  for (const who of ['alice', 'bob']) await approve(ctx, withdrawal, who);
  return withdrawal.id;
}

describe('fail closed', () => {
  it('when the audit entry that claims the request for signing cannot be written, then the device is never asked and the final vote is refused, to be given again', async () => {
    const { ctx, store } = await setUp('fc-claim');
    refuse = 'withdrawal.signing';
    signCalls = 0;
    // The final approval, its decision and the claim are one transaction: it fails as a whole.
    await expect(approvedByBoth(ctx, 'fc-claim')).rejects.toThrow(/the audit entry could not be written/);
    expect(signCalls).toBe(0);
    const [w] = await store.transaction((tx) => tx.listWithdrawals({ poolId: 'fc-claim', limit: 10 }));
    expect(w).toMatchObject({ state: 'pending_approval', signedTx: null, committedAt: null });
    expect(await store.transaction((tx) => tx.approvalsOf(w!.id))).toHaveLength(1);
    const audit = await store.auditAfter(0, 1000);
    expect(audit.filter((e) => e.type === 'withdrawal.approval')).toHaveLength(1);
    expect(audit.some((e) => e.type === 'withdrawal.approved' || e.type === 'withdrawal.signing')).toBe(false);
    refuse = null;
    const done = await approve(ctx, w!, 'bob');
    expect(done.state).toBe('signed');
    expect(signCalls).toBe(1);
    expect((await store.verifyAudit()).ok).toBe(true);
  });

  it('when the audit entry of the signature cannot be written, then the signature is not released; resumed later, it is signed once', async () => {
    const { ctx, store } = await setUp('fc-release');
    refuse = 'withdrawal.signed';
    signCalls = 0;
    const id = await approvedByBoth(ctx, 'fc-release');
    expect(signCalls).toBe(1);
    const held = await store.transaction((tx) => tx.getWithdrawal(id));
    expect(held).toMatchObject({ state: 'signing', signedTx: null, txHash: null });
    const audit = await store.auditAfter(0, 1000);
    expect(audit.some((e) => e.type === 'withdrawal.signed')).toBe(false);
    refuse = null;
    await runDueWork(ctx, { resumeSigningNow: true });
    const done = await store.transaction((tx) => tx.getWithdrawal(id));
    expect(done?.state).toBe('signed');
    expect(Transaction.from(done?.signedTx as string).to).toBe(ALLOWLISTED);
    expect((await store.auditAfter(0, 1000)).filter((e) => e.type === 'withdrawal.signed').length).toBe(1);
    expect((await store.verifyAudit()).ok).toBe(true);
  });

  it('when two callers release the same approved request at once (the last approval and the due-work timer), then the device signs once and both get the signed request', async () => {
    const { ctx, store } = await setUp('fc-twice');
    // Approved while the pool is frozen: held unsigned, then released by two callers once unfrozen.
    signCalls = 0;
    const ops = { id: 'p-ops', name: 'ops', role: 'requester' as const, tokenHash: 'h-ops', createdAt: 0 };
    const { withdrawal } = await submitWithdrawal(ctx, ops, { pool: 'fc-twice', chain: CHAIN, asset: 'ETH', amount: '1000', to: ALLOWLISTED, nonce: '0', gasLimit: '21000', maxFeePerGas: '10', maxPriorityFeePerGas: '1' }, null);
    await approve(ctx, withdrawal, 'alice');
    await store.transaction((tx) => tx.setPoolStatus('fc-twice', 'frozen'));
    const id = (await approve(ctx, withdrawal, 'bob')).id;
    expect((await store.transaction((tx) => tx.getWithdrawal(id)))?.state).toBe('approved');
    expect(signCalls).toBe(0);
    await store.transaction((tx) => tx.setPoolStatus('fc-twice', 'active'));
    const [a, b] = await Promise.all([releaseSignature(ctx, id), releaseSignature(ctx, id)]);
    expect(signCalls).toBe(1);
    expect(a.state).toBe('signed');
    expect(b).toEqual(a);
    expect((await store.auditAfter(0, 1000)).filter((e) => e.type === 'withdrawal.signing').length).toBe(1);
  });
});
