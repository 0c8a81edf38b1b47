/**
 * The gateway's simulator client: clear errors when the device is away, reconnect when it is back.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';

const running: SimProcess[] = [];
afterEach(async () => {
  for (const s of running.splice(0)) await s.kill();
});

describe('the simulator client', () => {
  it('when nothing listens at HSM_URL, then the call fails as unavailable naming the URL', async () => {
    const d = createSimDevice({ url: 'tcp://127.0.0.1:1', pin: 'x' });
    const error = await d.info().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'device_unavailable', kind: 'unavailable' });
    expect((error as Error).message).toContain('tcp://127.0.0.1:1');
    await d.close();
  });

  it('when HSM_URL is malformed, then creating the client fails with device_bad_url', () => {
    expect(() => createSimDevice({ url: 'http://127.0.0.1:9999', pin: 'x' })).toThrow(expect.objectContaining({ code: 'device_bad_url' }));
  });

  it('when the simulator dies and comes back on the same port, then calls fail meanwhile and work again after', async () => {
    const first = await startSim();
    running.push(first);
    const d = createSimDevice({ url: first.url, pin: first.pin, timeoutMs: 3_000 });
    const id = (await d.info()).id;
    await first.kill();
    await expect(d.listKeys()).rejects.toMatchObject({ kind: 'unavailable' });
    const second = await startSim({ dataDir: first.dataDir, pin: first.pin, port: first.port });
    running.push(second);
    expect((await d.info()).id).toBe(id);
    await d.close();
  });
});
