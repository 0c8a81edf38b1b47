/**
 * End to end on a pool holding three chains (test/fixtures/multichain-plan.json): a Taproot (P2TR
 * key-path) Bitcoin withdrawal, a Solana SOL transfer, and Ethereum contract calls that only the
 * policy's `contractCalls` allow. Each signed transaction is checked with code we did not write.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import * as bitcoin from 'bitcoinjs-lib';
import * as ecc from 'tiny-secp256k1';
import * as web3 from '@solana/web3.js';
import { Interface, Transaction as EthersTx, Wallet } from 'ethers';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

bitcoin.initEccLib(ecc);
const PLAN = join(import.meta.dirname, '..', 'fixtures', 'multichain-plan.json');
const SEPOLIA = 'eip155:11155111';
const BTC_TESTNET = 'bip122:000000000933ea01ad0ee984209779ba';
const SOLANA_DEVNET = 'solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1';
const USDC = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const ROUTER = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const erc20 = new Interface(['function approve(address,uint256)', 'function transferFrom(address,address,uint256)']);

let stack: Stack;

function keyOf(chain: string): { address: string; publicKey: string } {
  const key = stack.ceremony.pools.find((p) => p.id === 'treasury')?.keys.find((k) => k.chain === chain);
  if (!key) throw new Error(`no treasury key on ${chain}`);
  return key;
}

async function submit(body: Record<string, unknown>) {
  return stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool: 'treasury', ...body });
}

async function approveBy(id: string, approvers: ('alice' | 'bob')[]) {
  let last = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.alice);
  for (const who of approvers) {
    const signature = signApproval(last.body.approvalMessage as string, who);
    last = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature, decision: 'approve' });
    expect(last.status).toBe(200);
  }
  return last;
}

beforeAll(async () => {
  stack = await startStack({ plan: PLAN });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('a Taproot pool', () => {
  it('when a P2TR withdrawal is approved, then bitcoinjs recomputes each BIP-341 sighash and tiny-secp256k1 verifies the Schnorr signature under the pool\'s output key', async () => {
    const pool = keyOf(BTC_TESTNET);
    expect(pool.address).toMatch(/^tb1p/);
    const poolScript = bitcoin.address.toOutputScript(pool.address, bitcoin.networks.testnet);
    // The address is the BIP-86 tweak of the device's key, as bitcoinjs derives it on its own.
    expect(bitcoin.payments.p2tr({ internalPubkey: hexToBytes(pool.publicKey).subarray(1), network: bitcoin.networks.testnet }).address).toBe(pool.address);

    const utxos = [{ txid: bytesToHex(randomBytes(32)), vout: 1, value: '2000000' }, { txid: bytesToHex(randomBytes(32)), vout: 0, value: '700000' }];
    const to = 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx';
    const submitted = await submit({ chain: BTC_TESTNET, asset: 'BTC', amount: '2500000', to, utxos, feeRate: '5' });
    expect(submitted.status).toBe(201);
    const signed = await approveBy(submitted.body.id as string, ['alice', 'bob']);
    expect(signed.body.state).toBe('signed');

    const tx = bitcoin.Transaction.fromHex(signed.body.signedTx as string);
    expect(tx.getId()).toBe(signed.body.txHash);
    expect(bitcoin.address.fromOutputScript(tx.outs[0]!.script, bitcoin.networks.testnet)).toBe(to);
    expect(bitcoin.address.fromOutputScript(tx.outs[1]!.script, bitcoin.networks.testnet)).toBe(pool.address);
    const values = utxos.map((u) => BigInt(u.value));
    tx.ins.forEach((input, i) => {
      const sighash = tx.hashForWitnessV1(i, values.map(() => poolScript), values, bitcoin.Transaction.SIGHASH_DEFAULT);
      expect(input.witness.length).toBe(1);
      expect(ecc.verifySchnorr(sighash, poolScript.subarray(2), input.witness[0] as Uint8Array)).toBe(true);
    });
  });
});

describe('a Solana pool key', () => {
  const blockhash = 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52';
  const to = 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys';

  it('when a SOL transfer is approved, then web3.js reads the transfer from the pool and verifies its signature', async () => {
    const pool = keyOf(SOLANA_DEVNET);
    const submitted = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', amount: '1500000000', to, recentBlockhash: blockhash });
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ asset: 'SOL', amount: '1500000000', to, maxFee: '5000' });
    const signed = await approveBy(submitted.body.id as string, ['alice', 'bob']);
    expect(signed.body.state).toBe('signed');

    const tx = web3.Transaction.from(Buffer.from(signed.body.signedTx as string, 'base64'));
    expect(tx.verifySignatures()).toBe(true);
    expect(tx.feePayer?.toBase58()).toBe(pool.address);
    expect(tx.recentBlockhash).toBe(blockhash);
    const transfer = web3.SystemInstruction.decodeTransfer(tx.instructions[0] as web3.TransactionInstruction);
    expect({ from: transfer.fromPubkey.toBase58(), to: transfer.toPubkey.toBase58(), lamports: transfer.lamports }).toEqual({ from: pool.address, to, lamports: 1_500_000_000n });
  });

  it('when a transaction built by web3.js is submitted unsigned, then it is accepted as the same transfer', async () => {
    const pool = keyOf(SOLANA_DEVNET);
    const tx = new web3.Transaction({ feePayer: new web3.PublicKey(pool.address), recentBlockhash: blockhash });
    tx.add(web3.SystemProgram.transfer({ fromPubkey: new web3.PublicKey(pool.address), toPubkey: new web3.PublicKey(to), lamports: 42_000n }));
    const unsignedTx = tx.serialize({ requireAllSignatures: false, verifySignatures: false }).toString('base64');
    const submitted = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', unsignedTx });
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ amount: '42000', to, unsignedTx });
  });

  it('when the request is malformed, then it is refused with a clear reason and nothing is created', async () => {
    const bad = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', amount: '1', to, recentBlockhash: 'nope-not-base58-0OIl-long-enough-32' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('invalid_blockhash');
    const mixed = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', amount: '1', to, recentBlockhash: blockhash, feeRate: '2' });
    expect(mixed.status).toBe(400);
    expect(mixed.body.code).toBe('conflicting_fields');
    const over = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', amount: '10000000001', to, recentBlockhash: blockhash });
    expect(over.status).toBe(412);
    expect((over.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['over_max_per_tx']);
  });
});

describe('an approver with a hardware wallet key (EIP-191)', () => {
  // dave's plan key is the compressed secp256k1 key of this wallet; a Ledger's Ethereum app signs the
  // same EIP-191 personal message (its APDU path is tested against the simulator's Ledger mode).
  const dave = new Wallet('0x' + '42'.repeat(32));

  it('when alice (Ed25519) and dave (EIP-191) approve, then gateway and device both accept dave\'s signature and the withdrawal is signed', async () => {
    const token = await stack.cli(['token', 'create', '--role', 'approver', '--name', 'dave', '--json']);
    expect(token.code).toBe(0);
    const daveToken = (JSON.parse(token.stdout) as { token: string }).token;
    const submitted = await submit({ chain: SOLANA_DEVNET, asset: 'SOL', amount: '7000', to: 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys', recentBlockhash: 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52' });
    expect(submitted.status).toBe(201);
    const id = submitted.body.id as string;
    const message = submitted.body.approvalMessage as string;

    const forged = await Wallet.createRandom().signMessage(message);
    const refused = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, daveToken, { signature: forged, decision: 'approve' });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe("bad_approval_signature");

    const byDave = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, daveToken, { signature: await dave.signMessage(message), decision: 'approve' });
    expect(byDave.status).toBe(200);
    const signed = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens.alice, { signature: signApproval(message, 'alice'), decision: 'approve' });
    expect(signed.body.state).toBe('signed');
    expect((signed.body.approvals as { approver: string }[]).map((a) => a.approver).sort()).toEqual(['alice', 'dave']);
  });
});

describe('proof of control on a Taproot pool', () => {
  it('when an admin proposes a challenge for a pool with a P2TR address, then it is refused: it would need BIP-322', async () => {
    const refused = await stack.api('POST', '/v1/pools/treasury/attest-control', stack.tokens.admin, { challenge: 'reserves 2026' });
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('unsupported_proof');
    expect(refused.body.detail).toMatch(/BIP-322/);
  });
});

describe('Ethereum contract calls', () => {
  let nonce = 100;
  const callTx = (data: string, value = 0n) =>
    EthersTx.from({ type: 2, chainId: 11155111n, nonce: nonce++, gasLimit: 80_000n, maxFeePerGas: 20_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, to: USDC, value, data }).unsignedSerialized;

  it('when the policy lists the contract and selector, then the approve is decoded as the token amount it allows, shown with its arguments in the approval message, and signed by the pool', async () => {
    const data = erc20.encodeFunctionData('approve', [ROUTER, 1_000_000n]);
    const submitted = await submit({ chain: SEPOLIA, asset: `erc20:${USDC}`, unsignedTx: callTx(data) });
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ amount: '1000000', to: ROUTER, contractCall: { contract: USDC, selector: '0x095ea7b3' } });
    expect(JSON.parse(submitted.body.approvalMessage as string).call).toEqual({
      contract: USDC,
      selector: '0x095ea7b3',
      function: 'approve(address spender, uint256 value)',
      args: [
        { name: 'spender', type: 'address', value: ROUTER },
        { name: 'value', type: 'uint256', value: '1000000' },
      ],
    });
    const signed = await approveBy(submitted.body.id as string, ['alice', 'bob']);
    expect(signed.body.state).toBe('signed');
    const tx = EthersTx.from(signed.body.signedTx as string);
    expect(tx.from).toBe(keyOf(SEPOLIA).address);
    expect(tx.to).toBe(USDC);
    expect(tx.data).toBe(data);
  });

  it('when the call is to a function the policy does not list, then it is denied with contract_call_not_allowed and nothing is signed', async () => {
    const data = erc20.encodeFunctionData('transferFrom', [ROUTER, '0x8ba1f109551bD432803012645Ac136ddd64DBA72', 5n]);
    const denied = await submit({ chain: SEPOLIA, asset: `erc20:${USDC}`, unsignedTx: callTx(data) });
    expect(denied.status).toBe(412);
    expect((denied.body.reasons as { code: string }[]).map((r) => r.code)).toEqual(['contract_call_not_allowed']);
    expect(denied.body.state).toBe('denied');
  });
});
