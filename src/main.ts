/**
 * Composition root: read config, build the store, the device, the service context and the HTTP API,
 * start listening, resume due work. The only place that picks concrete backends.
 */
import { mkdirSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Server } from 'node:http';
import { requireHsmPin, type Config } from './config.js';
import { createLogger, type Logger } from './logger.js';
import type { SigningDevice } from './devices/signing-device.js';
import { createDeviceSet, type DeviceSet, type DeviceType } from './devices/device-set.js';
import { createPkcs11Device } from './devices/pkcs11/pkcs11-device.js';
import { createLedgerDevice } from './devices/ledger/ledger-device.js';
import { createSpeculosTransport, type ApduTransport } from './devices/ledger/transport.js';
import { createNodeHidTransport } from './devices/ledger/transport-node-hid.js';
import { createSimDevice } from './devices/sim/client.js';
import type { Store } from './store/store.js';
import { openSqliteStore } from './store/sqlite/sqlite-store.js';
import { openPostgresStore } from './store/postgres/postgres-store.js';
import type { ServiceContext } from './service/context.js';
import { runDueWork } from './service/due-work.js';
import { upgradeApprovalMessages } from './service/upgrade-approval-messages.js';
import { createApp } from './api/app.js';

export function sqlitePath(dataDir: string): string {
  return join(dataDir, 'custody.db');
}

/** The store the configuration names. */
export async function openStore(config: Config): Promise<Store> {
  if (config.databaseUrl !== null) return openPostgresStore({ connectionString: config.databaseUrl });
  mkdirSync(config.dataDir, { recursive: true });
  return openSqliteStore({ path: sqlitePath(config.dataDir) });
}

/** The Ledger transport LEDGER_URL names: USB HID (node-hid loaded only now), or APDU over TCP. */
export function ledgerTransport(url: string): ApduTransport {
  if (url === 'hid') return createNodeHidTransport();
  const { hostname, port } = new URL(url);
  return createSpeculosTransport({ host: hostname, port: Number(port) });
}

/**
 * The key devices the configuration names, each opened on first use: the simulator when a PIN is
 * known, a PKCS#11 token when PKCS11_MODULE is set, a Ledger when LEDGER_URL is. With no device
 * configured at all, the simulator's missing PIN is the error to fix.
 */
export function openDevices(config: Config): DeviceSet {
  const factories: Partial<Record<DeviceType, () => SigningDevice>> = {};
  if (config.hsmPin !== null) factories.sim = () => createSimDevice({ url: config.hsmUrl, pin: requireHsmPin(config) });
  const { pkcs11, ledgerUrl } = config;
  if (pkcs11 !== null) factories.pkcs11 = () => createPkcs11Device(pkcs11);
  if (ledgerUrl !== null) factories.ledger = () => createLedgerDevice({ transport: ledgerTransport(ledgerUrl) });
  if (Object.keys(factories).length === 0) requireHsmPin(config);
  return createDeviceSet(factories);
}

export interface RunningGateway {
  readonly url: string;
  readonly port: number;
  readonly ctx: ServiceContext;
  close(): Promise<void>;
}

export interface GatewayOptions {
  readonly log?: Logger;
  /** How often due work (expiry, time locks, resumption) runs; 0 disables the timer. */
  readonly dueWorkIntervalMs?: number;
  readonly now?: () => number;
}

export async function startGateway(config: Config, options: GatewayOptions = {}): Promise<RunningGateway> {
  const log = options.log ?? createLogger(config.logLevel);
  const store = await openStore(config);
  const devices = openDevices(config);
  const ctx: ServiceContext = { store, devices, now: options.now ?? Date.now, log };
  // Before serving: no request still open may be approved on a message that does not carry its transaction.
  await upgradeApprovalMessages(ctx);
  const app = createApp(ctx);

  const server: Server = await new Promise((resolve, reject) => {
    const s = app.listen(config.port, config.host, () => resolve(s));
    s.once('error', reject);
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const port = (server.address() as AddressInfo).port;
  const url = `http://${config.host}:${port}`;
  log.info({ url, store: config.databaseUrl !== null ? 'postgresql' : 'sqlite', dataDir: config.dataDir, hsmUrl: config.hsmUrl }, 'gateway listening');

  let running: Promise<void> | null = null;
  const tick = (resumeSigningNow: boolean) => {
    if (running) return;
    running = runDueWork(ctx, { resumeSigningNow })
      .catch((e: unknown) => log.error({ err: e instanceof Error ? e.message : String(e) }, 'due work failed'))
      .finally(() => {
        running = null;
      });
  };
  tick(true);
  const interval = options.dueWorkIntervalMs ?? 1_000;
  const timer = interval > 0 ? setInterval(() => tick(false), interval) : null;

  return {
    url,
    port,
    ctx,
    async close() {
      if (timer) clearInterval(timer);
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeAllConnections();
      await closed;
      const pending: Promise<void> | null = running;
      if (pending) await pending;
      await devices.close();
      await store.close();
    },
  };
}
