/**
 * Test harness: a process started as the leader of a process group of its own, so that stopping it
 * reaches every process it started in turn (`npm start` starts the simulator as its child). A stop
 * waits until the whole group has exited, so the next test can bind the same ports and open the same
 * data; groups still alive when the test process exits are killed.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const live = new Set<number>();
process.once('exit', () => {
  for (const pgid of live) signalGroup(pgid, 'SIGKILL');
});

export interface GroupExit {
  /** The leader's exit status, or null when a signal ended it. */
  readonly code: number | null;
  /** True when some process of the group had to be killed because it was still running after the grace period. */
  readonly killed: boolean;
}

export function spawnGroup(command: string, args: readonly string[], options: SpawnOptions): ChildProcess {
  const child = spawn(command, args, { ...options, detached: true });
  if (child.pid !== undefined) live.add(child.pid);
  return child;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch {
    // the group has no process left
  }
}

/**
 * Whether a process of group `pgid` is still running. On Linux a zombie waiting for its reaper
 * counts as exited (an orphaned child is reaped by PID 1, which in a container may take seconds).
 */
function groupRunning(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
  } catch {
    return false;
  }
  if (process.platform !== 'linux') return true;
  for (const entry of readdirSync('/proc')) {
    if (!/^[0-9]+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so fields count from the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(pgrp) === pgid && state !== 'Z') return true;
  }
  return false;
}

async function groupGone(pgid: number, withinMs: number): Promise<boolean> {
  const deadline = Date.now() + withinMs;
  while (groupRunning(pgid)) {
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 50));
  }
  return true;
}

function leaderExit(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((r) => child.once('exit', (code) => r(code)));
}

/**
 * Sends `signal` to the leader only, as `kill PID` would, and waits for every process of its group
 * to exit; whatever still runs after `graceMs` is killed.
 */
export async function stopGroup(child: ChildProcess, signal: NodeJS.Signals = 'SIGTERM', graceMs = 15_000): Promise<GroupExit> {
  const pgid = child.pid;
  if (pgid === undefined) return { code: child.exitCode, killed: false };
  const exited = leaderExit(child);
  if (child.exitCode === null && child.signalCode === null) child.kill(signal);
  const clean = await groupGone(pgid, graceMs);
  if (!clean) await killGroup(child);
  const code = await exited;
  live.delete(pgid);
  return { code, killed: !clean };
}

/** Kills every process of the group at once and waits until they have exited. */
export async function killGroup(child: ChildProcess): Promise<void> {
  const pgid = child.pid;
  if (pgid === undefined) return;
  signalGroup(pgid, 'SIGKILL');
  if (!(await groupGone(pgid, 10_000))) throw new Error(`process group ${pgid} still runs 10 s after SIGKILL`);
  await leaderExit(child);
  live.delete(pgid);
}
