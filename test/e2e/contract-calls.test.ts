/**
 * End to end through the real processes (hsm-sim over TCP, `custody serve`, a SQLite file) on the
 * pool of test/fixtures/contract-calls-plan.json: contract calls are judged on their arguments
 * decoded by ABI. The approve(attacker, 2^256-1) that an allowed (contract, selector) pair used to let
 * through is denied at submission; an approve within the entry's constraints is signed by the
 * simulator and read back by ethers; a function the policy declares is decoded, shown and signed.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { Interface, Transaction as EthersTx } from 'ethers';
import { parseApprovalMessage } from '../../common/approval-message.js';
import { SEPOLIA, poolAddress, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';

const PLAN = join(import.meta.dirname, '..', 'fixtures', 'contract-calls-plan.json');
const USDC = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const ROUTER = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const VAULT = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';
const ATTACKER = '0xdbF03B407c01E7cD3CBea99509d93f8DDDC8C6FB';
const MAX_UINT256 = (1n << 256n) - 1n;
const DEPOSIT = 'deposit(address to, uint256 amount)';
const abi = new Interface(['function approve(address spender, uint256 value)', `function ${DEPOSIT}`]);

let stack: Stack;
let nonce = 0;

function callTx(to: string, data: string): string {
  return EthersTx.from({ type: 2, chainId: 11155111n, nonce: nonce++, gasLimit: 90_000n, maxFeePerGas: 20_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, to, value: 0n, data }).unsignedSerialized;
}

async function submit(asset: string, unsignedTx: string) {
  return stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool: 'treasury', chain: SEPOLIA, asset, unsignedTx });
}

beforeAll(async () => {
  stack = await startStack({ plan: PLAN });
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('the approve(attacker, 2^256-1) attack', () => {
  it('when a requester submits an unlimited allowance to an unknown spender on the allowed token, then it is denied at submission with every reason and never signed', async () => {
    const denied = await submit(`erc20:${USDC}`, callTx(USDC, abi.encodeFunctionData('approve', [ATTACKER, MAX_UINT256])));
    expect(denied.status).toBe(412);
    expect(denied.body).toMatchObject({ state: 'denied', withdrawal: { asset: `erc20:${USDC}`, amount: MAX_UINT256.toString(), to: ATTACKER } });
    expect((denied.body.reasons as { code: string }[]).map((r) => r.code).sort()).toEqual([
      'call_argument_not_allowed',
      'call_argument_not_allowed',
      'destination_not_allowlisted',
      'over_max_per_tx',
      'unlimited_allowance',
      'velocity_exceeded',
    ]);
    // What an approver would have read: the allowance, the spender and the arguments, not "0 ETH to the token".
    const message = parseApprovalMessage((denied.body.withdrawal as { approvalMessage: string }).approvalMessage);
    expect(message.call).toEqual({
      contract: USDC,
      selector: '0x095ea7b3',
      function: 'approve(address spender, uint256 value)',
      args: [{ name: 'spender', type: 'address', value: ATTACKER }, { name: 'value', type: 'uint256', value: MAX_UINT256.toString() }],
    });
    const again = await stack.api('GET', `/v1/withdrawals/${denied.body.id as string}`, stack.tokens.alice);
    expect(again.body.state).toBe('denied');
    expect(again.body.signedTx).toBeUndefined();
  });

  it('when the requester describes the same call as ETH to the token contract, then it is refused: the transaction moves the token', async () => {
    const refused = await submit('ETH', callTx(USDC, abi.encodeFunctionData('approve', [ATTACKER, MAX_UINT256])));
    expect(refused.status).toBe(400);
    expect(refused.body.code).toBe('payload_mismatch');
    expect(refused.body.detail).toBe(`"asset" is ETH but the transaction moves erc20:${USDC}`);
  });
});

describe('an allowance within the policy', () => {
  it('when the router is approved for an amount within the entry, then two approvers suffice and the simulator signs exactly that call, which ethers reads back', async () => {
    const data = abi.encodeFunctionData('approve', [ROUTER, 1_000_000n]);
    const submitted = await submit(`erc20:${USDC}`, callTx(USDC, data));
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ state: 'pending_approval', requiredApprovals: 2, asset: `erc20:${USDC}`, amount: '1000000', to: ROUTER });
    expect(parseApprovalMessage(submitted.body.approvalMessage as string).call?.args).toEqual([
      { name: 'spender', type: 'address', value: ROUTER },
      { name: 'value', type: 'uint256', value: '1000000' },
    ]);
    const id = submitted.body.id as string;
    let last = submitted;
    for (const who of ['alice', 'bob'] as const) {
      last = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
      expect(last.status).toBe(200);
    }
    expect(last.body.state).toBe('signed');
    const tx = EthersTx.from(last.body.signedTx as string);
    expect(tx.from).toBe(poolAddress(stack, 'treasury'));
    expect(tx.to).toBe(USDC);
    expect(tx.value).toBe(0n);
    const parsed = abi.parseTransaction({ data: tx.data });
    expect(parsed?.name).toBe('approve');
    expect([...(parsed?.args ?? [])]).toEqual([ROUTER, 1_000_000n]);
  });

  it('when the amount is above the entry\'s maximum, then it is denied naming the argument', async () => {
    const denied = await submit(`erc20:${USDC}`, callTx(USDC, abi.encodeFunctionData('approve', [ROUTER, 2_000_001n])));
    expect(denied.status).toBe(412);
    expect(denied.body.reasons).toEqual([
      { code: 'call_argument_not_allowed', message: `argument value of approve(address spender, uint256 value) on ${USDC} is 2000001, above the policy's maximum 2000000` },
    ]);
  });
});

describe('a function the policy declares', () => {
  it('when the vault deposit is submitted, then the gateway decodes it by the declared signature, the approval message names the function and its arguments, and the simulator, decoding it by the message\'s own signature, signs it', async () => {
    const submitted = await submit('ETH', callTx(VAULT, abi.encodeFunctionData('deposit', [ROUTER, 5n])));
    expect(submitted.status).toBe(201);
    expect(submitted.body).toMatchObject({ state: 'pending_approval', asset: 'ETH', amount: '0', to: VAULT, contractCall: { contract: VAULT, selector: '0x47e7ef24' } });
    expect(parseApprovalMessage(submitted.body.approvalMessage as string).call).toEqual({
      contract: VAULT,
      selector: '0x47e7ef24',
      function: DEPOSIT,
      args: [{ name: 'to', type: 'address', value: ROUTER }, { name: 'amount', type: 'uint256', value: '5' }],
    });
    const id = submitted.body.id as string;
    let last = submitted;
    for (const who of ['alice', 'bob'] as const) {
      last = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
    }
    expect(last.body.state).toBe('signed');
    const tx = EthersTx.from(last.body.signedTx as string);
    expect(tx.from).toBe(poolAddress(stack, 'treasury'));
    expect([...(abi.parseTransaction({ data: tx.data })?.args ?? [])]).toEqual([ROUTER, 5n]);
  });

  it('when the deposit names a receiver off the allowlist, then it is denied: every address argument is a destination', async () => {
    const denied = await submit('ETH', callTx(VAULT, abi.encodeFunctionData('deposit', [ATTACKER, 5n])));
    expect(denied.status).toBe(412);
    expect((denied.body.reasons as { code: string; message: string }[])).toEqual([
      { code: 'destination_not_allowlisted', message: `argument to = ${ATTACKER} of ${DEPOSIT} is not on the pool's allowlist (every address argument of a call is a destination)` },
    ]);
  });
});
