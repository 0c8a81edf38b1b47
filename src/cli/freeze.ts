/**
 * `custody freeze POOL (--key FILE | --ledger [--path P]) [--url URL --token T] [--reason R] [--json]`:
 * break glass (SPEC section 4) as one admin, reaching the device. Fetches the pool's freeze message
 * (`freezeMessage` of `GET /v1/pools/{pool}`, common/governance-message.ts action `freeze`), checks it
 * is a freeze of this pool and nothing else, shows it, signs it with the admin's key and posts
 * `POST /v1/pools/{pool}/freeze` with the signature: the gateway freezes the pool at once and forwards
 * the signed message to the device holding the pool's keys, which freezes it too.
 *
 * The gateway is not trusted with what is signed: a message that is not exactly a freeze of this pool
 * (another action, another change, a state after that differs from the state before) could count as
 * this admin's vote for something else, so it is refused in one line, posting nothing (exit 2). No
 * question is asked: a freeze is break glass, and it changes nothing but the pool's status. The exit
 * status is 1 when the gateway froze the pool but a device did not.
 */
import type { Command } from 'commander';
import { ValidationError } from '../../common/errors.js';
import { parseGovernanceMessage, sameSummary, sha256Canonical, type PoolGovernanceMessage } from '../../common/governance-message.js';
import { POOL_ID } from '../../common/policy/policy.js';
import { loadConfig } from '../config.js';
import { DEFAULT_APPROVER_PATH, keyFileSigner, ledgerSigner, type ApprovalSigner } from './approval-signer.js';
import { ApprovalRefusedError, printable } from './approve.js';
import { callGateway, gatewayTarget } from './gateway-call.js';
import { action, emit, reasonOf } from './output.js';

/** Checks that `text` is exactly a freeze of `pool`; throws an ApprovalRefusedError naming the field at fault. */
export function checkFreezeMessage(pool: string, text: unknown): PoolGovernanceMessage {
  if (typeof text !== 'string') {
    throw new ApprovalRefusedError('no_freeze_message', 'freezeMessage', 'the gateway answered without a "freezeMessage" string (no admins are enrolled, or the token is not an admin\'s)');
  }
  let message;
  try {
    message = parseGovernanceMessage(text);
  } catch (error) {
    throw new ApprovalRefusedError('invalid_freeze_message', 'freezeMessage', reasonOf(error));
  }
  const refuse = (field: string, why: string): never => {
    throw new ApprovalRefusedError('message_mismatch', field, `the freeze message's ${why}`);
  };
  if (message.scope !== 'pool') return refuse('scope', `"scope" is "${message.scope}", not "pool"`);
  if (message.pool !== pool) refuse('pool', `"pool" is ${message.pool}, not ${pool}`);
  if (message.action !== 'freeze') refuse('action', `"action" is "${message.action}", not "freeze"`);
  if (message.change !== sha256Canonical({ action: 'freeze' })) refuse('change', '"change" is not the hash of a freeze');
  if (!sameSummary(message.before, message.after)) refuse('after', '"after" differs from "before": a freeze changes nothing the device holds');
  if (message.decision !== 'approve') refuse('decision', `"decision" is "${message.decision}", not "approve"`);
  return message;
}

function screenOf(m: PoolGovernanceMessage): string[] {
  const s = m.before;
  return [
    `freeze pool ${m.pool}`,
    `  device           ${m.device} (governance sequence ${m.sequence})`,
    `  pool as it is    approvers ${s.approvers.map((a) => `${a.id} (key ${a.fingerprint.slice(0, 16)}…)`).join(', ')}; base threshold ${s.threshold}; policy version ${s.policyVersion} (${s.policy.slice(0, 16)}…)`,
    '  effect           nothing of this pool is signed, by the gateway or the device, until the admin quorum unfreezes it',
  ].map(printable);
}

interface FreezeOptions {
  key?: string;
  passphraseFile?: string;
  ledger?: boolean;
  path?: string;
  url?: string;
  token?: string;
  reason?: string;
  json?: boolean;
}

interface DeviceFreezeView {
  readonly device: string;
  readonly frozen: boolean;
  readonly reason: string | null;
}

export function registerFreeze(program: Command): void {
  program
    .command('freeze')
    .description('break glass: freeze a pool at once in the gateway and, by signing its freeze message with your admin key, in its device')
    .argument('<pool>', 'pool id')
    .option('--key <file>', 'your admin (approver) key file')
    .option('--passphrase-file <file>', 'read the key file passphrase from FILE (default $CUSTODY_KEY_PASSPHRASE, else asked)')
    .option('--ledger', 'sign on a Ledger (Ethereum app, EIP-191 personal message) reached through LEDGER_URL')
    .option('--path <path>', `BIP32 path of your key on the Ledger (default ${DEFAULT_APPROVER_PATH})`)
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'your admin token (default $CUSTODY_TOKEN)')
    .option('--reason <text>', 'why (recorded in the audit trail)')
    .option('--json', 'print JSON')
    .action(
      action(async (pool: string, opts: FreezeOptions) => {
        const config = loadConfig();
        const { base, token } = gatewayTarget(opts);
        if (!POOL_ID.test(pool)) throw new ValidationError('invalid_pool', `"${printable(pool.slice(0, 80))}" is not a pool id`);
        if ((opts.key === undefined) === (opts.ledger !== true)) throw new ValidationError('missing_key', 'give either --key FILE or --ledger');
        const view = await callGateway(`${base}/v1/pools/${pool}`, token, { method: 'GET' });
        const message = checkFreezeMessage(pool, view.freezeMessage);
        const text = view.freezeMessage as string;
        if (opts.json !== true) for (const line of screenOf(message)) process.stdout.write(line + '\n');

        const key: ApprovalSigner = opts.key !== undefined ? await keyFileSigner(opts.key, opts.passphraseFile) : await ledgerSigner(config, opts.path ?? DEFAULT_APPROVER_PATH);
        let after: Record<string, unknown>;
        try {
          const signature = await key.sign(text);
          after = await callGateway(`${base}/v1/pools/${pool}/freeze`, token, { method: 'POST', body: { signature, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) } });
        } finally {
          await key.close();
        }
        const freeze = (after.freeze ?? {}) as { signed?: boolean; deviceFrozen?: boolean; devices?: DeviceFreezeView[] };
        const devices = freeze.devices ?? [];
        emit(opts, { pool, status: after.status, deviceFrozen: freeze.deviceFrozen === true, devices }, () => [
          printable(`pool ${pool} is "${String(after.status)}" in the gateway`),
          ...devices.map((d) => printable(`device ${d.device}: ${d.frozen ? 'frozen' : `not frozen (${d.reason ?? 'no reason given'})`}`)),
        ]);
        if (freeze.deviceFrozen !== true) {
          const why = devices.find((d) => !d.frozen)?.reason ?? 'the pool has no device keys';
          process.stderr.write(printable(`custody: pool ${pool} is frozen in the gateway only: ${why}`) + '\n');
          process.exitCode = 1;
        }
      }),
    );
}
