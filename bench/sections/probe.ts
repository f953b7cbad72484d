// 1. Liveness probing: the driver's built-in /healthz (one long-lived connection to its own socket)
// against the livenessprobe sidecar pointed at the same socket (a fresh connection per request, as
// v2.19.0 does; bench/peers/livenessprobe when the real one is not served) — throughput at fixed
// concurrency, p50/p99 — the exec form (`s3fs-csi probe`, Node's HTTP/2, vs grpcurl), and the
// memory each costs. Goals of issue 15: /healthz ≥ 1.5× the sidecar's req/s with p99 ≤ its p99;
// exec probe ≤ 2× grpcurl.
import { setTimeout as sleep } from 'node:timers/promises';
import { packageRoot } from '../../src/paths.js';
import { binPath } from '../../test/harness/driver.js';
import { chartNodeOptions } from '../lib/chart.js';
import { benchDriver } from '../lib/drivers.js';
import { freePort, waitFor } from '../../test/harness/net.js';
import { httpLoad, type LoadResult } from '../lib/httpload.js';
import { rssMiB, startProcess, timeCommand } from '../lib/procs.js';
import { pairRatio, stat } from '../lib/stats.js';
import { grpcurlBin, livenessProbePeer } from '../lib/tools.js';
import { na, type BenchContext, type Row, type SectionResult } from '../lib/types.js';

const SECTION = 'probe';

export async function probeSection(ctx: BenchContext): Promise<SectionResult> {
  const peer = livenessProbePeer();
  const grpcurl = grpcurlBin();
  if (!peer || !grpcurl) return na(SECTION, 'peers missing: run scripts/install-tools.sh peers (make bench does)');
  const concurrency = ctx.pick(8, 8, 2);
  const durationMs = ctx.pick(5000, 2000, 300);
  const reps = ctx.pick(5, 2, 1);
  const execCalls = ctx.pick(10, 4, 1);
  const rows: Row[] = [];

  // The node plugin with the chart's V8 flags (node.v8), as it runs in its pod.
  const { driver, stop: stopDriver } = await benchDriver(ctx, 'driver (probe)', { mode: 'node', args: ['--probe-timeout', '3s'], env: { NODE_OPTIONS: chartNodeOptions() } });
  const port = await freePort();
  const side = startProcess(peer.bin, [`--csi-address=${driver.socketPath}`, `--http-endpoint=127.0.0.1:${port}`, '--probe-timeout=3s']);
  const stopSide = ctx.cleanup.process('livenessprobe', side.proc.pid);
  try {
    const oursUrl = `http://127.0.0.1:${driver.httpPort}/healthz`;
    const peerUrl = `http://127.0.0.1:${port}/healthz`;
    await waitFor('the livenessprobe sidecar', async () => {
      if (side.proc.exitCode !== null) throw new Error(`sidecar exited: ${side.output()}`);
      const r = await fetch(peerUrl, { signal: AbortSignal.timeout(2000) });
      return r.status === 200 ? true : undefined;
    }, 20_000, 100);
    const sideIdle = await rssMiB(side.proc.pid);

    // Warm-up (JIT, connection pools), then alternate who goes first so drift hits both alike.
    await httpLoad(oursUrl, concurrency, Math.min(1000, durationMs));
    await httpLoad(peerUrl, concurrency, Math.min(1000, durationMs));
    const ours: LoadResult[] = [];
    const theirs: LoadResult[] = [];
    for (let i = 0; i < reps; i++) {
      if (i % 2 === 0) {
        ours.push(await httpLoad(oursUrl, concurrency, durationMs));
        theirs.push(await httpLoad(peerUrl, concurrency, durationMs));
      } else {
        theirs.push(await httpLoad(peerUrl, concurrency, durationMs));
        ours.push(await httpLoad(oursUrl, concurrency, durationMs));
      }
      ctx.log(`probe rep ${i + 1}/${reps}: ours ${ours[i]?.rps.toFixed(0)} req/s, peer ${theirs[i]?.rps.toFixed(0)} req/s`);
    }
    const errors = [...ours, ...theirs].reduce((n, r) => n + r.errors, 0);
    const pick = (rs: LoadResult[], k: 'rps' | 'p50' | 'p99'): number[] => rs.map((r) => r[k]);
    const add = (metric: string, unit: string, better: Row['better'], a: number[], b: number[], label = peer.label): void => {
      rows.push({ metric, unit, better, ours: stat(a), peer: { label, stat: stat(b) }, ratio: pairRatio(a, b) });
    };
    add(`/healthz throughput, ${concurrency} clients, ${durationMs / 1000}s`, 'req/s', 'higher', pick(ours, 'rps'), pick(theirs, 'rps'));
    add('/healthz latency p50', 'ms', 'lower', pick(ours, 'p50'), pick(theirs, 'p50'));
    add('/healthz latency p99', 'ms', 'lower', pick(ours, 'p99'), pick(theirs, 'p99'));
    const sideLoaded = await rssMiB(side.proc.pid);
    const driverLoaded = await rssMiB(driver.proc.pid);

    // Exec form: one process per call, as kubelet runs an exec probe.
    const oursExec: number[] = [];
    const grpcExec: number[] = [];
    const sock = driver.socketPath;
    const runOurs = () => timeCommand(process.execPath, [binPath, 'probe', '--endpoint', `unix://${sock}`]);
    // grpcurl v1.9.3's `-unix <path>` form dials TCP ("missing port in address"); the unix:// target works.
    const runGrpcurl = () => timeCommand(grpcurl, ['-plaintext', '-import-path', 'proto', '-proto', 'csi.proto', `unix://${sock}`, 'csi.v1.Identity/Probe'], { cwd: packageRoot });
    for (const f of [runOurs, runGrpcurl]) {
      const r = await f();
      if (r.code !== 0) throw new Error(`exec probe failed (${r.code}): ${r.stderr.slice(0, 300)}`);
    }
    for (let i = 0; i < reps; i++) {
      const a: number[] = [];
      const b: number[] = [];
      for (let j = 0; j < execCalls; j++) {
        a.push((await runOurs()).ms);
        b.push((await runGrpcurl()).ms);
      }
      oursExec.push(stat(a).median);
      grpcExec.push(stat(b).median);
    }
    add('exec probe wall time per call', 'ms', 'lower', oursExec, grpcExec, 'grpcurl v1.9.3');

    // Memory: the sidecar is a whole extra process; ours is the HTTP server inside the driver,
    // estimated as the RSS difference between two fresh idle drivers with and without HTTP.
    const { driver: withHttp, stop: stopWithHttp } = await benchDriver(ctx, 'driver (http)', { mode: 'node' });
    const { driver: noHttp, stop: stopNoHttp } = await benchDriver(ctx, 'driver (no http)', { mode: 'node', args: ['--http-endpoint', '', '--health-port', '0'] });
    await withHttp.http('/healthz');
    await sleep(ctx.pick(2000, 1000, 200));
    const withHttpIdle = await rssMiB(withHttp.proc.pid);
    const withoutHttp = await rssMiB(noHttp.proc.pid);
    await stopNoHttp();
    await stopWithHttp();
    rows.push({
      metric: 'memory the probe costs (RSS)',
      unit: 'MiB',
      better: 'lower',
      ours: stat([Math.max(0, withHttpIdle - withoutHttp)]),
      peer: { label: `${peer.label} process`, stat: stat([sideLoaded]) },
      ratio: pairRatio([Math.max(0, withHttpIdle - withoutHttp)], [sideLoaded]),
      note: 'ours = idle driver RSS with HTTP minus without; theirs = sidecar RSS after the load',
    });
    return {
      section: SECTION,
      status: 'ok',
      rows,
      details: {
        concurrency, durationMs, reps, execCalls, errors, peer,
        ours, theirs, oursExec, grpcExec,
        rssMiB: { sidecarIdle: sideIdle, sidecarAfterLoad: sideLoaded, driverAfterLoad: driverLoaded, driverWithHttpIdle: withHttpIdle, driverWithoutHttp: withoutHttp },
      },
    };
  } finally {
    await stopSide();
    await stopDriver();
  }
}
