/**
 * Red team, the approver's side: the real built `custody approve` against a compromised gateway (a
 * fake HTTP gateway on loopback that serves whatever approval message it likes and records every
 * POST). What this file tries, each kept as a refusal the CLI gives today (one line, nothing posted,
 * non-zero exit) or, for the terminal-injection attempt, as text that cannot draw a fake line:
 *
 * - a message that is not the canonical text (a unicode escape, a duplicated key);
 * - an ERC-20 approve whose `call.function` renames its arguments (the spender called something
 *   harmless), and a `call.function` that does not hash to the call's selector;
 * - `to` written in lowercase instead of EIP-55, a Bitcoin `to` in uppercase bech32 (the same address,
 *   another string), an ERC-20 transfer described as a contract call;
 * - a message whose chain is not the transaction's chain id, a Solana v0 message, a PSBT whose first
 *   input is a P2PKH output;
 * - a `pool` value carrying a newline and a fake "amount" line.
 *
 * Attacks that succeeded are not here (they are in the red-team report).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { randomUUID } from 'node:crypto';
import * as web3 from '@solana/web3.js';
import { Transaction as MicroTx } from 'micro-eth-signer';
import { base64 } from '@scure/base';
import { Transaction as BtcTx, OutScript } from '@scure/btc-signer';
import { decodeTransaction } from '../../../common/chains/adapters.js';
import { buildEthereumTransfer } from '../../../common/chains/ethereum/transaction.js';
import {
  BTC_TESTNET,
  ETH_TO,
  SEPOLIA,
  SOL_BLOCKHASH,
  SOL_TO,
  btcMessage,
  ethMessage,
  messageText,
  solMessage,
  type MessageFields,
} from '../../helpers/approval-fixtures.js';
import { ApproverCli, FakeGateway } from '../../helpers/fake-gateway.js';

const TOKEN_ADDR = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const ATTACKER = '0xBaBaBABaBaBabABabAbAbABAbAbAbaBabaBAbaBA'.toLowerCase();

const alice = new ApproverCli(new FakeGateway(), 'approver-token', 'red team passphrase');
const gateway = alice.gateway;
const run = (id: string) => alice.run(id);

beforeAll(() => alice.start('custody-redteam-cli-'));
afterAll(() => alice.close());

function ethCall(data: string, nonce = 11n): string {
  const tx = MicroTx.prepare({ type: 'eip1559', chainId: 11155111n, nonce, gasLimit: 80_000n, maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, to: TOKEN_ADDR, value: 0n, data, accessList: [] }, false);
  return '0x' + Buffer.from(tx.toBytes({ includeSignature: false })).toString('hex');
}

/** A message whose fields are what the shared decoder reads from `unsignedTx` (told `functions`). */
function decodedFields(chain: string, unsignedTx: string, functions: string[] = []): MessageFields {
  const d = decodeTransaction(chain, unsignedTx, null, { functions });
  return {
    kind: 'custody.approval', version: 2, requestId: randomUUID(), pool: 'client-a', chain, policyVersion: 1, decision: 'approve', timelock: 'none',
    asset: d.asset, amount: d.amount.toString(), to: d.to, maxFee: d.maxFee.toString(), digest: Buffer.from(d.digest).toString('hex'), unsignedTx,
    ...(d.call ? { call: d.call } : {}),
  };
}

const APPROVE_UNLIMITED = '095ea7b3' + ATTACKER.slice(2).padStart(64, '0') + 'f'.repeat(64);

describe('custody approve refuses, posts nothing, exits non-zero', () => {
  const cases: [string, () => { fields: MessageFields; text?: string }, RegExp][] = [
    [
      'the message text spells "approve" with a unicode escape (same parsed value, not the canonical text)',
      () => {
        const fields = ethMessage(randomUUID());
        return { fields, text: messageText(fields).replace('"approve"', '"\\u0061pprove"') };
      },
      /not in RFC 8785 canonical form/,
    ],
    [
      'the message text has a duplicated "amount" key (the first one says 1)',
      () => {
        const fields = ethMessage(randomUUID());
        return { fields, text: messageText(fields).replace('"amount":', '"amount":"1","amount":') };
      },
      /not in RFC 8785 canonical form/,
    ],
    [
      'an unlimited ERC-20 approve to the attacker whose call.function renames the spender "refundTo" and the value "fee"',
      () => {
        const fields = decodedFields(SEPOLIA, ethCall(APPROVE_UNLIMITED));
        const call = fields.call as { contract: string; selector: string; args: { name: string; type: string; value: string }[] };
        return { fields: { ...fields, call: { ...call, function: 'approve(address refundTo, uint256 fee)', args: call.args.map((a, i) => ({ ...a, name: i === 0 ? 'refundTo' : 'fee' })) } } };
      },
      /"call" says/,
    ],
    [
      'a call.function whose selector is not the call\'s (it would name the arguments of another function)',
      () => {
        const data = 'deadbeef' + ATTACKER.slice(2).padStart(64, '0') + '1'.padStart(64, '0');
        const fields = decodedFields(SEPOLIA, ethCall(data));
        const call = fields.call as { contract: string; selector: string };
        return { fields: { ...fields, call: { ...call, function: 'deposit(address to, uint256 amount)', args: [{ name: 'to', type: 'address', value: '0x' + ATTACKER.slice(2) }, { name: 'amount', type: 'uint256', value: '1' }] } } };
      },
      /"call" says/,
    ],
    ['"to" is written in lowercase instead of EIP-55', () => ({ fields: { ...ethMessage(randomUUID()), to: ETH_TO.toLowerCase() } }), /"to" says 0x8ba1f109551bd432803012645ac136ddd64dba72 but the transaction has 0x8ba1f109551bD432803012645Ac136ddd64DBA72/],
    [
      'a Bitcoin "to" is the same address in uppercase bech32',
      () => {
        const fields = btcMessage(randomUUID());
        return { fields: { ...fields, to: (fields.to as string).toUpperCase() } };
      },
      /"to" says TB1Q/,
    ],
    [
      'an ERC-20 transfer is described with a "call" (as if it were a contract call, asset ETH)',
      () => {
        const p = buildEthereumTransfer({ chainId: 11155111n, nonce: 3n, gasLimit: 65_000n, fees: { kind: 'eip1559', maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1n }, intent: { asset: `erc20:${TOKEN_ADDR}`, recipient: ETH_TO, amount: 5n } });
        return { fields: { ...decodedFields(SEPOLIA, p.unsignedTx), asset: 'ETH', call: { contract: TOKEN_ADDR, selector: '0xa9059cbb' } } };
      },
      /"asset" says ETH/,
    ],
    ['the message names mainnet but the transaction is for Sepolia', () => ({ fields: { ...ethMessage(randomUUID()), chain: 'eip155:1' } }), /cannot be fully decoded .*chain id 11155111, not 1/],
    [
      'a Solana transfer comes as a v0 message',
      () => {
        const pool = web3.Keypair.generate().publicKey;
        const message = new web3.TransactionMessage({ payerKey: pool, recentBlockhash: SOL_BLOCKHASH, instructions: [web3.SystemProgram.transfer({ fromPubkey: pool, toPubkey: new web3.PublicKey(SOL_TO), lamports: 1_500_000_000 })] }).compileToV0Message();
        return { fields: { ...solMessage(randomUUID()), unsignedTx: Buffer.from(new web3.VersionedTransaction(message).serialize()).toString('base64') } };
      },
      /cannot be fully decoded .*version 0 message/,
    ],
    [
      'a PSBT whose first input spends a P2PKH output (no spender the client can name)',
      () => {
        const tx = new BtcTx({ version: 2 });
        tx.addInput({ txid: '11'.repeat(32), index: 0, sequence: 0xfffffffd, witnessUtxo: { script: OutScript.encode({ type: 'pkh', hash: new Uint8Array(20).fill(7) }), amount: 3_000_000n } });
        tx.addOutputAddress('tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', 1_000_000n, { bech32: 'tb', pubKeyHash: 0x6f, scriptHash: 0xc4, wif: 0xef });
        return { fields: { ...btcMessage(randomUUID()), chain: BTC_TESTNET, unsignedTx: base64.encode(tx.toPSBT()) } };
      },
      /cannot be fully decoded .*input 0 spends a pkh output/,
    ],
  ];
  for (const [what, make, reason] of cases) {
    it(`when ${what}, then it refuses in one line and posts nothing`, async () => {
      const { fields, text } = make();
      const id = gateway.publish(fields, text);
      const result = await run(id);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(new RegExp(`^custody: refusing to sign: .*${reason.source}`));
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(gateway.postsFor(id)).toEqual([]);
    });
  }
});

describe('custody approve does not let the gateway draw on the approver\'s screen', () => {
  it('when "pool" carries a newline and a fake "amount 0.001 ETH" line, then the screen shows it escaped on the pool line and the one amount line is the decoded one', async () => {
    const fields = { ...ethMessage(randomUUID()), pool: 'client-a\n  amount    0.001 ETH (1000000000000000 base units)' };
    const id = gateway.publish(fields);
    const result = await run(id);
    expect(result.stdout).toMatch(/^ {2}pool +client-a\\u\{a\} {2}amount/m);
    expect(result.stdout.match(/^ {2}amount +/gm)).toHaveLength(1);
    expect(result.stdout).toMatch(/^ {2}amount +0\.5 ETH \(500000000000000000 base units\)$/m);
  });
});
