/**
 * `npm start` (SPEC sections 8 and 9): start the HSM simulator and the gateway together on loopback,
 * with SQLite under DATA_DIR. On an empty DATA_DIR it first runs the demo ceremony from
 * examples/ceremony-plan.json and writes demo tokens and approver key files; later starts reuse them.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { demoPinPath, loadConfig, type Config } from './config.js';
import { parseCeremonyPlan } from './domain/ceremony-plan.js';
import { createLogger } from './logger.js';
import { openDevices, openStore, startGateway } from './main.js';
import { runCeremony } from './service/run-ceremony.js';
import { createToken } from './service/tokens.js';
import { approverKeyFromSecret, writeApproverKeyFile } from './cli/approver-key-file.js';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PLAN = join(ROOT, 'examples', 'ceremony-plan.json');
const DEMO_KEYS = join(ROOT, 'examples', 'demo-approver-keys.json');
const SIM_BIN = join(ROOT, 'dist', 'hsm-sim', 'main.js');

interface DemoTokens {
  readonly requester: string;
  readonly approvers: Readonly<Record<string, string>>;
  readonly admin: string;
  readonly auditor: string;
}

/** The banner and progress go to stderr: stdout carries the gateway's JSON log only. */
function say(line = ''): void {
  process.stderr.write(line + '\n');
}

/**
 * The simulator PIN: HSM_PIN or HSM_PIN_FILE, or a demo PIN generated once into DATA_DIR/demo/ (demo
 * only: with the PIN beside the sealed state, a copy of DATA_DIR unseals the demo keys; the banner says so).
 */
function ensurePin(config: Config): { pin: string; demo: boolean } {
  if (config.hsmPin !== null) return { pin: config.hsmPin, demo: config.hsmPinSource === 'demo' };
  mkdirSync(join(config.dataDir, 'demo'), { recursive: true, mode: 0o700 });
  const legacy = join(config.dataDir, 'hsm-pin');
  if (existsSync(legacy)) {
    // A demo DATA_DIR from before the PIN moved under demo/: move it there rather than lock its state out.
    renameSync(legacy, demoPinPath(config.dataDir));
    say(`Moved the demo PIN file ${legacy} to ${demoPinPath(config.dataDir)}`);
    return { pin: readFileSync(demoPinPath(config.dataDir), 'utf8').trim(), demo: true };
  }
  const pin = randomBytes(18).toString('base64url');
  writeFileSync(demoPinPath(config.dataDir), pin + '\n', { mode: 0o600, flag: 'wx' });
  return { pin, demo: true };
}

async function startSimulator(config: Config, pin: string): Promise<ChildProcess> {
  const port = config.hsmUrl.split(':').pop() as string;
  const child = spawn(process.execPath, [SIM_BIN, '--port', port, '--data', join(config.dataDir, 'hsm')], {
    env: { ...process.env, HSM_PIN: pin },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolveReady, reject) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const onExit = (code: number | null) => reject(new Error(`hsm-sim exited with status ${code} before it was ready`));
    child.once('exit', onExit);
    lines.on('line', (line) => {
      if (line.startsWith('listening on ')) {
        child.off('exit', onExit);
        resolveReady();
      }
    });
  });
  return child;
}

/** The passphrase of the demo approver key files (they hold the published RFC 8032 test keys anyway). */
const DEMO_KEY_PASSPHRASE = 'demo-passphrase';

async function runDemoCeremony(config: Config): Promise<DemoTokens> {
  const demoDir = join(config.dataDir, 'demo');
  mkdirSync(demoDir, { recursive: true, mode: 0o700 });
  const planText = readFileSync(PLAN, 'utf8');
  const plan = parseCeremonyPlan(JSON.parse(planText));
  const store = await openStore(config);
  const devices = openDevices(config);
  try {
    say('First start: running the demo ceremony from examples/ceremony-plan.json');
    const transcript = await runCeremony({ store, devices, now: Date.now, progress: (line) => say(`  ceremony: ${line}`) }, plan, planText);
    writeFileSync(join(demoDir, 'transcript.json'), JSON.stringify(transcript, null, 2) + '\n');

    const secrets = (JSON.parse(readFileSync(DEMO_KEYS, 'utf8')) as { keys: Record<string, string> }).keys;
    const approvers: Record<string, string> = {};
    for (const a of plan.approvers) {
      const secret = secrets[a.id];
      if (secret === undefined) continue;
      writeApproverKeyFile(join(demoDir, `${a.id}.key`), approverKeyFromSecret(secret, a.id), DEMO_KEY_PASSPHRASE);
      approvers[a.id] = (await createToken(store, 'approver', a.id, Date.now())).token;
    }
    const tokens: DemoTokens = {
      requester: (await createToken(store, 'requester', 'ops-desk', Date.now())).token,
      approvers,
      admin: (await createToken(store, 'admin', plan.admins[0] as string, Date.now())).token,
      auditor: (await createToken(store, 'auditor', 'auditor', Date.now())).token,
    };
    writeFileSync(join(demoDir, 'tokens.json'), JSON.stringify(tokens, null, 2) + '\n', { mode: 0o600 });
    return tokens;
  } finally {
    await devices.close();
    await store.close();
  }
}

async function main(): Promise<void> {
  // Every file and directory this process and its simulator create is its owner's only (0600 / 0700).
  process.umask(0o077);
  const config = loadConfig();
  mkdirSync(config.dataDir, { recursive: true, mode: 0o700 });
  const { pin, demo } = ensurePin(config);
  const ready: Config = { ...config, hsmPin: pin, hsmPinSource: demo ? 'demo' : config.hsmPinSource };
  const sim = await startSimulator(ready, pin);

  const stopSim = () => {
    if (sim.exitCode === null) sim.kill('SIGTERM');
  };
  process.once('exit', stopSim);

  try {
    const tokensPath = join(config.dataDir, 'demo', 'tokens.json');
    const store = await openStore(ready);
    const pools = await store.transaction((tx) => tx.listPools());
    await store.close();
    let tokens: DemoTokens | null = null;
    if (pools.length === 0) tokens = await runDemoCeremony(ready);
    else if (existsSync(tokensPath)) tokens = JSON.parse(readFileSync(tokensPath, 'utf8')) as DemoTokens;

    const gateway = await startGateway(ready, { log: createLogger(config.logLevel) });
    sim.once('exit', (code) => {
      process.stderr.write(`hsm-sim exited (status ${code}); stopping the gateway\n`);
      gateway.close().finally(() => process.exit(1));
    });
    const demoDir = join(config.dataDir, 'demo');
    say('');
    say(`Custody gateway ready at ${gateway.url}   (HSM simulator at ${config.hsmUrl}, data in ${config.dataDir})`);
    if (tokens) {
      // The tokens go to the file only: stderr and stdout end up in log collectors.
      say(`Demo tokens (requester ops-desk, approvers ${Object.keys(tokens.approvers).join(', ')}, admin, auditor): in ${tokensPath} (mode 0600; demo only)`);
      say(`Approver key files (RFC 8032 test keys, never for real funds): ${join(demoDir, '*.key')}, passphrase "${DEMO_KEY_PASSPHRASE}"`);
    }
    if (demo) {
      say(`Demo PIN: kept in ${demoPinPath(config.dataDir)}, beside the sealed keys, so a copy of ${config.dataDir} unseals them.`);
      say('  Demo only: in production set HSM_PIN or HSM_PIN_FILE (a file outside DATA_DIR, mode 0600); see docs/threat-model.md.');
    }
    say('See README.md for a withdrawal end to end. Ctrl-C stops both processes.');
    say('');

    const stop = () => {
      gateway.close().finally(() => {
        stopSim();
        process.exit(0);
      });
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  } catch (error) {
    stopSim();
    throw error;
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`npm start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
