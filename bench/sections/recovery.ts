// 6. Recovery: N volumes staged and published (with their PV/PVC/Pod in a real kube-apiserver), then
// the node plugin and every s3fs are killed with SIGKILL, leaving N stale FUSE mounts under N
// targets. Measured: from the new driver's start until Probe says ready and every target answers
// again, for N = 1, 10, 100; and how that grows with N.
import { CreateBucketCommand } from '@aws-sdk/client-s3';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { checkPath } from '../../src/mount/index.js';
import { stagingPathFor, targetPathFor } from '../../src/recovery/kubelet-paths.js';
import { startDriver, type DriverProcess } from '../../test/harness/driver.js';
import { startKube } from '../../test/harness/kube.js';
import { s3fsPidsUnder, unmountUnder } from '../../test/harness/mounts.js';
import { killPid } from '../lib/cleanup.js';
import { closedLoop } from '../lib/load.js';
import { MOUNT_CAP } from '../lib/nodeops.js';
import { benchS3 } from '../lib/s3.js';
import { directClient } from '../lib/s3direct.js';
import { nowMs, stat } from '../lib/stats.js';
import { type BenchContext, type Row, type SectionResult } from '../lib/types.js';

const SECTION = 'recovery';
const DRIVER = 's3fs.csi.dev';
const NODE = 'test-node';
const NS = 'bench';

export async function recoverySection(ctx: BenchContext): Promise<SectionResult> {
  const levels = ctx.pick([1, 10, 100], [1, 10], [1]);
  const repsFor = (n: number): number => (n >= 100 ? 1 : ctx.pick(3, 1, 1));
  const { s3, stop: stopS3 } = await benchS3(ctx);
  const sdk = directClient(s3);
  const kube = await startKube();
  const stopKube = ctx.cleanup.add('kube-apiserver + etcd', () => kube.stop());
  const rows: Row[] = [];
  const details: Record<string, unknown> = {};
  try {
    await kube.createNamespace(NS);
    await kube.core.createNamespacedSecret({ namespace: NS, body: { metadata: { name: 'bench-s3' }, stringData: s3.secrets } });
    let seq = 0;
    for (const n of levels) {
      const healthyMs: number[] = [];
      const readyMs: number[] = [];
      for (let rep = 0; rep < repsFor(n); rep++) {
        const dir = join(ctx.workDir, `recovery-${n}-${rep}`);
        await mkdir(dir, { recursive: true });
        const stopMounts = ctx.cleanup.mounts(dir);
        let driverB: DriverProcess | undefined;
        try {
          // The cluster's side: bucket, PV, PVC (bound), Pod on this node (Running) per volume.
          const vols = Array.from({ length: n }, () => {
            const k = ++seq;
            return { bucket: `bench-rec-${k}`, pv: `pv-rec-${k}`, claim: `claim-rec-${k}`, pod: `pod-rec-${k}`, uid: '', target: '', staging: '' };
          });
          await closedLoop(n, 8, async (i) => {
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
          }).then((r) => {
            if (r.errors) throw new Error(`creating cluster objects: ${r.firstError}`);
          });

          // Driver A stages and publishes everything where kubelet would, then dies with every s3fs.
          const driverA = await startDriver({ mode: 'node', dir });
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
          for (const pid of await s3fsPidsUnder(dir)) process.kill(pid, 'SIGKILL');
          await sleep(300);
          const stale = await checkPath(vols[0]?.target ?? '', 2000);
          if (stale.state === 'healthy') throw new Error('the target is still healthy after killing s3fs');

          // Driver B: recovery on, reading the cluster with the admin kubeconfig.
          const t0 = nowMs();
          driverB = await startDriver({ mode: 'node', dir, waitReady: false, args: ['--recovery', 'true', '--kubeconfig', kube.adminKubeconfig] });
          if (driverB.proc.pid) ctx.cleanup.pids.push(driverB.proc.pid);
          let ready = Number.NaN;
          const deadline = t0 + ctx.pick(300_000, 120_000, 60_000);
          for (;;) {
            if (driverB.proc.exitCode !== null) throw new Error(`driver B exited: ${driverB.logs.slice(-5).join('\n')}`);
            if (nowMs() > deadline) throw new Error(`${n} volumes not healthy within ${(deadline - t0) / 1000} s`);
            if (Number.isNaN(ready) && existsSync(driverB.socketPath)) {
              const p = await driverB.call<{ ready?: { value: boolean } }>('Identity', 'Probe', {}, 2000).catch(() => undefined);
              if (p?.ready?.value) ready = nowMs() - t0;
            }
            if (!Number.isNaN(ready)) {
              const states = await Promise.all(vols.map((v) => checkPath(v.target, 2000)));
              if (states.every((s) => s.state === 'healthy')) break;
            }
            await sleep(50);
          }
          healthyMs.push(nowMs() - t0);
          readyMs.push(ready);
          ctx.log(`recovery n=${n}: ready ${ready.toFixed(0)} ms, all healthy ${(nowMs() - t0).toFixed(0)} ms`);

          const drv = driverB;
          await closedLoop(n, 8, async (i) => {
            const v = vols[i];
            if (!v) return;
            await drv.call('Node', 'NodeUnpublishVolume', { volume_id: v.bucket, target_path: v.target }, 60_000);
            await drv.call('Node', 'NodeUnstageVolume', { volume_id: v.bucket, staging_target_path: v.staging }, 60_000);
          });
        } finally {
          await driverB?.cleanup();
          for (const pid of await s3fsPidsUnder(dir)) await killPid(pid);
          await stopMounts();
          await unmountUnder(dir);
          await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        }
      }
      const h = stat(healthyMs);
      rows.push({ metric: `driver start → ready and all ${n} stale volume${n > 1 ? 's' : ''} healthy`, unit: 'ms', better: 'lower', ours: h, note: `${(h.median / n).toFixed(0)} ms per volume; Probe ready after ${stat(readyMs).median.toFixed(0)} ms` });
      details[`n=${n}`] = { healthyMs, readyMs };
    }
    return { section: SECTION, status: 'ok', rows, details };
  } finally {
    sdk.destroy();
    await stopKube();
    await stopS3();
  }
}
