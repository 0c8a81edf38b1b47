/**
 * Benchmark sections on the crypto bound of one withdrawal, and the full lifecycle through the
 * real processes (`custody serve` over HTTP, `hsm-sim` over TCP, the SQLite store with durable
 * commits) at several concurrencies, with the ratio of the two.
 *
 * Per withdrawal the cryptography is: 2 Ed25519 approval verifications in the gateway, the same 2 again
 * in the device, 1 RFC 6979 ECDSA signature in the device, and 1 check in the gateway that the device's
 * signature recovers to the pool key (common/chains/ethereum/signer-check.ts) before the signed
 * transaction is released. The bound runs exactly that in a tight loop on one core, each operation
 * with the fastest correct implementation that runs on this machine (see cryptoBound).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, randomBytes, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { createRequire } from 'node:module';
import { ed25519 } from '@noble/curves/ed25519.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { recoversTo } from '../common/chains/ethereum/signer-check.js';
import { canonicalApprovalMessage, parseApprovalMessage } from '../common/approval-message.js';
import { signRecoverable } from '../common/libsecp256k1.js';

const run = promisify(execFile);
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

/** Count, median and 99th percentile of `samples` (any unit), nearest-rank. */
export function percentiles(samples: readonly number[]): { n: number; p50: number; p99: number } {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
  return { n: sorted.length, p50: at(0.5), p99: at(0.99) };
}

/** One implementation of one operation of the bound, measured. */
export interface Candidate {
  readonly operation: string;
  readonly implementation: string;
  readonly us: number;
}

export interface BoundResult {
  readonly usPerWithdrawal: number;
  readonly perSecond: number;
  /** Each operation's count per withdrawal, fastest implementation and its time (µs, all of them). */
  readonly parts: readonly { operation: string; count: number; implementation: string; us: number }[];
  /** Every implementation measured, the slower ones included. */
  readonly candidates: readonly Candidate[];
}

function timeUs(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(50, iterations); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations / 1000;
}

interface Sodium {
  crypto_sign_verify_detached(signature: Buffer, message: Buffer, publicKey: Buffer): boolean;
}

/** libsodium (sodium-native, a devDependency) when it loads on this machine; the bound runs without it otherwise. */
function loadSodium(): Sodium | null {
  try {
    return createRequire(import.meta.url)('sodium-native') as Sodium;
  } catch {
    return null;
  }
}

/**
 * The cryptography of one withdrawal in a tight loop on one core. Every operation is measured with
 * each correct implementation that runs on this machine (each one's answer is checked first), and the
 * bound takes the fastest of each, whether or not the product uses it.
 */
export function cryptoBound(iterations: number): BoundResult {
  const candidates: Candidate[] = [];
  const measure = (operation: string, implementation: string, fn: () => boolean, runs = iterations) => {
    if (!fn()) throw new Error(`bound: ${implementation} gave a wrong answer for ${operation}`);
    candidates.push({ operation, implementation, us: timeUs(runs, () => void fn()) });
  };

  const VERIFY = 'Ed25519 verify';
  const seed = Buffer.alloc(32, 7);
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const rawPublicKey = Buffer.from(ed25519.getPublicKey(seed));
  const message = Buffer.from(canonicalApprovalMessage(parseApprovalMessage(sampleApproval())), 'utf8');
  const signature = cryptoSign(null, message, privateKey);
  const forged = Buffer.from(signature);
  forged[5] = (forged[5] as number) ^ 1;
  if (cryptoVerify(null, message, publicKey, forged)) throw new Error('bound: OpenSSL accepted a forged signature');
  measure(VERIFY, "OpenSSL (node:crypto), as the product", () => cryptoVerify(null, message, publicKey, signature));
  const sodium = loadSodium();
  if (sodium) {
    if (sodium.crypto_sign_verify_detached(forged, message, rawPublicKey)) throw new Error('bound: libsodium accepted a forged signature');
    measure(VERIFY, 'libsodium (sodium-native)', () => sodium.crypto_sign_verify_detached(signature, message, rawPublicKey));
  }
  measure(VERIFY, 'noble (JavaScript)', () => ed25519.verify(signature, message, rawPublicKey), Math.ceil(iterations / 4));

  const SIGN = 'ECDSA sign (RFC 6979)';
  const secret = secp256k1.utils.randomSecretKey();
  const poolKey = bytesToHex(secp256k1.getPublicKey(secret, true));
  const digest = new Uint8Array(32).fill(9);
  const nobleSig = secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' });
  // RFC 6979 is deterministic: every implementation must give these very bytes (recovery id first).
  const expected = bytesToHex(nobleSig);
  measure(SIGN, 'libsecp256k1 (secp256k1), as the simulator', () => {
    const sig = signRecoverable(digest, secret);
    return sig.recovery === nobleSig[0] && bytesToHex(sig.signature) === expected.slice(2);
  });
  measure(SIGN, 'noble (JavaScript)', () => bytesToHex(secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' })) === expected, Math.ceil(iterations / 2));

  const CHECK = 'ECDSA check against the pool key';
  const rs = nobleSig.subarray(1);
  const recovery = nobleSig[0] as 0 | 1;
  if (recoversTo(digest, rs, (1 - recovery) as 0 | 1, poolKey)) throw new Error('bound: the check accepted the wrong recovery id');
  measure(CHECK, 'libsecp256k1 recovery, as the product', () => recoversTo(digest, rs, recovery, poolKey));
  measure(CHECK, 'noble recovery (JavaScript)', () => secp256k1.Signature.fromBytes(nobleSig, 'recovered').recoverPublicKey(digest).toHex(true) === poolKey, Math.ceil(iterations / 4));

  const fastest = (operation: string) =>
    candidates.filter((c) => c.operation === operation).reduce((a, b) => (b.us < a.us ? b : a));
  const parts = ([[VERIFY, 4], [SIGN, 1], [CHECK, 1]] as const).map(([operation, count]) => {
    const best = fastest(operation);
    return { operation, count, implementation: best.implementation, us: count * best.us };
  });
  const usPerWithdrawal = parts.reduce((sum, p) => sum + p.us, 0);
  return { usPerWithdrawal, perSecond: 1e6 / usPerWithdrawal, parts, candidates };
}

function sampleApproval(): string {
  return canonicalApprovalMessage({
    kind: 'custody.approval', version: 2, requestId: '6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10', pool: 'client-a', chain: 'eip155:11155111', asset: 'ETH',
    amount: '1', to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', maxFee: '630000000000000', digest: 'ab'.repeat(32), policyVersion: 1, decision: 'approve',
    // A typical EIP-1559 transfer's unsigned serialization is about 60 bytes: 120 hex characters.
    unsignedTx: '0x02' + 'ab'.repeat(59), timelock: 'none',
  });
}

interface Proc {
  readonly child: ChildProcess;
  readonly ready: Promise<string>;
}

/** BENCH_PROFILE=DIR: the gateway and the simulator write V8 CPU profiles there (node --cpu-prof). */
const PROFILE_DIR = process.env.BENCH_PROFILE;

function startProcess(args: string[], env: Record<string, string>, readyLine: (line: string) => string | null): Proc {
  const profile = PROFILE_DIR ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : [];
  const child = spawn(process.execPath, [...profile, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  // The last of its stderr, to say why it exited; stderr is drained so that it never blocks.
  let stderrTail = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderrTail = (stderrTail + d.toString('utf8')).slice(-2000);
  });
  const ready = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}${stderrTail ? `: ${stderrTail}` : ''}`)));
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      const found = readyLine(line);
      if (found === null) return;
      // Ready: the rest of its log (a line or more per request) is drained unread, so that parsing it
      // costs this client, which shares the cores with the processes it measures, nothing.
      lines.close();
      child.stdout?.on('data', () => undefined).resume();
      resolve(found);
    });
  });
  return { child, ready };
}

function rssMiB(pid: number | undefined): number {
  if (pid === undefined) return NaN;
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

export interface LevelResult {
  readonly concurrency: number;
  readonly withdrawals: number;
  readonly perSecond: number;
  readonly finalApprovalP50Ms: number;
  readonly finalApprovalP99Ms: number;
}

/** Withdrawals started at a fixed rate (open loop), whatever the previous ones are doing. */
export interface PacedResult {
  readonly targetPerSecond: number;
  readonly withdrawals: number;
  readonly achievedPerSecond: number;
  readonly finalApprovalP50Ms: number;
  readonly finalApprovalP99Ms: number;
}

export interface LifecycleResult {
  /** Per concurrency, the median of the runs. */
  readonly levels: readonly MedianLevel[];
  /** At half of the best median throughput of `levels`; the median of the runs. */
  readonly paced: MedianPaced;
  readonly repeats: number;
  readonly gatewayRssMiB: number;
  readonly simRssMiB: number;
}

export interface SystemOptions {
  /** Ceremony plan file; pools' approvers must be among alice, bob and carol (the demo keys). */
  readonly plan: string;
  /** Before the gateway starts: writes history straight into the SQLite store (DATA_DIR/custody.db). */
  readonly seed?: (dbPath: string) => Promise<void>;
}

/** A running system: `custody serve` over HTTP, `hsm-sim` over TCP, SQLite, after a real ceremony. */
export interface BenchSystem {
  /** One withdrawal on `pool`: submit, approve (alice), approve (bob); returns the final approval's ms. */
  withdraw(pool: string): Promise<number>;
  /** One POST /v1/pools/{pool}/evaluate; returns its ms. */
  evaluate(pool: string): Promise<number>;
  rss(): { gatewayMiB: number; simMiB: number };
  close(): Promise<void>;
}

export async function startSystem(root: string, options: SystemOptions): Promise<BenchSystem> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-system-'));
  const pin = 'bench-pin-' + randomBytes(9).toString('base64url');
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  const sim = startProcess([join(root, 'dist', 'hsm-sim', 'main.js'), '--port', '0', '--data', join(dataDir, 'hsm')], { HSM_PIN: pin }, (l) => /^listening on (.*)$/.exec(l)?.[1] ?? null);
  const hsmUrl = 'tcp://' + (await sim.ready);
  // Logs at info, as operators run it: the per-request lines are part of the gateway's cost.
  const env = { DATA_DIR: dataDir, HSM_URL: hsmUrl, HSM_PIN: pin, PORT: '0', LOG_LEVEL: 'info' };
  const cliRun = async (args: string[]) => (await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env }, maxBuffer: 256 * 1024 * 1024 })).stdout;
  await cliRun(['ceremony', 'run', options.plan, '--json']);
  const token = async (role: string, name: string) => (JSON.parse(await cliRun(['token', 'create', '--role', role, '--name', name, '--json'])) as { token: string }).token;
  const tokens = { requester: await token('requester', 'bench'), alice: await token('approver', 'alice'), bob: await token('approver', 'bob') };
  if (options.seed) await options.seed(join(dataDir, 'custody.db'));
  const secrets = (JSON.parse(readFileSync(join(root, 'examples', 'demo-approver-keys.json'), 'utf8')) as { keys: Record<string, string> }).keys;
  const approverKey = (who: string) => createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, Buffer.from(hexToBytes(secrets[who] as string))]), format: 'der', type: 'pkcs8' });
  const keys = { alice: approverKey('alice'), bob: approverKey('bob') };
  const gateway = startProcess([cli, 'serve'], env, (l) => {
    try {
      const entry = JSON.parse(l) as { msg?: string; url?: string };
      return entry.msg === 'gateway listening' && entry.url ? entry.url : null;
    } catch {
      return null;
    }
  });
  const url = await gateway.ready;

  // node:http with kept-alive connections: the client shares the machine's cores with the gateway and
  // the simulator, and fetch costs it about twice the CPU per call.
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const target = new URL(url);
  const call = (method: string, path: string, tok: string, body?: unknown) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const payload = body === undefined ? undefined : JSON.stringify(body);
      const req = httpRequest(
        {
          agent, host: target.hostname, port: target.port, method, path,
          headers: { authorization: `Bearer ${tok}`, ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', reject);
          res.on('end', () => {
            try {
              const json = JSON.parse(Buffer.concat(chunks).toString('utf8')) as Record<string, unknown>;
              const status = res.statusCode ?? 0;
              if (status < 200 || status > 299) reject(new Error(`${method} ${path}: ${status} ${JSON.stringify(json).slice(0, 300)}`));
              else resolve(json);
            } catch (error) {
              reject(error instanceof Error ? error : new Error(String(error)));
            }
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  const nonces = new Map<string, number>();
  const request = (pool: string, nonce: number) => ({
    pool, chain: 'eip155:11155111', asset: 'ETH', amount: '1', to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
    nonce: String(nonce), gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
  });
  return {
    async withdraw(pool) {
      const nonce = nonces.get(pool) ?? 0;
      nonces.set(pool, nonce + 1);
      const w = await call('POST', '/v1/withdrawals', tokens.requester, request(pool, nonce));
      const text = Buffer.from(w.approvalMessage as string, 'utf8');
      const approve = (who: 'alice' | 'bob') =>
        call('POST', `/v1/withdrawals/${w.id as string}/approvals`, tokens[who], { signature: cryptoSign(null, text, keys[who]).toString('hex'), decision: 'approve' });
      await approve('alice');
      const t0 = process.hrtime.bigint();
      const done = await approve('bob');
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (done.state !== 'signed') throw new Error(`withdrawal ${w.id as string} ended ${String(done.state)}`);
      return ms;
    },
    async evaluate(pool) {
      const t0 = process.hrtime.bigint();
      const decision = await call('POST', `/v1/pools/${pool}/evaluate`, tokens.requester, request(pool, 1_000_000));
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (decision.allowed !== true) throw new Error(`evaluate on ${pool} was not allowed: ${JSON.stringify(decision).slice(0, 300)}`);
      return ms;
    },
    rss: () => ({ gatewayMiB: rssMiB(gateway.child.pid), simMiB: rssMiB(sim.child.pid) }),
    async close() {
      agent.destroy();
      const exited = (c: ChildProcess) => new Promise<void>((r) => (c.exitCode !== null || c.signalCode !== null ? r() : c.once('exit', () => r())));
      gateway.child.kill('SIGTERM');
      sim.child.kill('SIGTERM');
      await Promise.all([exited(gateway.child), exited(sim.child)]);
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

/** Median of `values` (the mean of the middle two for an even count). */
export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}

/** The median run of each figure of `runs` (each figure on its own), and the range of throughput. */
function medianOf<T extends { perSecond: number; finalApprovalP50Ms: number; finalApprovalP99Ms: number }>(runs: readonly T[]): T & { perSecondRange: [number, number]; p99Range: [number, number] } {
  const first = runs[0] as T;
  return {
    ...first,
    perSecond: median(runs.map((r) => r.perSecond)),
    finalApprovalP50Ms: median(runs.map((r) => r.finalApprovalP50Ms)),
    finalApprovalP99Ms: median(runs.map((r) => r.finalApprovalP99Ms)),
    perSecondRange: [Math.min(...runs.map((r) => r.perSecond)), Math.max(...runs.map((r) => r.perSecond))],
    p99Range: [Math.min(...runs.map((r) => r.finalApprovalP99Ms)), Math.max(...runs.map((r) => r.finalApprovalP99Ms))],
  };
}

export type MedianLevel = ReturnType<typeof medianOf<LevelResult>>;
export type MedianPaced = ReturnType<typeof medianOf<PacedResult & { perSecond: number }>>;

/** Closed loop: `concurrency` clients, each starting its next withdrawal when the last one is signed. */
async function closedLoop(one: () => Promise<number>, level: { concurrency: number; withdrawals: number }): Promise<LevelResult> {
  const latencies: number[] = [];
  let left = level.withdrawals;
  const t0 = process.hrtime.bigint();
  await Promise.all(
    Array.from({ length: level.concurrency }, async () => {
      while (left > 0) {
        left -= 1;
        latencies.push(await one());
      }
    }),
  );
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const { p50, p99 } = percentiles(latencies);
  process.stderr.write(`lifecycle: concurrency ${level.concurrency}: ${latencies.length} withdrawals in ${seconds.toFixed(1)} s\n`);
  return { concurrency: level.concurrency, withdrawals: latencies.length, perSecond: latencies.length / seconds, finalApprovalP50Ms: p50, finalApprovalP99Ms: p99 };
}

/** Open loop: withdrawals started at `rate` per second, whatever the earlier ones are doing. */
async function openLoop(one: () => Promise<number>, rate: number, seconds: number): Promise<PacedResult & { perSecond: number }> {
  const count = Math.max(100, Math.round(rate * seconds));
  const latencies: number[] = [];
  const t0 = process.hrtime.bigint();
  const started: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const due = (i * 1000) / rate;
    const wait = due - Number(process.hrtime.bigint() - t0) / 1e6;
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    started.push(one().then((ms) => void latencies.push(ms)));
  }
  await Promise.all(started);
  const took = Number(process.hrtime.bigint() - t0) / 1e9;
  const { p50, p99 } = percentiles(latencies);
  process.stderr.write(`lifecycle: paced at ${rate.toFixed(1)}/s: ${count} withdrawals in ${took.toFixed(1)} s\n`);
  return { targetPerSecond: rate, withdrawals: count, achievedPerSecond: count / took, perSecond: count / took, finalApprovalP50Ms: p50, finalApprovalP99Ms: p99 };
}

/** A fresh system on the example plan, warmed up with 20 withdrawals, for `use`; closed afterwards. */
async function withSystem<T>(root: string, use: (one: () => Promise<number>, system: BenchSystem) => Promise<T>): Promise<T> {
  const system = await startSystem(root, { plan: join(root, 'examples', 'ceremony-plan.json') });
  try {
    const one = () => system.withdraw('client-a');
    await Promise.all(Array.from({ length: 20 }, () => one()));
    return await use(one, system);
  } finally {
    await system.close();
  }
}

/**
 * The full lifecycle on the example plan's pool client-a: `repeats` runs, each on a fresh system, of
 * every concurrency of `plan` (closed loop); then `repeats` open-loop runs, each on a fresh system,
 * paced at half of the best median throughput. Every figure reported is the median of its runs.
 */
export async function lifecycle(root: string, plan: { concurrency: number; withdrawals: number }[], pacedSeconds: number, repeats: number): Promise<LifecycleResult> {
  const runs: LevelResult[][] = [];
  for (let r = 0; r < repeats; r++) {
    process.stderr.write(`lifecycle: run ${r + 1} of ${repeats}\n`);
    runs.push(await withSystem(root, async (one) => {
      const levels: LevelResult[] = [];
      for (const level of plan) levels.push(await closedLoop(one, level));
      return levels;
    }));
  }
  const levels = plan.map((_, i) => medianOf(runs.map((run) => run[i] as LevelResult)));
  const rate = Math.max(...levels.map((l) => l.perSecond)) / 2;
  const pacedRuns: (PacedResult & { perSecond: number })[] = [];
  let rss = { gatewayMiB: NaN, simMiB: NaN };
  for (let r = 0; r < repeats; r++) {
    pacedRuns.push(await withSystem(root, async (one, system) => {
      const result = await openLoop(one, rate, pacedSeconds);
      rss = system.rss();
      return result;
    }));
  }
  return { levels, paced: medianOf(pacedRuns), repeats, gatewayRssMiB: rss.gatewayMiB, simRssMiB: rss.simMiB };
}
