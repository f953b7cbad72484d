// Summaries of repeated measurements: median with min/max, percentiles of one latency distribution,
// and the ratio to a peer taken pair by pair (run i of ours against run i of the peer).

export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  const a = sorted[lo] ?? Number.NaN;
  const b = sorted[hi] ?? Number.NaN;
  return a + (b - a) * (pos - lo);
}

export function stat(samples: readonly number[]): Stat {
  const s = samples.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  return { median: quantile(s, 0.5), min: s[0] ?? Number.NaN, max: s[s.length - 1] ?? Number.NaN, n: s.length };
}

/** ours[i] / peer[i] for every pair, summarised. */
export function pairRatio(ours: readonly number[], peer: readonly number[]): Stat {
  const n = Math.min(ours.length, peer.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) {
    const a = ours[i];
    const b = peer[i];
    if (a !== undefined && b !== undefined && b !== 0) r.push(a / b);
  }
  return stat(r);
}

export function percentiles(samples: readonly number[]): { p50: number; p99: number } {
  const s = [...samples].sort((a, b) => a - b);
  return { p50: quantile(s, 0.5), p99: quantile(s, 0.99) };
}

/** Nanosecond clock in milliseconds. */
export const nowMs = (): number => Number(process.hrtime.bigint()) / 1e6;

export async function timed<T>(fn: () => Promise<T>): Promise<{ ms: number; value: T }> {
  const t0 = nowMs();
  const value = await fn();
  return { ms: nowMs() - t0, value };
}
