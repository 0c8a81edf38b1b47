/**
 * Fault injection for reliability tests (docs/reliability.md): added latency before each answer,
 * error replies, dropped connections without an answer, and a crash right after the Nth signature has
 * been made but before it is sent (the outcome the gateway must treat as unknown). Off by default; set
 * with `hsm-sim --fault-latency MS --fault-error-rate P --fault-drop-rate P --crash-after-signs N`.
 * PING and LOGIN are never faulted, so a faulty device can still be reached and unlocked.
 */
export interface FaultPlan {
  readonly latencyMs: number;
  /** Probability (0-1) that a request is answered INTERNAL without being carried out. */
  readonly errorRate: number;
  /** Probability (0-1) that the connection is closed instead of carrying out and answering. */
  readonly dropRate: number;
  /** Exit the process right after making this many signatures, before answering the last one. */
  readonly crashAfterSigns: number | null;
}

export const NO_FAULTS: FaultPlan = { latencyMs: 0, errorRate: 0, dropRate: 0, crashAfterSigns: null };

export const FAULT_FLAGS = ['fault-latency', 'fault-error-rate', 'fault-drop-rate', 'crash-after-signs'] as const;

/** The fault plan named by the command line flags; an error message for a bad value. */
export function parseFaultFlags(flags: Readonly<Record<string, string | undefined>>): FaultPlan | string {
  const rate = (name: string): number | string => {
    const v = flags[name];
    if (v === undefined) return 0;
    const n = Number(v);
    return /^(0|1|0?\.[0-9]+)$/.test(v) && n >= 0 && n <= 1 ? n : `--${name} must be a probability between 0 and 1, got "${v}"`;
  };
  const count = (name: string, max: number): number | string | null => {
    const v = flags[name];
    if (v === undefined) return null;
    return /^[0-9]{1,7}$/.test(v) && Number(v) <= max ? Number(v) : `--${name} must be a whole number up to ${max}, got "${v}"`;
  };
  const latency = count('fault-latency', 600_000);
  const errorRate = rate('fault-error-rate');
  const dropRate = rate('fault-drop-rate');
  const crash = count('crash-after-signs', 1_000_000);
  for (const v of [latency, errorRate, dropRate, crash]) if (typeof v === 'string') return v;
  if (crash === 0) return '--crash-after-signs must be at least 1';
  return { latencyMs: (latency as number | null) ?? 0, errorRate: errorRate as number, dropRate: dropRate as number, crashAfterSigns: crash as number | null };
}

export type FaultDecision = 'proceed' | 'error' | 'drop';

/** What to do with one request, drawn from the plan (`random` is injectable for tests). */
export function decideFault(plan: FaultPlan, random: () => number = Math.random): FaultDecision {
  if (plan.dropRate > 0 && random() < plan.dropRate) return 'drop';
  if (plan.errorRate > 0 && random() < plan.errorRate) return 'error';
  return 'proceed';
}
