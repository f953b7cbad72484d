// 6. Recovery: N volumes staged and published (with their PV/PVC/Pod in a real kube-apiserver), then
// the node plugin, the mounter (when there is one) and every s3fs are killed with SIGKILL, leaving N
// stale FUSE mounts under N targets; the on-disk state (records, passwd files) stays, as it does
// when containers restart. Measured from the new processes' start: when the CSI socket first
// answers (kubelet's calls are served from then on), when every target answers again (the pods have
// their data back), when Probe says ready, and when both are true (the headline figure); for N = 1, 10, 100, 300, in both configurations (s3fs in the node plugin, and s3fs in
// the separate mounter as the chart runs it). The limit beside it, in the same run: the same N s3fs
// command lines started by hand all at once, until every mount answers.
// For experiments: BENCH_RECOVERY_LEVELS (e.g. "1,100"), BENCH_RECOVERY_CONFIGS ("in-process,mounter"), BENCH_RECOVERY_ARGS (extra flags of the restarted node plugin, e.g.
// "--recovery-parallelism 16"), BENCH_RECOVERY_NODE_OPTIONS (e.g. "--cpu-prof --cpu-prof-dir=/tmp/p") and
// BENCH_RECOVERY_LOGS (a directory for the restarted processes' logs).
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { stagingPathFor, targetPathFor } from '../../src/recovery/kubelet-paths.js';
import { startDriver, type DriverProcess } from '../../test/harness/driver.js';
import { startKube } from '../../test/harness/kube.js';
import { type MounterProcess, mounterSocketOf, startMounter } from '../../test/harness/mounter.js';
import { s3fsPidsUnder, unmountUnder } from '../../test/harness/mounts.js';
import { answering } from '../lib/answering.js';
import { killPid } from '../lib/cleanup.js';
import { mountManyByHand } from '../lib/handmount.js';
import { closedLoop } from '../lib/load.js';
import { MOUNT_CAP } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { nowMs, pairRatio, stat } from '../lib/stats.js';
import { type BenchContext, type Row, type SectionResult } from '../lib/types.js';

const SECTION = 'recovery';
const DRIVER = 's3fs.csi.dev';
const NODE = 'test-node';
const NS = 'bench';

type Config = 'in-process' | 'mounter';
const ANSWER_POLL_MS = 100;
const extraArgs = (process.env.BENCH_RECOVERY_ARGS ?? '').split(/\s+/).filter(Boolean);
const nodeOptions = process.env.BENCH_RECOVERY_NODE_OPTIONS;

interface Sample {
  servingMs: number;
  /** Every target answers statfs (checked from the start, not only after ready). */
  answeringMs: number;
  readyMs: number;
  healthyMs: number;
  handMs: number;
  load1: number;
}

export async function recoverySection(ctx: BenchContext): Promise<SectionResult> {
  const levels = process.env.BENCH_RECOVERY_LEVELS ? process.env.BENCH_RECOVERY_LEVELS.split(',').map(Number) : ctx.pick([1, 10, 100, 300], [1, 10], [1]);
  const configs: Config[] = process.env.BENCH_RECOVERY_CONFIGS ? (process.env.BENCH_RECOVERY_CONFIGS.split(',') as Config[]) : ctx.pick(['in-process', 'mounter'], ['in-process', 'mounter'], ['in-process']);
  const repsFor = (n: number): number => (n >= 100 ? ctx.pick(2, 1, 1) : ctx.pick(3, 1, 1));
  const { s3, stop: stopS3 } = await benchS3(ctx);
  const sdk = directClient(s3);
  const kube = await startKube();
  const stopKube = ctx.cleanup.add('kube-apiserver + etcd', () => kube.stop());
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  let seq = 0;

  /** One repetition: stage+publish n volumes, kill everything, measure the restart. */
  const once = async (n: number, config: Config, rep: number): Promise<Sample> => {
    const dir = join(ctx.workDir, `recovery-${config}-${n}-${rep}`);
    await mkdir(dir, { recursive: true });
    const stopMounts = ctx.cleanup.mounts(dir);
    const mounterArgs = config === 'mounter' ? ['--mounter-endpoint', `unix://${mounterSocketOf(dir)}`] : [];
    let driverB: DriverProcess | undefined;
    let mounterB: MounterProcess | undefined;
    try {
      // The cluster's side: bucket, PV, PVC (bound), Pod on this node (Running) per volume.
      const vols = Array.from({ length: n }, () => {
        const k = ++seq;
        return { bucket: `bench-rec-${k}`, pv: `pv-rec-${k}`, claim: `claim-rec-${k}`, pod: `pod-rec-${k}`, uid: '', target: '', staging: '' };
      });
      const created = await closedLoop(n, 8, async (i) => {
        const v = vols[i];
        if (!v) return;
        await sdk.send(new CreateBucketCommand({ Bucket: v.bucket }));
        await kube.core.createPersistentVolume({ body: {
          metadata: { name: v.pv },
          spec: {
            capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '',
            csi: { driver: DRIVER, volumeHandle: v.bucket, nodeStageSecretRef: { name: 'bench-s3', namespace: NS } },
          },
        } });
        await kube.core.createNamespacedPersistentVolumeClaim({ namespace: NS, body: {
          metadata: { name: v.claim }, spec: { accessModes: ['ReadWriteMany'], storageClassName: '', resources: { requests: { storage: '1Gi' } }, volumeName: v.pv },
        } });
        await kube.bindClaim(NS, v.claim, v.pv);
        const pod = await kube.core.createNamespacedPod({ namespace: NS, body: {
          metadata: { name: v.pod },
          spec: { nodeName: NODE, containers: [{ name: 'c', image: 'busybox' }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: v.claim } }] },
        } });
        pod.status = { phase: 'Running' };
        await kube.core.replaceNamespacedPodStatus({ name: v.pod, namespace: NS, body: pod });
        v.uid = pod.metadata?.uid ?? '';
      });
      if (created.errors) throw new Error(`creating cluster objects: ${created.firstError}`);

      // Node plugin A (and mounter A) stage and publish everything where kubelet would, then die with every s3fs.
      const mounterA = config === 'mounter' ? await startMounter({ dir }) : undefined;
      if (mounterA) ctx.cleanup.pids.push(mounterA.pid);
      const stopMounterA = ctx.cleanup.add('mounter A (recovery)', () => mounterA?.kill() ?? Promise.resolve());
      const driverA = await startDriver({ mode: 'node', dir, args: mounterArgs });
      if (driverA.proc.pid) ctx.cleanup.pids.push(driverA.proc.pid);
      const stopA = ctx.cleanup.add('driver A (recovery)', () => killPid(driverA.proc.pid));
      const staged = await closedLoop(n, 8, async (i) => {
        const v = vols[i];
        if (!v) return;
        v.staging = stagingPathFor(driverA.kubeletDir, DRIVER, v.bucket);
        v.target = targetPathFor(driverA.kubeletDir, v.uid, v.pv);
        await mkdir(dirname(v.target), { recursive: true });
        await driverA.call('Node', 'NodeStageVolume', { volume_id: v.bucket, staging_target_path: v.staging, volume_capability: MOUNT_CAP, secrets: s3.secrets }, 60_000);
        await driverA.call('Node', 'NodePublishVolume', { volume_id: v.bucket, staging_target_path: v.staging, target_path: v.target, volume_capability: MOUNT_CAP }, 60_000);
      });
      if (staged.errors) throw new Error(`staging ${n} volumes: ${staged.firstError}`);
      driverA.proc.kill('SIGKILL');
      await driverA.exited;
      await stopA();
      await mounterA?.kill();
      await stopMounterA();
      for (const pid of await s3fsPidsUnder(dir)) process.kill(pid, 'SIGKILL');
      await sleep(300);
      if ((await answering(vols.map((v) => v.target))).size > 0) throw new Error('a target still answers after killing s3fs');

      // Restart: the mounter (if any) and node plugin B together, recovery on, reading the cluster with the admin kubeconfig.
      const load1 = loadavg()[0] ?? 0;
      const t0 = nowMs();
      const mounterStart = config === 'mounter' ? startMounter({ dir }) : undefined;
      driverB = await startDriver({
        mode: 'node', dir, waitReady: false,
        args: [...mounterArgs, '--recovery', 'true', '--kubeconfig', kube.adminKubeconfig, ...extraArgs],
        env: nodeOptions ? { NODE_OPTIONS: nodeOptions } : undefined,
      });
      if (driverB.proc.pid) ctx.cleanup.pids.push(driverB.proc.pid);
      mounterB = await mounterStart;
      if (mounterB) ctx.cleanup.pids.push(mounterB.pid);
      let serving = Number.NaN;
      let ready = Number.NaN;
      // Every target answering (pods have their data back), checked on its own from the start, at most
      // every ANSWER_POLL_MS (each check is a process start on the same two cores).
      let answered = Number.NaN;
      let lastAnswerCheck = 0;
      const deadline = t0 + ctx.pick(300_000, 120_000, 60_000);
      for (;;) {
        if (driverB.proc.exitCode !== null) throw new Error(`driver B exited: ${driverB.logs.slice(-5).join('\n')}`);
        if (nowMs() > deadline) throw new Error(`${n} volumes not healthy within ${(deadline - t0) / 1000} s`);
        if (Number.isNaN(ready) && existsSync(driverB.socketPath)) {
          const p = await driverB.call<{ ready?: { value: boolean } }>('Identity', 'Probe', {}, 2000).catch(() => undefined);
          if (p && Number.isNaN(serving)) serving = nowMs() - t0;
          if (p?.ready?.value) ready = nowMs() - t0;
        }
        if (Number.isNaN(answered) && nowMs() - lastAnswerCheck >= ANSWER_POLL_MS) {
          lastAnswerCheck = nowMs();
          if ((await answering(vols.map((v) => v.target))).size === n) answered = nowMs() - t0;
        }
        if (!Number.isNaN(ready) && !Number.isNaN(answered)) break;
        await sleep(20);
      }
      const healthy = nowMs() - t0;
      ctx.log(`recovery ${config} n=${n}: serving ${serving.toFixed(0)} ms, targets answering ${answered.toFixed(0)} ms, ready ${ready.toFixed(0)} ms, all healthy ${healthy.toFixed(0)} ms (load ${load1.toFixed(2)})`);

      if (process.env.BENCH_RECOVERY_LOGS) {
        await mkdir(process.env.BENCH_RECOVERY_LOGS, { recursive: true });
        await writeFile(join(process.env.BENCH_RECOVERY_LOGS, `driver-${config}-${n}-${rep}.log`), `${driverB.logs.join('\n')}\n`);
        if (mounterB) await writeFile(join(process.env.BENCH_RECOVERY_LOGS, `mounter-${config}-${n}-${rep}.log`), `${mounterB.logs.join('\n')}\n`);
      }
      const drv = driverB;
      await closedLoop(n, 8, async (i) => {
        const v = vols[i];
        if (!v) return;
        await drv.call('Node', 'NodeUnpublishVolume', { volume_id: v.bucket, target_path: v.target }, 60_000);
        await drv.call('Node', 'NodeUnstageVolume', { volume_id: v.bucket, staging_target_path: v.staging }, 60_000);
        // The pod is gone: the next repetition's scan must not find it (its kubelet dir is another).
        await kube.core.deleteNamespacedPod({ name: v.pod, namespace: NS, gracePeriodSeconds: 0 });
      });
      await driverB.cleanup();
      driverB = undefined;
      await mounterB?.kill();
      mounterB = undefined;

      // The limit, right after: the same n s3fs command lines by hand, all at once.
      const hand = await mountManyByHand(ctx, s3, vols.map((v) => v.bucket));
      await hand.unmount();
      ctx.log(`recovery limit n=${n}: ${n} s3fs by hand answering in ${hand.ms.toFixed(0)} ms`);
      return { servingMs: serving, answeringMs: answered, readyMs: ready, healthyMs: healthy, handMs: hand.ms, load1 };
    } finally {
      await driverB?.cleanup();
      await mounterB?.kill();
      for (const pid of await s3fsPidsUnder(dir)) await killPid(pid);
      await stopMounts();
      await unmountUnder(dir);
      await rm(dir, { recursive: true, force: true }).catch(() => undefined);
    }
  };

  try {
    await kube.createNamespace(NS);
    await kube.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'bench-s3' }, stringData: s3.secrets } });
    const firstMedian: Partial<Record<Config, number>> = {};
    for (const n of levels) {
      const samples: Record<Config, Sample[]> = { 'in-process': [], mounter: [] };
      for (let rep = 0; rep < repsFor(n); rep++) {
        // Alternate the order so neither configuration always runs on a warmer machine.
        const order = rep % 2 === 0 ? configs : [...configs].reverse();
        for (const config of order) samples[config].push(await once(n, config, rep));
      }
      for (const config of configs) {
        const s = samples[config];
        const healthyMs = s.map((x) => x.healthyMs);
        const h = stat(healthyMs);
        firstMedian[config] ??= h.median;
        const first = firstMedian[config] ?? h.median;
        const marginal = n > 1 ? `; ${((h.median - first) / (n - 1)).toFixed(1)} ms per volume beyond the first` : '';
        rows.push({
          metric: `driver start → all ${n} stale volume${n > 1 ? 's' : ''} healthy (${config === 'mounter' ? 's3fs in the mounter' : 's3fs in the node plugin'})`,
          unit: 'ms', better: 'lower', ours: h,
          peer: { label: `the same ${n} s3fs by hand, all at once`, stat: stat(s.map((x) => x.handMs)) },
          ratio: pairRatio(healthyMs, s.map((x) => x.handMs)),
          note: `socket serving after ${stat(s.map((x) => x.servingMs)).median.toFixed(0)} ms, every target answering after ${stat(s.map((x) => x.answeringMs)).median.toFixed(0)} ms, Probe ready after ${stat(s.map((x) => x.readyMs)).median.toFixed(0)} ms${marginal}; load average ${s.map((x) => x.load1.toFixed(1)).join('/')}`,
        });
        details[`${config} n=${n}`] = s;
      }
    }
    return { section: SECTION, status: 'ok', rows, details };
  } finally {
    sdk.destroy();
    await stopKube();
    await stopS3();
  }
}
