/**
 * Test harness: the HSM simulator as a real process on loopback (`node dist/hsm-sim/main.js`), in a
 * temporary data directory unless one is given. Waits for its `listening on 127.0.0.1:P` line.
 */
import { randomBytes } from 'node:crypto';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { logSink, recordSecrets } from './suite-logs.js';

export const SIM_BIN = resolve(import.meta.dirname, '..', '..', 'dist', 'hsm-sim', 'main.js');

export interface SimProcess {
  readonly port: number;
  readonly url: string;
  readonly dataDir: string;
  readonly pin: string;
  readonly process: ChildProcess;
  /** Everything the process wrote to stderr so far. */
  stderr(): string;
  /** Resolves with the exit status once the process has exited (null when a signal ended it). */
  exited(): Promise<number | null>;
  stop(): Promise<void>;
  kill(signal?: NodeJS.Signals): Promise<void>;
}

export interface StartSimOptions {
  readonly dataDir?: string;
  readonly pin?: string;
  /** 0 (default) picks a free port. */
  readonly port?: number;
  readonly args?: readonly string[];
}

export async function startSim(options: StartSimOptions = {}): Promise<SimProcess> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'hsm-sim-'));
  const pin = options.pin ?? 'test-pin-' + randomBytes(9).toString('base64url');
  const child = spawn(process.execPath, [SIM_BIN, '--port', String(options.port ?? 0), '--data', dataDir, ...(options.args ?? [])], {
    env: { ...process.env, HSM_PIN: pin },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const sink = logSink('hsm-sim');
  recordSecrets([pin]);
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    sink(d.toString());
  });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  const port = await new Promise<number>((resolvePort, reject) => {
    // One that is not listening in time is killed, and the start fails once it has exited: no test holds a handle to stop it.
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, 15_000);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(timedOut ? `hsm-sim did not start within 15 s; stderr: ${stderr}` : `hsm-sim exited with ${code} before listening; stderr: ${stderr}`));
    });
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
      sink(line);
      const m = /^listening on 127\.0\.0\.1:([0-9]+)$/.exec(line);
      if (m) {
        clearTimeout(timer);
        resolvePort(Number(m[1]));
      }
    });
  });
  const alive = () => child.exitCode === null && child.signalCode === null;
  return {
    port,
    url: `tcp://127.0.0.1:${port}`,
    dataDir,
    pin,
    process: child,
    stderr: () => stderr,
    exited: () => exited,
    async stop() {
      if (alive()) child.kill('SIGTERM');
      await exited;
    },
    async kill(signal: NodeJS.Signals = 'SIGKILL') {
      if (alive()) child.kill(signal);
      await exited;
    },
  };
}
