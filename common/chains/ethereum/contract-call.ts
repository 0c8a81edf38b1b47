/**
 * Contract calls decoded by ABI (Solidity ABI specification, "Function Selector and Argument
 * Encoding"), for the gateway, the approver's client and the device alike (SPEC rule 3, section 5).
 *
 * Every reader knows the ERC-20 functions (EIP-20 `transfer`, `approve`, `transferFrom`, and
 * OpenZeppelin's `increaseAllowance`); any other function is decoded only from a human-readable
 * signature with argument names that the reader is given: the gateway the pool policy's
 * `contractCalls[].function`, the approver's client the message's own `call.function`. A signature
 * applies only to the selector it hashes to (the first 4 bytes of keccak256 of its canonical form).
 *
 * Decoding is strict: the arguments must re-encode to exactly the call data (canonical ABI: clean
 * padding, standard offsets, no trailing bytes), else the call is refused. Argument types are the
 * elementary ones a human can read and a policy can constrain: address, bool, uint<M>, int<M>,
 * bytes<M> and bytes. Parsing and encoding are micro-eth-signer's (`parseAbiItem`, `Decoder`,
 * `createContract`); nothing here encodes ABI by hand.
 */
import { addr } from 'micro-eth-signer';
import { Decoder, createContract, parseAbiItem } from 'micro-eth-signer/abi.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { bytesToHex, utf8ToBytes } from '@noble/hashes/utils.js';
import { ValidationError } from '../../errors.js';
import type { DecodedArgument, DecodedCall } from '../decoded-transaction.js';
import { assertEthAddress } from './address.js';

/** One input of a function: its name and canonical ABI type. */
export interface FunctionInput {
  readonly name: string;
  readonly type: string;
}

/** A function signature, parsed and normalized. */
export interface FunctionSignature {
  /** With argument names and canonical types, `, ` between arguments: `approve(address spender, uint256 value)`. */
  readonly text: string;
  /** The canonical form the selector hashes: `approve(address,uint256)`. */
  readonly canonical: string;
  /** `0x` and 8 lowercase hex digits: the first 4 bytes of keccak256(canonical). */
  readonly selector: string;
  readonly name: string;
  readonly inputs: readonly FunctionInput[];
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;
const SIGNATURE = /^([A-Za-z_$][A-Za-z0-9_$]*)\(([^()]*)\)$/;
const BITS = '(8|16|24|32|40|48|56|64|72|80|88|96|104|112|120|128|136|144|152|160|168|176|184|192|200|208|216|224|232|240|248|256)';
/** The elementary types accepted, as written (`uint` and `int` are aliases of the 256-bit types). */
const ELEMENTARY = new RegExp(`^(address|bool|bytes|bytes([1-9]|[12][0-9]|3[0-2])|u?int|u?int${BITS})$`);
const MAX_SIGNATURE_LENGTH = 1000;

function refuse(field: string, why: string): never {
  throw new ValidationError('invalid_function', `"${field}" ${why}`);
}

/**
 * Parses a human-readable signature such as `deposit(address to, uint256 amount)`: a name, then each
 * argument as its type and name; no tuples, arrays, strings or modifiers. Errors name `field`.
 */
export function parseFunctionSignature(text: unknown, field: string): FunctionSignature {
  if (typeof text !== 'string') refuse(field, `expected a function signature string, got ${typeof text}`);
  if (text.length > MAX_SIGNATURE_LENGTH) refuse(field, `is longer than ${MAX_SIGNATURE_LENGTH} characters`);
  const match = SIGNATURE.exec(text.trim());
  if (!match) refuse(field, 'expected a function signature with named arguments such as "deposit(address to, uint256 amount)" (no tuples or arrays)');
  const [, name, list] = match as unknown as [string, string, string];
  const params = list.trim() === '' ? [] : list.split(',').map((p) => p.trim());
  const written = params.map((p, i) => {
    const parts = p.split(/\s+/);
    if (parts.length !== 2) refuse(field, `argument ${i + 1} ("${p.slice(0, 60)}") must be a type and a name, such as "address to"`);
    const [type, argName] = parts as [string, string];
    if (!ELEMENTARY.test(type)) {
      refuse(field, `argument "${argName}" has type "${type.slice(0, 40)}"; only address, bool, uint<M>, int<M>, bytes<M> and bytes are accepted`);
    }
    if (!IDENTIFIER.test(argName)) refuse(field, `argument ${i + 1} has no valid name ("${argName.slice(0, 40)}")`);
    return argName;
  });
  const repeated = written.find((n, i) => written.indexOf(n) !== i);
  if (repeated !== undefined) refuse(field, `names argument "${repeated}" twice`);
  let item: ReturnType<typeof parseAbiItem>;
  try {
    item = parseAbiItem(`function ${name}(${params.join(', ')})`);
  } catch (error) {
    refuse(field, `is not a valid signature: ${error instanceof Error ? error.message : String(error)}`);
  }
  const inputs = (item.inputs ?? []).map((input, i): FunctionInput => ({ name: written[i] as string, type: input.type }));
  const canonical = `${name}(${inputs.map((a) => a.type).join(',')})`;
  return {
    text: `${name}(${inputs.map((a) => `${a.type} ${a.name}`).join(', ')})`,
    canonical,
    selector: '0x' + bytesToHex(keccak_256(utf8ToBytes(canonical)).subarray(0, 4)),
    name,
    inputs,
  };
}

/** The ERC-20 functions every reader decodes without being told (OpenZeppelin's argument names). */
export const ERC20_FUNCTIONS = {
  transfer: parseFunctionSignature('transfer(address to, uint256 value)', 'transfer'),
  approve: parseFunctionSignature('approve(address spender, uint256 value)', 'approve'),
  increaseAllowance: parseFunctionSignature('increaseAllowance(address spender, uint256 addedValue)', 'increaseAllowance'),
  transferFrom: parseFunctionSignature('transferFrom(address from, address to, uint256 value)', 'transferFrom'),
} as const;

const KNOWN = new Map<string, FunctionSignature>(Object.values(ERC20_FUNCTIONS).map((f) => [f.selector, f]));

/** The ERC-20 function a selector names, if it is one of those every reader knows. */
export function knownFunction(selector: string): FunctionSignature | undefined {
  return KNOWN.get(selector.toLowerCase());
}

/**
 * The token effect of a known ERC-20 call: `recipient` may take (approve, increaseAllowance) or gets
 * (transferFrom) `amount` base units of the called token. Null for any other call.
 */
export function erc20Effect(call: DecodedCall): { readonly recipient: string; readonly amount: bigint; readonly kind: 'allowance' | 'transfer' } | null {
  const arg = (name: string) => call.args?.find((a) => a.name === name)?.value as string;
  switch (call.selector) {
    case ERC20_FUNCTIONS.approve.selector:
      return { recipient: arg('spender'), amount: BigInt(arg('value')), kind: 'allowance' };
    case ERC20_FUNCTIONS.increaseAllowance.selector:
      return { recipient: arg('spender'), amount: BigInt(arg('addedValue')), kind: 'allowance' };
    case ERC20_FUNCTIONS.transferFrom.selector:
      return { recipient: arg('to'), amount: BigInt(arg('value')), kind: 'transfer' };
    default:
      return null;
  }
}

/** One ABI coder per signature, reused: a registry of micro-eth-signer keyed by a fixed address (the selector is what binds it). */
interface Coder {
  readonly signature: FunctionSignature;
  decode(data: Uint8Array): unknown;
  encode(value: unknown): Uint8Array;
}

const REGISTRY_KEY = '0x0000000000000000000000000000000000000001';
const CODERS_KEPT = 1024;
const coders = new Map<string, Coder>();

function coderOf(signature: FunctionSignature): Coder {
  let coder = coders.get(signature.text);
  if (coder) return coder;
  const item = parseAbiItem(`function ${signature.text}`);
  const registry = new Decoder();
  registry.add(REGISTRY_KEY, [item]);
  const method = createContract([item])[signature.name] as { encodeInput: (v?: unknown) => Uint8Array };
  coder = {
    signature,
    decode: (data) => (registry.decode(REGISTRY_KEY, data) as { value: unknown } | undefined)?.value,
    encode: (value) => method.encodeInput(value),
  };
  if (coders.size >= CODERS_KEPT) coders.delete(coders.keys().next().value as string);
  coders.set(signature.text, coder);
  return coder;
}

const parsedLists = new Map<string, ReadonlyMap<string, FunctionSignature>>();

/** The declared signatures by selector; two different signatures for one selector are refused. */
function declaredBySelector(functions: readonly string[]): ReadonlyMap<string, FunctionSignature> {
  const key = functions.join('\n');
  const cached = parsedLists.get(key);
  if (cached) return cached;
  const bySelector = new Map<string, FunctionSignature>();
  functions.forEach((text, i) => {
    const signature = parseFunctionSignature(text, `functions[${i}]`);
    const other = bySelector.get(signature.selector);
    if (other && other.text !== signature.text) {
      throw new ValidationError('ambiguous_function', `"functions[${i}]" ${signature.text} and ${other.text} share selector ${signature.selector}; only one may be declared`);
    }
    bySelector.set(signature.selector, signature);
  });
  if (parsedLists.size >= CODERS_KEPT) parsedLists.delete(parsedLists.keys().next().value as string);
  parsedLists.set(key, bySelector);
  return bySelector;
}

/** The text form of a decoded value (DecodedArgument): EIP-55, decimal, true/false, 0x-hex. */
function argumentText(type: string, value: unknown): string {
  if (type === 'address') return addr.addChecksum(value as string);
  if (type === 'bool') return value ? 'true' : 'false';
  if (type.startsWith('bytes')) return '0x' + bytesToHex(value as Uint8Array);
  return (value as bigint).toString(10);
}

/** The function a reader decodes a selector with: a known ERC-20 one first, else a declared one. */
export function functionFor(selector: string, functions: readonly string[] = []): FunctionSignature | undefined {
  return knownFunction(selector) ?? (functions.length === 0 ? undefined : declaredBySelector(functions).get(selector));
}

/**
 * Decodes the call data (hex, no 0x, at least a selector) of a call to `contract` (EIP-55): by the
 * known ERC-20 functions and the declared `functions`. A selector neither names yields only contract
 * and selector; call data that does not decode by its function, or does not re-encode to the same
 * bytes, is refused.
 */
export function decodeContractCall(contract: string, data: string, functions: readonly string[] = []): DecodedCall {
  const hex = data.toLowerCase();
  const selector = '0x' + hex.slice(0, 8);
  const signature = functionFor(selector, functions);
  if (!signature) return { contract, selector };
  const undecodable = (why: string) => new ValidationError('undecodable_call', `"unsignedTx" call data of ${signature.text} on ${contract} ${why}`);
  if (!/^[0-9a-f]*$/.test(hex) || hex.length % 2 !== 0) throw undecodable('is not hex bytes');
  const bytes = Uint8Array.from(Buffer.from(hex, 'hex'));
  const coder = coderOf(signature);
  let value: unknown;
  try {
    value = coder.decode(bytes);
  } catch (error) {
    throw undecodable(`cannot be decoded: ${error instanceof Error ? error.message : String(error)}`);
  }
  const values: unknown[] = signature.inputs.length === 1 ? [value] : signature.inputs.map((a) => (value as Record<string, unknown>)[a.name]);
  if (bytesToHex(coder.encode(signature.inputs.length === 0 ? undefined : value)) !== hex) {
    throw undecodable('is not in canonical ABI encoding (it does not re-encode to the same bytes)');
  }
  const args = signature.inputs.map((a, i): DecodedArgument => ({ name: a.name, type: a.type, value: argumentText(a.type, values[i]) }));
  return { contract, selector, function: signature.text, args };
}

const SIGNED_DECIMAL = /^-?(0|[1-9][0-9]*)$/;

/** The bounds of an integer type (`uint8`…`uint256`, `int8`…`int256`), or null for another type. */
export function integerRange(type: string): { readonly min: bigint; readonly max: bigint } | null {
  const m = /^(u?)int([0-9]+)$/.exec(type);
  if (!m) return null;
  const bits = BigInt(m[2] as string);
  return m[1] === 'u' ? { min: 0n, max: (1n << bits) - 1n } : { min: -(1n << (bits - 1n)), max: (1n << (bits - 1n)) - 1n };
}

/**
 * A value written for an argument of `type` (in a policy constraint), in the text form the decoder
 * gives (EIP-55 addresses, decimal integers, `true`/`false`, lowercase 0x-hex), or refused naming `field`.
 */
export function canonicalArgumentValue(type: string, value: unknown, field: string): string {
  if (typeof value !== 'string') throw new ValidationError('invalid_argument_value', `"${field}" expected a string, got ${typeof value}`);
  if (type === 'address') return assertEthAddress(value, field);
  if (type === 'bool') {
    if (value !== 'true' && value !== 'false') throw new ValidationError('invalid_argument_value', `"${field}" expected "true" or "false" for a bool`);
    return value;
  }
  const range = integerRange(type);
  if (range) {
    if (value.length > 80 || !SIGNED_DECIMAL.test(value) || value === '-0') {
      throw new ValidationError('invalid_argument_value', `"${field}" expected a decimal integer for a ${type}`);
    }
    const n = BigInt(value);
    if (n < range.min || n > range.max) throw new ValidationError('invalid_argument_value', `"${field}" is outside the range of a ${type} (${range.min} to ${range.max})`);
    return n.toString(10);
  }
  const size = type === 'bytes' ? null : Number(type.slice('bytes'.length));
  const hex = /^0x([0-9a-fA-F]{2})*$/.test(value) ? value.slice(2).toLowerCase() : null;
  if (hex === null || (size !== null && hex.length !== size * 2)) {
    throw new ValidationError('invalid_argument_value', `"${field}" expected 0x-hex of ${size === null ? 'whole bytes' : `${size} bytes`} for a ${type}`);
  }
  return '0x' + hex;
}
