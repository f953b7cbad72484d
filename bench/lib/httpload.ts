// A closed-loop HTTP load generator: `concurrency` workers each send GET requests back to back over
// keep-alive connections for a bounded duration. Used identically against both probe endpoints.
import { Agent, request } from 'node:http';
import { nowMs, percentiles } from './stats.js';

export interface LoadResult {
  requests: number;
  errors: number;
  rps: number;
  p50: number;
  p99: number;
}

function get(agent: Agent, url: URL): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent, method: 'GET', timeout: 10_000 }, (res) => {
      res.resume();
      res.once('end', () => resolve(res.statusCode ?? 0));
      res.once('error', reject);
    });
    req.once('timeout', () => req.destroy(new Error('timeout')));
    req.once('error', reject);
    req.end();
  });
}

export async function httpLoad(url: string, concurrency: number, durationMs: number): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const target = new URL(url);
  const latencies: number[] = [];
  let errors = 0;
  const start = nowMs();
  const until = start + durationMs;
  const worker = async (): Promise<void> => {
    while (nowMs() < until) {
      const t0 = nowMs();
      try {
        const code = await get(agent, target);
        if (code !== 200) errors++;
        else latencies.push(nowMs() - t0);
      } catch {
        errors++;
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  const elapsed = nowMs() - start;
  agent.destroy();
  const { p50, p99 } = percentiles(latencies);
  return { requests: latencies.length, errors, rps: (latencies.length / elapsed) * 1000, p50, p99 };
}
