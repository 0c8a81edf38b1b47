/**
 * Break glass that reaches the device, through the real processes: one admin's signed freeze message
 * (`freezeMessage` of GET /v1/pools/{pool}) freezes the pool in the gateway and in the simulator, which
 * then refuses SIGN with FROZEN even to a caller holding the quorum's approvals; a freeze without a
 * signature reaches the gateway alone and says so; a bad signature is refused naming the field; a
 * freeze that races a release wins without failing the request; `custody freeze` does it from the CLI.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transaction } from 'ethers';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalGovernanceMessage, parseGovernanceMessage } from '../../common/governance-message.js';
import { approverKeyFromSecret, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { ALLOWLISTED, APPROVER_SECRETS, SEPOLIA, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

const ETH = 10n ** 18n;
type Admin = 'alice' | 'bob' | 'carol';
let stack: Stack;
const admins: Record<string, string> = {};
let nonce = 500;

function sign(text: string, who: Admin): string {
  return bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(APPROVER_SECRETS[who] as string)));
}

async function submit(pool: string, amount: bigint): Promise<string> {
  const r = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, {
    pool, chain: SEPOLIA, asset: 'ETH', amount: amount.toString(), to: ALLOWLISTED, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000',
  });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

async function approve(id: string, who: 'bob' | 'carol') {
  const w = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens[who]);
  return stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(w.body.approvalMessage as string, who), decision: 'approve' });
}

async function freezeMessage(pool: string): Promise<string> {
  const r = await stack.api('GET', `/v1/pools/${pool}`, admins.alice as string);
  expect(typeof r.body.freezeMessage).toBe('string');
  return r.body.freezeMessage as string;
}

/** The admin quorum (bob and carol; alice proposes) unfreezes the pool. */
async function unfreeze(pool: string): Promise<void> {
  const p = await stack.api('POST', `/v1/pools/${pool}/unfreeze`, admins.alice as string, {});
  expect(p.status).toBe(201);
  for (const who of ['bob', 'carol'] as const) {
    const text = canonicalGovernanceMessage({ ...parseGovernanceMessage(p.body.approvalMessage as string), decision: 'approve' });
    await stack.api('POST', `/v1/proposals/${p.body.id}/approvals`, admins[who] as string, { signature: sign(text, who), decision: 'approve' });
  }
  const after = await stack.api('GET', `/v1/proposals/${p.body.id}`, stack.tokens.auditor);
  expect(after.body.reason ?? null).toBeNull();
  expect(after.body.state).toBe('applied');
}

async function waitFor(id: string, state: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 40; i++) {
    const r = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.auditor);
    if (r.body.state === state) return r.body;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`withdrawal ${id} never reached ${state}`);
}

/** Asks the simulator directly, as a compromised gateway holding the PIN and bob's and carol's approvals would. */
async function signDirectly(id: string): Promise<unknown> {
  const w = (await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.auditor)).body;
  const devices = (await stack.api('GET', '/v1/devices', stack.tokens.auditor)).body.devices as { keys: { pool: string; chain: string; handle: string }[] }[];
  const key = devices.flatMap((d) => d.keys).find((k) => k.pool === w.pool && k.chain === w.chain)!;
  const approvals = (['bob', 'carol'] as const).map((who) => ({
    publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[who] as string))),
    message: w.approvalMessage as string,
    signature: signApproval(w.approvalMessage as string, who),
  }));
  const device = createSimDevice({ url: stack.sim.url, pin: stack.env.HSM_PIN as string });
  try {
    return await device.sign({
      handle: key.handle, poolId: w.pool as string, scheme: 'ecdsa-secp256k1', payload: new Uint8Array(32), digest: new Uint8Array(32), approvals,
      transaction: { chain: w.chain as string, unsignedTx: w.unsignedTx as string },
    });
  } finally {
    await device.close();
  }
}

async function auditOf(type: string): Promise<{ actor: string; subject: string; data: Record<string, unknown> }[]> {
  const entries = (await stack.api('GET', '/v1/audit?after=0&limit=1000', stack.tokens.auditor)).body.entries as { type: string; actor: string; subject: string; data: Record<string, unknown> }[];
  return entries.filter((e) => e.type === type);
}

beforeAll(async () => {
  stack = await startStack();
  admins.alice = stack.tokens.admin;
  for (const who of ['bob', 'carol']) {
    const r = await stack.cli(['token', 'create', '--role', 'admin', '--name', who, '--json']);
    admins[who] = (JSON.parse(r.stdout) as { token: string }).token;
  }
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('the freeze message', () => {
  it('when an admin reads a pool, then it carries the exact freeze message of its current state; other roles do not get it', async () => {
    const text = await freezeMessage('client-b');
    const m = parseGovernanceMessage(text);
    expect(m).toMatchObject({ scope: 'pool', pool: 'client-b', action: 'freeze', sequence: 0, proposalId: 'freeze-client-b-0', decision: 'approve' });
    expect(m.device).toMatch(/^sim-[0-9a-f]{16}$/);
    expect(m.after).toEqual(m.before);
    expect(await freezeMessage('client-b')).toBe(text);
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.freezeMessage).toBeUndefined();
  });
});

describe('a signed freeze', () => {
  it('when an admin posts a signed freeze, then the device freezes too and refuses SIGN even with the quorum, until the admin quorum unfreezes', async () => {
    const id = await submit('client-b', ETH / 100n);
    const frozen = await stack.api('POST', '/v1/pools/client-b/freeze', admins.alice as string, { signature: sign(await freezeMessage('client-b'), 'alice'), reason: 'drill' });
    expect(frozen.status).toBe(200);
    expect(frozen.body.status).toBe('frozen');
    const freeze = frozen.body.freeze as { signed: boolean; deviceFrozen: boolean; devices: { device: string; frozen: boolean; reason: string | null }[] };
    expect(freeze).toMatchObject({ signed: true, deviceFrozen: true });
    expect(freeze.devices).toEqual([{ device: expect.stringMatching(/^sim-/), frozen: true, reason: null }]);

    expect((await approve(id, 'bob')).body.state).toBe('pending_approval');
    expect((await approve(id, 'carol')).body.state).toBe('approved');
    await expect(signDirectly(id)).rejects.toMatchObject({ code: 'device_frozen' });

    expect((await auditOf('pool.frozen')).at(-1)).toMatchObject({ actor: 'alice', subject: 'pool:client-b', data: { reason: 'drill', signed: true } });
    expect((await auditOf('pool.device_freeze')).at(-1)?.data.devices).toEqual([{ device: freeze.devices[0]!.device, frozen: true, reason: null }]);

    await unfreeze('client-b');
    const signed = await waitFor(id, 'signed');
    expect(Transaction.from(signed.signedTx as string).value).toBe(ETH / 100n);
  });

  it('when a freeze comes without a signature, then only the gateway is frozen and the answer says the device was not', async () => {
    const frozen = await stack.api('POST', '/v1/pools/client-b/freeze', admins.bob as string, {});
    expect(frozen.status).toBe(200);
    expect(frozen.body.status).toBe('frozen');
    expect(frozen.body.freeze).toMatchObject({ signed: false, deviceFrozen: false, devices: [{ frozen: false, reason: expect.stringMatching(/only the gateway is frozen/) }] });
    expect((await auditOf('pool.frozen')).at(-1)).toMatchObject({ actor: 'bob', data: { signed: false } });
    await unfreeze('client-b');
  });

  it('when the signature is malformed or is not the calling admin\'s over the current message, then it is a 400 naming "signature" and nothing is frozen', async () => {
    const malformed = await stack.api('POST', '/v1/pools/client-b/freeze', admins.alice as string, { signature: 'abcd' });
    expect(malformed.status).toBe(400);
    expect(malformed.body.detail).toMatch(/^"signature": /);
    const bobs = await stack.api('POST', '/v1/pools/client-b/freeze', admins.alice as string, { signature: sign(await freezeMessage('client-b'), 'bob') });
    expect(bobs.status).toBe(400);
    expect(bobs.body.code).toBe('bad_freeze_signature');
    expect(bobs.body.detail).toMatch(/^"signature" does not verify with alice's key over pool client-b's current freezeMessage/);
    // A message signed before a change was applied no longer verifies: its sequence is the old one.
    const old = parseGovernanceMessage(await freezeMessage('client-b'));
    expect(old.sequence).toBeGreaterThan(0);
    const stale = canonicalGovernanceMessage({ ...old, sequence: old.sequence - 1, proposalId: `freeze-client-b-${old.sequence - 1}` });
    expect((await stack.api('POST', '/v1/pools/client-b/freeze', admins.alice as string, { signature: sign(stale, 'alice') })).body.code).toBe('bad_freeze_signature');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('active');
  });
});

describe('a freeze that races a release', () => {
  it('when the device is frozen while the gateway still releases, then the request stays approved (not failed), the gateway freezes too, and it is signed after the unfreeze', async () => {
    // The signed freeze reaches the device before the gateway's store (as when it lands mid-release).
    const device = createSimDevice({ url: stack.sim.url, pin: stack.env.HSM_PIN as string });
    try {
      const text = await freezeMessage('client-b');
      await device.freezePool('client-b', { publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS.alice as string))), message: text, signature: sign(text, 'alice') });
    } finally {
      await device.close();
    }
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('active');
    const id = await submit('client-b', ETH / 100n);
    await approve(id, 'bob');
    const held = await approve(id, 'carol');
    expect(held.body.state).toBe('approved');
    expect((held.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['pool_frozen']);
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('frozen');
    expect((await auditOf('withdrawal.held_frozen')).map((e) => e.subject)).toContain(`withdrawal:${id}`);
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.auditor)).body.state).toBe('approved');

    await unfreeze('client-b');
    const signed = await waitFor(id, 'signed');
    expect(Transaction.from(signed.signedTx as string).value).toBe(ETH / 100n);
  });
});

describe('custody freeze', () => {
  it('when an admin runs custody freeze with their key file, then the message is shown, signed and posted, and the gateway and the device are frozen', async () => {
    const file = join(stack.dataDir, 'alice-admin.key');
    writeApproverKeyFile(file, approverKeyFromSecret(APPROVER_SECRETS.alice as string, 'alice'), 'admin key passphrase');
    const env = { CUSTODY_KEY_PASSPHRASE: 'admin key passphrase' };
    const r = await stack.cli(['freeze', 'client-a', '--key', file, '--url', stack.gateway.url, '--token', admins.alice as string, '--reason', 'suspected compromise'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('freeze pool client-a');
    expect(r.stdout).toMatch(/device {11}sim-[0-9a-f]{16} \(governance sequence 0\)/);
    expect(r.stdout).toContain('pool client-a is "frozen" in the gateway');
    expect(r.stdout).toMatch(/device sim-[0-9a-f]{16}: frozen/);
    expect((await auditOf('pool.frozen')).at(-1)).toMatchObject({ actor: 'alice', subject: 'pool:client-a', data: { reason: 'suspected compromise', signed: true } });

    const json = await stack.cli(['freeze', 'client-a', '--key', file, '--url', stack.gateway.url, '--token', admins.alice as string, '--json'], env);
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ pool: 'client-a', status: 'frozen', deviceFrozen: true, devices: [{ frozen: true }] });

    const requester = await stack.cli(['freeze', 'client-a', '--key', file, '--url', stack.gateway.url, '--token', stack.tokens.requester], env);
    expect(requester.code).not.toBe(0);
    expect(requester.stderr.trim().split('\n')).toHaveLength(1);
    expect(requester.stderr).toMatch(/^custody: refusing to sign: the gateway answered without a "freezeMessage" string/);
    await unfreeze('client-a');
  });
});
