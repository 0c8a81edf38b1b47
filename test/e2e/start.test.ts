/**
 * README's first command and its worked example: `npm start` (node dist/src/start.js) on an empty
 * DATA_DIR runs the demo ceremony, starts the simulator and the gateway, and writes the demo tokens
 * and approver key files; a withdrawal then goes through with curl-like calls and `custody approve`
 * with the demo key files, exactly as README shows; a second start reuses everything.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, describe, expect, it } from 'vitest';
import { Transaction } from 'ethers';
import { ALLOWLISTED, callApi, ROOT, SEPOLIA, runCli } from '../helpers/gateway-stack.js';
import { logSink, recordSecrets } from '../helpers/suite-logs.js';
import { freePort } from '../helpers/free-port.js';

const START = join(ROOT, 'dist', 'src', 'start.js');
const dataDir = mkdtempSync(join(tmpdir(), 'custody-start-'));
let running: ChildProcess | null = null;

/** Starts `npm start`'s program; resolves with the gateway URL and everything it printed. */
async function start(env: Record<string, string>): Promise<{ url: string; output: string[] }> {
  const child = spawn(process.execPath, [START], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  running = child;
  const sink = logSink('npm-start');
  const output: string[] = [];
  child.stderr?.on('data', (d: Buffer) => sink(d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`npm start was not ready within 60 s:\n${output.join('\n')}`)), 60_000);
    child.once('exit', (code) => reject(new Error(`npm start exited with ${code}:\n${output.join('\n')}`)));
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      output.push(line);
      // The demo banner prints the demo tokens on purpose; the logs (pino JSON lines) must not.
      if (line.startsWith('{')) sink(line);
      const m = /^Custody gateway ready at (http:\/\/\S+)/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolve(m[1] as string);
      }
    });
  });
  return { url, output };
}

async function stop(): Promise<number | null> {
  const child = running;
  running = null;
  if (!child || child.exitCode !== null) return child?.exitCode ?? null;
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  child.kill('SIGTERM');
  return exited;
}

afterAll(async () => {
  await stop();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('npm start and the README walk-through', () => {
  let env: Record<string, string>;
  let withdrawalId = '';

  it('when started on an empty DATA_DIR, then it runs the demo ceremony and a withdrawal goes through as README shows', async () => {
    env = { DATA_DIR: dataDir, PORT: '0', HSM_URL: `tcp://127.0.0.1:${await freePort()}`, LOG_LEVEL: 'info' };
    const { url, output } = await start(env);
    expect(output.join('\n')).toMatch(/First start: running the demo ceremony/);
    expect(output.join('\n')).toMatch(/passphrase "demo-passphrase"/);
    const tokens = JSON.parse(readFileSync(join(dataDir, 'demo', 'tokens.json'), 'utf8')) as { requester: string; approvers: Record<string, string>; auditor: string };
    recordSecrets([tokens.requester, tokens.auditor, ...Object.values(tokens.approvers), readFileSync(join(dataDir, 'hsm-pin'), 'utf8').trim()]);
    expect((await fetch(url + '/readyz')).status).toBe(200);

    const pools = await callApi(url, 'GET', '/v1/pools', tokens.requester);
    expect(pools.status).toBe(200);
    const submitted = await callApi(url, 'POST', '/v1/withdrawals', tokens.requester, {
      pool: 'client-a', chain: SEPOLIA, asset: 'ETH', amount: '500000000000000000', to: ALLOWLISTED, nonce: '0', gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
    }, { 'Idempotency-Key': 'demo-1' });
    expect(submitted.status).toBe(201);
    withdrawalId = submitted.body.id as string;

    for (const who of ['alice', 'bob']) {
      const approved = await runCli(['approve', withdrawalId, '--key', join(dataDir, 'demo', `${who}.key`), '--token', tokens.approvers[who] as string, '--url', url], { ...env, CUSTODY_KEY_PASSPHRASE: 'demo-passphrase' });
      expect(approved.code, approved.stderr).toBe(0);
    }
    const signed = await callApi(url, 'GET', `/v1/withdrawals/${withdrawalId}`, tokens.requester);
    expect(signed.body.state).toBe('signed');
    const tx = Transaction.from(signed.body.signedTx as string);
    expect(tx.to).toBe(ALLOWLISTED);
    expect(tx.value).toBe(500000000000000000n);

    const audit = await runCli(['audit', 'verify'], env);
    expect(audit.code, audit.stderr).toBe(0);
    expect(await stop()).not.toBe(null);
  }, 120_000);

  it('when started again on the same DATA_DIR, then it reuses the ceremony, the tokens and the signed request', async () => {
    const { url, output } = await start(env);
    expect(output.join('\n')).not.toMatch(/First start/);
    const tokens = JSON.parse(readFileSync(join(dataDir, 'demo', 'tokens.json'), 'utf8')) as { requester: string };
    const again = await callApi(url, 'GET', `/v1/withdrawals/${withdrawalId}`, tokens.requester);
    expect(again.body.state).toBe('signed');
    await stop();
  }, 120_000);
});
