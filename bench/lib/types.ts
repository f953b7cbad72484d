// What a section returns: rows of ours-vs-peer (or ours-vs-limit) measurements.
import type { Cleanup } from './cleanup.js';
import type { Stat } from './stats.js';

export interface Row {
  /** What is measured, e.g. "/healthz requests/s (c=8)". */
  metric: string;
  unit: string;
  /** Which direction is better, so the table can say who wins. */
  better: 'lower' | 'higher';
  ours: Stat;
  /** The peer or the limit this row is compared with. */
  peer?: { label: string; stat: Stat };
  /** ours / peer, pair by pair. */
  ratio?: Stat;
  note?: string;
}

export interface SectionResult {
  section: string;
  status: 'ok' | 'n/a' | 'failed';
  /** Why n/a or failed. */
  reason?: string;
  rows: Row[];
  /** Raw numbers and settings, written to JSON only. */
  details?: Record<string, unknown>;
  seconds?: number;
}

export interface Settings {
  /** `make bench QUICK=1`: fewer repetitions, smaller data (under 3 minutes in all). */
  quick: boolean;
  /** The smoke test's mode: one tiny repetition of each cheap section (seconds). */
  smoke: boolean;
}

export interface BenchContext {
  settings: Settings;
  cleanup: Cleanup;
  /** A scratch directory removed at the end (mounts under it are unmounted first). */
  workDir: string;
  log(msg: string): void;
  /** Pick a value by mode. */
  pick<T>(full: T, quick: T, smoke: T): T;
}

export type Section = (ctx: BenchContext) => Promise<SectionResult>;

export const na = (section: string, reason: string): SectionResult => ({ section, status: 'n/a', reason, rows: [] });
