/**
 * Red team, the requester's side: a malicious requester against a full real stack (simulator process,
 * ceremony CLI, `custody serve`) with two pools on Bitcoin testnet and Sepolia, no allowlist (so
 * commingling and the own-address rule are the only destination checks), and contract-call entries for
 * ERC-20 approve and transferFrom on one token. What this file tries, each kept as the refusal the
 * gateway gives today (denied with its reason, or refused at submission, and nothing signed):
 *
 * - paying pool B's address written in lowercase, or as an ERC-20 transfer recipient, or as the
 *   spender of an approve, or as the `from` of a transferFrom (pulling pool B's allowance);
 * - paying pool B's Bitcoin key at its other address type (P2TR where B holds P2WPKH: the device
 *   signs for either), the pool's own key at its other type, and pool C's mainnet address on Sepolia
 *   (one EVM key controls its address on every EVM chain);
 * - paying the pool's own address (ETH, and Bitcoin as a PSBT whose "payment" is its own change
 *   script);
 * - a request body that describes the transaction differently from the `unsignedTx` it carries;
 * - a second transaction for a live nonce, and a "replacement" that changes the destination or
 *   replaces a Bitcoin transaction;
 * - a legacy transaction and an EIP-1559 one for the same nonce.
 *
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Transaction as EthersTx } from 'ethers';
import { hexToBytes, bytesToHex } from '@noble/hashes/utils.js';
import { base64 } from '@scure/base';
import { Transaction as BtcTx } from '@scure/btc-signer';
import { btcNetwork, poolOutput } from '../../../common/chains/bitcoin/address.js';
import { signApproval, startStack, type Stack } from '../../helpers/gateway-stack.js';

const BTC = 'bip122:000000000933ea01ad0ee984209779ba';
const SEPOLIA = 'eip155:11155111';
const TOKEN = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const OUTSIDE = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const OUTSIDE_BTC = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
const APPROVERS = [
  { id: 'alice', publicKey: 'd75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a' },
  { id: 'bob', publicKey: '3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c' },
  { id: 'carol', publicKey: 'fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025' },
];
const policy = {
  quorum: [{ approvals: 2 }],
  assets: { BTC: { maxPerTx: '50000000' }, ETH: { maxPerTx: '5000000000000000000' }, [`erc20:${TOKEN}`]: { maxPerTx: '1000000000' } },
  maxFee: { BTC: '100000', ETH: '10000000000000000' },
  contractCalls: [
    { contract: TOKEN, selector: '0x095ea7b3', label: 'approve' },
    { contract: TOKEN, selector: '0x23b872dd', label: 'transferFrom' },
  ],
};
const PLAN = {
  version: 1,
  device: 'sim',
  approvers: APPROVERS,
  admins: ['alice', 'bob', 'carol'],
  adminQuorum: 2,
  pools: [
    { id: 'client-a', owner: 'A', chains: [BTC, SEPOLIA], approvers: ['alice', 'bob'], policy },
    { id: 'client-b', owner: 'B', chains: [BTC, SEPOLIA], approvers: ['bob', 'carol'], policy },
    { id: 'client-c', owner: 'C', chains: ['eip155:1'], approvers: ['alice', 'carol'], policy: { quorum: [{ approvals: 2 }], assets: { ETH: {} } } },
  ],
};

let dir: string;
let stack: Stack;
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'custody-redteam-plan-'));
  writeFileSync(join(dir, 'plan.json'), JSON.stringify(PLAN));
  stack = await startStack({ plan: join(dir, 'plan.json') });
}, 120_000);
afterAll(async () => {
  await stack?.close();
  rmSync(dir, { recursive: true, force: true });
});

const keyOf = (pool: string, chain: string) => {
  const key = stack.ceremony.pools.find((p) => p.id === pool)?.keys.find((k) => k.chain === chain);
  if (!key) throw new Error(`no key for ${pool} on ${chain}`);
  return key;
};
const submit = (body: Record<string, unknown>) => stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool: 'client-a', ...body });
const word = (hex: string) => hex.replace(/^0x/, '').toLowerCase().padStart(64, '0');
let nonce = 100;
const ethFields = () => ({ nonce: nonce++, gasLimit: 80_000n, maxFeePerGas: 1_000_000_000n, maxPriorityFeePerGas: 1n, chainId: 11155111n, type: 2 });
const call = (data: string) => EthersTx.from({ ...ethFields(), to: TOKEN, value: 0n, data }).unsignedSerialized;
const utxos = () => [{ txid: bytesToHex(randomBytes(32)), vout: 0, value: '3000000' }];

function expectDenied(res: Awaited<ReturnType<typeof submit>>, code: string): void {
  expect(res.status).toBe(412);
  expect(res.body.state).toBe('denied');
  expect((res.body.reasons as { code: string }[]).map((r) => r.code)).toContain(code);
  expect(res.body.signedTx ?? null).toBeNull();
}

describe('commingling and the own address', () => {
  it('when a Bitcoin withdrawal pays pool B\'s own (stored) address, then it is denied for commingling', async () => {
    expectDenied(await submit({ chain: BTC, asset: 'BTC', amount: '1000000', to: keyOf('client-b', BTC).address, utxos: utxos(), feeRate: '5' }), 'commingling');
  });

  it("when a Bitcoin withdrawal pays pool B's key at its other address type (P2TR; B holds P2WPKH), then it is denied for commingling: B's key controls it too", async () => {
    const alias = poolOutput(hexToBytes(keyOf('client-b', BTC).publicKey), 'p2tr', 'testnet').address;
    expect(alias).not.toBe(keyOf('client-b', BTC).address);
    expectDenied(await submit({ chain: BTC, asset: 'BTC', amount: '1000000', to: alias, utxos: utxos(), feeRate: '5' }), 'commingling');
  });

  it("when a Bitcoin withdrawal pays the pool's own key at its other address type, then it is denied as its own address", async () => {
    const alias = poolOutput(hexToBytes(keyOf('client-a', BTC).publicKey), 'p2tr', 'testnet').address;
    expectDenied(await submit({ chain: BTC, asset: 'BTC', amount: '1000000', to: alias, utxos: utxos(), feeRate: '5' }), 'own_address');
  });

  it("when a Sepolia withdrawal pays the address of pool C's mainnet key (one EVM key controls its address on every EVM chain), then it is denied for commingling", async () => {
    expectDenied(await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000', to: keyOf('client-c', 'eip155:1').address, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' }), 'commingling');
  });

  it('when an ETH withdrawal pays pool B\'s address written all in lowercase, then the decoder canonicalizes it and it is denied for commingling', async () => {
    expectDenied(await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000', to: keyOf('client-b', SEPOLIA).address.toLowerCase(), nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' }), 'commingling');
  });

  it('when an ERC-20 transfer (built by the requester) pays pool B, then it is denied for commingling', async () => {
    const unsignedTx = call('0xa9059cbb' + word(keyOf('client-b', SEPOLIA).address) + word('5'));
    expectDenied(await submit({ chain: SEPOLIA, asset: `erc20:${TOKEN.toLowerCase()}`, unsignedTx }), 'commingling');
  });

  it('when an ERC-20 approve names pool B as spender, then it is denied for commingling', async () => {
    const unsignedTx = call('0x095ea7b3' + word(keyOf('client-b', SEPOLIA).address) + word('5'));
    expectDenied(await submit({ chain: SEPOLIA, asset: `erc20:${TOKEN}`, unsignedTx }), 'commingling');
  });

  it('when a transferFrom pulls pool B\'s tokens (from = pool B) to an outside address, then it is denied for commingling on the "from" argument', async () => {
    const unsignedTx = call('0x23b872dd' + word(keyOf('client-b', SEPOLIA).address) + word(OUTSIDE) + word('5'));
    expectDenied(await submit({ chain: SEPOLIA, asset: `erc20:${TOKEN}`, unsignedTx }), 'commingling');
  });

  it('when an ETH withdrawal pays the pool\'s own address, then it is refused (400 invalid_destination)', async () => {
    const res = await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000', to: keyOf('client-a', SEPOLIA).address.toLowerCase(), nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('invalid_destination');
  });

  it('when a PSBT\'s only output is the pool\'s own change script (no payment at all), then it is refused (400)', async () => {
    const own = keyOf('client-a', BTC);
    const script = poolOutput(hexToBytes(own.publicKey), 'p2wpkh', 'testnet').script;
    const tx = new BtcTx({ version: 2 });
    tx.addInput({ txid: randomBytes(32), index: 0, sequence: 0xfffffffd, witnessUtxo: { script, amount: 3_000_000n } });
    tx.addOutput({ script, amount: 2_990_000n });
    const res = await submit({ chain: BTC, asset: 'BTC', unsignedTx: base64.encode(tx.toPSBT()) });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('unsupported_output');
  });
});

describe('a description that is not the transaction', () => {
  it('when the body says 1 ETH to an outside address but the unsignedTx pays 4 ETH to pool B, then it is refused (payload_mismatch)', async () => {
    const unsignedTx = EthersTx.from({ ...ethFields(), to: keyOf('client-b', SEPOLIA).address, value: 4n * 10n ** 18n }).unsignedSerialized;
    const res = await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000000000000000000', unsignedTx });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('payload_mismatch');
    const res2 = await submit({ chain: SEPOLIA, asset: 'ETH', to: OUTSIDE, unsignedTx });
    expect(res2.body.code).toBe('payload_mismatch');
  });

  it('when the body names asset ETH but the unsignedTx is an ERC-20 transfer, then it is refused (payload_mismatch)', async () => {
    const res = await submit({ chain: SEPOLIA, asset: 'ETH', unsignedTx: call('0xa9059cbb' + word(OUTSIDE) + word('5')) });
    expect(res.status).toBe(400);
    expect(res.body.code).toBe('payload_mismatch');
  });
});

describe('sign once and replacements', () => {
  async function approveAll(id: string): Promise<Record<string, unknown>> {
    let last: Record<string, unknown> = {};
    for (const who of ['alice', 'bob'] as const) {
      const view = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.alice);
      last = (await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(view.body.approvalMessage as string, who), decision: 'approve' })).body;
    }
    return last;
  }

  it('when a second transaction (legacy, to another address) is submitted for the nonce of a live EIP-1559 one, then it is refused (409 sign_once)', async () => {
    const n = nonce++;
    const first = await submit({ chain: SEPOLIA, asset: 'ETH', unsignedTx: EthersTx.from({ ...ethFields(), nonce: n, to: OUTSIDE, value: 1000n }).unsignedSerialized });
    expect(first.status).toBe(201);
    const legacy = EthersTx.from({ type: 0, chainId: 11155111n, nonce: n, to: '0x' + 'ba'.repeat(20), value: 1000n, gasLimit: 21_000n, gasPrice: 1_000_000_000n }).unsignedSerialized;
    const second = await submit({ chain: SEPOLIA, asset: 'ETH', unsignedTx: legacy });
    expect(second.status).toBe(409);
    expect(second.body.code).toBe('sign_once');
  });

  it('when a "replacement" of a signed ETH withdrawal changes the destination, or replaces a Bitcoin withdrawal, then it is refused (not_a_replacement)', async () => {
    const n = nonce++;
    const original = await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000', to: OUTSIDE, nonce: String(n), gasLimit: '21000', maxFeePerGas: '1000000000', maxPriorityFeePerGas: '1' });
    expect((await approveAll(original.body.id as string)).state).toBe('signed');
    const moved = await submit({ chain: SEPOLIA, asset: 'ETH', amount: '1000', to: '0x' + 'ba'.repeat(20), nonce: String(n), gasLimit: '21000', maxFeePerGas: '2000000000', maxPriorityFeePerGas: '1', replaces: original.body.id });
    expect(moved.status).toBe(400);
    expect(moved.body.code).toBe('not_a_replacement');

    const btc = await submit({ chain: BTC, asset: 'BTC', amount: '1000000', to: OUTSIDE_BTC, utxos: utxos(), feeRate: '5' });
    expect((await approveAll(btc.body.id as string)).state).toBe('signed');
    const psbt = BtcTx.fromPSBT(base64.decode(btc.body.unsignedTx as string));
    const bumped = new BtcTx({ version: 2 });
    const input = psbt.getInput(0);
    bumped.addInput({ txid: input.txid as Uint8Array, index: input.index as number, sequence: 0xfffffffd, witnessUtxo: input.witnessUtxo as { script: Uint8Array; amount: bigint } });
    bumped.addOutputAddress(OUTSIDE_BTC, 1_000_000n, btcNetwork('testnet'));
    const rbf = await submit({ chain: BTC, asset: 'BTC', unsignedTx: base64.encode(bumped.toPSBT()), replaces: btc.body.id });
    expect(rbf.status).toBe(400);
    expect(rbf.body.code).toBe('not_a_replacement');
  });
});
