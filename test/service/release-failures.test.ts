/**
 * Fail closed, once (SPEC rules 3 and 6): a request whose stored transaction cannot be decoded any
 * more (a store edited by hand, a transaction a newer decoder refuses) fails with its reason at its
 * release; it is never resumed in a loop, and the device is never asked.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { SigningDevice } from '../../src/devices/signing-device.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import { releaseSignature } from '../../src/service/release-signature.js';
import { runDueWork } from '../../src/service/due-work.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { servicePool, submitEth } from '../helpers/service-pool.js';

let sim: SimProcess;
let device: SigningDevice;
let signCalls = 0;

beforeAll(async () => {
  sim = await startSim();
  const inner = createSimDevice({ url: sim.url, pin: sim.pin });
  device = { ...inner, sign: (request) => ((signCalls += 1), inner.sign(request)) };
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

describe('a transaction that cannot be signed', () => {
  it('when an approved request holds a transaction that no longer decodes, then its release fails with the reason, once, and the device is never asked', async () => {
    const ctx = await servicePool(device, 'release-fail', { quorum: [{ approvals: 2 }], assets: { ETH: {} } }, Date.now);
    const honest = await submitEth(ctx, 'release-fail', 0, 1000n);
    // An EIP-1559 envelope with an empty list: not a transaction anyone can decode.
    const broken: Withdrawal = { ...honest, id: randomUUID(), signOnceKey: 'nonce:99', unsignedTx: '0x02c0', state: 'approved', committedAt: Date.now() };
    await ctx.store.transaction((tx) => tx.insertWithdrawal(broken));
    signCalls = 0;

    const released = await releaseSignature(ctx, broken.id);
    expect(released.state).toBe('failed');
    expect(released.reasons[0]?.code).toBe('undecodable_transaction');
    expect(released.reasons[0]?.message).toMatch(/^the stored transaction cannot be signed: "unsignedTx" cannot be decoded/);
    expect(signCalls).toBe(0);

    await runDueWork(ctx, { resumeSigningNow: true });
    await runDueWork(ctx, { resumeSigningNow: true });
    const audit = await ctx.store.auditAfter(0, 100);
    expect(audit.filter((e) => e.subject === `withdrawal:${broken.id}`).map((e) => e.type)).toEqual(['withdrawal.signing', 'withdrawal.failed']);
    expect((await ctx.store.read((tx) => tx.getWithdrawal(broken.id)))?.state).toBe('failed');
    expect(signCalls).toBe(0);
  });
});
