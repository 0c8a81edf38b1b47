/**
 * Proof of control end to end on the example plan: an admin proposes a challenge with `custody attest
 * control`, the admin quorum approves, each pool key signs it on the simulator (which checks the
 * admins' approvals itself), and `custody attest report` writes a report whose signatures verify with
 * tools we did not write: ethers' verifyMessage (EIP-191) and bitcoinjs-message (Bitcoin signed
 * message, BIP-137 P2WPKH header).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { verifyMessage } from 'ethers';
import bitcoinMessage from 'bitcoinjs-message';
import { ed25519 } from '@noble/curves/ed25519.js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { APPROVER_SECRETS, startStack, type Stack } from '../helpers/gateway-stack.js';
import { createSimDevice } from '../../src/devices/sim/client.js';

const CHALLENGE = 'Auditor X, proof of reserves 2026-11-25, nonce 7f3a91';
let stack: Stack;
const admins: Record<string, string> = {};

function adminSign(message: string, who: string): string {
  return bytesToHex(ed25519.sign(new TextEncoder().encode(message), hexToBytes(APPROVER_SECRETS[who] as string)));
}

async function approve(id: string, who: 'bob' | 'carol') {
  const p = await stack.api('GET', `/v1/proposals/${id}`, admins[who] as string);
  return stack.api('POST', `/v1/proposals/${id}/approvals`, admins[who] as string, { signature: adminSign(p.body.approvalMessage as string, who), decision: 'approve' });
}

beforeAll(async () => {
  stack = await startStack();
  for (const who of ['alice', 'bob', 'carol']) {
    const r = await stack.cli(['token', 'create', '--role', 'admin', '--name', who, '--json']);
    admins[who] = (JSON.parse(r.stdout) as { token: string }).token;
  }
}, 120_000);

afterAll(async () => {
  await stack?.close();
});

describe('proof of control', () => {
  let proposals: { pool: string; proposal: string }[] = [];

  it('when an admin proposes a challenge, then nothing is signed until the admin quorum approves; the proposer cannot approve', async () => {
    const made = await stack.cli(['attest', 'control', '--challenge', CHALLENGE, '--pools', 'client-a,client-b', '--url', stack.gateway.url, '--token', admins.alice as string, '--json']);
    expect(made.code).toBe(0);
    proposals = (JSON.parse(made.stdout) as { proposals: { pool: string; proposal: string }[] }).proposals;
    expect(proposals.map((p) => p.pool)).toEqual(['client-a', 'client-b']);
    const first = proposals[0]!.proposal;
    const own = await stack.api('GET', `/v1/proposals/${first}`, admins.alice as string);
    expect(JSON.parse(own.body.approvalMessage as string)).toMatchObject({ action: 'attest-control', pool: 'client-a' });
    const byProposer = await stack.api('POST', `/v1/proposals/${first}/approvals`, admins.alice as string, { signature: adminSign(own.body.approvalMessage as string, 'alice'), decision: 'approve' });
    expect(byProposer.status).toBe(403);
    const one = await approve(first, 'bob');
    expect(one.body.state).toBe('pending');
    expect(one.body.proofs).toEqual([]);
    const early = await stack.cli(['attest', 'report', first, '--url', stack.gateway.url, '--token', stack.tokens.auditor]);
    expect(early.code).not.toBe(0);
    expect(early.stderr).toMatch(/is "pending": only an applied proof of control has signatures/);
  });

  it('when the device is asked directly with one admin approval, or approvals of another challenge, then it refuses', async () => {
    const device = createSimDevice({ url: stack.sim.url, pin: stack.env.HSM_PIN as string });
    try {
      const key = (await device.listKeys()).find((k) => k.poolId === 'client-a' && k.chain === 'eip155:11155111')!;
      const p = await stack.api('GET', `/v1/proposals/${proposals[0]!.proposal}`, admins.bob as string);
      const evidence = (who: string) => ({ publicKey: bytesToHex(ed25519.getPublicKey(hexToBytes(APPROVER_SECRETS[who] as string))), message: p.body.approvalMessage as string, signature: adminSign(p.body.approvalMessage as string, who) });
      const request = { handle: key.handle, poolId: 'client-a', chain: key.chain, challenge: CHALLENGE };
      await expect(device.signMessage({ ...request, approvals: [evidence('bob')] })).rejects.toMatchObject({ code: 'device_quorum_refused' });
      await expect(device.signMessage({ ...request, challenge: CHALLENGE + ' (altered)', approvals: [evidence('bob'), evidence('carol')] })).rejects.toMatchObject({ code: 'device_quorum_refused' });
    } finally {
      await device.close();
    }
  });

  it('when the quorum approves, then every key signs and the report verifies with ethers and bitcoinjs-message', async () => {
    for (const p of proposals) {
      if (p.pool === 'client-b') await approve(p.proposal, 'bob');
      const done = await approve(p.proposal, 'carol');
      expect(done.body.state).toBe('applied');
    }
    const out = join(stack.dataDir, 'control-report.json');
    const report = await stack.cli(['attest', 'report', ...proposals.map((p) => p.proposal), '--out', out, '--url', stack.gateway.url, '--token', stack.tokens.auditor]);
    expect(report.code).toBe(0);
    const written = JSON.parse(readFileSync(out, 'utf8')) as { challenge: string; proofs: { pool: string; chain: string; address: string; format: string; message: string; signature: string }[] };
    expect(written.challenge).toBe(CHALLENGE);
    const keys = stack.ceremony.pools.flatMap((p) => p.keys.map((k) => `${p.id} ${k.chain} ${k.address}`)).sort();
    expect(written.proofs.map((p) => `${p.pool} ${p.chain} ${p.address}`).sort()).toEqual(keys);
    for (const proof of written.proofs) {
      expect(proof.message).toBe(CHALLENGE);
      if (proof.format === 'eip191') expect(verifyMessage(proof.message, proof.signature)).toBe(proof.address);
      else {
        expect(proof.format).toBe('bitcoin-message');
        expect(bitcoinMessage.verify(proof.message, proof.address, proof.signature, undefined, true)).toBe(true);
        expect(bitcoinMessage.verify(proof.message + '!', proof.address, proof.signature, undefined, true)).toBe(false);
      }
    }
    const audit = await stack.cli(['audit', 'verify']);
    expect(audit.code).toBe(0);
  });

  it('when the challenge is not printable text, then it is refused before anything is proposed', async () => {
    const bad = await stack.api('POST', '/v1/pools/client-a/attest-control', admins.alice as string, { challenge: 'line\u0000feed' });
    expect(bad.status).toBe(400);
    expect(bad.body.code).toBe('invalid_challenge');
    const cli = await stack.cli(['attest', 'control', '--challenge', ' leading space', '--url', stack.gateway.url, '--token', admins.alice as string]);
    expect(cli.code).not.toBe(0);
    expect(cli.stderr).toMatch(/printable text/);
  });
});
