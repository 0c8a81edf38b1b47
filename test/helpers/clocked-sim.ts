/**
 * The simulator with the test's clock: the real device (sealed state and journal in a temporary
 * directory, its policy, velocity journal and time locks) and its real server on loopback, in this
 * process, so that a service test that moves the gateway's clock moves the device's with it. `restart`
 * is a crash and restart of the device: the server goes away and the state is unsealed again from disk
 * (snapshot and journal) on the same port. Tests that do not need to move time use the simulator as its
 * own process (sim-process.ts).
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
  /** The device as it is now (a new object after each restart). */
  device(): SimDevice;
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startClockedSim(now: () => number): Promise<ClockedSim> {
  const dataDir = mkdtempSync(join(tmpdir(), 'clocked-sim-'));
  const pin = 'clocked-sim-pin';
  let device: SimDevice;
  let server: Server;
  const listen = async (port: number): Promise<number> => {
    const opened = SealedStore.open(dataDir, pin, freshState);
    device = new SimDevice(opened.store, opened.state, now);
    server = createSimServer({ dataDir, device, log: () => {} });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    return (server.address() as AddressInfo).port;
  };
  const close = () =>
    new Promise<void>((resolve) => {
      server.close(() => resolve());
    });
  const port = await listen(0);
  const connections = new Set<import('node:net').Socket>();
  const track = () => server.on('connection', (s) => {
    connections.add(s);
    s.on('close', () => connections.delete(s));
  });
  track();
  return {
    url: `tcp://127.0.0.1:${port}`,
    pin,
    device: () => device,
    async restart() {
      for (const s of connections) s.destroy();
      await close();
      await listen(port);
      track();
    },
    async stop() {
      for (const s of connections) s.destroy();
      await close();
    },
  };
}
