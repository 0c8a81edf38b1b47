/**
 * `custody approve ID (--key FILE | --ledger [--path P]) [--url URL --token T] [--reject]` (SPEC
 * sections 5 and 7): fetch the request's approval message, check it is well-formed and names this
 * request, show what it approves, sign it offline with the approver's key file or on a Ledger (EIP-191),
 * and post the signature.
 */
import type { Command } from 'commander';
import { parseApprovalMessage, canonicalApprovalMessage, type ApprovalMessage } from '../../common/approval-message.js';
import { loadConfig } from '../config.js';
import { nativeAsset, parseChainId } from '../../common/chain-id.js';
import { CustodyError, ValidationError } from '../../common/errors.js';
import { DEFAULT_APPROVER_PATH, keyFileSigner, ledgerSigner, type ApprovalSigner } from './approval-signer.js';
import { bindingHash, canonicalGovernanceMessage, parseGovernanceMessage, sha256Canonical, type Binding, type GovernanceMessage } from '../../common/governance-message.js';
import { action, emit } from './output.js';
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

interface Target {
  readonly base: string;
  readonly token: string;
  readonly id: string;
  readonly decision: 'approve' | 'reject';
  readonly json: boolean;
}

function say(target: Target, lines: string[]): void {
  if (!target.json) for (const line of lines) process.stdout.write(line + '\n');
}

async function approveWithdrawalById(t: Target, key: ApprovalSigner): Promise<Record<string, unknown>> {
  const w = await callGateway(`${t.base}/v1/withdrawals/${t.id}`, t.token, { method: 'GET' });
  if (typeof w.approvalMessage !== 'string') throw new CustodyError('invalid', 'no_approval_message', 'the gateway answered without an approvalMessage');
  const message: ApprovalMessage = parseApprovalMessage(w.approvalMessage);
  if (message.requestId !== t.id) throw new CustodyError('invalid', 'message_mismatch', `the approval message names request ${message.requestId}, not ${t.id}; refusing to sign`);
  for (const [field, value] of [['pool', w.pool], ['chain', w.chain], ['asset', w.asset], ['amount', w.amount], ['to', w.to], ['digest', w.digest]] as const) {
    if (message[field] !== value) throw new CustodyError('invalid', 'message_mismatch', `the approval message's ${field} differs from the request's; refusing to sign`);
  }
  say(t, [
    `withdrawal ${message.requestId}`,
    `  pool      ${message.pool}`,
    `  chain     ${message.chain}`,
    `  amount    ${formatUnits(message.amount, message.asset)} (${message.amount})`,
    `  to        ${message.to}`,
    ...(message.call !== undefined ? [`  call      function ${message.call} of contract ${message.to} (check the call data in "unsignedTx")`] : []),
    `  max fee   ${formatUnits(message.maxFee, nativeAsset(parseChainId(message.chain).family))} (${message.maxFee})`,
    `  digest    ${message.digest}`,
    `  policy    version ${message.policyVersion}`,
    `signing "${t.decision}" with key ${key.publicKey.slice(0, 16)}…`,
  ]);
  const signature = await key.sign(canonicalApprovalMessage({ ...message, decision: t.decision }));
  return callGateway(`${t.base}/v1/withdrawals/${t.id}/approvals`, t.token, { method: 'POST', body: { signature, decision: t.decision } });
}

async function approveProposalById(t: Target, key: ApprovalSigner): Promise<Record<string, unknown>> {
  const p = await callGateway(`${t.base}/v1/proposals/${t.id}`, t.token, { method: 'GET' });
  if (typeof p.approvalMessage !== 'string') throw new CustodyError('invalid', 'no_approval_message', 'the gateway answered without an approvalMessage');
  const message: GovernanceMessage = parseGovernanceMessage(p.approvalMessage);
  const binding = p.binding as Binding;
  // What is shown must be what is signed: the message commits to the change and binding by hash.
  if (message.proposalId !== t.id || message.pool !== p.pool) throw new CustodyError('invalid', 'message_mismatch', 'the governance message names another proposal or pool; refusing to sign');
  if (message.change !== sha256Canonical(p.change) || message.binding !== bindingHash(binding)) {
    throw new CustodyError('invalid', 'message_mismatch', 'the governance message does not commit to the change and binding shown; refusing to sign');
  }
  say(t, [
    `proposal ${message.proposalId}`,
    `  pool      ${message.pool}`,
    `  action    ${message.action} (proposed by ${String(p.proposedBy)})`,
    `  change    ${JSON.stringify(p.change)}`,
    `  binding   approvers ${binding.approvers.map((a) => a.id).join(', ')}; base threshold ${binding.threshold}`,
    `signing "${t.decision}" with key ${key.publicKey.slice(0, 16)}…`,
  ]);
  const signature = await key.sign(canonicalGovernanceMessage({ ...message, decision: t.decision }));
  return callGateway(`${t.base}/v1/proposals/${t.id}/approvals`, t.token, { method: 'POST', body: { signature, decision: t.decision } });
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description('check, show, sign offline with your approver key (or on your Ledger), and post an approval of a withdrawal (or, with --proposal, of a governance proposal)')
    .argument('<id>', 'withdrawal id (or proposal id with --proposal)')
    .option('--key <file>', 'your approver key file (custody approver keygen)')
    .option('--passphrase-file <file>', 'read the key file passphrase from FILE (default $CUSTODY_KEY_PASSPHRASE, else asked)')
    .option('--ledger', 'sign on a Ledger (Ethereum app, EIP-191 personal message) reached through LEDGER_URL')
    .option('--path <path>', `BIP32 path of your key on the Ledger (default ${DEFAULT_APPROVER_PATH})`)
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'your approver (or admin) token (default $CUSTODY_TOKEN)')
    .option('--proposal', 'the id is a governance proposal; sign as an admin')
    .option('--reject', 'reject instead of approve')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, opts: { key?: string; passphraseFile?: string; ledger?: boolean; path?: string; url?: string; token?: string; proposal?: boolean; reject?: boolean; json?: boolean }) => {
        const config = loadConfig();
        const { base, token } = gatewayTarget(opts);
        if (!/^[0-9a-f-]{36}$/.test(id)) throw new ValidationError('invalid_id', `"${id}" is not a ${opts.proposal ? 'proposal' : 'withdrawal'} id`);
        if ((opts.key === undefined) === (opts.ledger !== true)) throw new ValidationError('missing_key', 'give either --key FILE or --ledger');
        const target: Target = {
          base,
          token,
          id,
          decision: opts.reject ? 'reject' : 'approve',
          json: opts.json === true,
        };
        const key = opts.key !== undefined ? await keyFileSigner(opts.key, opts.passphraseFile) : await ledgerSigner(config, opts.path ?? DEFAULT_APPROVER_PATH);
        let after: Record<string, unknown>;
        try {
          after = opts.proposal ? await approveProposalById(target, key) : await approveWithdrawalById(target, key);
        } finally {
          await key.close();
        }
        const done = target.decision === 'approve' ? 'approved' : 'rejected';
        emit(opts, { id, decision: target.decision, state: after.state, txHash: after.txHash ?? null }, () => [
          `${done}; the ${opts.proposal ? 'proposal' : 'request'} is now "${String(after.state)}"${after.txHash ? ` (tx ${String(after.txHash)})` : ''}`,
        ]);
      }),
    );
}
