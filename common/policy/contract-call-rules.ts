/**
 * The `contractCalls` entries of a policy document (docs/policy.md, "Contract calls"), parsed into
 * ContractCallRules. An entry names a contract and a selector; the selector must be an ERC-20
 * function every reader decodes (approve, increaseAllowance, transferFrom) or the entry must declare
 * its `"function"` with argument names, whose selector (keccak256 of the canonical signature, Solidity
 * ABI specification) must be the entry's. Argument constraints must name arguments of that function
 * and fit their types. Errors name the entry at fault.
 */
import { parseChainId } from '../chain-id.js';
import { z } from 'zod';
import { ValidationError } from '../errors.js';
import {
  ERC20_FUNCTIONS,
  canonicalArgumentValue,
  integerRange,
  knownFunction,
  parseFunctionSignature,
  type FunctionSignature,
} from '../chains/ethereum/contract-call.js';
import type { CallArgumentRule, ContractCallRule, Policy } from './policy.js';

const signedDecimal = z.string().regex(/^-?(0|[1-9][0-9]*)$/, 'expected a decimal integer string');

export const contractCallEntrySchema = z.strictObject({
  contract: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected a 0x-prefixed 20-byte contract address'),
  selector: z.string().regex(/^0x[0-9a-fA-F]{8}$/, 'expected a 4-byte function selector such as "0x095ea7b3"'),
  label: z.string().max(200).optional(),
  chain: z.string().max(80).optional(),
  function: z.string().min(1).max(1000).optional(),
  unlimited: z.boolean().optional(),
  args: z
    .record(
      z.string().regex(/^[A-Za-z_$][A-Za-z0-9_$]*$/, 'expected an argument name of the function'),
      z.strictObject({
        oneOf: z.array(z.string().max(200)).min(1, 'expected at least one value').max(1000).optional(),
        min: signedDecimal.optional(),
        max: signedDecimal.optional(),
      }),
    )
    .optional(),
});

export type ContractCallEntry = z.infer<typeof contractCallEntrySchema>;

/** Functions whose allowance a policy may let be unlimited. */
const ALLOWANCES: ReadonlySet<string> = new Set([ERC20_FUNCTIONS.approve.selector, ERC20_FUNCTIONS.increaseAllowance.selector]);

/** Errors of the shared decoder's helpers, re-coded as a policy error (their message names the field). */
function asPolicyError<T>(read: () => T): T {
  try {
    return read();
  } catch (error) {
    if (error instanceof ValidationError) throw new ValidationError('invalid_policy', error.message);
    throw error;
  }
}

function signatureOf(c: ContractCallEntry, selector: string, at: string): FunctionSignature {
  if (selector === ERC20_FUNCTIONS.transfer.selector) {
    throw new ValidationError('invalid_policy', `${at}: ${selector} is ERC-20 transfer, a token withdrawal that "assets" governs (asset erc20:<contract>), not a contract call`);
  }
  const known = knownFunction(selector);
  const declared = c.function === undefined ? undefined : asPolicyError(() => parseFunctionSignature(c.function, `${at}.function`));
  if (known) {
    if (declared && declared.text !== known.text) {
      throw new ValidationError('invalid_policy', `${at}.function: ${selector} is ERC-20 ${known.name}, whose function is ${known.text}; leave "function" out or write exactly that`);
    }
    return known;
  }
  if (!declared) {
    throw new ValidationError(
      'invalid_policy',
      `${at}: selector ${selector} is not an ERC-20 function every reader knows (approve, increaseAllowance, transferFrom); declare its "function" with argument names, e.g. "deposit(address to, uint256 amount)"`,
    );
  }
  if (declared.selector !== selector) {
    throw new ValidationError('invalid_policy', `${at}.function: ${declared.text} has selector ${declared.selector} (keccak256 of "${declared.canonical}"), not ${selector}`);
  }
  return declared;
}

function argumentRule(signature: FunctionSignature, name: string, c: NonNullable<ContractCallEntry['args']>[string], at: string): CallArgumentRule {
  const input = signature.inputs.find((a) => a.name === name);
  if (!input) {
    const names = signature.inputs.map((a) => a.name).join(', ') || 'none';
    throw new ValidationError('invalid_policy', `${at}: ${signature.text} has no argument "${name}" (its arguments: ${names})`);
  }
  if (c.oneOf === undefined && c.min === undefined && c.max === undefined) {
    throw new ValidationError('invalid_policy', `${at}: expected "oneOf", "min" or "max"`);
  }
  const rule: { -readonly [K in keyof CallArgumentRule]: CallArgumentRule[K] } = {};
  if (c.oneOf !== undefined) rule.oneOf = c.oneOf.map((v, j) => asPolicyError(() => canonicalArgumentValue(input.type, v, `${at}.oneOf[${j}]`)));
  if (c.min !== undefined || c.max !== undefined) {
    if (integerRange(input.type) === null) {
      throw new ValidationError('invalid_policy', `${at}: "min" and "max" apply to integer arguments; "${name}" is ${input.type}`);
    }
    if (c.min !== undefined) rule.min = BigInt(asPolicyError(() => canonicalArgumentValue(input.type, c.min, `${at}.min`)));
    if (c.max !== undefined) rule.max = BigInt(asPolicyError(() => canonicalArgumentValue(input.type, c.max, `${at}.max`)));
    if (rule.min !== undefined && rule.max !== undefined && rule.min > rule.max) {
      throw new ValidationError('invalid_policy', `${at}: "min" ${rule.min} is above "max" ${rule.max}`);
    }
  }
  return rule;
}

/** Parses the `contractCalls` list; `path` is its JSON path, e.g. `policy.contractCalls`. */
export function parseContractCallRules(entries: readonly ContractCallEntry[], path: string): ContractCallRule[] {
  const seen = new Set<string>();
  const declared = new Map<string, { readonly text: string; readonly at: string }>();
  return entries.map((c, i): ContractCallRule => {
    const at = `${path}[${i}]`;
    const contract = c.contract.toLowerCase();
    const selector = c.selector.toLowerCase();
    const key = `${contract}:${selector}`;
    if (seen.has(key)) throw new ValidationError('invalid_policy', `${at}: ${c.selector} on ${c.contract} is listed twice`);
    seen.add(key);
    const signature = signatureOf(c, selector, at);
    const other = declared.get(selector);
    if (other && other.text !== signature.text) {
      throw new ValidationError('invalid_policy', `${at}.function: ${signature.text} and ${other.at}'s ${other.text} share selector ${selector}; a selector is decoded by one signature`);
    }
    declared.set(selector, { text: signature.text, at });
    if (c.unlimited === true && !ALLOWANCES.has(selector)) {
      throw new ValidationError('invalid_policy', `${at}.unlimited: only an ERC-20 approve or increaseAllowance sets an allowance that can be unlimited`);
    }
    const args: Record<string, CallArgumentRule> = {};
    for (const [name, constraint] of Object.entries(c.args ?? {})) args[name] = argumentRule(signature, name, constraint, `${at}.args.${name}`);
    return {
      contract,
      selector,
      ...(c.label !== undefined ? { label: c.label } : {}),
      ...(c.chain !== undefined ? { chain: parseChainId(c.chain, `${at}.chain`).id } : {}),
      function: signature.text,
      unlimited: c.unlimited === true,
      args,
    };
  });
}

/** The functions a policy declares besides the ERC-20 ones: what the gateway gives the decoder. */
export function declaredFunctions(policy: Policy): readonly string[] {
  const texts = new Set<string>();
  for (const rule of policy.contractCalls ?? []) if (!knownFunction(rule.selector)) texts.add(rule.function);
  return [...texts];
}
