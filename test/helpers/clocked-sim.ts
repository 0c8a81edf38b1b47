/**
 * The simulator with the test's clock: the real device (sealed state in a temporary directory, its
 * policy, journal and time locks) and its real server on loopback, in this process, so that a
 * service test that moves the gateway's clock moves the device's with it. Tests that do not need
 * to move time use the simulator as its own process (sim-process.ts).
 */
import type { AddressInfo, Server } from 'node:net';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SealedStore } from '../../hsm-sim/sealed-state.js';
import { SimDevice, freshState } from '../../hsm-sim/device.js';
import { createSimServer } from '../../hsm-sim/server.js';

export interface ClockedSim {
  readonly url: string;
  readonly pin: string;
  stop(): Promise<void>;
}

export async function startClockedSim(now: () => number): Promise<ClockedSim> {
  const dataDir = mkdtempSync(join(tmpdir(), 'clocked-sim-'));
  const pin = 'clocked-sim-pin';
  const opened = SealedStore.open(dataDir, pin, freshState);
  const device = new SimDevice(opened.store, opened.state, now);
  const server: Server = createSimServer({ dataDir, device, log: () => {} });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `tcp://127.0.0.1:${port}`,
    pin,
    stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
