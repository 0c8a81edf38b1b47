/**
 * Benchmark section on cost growth: decision latency (POST /v1/pools/{pool}/evaluate) and
 * release latency (final approval → signed) through the real processes, with 10 and with 10,000
 * pools, and with 10^3 and with 10^6 past withdrawals in the pool; memory of gateway and simulator
 * with 10,000 pools. Each pair of systems runs side by side and is measured in alternating rounds, so
 * warm-up and machine noise fall on both alike; the smaller one is the baseline.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChainId } from '../common/chain-id.js';
import type { Withdrawal } from '../src/domain/withdrawal.js';
import type { Store } from '../src/store/store.js';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.js';
import { startSystem, type BenchSystem } from './lifecycle.js';

const CHAIN = 'eip155:11155111' as ChainId;
const DAY = 86_400_000;
export const RECENT = 200;

/**
 * `history` withdrawals of `poolId` signed over the year before the last 25 hours, then RECENT in the
 * last 23 hours: the same recent activity whatever the length of the history. Sign-once keys are
 * `hist:N`, apart from the nonces a benchmark then uses.
 */
export async function seedHistory(store: Store, poolId: string, history: number, now: number): Promise<void> {
  const row = (i: number, committedAt: number): Withdrawal => ({
    id: `00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`,
    poolId, chain: CHAIN, asset: 'ETH', amount: 10n ** 15n, to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', requesterId: 'p-history',
    idempotencyKey: null, signOnceKey: `hist:${i}`, contractCall: null, unsignedTx: '0x02', digest: '00'.repeat(32), maxFee: 21000n, policyVersion: 1, requiredApprovals: 2,
    state: 'signed', reasons: [], approvalMessage: '{}', signedTx: '0x02', txHash: '0x00', createdAt: committedAt, updatedAt: committedAt,
    committedAt, notBefore: null, expiresAt: null,
  });
  await store.transaction(async (tx) => {
    if (!(await tx.principalById('p-history'))) await tx.insertPrincipal({ id: 'p-history', name: 'history', role: 'requester', tokenHash: 'history-without-token', createdAt: 0 });
  });
  const batch = 20_000;
  for (let start = 0; start < history; start += batch) {
    await store.transaction(async (tx) => {
      for (let i = start; i < Math.min(history, start + batch); i++) {
        await tx.insertWithdrawal(row(i, now - 25 * 3_600_000 - Math.floor((i / history) * 340 * DAY)));
      }
    });
  }
  await store.transaction(async (tx) => {
    for (let i = 0; i < RECENT; i++) await tx.insertWithdrawal(row(history + i, now - Math.floor((i / RECENT) * 23 * 3_600_000)));
  });
}

/** A ceremony plan with `n` pools, each on Sepolia with the demo approvers. */
function poolsPlan(root: string, dir: string, n: number): { path: string; pools: string[] } {
  const base = JSON.parse(readFileSync(join(root, 'examples', 'ceremony-plan.json'), 'utf8')) as { approvers: unknown; admins: unknown; adminQuorum: unknown };
  const pools = Array.from({ length: n }, (_, i) => `pool-${String(i).padStart(5, '0')}`);
  const plan = {
    version: 1, device: 'sim', approvers: base.approvers, admins: base.admins, adminQuorum: base.adminQuorum,
    pools: pools.map((id, i) => ({
      id, owner: `Client ${i}`, chains: [CHAIN], approvers: ['alice', 'bob', 'carol'],
      policy: {
        quorum: [{ approvals: 2 }],
        assets: { ETH: { maxPerTx: '1000000000000000000', limits: [{ window: '1h', max: '8000000000000000000' }, { window: '24h', max: '20000000000000000000' }] } },
        allowlist: [{ address: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', label: 'exchange hot wallet' }],
        maxFee: { ETH: '10000000000000000' },
      },
    })),
  };
  const path = join(dir, `plan-${n}.json`);
  writeFileSync(path, JSON.stringify(plan));
  return { path, pools };
}

export interface Latencies {
  readonly label: string;
  readonly evaluateMs: number[];
  readonly releaseMs: number[];
}

export interface GrowthPair {
  readonly dimension: string;
  readonly small: Latencies;
  readonly large: Latencies;
}

export interface GrowthResult {
  readonly pairs: readonly GrowthPair[];
  /** RSS after the measurements, of the system with the most pools. */
  readonly manyPoolsRss: { readonly pools: number; readonly gatewayMiB: number; readonly simMiB: number };
}

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)] as T;

async function alternate(
  systems: [{ system: BenchSystem; pools: readonly string[]; label: string }, { system: BenchSystem; pools: readonly string[]; label: string }],
  rounds: number,
  perRound: number,
): Promise<[Latencies, Latencies]> {
  const out: [Latencies, Latencies] = [
    { label: systems[0].label, evaluateMs: [], releaseMs: [] },
    { label: systems[1].label, evaluateMs: [], releaseMs: [] },
  ];
  // Warm-up, not recorded.
  for (const s of systems) {
    for (let i = 0; i < 30; i++) {
      await s.system.evaluate(pick(s.pools));
      await s.system.withdraw(pick(s.pools));
    }
  }
  for (let r = 0; r < rounds; r++) {
    for (const i of r % 2 === 0 ? [0, 1] : [1, 0]) {
      const s = systems[i as 0 | 1];
      for (let k = 0; k < perRound; k++) out[i as 0 | 1].evaluateMs.push(await s.system.evaluate(pick(s.pools)));
      for (let k = 0; k < perRound; k++) out[i as 0 | 1].releaseMs.push(await s.system.withdraw(pick(s.pools)));
    }
  }
  return out;
}

export async function growth(root: string, options: { pools: [number, number]; history: [number, number]; rounds: number; perRound: number }): Promise<GrowthResult> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-growth-'));
  const pairs: GrowthPair[] = [];
  try {
    const [fewN, manyN] = options.pools;
    const few = poolsPlan(root, dir, fewN);
    const many = poolsPlan(root, dir, manyN);
    process.stderr.write(`growth: ceremonies of ${fewN} and ${manyN} pools…\n`);
    const fewSystem = await startSystem(root, { plan: few.path });
    const manySystem = await startSystem(root, { plan: many.path });
    let manyPoolsRss: GrowthResult['manyPoolsRss'];
    try {
      process.stderr.write('growth: measuring pools…\n');
      const [a, b] = await alternate(
        [{ system: fewSystem, pools: few.pools, label: `${fewN} pools` }, { system: manySystem, pools: many.pools, label: `${manyN.toLocaleString('en')} pools` }],
        options.rounds, options.perRound,
      );
      pairs.push({ dimension: 'pools', small: a, large: b });
      const rss = manySystem.rss();
      manyPoolsRss = { pools: manyN, gatewayMiB: rss.gatewayMiB, simMiB: rss.simMiB };
    } finally {
      await fewSystem.close();
      await manySystem.close();
    }

    const [shortH, longH] = options.history;
    const seeded = (history: number) => async (dbPath: string) => {
      process.stderr.write(`growth: seeding ${history} past withdrawals…\n`);
      const store = openSqliteStore({ path: dbPath });
      try {
        await seedHistory(store, 'client-a', history, Date.now());
      } finally {
        await store.close();
      }
    };
    const plan = join(root, 'examples', 'ceremony-plan.json');
    const shortSystem = await startSystem(root, { plan, seed: seeded(shortH) });
    const longSystem = await startSystem(root, { plan, seed: seeded(longH) });
    try {
      process.stderr.write('growth: measuring history…\n');
      const label = (n: number) => `10^${Math.round(Math.log10(n))} past withdrawals`;
      const [a, b] = await alternate(
        [{ system: shortSystem, pools: ['client-a'], label: label(shortH) }, { system: longSystem, pools: ['client-a'], label: label(longH) }],
        options.rounds, options.perRound,
      );
      pairs.push({ dimension: 'history', small: a, large: b });
    } finally {
      await shortSystem.close();
      await longSystem.close();
    }
    return { pairs, manyPoolsRss };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
