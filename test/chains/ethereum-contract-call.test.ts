/**
 * Contract calls decoded by ABI (common/chains/ethereum/contract-call.ts and adapter.ts), checked
 * against code we did not write: ethers' Interface encodes each vector of
 * test/vectors/abi-contract-calls.json, our decoder reads it back, and every non-canonical variant
 * of the same bytes is refused.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Interface, Transaction as EthersTx, getAddress } from 'ethers';
import { decodeTransaction } from '../../common/chains/adapters.js';
import { canonicalArgumentValue, decodeContractCall, parseFunctionSignature } from '../../common/chains/ethereum/contract-call.js';
import { ValidationError } from '../../common/errors.js';

interface CallVector {
  readonly function: string;
  readonly selector?: string;
  readonly known: boolean;
  readonly args: readonly string[];
}

const vectors = JSON.parse(readFileSync(join(import.meta.dirname, '..', 'vectors', 'abi-contract-calls.json'), 'utf8')) as { calls: CallVector[] };
const SEPOLIA = 'eip155:11155111';
const TOKEN = '0x1c7D4B196Cb0C7B01d743Fbc6116a902379C7238';
const SPENDER = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';
const VAULT = '0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed';

/** ethers' value for an argument written as text in a vector. */
function ethersValue(type: string, text: string): unknown {
  if (type === 'bool') return text === 'true';
  if (/int/.test(type)) return BigInt(text);
  return text;
}

/** What our decoder must give for an argument written as text in a vector. */
function expectedText(type: string, text: string): string {
  return type === 'address' ? getAddress(text) : text;
}

function encodeWithEthers(v: CallVector): string {
  const iface = new Interface([`function ${v.function}`]);
  const fragment = iface.fragments[0] as unknown as { inputs: { type: string }[] };
  return iface.encodeFunctionData(iface.getFunction(v.function.slice(0, v.function.indexOf('(')))!, v.args.map((a, i) => ethersValue(fragment.inputs[i]!.type, a)));
}

function callTx(to: string, data: string, value = 0n): string {
  return EthersTx.from({ type: 2, chainId: 11155111n, nonce: 4, gasLimit: 90_000n, maxFeePerGas: 20_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n, to, value, data }).unsignedSerialized;
}

describe('decoding call data by ABI (vectors encoded by ethers)', () => {
  for (const v of vectors.calls) {
    it(`when ${v.function} with (${v.args.map((a) => a.slice(0, 14)).join(', ')}) is encoded by ethers, then our decoder reads the same function, selector and arguments`, () => {
      const data = encodeWithEthers(v);
      const signature = parseFunctionSignature(v.function, 'function');
      expect(signature.selector).toBe(data.slice(0, 10));
      if (v.selector !== undefined) expect(signature.selector).toBe(v.selector);
      const call = decodeContractCall(VAULT, data.slice(2), v.known ? [] : [v.function]);
      expect(call).toEqual({
        contract: VAULT,
        selector: signature.selector,
        function: v.function,
        args: signature.inputs.map((input, i) => ({ name: input.name, type: input.type, value: expectedText(input.type, v.args[i]!) })),
      });
    });
  }

  it('when a declared function is not given to the decoder, then only the contract and selector are read', () => {
    const v = vectors.calls.find((c) => c.function.startsWith('deposit(address'))!;
    expect(decodeContractCall(VAULT, encodeWithEthers(v).slice(2))).toEqual({ contract: VAULT, selector: '0x47e7ef24' });
  });

  it('when the given signature hashes to another selector, then it is not used for that call', () => {
    const v = vectors.calls.find((c) => c.function.startsWith('deposit(address'))!;
    expect(decodeContractCall(VAULT, encodeWithEthers(v).slice(2), ['deposit(address to, uint128 amount)'])).toEqual({ contract: VAULT, selector: '0x47e7ef24' });
  });

  it('when a signature names a known ERC-20 selector with other names, then the ERC-20 names are used', () => {
    const data = new Interface(['function approve(address guy, uint256 wad)']).encodeFunctionData('approve', [SPENDER, 1n]);
    expect(decodeContractCall(TOKEN, data.slice(2), ['approve(address guy, uint256 wad)']).function).toBe('approve(address spender, uint256 value)');
  });

  it('when two different signatures with one selector are declared, then the list is refused', () => {
    expect(() => decodeContractCall(VAULT, '47e7ef24', ['deposit(address to, uint256 amount)', 'deposit(address receiver, uint256 assets)'])).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: "functions[1]" deposit(address receiver, uint256 assets) and deposit(address to, uint256 amount) share selector 0x47e7ef24; only one may be declared]`,
    );
  });
});

describe('refusing call data that is not canonical ABI', () => {
  const approve = new Interface(['function approve(address spender, uint256 value)']).encodeFunctionData('approve', [SPENDER, 1000n]).slice(2);
  const settle = vectors.calls.find((c) => c.function.startsWith('settle'))!;
  const settleData = encodeWithEthers(settle).slice(2);
  const word = (hex: string, i: number) => 8 + i * 64;
  const set = (hex: string, at: number, digits: string) => hex.slice(0, at) + digits + hex.slice(at + digits.length);
  // The `memo` bytes moved one word further (offset 0xe0 instead of 0xc0, a zero word in the gap).
  const head = word(settleData, 6);
  const gapped = set(settleData.slice(0, head), word(settleData, 3) + 62, 'e0') + '00'.repeat(32) + settleData.slice(head);
  // Two dynamic arguments whose tails are swapped (and their offsets with them): a reader that follows
  // offsets reads the same values, but the bytes are not the canonical encoding.
  const pair = 'pair(bytes a, bytes b)';
  const pairData = new Interface([`function ${pair}`]).encodeFunctionData('pair', ['0xdeadbeef', '0x01']).slice(2);
  const w = (i: number) => pairData.slice(8 + i * 64, 8 + (i + 1) * 64);
  const swapped = pairData.slice(0, 8) + w(1) + w(0) + w(4) + w(5) + w(2) + w(3);

  const cases: [string, string, readonly string[], RegExp][] = [
    ['a trailing byte', approve + '00', [], /cannot be decoded|canonical/],
    ['a missing byte', approve.slice(0, -2), [], /cannot be decoded/],
    ['only the selector', approve.slice(0, 8), [], /cannot be decoded/],
    ['dirty high bytes in an address word', set(approve, word(approve, 0), '01'), [], /cannot be decoded/],
    ['a bool word of 2', set(settleData, word(settleData, 4) + 62, '02'), [settle.function], /cannot be decoded/],
    ['a uint8 word above 255', set(settleData, word(settleData, 2) + 60, '01'), [settle.function], /cannot be decoded/],
    ['an int64 word that is not sign-extended', set(settleData, word(settleData, 1), '00'), [settle.function], /cannot be decoded/],
    ['dirty low bytes in a bytes4 word', set(settleData, word(settleData, 5) + 62, '01'), [settle.function], /cannot be decoded/],
    ['a bytes offset that skips a word', gapped, [settle.function], /cannot be decoded: .*unread byte ranges/],
    ['two bytes tails in swapped order', swapped, [pair], /not in canonical ABI encoding/],
  ];
  for (const [name, data, functions, message] of cases) {
    it(`when the call data has ${name}, then it is refused`, () => {
      expect(() => decodeContractCall(VAULT, data, functions)).toThrow(ValidationError);
      expect(() => decodeContractCall(VAULT, data, functions)).toThrow(message);
    });
  }

  it('when the data decodes but is not canonical, then the refusal names the function and contract', () => {
    expect(decodeContractCall(VAULT, pairData, [pair]).args?.map((a) => a.value)).toEqual(['0xdeadbeef', '0x01']);
    expect(() => decodeContractCall(VAULT, swapped, [pair])).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: "unsignedTx" call data of pair(bytes a, bytes b) on 0x5aAeb6053F3E94C9b9A09f33669435E7Ef1BeAed is not in canonical ABI encoding (it does not re-encode to the same bytes)]`,
    );
  });
});

describe('function signatures', () => {
  it('when a signature uses aliases and spacing, then it is normalized with canonical types', () => {
    expect(parseFunctionSignature(' deposit( address to ,uint amount ) ', 'f')).toMatchObject({
      text: 'deposit(address to, uint256 amount)',
      canonical: 'deposit(address,uint256)',
      selector: '0x47e7ef24',
    });
  });

  const refused: [string, string][] = [
    ['deposit(address,uint256)', 'argument 1 ("address") must be a type and a name, such as "address to"'],
    ['deposit(address to, uint256[] amounts)', 'argument "amounts" has type "uint256[]"; only address, bool, uint<M>, int<M>, bytes<M> and bytes are accepted'],
    ['deposit(string memo)', 'argument "memo" has type "string"; only address, bool, uint<M>, int<M>, bytes<M> and bytes are accepted'],
    ['deposit((address a, uint256 b) t)', 'expected a function signature with named arguments such as "deposit(address to, uint256 amount)" (no tuples or arrays)'],
    ['function deposit(address to)', 'expected a function signature with named arguments such as "deposit(address to, uint256 amount)" (no tuples or arrays)'],
    ['deposit(address to, uint256 to)', 'names argument "to" twice'],
    ['deposit(uint257 x)', 'argument "x" has type "uint257"; only address, bool, uint<M>, int<M>, bytes<M> and bytes are accepted'],
    ['deposit(address payable to)', 'argument 1 ("address payable to") must be a type and a name, such as "address to"'],
  ];
  for (const [text, why] of refused) {
    it(`when the signature is ${text}, then it is refused naming the field`, () => {
      expect(() => parseFunctionSignature(text, 'contractCalls[0].function')).toThrow(`"contractCalls[0].function" ${why}`);
    });
  }

  it('when constraint values are written for each type, then they take the decoder\'s text form or are refused', () => {
    expect(canonicalArgumentValue('address', SPENDER.toLowerCase(), 'v')).toBe(SPENDER);
    expect(canonicalArgumentValue('uint8', '255', 'v')).toBe('255');
    expect(canonicalArgumentValue('int64', '-42', 'v')).toBe('-42');
    expect(canonicalArgumentValue('bytes4', '0xCAFEBABE', 'v')).toBe('0xcafebabe');
    expect(canonicalArgumentValue('bool', 'true', 'v')).toBe('true');
    for (const [type, value] of [['uint8', '256'], ['uint256', '-1'], ['int8', '-129'], ['uint256', '01'], ['bytes4', '0xcafe'], ['bool', 'yes'], ['address', '0x12']]) {
      expect(() => canonicalArgumentValue(type as string, value, 'v'), `${type} ${value}`).toThrow(ValidationError);
    }
  });
});

describe('contract calls in a decoded transaction', () => {
  const erc20 = new Interface(['function approve(address spender, uint256 value)', 'function increaseAllowance(address spender, uint256 addedValue)', 'function transferFrom(address from, address to, uint256 value)']);

  it('when the transaction approves a spender, then it is decoded as that token amount to the spender, with the call and its arguments named', () => {
    const d = decodeTransaction(SEPOLIA, callTx(TOKEN, erc20.encodeFunctionData('approve', [SPENDER, 1_000_000n])), null);
    expect({ asset: d.asset, amount: d.amount, to: d.to, call: d.call }).toEqual({
      asset: `erc20:${TOKEN}`,
      amount: 1_000_000n,
      to: SPENDER,
      call: {
        contract: TOKEN,
        selector: '0x095ea7b3',
        function: 'approve(address spender, uint256 value)',
        args: [{ name: 'spender', type: 'address', value: SPENDER }, { name: 'value', type: 'uint256', value: '1000000' }],
      },
    });
    expect(d.details.filter(([label]) => ['to', 'value', 'data', 'function', 'argument spender', 'argument value', 'allowance'].includes(label))).toEqual([
      ['to', TOKEN],
      ['value', '0 wei'],
      ['data', `ERC-20 approve(address spender = ${SPENDER}, uint256 value = 1000000)`],
      ['function', 'approve(address spender, uint256 value) (selector 0x095ea7b3)'],
      ['argument spender', `${SPENDER} (address)`],
      ['argument value', '1000000 (uint256)'],
      ['allowance', `${SPENDER} may spend 1000000 base units of erc20:${TOKEN}`],
    ]);
  });

  it('when the approval is for 2^256-1, then the details say it is unlimited', () => {
    const d = decodeTransaction(SEPOLIA, callTx(TOKEN, erc20.encodeFunctionData('approve', [SPENDER, (1n << 256n) - 1n])), null);
    expect(d.details.find(([label]) => label === 'allowance')?.[1]).toMatch(/\(2\^256-1: unlimited\)/);
  });

  it('when the transaction calls transferFrom, then the token amount goes to its recipient', () => {
    const d = decodeTransaction(SEPOLIA, callTx(TOKEN, erc20.encodeFunctionData('transferFrom', [VAULT, SPENDER, 7n])), null);
    expect({ asset: d.asset, amount: d.amount, to: d.to }).toEqual({ asset: `erc20:${TOKEN}`, amount: 7n, to: SPENDER });
    expect(d.details.find(([label]) => label === 'moves')?.[1]).toBe(`7 base units of erc20:${TOKEN} from ${VAULT} to ${SPENDER}`);
  });

  it('when an ERC-20 approve also sends ETH, then it is refused', () => {
    expect(() => decodeTransaction(SEPOLIA, callTx(TOKEN, erc20.encodeFunctionData('increaseAllowance', [SPENDER, 1n]), 1n), null)).toThrowErrorMatchingInlineSnapshot(
      `[ValidationError: "unsignedTx" sends ETH together with an ERC-20 increaseAllowance(address spender, uint256 addedValue)]`,
    );
  });

  it('when a declared function is called, then the reader given its signature decodes and shows it, and a reader without it sees only the selector', () => {
    const deposit = 'deposit(address to, uint256 amount)';
    const unsigned = callTx(VAULT, new Interface([`function ${deposit}`]).encodeFunctionData('deposit', [SPENDER, 5n]), 3n);
    const told = decodeTransaction(SEPOLIA, unsigned, null, { functions: [deposit] });
    expect({ asset: told.asset, amount: told.amount, to: told.to }).toEqual({ asset: 'ETH', amount: 3n, to: VAULT });
    expect(told.call).toEqual({
      contract: VAULT,
      selector: '0x47e7ef24',
      function: deposit,
      args: [{ name: 'to', type: 'address', value: SPENDER }, { name: 'amount', type: 'uint256', value: '5' }],
    });
    expect(told.details.find(([label]) => label === 'data')?.[1]).toBe(`call deposit(address to = ${SPENDER}, uint256 amount = 5) of ${VAULT}`);
    expect(decodeTransaction(SEPOLIA, unsigned, null).call).toEqual({ contract: VAULT, selector: '0x47e7ef24' });
  });
});
