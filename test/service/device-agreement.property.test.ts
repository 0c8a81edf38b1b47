/**
 * The gateway and the device decide alike (SPEC rule 2): random histories of withdrawals (amounts
 * around the tiers, maxima, limits and time lock; destinations allowlisted, cooling off, unknown or
 * of another pool; fees under and over the cap; as many approvals as the tier needs, or one fewer),
 * clock steps, governed policy changes and crashes of the device and the gateway, run through the
 * service layer (real SQLite file) and the real simulator on loopback sharing the test's clock.
 *
 * For every request: when the gateway signs, the device signed it (the request never ends `failed`
 * by a device refusal); when the gateway does not sign it, the same transaction with the same
 * approvals, sent to the device directly as a compromised gateway would, is refused. After every
 * step, the device's and the store's view of the pool agree: binding (approver key fingerprints,
 * base threshold), policy hash and version, governance sequence, and the amounts signed in each
 * velocity window. FC_SEED=<seed> replays a failed run.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { getAddress } from 'ethers';
import { withDecision } from '../../common/approval-message.js';
import { parseChainId, type ChainId } from '../../common/chain-id.js';
import { canonicalGovernanceMessage, parseGovernanceMessage } from '../../common/governance-message.js';
import { parsePolicyDocument } from '../../common/policy/document.js';
import { velocityWindows } from '../../common/policy/evaluate.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import { addressForKey } from '../../src/chains/addresses.js';
import { createDeviceSet } from '../../src/devices/device-set.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import type { Principal } from '../../src/domain/principal.js';
import { approveWithdrawal } from '../../src/service/approve-withdrawal.js';
import type { ServiceContext } from '../../src/service/context.js';
import { runDueWork } from '../../src/service/due-work.js';
import { approveProposal, poolGovernanceState, proposeChange } from '../../src/service/governance.js';
import { submitWithdrawal } from '../../src/service/submit-withdrawal.js';
import { velocityUsage } from '../../src/service/usage.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import type { Store } from '../../src/store/store.js';
import { startClockedSim, type ClockedSim } from '../helpers/clocked-sim.js';
import { ALLOWLISTED, APPROVER_SECRETS } from '../helpers/gateway-stack.js';
import { openPolicy } from '../helpers/open-policy.js';

const ETH = 10n ** 18n;
const MINUTE = 60_000;
const CHAIN = 'eip155:11155111' as ChainId;
const IDS = ['alice', 'bob', 'carol'] as const;
const KEYS = IDS.map((id) => ({ id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[id] as string))) }));
const STRANGER = getAddress('0x' + 'ba'.repeat(20));
const LATER = getAddress('0x' + 'c0'.repeat(20));

function policy(variant: number, otherPool: string): PolicyDocument {
  const allowlist = [{ address: ALLOWLISTED, label: 'hot' }, { address: otherPool, label: 'another pool' }, ...(variant === 1 ? [{ address: LATER, label: 'added later' }] : [])];
  return {
    quorum: [{ upTo: { ETH: (variant === 0 ? ETH : ETH / 2n).toString() }, approvals: 2 }, { approvals: 3 }],
    assets: { ETH: { maxPerTx: (variant === 0 ? 4n * ETH : 3n * ETH).toString(), limits: [{ window: '1h', max: (6n * ETH).toString() }, { window: '24h', max: (10n * ETH).toString() }] } },
    allowlist,
    newAddressCoolingOff: '30m',
    timelock: { above: { ETH: (2n * ETH).toString() }, delay: '20m' },
    maxFee: { ETH: (10n ** 15n).toString() },
  };
}

type Op =
  | { kind: 'withdraw'; amount: bigint; to: number; highFee: boolean; short: boolean }
  | { kind: 'tick'; ms: number }
  | { kind: 'policy'; variant: number }
  | { kind: 'crash'; which: 'device' | 'gateway' };

const AMOUNTS = [1n, ETH / 2n, ETH, ETH + 1n, 2n * ETH, 2n * ETH + 1n, 3n * ETH, 4n * ETH, 4n * ETH + 1n];
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('withdraw' as const), amount: fc.constantFrom(...AMOUNTS), to: fc.constantFrom(0, 0, 0, 1, 2, 3), highFee: fc.boolean().map((b) => b && Math.random() < 0.2), short: fc.boolean().map((b) => b && Math.random() < 0.3) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.constantFrom(MINUTE, 19 * MINUTE, 31 * MINUTE, 61 * MINUTE, 12 * 60 * MINUTE) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('policy' as const), variant: fc.nat({ max: 1 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('crash' as const), which: fc.constantFrom('device' as const, 'gateway' as const) }) },
);

let clock = Date.parse('2026-12-01T00:00:00Z');
let sim: ClockedSim;
let deviceId: string;
let run = 0;
/** What the histories exercised, so that the property cannot pass on histories that decide nothing. */
const tally = { signed: 0, refused: 0, policies: 0, crashes: 0 };

beforeAll(async () => {
  sim = await startClockedSim(() => clock);
  const client = createSimDevice({ url: sim.url, pin: sim.pin });
  try {
    await client.enrollGovernance(KEYS, 2);
    deviceId = (await client.info()).id;
  } finally {
    await client.close();
  }
});

afterAll(async () => {
  await sim?.stop();
});

const signAs = (who: string, text: string) => bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(APPROVER_SECRETS[who] as string)));
const principal = (name: string, role: Principal['role']): Principal => ({ id: `p-${role}-${name}`, name, role, tokenHash: `h-${role}-${name}`, createdAt: 0 });

async function scenario(ops: Op[]): Promise<void> {
  run += 1;
  const poolId = `agree-${run}`;
  const otherId = `agree-${run}-other`;
  const dbPath = join(mkdtempSync(join(tmpdir(), 'agree-')), 'custody.db');
  let store: Store = openSqliteStore({ path: dbPath });
  const client = createSimDevice({ url: sim.url, pin: sim.pin });
  const ctxOf = (s: Store): ServiceContext => ({ store: s, devices: createDeviceSet({ sim: () => client }), now: () => clock, log: pino({ level: 'silent' }) });
  let ctx = ctxOf(store);
  const requester = principal('ops', 'requester');

  // Another pool of this device: its address is allowlisted in the pool's policy, and paying it is commingling.
  await client.enrollPool(otherId, KEYS.slice(1), 2, openPolicy(2));
  const otherAddress = addressForKey(parseChainId(CHAIN), (await client.generateKey(otherId, CHAIN, 'secp256k1')).publicKey);
  const initial = policy(0, otherAddress);
  await client.enrollPool(poolId, KEYS, 2, initial);
  const key = await client.generateKey(poolId, CHAIN, 'secp256k1');
  await store.transaction(async (tx) => {
    await tx.insertPrincipal(requester);
    for (const k of KEYS) await tx.insertApprover(k);
    await tx.setSetting('governance', JSON.stringify({ admins: IDS, adminQuorum: 2 }));
    await tx.insertPool({ id: poolId, owner: 'agree', chains: [CHAIN], status: 'active', approvers: [...IDS], policyVersion: 1, createdAt: clock }, initial);
    await tx.insertKey({ poolId, chain: CHAIN, curve: 'secp256k1', publicKey: key.publicKey, address: addressForKey(parseChainId(CHAIN), key.publicKey), device: deviceId, handle: key.handle, ceremonyId: 'agree', createdAt: clock });
    await tx.insertPool({ id: otherId, owner: 'agree', chains: [CHAIN], status: 'active', approvers: ['bob', 'carol'], policyVersion: 1, createdAt: clock }, openPolicy(2));
    await tx.insertKey({ poolId: otherId, chain: CHAIN, curve: 'secp256k1', publicKey: '02' + '11'.repeat(32), address: otherAddress, device: deviceId, handle: 'other', ceremonyId: 'agree', createdAt: clock });
  });

  const destinations = [ALLOWLISTED, LATER, STRANGER, otherAddress];
  let nonce = 0;
  const agree = async () => {
    const device = sim.device();
    const view = await store.read(async (r) => {
      const pool = (await r.getPool(poolId))!;
      const state = await poolGovernanceState(r, pool);
      const doc = (await r.getPolicy(poolId, pool.policyVersion))!;
      const usage = await velocityUsage(r, poolId, parsePolicyDocument(doc), 'ETH', clock);
      return { state, usage };
    });
    const held = device.governanceState(poolId);
    expect({ summary: held.summary, sequence: held.sequence }).toEqual({ summary: view.state.summary, sequence: view.state.sequence });
    const windows = velocityWindows(device.heldPolicy(poolId)!.policy, 'ETH');
    expect(device.signedUsage(poolId, 'ETH', windows).map((u) => [u.window, u.committed])).toEqual(view.usage.map((u) => [u.window, u.committed]));
  };

  try {
    for (const op of ops) {
      if (op.kind === 'withdraw') {
        const fee = op.highFee ? '100000000000' : '1000000000';
        const body = { pool: poolId, chain: CHAIN, asset: 'ETH', amount: op.amount.toString(), to: destinations[op.to] as string, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: fee, maxPriorityFeePerGas: '1' };
        let w = (await submitWithdrawal(ctx, requester, body, null)).withdrawal;
        const approvers = IDS.slice(0, Math.max(1, w.requiredApprovals - (op.short ? 1 : 0)));
        for (const who of approvers) {
          if (w.state !== 'pending_approval') break;
          w = await approveWithdrawal(ctx, principal(who, 'approver'), w.id, { decision: 'approve', signature: signAs(who, withDecision(w.approvalMessage, 'approve')) });
        }
        if (w.state === 'timelocked') {
          clock = Math.max(clock, w.notBefore ?? clock);
          await runDueWork(ctx, { resumeSigningNow: true });
          w = (await store.read((r) => r.getWithdrawal(w.id)))!;
        }
        expect(w.state, `${w.id}: ${JSON.stringify(w.reasons)}`).not.toBe('failed');
        tally[w.state === 'signed' ? 'signed' : 'refused'] += 1;
        if (w.state !== 'signed') {
          // What the gateway did not sign, a compromised gateway asks the device for with the same approvals.
          const evidence = approvers.map((who) => ({ publicKey: KEYS.find((k) => k.id === who)!.publicKey, message: w.approvalMessage, signature: signAs(who, w.approvalMessage) }));
          await expect(
            client.sign({ handle: key.handle, poolId, scheme: 'ecdsa-secp256k1', payload: new Uint8Array(32), digest: new Uint8Array(32), approvals: evidence, transaction: { chain: CHAIN, unsignedTx: w.unsignedTx } }),
            `the device signed ${w.id}, which the gateway left ${w.state} (${JSON.stringify(w.reasons)})`,
          ).rejects.toMatchObject({ code: expect.stringMatching(/^device_(policy_refused|quorum_refused|timelocked|frozen)$/) });
        }
      } else if (op.kind === 'tick') {
        clock += op.ms;
      } else if (op.kind === 'policy') {
        const p = await proposeChange(ctx, principal('alice', 'admin'), poolId, { action: 'policy', policy: policy(op.variant, otherAddress) });
        let applied = p;
        for (const who of ['bob', 'carol']) {
          if (applied.state !== 'pending') break;
          applied = await approveProposal(ctx, principal(who, 'admin'), p.id, { decision: 'approve', signature: signAs(who, canonicalGovernanceMessage({ ...parseGovernanceMessage(p.approvalMessage), decision: 'approve' })) });
        }
        expect(applied.state, applied.reason ?? '').toBe('applied');
        tally.policies += 1;
      } else if (op.which === 'device') {
        await sim.restart();
        tally.crashes += 1;
        // The gateway's link notices the dropped connection and reconnects at its next call.
        for (let i = 0; ; i++) {
          try {
            await client.info();
            break;
          } catch (error) {
            if (i > 20) throw error;
            await new Promise((r) => setTimeout(r, 20));
          }
        }
      } else {
        await store.close();
        store = openSqliteStore({ path: dbPath });
        ctx = ctxOf(store);
      }
      await agree();
    }
  } finally {
    await client.close();
    await store.close();
  }
}

describe('the gateway and the device under random histories', () => {
  it('when any history of withdrawals, clock steps, policy changes and crashes runs, then both decide alike on every request and hold the same view of the pool', async () => {
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 3, maxLength: 20 }), scenario), { numRuns: 25, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) });
    if (!process.env.FC_SEED) for (const [what, n] of Object.entries(tally)) expect(n, what).toBeGreaterThan(0);
  }, 240_000);
});
