// 2. Footprint of the node plugin as the chart runs it (charts/s3fs-csi defaults: node mode, the
// mounter, built-in registration, recovery on against an API, V8 flags from node.v8, the compile cache
// the image bakes): start → GetPluginInfo, start → Probe ready, RSS idle and after 1,000 RPCs, peak
// RSS — beside a bare `node` process (the floor any Node.js program pays) in the same run — and what
// each dependency costs when loaded alone into a bare process.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { packageRoot } from '../../src/paths.js';
import { startDriver, type DriverProcess } from '../../test/harness/driver.js';
import { startMounter, type MounterProcess } from '../../test/harness/mounter.js';
import { chartNodeArgs, chartNodeOptions } from '../lib/chart.js';
import { rssMiB, startProcess, timeCommand } from '../lib/procs.js';
import { nowMs, pairRatio, stat } from '../lib/stats.js';
import { startStubApi } from '../lib/stubapi.js';
import type { BenchContext, Row, SectionResult } from '../lib/types.js';

const SECTION = 'footprint';
const run = promisify(execFile);

const RPCS: [Parameters<DriverProcess['call']>[0], string][] = [
  ['Identity', 'GetPluginInfo'],
  ['Identity', 'Probe'],
  ['Node', 'NodeGetCapabilities'],
  ['Node', 'NodeGetInfo'],
];

/** The goals of issue 15, printed beside the figures. */
const GOALS = { idleMiB: 80, afterMiB: 100, startMs: 200 };

/** Each dependency loaded alone into a bare Node process (same flags and compile cache as the driver). */
const DEPENDENCIES = ['@grpc/grpc-js', '@grpc/proto-loader', 'pino', 'prom-client', 'fastify', 'commander', '@kubernetes/client-node', '@aws-sdk/client-s3'];
// ESM `node -e`: the dependency named by argv[1] (none: the floor), its load time, then RSS once settled.
const LOAD_ONE = [
  'const t = performance.now();',
  'if (process.argv[1]) await import(process.argv[1]);',
  'const ms = performance.now() - t;',
  'await new Promise((r) => setTimeout(r, 500));',
  "const status = (await import('node:fs')).readFileSync('/proc/self/status', 'utf8');",
  'console.log(JSON.stringify({ ms, rss: Number(/VmRSS:\\s+(\\d+)/.exec(status)[1]) / 1024 }));',
].join('\n');

async function status(pid: number | undefined): Promise<{ rss: number; hwm: number }> {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string): number => Number(new RegExp(`${k}:\\s+(\\d+)\\s+kB`).exec(text)?.[1] ?? Number.NaN) / 1024;
    return { rss: kb('VmRSS'), hwm: kb('VmHWM') };
  } catch {
    return { rss: Number.NaN, hwm: Number.NaN };
  }
}

interface Started {
  driver: DriverProcess;
  /** spawn → GetPluginInfo answered. */
  servingMs: number;
  /** spawn → Probe ready (everything loaded, start-up recovery done). */
  readyMs: number;
  stop: () => Promise<void>;
}

async function startChartDriver(ctx: BenchContext, o: { dir: string; mounter: MounterProcess; kubeletDir: string; kubeconfig: string; env: Record<string, string>; recovery: boolean }): Promise<Started> {
  const dir = await mkdtemp(join(o.dir, 'node-'));
  await mkdir(join(dir, 'registration'));
  const socketPath = join(dir, 'csi.sock');
  const t0 = nowMs();
  const driver = await startDriver({
    dir,
    mode: 'node',
    waitReady: false,
    env: o.env,
    args: chartNodeArgs({ dir, kubeletDir: o.kubeletDir, socketPath, mounterSocket: o.mounter.socketPath, kubeconfig: o.kubeconfig, recovery: o.recovery }),
  });
  if (driver.proc.pid) ctx.cleanup.pids.push(driver.proc.pid);
  const stop = ctx.cleanup.add('driver (footprint)', () => driver.cleanup());
  let servingMs = Number.NaN;
  for (;;) {
    if (driver.proc.exitCode !== null) throw new Error(`driver exited: ${driver.logs.slice(-5).join('\n')}`);
    if (nowMs() - t0 > 30_000) throw new Error('driver did not answer GetPluginInfo within 30 s');
    if (existsSync(driver.socketPath)) {
      try {
        await driver.call('Identity', 'GetPluginInfo', {}, 2000);
        servingMs = nowMs() - t0;
        break;
      } catch {
        // socket bound but not answering yet
      }
    }
    await sleep(2);
  }
  for (;;) {
    if (nowMs() - t0 > 60_000) throw new Error(`driver not ready within 60 s: ${driver.logs.slice(-5).join('\n')}`);
    const probe = await driver.call<{ ready?: { value: boolean } }>('Identity', 'Probe', {}, 5000).catch(() => undefined);
    if (probe && probe.ready?.value !== false) break;
    await sleep(5);
  }
  return { driver, servingMs, readyMs: nowMs() - t0, stop };
}

export async function footprintSection(ctx: BenchContext): Promise<SectionResult> {
  const reps = ctx.pick(5, 2, 1);
  const depReps = ctx.pick(3, 1, 0);
  const rpcs = ctx.pick(1000, 1000, 40);
  const concurrency = 10;
  const settleMs = ctx.pick(3000, 1500, 200);
  const nodeOptions = chartNodeOptions();
  const dir = await mkdtemp(join(ctx.workDir, 'footprint-'));

  // The image's compile cache (Dockerfile): filled by the same command, used through bin/s3fs-csi.
  const cacheDir = join(dir, 'compile-cache');
  await run(process.execPath, [join(packageRoot, 'dist', 'src', 'compile-cache.js')], { env: { ...process.env, S3FS_CSI_COMPILE_CACHE: cacheDir, NODE_OPTIONS: nodeOptions } });
  const env = { S3FS_CSI_COMPILE_CACHE: cacheDir, NODE_OPTIONS: nodeOptions };

  const api = await startStubApi(dir);
  ctx.cleanup.add('stub API', () => api.close());
  const kubeletDir = join(dir, 'kubelet');
  await mkdir(kubeletDir, { recursive: true });
  const mounter = await startMounter({ dir });
  ctx.cleanup.process('mounter (footprint)', mounter.pid);

  const servingMs: number[] = [];
  const readyMs: number[] = [];
  const nodeStartMs: number[] = [];
  const idle: number[] = [];
  const idleNoRecovery: number[] = [];
  const peak: number[] = [];
  const bare: number[] = [];
  const after: number[] = [];
  const loads: string[] = [];
  let usedRpcs: string[] = [];

  await timeCommand(process.execPath, ['-e', '0']); // warm the page cache for both
  for (let i = 0; i < reps; i++) {
    nodeStartMs.push((await timeCommand(process.execPath, ['-e', '0'])).ms);
    const s = await startChartDriver(ctx, { dir, mounter, kubeletDir, kubeconfig: api.kubeconfig, env, recovery: true });
    servingMs.push(s.servingMs);
    readyMs.push(s.readyMs);
    try {
      const b = startProcess(process.execPath, ['-e', 'setTimeout(() => {}, 600000)']);
      const stopBare = ctx.cleanup.process('bare node', b.proc.pid);
      await sleep(settleMs);
      const st = await status(s.driver.proc.pid);
      idle.push(st.rss);
      peak.push(st.hwm);
      bare.push(await rssMiB(b.proc.pid));
      await stopBare();
      const mix: typeof RPCS = [];
      for (const rpc of RPCS) {
        if (await s.driver.call(rpc[0], rpc[1], {}, 5000).then(() => true, () => false)) mix.push(rpc);
      }
      usedRpcs = mix.map(([svc, m]) => `${svc}.${m}`);
      let next = 0;
      const worker = async (): Promise<void> => {
        while (next < rpcs) {
          const k = next++;
          const [svc, method] = mix[k % mix.length] ?? ['Identity', 'Probe'];
          await s.driver.call(svc, method, {}, 10_000);
        }
      };
      await Promise.all(Array.from({ length: concurrency }, worker));
      await sleep(Math.min(settleMs, 1000));
      after.push(await rssMiB(s.driver.proc.pid));
    } finally {
      await s.stop();
    }
    // The same without recovery: no @kubernetes/client-node in the process.
    const n = await startChartDriver(ctx, { dir, mounter, kubeletDir, kubeconfig: api.kubeconfig, env, recovery: false });
    try {
      await sleep(settleMs);
      idleNoRecovery.push(await rssMiB(n.driver.proc.pid));
    } finally {
      await n.stop();
    }
    ctx.log(`footprint rep ${i + 1}/${reps}: GetPluginInfo ${s.servingMs.toFixed(0)} ms, ready ${s.readyMs.toFixed(0)} ms, idle ${idle[i]?.toFixed(1)} MiB (no recovery ${idleNoRecovery[i]?.toFixed(1)}), peak ${peak[i]?.toFixed(1)}, after ${rpcs} RPCs ${after[i]?.toFixed(1)} MiB; bare node ${bare[i]?.toFixed(1)} MiB, node -e 0 ${nodeStartMs[i]?.toFixed(0)} ms`);
  }
  const loadavg = (await readFile('/proc/loadavg', 'utf8')).split(' ').slice(0, 3).join(' ');
  loads.push(loadavg);
  const goal = (n: number, unit: string): string => `goal ≤ ${n} ${unit}`;
  const rows: Row[] = [
    { metric: 'start → GetPluginInfo answered (chart defaults)', note: goal(GOALS.startMs, 'ms'), unit: 'ms', better: 'lower', ours: stat(servingMs), peer: { label: 'bare `node -e 0` (floor)', stat: stat(nodeStartMs) }, ratio: pairRatio(servingMs, nodeStartMs) },
    { metric: 'start → Probe ready (all loaded, start-up recovery read the API)', unit: 'ms', better: 'lower', ours: stat(readyMs), peer: { label: 'bare `node -e 0` (floor)', stat: stat(nodeStartMs) }, ratio: pairRatio(readyMs, nodeStartMs) },
    { metric: 'RSS idle (chart defaults, recovery on)', note: goal(GOALS.idleMiB, 'MiB'), unit: 'MiB', better: 'lower', ours: stat(idle), peer: { label: 'bare node process (floor)', stat: stat(bare) }, ratio: pairRatio(idle, bare) },
    { metric: 'RSS idle, recovery off (no @kubernetes/client-node)', unit: 'MiB', better: 'lower', ours: stat(idleNoRecovery), peer: { label: 'bare node process (floor)', stat: stat(bare) }, ratio: pairRatio(idleNoRecovery, bare) },
    { metric: 'peak RSS during start-up (VmHWM, recovery on)', unit: 'MiB', better: 'lower', ours: stat(peak), peer: { label: 'bare node process (floor)', stat: stat(bare) }, ratio: pairRatio(peak, bare) },
    { metric: `RSS after ${rpcs} RPCs (${concurrency} clients)`, note: `${goal(GOALS.afterMiB, 'MiB')}; ${usedRpcs.join(' ')}`, unit: 'MiB', better: 'lower', ours: stat(after), peer: { label: 'the same driver idle', stat: stat(idle) }, ratio: pairRatio(after, idle) },
  ];

  // What each dependency costs on its own: RSS of a bare process that loaded it, and its load time.
  const deps: Record<string, { ms: number[]; rss: number[] }> = {};
  const bareRss: number[] = [];
  for (let i = 0; i < depReps; i++) {
    for (const dep of ['', ...DEPENDENCIES]) {
      const r = await timeCommand(process.execPath, ['--input-type=module', '-e', LOAD_ONE, ...(dep ? [dep] : [])], { cwd: packageRoot });
      if (r.code !== 0) throw new Error(`loading ${dep || 'nothing'} failed: ${r.stderr.slice(0, 300)}`);
      const { ms, rss } = JSON.parse(r.stdout) as { ms: number; rss: number };
      if (!dep) {
        bareRss.push(rss);
        continue;
      }
      (deps[dep] ??= { ms: [], rss: [] }).ms.push(ms);
      deps[dep].rss.push(rss);
    }
  }
  for (const dep of DEPENDENCIES) {
    const d = deps[dep];
    if (!d) continue;
    rows.push({
      metric: `${dep} loaded alone`, note: `load ${stat(d.ms).median.toFixed(0)} ms (median)`, unit: 'MiB', better: 'lower',
      ours: stat(d.rss), peer: { label: 'bare node process (floor)', stat: stat(bareRss) }, ratio: pairRatio(d.rss, bareRss),
    });
  }
  return {
    section: SECTION,
    status: 'ok',
    rows,
    details: { reps, rpcs, usedRpcs, concurrency, nodeOptions, goals: GOALS, servingMs, readyMs, nodeStartMs, idle, idleNoRecovery, peak, bare, after, deps, bareRss, loadavg: loads, apiRequests: api.requests() },
  };
}
