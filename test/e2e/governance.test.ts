/**
 * Governance end to end through the real processes: break-glass freeze by one admin, unfreeze and
 * policy versions only with the admin quorum, approver changes bound in the device, re-evaluation of
 * open requests, the policy's decision on a request without creating it, what `custody approve --proposal`
 * shows an admin, and a proposal made stale by another change.
 */
import { approverKeyFromSecret, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Interface, Transaction } from 'ethers';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { canonicalGovernanceMessage, parseGovernanceMessage } from '../../common/governance-message.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { ALLOWLISTED, APPROVER_SECRETS, SEPOLIA, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

const ETH = 10n ** 18n;
let stack: Stack;
const admins: Record<string, string> = {};
const nonces: Record<string, number> = {};
const DAVE_SECRET = 'a1'.repeat(32);
const DAVE_PUBLIC = bytesToHex(ed25519.getPublicKey(hexToBytes(DAVE_SECRET)));

function body(pool: string, amount: bigint): Record<string, unknown> {
  nonces[pool] = (nonces[pool] ?? 100) + 1;
  return { pool, chain: SEPOLIA, asset: 'ETH', amount: amount.toString(), to: ALLOWLISTED, nonce: String(nonces[pool]), gasLimit: '21000', maxFeePerGas: '30000000000', maxPriorityFeePerGas: '1000000000' };
}

async function submit(pool: string, amount: bigint) {
  return stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body(pool, amount));
}

async function approve(id: string, who: 'alice' | 'bob' | 'carol') {
  const w = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens[who]);
  return stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(w.body.approvalMessage as string, who), decision: 'approve' });
}

function signGovernance(message: string, secret: string, decision: 'approve' | 'reject' = 'approve'): string {
  const text = canonicalGovernanceMessage({ ...parseGovernanceMessage(message), decision });
  return bytesToHex(ed25519.sign(new TextEncoder().encode(text), hexToBytes(secret)));
}

async function vote(proposal: Record<string, unknown>, admin: 'alice' | 'bob' | 'carol', decision: 'approve' | 'reject' = 'approve') {
  const signature = signGovernance(proposal.approvalMessage as string, APPROVER_SECRETS[admin] as string, decision);
  return stack.api('POST', `/v1/proposals/${proposal.id}/approvals`, admins[admin] as string, { signature, decision });
}

async function waitFor(id: string, state: string): Promise<Record<string, unknown>> {
  for (let i = 0; i < 40; i++) {
    const r = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.auditor);
    if (r.body.state === state) return r.body;
    await new Promise((res) => setTimeout(res, 250));
  }
  throw new Error(`withdrawal ${id} never reached ${state}`);
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

describe('the policy decision without a request', () => {
  it('when a body is evaluated, then the decision and every reason come back and nothing is stored', async () => {
    const before = (await stack.api('GET', '/v1/withdrawals', stack.tokens.auditor)).body.withdrawals as unknown[];
    const ok = await stack.api('POST', '/v1/pools/client-a/evaluate', stack.tokens.requester, body('client-a', 2n * ETH));
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ allowed: true, reasons: [], requiredApprovals: 3, timelockUntil: null, policyVersion: 1 });
    const bad = await stack.api('POST', '/v1/pools/client-a/evaluate', stack.tokens.requester, { ...body('client-a', 6n * ETH), to: '0x000000000000000000000000000000000000dEaD' });
    expect(bad.body.allowed).toBe(false);
    expect((bad.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['over_max_per_tx', 'destination_not_allowlisted']);
    const locked = await stack.api('POST', '/v1/pools/client-a/evaluate', stack.tokens.requester, body('client-a', 4n * ETH));
    expect(locked.body.timelockUntil).not.toBeNull();
    const after = (await stack.api('GET', '/v1/withdrawals', stack.tokens.auditor)).body.withdrawals as unknown[];
    expect(after.length).toBe(before.length);
  });
});

describe('freeze and unfreeze', () => {
  it('when one admin freezes a pool, then approved requests are not signed until the admin quorum unfreezes it', async () => {
    const w = await submit('client-b', ETH / 10n);
    const frozen = await stack.api('POST', '/v1/pools/client-b/freeze', admins.carol as string, { reason: 'incident 42' });
    expect(frozen.status).toBe(200);
    expect(frozen.body.status).toBe('frozen');
    await approve(w.body.id as string, 'bob');
    const approved = await approve(w.body.id as string, 'carol');
    expect(approved.body.state).toBe('approved');
    expect(approved.body.signedTx).toBeUndefined();
    await new Promise((r) => setTimeout(r, 1_500));
    expect((await stack.api('GET', `/v1/withdrawals/${w.body.id}`, stack.tokens.auditor)).body.state).toBe('approved');

    const proposal = await stack.api('POST', '/v1/pools/client-b/unfreeze', admins.alice as string, {});
    expect(proposal.status).toBe(201);
    expect(proposal.body).toMatchObject({ action: 'unfreeze', state: 'pending', requiredApprovals: 2, proposedBy: 'alice' });
    const own = await vote(proposal.body, 'alice');
    expect(own.status).toBe(403);
    expect(own.body.code).toBe('proposer_cannot_approve');
    const one = await vote(proposal.body, 'bob');
    expect(one.body.state).toBe('pending');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('frozen');
    const two = await vote(proposal.body, 'carol');
    expect(two.body.reason ?? null).toBeNull();
    expect(two.body.state).toBe('applied');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('active');
    const signed = await waitFor(w.body.id as string, 'signed');
    expect(Transaction.from(signed.signedTx as string).value).toBe(ETH / 10n);
  });

  it('when a pool is frozen after a request was approved and time-locked, then it is not signed while frozen', async () => {
    const w = await submit('client-a', 4n * ETH);
    for (const who of ['alice', 'bob', 'carol'] as const) await approve(w.body.id as string, who);
    expect((await stack.api('GET', `/v1/withdrawals/${w.body.id}`, stack.tokens.auditor)).body.state).toBe('timelocked');
    const frozen = await stack.api('POST', '/v1/pools/client-a/freeze', admins.bob as string, {});
    expect(frozen.body.status).toBe('frozen');
    const evaluated = await stack.api('POST', '/v1/pools/client-a/evaluate', stack.tokens.requester, body('client-a', ETH / 2n));
    expect((evaluated.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['pool_frozen']);
    const p = await stack.api('POST', '/v1/pools/client-a/unfreeze', admins.bob as string, {});
    await vote(p.body, 'alice');
    expect((await vote(p.body, 'carol')).body.state).toBe('applied');
    const read = await stack.api('GET', `/v1/withdrawals/${w.body.id}`, stack.tokens.auditor);
    expect(read.body.state).toBe('timelocked');
  });
});

describe('the CLI for admins', () => {
  it('when admins run custody approve --proposal with their key files, then the proposal is applied', async () => {
    await stack.api('POST', '/v1/pools/client-b/freeze', admins.alice as string, {});
    const proposal = await stack.api('POST', '/v1/pools/client-b/unfreeze', admins.alice as string, {});
    for (const who of ['bob', 'carol'] as const) {
      const file = join(stack.dataDir, `${who}-admin.key`);
      writeApproverKeyFile(file, approverKeyFromSecret(APPROVER_SECRETS[who] as string, who), 'admin key passphrase');
      const r = await stack.cli(['approve', proposal.body.id as string, '--proposal', '--key', file, '--url', stack.gateway.url, '--token', admins[who] as string], { CUSTODY_KEY_PASSPHRASE: 'admin key passphrase' });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('action    unfreeze (proposed by alice)');
    }
    expect((await stack.api('GET', `/v1/proposals/${proposal.body.id}`, stack.tokens.auditor)).body.state).toBe('applied');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.status).toBe('active');
  });
});

describe('policy versions', () => {
  it('when a policy change has fewer admin approvals than the quorum, then nothing changes', async () => {
    const pool = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    const policy = { ...(pool.policy as Record<string, unknown>), assets: { ETH: { maxPerTx: '1' } } };
    const proposal = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy });
    expect(proposal.status).toBe(201);
    expect((await vote(proposal.body, 'bob')).body.state).toBe('pending');
    const after = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    expect(after.policyVersion).toBe(1);
    expect(after.policy).toEqual(pool.policy);
    const rejected = await vote(proposal.body, 'carol', 'reject');
    expect(rejected.body.state).toBe('rejected');
    expect((await vote(proposal.body, 'carol')).status).toBe(409);
  });

  it('when the admin quorum approves a stricter policy, then a new version applies and open requests are re-evaluated', async () => {
    const pending = await submit('client-b', ETH / 2n);
    const small = await submit('client-b', ETH / 100n);
    expect(pending.body.state).toBe('pending_approval');
    const pool = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    const stricter = {
      ...(pool.policy as Record<string, unknown>),
      assets: { ETH: { maxPerTx: (ETH / 10n).toString(), limits: [{ window: '24h', max: '2000000000000000000' }] } },
    };
    const proposal = await stack.api('POST', '/v1/pools/client-b/policy', admins.carol as string, { policy: stricter });
    await vote(proposal.body, 'alice');
    const applied = await vote(proposal.body, 'bob');
    expect(applied.body).toMatchObject({ state: 'applied', appliedVersion: 2 });
    const after = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    expect(after.policyVersion).toBe(2);
    const reread = await stack.api('GET', `/v1/withdrawals/${pending.body.id}`, stack.tokens.auditor);
    expect(reread.body.state).toBe('denied');
    expect((reread.body.reasons as { code: string }[])[0]!.code).toBe('over_max_per_tx');
    expect((await stack.api('GET', `/v1/withdrawals/${small.body.id}`, stack.tokens.auditor)).body.state).toBe('pending_approval');
    const fresh = await submit('client-b', ETH / 2n);
    expect(fresh.status).toBe(412);
    expect((fresh.body.withdrawal as { policyVersion: number }).policyVersion).toBe(2);
  });

  it('when a policy version adds an allowlist address, then it is usable only after the cooling-off period', async () => {
    const pool = (await stack.api('GET', '/v1/pools/client-a', stack.tokens.auditor)).body;
    const policy = pool.policy as { allowlist: { address: string; label?: string; addedAt?: string }[] };
    const fresh = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    const next = { ...policy, allowlist: [...policy.allowlist, { address: fresh, label: 'new desk', addedAt: '2020-01-01T00:00:00Z' }] };
    const proposal = await stack.api('POST', '/v1/pools/client-a/policy', admins.bob as string, { policy: next });
    await vote(proposal.body, 'alice');
    expect((await vote(proposal.body, 'carol')).body.state).toBe('applied');
    const stored = (await stack.api('GET', '/v1/pools/client-a', stack.tokens.auditor)).body.policy as { allowlist: { address: string; addedAt?: string }[] };
    const entry = stored.allowlist.find((e) => e.address === fresh)!;
    expect(Date.now() - Date.parse(entry.addedAt as string)).toBeLessThan(60_000);
    expect(stored.allowlist.find((e) => e.address === ALLOWLISTED)!.addedAt).toBeUndefined();
    const decision = await stack.api('POST', '/v1/pools/client-a/evaluate', stack.tokens.requester, { ...body('client-a', ETH / 10n), to: fresh });
    expect((decision.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['destination_cooling_off']);
  });

  it('when the fee the transaction can pay is over the cap, then it is denied with fee_over_cap', async () => {
    const r = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { ...body('client-a', ETH / 10n), maxFeePerGas: '500000000000', maxPriorityFeePerGas: '1' });
    expect(r.status).toBe(412);
    expect((r.body.reasons as { code: string; message: string }[])[0]).toMatchObject({ code: 'fee_over_cap' });
  });

  it('when a request is not approved before its expiry, then due work expires it and frees its nonce', async () => {
    const pool = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    const proposal = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: { ...(pool.policy as object), requestExpiry: '2s' } });
    await vote(proposal.body, 'bob');
    expect((await vote(proposal.body, 'carol')).body.state).toBe('applied');
    const w = await submit('client-b', ETH / 100n);
    const usedNonce = String(nonces['client-b']);
    expect(w.body.expiresAt).not.toBeNull();
    const expired = await waitFor(w.body.id as string, 'expired');
    expect((expired.reasons as { code: string }[])[0]!.code).toBe('expired');
    const again = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { ...body('client-b', ETH / 100n), nonce: usedNonce });
    expect(again.status).toBe(201);
  });

  it('when a proposed policy is malformed or needs more approvers than the pool has, then it is refused at once', async () => {
    const bad = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: { quorum: [{ approvals: 3 }], assets: {} } });
    expect(bad.status).toBe(400);
    expect(bad.body.detail).toMatch(/more than the pool's 2 approvers/);
    const unknown = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: { quorum: [], assets: {} }, extra: 1 });
    expect(unknown.status).toBe(400);
    const notAdmin = await stack.api('POST', '/v1/pools/client-b/policy', stack.tokens.alice, { policy: { quorum: [{ approvals: 1 }], assets: {} } });
    expect(notAdmin.status).toBe(403);
  });
});

describe('ERC-20 tokens', () => {
  it('when the admin quorum allows a token on a pool, then a token withdrawal is decoded, limited per token and signed as transfer(to, amount)', async () => {
    const token = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
    const asset = `erc20:${token.toLowerCase()}`;
    const before = await stack.api('POST', '/v1/pools/client-b/evaluate', stack.tokens.requester, { ...body('client-b', 10n), asset, gasLimit: '65000' });
    expect((before.body.reasons as { code: string }[]).map((r) => r.code)).toContain('asset_not_allowed');
    const pool = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    const policy = pool.policy as { assets: Record<string, unknown> };
    const next = { ...policy, assets: { ...policy.assets, [asset]: { maxPerTx: '1000000', limits: [{ window: '24h', max: '1500000' }] } } };
    const proposal = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: next });
    await vote(proposal.body, 'bob');
    expect((await vote(proposal.body, 'carol')).body.state).toBe('applied');

    const w = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { ...body('client-b', 1_000_000n), asset, gasLimit: '65000' });
    expect(w.status).toBe(201);
    expect(w.body.asset).toBe(`erc20:${token}`);
    await approve(w.body.id as string, 'bob');
    const signed = await approve(w.body.id as string, 'carol');
    const tx = Transaction.from(signed.body.signedTx as string);
    expect(tx.to).toBe(token);
    expect(tx.value).toBe(0n);
    const call = new Interface(['function transfer(address to, uint256 amount)']).parseTransaction({ data: tx.data });
    expect(call?.args.toArray()).toEqual([ALLOWLISTED, 1_000_000n]);
    const over = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { ...body('client-b', 600_000n), asset, gasLimit: '65000' });
    expect(over.status).toBe(412);
    expect((over.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['velocity_exceeded']);
    const usage = ((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.usage as { asset: string; used: string }[]).find((u) => u.asset === `erc20:${token}`);
    expect(usage?.used).toBe('1000000');
  });
});

describe('approver changes', () => {
  it('when the admin quorum adds an approver, then the device is rebound and the new approver\'s vote counts', async () => {
    const proposal = await stack.api('POST', '/v1/pools/client-b/approvers', admins.alice as string, { add: [{ id: 'dave', publicKey: DAVE_PUBLIC }] });
    expect(proposal.status).toBe(201);
    await vote(proposal.body, 'bob');
    const applied = await vote(proposal.body, 'carol');
    expect(applied.body.state).toBe('applied');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.approvers).toEqual(['bob', 'carol', 'dave']);

    const dave = JSON.parse((await stack.cli(['token', 'create', '--role', 'approver', '--name', 'dave', '--json'])).stdout).token as string;
    const w = await submit('client-b', ETH / 100n);
    await approve(w.body.id as string, 'bob');
    const message = (await stack.api('GET', `/v1/withdrawals/${w.body.id}`, dave)).body.approvalMessage as string;
    const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(message), hexToBytes(DAVE_SECRET)));
    const signed = await stack.api('POST', `/v1/withdrawals/${w.body.id}/approvals`, dave, { signature, decision: 'approve' });
    expect(signed.body.state).toBe('signed');
    expect(Transaction.from(signed.body.signedTx as string).value).toBe(ETH / 100n);
  });

  it('when the device is asked to change a pool\'s approvers without admin signatures, then it refuses', async () => {
    const device = createSimDevice({ url: stack.sim.url, pin: stack.env.HSM_PIN as string });
    try {
      const mallory = { id: 'mallory', publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes('b2'.repeat(32)))) };
      await expect(device.governPool('client-a', { action: 'approvers', add: [mallory], remove: [] }, [])).rejects.toMatchObject({ code: 'device_quorum_refused' });
    } finally {
      await device.close();
    }
  });

  it('when an approver is removed, then an approved request that relied on them goes back to pending', async () => {
    const w = await submit('client-a', 4n * ETH);
    for (const who of ['alice', 'bob', 'carol'] as const) await approve(w.body.id as string, who);
    expect((await stack.api('GET', `/v1/withdrawals/${w.body.id}`, stack.tokens.auditor)).body.state).toBe('timelocked');
    const proposal = await stack.api('POST', '/v1/pools/client-a/approvers', admins.alice as string, { remove: ['carol'], add: [{ id: 'dave', publicKey: DAVE_PUBLIC }] });
    expect(proposal.status).toBe(201);
    await vote(proposal.body, 'bob');
    expect((await vote(proposal.body, 'carol')).body.state).toBe('applied');
    const reopened = await waitFor(w.body.id as string, 'pending_approval');
    expect((reopened.reasons as { code: string }[])[0]!.code).toBe('quorum_raised');
    const audit = await stack.api('GET', '/v1/audit/verify', stack.tokens.auditor);
    expect(audit.body.ok).toBe(true);
  });

  it("when an approver who voted is removed, then the others' quorum still signs: the device gets only current approvers' approvals", async () => {
    const dave = JSON.parse((await stack.cli(['token', 'create', '--role', 'approver', '--name', 'dave', '--json'])).stdout).token as string;
    const w = await submit('client-b', ETH / 100n);
    expect((await approve(w.body.id as string, 'carol')).body.state).toBe('pending_approval');
    const proposal = await stack.api('POST', '/v1/pools/client-b/approvers', admins.alice as string, { remove: ['carol'] });
    expect(proposal.status).toBe(201);
    await vote(proposal.body, 'bob');
    expect((await vote(proposal.body, 'carol')).body.state).toBe('applied');
    // carol's vote stays on record but no longer counts, and must not reach the device.
    expect((await approve(w.body.id as string, 'bob')).body.state).toBe('pending_approval');
    const message = (await stack.api('GET', `/v1/withdrawals/${w.body.id}`, dave)).body.approvalMessage as string;
    const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(message), hexToBytes(DAVE_SECRET)));
    const signed = await stack.api('POST', `/v1/withdrawals/${w.body.id}/approvals`, dave, { signature, decision: 'approve' });
    expect(signed.body.state).toBe('signed');
    expect(Transaction.from(signed.body.signedTx as string).value).toBe(ETH / 100n);
  });
});

describe('what an admin approves', () => {
  function keyFile(who: 'bob' | 'carol'): string {
    // The CLI test above wrote them.
    const file = join(stack.dataDir, `${who}-admin.key`);
    if (!existsSync(file)) writeApproverKeyFile(file, approverKeyFromSecret(APPROVER_SECRETS[who] as string, who), 'admin key passphrase');
    return file;
  }
  const approveByCli = (id: string, who: 'bob' | 'carol') =>
    stack.cli(['approve', id, '--proposal', '--key', keyFile(who), '--url', stack.gateway.url, '--token', admins[who] as string], { CUSTODY_KEY_PASSPHRASE: 'admin key passphrase' });

  it('when an admin runs custody approve --proposal on a policy change, then each changed field is shown against the current policy, checked against the message', async () => {
    const current = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body;
    const policy = current.policy as { assets: Record<string, { maxPerTx: string; limits: unknown[] }>; allowlist: { address: string; label?: string }[] };
    const next = {
      ...policy,
      assets: { ...policy.assets, ETH: { ...policy.assets.ETH!, maxPerTx: '500000000000000000' } },
      allowlist: [...policy.allowlist.map(({ address, label }) => ({ address, ...(label !== undefined ? { label } : {}) })), { address: '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed', label: 'settlement desk' }],
    };
    const proposal = await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: next });
    const view = await stack.api('GET', `/v1/proposals/${proposal.body.id}`, stack.tokens.auditor);
    expect(view.body.before).toMatchObject({ policyVersion: current.policyVersion, policy: current.policy, threshold: 2 });
    const r = await approveByCli(proposal.body.id as string, 'bob');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`what the new policy changes against version ${String(current.policyVersion)}`);
    expect(r.stdout).toMatch(new RegExp(`~ max per tx ETH +[0-9.]+ ETH \\(${policy.assets.ETH!.maxPerTx} base units\\) -> 0\\.5 ETH \\(500000000000000000 base units\\)\\n`));
    expect(r.stdout).toMatch(/\+ allowlist +0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed "settlement desk"/);
    expect(r.stdout).not.toContain('exchange hot wallet');
    expect((await approveByCli(proposal.body.id as string, 'carol')).code).toBe(0);
    expect((await stack.api('GET', `/v1/proposals/${proposal.body.id}`, stack.tokens.auditor)).body.state).toBe('applied');
  });

  it('when two proposals were made on the same state and the first is applied, then a vote on the second is a 409 stale_proposal and it fails, by API and by CLI', async () => {
    const policy = (await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.policy as Record<string, unknown>;
    const propose = async (change: Record<string, unknown>) => (await stack.api('POST', '/v1/pools/client-b/policy', admins.alice as string, { policy: { ...policy, ...change } })).body;
    const first = await propose({ requestExpiry: '48h' });
    const second = await propose({ requestExpiry: '12h' });
    const third = await propose({ requestExpiry: '6h' });
    await vote(first, 'bob');
    expect((await vote(first, 'carol')).body.state).toBe('applied');

    const stale = await vote(second, 'bob');
    expect(stale.status).toBe(409);
    expect(stale.body.code).toBe('stale_proposal');
    expect(stale.body.detail).toMatch(/^the pool changed since this proposal was made \(governance sequence \d+, now \d+\): it can no longer be applied; propose it again$/);
    expect((await stack.api('GET', `/v1/proposals/${second.id}`, stack.tokens.auditor)).body).toMatchObject({ state: 'failed', reason: stale.body.detail });

    const r = await approveByCli(third.id as string, 'bob');
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/^custody: 409: the pool changed since this proposal was made \(governance sequence \d+, now \d+\): it can no longer be applied; propose it again\n$/);
    expect((await stack.api('GET', `/v1/proposals/${third.id}`, stack.tokens.auditor)).body.state).toBe('failed');
    expect((await stack.api('GET', '/v1/pools/client-b', stack.tokens.auditor)).body.policy).toMatchObject({ requestExpiry: '48h' });
  });
});
