/**
 * `custody attest control --challenge TEXT [--pools A,B]`: proposes a proof of control for each pool
 * (an admin quorum approves each with `custody approve ID --proposal`); `custody attest report ID...
 * [--out FILE]`: once applied, writes the report auditors check with their own tools: per key, the
 * chain, address, message format, message and signature (common/control-message.ts).
 */
import { writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { CustodyError, ValidationError } from '../../common/errors.js';
import { challengeProblem } from '../../common/control-message.js';
import { callGateway, gatewayTarget } from './gateway-call.js';
import { action, emit } from './output.js';

export const REPORT_KIND = 'custody.control-report';

/** How an auditor checks each format with common tools. */
const HOW_TO_VERIFY = {
  eip191: 'ethers.verifyMessage(message, signature) (or any personal_sign verifier) returns the address',
  'bitcoin-message': "Bitcoin Core's verifymessage, or bitcoinjs-message verify(message, address, signature, null, true): BIP-137 header 39-42 (P2WPKH)",
  ed25519: 'Ed25519 verification (RFC 8032) of the UTF-8 message under the address, which is the base58 public key; signature in base58',
} as const;

interface Proof {
  readonly pool: string;
  readonly chain: string;
  readonly address: string;
  readonly format: keyof typeof HOW_TO_VERIFY;
  readonly message: string;
  readonly signature: string;
}

export function registerAttest(program: Command): void {
  const attest = program.command('attest').description('proofs of control: pool keys sign an auditor\'s challenge, approved by the admin quorum');
  attest
    .command('control')
    .description('propose that every key of the pools sign the challenge (each proposal needs the admin quorum)')
    .requiredOption('--challenge <text>', 'the auditor\'s challenge text')
    .option('--pools <ids>', 'comma-separated pool ids (default: every pool)')
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'your admin token (default $CUSTODY_TOKEN)')
    .option('--json', 'print JSON')
    .action(
      action(async (opts: { challenge: string; pools?: string; url?: string; token?: string; json?: boolean }) => {
        const problem = challengeProblem(opts.challenge);
        if (problem) throw new ValidationError('invalid_challenge', `--challenge: ${problem}`);
        const { base, token } = gatewayTarget(opts);
        const pools = opts.pools
          ? opts.pools.split(',').map((p) => p.trim()).filter((p) => p !== '')
          : ((await callGateway(`${base}/v1/pools`, token, { method: 'GET' })).pools as { id: string }[]).map((p) => p.id);
        if (pools.length === 0) throw new ValidationError('no_pools', 'no pools to attest');
        const proposals: { pool: string; proposal: string; requiredApprovals: number }[] = [];
        for (const pool of pools) {
          const p = await callGateway(`${base}/v1/pools/${encodeURIComponent(pool)}/attest-control`, token, { method: 'POST', body: { challenge: opts.challenge } });
          proposals.push({ pool, proposal: p.id as string, requiredApprovals: p.requiredApprovals as number });
        }
        emit(opts, { proposals }, () => [
          ...proposals.map((p) => `pool ${p.pool}: proposal ${p.proposal} (needs ${p.requiredApprovals} admin approvals)`),
          'each other admin: custody approve PROPOSAL --proposal --key FILE; then: custody attest report PROPOSAL... --out report.json',
        ]);
      }),
    );

  attest
    .command('report')
    .description('write the signed proofs of applied proof-of-control proposals as one report')
    .argument('<proposals...>', 'proposal ids from custody attest control')
    .option('--out <file>', 'write the report here')
    .option('--url <url>', 'gateway URL (default http://HOST:PORT from the environment)')
    .option('--token <token>', 'a token (default $CUSTODY_TOKEN)')
    .option('--json', 'print JSON')
    .action(
      action(async (ids: string[], opts: { out?: string; url?: string; token?: string; json?: boolean }) => {
        const { base, token } = gatewayTarget(opts);
        const proofs: Proof[] = [];
        let challenge: string | null = null;
        for (const id of ids) {
          const p = await callGateway(`${base}/v1/proposals/${encodeURIComponent(id)}`, token, { method: 'GET' });
          if (p.action !== 'attest-control') throw new ValidationError('not_a_proof', `proposal ${id} is a "${String(p.action)}" proposal, not a proof of control`);
          if (p.state !== 'applied') throw new CustodyError('conflict', 'not_applied', `proposal ${id} is "${String(p.state)}"${p.reason ? ` (${String(p.reason)})` : ''}: only an applied proof of control has signatures`);
          const text = (p.change as { challenge: string }).challenge;
          if (challenge !== null && text !== challenge) throw new ValidationError('mixed_challenges', `proposal ${id} proves another challenge than the first one`);
          challenge = text;
          proofs.push(...(p.proofs as Proof[]));
        }
        const report = {
          kind: REPORT_KIND,
          version: 1,
          challenge,
          generatedAt: new Date().toISOString(),
          proofs,
          howToVerify: HOW_TO_VERIFY,
        };
        if (opts.out) writeFileSync(opts.out, JSON.stringify(report, null, 2) + '\n');
        emit(opts, report, () => [
          ...proofs.map((p) => `${p.pool}  ${p.chain}  ${p.address}  ${p.format}  ${p.signature}`),
          ...(opts.out ? [`report written to ${opts.out}`] : []),
        ]);
      }),
    );
}
