/**
 * The simulator's PIN at rest (docs/threat-model.md): it comes from the environment or a file outside
 * its data directory, never needs the command line, seals a new state only under a strong PIN, and
 * everything it writes is its owner's only. Real simulator processes on loopback.
 */
import { chmodSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterEach, describe, expect, it } from 'vitest';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { openPolicy } from '../helpers/open-policy.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { recordSecrets } from '../helpers/suite-logs.js';
import { APPROVERS } from './fixtures.js';

const running: SimProcess[] = [];
const clients: ReturnType<typeof createSimDevice>[] = [];

async function sim(options: Parameters<typeof startSim>[0] = {}): Promise<SimProcess> {
  const s = await startSim(options);
  running.push(s);
  return s;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of running.splice(0)) await s.stop();
});

function pinFile(pin: string, mode = 0o600): string {
  const file = join(mkdtempSync(join(tmpdir(), 'sim-pin-')), 'pin');
  writeFileSync(file, pin + '\n', { mode });
  chmodSync(file, mode);
  return file;
}

describe('the simulator PIN at rest', () => {
  it('when the PIN comes from --pin-file, then the device unseals with it and a client logs in with the same PIN; nothing it wrote is readable by others', async () => {
    const pin = randomBytes(18).toString('base64url');
    recordSecrets([pin]);
    const s = await sim({ pin: '', args: ['--pin-file', pinFile(pin)] });
    const device = createSimDevice({ url: s.url, pin });
    clients.push(device);
    await device.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    expect(s.stderr()).toMatch(/unsealed from/);
    expect((await device.listKeys()).length).toBe(0);
    const modes = readdirSync(s.dataDir).map((name) => ({ name, mode: statSync(join(s.dataDir, name)).mode & 0o777 }));
    expect(modes.length).toBeGreaterThan(0);
    expect(modes.filter((m) => m.mode & 0o077)).toEqual([]);
    expect(s.stderr()).not.toContain(pin);
  });

  it('when the PIN file is readable by others or lies inside the data directory, then the simulator exits 2 saying what to do', async () => {
    const pin = randomBytes(18).toString('base64url');
    await expect(sim({ pin: '', args: ['--pin-file', pinFile(pin, 0o644)] })).rejects.toThrow(/exited with 2 .*readable or writable by others \(mode 0644\): chmod 600/s);
    const dataDir = mkdtempSync(join(tmpdir(), 'sim-data-'));
    writeFileSync(join(dataDir, 'pin'), pin, { mode: 0o600 });
    await expect(sim({ dataDir, pin: '', args: ['--pin-file', join(dataDir, 'pin')] })).rejects.toThrow(/exited with 2 .*inside --data/s);
  });

  it('when a new state would be sealed under a weak PIN, then the simulator refuses to start', async () => {
    await expect(sim({ pin: 'short-pin' })).rejects.toThrow(/exited with 2 .*weak PIN: it is 9 characters; use at least 12/s);
  });

  it('when the PIN is given twice, then the simulator exits 2 rather than choose one', async () => {
    const pin = randomBytes(18).toString('base64url');
    await expect(sim({ pin, args: ['--pin-file', pinFile(pin)] })).rejects.toThrow(/exited with 2 .*one way only/s);
  });

  it('when --pin is used (SPEC section 9 still accepts it), then the simulator starts and warns that ps shows the PIN', async () => {
    const pin = randomBytes(18).toString('base64url');
    recordSecrets([pin]);
    const s = await sim({ pin: '', args: ['--pin', pin] });
    expect(s.stderr()).toMatch(/warning: --pin puts the PIN on the command line/);
  });
});
