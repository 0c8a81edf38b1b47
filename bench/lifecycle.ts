/**
 * Benchmark sections of issue 8: the crypto bound of one withdrawal, and the full lifecycle through the
 * real processes (`custody serve` over HTTP, `hsm-sim` over TCP, the SQLite store with durable
 * commits) at several concurrencies, with the ratio of the two.
 *
 * Per withdrawal the cryptography is: 2 Ed25519 approval verifications in the gateway, the same 2 again
 * in the device, 1 RFC 6979 ECDSA signature in the device, and 1 ECDSA public-key recovery in the
 * gateway (the signed transaction's sender is checked before it is released). The bound runs exactly
 * that in a tight loop on one core, with the implementations the product uses (Node's OpenSSL for
 * Ed25519, noble for secp256k1).
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { createPrivateKey, createPublicKey, sign as cryptoSign, verify as cryptoVerify } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalApprovalMessage, parseApprovalMessage } from '../common/approval-message.js';

const run = promisify(execFile);
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export interface BoundResult {
  readonly usPerWithdrawal: number;
  readonly perSecond: number;
  readonly parts: Record<string, number>;
}

function timeUs(iterations: number, fn: () => void): number {
  for (let i = 0; i < Math.min(50, iterations); i++) fn();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < iterations; i++) fn();
  return Number(process.hrtime.bigint() - t0) / iterations / 1000;
}

export function cryptoBound(iterations: number): BoundResult {
  const privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, Buffer.alloc(32, 7)]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const message = Buffer.from(canonicalApprovalMessage(parseApprovalMessage(sampleApproval())), 'utf8');
  const signature = cryptoSign(null, message, privateKey);
  const verify = timeUs(iterations, () => {
    if (!cryptoVerify(null, message, publicKey, signature)) throw new Error('bound: verify failed');
  });
  const secret = secp256k1.utils.randomSecretKey();
  const digest = new Uint8Array(32).fill(9);
  const sign = timeUs(iterations, () => secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' }));
  const signed = secp256k1.sign(digest, secret, { prehash: false, lowS: true, format: 'recovered' });
  const recover = timeUs(iterations, () => secp256k1.Signature.fromBytes(signed, 'recovered').recoverPublicKey(digest));
  const usPerWithdrawal = 4 * verify + sign + recover;
  return { usPerWithdrawal, perSecond: 1e6 / usPerWithdrawal, parts: { 'Ed25519 verify ×4': 4 * verify, 'ECDSA sign': sign, 'ECDSA recover': recover } };
}

function sampleApproval(): string {
  return canonicalApprovalMessage({
    kind: 'custody.approval', version: 1, requestId: '6f1c1f4e-3c1a-4c59-9a4e-2b9f4f3e8d10', pool: 'client-a', chain: 'eip155:11155111', asset: 'ETH',
    amount: '1', to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72', maxFee: '630000000000000', digest: 'ab'.repeat(32), policyVersion: 1, decision: 'approve',
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
  const ready = new Promise<string>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`${args[0]} exited with ${code}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      const found = readyLine(line);
      if (found !== null) resolve(found);
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

export interface LifecycleResult {
  readonly levels: readonly LevelResult[];
  readonly gatewayRssMiB: number;
  readonly simRssMiB: number;
}

/** The full lifecycle: submit, two approvals; the second answers once the transaction is signed. */
export async function lifecycle(root: string, plan: { concurrency: number; withdrawals: number }[]): Promise<LifecycleResult> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-lifecycle-'));
  const pin = 'bench-pin-' + Math.random().toString(36).slice(2);
  const cli = join(root, 'dist', 'src', 'cli', 'main.js');
  const sim = startProcess([join(root, 'dist', 'hsm-sim', 'main.js'), '--port', '0', '--data', join(dataDir, 'hsm')], { HSM_PIN: pin }, (l) => /^listening on (.*)$/.exec(l)?.[1] ?? null);
  const hsmUrl = 'tcp://' + (await sim.ready);
  // Logs at info, as operators run it: the per-request lines are part of the gateway's cost.
  const env = { DATA_DIR: dataDir, HSM_URL: hsmUrl, HSM_PIN: pin, PORT: '0', LOG_LEVEL: 'info' };
  const cliRun = async (args: string[]) => (await run(process.execPath, [cli, ...args], { env: { ...process.env, ...env } })).stdout;
  await cliRun(['ceremony', 'run', join(root, 'examples', 'ceremony-plan.json'), '--json']);
  const token = async (role: string, name: string) => (JSON.parse(await cliRun(['token', 'create', '--role', role, '--name', name, '--json'])) as { token: string }).token;
  const tokens = { requester: await token('requester', 'bench'), alice: await token('approver', 'alice'), bob: await token('approver', 'bob') };
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

  const call = async (method: string, path: string, tok: string, body?: unknown) => {
    const res = await fetch(url + path, { method, headers: { authorization: `Bearer ${tok}`, 'content-type': 'application/json' }, ...(body ? { body: JSON.stringify(body) } : {}) });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json).slice(0, 300)}`);
    return json;
  };
  let nonce = 0;
  const one = async (): Promise<number> => {
    const w = await call('POST', '/v1/withdrawals', tokens.requester, {
      pool: 'client-a', chain: 'eip155:11155111', asset: 'ETH', amount: '1', to: '0x8ba1f109551bD432803012645Ac136ddd64DBA72',
      nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
    });
    const text = Buffer.from(w.approvalMessage as string, 'utf8');
    const approve = (who: 'alice' | 'bob') =>
      call('POST', `/v1/withdrawals/${w.id as string}/approvals`, tokens[who], { signature: cryptoSign(null, text, keys[who]).toString('hex'), decision: 'approve' });
    await approve('alice');
    const t0 = process.hrtime.bigint();
    const done = await approve('bob');
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    if (done.state !== 'signed') throw new Error(`withdrawal ${w.id as string} ended ${String(done.state)}`);
    return ms;
  };

  const levels: LevelResult[] = [];
  try {
    await Promise.all(Array.from({ length: 20 }, () => one()));
    for (const level of plan) {
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
      latencies.sort((a, b) => a - b);
      const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] as number;
      levels.push({ concurrency: level.concurrency, withdrawals: latencies.length, perSecond: latencies.length / seconds, finalApprovalP50Ms: at(0.5), finalApprovalP99Ms: at(0.99) });
      process.stderr.write(`lifecycle: concurrency ${level.concurrency}: ${latencies.length} withdrawals in ${seconds.toFixed(1)} s\n`);
    }
    return { levels, gatewayRssMiB: rssMiB(gateway.child.pid), simRssMiB: rssMiB(sim.child.pid) };
  } finally {
    gateway.child.kill('SIGTERM');
    sim.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 300));
    rmSync(dataDir, { recursive: true, force: true });
  }
}
