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
 * and exits non-zero. Governance proposals (`--proposal`) are checked against the change and the
 * state the message commits to: the pool's policy document and approvers before the change (the
 * gateway's `before`) must hash to the message's `before`, the new policy to its `after`, the keys
 * shown to its fingerprints; then what changes is shown against that state (src/policy/policy-diff.ts)
 * and confirmed the same way.
 *
 * `custody approve --governance REQUEST.json (--key FILE | --ledger) [--yes]` approves what the
 * simulator governs itself (a backup export, a custodians change) offline, with no gateway: the request
 * file is checked (src/cli/governance-request.ts), shown (custodians by id and fingerprint, threshold,
 * device, sequence), confirmed, and the admin's signature over its message appended to the file.
 */
import { knownFunction } from '../../common/chains/ethereum/contract-call.js';
import { createInterface } from 'node:readline';
import { canonicalize } from 'json-canonicalize';
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
import { canonicalGovernanceMessage, memberSummaries, parseGovernanceMessage, sameSummary, sha256Canonical, type MemberSummary, type PoolGovernanceMessage, type PoolSummary } from '../../common/governance-message.js';
import { baseThreshold, parsePolicyDocument, policyHash } from '../../common/policy/document.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import { policyDiff } from '../policy/policy-diff.js';
import { action, emit, reasonOf } from './output.js';
import { callGateway, gatewayTarget } from './gateway-call.js';
import { adminOf, readRequest, requestScreen, withApproval, writeRequest } from './governance-request.js';

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

/** A proposal whose message was checked against the change and the state before it, with what to show. */
export interface CheckedProposal {
  readonly message: PoolGovernanceMessage;
  /** The pool's policy before the change, as the message's `before.policy` hash names it. */
  readonly beforePolicy: PolicyDocument;
  /** The new policy, for a policy change. */
  readonly afterPolicy: PolicyDocument | null;
  readonly proposedBy: string;
}

/** A document that parses as a policy, or null. */
function policyOrNull(value: unknown): { doc: PolicyDocument; threshold: number } | null {
  try {
    return { doc: value as PolicyDocument, threshold: baseThreshold(parsePolicyDocument(value, 'policy')) };
  } catch {
    return null;
  }
}

function sameMembers(a: readonly MemberSummary[], b: readonly MemberSummary[]): boolean {
  return canonicalize(a) === canonicalize(b);
}

/**
 * Checks the governance message of proposal `id` against the gateway's JSON `view` before anything is
 * shown: it names this proposal and pool, commits to the change shown (its hash), and its `before` and
 * `after` are what the gateway's state before (`view.before`: the policy document and the approvers'
 * keys) and the change make of it: hashes, fingerprints, thresholds and versions. Throws an
 * ApprovalRefusedError naming the field at fault.
 */
export function checkProposal(id: string, view: Readonly<Record<string, unknown>>): CheckedProposal {
  const refuse = (field: string, why: string): never => {
    throw new ApprovalRefusedError('message_mismatch', field, why);
  };
  if (typeof view.approvalMessage !== 'string') refuse('approvalMessage', 'the gateway answered without an "approvalMessage" string');
  let parsed;
  try {
    parsed = parseGovernanceMessage(view.approvalMessage as string);
  } catch (error) {
    throw new ApprovalRefusedError('invalid_approval_message', 'approvalMessage', reasonOf(error));
  }
  if (parsed.scope !== 'pool') return refuse('scope', 'the governance message names no pool');
  const message: PoolGovernanceMessage = parsed;
  if (message.proposalId !== id) refuse('proposalId', `the governance message names proposal ${message.proposalId}, not ${id}`);
  if (message.pool !== view.pool) refuse('pool', `the governance message names pool ${message.pool}, the gateway's proposal ${String(view.pool).slice(0, 80)}`);
  if (message.action !== view.action) refuse('action', `the governance message approves "${message.action}", the gateway's proposal is "${String(view.action).slice(0, 40)}"`);
  if (message.change !== sha256Canonical(view.change)) refuse('change', 'the governance message does not commit to the change shown');

  const before = view.before as { policyVersion?: unknown; policy?: unknown; approvers?: unknown } | null | undefined;
  if (typeof before !== 'object' || before === null || !Array.isArray(before.approvers)) return refuse('before', 'the gateway gave no "before" (the pool\'s policy and approvers before the change) to check the message against');
  if (before.policyVersion !== message.before.policyVersion) refuse('before.policyVersion', `the gateway's "before" is policy version ${String(before.policyVersion)}, the message names version ${message.before.policyVersion}`);
  const old = policyOrNull(before.policy);
  if (old === null || policyHash(old.doc) !== message.before.policy) refuse('before.policy', `the policy document the gateway gives as version ${message.before.policyVersion} is not the one the message names (its hash differs)`);
  const oldPolicy = old as { doc: PolicyDocument; threshold: number };
  if (oldPolicy.threshold !== message.before.threshold) refuse('before.threshold', `the message's base threshold before is ${message.before.threshold}, the policy's smallest tier ${oldPolicy.threshold}`);
  const approvers = before.approvers as { id: string; publicKey: string }[];
  if (!approvers.every((a) => typeof a?.id === 'string' && typeof a.publicKey === 'string' && /^[0-9a-f]+$/i.test(a.publicKey))) refuse('before.approvers', 'the gateway\'s approvers before are not {id, publicKey}');
  if (!sameMembers(memberSummaries(approvers), message.before.approvers)) refuse('before.approvers', 'the approvers\' keys the gateway gives are not those whose fingerprints the message names');

  // What the change makes of that state must be the message's `after`.
  let after: PoolSummary;
  let afterPolicy: PolicyDocument | null = null;
  const change = view.change as Record<string, unknown>;
  if (message.action === 'policy') {
    const next = policyOrNull(change.policy);
    if (next === null) return refuse('change.policy', 'the proposed policy is not a valid policy document');
    afterPolicy = next.doc;
    after = { approvers: message.before.approvers, threshold: next.threshold, policy: policyHash(next.doc), policyVersion: message.before.policyVersion + 1 };
  } else if (message.action === 'approvers') {
    const add = (Array.isArray(change.add) ? change.add : []) as { id: string; publicKey: string }[];
    const remove = (Array.isArray(change.remove) ? change.remove : []) as string[];
    const members = [...approvers.filter((a) => !remove.includes(a.id)), ...add];
    after = { ...message.before, approvers: memberSummaries(members) };
  } else {
    after = message.before;
  }
  if (!sameSummary(after, message.after)) {
    const field = after.policy !== message.after.policy ? 'after.policy' : !sameMembers(after.approvers, message.after.approvers) ? 'after.approvers' : 'after';
    refuse(field, `the message's state after the change is not what the change makes of the state before (${field} differs)`);
  }
  return { message, beforePolicy: oldPolicy.doc, afterPolicy, proposedBy: String(view.proposedBy) };
}

/** An amount in a policy, for the admin: whole units and base units for the native coins. */
function policyAmount(amount: string, asset: string): string {
  return asset in DECIMALS ? `${formatUnits(amount, asset)} (${amount} base units)` : formatUnits(amount, asset);
}

/** What the admin reads: the pool, the action, what changes in the device's terms and, for a policy, each field that changes. */
export function proposalScreen(p: CheckedProposal): string[] {
  const { message } = p;
  const lines = screenOf([
    `proposal ${message.proposalId}`,
    [
      ['pool', `${message.pool} (device ${message.device}, governance sequence ${message.sequence})`],
      ['action', `${message.action} (proposed by ${p.proposedBy})`],
      ...summaryDiff(message.before, message.after),
    ],
  ]);
  if (p.afterPolicy === null) return lines;
  const diff = policyDiff(p.beforePolicy, p.afterPolicy, policyAmount).map((l): Row => [`${l.change} ${l.what}`, l.detail]);
  return [
    ...lines,
    ...screenOf([
      `what the new policy changes against version ${message.before.policyVersion} (both checked against the message's hashes):`,
      diff.length > 0 ? diff : [['changes', 'nothing a policy rule reads']],
    ]),
  ];
}

async function proposalToSign(t: Target): Promise<Signable> {
  const view = await callGateway(`${t.base}/v1/proposals/${t.id}`, t.token, { method: 'GET' });
  const checked = checkProposal(t.id, view);
  return {
    screen: proposalScreen(checked),
    text: canonicalGovernanceMessage({ ...checked.message, decision: t.decision }),
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
  governance?: string;
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

/** Asks on a terminal (not with --yes or --json); a no posts and writes nothing. */
async function confirmed(opts: ApproveOptions, decision: 'approve' | 'reject', nothing: string): Promise<void> {
  if (opts.json !== true && process.stdin.isTTY === true && opts.yes !== true) {
    const question = decision === 'approve' ? 'Approve? [y/N] ' : 'Reject? [y/N] ';
    if (!(await askConfirmation(question, process.stdin, process.stderr))) {
      throw new ValidationError('not_confirmed', `not ${decision === 'approve' ? 'approved' : 'rejected'} at the prompt; ${nothing} (run again to decide)`);
    }
  }
}

/** `--governance FILE`: check, show, confirm, sign the request's message offline, append the signature to the file. */
async function approveGovernanceRequest(path: string, opts: ApproveOptions): Promise<void> {
  if (opts.reject === true) throw new ValidationError('no_reject', 'a governance request is rejected by not signing it; there is nothing to post');
  if ((opts.key === undefined) === (opts.ledger !== true)) throw new ValidationError('missing_key', 'give either --key FILE or --ledger');
  const human = opts.json !== true;
  // Check and show before the key is unlocked: a refused request never asks for the passphrase.
  const checked = readRequest(path);
  if (human) for (const line of screenOf(requestScreen(checked))) process.stdout.write(line + '\n');
  await confirmed(opts, 'approve', `${path} is unchanged`);
  const key: ApprovalSigner = opts.key !== undefined ? await keyFileSigner(opts.key, opts.passphraseFile) : await ledgerSigner(loadConfig(), opts.path ?? DEFAULT_APPROVER_PATH);
  let signature: string;
  try {
    const admin = adminOf(checked.message, key.publicKey);
    if (admin === null) throw new ValidationError('not_an_admin', `key ${key.publicKey.slice(0, 16)}… is not one of device ${checked.message.device}'s admins: its approval would not count; ${path} is unchanged`);
    signature = await key.sign(checked.file.message);
    const again = checked.file.approvals.some((a) => a.publicKey === key.publicKey);
    const file = withApproval(checked.file, { admin: admin.id, publicKey: key.publicKey, signature });
    writeRequest(path, file, 'replace');
    const count = new Set(file.approvals.map((a) => a.publicKey)).size;
    const quorum = checked.message.before.quorum;
    const next =
      count >= quorum
        ? checked.change.action === 'export-backup'
          ? `custody backup create --request ${path} --out DIR`
          : `custody custodians apply --request ${path}`
        : `${quorum - count} more admin${quorum - count === 1 ? '' : 's'}: custody approve --governance ${path} --key FILE`;
    emit(opts, { request: path, admin: admin.id, approvals: count, quorum, replaced: again }, () => [
      printable(`approved by ${admin.id}${again ? ' (your earlier approval replaced)' : ''}: ${count} of the ${quorum} admin approvals the device needs; next: ${next}`),
    ]);
  } finally {
    await key.close();
  }
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description('decode the transaction in a withdrawal\'s approval message yourself, check the message agrees with it, show it, ask, sign offline with your approver key (or on your Ledger) and post the approval (or, with --proposal, approve a governance proposal)')
    .argument('[id]', 'withdrawal id (or proposal id with --proposal; none with --governance)')
    .option('--governance <file>', 'approve a device governance request file (custody backup propose, custody custodians propose) offline, as an admin')
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
      action(async (id: string | undefined, opts: ApproveOptions) => {
        if (opts.governance !== undefined) {
          if (id !== undefined) throw new ValidationError('invalid_id', `give a request file with --governance or an id, not both ("${id.slice(0, 40)}")`);
          await approveGovernanceRequest(opts.governance, opts);
          return;
        }
        if (id === undefined) throw new ValidationError('missing_id', 'give the withdrawal id (or a proposal id with --proposal, or --governance FILE)');
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
        await confirmed(opts, target.decision, 'nothing was posted');

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
