/**
 * The real `custody approve` (the built CLI) against a compromised gateway (SPEC sections 5 and 9,
 * "Approving from the CLI"): a fake gateway on loopback serves approval messages that lie about their
 * own transaction, and records every POST. The CLI must decode `unsignedTx` from the message itself,
 * refuse in one line naming the field, post nothing and exit non-zero; for an honest message it posts
 * exactly one signature, which verifies over the message with that decision. On a terminal it asks
 * `Approve? [y/N]` first (run under a pseudo-terminal with util-linux `script`). A governance proposal
 * is checked against the pool's state before the change that the gateway gives: a policy shown as the
 * one before that is not the one the message names is refused the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFileSync, spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { hexToBytes } from '@noble/hashes/utils.js';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { withDecision } from '../../common/approval-message.js';
import { canonicalGovernanceMessage, GOVERNANCE_KIND, GOVERNANCE_VERSION, memberSummaries, sha256Canonical } from '../../common/governance-message.js';
import { policyHash } from '../../common/policy/document.js';
import type { PolicyDocument } from '../../common/policy/policy.js';
import {
  APPROVE_SELECTOR,
  ETH_OTHER,
  btcMessage,
  ethCallMessage,
  ethMessage,
  ethTransfer,
  messageText,
  solMessage,
  solTransferWithMemo,
  withdrawalView,
  type MessageFields,
} from '../helpers/approval-fixtures.js';
import { ALICE_SECRET, ApproverCli, FakeGateway, type Post } from '../helpers/fake-gateway.js';

const PASSPHRASE = 'hostile gateway test passphrase';
const TOKEN = 'approver-token-of-alice';
const ALICE_PUBLIC = ed25519.getPublicKey(hexToBytes(ALICE_SECRET));

const gateway = new FakeGateway();
const alice = new ApproverCli(gateway, TOKEN, PASSPHRASE);
const run = (id: string, extra?: string[]) => alice.run(id, extra);

beforeAll(() => alice.start('custody-approve-hostile-'));
afterAll(() => alice.close());

describe('custody approve against a gateway that lies about the transaction', () => {
  const forgeries: [string, (id: string) => MessageFields, RegExp][] = [
    [
      'the message states 0.5 ETH but the transaction pays 1000 ETH',
      (id) => ({ ...ethMessage(id, ethTransfer({ amount: 1000n * 10n ** 18n })), amount: '500000000000000000' }),
      /the approval message's "amount" says 500000000000000000 but the transaction has 1000000000000000000000/,
    ],
    ['the message states another destination', (id) => ({ ...ethMessage(id), to: ETH_OTHER }), /"to" says 0x71C7656EC7ab88b098defB751B7401B5f6d8976F but the transaction has 0x8ba1f109551bD432803012645Ac136ddd64DBA72/],
    [
      'the message names the digest of another transaction',
      (id) => ({ ...ethMessage(id), digest: ethMessage(id, ethTransfer({ nonce: 99n })).digest }),
      /"digest" says [0-9a-f]{64} but the transaction has [0-9a-f]{64}/,
    ],
    ['the message states a lower fee cap', (id) => ({ ...ethMessage(id), maxFee: '21000' }), /"maxFee" says 21000 but the transaction has 630000000000000/],
    [
      'the message states a contract call the transaction does not make',
      (id) => ({ ...ethMessage(id), call: { contract: ETH_OTHER, selector: APPROVE_SELECTOR } }),
      /"call" says \{"contract":"0x71C7656EC7ab88b098defB751B7401B5f6d8976F","selector":"0x095ea7b3"\} but the transaction has none/,
    ],
    ['the transaction cannot be decoded', (id) => ({ ...ethMessage(id), unsignedTx: '0xdeadbeef' }), /"unsignedTx" cannot be fully decoded/],
    [
      'the message is version 1 (no transaction in it)',
      (id) => {
        const { unsignedTx: _tx, timelock: _tl, ...v1 } = ethMessage(id);
        return { ...v1, version: 1 };
      },
      /approval message version must be 2 \(got 1\)/,
    ],
    ['the message is for another request', (id) => ({ ...ethMessage(id), requestId: randomUUID() }), /"requestId" says [0-9a-f-]{36} but you are approving request [0-9a-f-]{36}/],
    ['a Bitcoin message states another amount than its PSBT pays', (id) => ({ ...btcMessage(id), amount: '100000' }), /"amount" says 100000 but the transaction has 1000000/],
    ['a Solana transaction carries a second instruction', (id) => ({ ...solMessage(id), unsignedTx: solTransferWithMemo() }), /"unsignedTx" cannot be fully decoded .*has 2 instructions/],
  ];

  for (const [what, forge, reason] of forgeries) {
    it(`when ${what}, then it refuses in one line naming the field, posts nothing and exits non-zero`, async () => {
      const id = randomUUID();
      // The gateway serves the forgery under the id the approver asked for (even a message naming another request).
      gateway.serveView(id, withdrawalView(forge(id)));
      const result = await run(id);
      expect(result.code).not.toBe(0);
      expect(result.stderr).toMatch(new RegExp(`^custody: refusing to sign: .*${reason.source}`));
      expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
      expect(gateway.postsFor(id)).toEqual([]);
    });
  }
});

describe('custody approve of an honest message', () => {
  it('when the message says exactly what its transaction does, then exactly one signature is posted and it verifies over the message', async () => {
    const fields = ethMessage(randomUUID());
    const id = gateway.publish(fields);
    const result = await run(id);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}amount +0\.5 ETH \(500000000000000000 base units\)$/m);
    expect(result.stdout).toMatch(/^ {2}nonce +7$/m);
    const posts = gateway.postsFor(id);
    expect(posts).toHaveLength(1);
    const [post] = posts as [Post];
    expect(post.path).toBe(`/v1/withdrawals/${id}/approvals`);
    expect(post.authorization).toBe(`Bearer ${TOKEN}`);
    expect(post.body.decision).toBe('approve');
    const signed = new TextEncoder().encode(withDecision(messageText(fields), 'approve'));
    expect(ed25519.verify(hexToBytes(post.body.signature as string), signed, ALICE_PUBLIC)).toBe(true);
  });

  it('when the approver rejects, then the one signature posted is over the message with decision "reject"', async () => {
    const fields = ethMessage(randomUUID());
    const id = gateway.publish(fields);
    const result = await run(id, ['--yes', '--reject']);
    expect(result.code).toBe(0);
    const [post] = gateway.postsFor(id) as [Post];
    expect(gateway.postsFor(id)).toHaveLength(1);
    expect(post.body.decision).toBe('reject');
    const signed = new TextEncoder().encode(withDecision(messageText(fields), 'reject'));
    expect(ed25519.verify(hexToBytes(post.body.signature as string), signed, ALICE_PUBLIC)).toBe(true);
  });

  const families: [string, () => MessageFields, RegExp[]][] = [
    ['a Bitcoin PSBT', () => btcMessage(randomUUID()), [/^ {2}amount +0\.01 BTC \(1000000 base units\)$/m, /^ {2}input 0 +3f4a0b8f.*:0, 3000000 sat, sequence 0xfffffffd$/m, /^ {2}output 1 +\d+ sat to tb1q\w+ \(change back to the pool\)$/m, /^ {2}fee +1410 sat$/m]],
    ['a SOL transfer', () => solMessage(randomUUID()), [/^ {2}amount +1\.5 SOL \(1500000000 base units\)$/m, /^ {2}fee payer +\w+ \(the only signer\)$/m, /^ {2}instruction 0 +System Program transfer of 1500000000 lamports/m]],
    ['a contract call', () => ethCallMessage(randomUUID()), [/^the contract call it makes:$/m, /^ {2}contract +0x71C7656EC7ab88b098defB751B7401B5f6d8976F$/m, /^ {2}function +/m]],
  ];
  for (const [what, honest, shown] of families) {
    it(`when an honest message about ${what} is approved, then the decoded transaction is shown and one signature is posted`, async () => {
      const id = gateway.publish(honest());
      const result = await run(id);
      expect(result.stderr).toBe('');
      expect(result.code).toBe(0);
      for (const line of shown) expect(result.stdout).toMatch(line);
      expect(gateway.postsFor(id)).toHaveLength(1);
    });
  }

  it('when there is no terminal and no --yes, then it signs what passed the checks without asking (SPEC: it asks on a terminal)', async () => {
    const id = gateway.publish(ethMessage(randomUUID()));
    const result = await run(id, []);
    expect(result.code).toBe(0);
    expect(result.stderr).not.toContain('Approve?');
    expect(gateway.postsFor(id)).toHaveLength(1);
  });
});

const hasScript = (() => {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

/**
 * Runs the CLI on a pseudo-terminal (util-linux `script`); types `typed` once the question appears
 * (null: types nothing).
 */
function runOnTerminal(id: string, extra: string[], typed: string | null): Promise<{ code: number; screen: string }> {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  const command = [process.execPath, ...alice.args(id, extra)].map(quote).join(' ');
  return new Promise((ok, fail) => {
    const child = spawn('script', ['-qec', command, '/dev/null'], { env: alice.env(), stdio: ['pipe', 'pipe', 'pipe'] });
    let screen = '';
    let answered = false;
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`no answer in time; the terminal showed: ${screen}`));
    }, 20_000);
    const onOutput = (d: Buffer) => {
      screen += d.toString();
      if (typed !== null && !answered && /(Approve|Reject)\? \[y\/N\] /.test(screen)) {
        answered = true;
        child.stdin.write(typed);
      }
    };
    child.stdout.on('data', onOutput);
    child.stderr.on('data', onOutput);
    child.on('exit', (code) => {
      clearTimeout(timer);
      ok({ code: code ?? 1, screen });
    });
  });
}

describe.skipIf(!hasScript)('custody approve on a terminal', () => {
  it('when the approver answers n at "Approve? [y/N]", then nothing is posted and it exits non-zero', async () => {
    const id = gateway.publish(ethMessage(randomUUID()));
    const { code, screen } = await runOnTerminal(id, [], 'n\r');
    expect(screen).toContain('Approve? [y/N] ');
    expect(screen).toMatch(/amount +0\.5 ETH/);
    expect(screen).toContain('custody: not approved at the prompt; nothing was posted');
    expect(code).not.toBe(0);
    expect(gateway.postsFor(id)).toEqual([]);
  });

  it('when the approver answers y, then the one signature is posted', async () => {
    const id = gateway.publish(ethMessage(randomUUID()));
    const { code, screen } = await runOnTerminal(id, [], 'y\r');
    expect(screen).toContain('Approve? [y/N] ');
    expect(code).toBe(0);
    expect(gateway.postsFor(id)).toHaveLength(1);
  });

  it('when rejecting on a terminal, then the question is "Reject? [y/N]" and just Enter posts nothing', async () => {
    const id = gateway.publish(ethMessage(randomUUID()));
    const { code, screen } = await runOnTerminal(id, ['--reject'], '\r');
    expect(screen).toContain('Reject? [y/N] ');
    expect(code).not.toBe(0);
    expect(gateway.postsFor(id)).toEqual([]);
  });

  it('when --yes is given on a terminal, then it does not ask and posts the one signature', async () => {
    const id = gateway.publish(ethMessage(randomUUID()));
    const result = await runOnTerminal(id, ['--yes'], null);
    expect(result.screen).not.toContain('Approve?');
    expect(result.code).toBe(0);
    expect(gateway.postsFor(id)).toHaveLength(1);
  });
});

describe('custody approve --proposal against a gateway that lies about the pool before the change', () => {
  const plan = JSON.parse(readFileSync(join(import.meta.dirname, '..', '..', 'examples', 'ceremony-plan.json'), 'utf8')) as {
    approvers: { id: string; publicKey: string }[];
    pools: { id: string; policy: PolicyDocument }[];
  };
  const before = plan.pools.find((p) => p.id === 'client-b')!.policy;
  const approvers = plan.approvers.filter((a) => a.id === 'bob' || a.id === 'carol');
  const next: PolicyDocument = { ...before, assets: { ETH: { maxPerTx: '100000000000000000000', limits: before.assets.ETH!.limits! } } };

  /** A policy proposal raising the maximum to 100 ETH; the gateway's `before` is `shownBefore`. */
  function proposal(shownBefore: PolicyDocument): { id: string; message: string } {
    const id = randomUUID();
    const summary = { approvers: memberSummaries(approvers), threshold: 2, policy: policyHash(before), policyVersion: 1 };
    const change = { action: 'policy', policy: next };
    const message = canonicalGovernanceMessage({
      kind: GOVERNANCE_KIND, version: GOVERNANCE_VERSION, proposalId: id, device: 'sim-0123456789abcdef', scope: 'pool', pool: 'client-b', action: 'policy', sequence: 1,
      before: summary, after: { ...summary, policy: policyHash(next), policyVersion: 2 }, change: sha256Canonical(change), decision: 'approve',
    });
    gateway.serveView(id, { id, pool: 'client-b', action: 'policy', change, proposedBy: 'bob', state: 'pending', approvalMessage: message, before: { policyVersion: 1, policy: shownBefore, approvers, threshold: 2 } });
    return { id, message };
  }

  it('when the policy shown as the one before is not the one the message names, then it refuses in one line, posts nothing and exits 2', async () => {
    // Shown against a "before" of 200 ETH, a raise to 100 ETH would read as a tightening.
    const { id } = proposal({ ...before, assets: { ETH: { maxPerTx: '200000000000000000000' } } });
    const result = await run(id, ['--proposal', '--yes']);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^custody: refusing to sign: the policy document the gateway gives as version 1 is not the one the message names \(its hash differs\); nothing was posted/);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stdout).toBe('');
    expect(gateway.postsFor(id)).toEqual([]);
  });

  it('when the state before is the message\'s, then the change is shown against it and the one signature posted verifies over the message', async () => {
    const { id, message } = proposal(before);
    const result = await run(id, ['--proposal', '--yes']);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^ {2}~ max per tx ETH {2}1 ETH \(1000000000000000000 base units\) -> 100 ETH \(100000000000000000000 base units\)$/m);
    const [post] = gateway.postsFor(id) as [Post];
    expect(gateway.postsFor(id)).toHaveLength(1);
    expect(post.path).toBe(`/v1/proposals/${id}/approvals`);
    expect(ed25519.verify(hexToBytes(post.body.signature as string), new TextEncoder().encode(message), ALICE_PUBLIC)).toBe(true);
  });
});
