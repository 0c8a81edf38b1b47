/**
 * Keys, bindings and sealed state: one key per (pool, chain), bindings refused twice, state that
 * survives restarts, sealed under the PIN, a wrong PIN that fails cleanly, and what the device
 * attests of its keys and governance.
 */
import { openPolicy } from '../helpers/open-policy.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { canonicalize } from 'json-canonicalize';
import { computeAddress } from 'ethers';
import { ATTESTATION_DOMAIN } from '../../common/attestation.js';
import { memberSummaries } from '../../common/governance-message.js';
import { policyHash } from '../../common/policy/document.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { APPROVERS, SEPOLIA, ethereumTx, evidence, messageFor } from './fixtures.js';

const running: SimProcess[] = [];
const clients: ReturnType<typeof createSimDevice>[] = [];

async function sim(options: Parameters<typeof startSim>[0] = {}): Promise<SimProcess> {
  const s = await startSim(options);
  running.push(s);
  return s;
}
function client(s: SimProcess, pin = s.pin) {
  const c = createSimDevice({ url: s.url, pin, timeoutMs: 5_000 });
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) await c.close();
  for (const s of running.splice(0)) await s.kill();
});

describe('keys and bindings', () => {
  it('when a pool gets a second key on a chain or is enrolled twice, then the device refuses', async () => {
    const d = client(await sim());
    await expect(d.generateKey('pool-a', SEPOLIA, 'secp256k1')).rejects.toMatchObject({ code: 'device_key_not_found' });
    await d.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    await expect(d.enrollPool('pool-a', APPROVERS, 2, openPolicy(2))).rejects.toMatchObject({ code: 'device_already_exists' });
    const key = await d.generateKey('pool-a', SEPOLIA, 'secp256k1');
    expect(key.publicKey).toMatch(/^0[23][0-9a-f]{64}$/);
    await expect(d.generateKey('pool-a', SEPOLIA, 'secp256k1')).rejects.toMatchObject({ code: 'device_already_exists' });
    await expect(d.generateKey('pool-a', 'eip155:1', 'ed25519')).rejects.toMatchObject({ code: 'device_bad_request' });
    expect(await d.publicKey(key.handle)).toEqual({ ...key, poolId: 'pool-a', chain: SEPOLIA });
    expect(await d.listKeys()).toEqual([{ ...key, poolId: 'pool-a', chain: SEPOLIA }]);
  });

  it('when a binding has a bad threshold or a repeated approver, then it is refused', async () => {
    const d = client(await sim());
    await expect(d.enrollPool('pool-a', APPROVERS, 0, openPolicy(0))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(d.enrollPool('pool-a', APPROVERS, 4, openPolicy(4))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(d.enrollPool('pool-a', [APPROVERS[0]!, { ...APPROVERS[0]!, id: 'alias' }], 1, openPolicy(1))).rejects.toMatchObject({ code: 'device_bad_request' });
    await expect(d.enrollPool('Pool A', APPROVERS, 2, openPolicy(2))).rejects.toMatchObject({ code: 'device_bad_request' });
  });
});

describe('sealed state', () => {
  it('when the process is killed and restarted, then keys, bindings and the device id are the same and signing works', async () => {
    const first = await sim();
    const d1 = client(first);
    await d1.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    const key = await d1.generateKey('pool-a', SEPOLIA, 'secp256k1');
    const id = (await d1.info()).id;
    await first.kill();

    const second = await sim({ dataDir: first.dataDir, pin: first.pin });
    const d2 = client(second);
    expect((await d2.info()).id).toBe(id);
    expect(await d2.listKeys()).toEqual([{ ...key, poolId: 'pool-a', chain: SEPOLIA }]);
    await expect(d2.enrollPool('pool-a', APPROVERS, 2, openPolicy(2))).rejects.toMatchObject({ code: 'device_already_exists' });
    const tx = ethereumTx();
    const m = messageFor(tx);
    const sig = await d2.sign({ handle: key.handle, poolId: 'pool-a', scheme: 'ecdsa-secp256k1', payload: tx.digest, digest: tx.digest, approvals: [evidence('alice', m), evidence('bob', m)], transaction: { chain: SEPOLIA, unsignedTx: tx.unsignedTx } });
    expect(sig.signature.length).toBe(64);
  });

  it('when the sealed file is read, then no key material or approver key is in plain text', async () => {
    const s = await sim();
    const d = client(s);
    await d.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    const key = await d.generateKey('pool-a', SEPOLIA, 'secp256k1');
    const file = readFileSync(join(s.dataDir, 'state.sealed'));
    expect(file.subarray(0, 8).toString('ascii')).toBe('CSIMSTAT');
    const text = file.toString('latin1');
    expect(text).not.toContain(key.publicKey);
    expect(text).not.toContain(APPROVERS[0]!.publicKey);
    expect(text).not.toContain('pool-a');
  });

  it('when started with another PIN, then it exits 1 with a one-line reason; a client with a wrong PIN is refused', async () => {
    const s = await sim();
    const d = client(s, 'not-the-pin');
    await expect(d.info()).rejects.toMatchObject({ code: 'device_wrong_pin' });
    await s.kill();
    const error = await sim({ dataDir: s.dataDir, pin: 'another-pin' }).then(() => null, (e: Error) => e);
    expect(error?.message).toMatch(/exited with 1/);
    expect(error?.message).toMatch(/hsm-sim: wrong PIN: cannot unseal/);
  });

  it('when one byte of the sealed file is flipped, then the next start fails cleanly', async () => {
    const s = await sim();
    await client(s).enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    await s.kill();
    const path = join(s.dataDir, 'state.sealed');
    const bytes = readFileSync(path);
    bytes[bytes.length - 20]! ^= 0x01;
    writeFileSync(path, bytes);
    await expect(sim({ dataDir: s.dataDir, pin: s.pin })).rejects.toThrow(/exited with 1/);
  });

  it('when started without a PIN, then it is locked until the first correct LOGIN', async () => {
    const first = await sim();
    await client(first).enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    await first.kill();
    const locked = await sim({ dataDir: first.dataDir, pin: '' });
    await vi.waitFor(() => expect(locked.stderr()).toMatch(/started locked/));
    await expect(client(locked, 'wrong').listKeys()).rejects.toMatchObject({ code: 'device_wrong_pin' });
    const d = client(locked, first.pin);
    await expect(d.enrollPool('pool-a', APPROVERS, 2, openPolicy(2))).rejects.toMatchObject({ code: 'device_already_exists' });
  });

  it('when a key is attested, then the device states the key, its addresses and its pool as it holds them, signed over the domain prefix', async () => {
    const d = client(await sim());
    const info = await d.info();
    expect(info).toMatchObject({ type: 'sim', checksQuorum: true, model: 'custody-hsm-sim' });
    expect(info.enforces).toContain('attestation');
    await d.enrollPool('pool-a', APPROVERS, 2, openPolicy(2));
    const key = await d.generateKey('pool-a', SEPOLIA, 'secp256k1');
    const { statement, signature } = await d.attestKey(key.handle);
    expect(statement).toMatchObject({
      kind: 'custody.device-attestation',
      version: 1,
      subject: 'key',
      device: info.id,
      handle: key.handle,
      pool: 'pool-a',
      chain: SEPOLIA,
      curve: 'secp256k1',
      publicKey: key.publicKey,
      // ethers derives the address from the attested key on its own.
      addresses: [computeAddress('0x' + key.publicKey)],
      poolState: { approvers: memberSummaries(APPROVERS), threshold: 2, policy: policyHash(openPolicy(2)), policyVersion: 1, sequence: 0, frozen: false },
    });
    const signed = new TextEncoder().encode(ATTESTATION_DOMAIN + canonicalize(statement));
    expect(ed25519.verify(hexToBytes(signature), signed, hexToBytes(info.attestationPublicKey as string))).toBe(true);
    expect(ed25519.verify(hexToBytes(signature), new TextEncoder().encode(canonicalize(statement)), hexToBytes(info.attestationPublicKey as string))).toBe(false);
    await expect(d.attestKey('k_' + '00'.repeat(12))).rejects.toMatchObject({ code: 'device_key_not_found' });
  });

  it('when the device is attested, then it states its admins and quorum and what it enforces', async () => {
    const d = client(await sim());
    const info = await d.info();
    expect((await d.attestDevice()).statement.governance).toEqual({ admins: [], quorum: 0, custodians: [], sequence: 0 });
    await d.enrollGovernance(APPROVERS, 2);
    const { statement, signature } = await d.attestDevice();
    expect(statement).toMatchObject({ subject: 'device', device: info.id, enforces: info.enforces, governance: { admins: memberSummaries(APPROVERS), quorum: 2, custodians: [], sequence: 0 } });
    expect(ed25519.verify(hexToBytes(signature), new TextEncoder().encode(ATTESTATION_DOMAIN + canonicalize(statement)), hexToBytes(info.attestationPublicKey as string))).toBe(true);
  });
});
