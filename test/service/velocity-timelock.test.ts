/**
 * Velocity and time locks (SPEC section 4, rule 6 of the policy): an amount counts against a rolling
 * window from its quorum until its release. A time-locked amount still counts while it waits, however
 * long ago its quorum was, and it counts in every window that contains its release. Service layer
 * against a real SQLite file and the real simulator on loopback, the gateway and the device sharing
 * a controlled clock (the device holds the time lock and the windows too).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { SigningDevice } from '../../src/devices/signing-device.js';
import type { ServiceContext } from '../../src/service/context.js';
import type { Withdrawal } from '../../src/domain/withdrawal.js';
import { runDueWork } from '../../src/service/due-work.js';
import { startClockedSim, type ClockedSim } from '../helpers/clocked-sim.js';
import { servicePool, submitEth, voteAs } from '../helpers/service-pool.js';

const ETH = 10n ** 18n;
const T0 = Date.parse('2026-12-01T12:00:00Z');
let sim: ClockedSim;
let device: SigningDevice;
let clock = T0;

beforeAll(async () => {
  sim = await startClockedSim(() => clock);
  device = createSimDevice({ url: sim.url, pin: sim.pin });
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

const POLICY = {
  quorum: [{ approvals: 2 }],
  // 2 ETH per minute; anything above 1 ETH waits two minutes: longer than the window.
  assets: { ETH: { limits: [{ window: '1m', max: (2n * ETH).toString() }] } },
  timelock: { above: { ETH: ETH.toString() }, delay: '2m' },
};

async function approveByBoth(ctx: ServiceContext, w: Withdrawal): Promise<Withdrawal> {
  await voteAs(ctx, w, 'alice');
  return voteAs(ctx, w, 'bob');
}

describe('velocity with time locks', () => {
  it('when a time-locked amount waits longer than the window, then it still counts until released, and in the window of its release', async () => {
    clock = T0;
    const ctx = await servicePool(device, 'velocity-lock', POLICY, () => clock);
    const locked = await approveByBoth(ctx, await submitEth(ctx, 'velocity-lock', 0, 2n * ETH));
    expect(locked.state).toBe('timelocked');
    expect(JSON.parse(locked.approvalMessage).timelock).toBe('2m');

    // Past the one-minute window of its quorum, the locked 2 ETH has not left: no room for more.
    clock = T0 + 70_000;
    const second = await submitEth(ctx, 'velocity-lock', 1, 2n * ETH);
    expect(second.state).toBe('denied');
    expect(second.reasons.map((r) => r.code)).toContain('velocity_exceeded');

    // Released at T0 + 2 min: it counts in every window holding the release.
    clock = T0 + 121_000;
    await runDueWork(ctx);
    expect((await ctx.store.read((tx) => tx.getWithdrawal(locked.id)))?.state).toBe('signed');
    clock = T0 + 150_000;
    const third = await submitEth(ctx, 'velocity-lock', 2, ETH);
    expect(third.state).toBe('denied');
    expect(third.reasons.map((r) => r.code)).toContain('velocity_exceeded');

    // A minute after the release there is room again.
    clock = T0 + 182_000;
    const fourth = await submitEth(ctx, 'velocity-lock', 3, ETH);
    expect(fourth.state).toBe('pending_approval');
    expect(JSON.parse(fourth.approvalMessage).timelock).toBe('none');
  });
});
