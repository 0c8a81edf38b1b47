#!/usr/bin/env node
/**
 * `hsm-sim --port P --data DIR [--pin PIN] [--mode custody|ledger]` (SPEC section 9): the HSM
 * simulator as its own process on loopback. Prints exactly `listening on 127.0.0.1:P` once ready.
 * The PIN comes from HSM_PIN or from a file (HSM_PIN_FILE or --pin-file, outside DATA_DIR and
 * readable by its owner only); `--pin` is still accepted (SPEC section 9) but warned about, as the
 * command line is visible to every user in `ps`. Without a PIN the custody device starts locked and
 * the first correct LOGIN unseals it. A new state is sealed only under a PIN of at least 12 characters. `--mode ledger` emulates a Ledger's Ethereum app behind a Speculos-style
 * APDU port (docs/device-protocol.md "Ledger mode"); it needs the PIN at start, as a Ledger is
 * unlocked on the device rather than over the wire.
 */
import type { Server } from 'node:net';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { STATE_FILE, SealedStore, WrongPinError } from './sealed-state.js';
import { pinWeakness, readPinFile } from '../common/pin.js';
import { SimDevice, freshState } from './device.js';
import { createSimServer } from './server.js';
import { FAULT_FLAGS, parseFaultFlags, type FaultPlan } from './faults.js';
import { createLedgerApp } from './ledger/ledger-app.js';
import { openLedgerSeed } from './ledger/ledger-seed.js';
import { createLedgerServer } from './ledger/ledger-server.js';

const USAGE =
  'usage: hsm-sim --port P --data DIR [--pin-file FILE | --pin PIN] [--mode custody|ledger] [--fault-latency MS] [--fault-error-rate P] [--fault-drop-rate P] [--crash-after-signs N]';

function fail(code: number, message: string): never {
  process.stderr.write(`hsm-sim: ${message}\n`);
  process.exit(code);
}

function parseArgs(argv: string[]): { port: number; data: string; pin: string | null; mode: string; faults: FaultPlan } {
  const out: Record<string, string> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (arg === '--help' || arg === '-h') {
      process.stdout.write(USAGE + '\n');
      process.exit(0);
    }
    const m = new RegExp(`^--(port|data|pin|pin-file|mode|${FAULT_FLAGS.join('|')})(?:=(.*))?$`).exec(arg);
    if (!m) fail(2, `unknown argument "${arg}"; ${USAGE}`);
    const value = m[2] ?? argv[++i];
    if (value === undefined) fail(2, `--${m[1]} needs a value; ${USAGE}`);
    out[m[1] as string] = value;
  }
  if (out.port === undefined || !/^[0-9]{1,5}$/.test(out.port) || Number(out.port) > 65535) fail(2, `--port must be a TCP port 0-65535; ${USAGE}`);
  if (out.data === undefined || out.data === '') fail(2, `--data DIR is required; ${USAGE}`);
  const mode = out.mode ?? 'custody';
  if (mode !== 'custody' && mode !== 'ledger') fail(2, `--mode must be custody or ledger, got "${mode}"`);
  const faults = parseFaultFlags(out);
  if (typeof faults === 'string') fail(2, faults);
  const data = resolve(out.data);
  return { port: Number(out.port), data, pin: pinFrom(out, data), mode, faults };
}

/** The PIN from --pin-file, HSM_PIN_FILE, HSM_PIN or (warned about) --pin; null when none is given. */
function pinFrom(out: Record<string, string>, data: string): string | null {
  const sources = [out['pin-file'] !== undefined, !!process.env.HSM_PIN_FILE, !!process.env.HSM_PIN, out.pin !== undefined].filter(Boolean).length;
  if (sources > 1) fail(2, 'give the PIN one way only: HSM_PIN, HSM_PIN_FILE, --pin-file or --pin');
  const file = out['pin-file'] ?? process.env.HSM_PIN_FILE;
  if (file !== undefined && file !== '') {
    try {
      return readPinFile(file, data);
    } catch (error) {
      fail(2, (error instanceof Error ? error.message : String(error)).replace(/HSM_PIN_FILE/g, 'the PIN file').replace(/DATA_DIR/g, '--data'));
    }
  }
  if (out.pin !== undefined) {
    process.stderr.write('hsm-sim: warning: --pin puts the PIN on the command line, where every user sees it in ps; use HSM_PIN or HSM_PIN_FILE\n');
    return out.pin;
  }
  return process.env.HSM_PIN || null;
}

// The sealed state, its journal and the Ledger seed are this process's owner's only (0600 / 0700).
process.umask(0o077);
const args = parseArgs(process.argv.slice(2));
const log = (line: string) => process.stderr.write(`hsm-sim: ${line}\n`);

process.on('uncaughtException', (error) => log(`uncaught: ${error.message}`));
process.on('unhandledRejection', (error) => log(`unhandled: ${error instanceof Error ? error.message : String(error)}`));

function openOrFail<T>(open: () => T): T {
  try {
    return open();
  } catch (error) {
    if (error instanceof WrongPinError) fail(1, `wrong PIN: cannot unseal ${args.data} (${error.message})`);
    fail(1, error instanceof Error ? error.message : String(error));
  }
}

function custodyServer(): { server: Server; started: () => void } {
  let device: SimDevice | null = null;
  if (args.pin !== null && args.pin !== '') {
    const pin = args.pin;
    const weakness = existsSync(join(args.data, STATE_FILE)) ? null : pinWeakness(pin);
    if (weakness !== null) fail(2, `refusing to seal a new state under a weak PIN: it ${weakness}`);
    const opened = openOrFail(() => SealedStore.open(args.data, pin, freshState));
    device = new SimDevice(opened.store, opened.state);
  }
  return {
    server: createSimServer({ dataDir: args.data, device, log, faults: args.faults }),
    started: () => (device ? log(`device ${device.id} unsealed from ${args.data}`) : log('started locked: the first LOGIN with the PIN unseals the state')),
  };
}

function ledgerServer(): { server: Server; started: () => void } {
  const pin = args.pin;
  if (pin === null || pin === '') fail(2, '--mode ledger needs the PIN (HSM_PIN or HSM_PIN_FILE) to unseal its seed at start');
  const seed = openOrFail(() => openLedgerSeed(args.data, pin));
  const app = createLedgerApp(seed);
  seed.fill(0);
  return { server: createLedgerServer({ app, log }), started: () => log(`Ledger mode: Ethereum app emulated, seed unsealed from ${args.data}`) };
}

const { server, started } = args.mode === 'ledger' ? ledgerServer() : custodyServer();
server.on('error', (error) => fail(1, `cannot listen on 127.0.0.1:${args.port}: ${error.message}`));
server.listen(args.port, '127.0.0.1', () => {
  const address = server.address();
  const port = typeof address === 'object' && address ? address.port : args.port;
  process.stdout.write(`listening on 127.0.0.1:${port}\n`);
  started();
});

// Every change is sealed durably before it is answered, so stopping at once loses nothing.
const stop = () => {
  server.close();
  process.exit(0);
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
