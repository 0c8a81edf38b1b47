/**
 * Red team, the device side: a compromised gateway that holds the simulator PIN and speaks the wire
 * protocol directly (test/helpers/raw-sim-link.ts) against the real simulator process, trying to get a
 * signature for something the approvers' messages do not say. What this file tries, each kept as a
 * refusal the device gives today:
 *
 * - the same transaction in another spelling (hex case, base64 without padding, URL-safe base64);
 * - approval messages that parse to the same fields but are not the canonical text (unicode escapes,
 *   duplicate keys, `1.0`, `__proto__`), or that one rogue approver signs twice;
 * - Ethereum: EIP-2930 and EIP-4844 types, access lists, pre-EIP-155 legacy, trailing bytes, a
 *   contract creation, ETH sent with an ERC-20 approve, an ERC-20 transfer with extra call data, a
 *   known ERC-20 selector relabelled in `call.function`, two approvals declaring different functions;
 * - Bitcoin: P2WPKH and P2TR inputs of the same key mixed, change to the key's other address type,
 *   a duplicate input, a non-witness-only input, version 1, a lock time, an odd sequence, an explicit
 *   SIGHASH_ALL on P2TR, a Taproot script tree, a pre-signed input;
 * - Solana: a v0 message with a lookup table, a second signer slot with the pool as fee payer, a
 *   duplicated account key, a durable nonce;
 * - another pool's key under its own name with approvals naming the first pool.
 *
 * Attacks that succeeded are not here (they are in the red-team report).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as web3 from '@solana/web3.js';
import { canonicalize } from 'json-canonicalize';
import { Transaction as EthersTx, getAddress } from 'ethers';
import { Transaction as MicroTx } from 'micro-eth-signer';
import { secp256k1 } from '@noble/curves/secp256k1.js';
import { ed25519 } from '@noble/curves/ed25519.js';
import { keccak_256 } from '@noble/hashes/sha3.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { bytesToHex, hexToBytes, utf8ToBytes } from '@noble/hashes/utils.js';
import { base58, base64 } from '@scure/base';
import { SigHash, Transaction as BtcTx } from '@scure/btc-signer';
import { canonicalApprovalMessage, type ApprovalMessage } from '../../../common/approval-message.js';
import { decodeTransaction } from '../../../common/chains/adapters.js';
import { btcNetwork, poolOutput } from '../../../common/chains/bitcoin/address.js';
import { Status, type ApprovalRecord, type KeyRecord } from '../../../common/sim-protocol.js';
import {
  BTC_DESTINATION,
  ETH_DESTINATION,
  SEPOLIA,
  SOL_BLOCKHASH,
  SOL_DESTINATION,
  approval,
  bitcoinTx,
  ethereumTx,
  messageFor,
  solanaTx,
  utxo,
  type TestTransaction,
} from '../../hsm-sim/fixtures.js';
import { expectRefused, expectSigned, startDeviceUnderAttack, type DeviceUnderAttack } from './device-under-attack.js';

let device: DeviceUnderAttack;
beforeAll(async () => {
  device = await startDeviceUnderAttack();
});
afterAll(async () => {
  await device?.stop();
});

const ATTACKER_ETH = getAddress('0x' + 'ba'.repeat(20));
const TOKEN = getAddress('0x1c7d4b196cb0c7b01d743fbc6116a902379c7238');
const RBF = 0xfffffffd;
const both = (m: ApprovalMessage | string): ApprovalRecord[] => [approval('alice', m), approval('bob', m)];
const signWith = (key: KeyRecord, unsignedTx: string, approvals: readonly ApprovalRecord[], poolId = 'pool-a') =>
  device.link.sign({ handle: key.handle, poolId, unsignedTx, approvals });

/** A message whose fields are the shared decoder's reading of `unsignedTx` (no pool key): what a careful forger writes. */
function decodedMessage(chain: string, unsignedTx: string, functions: string[] = [], over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  const d = decodeTransaction(chain, unsignedTx, null, { functions });
  const tx: TestTransaction = { chain, unsignedTx, asset: d.asset, amount: d.amount, to: d.to, maxFee: d.maxFee, digest: d.digest, ...(d.call ? { call: d.call } : {}) };
  return messageFor(tx, over);
}

/** A message that states whatever the forger likes about bytes the decoder may not read. */
function statedMessage(tx: TestTransaction, over: Partial<ApprovalMessage> = {}): ApprovalMessage {
  return messageFor(tx, over);
}

describe('the same transaction spelled differently', () => {
  it('when the approvals carry the lowercase hex and SIGN sends the uppercase hex of the same Ethereum transaction, then TRANSACTION_MISMATCH and no signature', async () => {
    const tx = ethereumTx({ nonce: 40n });
    const upper = '0x' + tx.unsignedTx.slice(2).toUpperCase();
    expectRefused(await signWith(device.poolA.eth, upper, both(messageFor(tx))), Status.TRANSACTION_MISMATCH, /approves another transaction/);
  });

  it('when the approvals carry the PSBT and SIGN sends it without base64 padding or in the URL-safe alphabet, then no signature (BAD_REQUEST or TRANSACTION_MISMATCH)', async () => {
    const tx = bitcoinTx(device.hex(device.poolA.btc), { utxos: [utxo(5_000_001n)] });
    const variants = [tx.unsignedTx.replace(/=+$/, ''), tx.unsignedTx.replace(/\+/g, '-').replace(/\//g, '_'), tx.unsignedTx + '\n'].filter((v) => v !== tx.unsignedTx);
    expect(variants.length).toBeGreaterThan(0);
    for (const v of variants) {
      const answer = await signWith(device.poolA.btc, v, both(messageFor(tx)));
      expect(answer.result).toBeNull();
      expect(['BAD_REQUEST', 'TRANSACTION_MISMATCH']).toContain(answer.statusName);
    }
  });
});

describe('approval messages that read the same but are not the canonical text', () => {
  const tx = ethereumTx({ nonce: 41n });
  const m = messageFor(tx);
  const canonical = canonicalApprovalMessage(m);
  const forms: [string, string][] = [
    ['a unicode escape in a value', canonical.replace('"approve"', '"\\u0061pprove"')],
    ['a duplicated key (JSON.parse keeps the last)', canonical.replace('"amount":', `"amount":"1","amount":`)],
    ['policyVersion written 1.0', canonical.replace('"policyVersion":1', '"policyVersion":1.0')],
    ['an extra "__proto__" member', canonical.replace('{', '{"__proto__":{"x":1},')],
    ['a space after a colon', canonical.replace('"kind":', '"kind": ')],
  ];
  for (const [what, text] of forms) {
    it(`when both approvals sign the message with ${what}, then QUORUM_REFUSED and no signature`, async () => {
      expect(text).not.toBe(canonical);
      expectRefused(await signWith(device.poolA.eth, tx.unsignedTx, both(text)), Status.QUORUM_REFUSED);
    });
  }

  it('when one rogue approver signs two messages of the same request that differ only in policyVersion and timelock, then QUORUM_REFUSED: she counts once', async () => {
    const second = { ...m, policyVersion: 2, timelock: '1h' };
    expectRefused(await signWith(device.poolA.eth, tx.unsignedTx, [approval('alice', m), approval('alice', second)]), Status.QUORUM_REFUSED, /counted already/);
  });

  it('when bob (an approver of pool A and pool B) signs a message naming pool B for pool A\'s key, then QUORUM_REFUSED', async () => {
    expectRefused(await signWith(device.poolA.eth, tx.unsignedTx, [approval('alice', m), approval('bob', { ...m, pool: 'pool-b' })]), Status.QUORUM_REFUSED, /names pool pool-b, not pool-a/);
  });
});

describe('Ethereum encodings the device does not sign', () => {
  const fees = { maxFeePerGas: 30_000_000_000n, maxPriorityFeePerGas: 1_000_000_000n };
  const bad = (unsignedTx: string): TestTransaction => ({ chain: SEPOLIA, unsignedTx, asset: 'ETH', amount: 1000n, to: ETH_DESTINATION, maxFee: 630_000_000_000_000n, digest: keccak_256(hexToBytes(unsignedTx.slice(2))) });
  const cases: [string, () => string, RegExp][] = [
    ['an EIP-2930 (type 1) transaction', () => EthersTx.from({ type: 1, chainId: 11155111n, nonce: 1, to: ETH_DESTINATION, value: 1000n, gasLimit: 21_000n, gasPrice: 30_000_000_000n, accessList: [] }).unsignedSerialized, /type 0x01/],
    ['an EIP-4844-looking (type 3) envelope', () => '0x03' + EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, to: ETH_DESTINATION, value: 1000n, gasLimit: 21_000n, ...fees }).unsignedSerialized.slice(4), /type 0x03/],
    [
      'an EIP-1559 transaction with an access list (storage keys the device does not show)',
      () => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, to: ETH_DESTINATION, value: 1000n, gasLimit: 30_000n, ...fees, accessList: [{ address: TOKEN, storageKeys: ['0x' + '00'.repeat(32)] }] }).unsignedSerialized,
      /access list/,
    ],
    ['a pre-EIP-155 legacy transaction (replayable on every chain)', () => EthersTx.from({ type: 0, nonce: 1, to: ETH_DESTINATION, value: 1000n, gasLimit: 21_000n, gasPrice: 30_000_000_000n }).unsignedSerialized, /no chain id|chain id/],
    ['a contract creation', () => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, value: 0n, gasLimit: 100_000n, ...fees, data: '0x6000' }).unsignedSerialized, /contract creation/],
    ['trailing bytes after the RLP list', () => ethereumTx({ nonce: 42n }).unsignedTx + '00', /cannot be decoded|canonical/],
    [
      'an ERC-20 approve that also sends ETH',
      () => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, to: TOKEN, value: 5n, gasLimit: 60_000n, ...fees, data: '0x095ea7b3' + ATTACKER_ETH.slice(2).toLowerCase().padStart(64, '0') + '1'.padStart(64, '0') }).unsignedSerialized,
      /sends ETH together with an ERC-20/,
    ],
    [
      'an ERC-20 transfer with 32 extra bytes of call data',
      () => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, to: TOKEN, value: 0n, gasLimit: 60_000n, ...fees, data: '0xa9059cbb' + ETH_DESTINATION.slice(2).toLowerCase().padStart(64, '0') + '1'.padStart(64, '0') + ATTACKER_ETH.slice(2).toLowerCase().padStart(64, '0') }).unsignedSerialized,
      /exactly 68 bytes/,
    ],
    [
      'an ERC-20 transfer whose recipient word has dirty high bytes',
      () => EthersTx.from({ type: 2, chainId: 11155111n, nonce: 1, to: TOKEN, value: 0n, gasLimit: 60_000n, ...fees, data: '0xa9059cbb' + 'ff'.repeat(12) + ETH_DESTINATION.slice(2).toLowerCase() + '1'.padStart(64, '0') }).unsignedSerialized,
      /clean address word/,
    ],
  ];
  for (const [what, make, why] of cases) {
    it(`when the transaction is ${what}, then BAD_REQUEST and no signature`, async () => {
      const unsignedTx = make();
      expectRefused(await signWith(device.poolA.eth, unsignedTx, both(statedMessage(bad(unsignedTx)))), Status.BAD_REQUEST, why);
    });
  }

  it('when the message relabels ERC-20 approve\'s arguments in "call.function" (spender called "recipientRefund"), then TRANSACTION_MISMATCH on "call": every reader decodes approve by its one known signature', async () => {
    const data = '095ea7b3' + ATTACKER_ETH.slice(2).toLowerCase().padStart(64, '0') + 'f'.repeat(64);
    const unsignedTx = '0x' + bytesToHex(MicroTx.prepare({ type: 'eip1559', chainId: 11155111n, nonce: 43n, gasLimit: 60_000n, ...fees, to: TOKEN, value: 0n, data, accessList: [] }, false).toBytes({ includeSignature: false }));
    const honest = decodedMessage(SEPOLIA, unsignedTx);
    const relabelled: ApprovalMessage = { ...honest, call: { ...honest.call!, function: 'approve(address recipientRefund, uint256 value)', args: [{ name: 'recipientRefund', type: 'address', value: ATTACKER_ETH }, { name: 'value', type: 'uint256', value: ((1n << 256n) - 1n).toString() }] } };
    expectRefused(await signWith(device.poolA.eth, unsignedTx, both(relabelled)), Status.TRANSACTION_MISMATCH, /"call" says/);
  });

  it('when the two approvals declare two different functions for one selector, then the device refuses to pick one (BAD_REQUEST, ambiguous) and signs nothing', async () => {
    const selector = bytesToHex(keccak_256(utf8ToBytes('deposit(address,uint256)')).subarray(0, 4));
    const data = selector + ETH_DESTINATION.slice(2).toLowerCase().padStart(64, '0') + (1000).toString(16).padStart(64, '0');
    const unsignedTx = '0x' + bytesToHex(MicroTx.prepare({ type: 'eip1559', chainId: 11155111n, nonce: 44n, gasLimit: 60_000n, ...fees, to: TOKEN, value: 0n, data, accessList: [] }, false).toBytes({ includeSignature: false }));
    const a = decodedMessage(SEPOLIA, unsignedTx, ['deposit(address to, uint256 amount)']);
    const b = decodedMessage(SEPOLIA, unsignedTx, ['deposit(address from, uint256 amount)'], { requestId: a.requestId });
    expectRefused(await signWith(device.poolA.eth, unsignedTx, [approval('alice', a), approval('bob', b)]), Status.BAD_REQUEST, /share selector/);
  });
});

describe('Bitcoin PSBTs the device does not sign', () => {
  const script = (type: 'p2wpkh' | 'p2tr' = 'p2wpkh') => poolOutput(device.poolA.btc.publicKey, type, 'regtest').script;
  type In = { script?: Uint8Array; value?: bigint; txid?: string; index?: number; sequence?: number; extra?: Record<string, unknown>; noWitness?: boolean };
  function psbt(inputs: In[], outputs: { address?: string; script?: Uint8Array; value: bigint }[], opts: { version?: number; lockTime?: number } = {}): string {
    const tx = new BtcTx({ version: opts.version ?? 2, lockTime: opts.lockTime ?? 0, allowUnknownOutputs: true, allowUnknownInputs: true, disableScriptCheck: true });
    for (const i of inputs) {
      tx.addInput({
        txid: i.txid ?? utxo(1n).txid,
        index: i.index ?? 0,
        sequence: i.sequence ?? RBF,
        ...(i.noWitness ? {} : { witnessUtxo: { script: i.script ?? script(), amount: i.value ?? 3_000_000n } }),
      });
    }
    for (const o of outputs) {
      if (o.address) tx.addOutputAddress(o.address, o.value, btcNetwork('regtest'));
      else tx.addOutput({ script: o.script as Uint8Array, amount: o.value });
    }
    // Extra fields last: a partial signature with SIGHASH_ALL would forbid adding outputs after it.
    inputs.forEach((i, n) => {
      if (i.extra) tx.updateInput(n, i.extra as Parameters<BtcTx['updateInput']>[1], true);
    });
    return base64.encode(tx.toPSBT());
  }
  const looks = (unsignedTx: string, amount = 1_000_000n): TestTransaction => ({ chain: device.poolA.btc.chain, unsignedTx, asset: 'BTC', amount, to: BTC_DESTINATION, maxFee: 10_000n, digest: new Uint8Array(32).fill(1) });
  const expectNoSignature = async (unsignedTx: string, why: RegExp) => expectRefused(await signWith(device.poolA.btc, unsignedTx, both(statedMessage(looks(unsignedTx)))), Status.BAD_REQUEST, why);

  it('when a PSBT mixes the key\'s P2WPKH and P2TR outputs (the amount of the P2WPKH one is not committed by a Taproot sighash of it), then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{ script: script('p2wpkh') }, { script: script('p2tr') }], [{ address: BTC_DESTINATION, value: 5_990_000n }]), /input 1 does not spend the pool's own P2WPKH output/);
    await expectNoSignature(psbt([{ script: script('p2tr') }, { script: script('p2wpkh') }], [{ address: BTC_DESTINATION, value: 5_990_000n }]), /input 1 does not spend the pool's own P2TR output/);
  });

  it('when "change" goes to the same key\'s other address type besides the payment, then BAD_REQUEST: that is a second payment, not change', async () => {
    await expectNoSignature(psbt([{}], [{ address: BTC_DESTINATION, value: 1_000_000n }, { script: script('p2tr'), value: 1_990_000n }]), /pays 2/);
  });

  it('when the same outpoint is spent twice (its amount counted twice in the fee), then BAD_REQUEST', async () => {
    const txid = utxo(1n).txid;
    await expectNoSignature(psbt([{ txid, index: 3 }, { txid, index: 3 }], [{ address: BTC_DESTINATION, value: 5_990_000n }]), /twice/);
  });

  it('when an input carries only a non-witness UTXO (no witness UTXO, so no amount the device can commit to), then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{ noWitness: true }], [{ address: BTC_DESTINATION, value: 1_000_000n }]), /lacks its outpoint or witness UTXO/);
  });

  it('when the version is 1, the lock time is set, or a sequence enables a relative lock time, then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{}], [{ address: BTC_DESTINATION, value: 2_990_000n }], { version: 1 }), /version 1/);
    await expectNoSignature(psbt([{}], [{ address: BTC_DESTINATION, value: 2_990_000n }], { lockTime: 500_000 }), /lock time 500000/);
    await expectNoSignature(psbt([{ sequence: 10 }], [{ address: BTC_DESTINATION, value: 2_990_000n }]), /sequence 0xa/);
  });

  it('when a P2WPKH input asks for SIGHASH_ALL|ANYONECANPAY, or a P2TR input for an explicit SIGHASH_ALL, then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{ extra: { sighashType: SigHash.ALL_ANYONECANPAY } }], [{ address: BTC_DESTINATION, value: 2_990_000n }]), /sighash type/);
    await expectNoSignature(psbt([{ script: script('p2tr'), extra: { sighashType: SigHash.ALL } }], [{ address: BTC_DESTINATION, value: 2_990_000n }]), /sighash type/);
  });

  it('when a P2TR input names a Taproot script tree, or an input already carries a signature, then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{ script: script('p2tr'), extra: { tapMerkleRoot: new Uint8Array(32).fill(5) } }], [{ address: BTC_DESTINATION, value: 2_990_000n }]), /script tree/);
    const fakeSig = new Uint8Array([...secp256k1.sign(new Uint8Array(32).fill(1), new Uint8Array(32).fill(3), { prehash: false, format: 'der' }), 1]);
    await expectNoSignature(psbt([{ extra: { partialSig: [[device.poolA.btc.publicKey, fakeSig]] } }], [{ address: BTC_DESTINATION, value: 2_990_000n }]), /already signed/);
  });

  it('when a PSBT pays an OP_RETURN data carrier instead of an address, then BAD_REQUEST', async () => {
    await expectNoSignature(psbt([{}], [{ address: BTC_DESTINATION, value: 1_000_000n }, { script: new Uint8Array([0x6a, 4, 1, 2, 3, 4]), value: 0n }]), /not a payment to an address/);
  });
});

describe('Solana messages the device does not sign', () => {
  const pool = () => new web3.PublicKey(device.poolA.sol.publicKey);
  const attacker = web3.Keypair.generate().publicKey;
  const looks = (unsignedTx: string): TestTransaction => ({ chain: device.poolA.sol.chain, unsignedTx, asset: 'SOL', amount: 1_500_000_000n, to: SOL_DESTINATION, maxFee: 5000n, digest: sha256(base64.decode(unsignedTx)) });
  const expectNoSignature = async (unsignedTx: string, why: RegExp) => expectRefused(await signWith(device.poolA.sol, unsignedTx, both(statedMessage(looks(unsignedTx)))), Status.BAD_REQUEST, why);
  const transfer = (from: web3.PublicKey, lamports = 1_500_000_000) => web3.SystemProgram.transfer({ fromPubkey: from, toPubkey: new web3.PublicKey(SOL_DESTINATION), lamports });

  it('when the transfer comes as a v0 message with an address lookup table, then BAD_REQUEST', async () => {
    const table = new web3.AddressLookupTableAccount({ key: web3.Keypair.generate().publicKey, state: { deactivationSlot: BigInt('18446744073709551615'), lastExtendedSlot: 0, lastExtendedSlotStartIndex: 0, addresses: [new web3.PublicKey(SOL_DESTINATION)] } });
    const message = new web3.TransactionMessage({ payerKey: pool(), recentBlockhash: SOL_BLOCKHASH, instructions: [transfer(pool())] }).compileToV0Message([table]);
    const wire = Buffer.from(new web3.VersionedTransaction(message).serialize()).toString('base64');
    await expectNoSignature(wire, /version 0 message/);
  });

  it('when the pool is the fee payer but a second signer slot moves the attacker\'s own lamports alongside, then BAD_REQUEST: the pool must be the only signer', async () => {
    const tx = new web3.Transaction({ feePayer: pool(), recentBlockhash: SOL_BLOCKHASH });
    tx.add(transfer(pool()));
    tx.add(web3.SystemProgram.transfer({ fromPubkey: attacker, toPubkey: pool(), lamports: 1 }));
    await expectNoSignature(tx.serialize({ requireAllSignatures: false, verifySignatures: false }).toString('base64'), /signed by the pool alone/);
  });

  it('when the message lists the destination account twice (a duplicate account key), then BAD_REQUEST', async () => {
    const honest = solanaTx(device.hex(device.poolA.sol));
    const bytes = base64.decode(honest.unsignedTx);
    // Wire: [1 sig count][64 sig][3 header][compact n=3][3 keys][32 blockhash][1 ix count][ix]. Append a 4th key equal to key 1.
    const sigEnd = 1 + 64;
    const header = bytes.slice(sigEnd, sigEnd + 3);
    const keys = bytes.slice(sigEnd + 4, sigEnd + 4 + 96);
    const rest = bytes.slice(sigEnd + 4 + 96);
    const forged = new Uint8Array([...bytes.slice(0, sigEnd), header[0]!, header[1]!, header[2]! + 1, 4, ...keys, ...keys.slice(32, 64), ...rest]);
    await expectNoSignature(base64.encode(forged), /cannot be read|canonical|only one System Program|not a Solana transaction/);
  });

  it('when the transfer uses a durable nonce (advance-nonce instruction first) so it never expires, then BAD_REQUEST', async () => {
    const nonceAccount = web3.Keypair.generate().publicKey;
    const tx = new web3.Transaction({ feePayer: pool(), nonceInfo: { nonce: SOL_BLOCKHASH, nonceInstruction: web3.SystemProgram.nonceAdvance({ noncePubkey: nonceAccount, authorizedPubkey: pool() }) } });
    tx.add(transfer(pool()));
    await expectNoSignature(tx.serialize({ requireAllSignatures: false, verifySignatures: false }).toString('base64'), /durable nonce|instructions/);
  });
});

describe('another pool\'s key', () => {
  it('when pool B\'s Solana key is asked under pool B\'s name with alice and bob\'s approvals naming pool A, then QUORUM_REFUSED (alice is not pool B\'s)', async () => {
    const tx = solanaTx(device.hex(device.poolB.sol));
    expectRefused(await signWith(device.poolB.sol, tx.unsignedTx, both(messageFor(tx)), 'pool-b'), Status.QUORUM_REFUSED, /not an enrolled approver of pool pool-b|names pool pool-a/);
  });

  it('when a transfer from pool B\'s Solana address is sent to pool A\'s key with pool A\'s approvals, then BAD_REQUEST (the only signer is not this key)', async () => {
    const tx = solanaTx(device.hex(device.poolB.sol));
    expectRefused(await signWith(device.poolA.sol, tx.unsignedTx, both(messageFor(tx))), Status.BAD_REQUEST, /signed by the pool alone/);
  });

  it('the positive control: pool A\'s honest sets still sign on every chain after the attacks above', async () => {
    const eth = ethereumTx({ nonce: 45n });
    expectSigned(await signWith(device.poolA.eth, eth.unsignedTx, both(messageFor(eth))));
    const btc = bitcoinTx(device.hex(device.poolA.btc));
    expectSigned(await signWith(device.poolA.btc, btc.unsignedTx, both(messageFor(btc))));
    const sol = solanaTx(device.hex(device.poolA.sol), { to: base58.encode(ed25519.getPublicKey(ed25519.utils.randomSecretKey())) });
    expectSigned(await signWith(device.poolA.sol, sol.unsignedTx, both(messageFor(sol))));
    expect(canonicalize({ a: 1 })).toBe('{"a":1}');
  });
});
