/**
 * `custody approve ID (--key FILE | --ledger [--path P]) [--url URL --token T] [--reject] [--yes]` (SPEC
 * sections 5, 7 and 9, "Approving from the CLI"): fetch the request's approval message, decode its
 * `unsignedTx` here, from the message itself, recompute the digest and check that every field the
 * message states equals this decoding (common/approval-message.ts `transactionDisagreement`); show the
 * human what was decoded; ask `Approve? [y/N]` on a terminal (`--yes` answers it); only then sign the
 * message offline with the approver's key file or on a Ledger (EIP-191) and post the signature.
 *
 * The gateway is not trusted here: its other JSON fields are compared too, but the check that matters
 * is the message against the transaction it carries, which is what the device signs. Any disagreement,
 * or a transaction that cannot be fully decoded, refuses in one line naming the field, posts nothing
 * and exits non-zero. Governance proposals (`--proposal`) are checked against the change and binding
 * the message commits to, shown and confirmed the same way.
 */
import { knownFunction } from '../../common/chains/ethereum/contract-call.js';
import { createInterface } from 'node:readline';
import type { Command } from 'commander';
import {
  parseApprovalMessage,
  canonicalApprovalMessage,
  transactionDisagreement,
  type ApprovalMessage,
} from '../../common/approval-message.js';
import { decodeTransaction } from '../../common/chains/adapters.js';
import type { DecodedTransaction } from '../../common/chains/decoded-transaction.js';
import { loadConfig } from '../config.js';
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import { CustodyError, ValidationError } from '../../common/errors.js';
import { DEFAULT_APPROVER_PATH, keyFileSigner, ledgerSigner, type ApprovalSigner } from './approval-signer.js';
import { canonicalGovernanceMessage, parseGovernanceMessage, sha256Canonical, type GovernanceMessage, type PoolSummary } from '../../common/governance-message.js';
import { action, emit, reasonOf } from './output.js';
import { callGateway, gatewayTarget } from './gateway-call.js';

const DECIMALS: Readonly<Record<string, number>> = { ETH: 18, BTC: 8, SOL: 9 };

/** Base units as a decimal amount of the asset, for the human reading it (exact, no floats). */
export function formatUnits(amount: string, asset: string): string {
  const decimals = DECIMALS[asset];
  if (decimals === undefined) return `${amount} base units of ${asset}`;
  const padded = amount.padStart(decimals + 1, '0');
  const whole = padded.slice(0, -decimals);
  const frac = padded.slice(-decimals).replace(/0+$/, '');
  return `${whole}${frac ? '.' + frac : ''} ${asset}`;
}

/**
 * Text from the gateway made safe for a terminal: control and format characters (newlines, escape
 * sequences, bidirectional overrides) are written as `\u{…}`, so a forged field can neither draw a
 * fake line on the approver's screen nor split the one-line refusal.
 */
export function printable(text: string): string {
  return text.replace(/[\p{Cc}\p{Cf}\u2028\u2029]/gu, (c) => `\\u{${(c.codePointAt(0) as number).toString(16)}}`);
}

/**
 * The approver's client will not sign: the message and its transaction disagree, or the transaction
 * cannot be fully decoded, or the message is not a version 2 message for this request. `field` names
 * the message field at fault.
 */
export class ApprovalRefusedError extends CustodyError {
  override readonly name = 'ApprovalRefusedError';
  readonly field: string;
  constructor(code: string, field: string, why: string) {
    super('invalid', code, printable(`refusing to sign: ${why}; nothing was posted, report this request to your security officer`), { details: { field } });
    this.field = field;
  }
}

/** A withdrawal's approval message and this client's own decoding of the transaction it carries. */
export interface CheckedApproval {
  readonly message: ApprovalMessage;
  readonly decoded: DecodedTransaction;
}

/** The fields of the gateway's JSON that must repeat the message (a consistency check, not the one that matters). */
const GATEWAY_FIELDS = ['pool', 'chain', 'asset', 'amount', 'to', 'maxFee', 'digest'] as const;

/**
 * Checks that `text` is a version 2 approval message for request `id` whose fields are exactly what its
 * own `unsignedTx` does: decoded here with no knowledge of the pool key, the digest recomputed from the
 * transaction bytes. Then, second, that the gateway's JSON `view` repeats the message. Throws an
 * ApprovalRefusedError naming the first field at fault.
 */
export function checkWithdrawalApproval(id: string, text: unknown, view: Readonly<Record<string, unknown>>): CheckedApproval {
  if (typeof text !== 'string') throw new ApprovalRefusedError('no_approval_message', 'approvalMessage', 'the gateway answered without an "approvalMessage" string');
  let message: ApprovalMessage;
  try {
    message = parseApprovalMessage(text);
  } catch (error) {
    const why = reasonOf(error);
    const field = /"(\w+)"/.exec(why)?.[1] ?? /^approval message (kind|version) /.exec(why)?.[1] ?? 'approvalMessage';
    throw new ApprovalRefusedError('invalid_approval_message', field, why);
  }
  if (message.requestId !== id) {
    throw new ApprovalRefusedError('message_mismatch', 'requestId', `the approval message's "requestId" says ${message.requestId} but you are approving request ${id}`);
  }
  let decoded: DecodedTransaction;
  try {
    // The message may name a contract function beyond the ERC-20 ones; it decodes only the selector it hashes to.
    decoded = decodeTransaction(message.chain, message.unsignedTx, null, { functions: message.call?.function !== undefined ? [message.call.function] : [] });
  } catch (error) {
    throw new ApprovalRefusedError('undecodable_transaction', 'unsignedTx', `the approval message's "unsignedTx" cannot be fully decoded as a transaction of ${message.chain}: ${reasonOf(error)}`);
  }
  const disagreement = transactionDisagreement(message, decoded);
  if (disagreement !== null) {
    throw new ApprovalRefusedError('message_mismatch', /^"(\w+)"/.exec(disagreement)?.[1] ?? 'unsignedTx', `the approval message's ${disagreement}`);
  }
  for (const field of GATEWAY_FIELDS) {
    if (view[field] !== message[field]) {
      throw new ApprovalRefusedError('message_mismatch', field, `the approval message's "${field}" says ${message[field]} but the gateway's request has ${String(view[field]).slice(0, 200)}`);
    }
  }
  return { message, decoded };
}

type Row = readonly [string, string];

/** Sections of label and value lines under their headings, every value aligned in one column. */
function screenOf(sections: readonly (string | readonly Row[])[]): string[] {
  const rows = sections.filter((s): s is readonly Row[] => typeof s !== 'string').flat();
  const width = Math.max(8, ...rows.map(([label]) => label.length)) + 2;
  return sections.flatMap((s) => (typeof s === 'string' ? [printable(s)] : s.map(([label, value]) => printable(`  ${label.padEnd(width)}${value}`))));
}

/** An amount for the human: in whole units and in base units for the native coins, in base units of a token. */
function amountText(amount: bigint, asset: string): string {
  return asset in DECIMALS ? `${formatUnits(amount.toString(), asset)} (${amount} base units)` : formatUnits(amount.toString(), asset);
}

/**
 * What the approver reads before signing: what the transaction does, as decoded here from the
 * message's "unsignedTx"; then, apart, what only the gateway states (the time lock, a replacement,
 * an internal transfer): the transaction cannot confirm those, so they are shown as the gateway's word.
 */
export function withdrawalScreen({ message, decoded }: CheckedApproval): string[] {
  const call = decoded.call;
  const request: Row[] = [
    ['pool', message.pool],
    ['chain', message.chain],
    ['amount', amountText(decoded.amount, decoded.asset)],
    ['to', decoded.to],
    ['max fee', amountText(decoded.maxFee, nativeAsset(parseChainId(message.chain).family))],
  ];
  const stated: Row[] = [
    ['policy', `version ${message.policyVersion}`],
    ['time lock', message.timelock === 'none' ? 'not time-locked' : `signed ${message.timelock} after the quorum approves`],
  ];
  if (message.replaces !== undefined) stated.push(['replaces', `replaces request ${message.replaces}`]);
  if (message.destinationPool !== undefined) stated.push(['internal', `internal transfer to pool ${message.destinationPool}`]);
  // Argument names of a function the policy declared come from the message: the selector binds only
  // the function's name and argument types, so the names are the gateway's word too.
  const namesStated = call !== null && call.function !== undefined && knownFunction(call.selector) === undefined;
  return screenOf([
    `withdrawal ${message.requestId}`,
    request,
    'the transaction, decoded here from the message\'s "unsignedTx" (every field above agrees with it):',
    decoded.details,
    ...(call === null
      ? []
      : [
          'the contract call it makes:',
          [
            ['function', call.function ?? `unknown (selector ${call.selector}; its arguments cannot be named)`],
            ['contract', call.contract],
            ['selector', call.selector],
            ...(call.args ?? []).map((a): Row => [`${a.name} (${a.type})`, a.value]),
          ] as Row[],
          ...(namesStated ? ['  (the argument names are the message\'s own: only the function name and argument types are bound to the selector)'] : []),
        ]),
    'stated by the gateway, not in the transaction (check them against your records):',
    stated,
  ]);
}

/** A withdrawal or proposal ready to sign: what to show, the exact text to sign, where to post. */
interface Signable {
  readonly screen: string[];
  readonly text: string;
  readonly approvalsUrl: string;
}

interface Target {
  readonly base: string;
  readonly token: string;
  readonly id: string;
  readonly decision: 'approve' | 'reject';
}

async function withdrawalToSign(t: Target): Promise<Signable> {
  const view = await callGateway(`${t.base}/v1/withdrawals/${t.id}`, t.token, { method: 'GET' });
  const checked = checkWithdrawalApproval(t.id, view.approvalMessage, view);
  return {
    screen: withdrawalScreen(checked),
    text: canonicalApprovalMessage({ ...checked.message, decision: t.decision }),
    approvalsUrl: `${t.base}/v1/withdrawals/${t.id}/approvals`,
  };
}

async function proposalToSign(t: Target): Promise<Signable> {
  const p = await callGateway(`${t.base}/v1/proposals/${t.id}`, t.token, { method: 'GET' });
  if (typeof p.approvalMessage !== 'string') throw new CustodyError('invalid', 'no_approval_message', 'the gateway answered without an approvalMessage');
  const message: GovernanceMessage = parseGovernanceMessage(p.approvalMessage);
  // What is shown must be what is signed: the message commits to the change by hash, and names the state before and after.
  if (message.scope !== 'pool' || message.proposalId !== t.id || message.pool !== p.pool) {
    throw new CustodyError('invalid', 'message_mismatch', 'the governance message names another proposal or pool; refusing to sign');
  }
  if (message.change !== sha256Canonical(p.change)) throw new CustodyError('invalid', 'message_mismatch', 'the governance message does not commit to the change shown; refusing to sign');
  return {
    screen: screenOf([
      `proposal ${message.proposalId}`,
      [
        ['pool', `${message.pool} (device ${message.device}, governance sequence ${message.sequence})`],
        ['action', `${message.action} (proposed by ${String(p.proposedBy)})`],
        ...summaryDiff(message.before, message.after),
      ],
    ]),
    text: canonicalGovernanceMessage({ ...message, decision: t.decision }),
    approvalsUrl: `${t.base}/v1/proposals/${t.id}/approvals`,
  };
}

/** What changes between two pool summaries, as label and value lines (keys as fingerprints). */
function summaryDiff(before: PoolSummary, after: PoolSummary): [string, string][] {
  const lines: [string, string][] = [];
  const short = (m: { id: string; fingerprint: string }) => `${m.id} (key ${m.fingerprint.slice(0, 16)}…)`;
  const was = new Map(before.approvers.map((a) => [a.id, a.fingerprint]));
  const now = new Map(after.approvers.map((a) => [a.id, a.fingerprint]));
  for (const a of after.approvers) if (was.get(a.id) !== a.fingerprint) lines.push(['+ approver', short(a)]);
  for (const a of before.approvers) if (now.get(a.id) !== a.fingerprint) lines.push(['- approver', short(a)]);
  if (before.threshold !== after.threshold) lines.push(['base threshold', `${before.threshold} -> ${after.threshold}`]);
  if (before.policy !== after.policy) lines.push(['policy', `version ${before.policyVersion} (${before.policy.slice(0, 16)}…) -> version ${after.policyVersion} (${after.policy.slice(0, 16)}…)`]);
  if (lines.length === 0) lines.push(['changes', 'nothing the device holds (the pool stays as it is)']);
  return lines;
}

/**
 * Asks a yes/no question on `output` and reads one line from `input`: true only for `y` or `yes`
 * (any case); anything else, end of input or Ctrl-C is a no.
 */
export function askConfirmation(question: string, input: NodeJS.ReadableStream, output: NodeJS.WritableStream): Promise<boolean> {
  const rl = createInterface({ input, output });
  return new Promise((resolve) => {
    let answered = false;
    const answer = (yes: boolean) => {
      if (answered) return;
      answered = true;
      rl.close();
      resolve(yes);
    };
    rl.on('SIGINT', () => {
      output.write('\n');
      answer(false);
    });
    rl.on('close', () => answer(false));
    rl.question(question, (line) => answer(/^(y|yes)$/i.test(line.trim())));
  });
}

interface ApproveOptions {
  key?: string;
  passphraseFile?: string;
  ledger?: boolean;
  path?: string;
  url?: string;
  token?: string;
  proposal?: boolean;
  reject?: boolean;
  yes?: boolean;
  json?: boolean;
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description('decode the transaction in a withdrawal\'s approval message yourself, check the message agrees with it, show it, ask, sign offline with your approver key (or on your Ledger) and post the approval (or, with --proposal, approve a governance proposal)')
    .argument('<id>', 'withdrawal id (or proposal id with --proposal)')
    .option('--key <file>', 'your approver key file (custody approver keygen)')
    .option('--passphrase-file <file>', 'read the key file passphrase from FILE (default $CUSTODY_KEY_PASSPHRASE, else asked)')
    .option('--ledger', 'sign on a Ledger (Ethereum app, EIP-191 personal message) reached through LEDGER_URL')
    .option('--path <path>', `BIP32 path of your key on the Ledger (default ${DEFAULT_APPROVER_PATH})`)
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'your approver (or admin) token (default $CUSTODY_TOKEN)')
    .option('--proposal', 'the id is a governance proposal; sign as an admin')
    .option('--reject', 'reject instead of approve')
    .option('--yes', 'answer the "Approve? [y/N]" question with yes (for scripted approvers; the checks still run)')
    .option('--json', 'print JSON (and do not ask)')
    .action(
      action(async (id: string, opts: ApproveOptions) => {
        const config = loadConfig();
        const { base, token } = gatewayTarget(opts);
        if (!/^[0-9a-f-]{36}$/.test(id)) throw new ValidationError('invalid_id', `"${id}" is not a ${opts.proposal ? 'proposal' : 'withdrawal'} id`);
        if ((opts.key === undefined) === (opts.ledger !== true)) throw new ValidationError('missing_key', 'give either --key FILE or --ledger');
        const target: Target = { base, token, id, decision: opts.reject ? 'reject' : 'approve' };
        const human = opts.json !== true;
        const say = (lines: string[]) => {
          if (human) for (const line of lines) process.stdout.write(line + '\n');
        };

        // Check and show before the key is unlocked: a refused message never asks for the passphrase.
        const signable = opts.proposal ? await proposalToSign(target) : await withdrawalToSign(target);
        say(signable.screen);
        // SPEC asks "on a terminal": a scripted run (no terminal) signs what passed the checks.
        if (human && process.stdin.isTTY === true && opts.yes !== true) {
          const question = target.decision === 'approve' ? 'Approve? [y/N] ' : 'Reject? [y/N] ';
          if (!(await askConfirmation(question, process.stdin, process.stderr))) {
            throw new ValidationError('not_confirmed', `not ${target.decision === 'approve' ? 'approved' : 'rejected'} at the prompt; nothing was posted (run again to decide)`);
          }
        }

        const key: ApprovalSigner = opts.key !== undefined ? await keyFileSigner(opts.key, opts.passphraseFile) : await ledgerSigner(config, opts.path ?? DEFAULT_APPROVER_PATH);
        let after: Record<string, unknown>;
        try {
          say([`signing "${target.decision}" with key ${key.publicKey.slice(0, 16)}…`]);
          const signature = await key.sign(signable.text);
          after = await callGateway(signable.approvalsUrl, token, { method: 'POST', body: { signature, decision: target.decision } });
        } finally {
          await key.close();
        }
        const done = target.decision === 'approve' ? 'approved' : 'rejected';
        emit(opts, { id, decision: target.decision, state: after.state, txHash: after.txHash ?? null }, () => [
          printable(`${done}; the ${opts.proposal ? 'proposal' : 'request'} is now "${String(after.state)}"${after.txHash ? ` (tx ${String(after.txHash)})` : ''}`),
        ]);
      }),
    );
}
