/**
 * Test harness: the real processes on loopback. The HSM simulator (test/helpers/sim-process.ts), the
 * `custody` CLI for the ceremony and tokens, and `custody serve` as the gateway process, all on one
 * temporary DATA_DIR. Nothing is mocked.
 */
import { randomBytes } from 'node:crypto';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { promisify } from 'node:util';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalApprovalMessage, parseApprovalMessage } from '../../common/approval-message.js';
import { startSim } from './sim-process.js';
import { logSink, recordSecrets } from './suite-logs.js';

const run = promisify(execFile);

export const ROOT = resolve(import.meta.dirname, '..', '..');
export const CLI = join(ROOT, 'dist', 'src', 'cli', 'main.js');
export const PLAN = join(ROOT, 'examples', 'ceremony-plan.json');

/** RFC 8032 section 7.1 tests 1-3: the secret keys behind the example plan's approvers. */
export const APPROVER_SECRETS: Readonly<Record<string, string>> = JSON.parse(
  readFileSync(join(ROOT, 'examples', 'demo-approver-keys.json'), 'utf8'),
).keys;

export const SEPOLIA = 'eip155:11155111';
export const ALLOWLISTED = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';

export type SimHandle = Awaited<ReturnType<typeof startSim>>;

export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface Gateway {
  readonly url: string;
  readonly process: ChildProcess;
  /** Every stdout line the gateway wrote (pino JSON). */
  readonly logs: string[];
  stop(): Promise<void>;
  kill(): Promise<void>;
}

export interface Stack {
  readonly dataDir: string;
  sim: SimHandle;
  gateway: Gateway;
  readonly env: Record<string, string>;
  readonly tokens: { requester: string; alice: string; bob: string; carol: string; admin: string; auditor: string };
  readonly ceremony: { pools: { id: string; keys: { chain: string; address: string; publicKey: string }[] }[] };
  cli(args: string[], extraEnv?: Record<string, string>): Promise<CliResult>;
  api(method: string, path: string, token: string | null, body?: unknown, headers?: Record<string, string>): Promise<ApiResponse>;
  /** Kills the simulator and starts it again on the same data, PIN and port, with `args` (fault flags). */
  restartSim(args?: readonly string[]): Promise<void>;
  restartGateway(): Promise<void>;
  allLogs(): string[];
  close(): Promise<void>;
}

export interface ApiResponse {
  readonly status: number;
  readonly contentType: string;
  readonly body: Record<string, unknown>;
}

export function poolAddress(stack: Stack, pool: string, chain = SEPOLIA): string {
  const key = stack.ceremony.pools.find((p) => p.id === pool)?.keys.find((k) => k.chain === chain);
  if (!key) throw new Error(`no key for ${pool} on ${chain}`);
  return key.address;
}

/** Signs the request's approval message as `approver` with the RFC 8032 key, for `decision`. */
export function signApproval(approvalMessage: string, approver: string, decision: 'approve' | 'reject' = 'approve'): string {
  const secret = APPROVER_SECRETS[approver];
  if (!secret) throw new Error(`no secret for ${approver}`);
  const text = canonicalApprovalMessage({ ...parseApprovalMessage(approvalMessage), decision });
  return bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(secret)));
}

/**
 * One HTTP call to a gateway at `baseUrl`: bearer `token` if given, `body` as JSON (a string is sent
 * as it is); the answer parsed as JSON, or `{ raw }` when it is not.
 */
export async function callApi(baseUrl: string, method: string, path: string, token: string | null, body?: unknown, headers: Record<string, string> = {}): Promise<ApiResponse> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  const text = await res.text();
  let parsed: Record<string, unknown> = {};
  try {
    parsed = JSON.parse(text) as Record<string, unknown>;
  } catch {
    parsed = { raw: text };
  }
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', body: parsed };
}

export async function runCli(args: string[], env: Record<string, string>): Promise<CliResult> {
  try {
    const { stdout, stderr } = await run(process.execPath, [CLI, ...args], { env: { ...process.env, ...env }, timeout: 60_000 });
    return { code: 0, stdout, stderr };
  } catch (error) {
    const e = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

export async function startGatewayProcess(env: Record<string, string>, logs: string[]): Promise<Gateway> {
  const child = spawn(process.execPath, [CLI, 'serve'], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  const sink = logSink('gateway');
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    sink(d.toString());
  });
  const url = await new Promise<string>((resolveUrl, reject) => {
    // One that is not listening in time is killed, and the start fails once it has exited: no test holds a handle to stop it.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 20_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(timedOut ? `gateway did not start within 20 s; stderr: ${stderr}` : `gateway exited with ${code}; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      logs.push(line);
      sink(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'gateway listening' && entry.url) {
          clearTimeout(timer);
          resolveUrl(entry.url);
        }
      } catch {
        // a non-JSON line is kept in logs and checked by the log tests
      }
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    url,
    process: child,
    logs,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** `plan`: the ceremony plan file to run (the example plan by default); `env`: more configuration (other devices). */
export async function startStack(options: { plan?: string; env?: Record<string, string> } = {}): Promise<Stack> {
  const dataDir = mkdtempSync(join(tmpdir(), 'custody-e2e-'));
  const pin = 'e2e-pin-' + randomBytes(9).toString('base64url');
  let sim: SimHandle;
  try {
    sim = await startSim({ dataDir: join(dataDir, 'hsm'), pin });
  } catch (error) {
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  }
  const env: Record<string, string> = { DATA_DIR: dataDir, HSM_URL: sim.url, HSM_PIN: pin, PORT: '0', HOST: '127.0.0.1', LOG_LEVEL: 'info', ...options.env };

  const cli = (args: string[], extraEnv: Record<string, string> = {}) => runCli(args, { ...env, ...extraEnv });
  const logs: string[] = [];
  const earlierLogs: string[] = [];
  // A stack that fails half-way stops what it started: the caller gets no handle to close it with.
  const prepared = await (async () => {
    const ceremonyRun = await cli(['ceremony', 'run', options.plan ?? PLAN, '--json']);
    if (ceremonyRun.code !== 0) throw new Error(`ceremony failed: ${ceremonyRun.stderr}`);
    const ceremony = JSON.parse(ceremonyRun.stdout) as Stack['ceremony'];

    const token = async (role: string, name: string) => {
      const r = await cli(['token', 'create', '--role', role, '--name', name, '--json']);
      if (r.code !== 0) throw new Error(`token create failed: ${r.stderr}`);
      return (JSON.parse(r.stdout) as { token: string }).token;
    };
    const tokens = {
      requester: await token('requester', 'ops-desk'),
      alice: await token('approver', 'alice'),
      bob: await token('approver', 'bob'),
      carol: await token('approver', 'carol'),
      admin: await token('admin', 'alice'),
      auditor: await token('auditor', 'auditor'),
    };

    recordSecrets([pin, ...Object.values(tokens), ...Object.entries(options.env ?? {}).filter(([k]) => /PIN|PASSPHRASE/.test(k)).map(([, v]) => v)]);
    return { ceremony, tokens, gateway: await startGatewayProcess(env, logs) };
  })().catch(async (error: unknown) => {
    await sim.kill();
    rmSync(dataDir, { recursive: true, force: true });
    throw error;
  });
  const { ceremony, tokens } = prepared;
  let gateway = prepared.gateway;

  const stack: Stack = {
    dataDir,
    sim,
    gateway,
    env,
    tokens,
    ceremony,
    cli,
    api: (method, path, tok, body, headers = {}) => callApi(stack.gateway.url, method, path, tok, body, headers),
    async restartSim(args = []) {
      await sim.kill('SIGKILL');
      sim = await startSim({ dataDir: join(dataDir, 'hsm'), pin, port: sim.port, args });
      stack.sim = sim;
    },
    async restartGateway() {
      await stack.gateway.kill();
      earlierLogs.push(...stack.gateway.logs.splice(0));
      gateway = await startGatewayProcess(env, logs);
      stack.gateway = gateway;
    },
    allLogs() {
      return [...earlierLogs, ...stack.gateway.logs];
    },
    async close() {
      await stack.gateway.stop();
      await stack.sim.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  return stack;
}
