/**
 * `custody ceremony run PLAN.json [--out TRANSCRIPT.json] [--json]` (SPEC sections 7 and 9):
 * non-interactive, progress on stderr, the pools with their keys on stdout.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { parseCeremonyPlan } from '../domain/ceremony-plan.js';
import { ValidationError } from '../../common/errors.js';
import { openDevices, openStore } from '../main.js';
import { runCeremony, type Transcript } from '../service/run-ceremony.js';
import { verifyTranscript, type TranscriptCheck } from '../service/verify-transcript.js';
import { action, emit } from './output.js';

export function readJsonFile(path: string, what: string): { text: string; json: unknown } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ValidationError('file_unreadable', `cannot read ${what} ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  try {
    return { text, json: JSON.parse(text) };
  } catch {
    throw new ValidationError('invalid_json', `${what} ${path} is not valid JSON`);
  }
}

export function ceremonySummary(transcript: Transcript): { pools: { id: string; keys: { chain: string; address: string; publicKey: string }[] }[] } {
  return {
    pools: transcript.pools.map((p) => ({ id: p.id, keys: p.keys.map((k) => ({ chain: k.chain, address: k.address, publicKey: k.publicKey })) })),
  };
}

export function registerCeremony(program: Command): void {
  const ceremony = program.command('ceremony').description('key ceremonies');
  ceremony
    .command('run')
    .description('enroll approvers, bind pools and generate their keys inside the device, and write a transcript of the devices\' signed statements')
    .argument('<plan>', 'ceremony plan JSON')
    .option('--out <file>', 'write the transcript here')
    .option('--json', 'print JSON')
    .action(
      action(async (planPath: string, opts: { out?: string; json?: boolean }) => {
        const { text, json } = readJsonFile(planPath, 'ceremony plan');
        const plan = parseCeremonyPlan(json);
        const config = loadConfig();
        const store = await openStore(config);
        const devices = openDevices(config);
        try {
          const transcript = await runCeremony(
            { store, devices, now: Date.now, progress: (line) => process.stderr.write(`ceremony: ${line}\n`) },
            plan,
            text,
          );
          if (opts.out) writeFileSync(opts.out, JSON.stringify(transcript, null, 2) + '\n');
          const summary = ceremonySummary(transcript);
          emit(opts, summary, () => [
            ...summary.pools.flatMap((p) => [`pool ${p.id}`, ...p.keys.map((k) => `  ${k.chain}  ${k.address}`)]),
            ...(opts.out ? [`transcript written to ${opts.out}`] : []),
          ]);
        } finally {
          await devices.close();
          await store.close();
        }
      }),
    );

  ceremony
    .command('verify')
    .description("check a ceremony transcript offline: each key's statement signed by its device, addresses, device ids, and the plan with --plan")
    .argument('<transcript>', 'transcript JSON written by ceremony run --out')
    .option('--plan <file>', "also check the plan it was made from: its hash, each pool's approvers, threshold and policy in the device, the admins")
    .option('--device <id>', 'the device that must have attested the keys (its id as recorded at the ceremony)')
    .option('--json', 'print JSON')
    .action(
      action(async (path: string, opts: { plan?: string; device?: string; json?: boolean }) => {
        const { json } = readJsonFile(path, 'transcript');
        const planText = opts.plan ? readJsonFile(opts.plan, 'ceremony plan').text : undefined;
        const result = verifyTranscript(json, { ...(planText !== undefined ? { planText } : {}), ...(opts.device !== undefined ? { device: opts.device } : {}) });
        emit(opts, result, () => verifyLines(result));
        if (!result.ok) process.exitCode = 1;
      }),
    );
}

/** What verify prints: one line for the verdict, then one per unattested key. */
function verifyLines(result: TranscriptCheck): string[] {
  if (!result.ok) return [`transcript does NOT verify: ${result.problem}`];
  return [
    `transcript verifies: ${result.keys} keys, ${result.attested} attested by device ${result.attestedBy.join(', ')}, ${result.unattested.length} unattested`,
    ...result.unattested.map((u) => `  unattested: pool ${u.pool} ${u.chain} on ${u.device} (${u.reason}: only its address was checked against its public key)`),
  ];
}
