/**
 * End to end through the real processes (hsm-sim over TCP, `custody serve`, the `custody` CLI, a
 * SQLite file): a withdrawal from submit to signed, checked by ethers, and the refusals that the
 * core rules promise (SPEC section 3).
 */
import { approverKeyFromSecret, writeApproverKeyFile } from '../../src/cli/approver-key-file.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Transaction, getAddress } from 'ethers';
import * as bitcoin from 'bitcoinjs-lib';
import { randomBytes } from 'node:crypto';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import Database from 'better-sqlite3';
import { join } from 'node:path';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { openSqliteStore } from '../../src/store/sqlite/sqlite-store.js';
import { createSimDevice } from '../../src/devices/sim/client.js';
import { canonicalApprovalMessage, parseApprovalMessage } from '../../common/approval-message.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import {
  ALLOWLISTED,
  APPROVER_SECRETS,
  PLAN,
  SEPOLIA,
  poolAddress,
  runCli,
  signApproval,
  startStack,
  type Stack,
} from '../helpers/gateway-stack.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex } from '@noble/hashes/utils.js';

const ETH = 10n ** 18n;
let stack: Stack;
let nonce = 0;

function ethBody(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    pool: 'client-a',
    chain: SEPOLIA,
    asset: 'ETH',
    amount: (ETH / 2n).toString(),
    to: ALLOWLISTED,
    nonce: String(nonce++),
    gasLimit: '21000',
    maxFeePerGas: '30000000000',
    maxPriorityFeePerGas: '1000000000',
    ...overrides,
  };
}

async function submit(body: Record<string, unknown>, token = stack.tokens.requester, headers: Record<string, string> = {}) {
  return stack.api('POST', '/v1/withdrawals', token, body, headers);
}

async function approve(id: string, approver: 'alice' | 'bob' | 'carol', decision: 'approve' | 'reject' = 'approve') {
  const current = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens[approver]);
  const signature = signApproval(current.body.approvalMessage as string, approver, decision);
  return stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[approver], { signature, decision });
}

async function counts(): Promise<{ withdrawals: number; audit: number }> {
  const db = new Database(join(stack.dataDir, 'custody.db'), { readonly: true });
  try {
    const w = db.prepare('SELECT COUNT(*) AS n FROM withdrawals').get() as { n: number };
    const a = db.prepare('SELECT COUNT(*) AS n FROM audit').get() as { n: number };
    return { withdrawals: w.n, audit: a.n };
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  stack = await startStack();
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('a withdrawal end to end', () => {
  it('when two approvers of the pool sign, then the gateway releases a transaction that ethers parses with the pool as sender', async () => {
    const body = ethBody();
    const submitted = await submit(body);
    expect(submitted.status).toBe(201);
    expect(submitted.body.state).toBe('pending_approval');
    expect(submitted.body.requiredApprovals).toBe(2);
    const message = parseApprovalMessage(submitted.body.approvalMessage as string);
    expect(message).toMatchObject({ kind: 'custody.approval', requestId: submitted.body.id, pool: 'client-a', chain: SEPOLIA, amount: body.amount, to: ALLOWLISTED, decision: 'approve' });

    const first = await approve(submitted.body.id as string, 'alice');
    expect(first.status).toBe(200);
    expect(first.body.state).toBe('pending_approval');
    const second = await approve(submitted.body.id as string, 'bob');
    expect(second.status).toBe(200);
    expect(second.body.state).toBe('signed');

    const read = await stack.api('GET', `/v1/withdrawals/${submitted.body.id}`, stack.tokens.requester);
    const tx = Transaction.from(read.body.signedTx as string);
    expect(tx.from).toBe(getAddress(poolAddress(stack, 'client-a')));
    expect(tx.to).toBe(getAddress(ALLOWLISTED));
    expect(tx.value).toBe(ETH / 2n);
    expect(tx.nonce).toBe(Number(body.nonce));
    expect(tx.chainId).toBe(11155111n);
    expect(tx.type).toBe(2);
    expect(tx.hash).toBe(read.body.txHash);
    expect((read.body.approvals as unknown[]).length).toBe(2);
  });

  it('when the amount is above the first tier, then it takes three approvals', async () => {
    const submitted = await submit(ethBody({ amount: ((3n * ETH) / 2n).toString() }));
    expect(submitted.body.requiredApprovals).toBe(3);
    await approve(submitted.body.id as string, 'alice');
    const two = await approve(submitted.body.id as string, 'bob');
    expect(two.body.state).toBe('pending_approval');
    const three = await approve(submitted.body.id as string, 'carol');
    expect(three.body.state).toBe('signed');
    expect(Transaction.from(three.body.signedTx as string).value).toBe((3n * ETH) / 2n);
  });

  it('when the amount is above the time-lock threshold, then the approved request waits in timelocked, unsigned', async () => {
    const submitted = await submit(ethBody({ amount: (4n * ETH).toString() }));
    for (const a of ['alice', 'bob'] as const) await approve(submitted.body.id as string, a);
    const last = await approve(submitted.body.id as string, 'carol');
    expect(last.body.state).toBe('timelocked');
    expect(last.body.signedTx).toBeUndefined();
    expect(Date.parse(last.body.notBefore as string) - Date.now()).toBeGreaterThan(59 * 60_000);
  });

  it('when the same Idempotency-Key is sent twice, then one request exists and the retry returns it', async () => {
    const body = ethBody();
    const a = await submit(body, stack.tokens.requester, { 'idempotency-key': 'retry-1' });
    const b = await submit(body, stack.tokens.requester, { 'idempotency-key': 'retry-1' });
    expect(a.status).toBe(201);
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    const other = await submit(ethBody(), stack.tokens.requester, { 'idempotency-key': 'retry-1' });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('idempotency_key_reused');
  });

  it('when a second request uses a nonce that a live request holds, then it is refused (sign once)', async () => {
    const body = ethBody();
    expect((await submit(body)).status).toBe(201);
    const again = await submit({ ...body, amount: '1000' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('sign_once');
  });
});

describe('unsigned transactions and replacements', () => {
  it('when a requester sends an unsigned transaction built by ethers, then the gateway decodes it, and signs exactly it', async () => {
    const n = nonce++;
    const unsigned = Transaction.from({ type: 2, chainId: 11155111n, nonce: n, gasLimit: 21000n, maxFeePerGas: 20_000_000_000n, maxPriorityFeePerGas: 1n, to: ALLOWLISTED, value: ETH / 100n });
    const submitted = await submit({ pool: 'client-a', chain: SEPOLIA, asset: 'ETH', unsignedTx: unsigned.unsignedSerialized });
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ amount: (ETH / 100n).toString(), to: ALLOWLISTED, unsignedTx: unsigned.unsignedSerialized });
    expect(submitted.body.digest).toBe(unsigned.unsignedHash.slice(2));
    await approve(submitted.body.id as string, 'alice');
    const done = await approve(submitted.body.id as string, 'bob');
    const tx = Transaction.from(done.body.signedTx as string);
    expect(tx.unsignedSerialized).toBe(unsigned.unsignedSerialized);
    expect(tx.from).toBe(getAddress(poolAddress(stack, 'client-a')));
  });

  it('when an unsigned transaction is for another chain id, then it is refused and nothing is stored', async () => {
    const before = await counts();
    const unsigned = Transaction.from({ type: 2, chainId: 1n, nonce: 0, gasLimit: 21000n, maxFeePerGas: 2n, maxPriorityFeePerGas: 1n, to: ALLOWLISTED, value: 5n });
    const res = await submit({ pool: 'client-a', chain: SEPOLIA, asset: 'ETH', unsignedTx: unsigned.unsignedSerialized });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('wrong_chain');
    expect(await counts()).toEqual(before);
  });

  it('when a signed transfer is replaced with a higher fee, then the replacement is approved again and signed for the same nonce; a second replacement is refused', async () => {
    const body = ethBody({ amount: (ETH / 100n).toString() });
    const first = await submit(body);
    await approve(first.body.id as string, 'alice');
    expect((await approve(first.body.id as string, 'bob')).body.state).toBe('signed');
    const plain = await submit({ ...body });
    expect(plain.status).toBe(409);
    expect(plain.body.code).toBe('sign_once');
    const cheaper = await submit({ ...body, replaces: first.body.id });
    expect(cheaper.status).toBe(400);
    expect(cheaper.body.code).toBe('not_a_fee_bump');
    // Only the fees may change: a legacy transaction for the same nonce and transfer is not a fee bump.
    const { maxFeePerGas: _f, maxPriorityFeePerGas: _p, ...legacy } = body as Record<string, unknown>;
    const retyped = await submit({ ...legacy, gasPrice: '90000000000', replaces: first.body.id });
    expect(retyped.status).toBe(400);
    expect(retyped.body).toMatchObject({ code: 'not_a_replacement', detail: '"replaces": a replacement may change only the fees; its transaction type differs from the replaced transaction\'s' });
    const bump = await submit({ ...body, maxFeePerGas: '45000000000', replaces: first.body.id });
    expect(bump.status).toBe(201);
    expect(bump.body).toMatchObject({ state: 'pending_approval', replaces: first.body.id });
    expect(JSON.parse(bump.body.approvalMessage as string)).toMatchObject({ replaces: first.body.id, unsignedTx: bump.body.unsignedTx });
    const other = await submit({ ...body, maxFeePerGas: '50000000000', replaces: first.body.id });
    expect(other.status).toBe(409);
    expect(other.body.code).toBe('sign_once');
    await approve(bump.body.id as string, 'bob');
    const signed = await approve(bump.body.id as string, 'carol');
    const a = Transaction.from((await stack.api('GET', `/v1/withdrawals/${first.body.id}`, stack.tokens.auditor)).body.signedTx as string);
    const b = Transaction.from(signed.body.signedTx as string);
    expect(b.nonce).toBe(a.nonce);
    expect(b.maxFeePerGas).toBe(45_000_000_000n);
    expect(b.hash).not.toBe(a.hash);
  });
});

describe('Bitcoin', () => {
  const BTC_CHAIN = 'bip122:000000000933ea01ad0ee984209779ba';
  const COLD = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
  const btcBody = (over: Record<string, unknown> = {}) => ({
    pool: 'client-a', chain: BTC_CHAIN, asset: 'BTC', amount: '1000000', to: COLD,
    utxos: [{ txid: bytesToHex(randomBytes(32)), vout: 0, value: '3000000' }], feeRate: '10', ...over,
  });

  it('when a Bitcoin withdrawal is approved, then the signed transaction parses with bitcoinjs and its input signature verifies against the pool key', async () => {
    const key = stack.ceremony.pools.find((p) => p.id === 'client-a')!.keys.find((k) => k.chain === BTC_CHAIN)!;
    const submitted = await submit(btcBody());
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ asset: 'BTC', amount: '1000000', to: COLD, requiredApprovals: 2 });
    await approve(submitted.body.id as string, 'alice');
    const signed = await approve(submitted.body.id as string, 'bob');
    expect(signed.body.state).toBe('signed');
    const tx = bitcoin.Transaction.fromHex(signed.body.signedTx as string);
    expect(tx.getId()).toBe(signed.body.txHash);
    expect(bitcoin.address.fromOutputScript(tx.outs[0]!.script, bitcoin.networks.testnet)).toBe(COLD);
    expect(tx.outs[0]!.value).toBe(1_000_000n);
    expect(bitcoin.address.fromOutputScript(tx.outs[1]!.script, bitcoin.networks.testnet)).toBe(key.address);
    const pub = hexToBytes(key.publicKey);
    const sighash = tx.hashForWitnessV0(0, bitcoin.payments.p2pkh({ pubkey: pub }).output as Uint8Array, 3_000_000n, bitcoin.Transaction.SIGHASH_ALL);
    const [sig, witnessKey] = tx.ins[0]!.witness as Uint8Array[];
    expect(bytesToHex(witnessKey as Uint8Array)).toBe(key.publicKey);
    expect(secp256k1.verify((sig as Uint8Array).slice(0, -1), sighash, pub, { prehash: false, format: 'der' })).toBe(true);
  });

  it('when a UTXO is already being spent by a live request, then a second request for it is refused', async () => {
    const body = btcBody();
    expect((await submit(body)).status).toBe(201);
    const again = await submit({ ...body, amount: '2000000' });
    expect(again.status).toBe(409);
    expect(again.body.code).toBe('claim_in_use');
  });

  it('when the fee is over the cap or the PSBT pays an extra output, then it is refused with a clear reason', async () => {
    const fee = await submit(btcBody({ feeRate: '1000' }));
    expect(fee.status).toBe(412);
    expect((fee.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['fee_over_cap']);
    const key = stack.ceremony.pools.find((p) => p.id === 'client-a')!.keys.find((k) => k.chain === BTC_CHAIN)!;
    const psbt = new bitcoin.Psbt({ network: bitcoin.networks.testnet });
    psbt.addInput({ hash: bytesToHex(randomBytes(32)), index: 0, witnessUtxo: { script: bitcoin.payments.p2wpkh({ pubkey: hexToBytes(key.publicKey) }).output as Uint8Array, value: 3_000_000n } });
    psbt.addOutput({ address: COLD, value: 1_000_000n });
    psbt.addOutput({ address: 'tb1qrp33g0q5c5txsp9arysrx4k6zdkfs4nce4xj0gdcccefvpysxf3q0sl5k7', value: 1_000_000n });
    const extra = await submit({ pool: 'client-a', chain: BTC_CHAIN, asset: 'BTC', unsignedTx: psbt.toBase64() });
    expect(extra.status).toBe(400);
    expect(extra.body.code).toBe('unsupported_output');
  });
});

describe('refusals', () => {
  it('when the requester approves their own request, then it is refused', async () => {
    const carolRequester = await stack.cli(['token', 'create', '--role', 'requester', '--name', 'carol', '--json']);
    const token = (JSON.parse(carolRequester.stdout) as { token: string }).token;
    const submitted = await submit(ethBody(), token);
    expect(submitted.status).toBe(201);
    const own = await approve(submitted.body.id as string, 'carol');
    expect(own.status).toBe(403);
    expect(own.body.code).toBe('requester_cannot_approve');
  });

  it('when an approver of another pool approves, then it is refused', async () => {
    const submitted = await submit(ethBody({ pool: 'client-b', amount: '1000', nonce: '0' }));
    expect(submitted.status).toBe(201);
    const res = await approve(submitted.body.id as string, 'alice');
    expect(res.status).toBe(403);
    expect(res.body.code).toBe('not_pool_approver');
  });

  it('when an approval signs a different digest, then it is refused and not counted', async () => {
    const submitted = await submit(ethBody());
    const msg = parseApprovalMessage(submitted.body.approvalMessage as string);
    const forged = canonicalApprovalMessage({ ...msg, digest: 'ab'.repeat(32) });
    const signature = bytesToHex(ed25519.sign(new TextEncoder().encode(forged), hexToBytes(APPROVER_SECRETS.alice as string)));
    const res = await stack.api('POST', `/v1/withdrawals/${submitted.body.id}/approvals`, stack.tokens.alice, { signature, decision: 'approve' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('bad_approval_signature');
    const read = await stack.api('GET', `/v1/withdrawals/${submitted.body.id}`, stack.tokens.alice);
    expect(read.body.approvals).toEqual([]);
  });

  it('when an approval from another request is replayed, then it is refused', async () => {
    const one = await submit(ethBody());
    const two = await submit(ethBody());
    const signature = signApproval(one.body.approvalMessage as string, 'alice');
    expect((await stack.api('POST', `/v1/withdrawals/${one.body.id}/approvals`, stack.tokens.alice, { signature, decision: 'approve' })).status).toBe(200);
    const replay = await stack.api('POST', `/v1/withdrawals/${two.body.id}/approvals`, stack.tokens.alice, { signature, decision: 'approve' });
    expect(replay.status).toBe(400);
    expect(replay.body.code).toBe('bad_approval_signature');
    const twice = await stack.api('POST', `/v1/withdrawals/${one.body.id}/approvals`, stack.tokens.alice, { signature, decision: 'approve' });
    expect(twice.status).toBe(409);
    expect(twice.body.code).toBe('duplicate_approval');
  });

  it('when an approver rejects, then the request is rejected and cannot be approved', async () => {
    const submitted = await submit(ethBody());
    const res = await approve(submitted.body.id as string, 'bob', 'reject');
    expect(res.body.state).toBe('rejected');
    expect((await approve(submitted.body.id as string, 'alice')).status).toBe(409);
  });

  it('when the amount is over the per-transaction maximum and the destination is not allowlisted, then it is denied with both reasons', async () => {
    const before = await counts();
    const res = await submit(ethBody({ amount: (6n * ETH).toString(), to: '0x000000000000000000000000000000000000dEaD' }));
    expect(res.status).toBe(412);
    expect(res.contentType).toContain('application/problem+json');
    expect(res.body.state).toBe('denied');
    const codes = (res.body.reasons as { code: string }[]).map((r) => r.code);
    expect(codes).toEqual(expect.arrayContaining(['destination_not_allowlisted', 'over_max_per_tx']));
    const after = await counts();
    expect(after.withdrawals).toBe(before.withdrawals + 1);
    const read = await stack.api('GET', `/v1/withdrawals/${res.body.id}`, stack.tokens.auditor);
    expect(read.body.state).toBe('denied');
  });

  it('when requests together exceed a rolling window, then the one that does not fit is denied, at submission or at its final approval', async () => {
    const poolB = (n: number) => ethBody({ pool: 'client-b', amount: ETH.toString(), nonce: String(n) });
    const first = await submit(poolB(1));
    const second = await submit(poolB(2));
    const third = await submit(poolB(3));
    expect([first.status, second.status, third.status]).toEqual([201, 201, 201]);
    for (const w of [first, second]) {
      await approve(w.body.id as string, 'bob');
      expect((await approve(w.body.id as string, 'carol')).body.state).toBe('signed');
    }
    // 2 ETH of the 24h limit of 2 ETH is used: the pending third is denied when its quorum completes.
    await approve(third.body.id as string, 'bob');
    const late = await approve(third.body.id as string, 'carol');
    expect(late.body.state).toBe('denied');
    expect((late.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['velocity_exceeded']);
    // and a new one is denied at once
    const fourth = await submit(poolB(4));
    expect(fourth.status).toBe(412);
    expect((fourth.body.reasons as { code: string; message: string }[])[0]).toMatchObject({ code: 'velocity_exceeded' });
  });

  it('when the device is called directly with too few or forged approvals, then the device refuses', async () => {
    const device = createSimDevice({ url: stack.sim.url, pin: stack.env.HSM_PIN as string });
    try {
      const key = (await device.listKeys()).find((k) => k.poolId === 'client-a' && k.chain === SEPOLIA);
      expect(key).toBeDefined();
      const submitted = await submit(ethBody());
      const digest = hexToBytes(submitted.body.digest as string);
      const approvalOf = (who: string) => {
        const text = submitted.body.approvalMessage as string;
        return { publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[who] as string))), message: text, signature: signApproval(text, who) };
      };
      const request = { handle: key!.handle, poolId: 'client-a', scheme: 'ecdsa-secp256k1' as const, payload: digest, digest, transaction: { chain: SEPOLIA, unsignedTx: submitted.body.unsignedTx as string } };
      await expect(device.sign({ ...request, approvals: [approvalOf('alice')] })).rejects.toMatchObject({ code: 'device_quorum_refused' });
      const forged = { ...approvalOf('bob'), signature: approvalOf('alice').signature };
      await expect(device.sign({ ...request, approvals: [approvalOf('alice'), forged] })).rejects.toMatchObject({ code: 'device_quorum_refused' });
      await expect(device.sign({ ...request, approvals: [approvalOf('alice'), approvalOf('alice')] })).rejects.toMatchObject({ code: 'device_quorum_refused' });
    } finally {
      await device.close();
    }
  });
});

describe('bad input', () => {
  const cases: [string, unknown][] = [
    ['malformed JSON', '{"pool": "client-a",'],
    ['a JSON array', '[]'],
    ['an unknown field', { extra: 1 }],
    ['a number amount', { amount: 1 }],
    ['a negative amount', { amount: '-1' }],
    ['a fractional amount', { amount: '0.5' }],
    ['an exponent amount', { amount: '1e18' }],
    ['a huge amount', { amount: '1' + '0'.repeat(79) }],
    ['a zero amount', { amount: '0' }],
    ['a bad checksum address', { to: '0x8Ba1f109551bD432803012645Ac136ddd64DBA72' }],
    ['a short address', { to: '0x1234' }],
    ['an unknown pool', { pool: 'no-such-pool' }],
    ['a bad chain id', { chain: 'eip155:abc' }],
    ['a chain the pool does not hold', { chain: 'eip155:1' }],
    ['a missing field', { gasLimit: undefined }],
    ['priority fee above max fee', { maxPriorityFeePerGas: '40000000000' }],
  ];
  for (const [name, change] of cases) {
    it(`when the body has ${name}, then a 4xx problem document is returned and nothing is stored`, async () => {
      const before = await counts();
      const body = typeof change === 'string' ? change : JSON.stringify({ ...ethBody(), ...(change as object) });
      const res = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, body);
      expect(res.status).toBeGreaterThanOrEqual(400);
      expect(res.status).toBeLessThan(500);
      expect(res.contentType).toContain('application/problem+json');
      expect(typeof res.body.detail).toBe('string');
      expect(await counts()).toEqual(before);
    });
  }

  it('when the body is larger than 64 KiB, then 413 and nothing is stored', async () => {
    const before = await counts();
    const res = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, JSON.stringify({ ...ethBody(), to: 'x'.repeat(70_000) }));
    expect(res.status).toBe(413);
    expect(await counts()).toEqual(before);
  });

  it('when a route is called without a token or with the wrong role, then 401 or 403', async () => {
    expect((await stack.api('GET', '/v1/pools', null)).status).toBe(401);
    expect((await stack.api('GET', '/v1/pools', 'cgt_not-a-real-token')).status).toBe(401);
    expect((await submit(ethBody(), stack.tokens.alice)).status).toBe(403);
    expect((await stack.api('GET', '/v1/audit', stack.tokens.requester)).status).toBe(403);
  });

  it('when an unknown withdrawal id is asked for, then 404', async () => {
    expect((await stack.api('GET', '/v1/withdrawals/not-an-id', stack.tokens.auditor)).status).toBe(404);
    expect((await stack.api('GET', '/v1/withdrawals/00000000-0000-4000-8000-000000000000', stack.tokens.auditor)).status).toBe(404);
  });
});

describe('pools, audit and restarts', () => {
  it('when pools are listed, then each has its own keys and usage against its limits', async () => {
    const res = await stack.api('GET', '/v1/pools', stack.tokens.auditor);
    const pools = res.body.pools as { id: string; keys: { address: string; chain: string }[]; usage: { asset: string; window: string; used: string }[] }[];
    expect(pools.map((p) => p.id).sort()).toEqual(['client-a', 'client-b']);
    const a = pools.find((p) => p.id === 'client-a')!;
    const b = pools.find((p) => p.id === 'client-b')!;
    expect(a.keys.map((k) => k.chain).sort()).toEqual(['bip122:000000000933ea01ad0ee984209779ba', SEPOLIA].sort());
    expect(a.keys.find((k) => k.chain === SEPOLIA)!.address).not.toBe(b.keys[0]!.address);
    expect(BigInt(a.usage.find((u) => u.asset === 'ETH' && u.window === '24h')!.used)).toBeGreaterThan(0n);
    // What the policy leaves uncontrolled shows as "none".
    expect((a as unknown as { controls: unknown }).controls).toEqual({
      timelock: { ETH: 'above 3000000000000000000 after 1h', BTC: 'none' },
      maxFee: { ETH: '10000000000000000', BTC: '100000' },
    });
    expect((b as unknown as { controls: unknown }).controls).toEqual({ timelock: { ETH: 'none' }, maxFee: { ETH: 'none' } });
  });

  it('when the ceremony is run again, then it keeps every key, and its transcript verifies offline until a byte changes', async () => {
    const out = join(stack.dataDir, 'transcript.json');
    const rerun = await stack.cli(['ceremony', 'run', PLAN, '--out', out, '--json']);
    expect(rerun.code).toBe(0);
    expect(rerun.stderr).toContain('not making a second one');
    // The example plan leaves BTC out of its time lock, and client-b caps no fee: said, not silent.
    expect(rerun.stderr).toContain('ceremony: warning: pool client-a: BTC is never time-locked (the policy\'s "timelock.above" does not name it)');
    expect(rerun.stderr).toContain('ceremony: warning: pool client-b: ETH is never time-locked');
    expect(rerun.stderr).toContain('ceremony: warning: pool client-b: fees paid in ETH are not capped (the policy\'s "maxFee" does not name it)');
    expect(rerun.stderr).not.toContain('pool client-a: fees paid in');
    expect(JSON.parse(rerun.stdout)).toEqual(stack.ceremony);
    const device = (JSON.parse(readFileSync(out, 'utf8')) as { devices: { id: string }[] }).devices[0]!.id;
    const ok = await stack.cli(['ceremony', 'verify', out, '--plan', PLAN, '--device', device, '--json']);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ ok: true, keys: 3, attested: 3, attestedBy: [device], unattested: [] });
    const human = await stack.cli(['ceremony', 'verify', out]);
    expect(human.stdout).toBe(`transcript verifies: 3 keys, 3 attested by device ${device}, 0 unattested\n`);
    const text = readFileSync(out, 'utf8');
    const address = stack.ceremony.pools[0]!.keys[0]!.address;
    writeFileSync(out, text.replace(address, address.slice(0, -1) + (address.endsWith('a') ? 'b' : 'a')));
    const bad = await stack.cli(['ceremony', 'verify', out]);
    expect(bad.code).toBe(1);
    expect(bad.stdout).toMatch(/^transcript does NOT verify: pool client-a eip155:11155111: address 0x[0-9a-fA-F]{40} is not an address of its public key/);
  });

  it('when both processes are killed mid-way, then after restart the state is intact and the request completes', async () => {
    const submitted = await submit(ethBody());
    await approve(submitted.body.id as string, 'alice');
    await stack.restartSim();
    await stack.restartGateway();
    const read = await stack.api('GET', `/v1/withdrawals/${submitted.body.id}`, stack.tokens.bob);
    expect(read.body.state).toBe('pending_approval');
    expect((read.body.approvals as unknown[]).length).toBe(1);
    const done = await approve(submitted.body.id as string, 'bob');
    expect(done.body.state).toBe('signed');
    expect(Transaction.from(done.body.signedTx as string).from).toBe(getAddress(poolAddress(stack, 'client-a')));
  });

  it('when the device is down at the final approval, then the request waits in signing, readyz says so, and it is signed once the device is back', async () => {
    const submitted = await submit(ethBody());
    await approve(submitted.body.id as string, 'alice');
    const port = stack.sim.port;
    await stack.sim.kill('SIGKILL');
    const ready = await stack.api('GET', '/readyz', null);
    expect(ready.status).toBe(503);
    expect((ready.body.devices as { status: string }[])[0]!.status).toBe('down');
    const waiting = await approve(submitted.body.id as string, 'bob');
    expect(waiting.status).toBe(200);
    expect(waiting.body.state).toBe('signing');
    expect((waiting.body.reasons as { code: string }[])[0]!.code).toBe('device_unavailable');
    expect(waiting.body.signedTx).toBeUndefined();
    await stack.restartSim();
    expect(stack.sim.port).toBe(port);
    let state = 'signing';
    let read: Awaited<ReturnType<Stack['api']>> | null = null;
    for (let i = 0; i < 40 && state !== 'signed'; i++) {
      await new Promise((r) => setTimeout(r, 500));
      read = await stack.api('GET', `/v1/withdrawals/${submitted.body.id}`, stack.tokens.auditor);
      state = read.body.state as string;
    }
    expect(state).toBe('signed');
    expect(Transaction.from(read!.body.signedTx as string).from).toBe(getAddress(poolAddress(stack, 'client-a')));
    expect((await stack.api('GET', '/readyz', null)).status).toBe(200);
  }, 40_000);

  it('when /metrics is read on loopback, then Prometheus text with request durations by route comes back', async () => {
    const res = await fetch(stack.gateway.url + '/metrics');
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/custody_http_request_duration_seconds_count\{method="POST",route="\/v1\/withdrawals",status="201"\} [1-9]/);
    expect(text).toContain('process_cpu_user_seconds_total');
    expect(text).not.toMatch(/route="\/v1\/withdrawals\/[0-9a-f]{8}-/);
  });

  it('when the logs of the whole run are read, then no token, PIN or approval signature appears', async () => {
    const text = stack.allLogs().join('\n');
    expect(text.length).toBeGreaterThan(0);
    for (const t of Object.values(stack.tokens)) expect(text).not.toContain(t);
    expect(text).not.toContain(stack.env.HSM_PIN);
    const w = (await stack.api('GET', '/v1/withdrawals?state=signed', stack.tokens.auditor)).body.withdrawals as { approvals: { signature: string }[] }[];
    expect(w.length).toBeGreaterThan(0);
    for (const a of w.flatMap((x) => x.approvals)) expect(text).not.toContain(a.signature);
  });

  it('when the audit log is intact, then it verifies through the API and the CLI', async () => {
    const api = await stack.api('GET', '/v1/audit/verify', stack.tokens.auditor);
    expect(api.status).toBe(200);
    expect(api.body.ok).toBe(true);
    const cli = await stack.cli(['audit', 'verify', '--json']);
    expect(cli.code).toBe(0);
    expect(JSON.parse(cli.stdout).ok).toBe(true);
  });

  it('when custody audit verify is pointed at a missing or an empty store, then it fails saying so and creates nothing', async () => {
    const nowhere = join(stack.dataDir, 'mistyped-data-dir');
    const missing = await runCli(['audit', 'verify'], { DATA_DIR: nowhere, HSM_PIN: '' });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no store at .*mistyped-data-dir.*set DATA_DIR/);
    expect(existsSync(nowhere)).toBe(false);
    const emptyDir = mkdtempSync(join(tmpdir(), 'custody-empty-store-'));
    await (await openSqliteStore({ path: join(emptyDir, 'custody.db') })).close();
    const empty = await runCli(['audit', 'verify', '--json'], { DATA_DIR: emptyDir, HSM_PIN: '' });
    expect(empty.code).toBe(1);
    expect(empty.stdout + empty.stderr).toMatch(/holds no audit entries/);
  });

  it('when an audit row is altered, then the API and the CLI both report the entry', async () => {
    const db = new Database(join(stack.dataDir, 'custody.db'));
    const triggers = db.prepare("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit'").all() as { name: string }[];
    for (const t of triggers) db.exec(`DROP TRIGGER "${t.name}"`);
    db.prepare("UPDATE audit SET data = json_set(data, '$.amount', '1') WHERE seq = (SELECT MIN(seq) FROM audit WHERE type = 'withdrawal.submitted')").run();
    const seq = (db.prepare("SELECT MIN(seq) AS s FROM audit WHERE type = 'withdrawal.submitted'").get() as { s: number }).s;
    db.close();
    const api = await stack.api('GET', '/v1/audit/verify', stack.tokens.auditor);
    expect(api.body.ok).toBe(false);
    expect((api.body.firstBad as { seq: number }).seq).toBe(seq);
    const cli = await stack.cli(['audit', 'verify']);
    expect(cli.code).toBe(1);
    expect(cli.stdout).toContain(`entry ${seq}`);
  });
});

describe('the CLI approve command', () => {
  it('when an approver runs custody approve with their key file, then the approval is posted and the quorum completes', async () => {
    const submitted = await submit(ethBody());
    const id = submitted.body.id as string;
    const keyFiles: Record<string, string> = {};
    for (const who of ['alice', 'bob']) {
      const path = join(stack.dataDir, `${who}-test.key`);
      writeApproverKeyFile(path, approverKeyFromSecret(APPROVER_SECRETS[who] as string, who), 'e2e key passphrase');
      keyFiles[who] = path;
    }
    const url = stack.gateway.url;
    const wrongPassphrase = await stack.cli(['approve', id, '--key', keyFiles.alice!, '--url', url, '--token', stack.tokens.alice], { CUSTODY_KEY_PASSPHRASE: 'not the passphrase' });
    expect(wrongPassphrase.code).not.toBe(0);
    expect(wrongPassphrase.stderr).toMatch(/the passphrase does not open/);
    const passphraseFile = join(stack.dataDir, 'passphrase.txt');
    writeFileSync(passphraseFile, 'e2e key passphrase\n');
    const a = await stack.cli(['approve', id, '--key', keyFiles.alice!, '--passphrase-file', passphraseFile, '--url', url, '--token', stack.tokens.alice]);
    expect(a.code).toBe(0);
    expect(a.stdout).toContain('0.5 ETH');
    const b = await stack.cli(['approve', id, '--key', keyFiles.bob!, '--url', url, '--token', stack.tokens.bob, '--json'], { CUSTODY_KEY_PASSPHRASE: 'e2e key passphrase' });
    expect(b.code).toBe(0);
    expect(JSON.parse(b.stdout).state).toBe('signed');
    const wrongKey = await stack.cli(['approve', id, '--key', keyFiles.alice!, '--url', url, '--token', stack.tokens.carol], { CUSTODY_KEY_PASSPHRASE: 'e2e key passphrase' });
    expect(wrongKey.code).not.toBe(0);
    expect(wrongKey.stderr).toMatch(/^custody: /);
  });
});
