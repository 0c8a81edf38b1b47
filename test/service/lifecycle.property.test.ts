/**
 * Property-based test of the whole withdrawal lifecycle (SPEC sections 3 and 4): random sequences of submissions,
 * approvals, rejections, cancellations, clock steps, freezes and governed policy changes, run through
 * the service layer against a real SQLite file and the real simulator on loopback, the gateway and the
 * device sharing a controlled clock. After every sequence the invariants of the core rules must hold:
 *   - in any rolling window the signed total never exceeds the window's limit;
 *   - no request is signed without its tier's quorum of distinct pool approvers, never the requester;
 *   - nothing time-locked is signed before its delay has passed;
 *   - nothing is signed while the pool is frozen.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { pino } from 'pino';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalGovernanceMessage, parseGovernanceMessage } from '../../common/governance-message.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { addressForKey } from '../../src/chains/addresses.js';
import { parseChainId, type ChainId } from '../../common/chain-id.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import type { Principal } from '../../src/domain/principal.js';
import type { ServiceContext } from '../../src/service/context.js';
import { submitWithdrawal } from '../../src/service/submit-withdrawal.js';
import { approveWithdrawal } from '../../src/service/approve-withdrawal.js';
import { cancelWithdrawal } from '../../src/service/cancel-withdrawal.js';
import { freezePool } from '../../src/service/freeze-pool.js';
import { runDueWork } from '../../src/service/due-work.js';
import { approveProposal, proposeChange } from '../../src/service/governance.js';
import { withDecision } from '../../common/approval-message.js';
import { requiredApprovals } from '../../common/policy/evaluate.js';
import { parsePolicyDocument } from '../../common/policy/document.js';
import { startClockedSim, type ClockedSim } from '../helpers/clocked-sim.js';
import { APPROVER_SECRETS, ALLOWLISTED } from '../helpers/gateway-stack.js';
import { createDeviceSet } from '../../src/devices/device-set.js';

const ETH = 10n ** 18n;
const HOUR = 3_600_000;
const CHAIN = 'eip155:11155111' as ChainId;
const APPROVER_IDS = ['alice', 'bob', 'carol'] as const;
const LIMITS = [{ window: '1h', ms: HOUR, max: 6n * ETH }, { window: '24h', ms: 24 * HOUR, max: 10n * ETH }];

function policyDoc(maxPerTx: bigint, tierUpTo: bigint, lockAbove: bigint): PolicyDocument {
  return {
    quorum: [{ upTo: { ETH: tierUpTo.toString() }, approvals: 2 }, { approvals: 3 }],
    assets: { ETH: { maxPerTx: maxPerTx.toString(), limits: LIMITS.map((l) => ({ window: l.window, max: l.max.toString() })) } },
    allowlist: [{ address: ALLOWLISTED, label: 'hot' }],
    timelock: { above: { ETH: lockAbove.toString() }, delay: '1h' },
  };
}
const POLICIES = [policyDoc(5n * ETH, ETH, 3n * ETH), policyDoc(2n * ETH, ETH / 2n, ETH)];

type Op =
  | { kind: 'submit'; amount: bigint; byCarol: boolean }
  | { kind: 'approve'; index: number; who: number; reject: boolean }
  | { kind: 'cancel'; index: number }
  | { kind: 'tick'; ms: number }
  | { kind: 'freeze' }
  | { kind: 'unfreeze' }
  | { kind: 'policy'; which: number };

const opArb: fc.Arbitrary<Op> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('submit' as const), amount: fc.bigInt({ min: 1n, max: 6n * ETH }), byCarol: fc.boolean() }) },
  { weight: 8, arbitrary: fc.record({ kind: fc.constant('approve' as const), index: fc.nat({ max: 20 }), who: fc.nat({ max: 2 }), reject: fc.boolean().map((b) => b && Math.random() < 0.15) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('cancel' as const), index: fc.nat({ max: 20 }) }) },
  { weight: 3, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 60_000, max: 3 * HOUR }) }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'freeze' as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: 'unfreeze' as const }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('policy' as const), which: fc.nat({ max: 1 }) }) },
);

let sim: ClockedSim;
let clock = Date.parse('2026-11-25T00:00:00Z');
let deviceId = '';
let device: ReturnType<typeof createSimDevice>;
let run = 0;

beforeAll(async () => {
  sim = await startClockedSim(() => clock);
  device = createSimDevice({ url: sim.url, pin: sim.pin });
  deviceId = (await device.info()).id;
  const approvers = APPROVER_IDS.map((id) => ({ id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[id] as string))) }));
  await device.enrollGovernance(approvers, 2);
});

afterAll(async () => {
  await device?.close();
  await sim?.stop();
});

function signAs(who: string, text: string): string {
  return bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(APPROVER_SECRETS[who] as string)));
}

async function scenario(ops: Op[]): Promise<void> {
  run += 1;
  const poolId = `prop-${run}`;
  const store = openSqliteStore({ path: join(mkdtempSync(join(tmpdir(), 'prop-')), 'custody.db') });
  const ctx: ServiceContext = { store, devices: createDeviceSet({ sim: () => device }), now: () => clock, log: pino({ level: 'silent' }) };
  const principal = (id: string, name: string, role: Principal['role']): Principal => ({ id, name, role, tokenHash: `h-${id}`, createdAt: 0 });
  const ops_ = principal('p-ops', 'ops', 'requester');
  const carolRequester = principal('p-carol-req', 'carol', 'requester');
  const approvers = APPROVER_IDS.map((id) => principal(`p-${id}`, id, 'approver'));
  const admins = APPROVER_IDS.map((id) => principal(`p-admin-${id}`, id, 'admin'));

  // The pool: bound in the device, key generated there, recorded in the store.
  const keys = APPROVER_IDS.map((id) => ({ id, publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[id] as string))) }));
  await device.enrollPool(poolId, keys, 2, POLICIES[0]!);
  const key = await device.generateKey(poolId, CHAIN, 'secp256k1');
  await store.transaction(async (tx) => {
    for (const p of [ops_, carolRequester, ...approvers, ...admins]) await tx.insertPrincipal(p);
    for (const k of keys) await tx.insertApprover(k);
    await tx.setSetting('governance', JSON.stringify({ admins: APPROVER_IDS, adminQuorum: 2 }));
    await tx.insertPool({ id: poolId, owner: 'prop', chains: [CHAIN], status: 'active', approvers: [...APPROVER_IDS], policyVersion: 1, createdAt: clock }, POLICIES[0]!);
    await tx.insertKey({ poolId, chain: CHAIN, curve: 'secp256k1', publicKey: key.publicKey, address: addressForKey(parseChainId(CHAIN), key.publicKey), device: deviceId, handle: key.handle, ceremonyId: 'prop', createdAt: clock });
  });

  const ids: string[] = [];
  let nonce = 0;
  let frozen = false;
  const frozenAt: { from: number; to: number | null }[] = [];
  const signedIds = async () => new Set((await store.transaction((tx) => tx.listWithdrawals({ poolId, state: 'signed', limit: 1000 }))).map((w) => w.id));

  try {
    for (const op of ops) {
      const before = await signedIds();
      try {
        if (op.kind === 'submit') {
          const r = await submitWithdrawal(ctx, op.byCarol ? carolRequester : ops_, {
            pool: poolId, chain: CHAIN, asset: 'ETH', amount: op.amount.toString(), to: ALLOWLISTED, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1',
          }, null);
          ids.push(r.withdrawal.id);
        } else if (op.kind === 'approve' && ids.length > 0) {
          const id = ids[op.index % ids.length] as string;
          const w = await store.transaction((tx) => tx.getWithdrawal(id));
          const who = APPROVER_IDS[op.who] as string;
          const decision = op.reject ? 'reject' : 'approve';
          await approveWithdrawal(ctx, approvers[op.who]!, id, { decision, signature: signAs(who, withDecision(w!.approvalMessage, decision)) });
        } else if (op.kind === 'cancel' && ids.length > 0) {
          await cancelWithdrawal(ctx, ops_, ids[op.index % ids.length] as string);
        } else if (op.kind === 'tick') {
          clock += op.ms;
          await runDueWork(ctx, { resumeSigningNow: true });
        } else if (op.kind === 'freeze' && !frozen) {
          await freezePool(ctx, admins[0]!, poolId, null);
          frozen = true;
          frozenAt.push({ from: clock, to: null });
        } else if (op.kind === 'unfreeze' && frozen) {
          const p = await proposeChange(ctx, admins[0]!, poolId, { action: 'unfreeze' });
          for (const a of [1, 2]) await approveProposal(ctx, admins[a]!, p.id, { decision: 'approve', signature: signAs(APPROVER_IDS[a] as string, canonicalGovernanceMessage({ ...parseGovernanceMessage(p.approvalMessage), decision: 'approve' })) });
          frozen = false;
          frozenAt[frozenAt.length - 1]!.to = clock;
          await runDueWork(ctx, { resumeSigningNow: true });
        } else if (op.kind === 'policy') {
          const p = await proposeChange(ctx, admins[1]!, poolId, { action: 'policy', policy: POLICIES[op.which]! });
          for (const a of [0, 2]) await approveProposal(ctx, admins[a]!, p.id, { decision: 'approve', signature: signAs(APPROVER_IDS[a] as string, canonicalGovernanceMessage({ ...parseGovernanceMessage(p.approvalMessage), decision: 'approve' })) });
        }
      } catch (error) {
        // Refusals (409 conflicts, 403 duties, 400 invalid) are expected outcomes of random sequences.
        const kind = (error as { kind?: string }).kind;
        if (!['conflict', 'forbidden', 'invalid', 'not_found'].includes(kind ?? '')) throw error;
      }
      const after = await signedIds();
      const fresh = [...after].filter((id) => !before.has(id));
      if (frozen) expect(fresh).toEqual([]);
    }

    // Invariants over everything that was signed.
    const all = await store.transaction((tx) => tx.listWithdrawals({ poolId, limit: 1000 }));
    const signed = all.filter((w) => w.state === 'signed');
    // A signed request's committedAt is its release; its (last) quorum is in the audit trail.
    const audit = await store.auditAfter(0, 100_000);
    const quorumAt = (id: string): number => {
      const approved = audit.filter((e) => e.type === 'withdrawal.approved' && e.subject === `withdrawal:${id}`).at(-1);
      expect(approved).toBeDefined();
      return Date.parse((approved as { at: string }).at);
    };
    for (const w of signed) {
      const approvals = await store.transaction((tx) => tx.approvalsOf(w.id));
      const requester = w.requesterId === carolRequester.id ? 'carol' : 'ops';
      const voters = new Set(approvals.filter((a) => a.decision === 'approve' && a.approverId !== requester).map((a) => a.approverId));
      expect(approvals.some((a) => a.approverId === requester)).toBe(false);
      const policy = parsePolicyDocument((await store.transaction((tx) => tx.getPolicy(poolId, w.policyVersion)))!);
      expect(voters.size).toBeGreaterThanOrEqual(Math.max(w.requiredApprovals, requiredApprovals(policy, 'ETH', w.amount)));
      expect(w.committedAt).not.toBeNull();
      if (w.notBefore !== null) expect(w.updatedAt).toBeGreaterThanOrEqual(w.notBefore);
      // Above 3 ETH every policy version time-locks for an hour after the quorum.
      if (w.amount > 3n * ETH) expect(w.updatedAt - quorumAt(w.id)).toBeGreaterThanOrEqual(HOUR);
      for (const f of frozenAt) expect(w.updatedAt > f.from && (f.to === null || w.updatedAt < f.to)).toBe(false);
      for (const limit of LIMITS) {
        const inWindow = signed.filter((x) => (x.committedAt as number) > (w.committedAt as number) - limit.ms && (x.committedAt as number) <= (w.committedAt as number));
        expect(inWindow.reduce((s, x) => s + x.amount, 0n) <= limit.max).toBe(true);
      }
    }
  } finally {
    await store.close();
  }
}

describe('the withdrawal lifecycle under random sequences', () => {
  it('when any sequence of operations runs, then the window limits, quorum, time lock and freeze invariants hold', async () => {
    // FC_SEED=<seed printed on a failure> replays that run.
    await fc.assert(fc.asyncProperty(fc.array(opArb, { minLength: 5, maxLength: 30 }), scenario), { numRuns: 100, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED) } : {}) });
  }, 240_000);
});
