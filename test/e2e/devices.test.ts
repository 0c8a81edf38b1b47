/**
 * One gateway, three key devices (test/fixtures/devices-plan.json): the HSM simulator, a real SoftHSM2
 * token over PKCS#11, and a Ledger emulated by `hsm-sim --mode ledger` over Speculos' APDU framing.
 * Each pool's keys are made on its own device and each withdrawal is signed there, checked with
 * ethers, bitcoinjs and @solana/web3.js; GET /v1/devices says what each enforces itself and what rests
 * on the gateway alone; the Ledger's on-device rejection, a signed freeze the Ledger and the token
 * cannot hold, and a down device are seen through the API.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Transaction as EthersTx, verifyMessage } from 'ethers';
import bitcoinMessage from 'bitcoinjs-message';
import { createPublicKey, verify as cryptoVerify } from 'node:crypto';
import { ed25519 } from '@noble/curves/ed25519.js';
import { base58 } from '@scure/base';
import * as bitcoin from 'bitcoinjs-lib';
import * as web3 from '@solana/web3.js';
import pkcs11js from 'pkcs11js';
import { bytesToHex, hexToBytes } from '@noble/hashes/utils.js';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { APPROVER_SECRETS, runCli, signApproval, startStack, type Stack } from '../helpers/gateway-stack.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { startSim, type SimProcess } from '../helpers/sim-process.js';
import { createSoftHsmToken, type SoftHsmToken } from '../helpers/softhsm.js';
import { createSpeculosTransport, type ApduTransport } from '../../src/devices/ledger/transport.js';
import { DEVICE_RULES } from '../../common/sim-protocol.js';
import { SIM_ENFORCES } from '../../hsm-sim/device.js';

const FIXTURE = join(import.meta.dirname, '..', 'fixtures', 'devices-plan.json');
const SEPOLIA = 'eip155:11155111';
const BTC_TESTNET = 'bip122:000000000933ea01ad0ee984209779ba';
const SOLANA_DEVNET = 'solana:EtWTRABZaYq6iMfeYKouRu166VU2xqa1';
const TO = '0x8ba1f109551bD432803012645Ac136ddd64DBA72';

let token: SoftHsmToken;
let ledger: SimProcess;
let ledgerControl: ApduTransport;
let stack: Stack;
let nonce = 0;
let erinKey: string;
let planPath: string;

function keyOf(pool: string, chain = SEPOLIA): { address: string; publicKey: string } {
  const key = stack.ceremony.pools.find((p) => p.id === pool)?.keys.find((k) => k.chain === chain);
  if (!key) throw new Error(`no key of ${pool} on ${chain}`);
  return key;
}

async function withdraw(pool: string, body: Record<string, unknown>) {
  const submitted = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool, ...body });
  expect(submitted.status).toBe(201);
  const id = submitted.body.id as string;
  let last = submitted;
  for (const who of ['alice', 'bob'] as const) {
    last = await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens[who], { signature: signApproval(submitted.body.approvalMessage as string, who), decision: 'approve' });
    expect(last.status).toBe(200);
  }
  return last.body;
}

const bs58Decode = (text: string) => base58.decode(text);
function signGovernance(message: string, who: string): string {
  return bytesToHex(ed25519.sign(new TextEncoder().encode(message), hexToBytes(APPROVER_SECRETS[who] as string)));
}

const ethBody = () => ({ chain: SEPOLIA, asset: 'ETH', amount: '1000000000000000', to: TO, nonce: String(nonce++), gasLimit: '21000', maxFeePerGas: '20000000000', maxPriorityFeePerGas: '1000000000' });

beforeAll(async () => {
  token = createSoftHsmToken();
  ledger = await startSim({ args: ['--mode', 'ledger'] });
  ledgerControl = createSpeculosTransport({ port: ledger.port, timeoutMs: 5_000 });
  // erin approves with a Ledger: the plan gets the key her device reports (custody approver ledger-key).
  const ledgerKey = await runCli(['approver', 'ledger-key', '--json'], { LEDGER_URL: `tcp://127.0.0.1:${ledger.port}` });
  if (ledgerKey.code !== 0) throw new Error(`approver ledger-key failed: ${ledgerKey.stderr}`);
  erinKey = (JSON.parse(ledgerKey.stdout) as { publicKey: string }).publicKey;
  const plan = JSON.parse(readFileSync(FIXTURE, 'utf8')) as { approvers: { id: string; publicKey: string }[]; pools: { id: string; approvers: string[] }[] };
  plan.approvers.push({ id: 'erin', publicKey: erinKey });
  plan.pools.find((p) => p.id === 'hsm-pool')?.approvers.push('erin');
  planPath = join(mkdtempSync(join(tmpdir(), 'devices-plan-')), 'plan.json');
  writeFileSync(planPath, JSON.stringify(plan));
  stack = await startStack({
    plan: planPath,
    env: { PKCS11_MODULE: token.module, PKCS11_TOKEN_LABEL: token.tokenLabel, PKCS11_PIN: token.pin, SOFTHSM2_CONF: token.conf, LEDGER_URL: `tcp://127.0.0.1:${ledger.port}` },
  });
}, 120_000);

afterAll(async () => {
  await stack?.close();
  await ledgerControl?.close();
  await ledger?.stop();
  token?.cleanup();
});

describe('a pool per backend in one gateway', () => {
  it('when the ceremony ran, then each pool\'s keys live on its own device and GET /v1/devices shows all three up, with what each enforces and what rests on the gateway alone', async () => {
    const res = await stack.api('GET', '/v1/devices', stack.tokens.auditor);
    expect(res.status).toBe(200);
    const devices = res.body.devices as { type: string; status: string; id: string; checksQuorum: boolean; keys: { pool: string; chain: string; device: string }[] }[];
    expect(devices.map((d) => [d.type, d.status, d.checksQuorum])).toEqual([['sim', 'ok', true], ['ledger', 'ok', false], ['pkcs11', 'ok', false]]);
    const poolsOn = (type: string) => [...new Set(devices.find((d) => d.type === type)?.keys.map((k) => k.pool))];
    expect(poolsOn('sim')).toEqual(['hsm-pool']);
    expect(poolsOn('ledger')).toEqual(['ledger-pool']);
    expect(poolsOn('pkcs11')).toEqual(['token-pool']);
    for (const d of devices) for (const k of d.keys) expect(k.device).toBe(d.id);
    const rules = Object.fromEntries((res.body.devices as { type: string; enforces: string[]; gatewayOnly: string[] }[]).map((d) => [d.type, { enforces: d.enforces, gatewayOnly: d.gatewayOnly }]));
    expect(rules.sim).toEqual({ enforces: DEVICE_RULES.filter((r) => SIM_ENFORCES.includes(r)), gatewayOnly: DEVICE_RULES.filter((r) => !SIM_ENFORCES.includes(r)) });
    expect(rules.sim?.enforces).toEqual(expect.arrayContaining(['quorum', 'quorum-tier', 'allowlist', 'velocity', 'timelock', 'freeze', 'sign-once', 'governance']));
    expect(rules.ledger).toEqual({ enforces: [], gatewayOnly: [...DEVICE_RULES] });
    expect(rules.pkcs11).toEqual({ enforces: [], gatewayOnly: [...DEVICE_RULES] });
    expect((await stack.api('GET', '/v1/devices', stack.tokens.requester)).status).toBe(403);
    expect((await stack.api('GET', '/readyz', null)).status).toBe(200);
  });

  it('when the transcript is verified, then the simulator\'s keys are attested and the Ledger\'s and the token\'s are listed unattested', async () => {
    const out = join(stack.dataDir, 'devices-transcript.json');
    expect((await stack.cli(['ceremony', 'run', planPath, '--out', out])).code).toBe(0);
    const transcript = JSON.parse(readFileSync(out, 'utf8')) as { devices: { id: string; type: string; attestation: unknown }[]; pools: { id: string; keys: { attestation: unknown }[] }[] };
    expect(transcript.devices.map((d) => [d.type, d.attestation !== null])).toEqual([['sim', true], ['pkcs11', false], ['ledger', false]]);
    expect(transcript.pools.map((p) => [p.id, p.keys.map((k) => k.attestation !== null)])).toEqual([
      ['hsm-pool', [true]],
      ['token-pool', [false, false, false]],
      ['ledger-pool', [false]],
    ]);
    const sim = transcript.devices[0]!.id;
    const tokenId = transcript.devices[1]!.id;
    const ledgerId = transcript.devices[2]!.id;
    const verified = await stack.cli(['ceremony', 'verify', out, '--plan', planPath, '--device', sim]);
    expect(verified.code).toBe(0);
    expect(verified.stdout.split('\n')).toEqual([
      `transcript verifies: 5 keys, 1 attested by device ${sim}, 4 unattested`,
      `  unattested: pool token-pool ${SEPOLIA} on ${tokenId} (a PKCS#11 token has no attestation key: only its address was checked against its public key)`,
      `  unattested: pool token-pool ${BTC_TESTNET} on ${tokenId} (a PKCS#11 token has no attestation key: only its address was checked against its public key)`,
      `  unattested: pool token-pool ${SOLANA_DEVNET} on ${tokenId} (a PKCS#11 token has no attestation key: only its address was checked against its public key)`,
      `  unattested: pool ledger-pool ${SEPOLIA} on ${ledgerId} (a Ledger has no attestation key: only its address was checked against its public key)`,
      '',
    ]);
  });

  it('when each pool withdraws ETH, then each transaction is signed by that pool\'s own key (ethers recovers three different senders)', async () => {
    const senders: string[] = [];
    for (const pool of ['hsm-pool', 'token-pool', 'ledger-pool']) {
      const w = await withdraw(pool, ethBody());
      expect(w.state).toBe('signed');
      const tx = EthersTx.from(w.signedTx as string);
      expect(tx.from).toBe(keyOf(pool).address);
      expect(tx.hash).toBe(w.txHash);
      senders.push(tx.from as string);
    }
    expect(new Set(senders).size).toBe(3);
  });

  it('when the PKCS#11 pool withdraws BTC and SOL, then bitcoinjs and web3.js verify the token\'s signatures', async () => {
    const btcKey = keyOf('token-pool', BTC_TESTNET);
    const btc = await withdraw('token-pool', { chain: BTC_TESTNET, asset: 'BTC', amount: '1000000', to: 'tb1qw508d6qejxtdg4y5r3zarvary0c5xw7kxpjzsx', utxos: [{ txid: bytesToHex(randomBytes(32)), vout: 0, value: '3000000' }], feeRate: '5' });
    expect(btc.state).toBe('signed');
    const tx = bitcoin.Transaction.fromHex(btc.signedTx as string);
    const pub = hexToBytes(btcKey.publicKey);
    const sighash = tx.hashForWitnessV0(0, bitcoin.payments.p2pkh({ pubkey: pub }).output as Uint8Array, 3_000_000n, bitcoin.Transaction.SIGHASH_ALL);
    const [sig] = tx.ins[0]!.witness as Uint8Array[];
    expect(secp256k1.verify((sig as Uint8Array).slice(0, -1), sighash, pub, { prehash: false, format: 'der', lowS: true })).toBe(true);

    const sol = await withdraw('token-pool', { chain: SOLANA_DEVNET, asset: 'SOL', amount: '25000', to: 'FDwkzWGxx6LfCfzcmVVLEk3QUMxNhuFuKEMRwzR4Dtys', recentBlockhash: 'J2BjKU6L83eehHVgoze6uTXGCBu6nbxsqEro9QvWpU52' });
    expect(sol.state).toBe('signed');
    const solTx = web3.Transaction.from(Buffer.from(sol.signedTx as string, 'base64'));
    expect(solTx.verifySignatures()).toBe(true);
    expect(solTx.feePayer?.toBase58()).toBe(keyOf('token-pool', SOLANA_DEVNET).address);
  });

  it('when another process looks at the token, then every pool private key is sensitive and was never extractable', () => {
    const lib = new pkcs11js.PKCS11();
    lib.load(token.module);
    lib.C_Initialize();
    try {
      const slot = lib.C_GetSlotList(true).find((s) => lib.C_GetTokenInfo(s).label.trim() === token.tokenLabel);
      if (!slot) throw new Error('token not found');
      const session = lib.C_OpenSession(slot, pkcs11js.CKF_SERIAL_SESSION);
      lib.C_Login(session, pkcs11js.CKU_USER, token.pin);
      lib.C_FindObjectsInit(session, [{ type: pkcs11js.CKA_CLASS, value: pkcs11js.CKO_PRIVATE_KEY }]);
      const keys = lib.C_FindObjects(session, 100);
      lib.C_FindObjectsFinal(session);
      expect(keys.length).toBe(3);
      for (const key of keys) {
        const [label, sensitive, extractable, never] = lib.C_GetAttributeValue(session, key, [
          { type: pkcs11js.CKA_LABEL }, { type: pkcs11js.CKA_SENSITIVE }, { type: pkcs11js.CKA_EXTRACTABLE }, { type: pkcs11js.CKA_NEVER_EXTRACTABLE },
        ]);
        expect(String(label?.value)).toMatch(/^custody:token-pool:/);
        expect([sensitive?.value, extractable?.value, never?.value].map((v) => (v as Buffer)[0])).toEqual([1, 0, 1]);
        expect(() => lib.C_GetAttributeValue(session, key, [{ type: pkcs11js.CKA_VALUE }])).toThrow(/CKR_ATTRIBUTE_SENSITIVE/);
      }
      lib.C_Logout(session);
      lib.C_CloseSession(session);
    } finally {
      lib.C_Finalize();
    }
  });

  it('when erin approves on her Ledger with custody approve --ledger, then the simulator accepts her EIP-191 approval and signs; refused on the device, nothing is posted', async () => {
    expect(erinKey).toMatch(/^0[23][0-9a-f]{64}$/);
    const created = await stack.cli(['token', 'create', '--role', 'approver', '--name', 'erin', '--json']);
    const erinToken = (JSON.parse(created.stdout) as { token: string }).token;
    const approveOnLedger = (id: string) =>
      stack.cli(['approve', id, '--ledger', '--token', erinToken, '--url', stack.gateway.url, '--json'], { LEDGER_URL: `tcp://127.0.0.1:${ledger.port}` });

    const refused = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool: 'hsm-pool', ...ethBody() });
    expect(Buffer.from(await ledgerControl.exchange(Uint8Array.of(0xf0, 0x01, 0x00, 0x00, 0x00))).toString('hex')).toBe('9000');
    const no = await approveOnLedger(refused.body.id as string);
    expect(no.code).not.toBe(0);
    expect(no.stderr).toMatch(/rejected on the device|refused on the device|rejected/i);
    expect(((await stack.api('GET', `/v1/withdrawals/${refused.body.id as string}`, stack.tokens.requester)).body.approvals as unknown[]).length).toBe(0);

    const submitted = await stack.api('POST', '/v1/withdrawals', stack.tokens.requester, { pool: 'hsm-pool', ...ethBody() });
    const id = submitted.body.id as string;
    await stack.api('POST', `/v1/withdrawals/${id}/approvals`, stack.tokens.alice, { signature: signApproval(submitted.body.approvalMessage as string, 'alice'), decision: 'approve' });
    const yes = await approveOnLedger(id);
    expect(yes.code).toBe(0);
    expect(JSON.parse(yes.stdout)).toMatchObject({ id, decision: 'approve', state: 'signed' });
    const w = await stack.api('GET', `/v1/withdrawals/${id}`, stack.tokens.requester);
    expect(EthersTx.from(w.body.signedTx as string).from).toBe(keyOf('hsm-pool').address);
  });

  it('when the admin quorum approves a proof of control, then the PKCS#11 and Ledger keys sign it in their chains\' formats and the signatures verify', async () => {
    const adminToken = async (who: string) => (JSON.parse((await stack.cli(['token', 'create', '--role', 'admin', '--name', who, '--json'])).stdout) as { token: string }).token;
    const approvers = { bob: await adminToken('bob'), carol: await adminToken('carol') };
    const challenge = 'reserves check 2026-11-25 #42';
    for (const pool of ['token-pool', 'ledger-pool']) {
      const proposed = await stack.api('POST', `/v1/pools/${pool}/attest-control`, stack.tokens.admin, { challenge });
      expect(proposed.status).toBe(201);
      let last = proposed;
      for (const [who, token] of Object.entries(approvers)) {
        last = await stack.api('POST', `/v1/proposals/${proposed.body.id as string}/approvals`, token, { signature: signGovernance(proposed.body.approvalMessage as string, who), decision: 'approve' });
      }
      expect(last.body.state).toBe('applied');
      const proofs = last.body.proofs as { chain: string; address: string; format: string; signature: string; message: string }[];
      expect(proofs.map((p) => p.chain).sort()).toEqual(stack.ceremony.pools.find((p) => p.id === pool)!.keys.map((k) => k.chain).sort());
      for (const proof of proofs) {
        if (proof.format === 'eip191') expect(verifyMessage(challenge, proof.signature)).toBe(proof.address);
        else if (proof.format === 'bitcoin-message') expect(bitcoinMessage.verify(challenge, proof.address, proof.signature, undefined, true)).toBe(true);
        else {
          const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), Buffer.from(new web3.PublicKey(proof.address).toBytes())]);
          expect(cryptoVerify(null, Buffer.from(challenge), createPublicKey({ key: spki, format: 'der', type: 'spki' }), Buffer.from(bs58Decode(proof.signature)))).toBe(true);
        }
      }
    }
  });

  it('when an admin signs the freeze of the PKCS#11 and Ledger pools, then the gateway freezes them and says their devices hold no freeze', async () => {
    const adminToken = async (who: string) => (JSON.parse((await stack.cli(['token', 'create', '--role', 'admin', '--name', who, '--json'])).stdout) as { token: string }).token;
    const voters = { bob: await adminToken('bob'), carol: await adminToken('carol') };
    for (const pool of ['token-pool', 'ledger-pool']) {
      const message = (await stack.api('GET', `/v1/pools/${pool}`, stack.tokens.admin)).body.freezeMessage as string;
      const frozen = await stack.api('POST', `/v1/pools/${pool}/freeze`, stack.tokens.admin, { signature: signGovernance(message, 'alice') });
      expect(frozen.status).toBe(200);
      expect(frozen.body.status).toBe('frozen');
      expect(frozen.body.freeze).toMatchObject({ signed: true, deviceFrozen: false });
      for (const d of (frozen.body.freeze as { devices: { frozen: boolean; reason: string }[] }).devices) {
        expect(d).toEqual({ device: expect.any(String), frozen: false, reason: "this device holds no freeze: only the gateway's freeze stops it signing" });
      }
      const unfreeze = await stack.api('POST', `/v1/pools/${pool}/unfreeze`, stack.tokens.admin, {});
      let last = unfreeze;
      for (const [who, token] of Object.entries(voters)) {
        last = await stack.api('POST', `/v1/proposals/${unfreeze.body.id as string}/approvals`, token, { signature: signGovernance(unfreeze.body.approvalMessage as string, who), decision: 'approve' });
      }
      expect(last.body.state).toBe('applied');
    }
  });

  it('when the person at the Ledger rejects the transaction, then the request fails with that reason and nothing is signed', async () => {
    expect(Buffer.from(await ledgerControl.exchange(Uint8Array.of(0xf0, 0x01, 0x00, 0x00, 0x00))).toString('hex')).toBe('9000');
    const w = await withdraw('ledger-pool', ethBody());
    expect(w.state).toBe('failed');
    expect(w.signedTx).toBeUndefined();
    expect((w.reasons as { code: string }[]).map((r) => r.code)).toEqual(['ledger_rejected_on_device']);
  });

  it('when the Ledger goes away, then readyz says which device is down; back, and it is ready again', async () => {
    await ledgerControl.close();
    await ledger.kill('SIGKILL');
    const down = await stack.api('GET', '/readyz', null);
    expect(down.status).toBe(503);
    expect((down.body.devices as { type: string; status: string }[]).map((d) => [d.type, d.status])).toEqual([['sim', 'ok'], ['ledger', 'down'], ['pkcs11', 'ok']]);
    ledger = await startSim({ args: ['--mode', 'ledger'], dataDir: ledger.dataDir, pin: ledger.pin, port: ledger.port });
    expect((await stack.api('GET', '/readyz', null)).status).toBe(200);
  });
});
