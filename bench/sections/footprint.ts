// 2. Footprint of the node plugin: RSS idle and after 1,000 RPCs, and the time from process start to
// GetPluginInfo answering — against the floor any Node.js process pays (bare `node`).
import { existsSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { startDriver, type DriverProcess } from '../../test/harness/driver.js';
import { rssMiB, startProcess, timeCommand } from '../lib/procs.js';
import { nowMs, pairRatio, stat } from '../lib/stats.js';
import type { BenchContext, Row, SectionResult } from '../lib/types.js';

const SECTION = 'footprint';

const RPCS: [Parameters<DriverProcess['call']>[0], string][] = [
  ['Identity', 'GetPluginInfo'],
  ['Identity', 'Probe'],
  ['Node', 'NodeGetCapabilities'],
  ['Node', 'NodeGetInfo'],
];

async function startTimed(ctx: BenchContext): Promise<{ driver: DriverProcess; ms: number; stop: () => Promise<void> }> {
  const t0 = nowMs();
  const driver = await startDriver({ mode: 'node', waitReady: false });
  if (driver.proc.pid) ctx.cleanup.pids.push(driver.proc.pid);
  const stop = ctx.cleanup.add('driver (footprint)', () => driver.cleanup());
  for (;;) {
    if (driver.proc.exitCode !== null) throw new Error(`driver exited: ${driver.logs.slice(-5).join('\n')}`);
    if (nowMs() - t0 > 20_000) throw new Error('driver did not answer GetPluginInfo within 20 s');
    if (existsSync(driver.socketPath)) {
      try {
        await driver.call('Identity', 'GetPluginInfo', {}, 2000);
        return { driver, ms: nowMs() - t0, stop };
      } catch {
        // socket bound but not serving yet
      }
    }
    await sleep(2);
  }
}

export async function footprintSection(ctx: BenchContext): Promise<SectionResult> {
  const reps = ctx.pick(5, 2, 1);
  const rpcs = ctx.pick(1000, 1000, 40);
  const concurrency = 10;
  const settleMs = ctx.pick(3000, 1500, 200);
  const startMs: number[] = [];
  const nodeStartMs: number[] = [];
  const idle: number[] = [];
  const bare: number[] = [];
  const after: number[] = [];
  let usedRpcs: string[] = [];

  await timeCommand(process.execPath, ['-e', '0']); // warm the page cache for both
  for (let i = 0; i < reps; i++) {
    nodeStartMs.push((await timeCommand(process.execPath, ['-e', '0'])).ms);
    const { driver, ms, stop } = await startTimed(ctx);
    startMs.push(ms);
    try {
      const b = startProcess(process.execPath, ['-e', 'setTimeout(() => {}, 600000)']);
      const stopBare = ctx.cleanup.process('bare node', b.proc.pid);
      await sleep(settleMs);
      idle.push(await rssMiB(driver.proc.pid));
      bare.push(await rssMiB(b.proc.pid));
      await stopBare();
      // Node RPCs join the mix once the node service answers them.
      const mix: typeof RPCS = [];
      for (const rpc of RPCS) {
        if (await driver.call(rpc[0], rpc[1], {}, 5000).then(() => true, () => false)) mix.push(rpc);
      }
      usedRpcs = mix.map(([s, m]) => `${s}.${m}`);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < rpcs) {
          const k = next++;
          const [svc, method] = mix[k % mix.length] ?? ['Identity', 'Probe'];
          await driver.call(svc, method, {}, 10_000);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      await sleep(Math.min(settleMs, 1000));
      after.push(await rssMiB(driver.proc.pid));
      ctx.log(`footprint rep ${i + 1}/${reps}: start ${ms.toFixed(0)} ms, idle ${idle[i]?.toFixed(1)} MiB, after ${rpcs} RPCs ${after[i]?.toFixed(1)} MiB`);
    } finally {
      await stop();
    }
  }
  const rows: Row[] = [
    { metric: 'start → GetPluginInfo answered (node mode)', unit: 'ms', better: 'lower', ours: stat(startMs), peer: { label: 'bare `node -e 0` (floor)', stat: stat(nodeStartMs) }, ratio: pairRatio(startMs, nodeStartMs) },
    { metric: 'RSS idle (node mode)', unit: 'MiB', better: 'lower', ours: stat(idle), peer: { label: 'bare node process (floor)', stat: stat(bare) }, ratio: pairRatio(idle, bare) },
    { metric: `RSS after ${rpcs} RPCs (${concurrency} clients)`, note: usedRpcs.join(' '), unit: 'MiB', better: 'lower', ours: stat(after), peer: { label: 'the same driver idle', stat: stat(idle) }, ratio: pairRatio(after, idle) },
  ];
  return { section: SECTION, status: 'ok', rows, details: { reps, rpcs, usedRpcs, concurrency, startMs, nodeStartMs, idle, bare, after } };
}
