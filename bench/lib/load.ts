// A closed loop of `total` operations spread over `concurrency` workers; ops/s and latencies.
import { nowMs, percentiles } from './stats.js';

export interface LoopResult {
  ops: number;
  errors: number;
  opsPerSec: number;
  p50: number;
  p99: number;
  firstError?: string;
}

export async function closedLoop(total: number, concurrency: number, op: (i: number) => Promise<unknown>): Promise<LoopResult> {
  let next = 0;
  let errors = 0;
  let firstError: string | undefined;
  const lat: number[] = [];
  const t0 = nowMs();
  const worker = async (): Promise<void> => {
    while (next < total) {
      const i = next++;
      const s = nowMs();
      try {
        await op(i);
        lat.push(nowMs() - s);
      } catch (err) {
        errors++;
        firstError ??= (err as Error).message;
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
  const elapsed = nowMs() - t0;
  const { p50, p99 } = percentiles(lat);
  return { ops: lat.length, errors, opsPerSec: (lat.length / elapsed) * 1000, p50, p99, firstError };
}
