/**
 * `custody approve ID --key FILE [--url URL --token T] [--reject]` (SPEC sections 5 and 7): fetch the
 * request's approval message, check it is well-formed and names this request, show what it approves,
 * sign it offline with the approver's key, and post the signature.
 */
import type { Command } from 'commander';
import { parseApprovalMessage, canonicalApprovalMessage, type ApprovalMessage } from '../../common/approval-message.js';
import { loadConfig } from '../config.js';
import { nativeAsset, parseChainId } from '../domain/chain-id.js';
import { CustodyError, ValidationError } from '../domain/errors.js';
import { readApproverKeyFile, signWithApproverKey } from './approver-key-file.js';
import { action, emit } from './output.js';

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

interface ProblemBody {
  readonly detail?: string;
  readonly code?: string;
}

async function call(url: string, token: string, init: { method: string; body?: unknown }): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: init.method,
      headers: { authorization: `Bearer ${token}`, ...(init.body !== undefined ? { 'content-type': 'application/json' } : {}) },
      ...(init.body !== undefined ? { body: JSON.stringify(init.body) } : {}),
    });
  } catch (error) {
    throw new CustodyError('unavailable', 'gateway_unreachable', `cannot reach the gateway at ${url}: ${error instanceof Error ? error.message : String(error)}`);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown> & ProblemBody;
  if (!res.ok) throw new CustodyError('invalid', body.code ?? 'http_error', `${res.status}: ${body.detail ?? res.statusText}`);
  return body;
}

export function registerApprove(program: Command): void {
  program
    .command('approve')
    .description('sign a withdrawal\'s approval message offline with your approver key and post it')
    .argument('<id>', 'withdrawal id')
    .requiredOption('--key <file>', 'your approver key file (custody approver keygen)')
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'your approver token (default $CUSTODY_TOKEN)')
    .option('--reject', 'reject instead of approve')
    .option('--json', 'print JSON')
    .action(
      action(async (id: string, opts: { key: string; url?: string; token?: string; reject?: boolean; json?: boolean }) => {
        const config = loadConfig();
        const base = (opts.url ?? `http://${config.host}:${config.port}`).replace(/\/+$/, '');
        const token = opts.token ?? process.env.CUSTODY_TOKEN;
        if (!token) throw new ValidationError('missing_token', 'give --token or set CUSTODY_TOKEN to your approver token');
        if (!/^[0-9a-f-]{36}$/.test(id)) throw new ValidationError('invalid_id', `"${id}" is not a withdrawal id`);
        const key = readApproverKeyFile(opts.key);

        const w = await call(`${base}/v1/withdrawals/${id}`, token, { method: 'GET' });
        if (typeof w.approvalMessage !== 'string') throw new CustodyError('invalid', 'no_approval_message', 'the gateway answered without an approvalMessage');
        const message: ApprovalMessage = parseApprovalMessage(w.approvalMessage);
        if (message.requestId !== id) throw new CustodyError('invalid', 'message_mismatch', `the approval message names request ${message.requestId}, not ${id}; refusing to sign`);
        for (const [field, value] of [['pool', w.pool], ['chain', w.chain], ['asset', w.asset], ['amount', w.amount], ['to', w.to], ['digest', w.digest]] as const) {
          if (message[field] !== value) throw new CustodyError('invalid', 'message_mismatch', `the approval message's ${field} differs from the request's; refusing to sign`);
        }
        const decision = opts.reject ? 'reject' : 'approve';
        const text = canonicalApprovalMessage({ ...message, decision });
        const signature = signWithApproverKey(key, text);
        if (!opts.json) {
          for (const line of [
            `withdrawal ${message.requestId}`,
            `  pool      ${message.pool}`,
            `  chain     ${message.chain}`,
            `  amount    ${formatUnits(message.amount, message.asset)} (${message.amount})`,
            `  to        ${message.to}`,
            `  max fee   ${formatUnits(message.maxFee, nativeAsset(parseChainId(message.chain).family))} (${message.maxFee})`,
            `  digest    ${message.digest}`,
            `  policy    version ${message.policyVersion}`,
            `signing "${decision}" with key ${key.publicKey.slice(0, 16)}…`,
          ]) process.stdout.write(line + '\n');
        }
        const after = await call(`${base}/v1/withdrawals/${id}/approvals`, token, { method: 'POST', body: { signature, decision } });
        emit(opts, { id, decision, state: after.state, txHash: after.txHash ?? null }, () => [
          `${decision === 'approve' ? 'approved' : 'rejected'}; the request is now "${String(after.state)}"${after.txHash ? ` (tx ${String(after.txHash)})` : ''}`,
        ]);
      }),
    );
}
