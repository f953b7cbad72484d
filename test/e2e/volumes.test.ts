// End to end under a real kubelet: the chart installed with helm from the image built from the
// Dockerfile, real pods using real volumes through kubelet's CSI calls (see world.ts for what this
// machine forces). The kubernetes-csi external-provisioner cannot run here: each dynamic volume is
// provisioned by test/harness/provisioner.ts, which makes the sidecar's CreateVolume call and PV object.
import assert from 'node:assert/strict';
import { mkdir, readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import type { V1PodSecurityContext } from '@kubernetes/client-node';
import { packageRoot } from '../../src/paths.js';
import { listRecords, mountsUnder, readMountTable } from '../../src/mount/index.js';
import { isPodReady } from '../harness/cluster.js';
import { waitFor } from '../harness/net.js';
import { DRIVER, NAMESPACE, SECRET, type World, driverRegistered, driverStateDir, mounterRuntimeDir, startWorld, waitNodePluginReady } from './world.js';
import { type Workloads, workloads } from './workloads.js';

const NS = 'e2e';
let w: World;
let claim: Workloads['claim'];
let provision: Workloads['provision'];
let runPod: Workloads['runPod'];
let deletePods: Workloads['deletePods'];
let mountsOfPv: Workloads['mountsOfPv'];
let bucketOf: Workloads['bucketOf'];
let keysIn: Workloads['keysIn'];
let driverCalls: Workloads['driverCalls'];
let s3fsOfBucket: Workloads['s3fsOfBucket'];
let eventsOf: Workloads['eventsOf'];
const timings: Record<string, number> = {};

describe('s3fs-csi under a real kubelet', { timeout: 20 * 60_000 }, () => {
  before(async () => {
    const t0 = Date.now();
    w = await startWorld();
    ({ claim, provision, runPod, deletePods, mountsOfPv, bucketOf, keysIn, driverCalls, s3fsOfBucket, eventsOf } = workloads(w, NS));
    timings.nodeReadyMs = w.node.timings.nodeReadyMs;
    timings.apiReadyMs = w.node.timings.apiReadyMs;
    const t1 = Date.now();
    await w.install(w.values);
    await waitNodePluginReady(w);
    await waitFor('driver registered in CSINode', async () => (await driverRegistered(w)) || undefined, 60_000, 200);
    timings.installToRegisteredMs = Date.now() - t1;
    timings.worldMs = Date.now() - t0;
    await w.node.kube.createNamespace(NS);
  });

  after(async () => {
    if (!w) return;
    await w.saveLogs(join(packageRoot, 'build', 'e2e', 'logs', 'volumes'), [NS]).catch((err: Error) => process.stdout.write(`# logs not saved: ${err.message}\n`));
    const drift = await w.stop();
    await mkdir(join(packageRoot, 'build', 'e2e'), { recursive: true });
    await writeFile(join(packageRoot, 'build', 'e2e', 'timings.json'), `${JSON.stringify(timings, null, 2)}\n`);
    assert.deepEqual(drift, [], 'the node left nothing running, mounted or changed');
  });

  it('the node plugin is one container that registered itself, and kubelet judges its /healthz liveness probe healthy', async () => {
    const pod = await w.nodePod();
    assert.deepEqual(pod.spec?.containers.map((c) => c.name), ['s3fs-csi']);
    assert.equal(pod.spec?.containers[0]?.livenessProbe?.httpGet?.path, '/healthz');
    const probes = await waitFor('a successful liveness probe in kubelet\'s prober metrics', async () => {
      const r = await w.node.kubeletGet('/metrics/probes');
      return /prober_probe_total\{[^}]*container="s3fs-csi"[^}]*probe_type="Liveness"[^}]*result="successful"[^}]*\} [1-9]/.test(r.body) ? r.body : undefined;
    }, 60_000, 1000);
    // A probe may fail while the machine is loaded (each has a 3 s timeout); what counts is that
    // kubelet never judged the container dead: no restart.
    const failed = /prober_probe_total\{[^}]*container="s3fs-csi"[^}]*probe_type="Liveness"[^}]*result="failed"[^}]*\} (\d+)/.exec(probes)?.[1] ?? '0';
    process.stdout.write(`# liveness probes of the node plugin that failed so far: ${failed}\n`);
    assert.equal((await w.nodePod()).status?.containerStatuses?.[0]?.restartCount, 0);
  });

  it('a pod writes and reads through a PVC; the objects are in S3; a second pod sees them (one s3fs, one stage, two publishes)', async () => {
    const t0 = Date.now();
    const pv = await provision('data');
    const logA = await runPod('writer', 'data', 'echo hello-from-writer > /data/hello.txt && mkdir -p /data/dir && echo nested > /data/dir/n.txt && cat /data/hello.txt');
    timings.applyToPodReadyMs = Date.now() - t0;
    assert.match(logA, /hello-from-writer/);
    const { bucket, prefix } = await bucketOf(pv);
    const keys = await waitFor('objects in S3', async () => {
      const k = await keysIn(bucket, prefix);
      return k.some((x) => x.endsWith('hello.txt')) && k.some((x) => x.endsWith('dir/n.txt')) ? k : undefined;
    }, 30_000, 250);
    assert.ok(keys.length >= 2);

    const logB = await runPod('reader', 'data', 'cat /data/hello.txt /data/dir/n.txt');
    assert.match(logB, /hello-from-writer\s+nested/);
    const m = await mountsOfPv(pv);
    assert.equal(m.staging.length, 1, `one staging mount: ${JSON.stringify(m)}`);
    assert.equal(m.targets.length, 2, `two targets: ${JSON.stringify(m)}`);
    assert.equal((await s3fsOfBucket(bucket)).length, 1, 'one s3fs for the volume');
    assert.equal((await driverCalls('NodeStageVolume')).filter((c) => c.code === 'OK').length, 1);
  });

  it('a read-only volume: writes fail with EROFS inside the container', async () => {
    const log = await runPod('ro', 'data', 'cat /data/hello.txt; touch /data/ro-write 2>&1; echo "rc=$?"', { readOnly: true });
    assert.match(log, /hello-from-writer/);
    assert.match(log, /Read-only file system/);
    assert.match(log, /rc=1/);
  });

  it('fsGroup: a non-root pod writes; a second pod with another fsGroup on the same volume also starts and shares the mount', async () => {
    await provision('grouped');
    const sc = (fsGroup: number): V1PodSecurityContext => ({ runAsUser: 1000, runAsGroup: 1000, fsGroup, runAsNonRoot: true });
    const log1 = await runPod('group-a', 'grouped', 'id; echo by-a > /data/a.txt; echo "rc=$?"; ls -ln /data', { securityContext: sc(2000) });
    assert.match(log1, /groups=.*2000/);
    assert.match(log1, /rc=0/);
    assert.match(log1, /\s1000\s+2000\s.*a\.txt/, 'files show the pod user and its fsGroup');
    const log2 = await runPod('group-b', 'grouped', 'id; cat /data/a.txt; echo by-b > /data/b.txt; echo "rc=$?"', { securityContext: sc(3000) });
    assert.match(log2, /by-a/);
    assert.match(log2, /rc=0/, 'the second pod writes too: with a mount group, access is granted through the mount\'s other bits');
  });

  it('pod deletion: kubelet unpublishes and unstages; no s3fs, mount, passwd file or directory is left', async () => {
    const pv = (await w.node.kube.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'grouped' })).spec?.volumeName ?? '';
    const handle = (await w.node.kube.core.readPersistentVolume({ name: pv })).spec?.csi?.volumeHandle ?? '';
    const t0 = Date.now();
    await deletePods('group-a', 'group-b');
    await waitFor('no mount of the volume left', async () => {
      const m = await mountsOfPv(pv);
      return m.targets.length === 0 && (await driverCalls('NodeUnstageVolume')).some((c) => c.volume_id === handle && c.code === 'OK') ? true : undefined;
    }, 60_000, 250);
    timings.deleteToUnstagedMs = Date.now() - t0;
    const unpublished = (await driverCalls('NodeUnpublishVolume')).filter((c) => c.volume_id === handle && c.code === 'OK');
    assert.ok(unpublished.length >= 2, 'kubelet unpublished both pods');
    // What is still staged belongs to the other volume only.
    const stagedDirs = await readdir(join(w.node.kubeletDir, 'plugins', 'kubernetes.io', 'csi', DRIVER)).catch(() => []);
    const table = await readMountTable();
    for (const d of stagedDirs) {
      const mounted = mountsUnder(table, join(w.node.kubeletDir, 'plugins', 'kubernetes.io', 'csi', DRIVER, d)).length > 0;
      assert.ok(mounted, `staging directory ${d} left without a mount`);
    }
    // The mounter's records and passwd files: the volume's are gone, and no passwd file outlives its record.
    const records = await listRecords(driverStateDir(w.node));
    assert.equal(records.filter((r) => r.volumeId === handle).length, 0, 'the volume\'s record is removed');
    const passwd = (await readdir(mounterRuntimeDir(w.node))).filter((f) => f.endsWith('.passwd')).map((f) => f.slice(0, -'.passwd'.length));
    assert.deepEqual(passwd.filter((k) => !records.some((r) => r.key === k)), [], 'no passwd file without a staged volume');
    assert.deepEqual(await s3fsOfBucket(handle.split('/')[0] ?? ''), [], 'no s3fs of the volume is left');
  });

  it('static PVs of an existing bucket and of a prefix, with a Secret in yandex-cloud/k8s-csi-s3\'s keys', async () => {
    await w.s3client.send(new CreateBucketCommand({ Bucket: 'existing-data' }));
    await w.s3client.send(new PutObjectCommand({ Bucket: 'existing-data', Key: 'root.txt', Body: 'at the root' }));
    await w.s3client.send(new PutObjectCommand({ Bucket: 'existing-data', Key: 'team-a/inside.txt', Body: 'inside the prefix' }));
    await w.node.kube.core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'yandex-style' }, stringData: { accessKeyID: w.s3.accessKey, secretAccessKey: w.s3.secretKey, endpoint: w.s3.endpoint, region: w.s3.region } },
    });
    for (const [name, handle] of [['static-bucket', 'existing-data'], ['static-prefix', 'existing-data/team-a']] as const) {
      await w.node.kube.core.createPersistentVolume({
        body: {
          metadata: { name },
          spec: {
            capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '',
            csi: { driver: DRIVER, volumeHandle: handle, nodeStageSecretRef: { name: 'yandex-style', namespace: NS } },
          },
        },
      });
      await claim(name, { volumeName: name });
    }
    const whole = await runPod('static-bucket', 'static-bucket', 'cat /data/root.txt; echo; cat /data/team-a/inside.txt');
    assert.match(whole, /at the root\s+inside the prefix/);
    const part = await runPod('static-prefix', 'static-prefix', 'ls /data; cat /data/inside.txt');
    assert.match(part, /inside the prefix/);
    assert.doesNotMatch(part, /root\.txt/);
    await deletePods('static-bucket', 'static-prefix');
    await waitFor('both static volumes unstaged', async () => ((await s3fsOfBucket('existing-data')).length === 0) || undefined, 60_000, 250);
  });

  it('a repair whose Secret is gone: Warning SecretUnreadable on the pod and its claim; once the Secret is back, the volume is repaired (VolumeRecovered)', async () => {
    const core = w.node.kube.core;
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'breakable' }, stringData: { accessKeyID: w.s3.accessKey, secretAccessKey: w.s3.secretKey, endpoint: w.s3.endpoint, region: w.s3.region } },
    });
    await core.createPersistentVolume({
      body: {
        metadata: { name: 'static-breakable' },
        spec: {
          capacity: { storage: '1Gi' }, accessModes: ['ReadWriteMany'], persistentVolumeReclaimPolicy: 'Retain', storageClassName: '',
          csi: { driver: DRIVER, volumeHandle: 'existing-data', nodeStageSecretRef: { name: 'breakable', namespace: NS } },
        },
      },
    });
    await claim('static-breakable', { volumeName: 'static-breakable' });
    await runPod('breakable', 'static-breakable', 'cat /data/root.txt');
    await core.deleteNamespacedSecret({ namespace: NS, name: 'breakable' });
    // The keys' local copy gone too (its passwd file, as when the host's /run is wiped): the repair of
    // the mounter's replacement must then come from the API scan, which reads the Secret.
    const rec = (await listRecords(driverStateDir(w.node))).find((r) => r.bucket === 'existing-data' && !r.prefix);
    assert.ok(rec, 'the volume is recorded as staged');
    await rm(join(mounterRuntimeDir(w.node), `${rec.key}.passwd`));
    const mounter = await w.podOf('mounter');
    await w.keepLogsBefore('mounter-delete'); // the old mounter's log goes with its pod
    await core.deleteNamespacedPod({ namespace: NAMESPACE, name: mounter.metadata?.name ?? '' });
    const seen = await waitFor('SecretUnreadable on the pod and on its claim', async () => {
      const [pod, pvc] = await Promise.all([eventsOf('Pod', 'breakable', 'SecretUnreadable'), eventsOf('PersistentVolumeClaim', 'static-breakable', 'SecretUnreadable')]);
      return pod[0] && pvc[0] ? { pod: pod[0], pvc: pvc[0] } : undefined;
    }, 120_000, 500);
    assert.equal(seen.pod.type, 'Warning');
    assert.match(seen.pod.message ?? '', new RegExp(`Secret ${NS}/breakable`));
    assert.doesNotMatch(JSON.stringify([seen.pod, seen.pvc]), new RegExp(w.s3.secretKey), 'no credential in an Event');
    // No local copy and no Secret: the volume stays down until the Secret is back, and the next scan
    // (the chart's 60 s interval at most) repairs it.
    await core.createNamespacedSecret({
      namespace: NS,
      body: { metadata: { name: 'breakable' }, stringData: { accessKeyID: w.s3.accessKey, secretAccessKey: w.s3.secretKey, endpoint: w.s3.endpoint, region: w.s3.region } },
    });
    await waitFor('a new s3fs serves the volume', async () => ((await s3fsOfBucket('existing-data')).length === 1) || undefined, 120_000, 250);
    await waitFor('VolumeRecovered on the pod', async () => ((await eventsOf('Pod', 'breakable', 'VolumeRecovered')).length > 0) || undefined, 30_000, 250);
    await deletePods('breakable');
    await waitFor('unstaged', async () => ((await s3fsOfBucket('existing-data')).length === 0) || undefined, 60_000, 250);
  });

  it('kubelet\'s view of health: usage in the stats summary, the volume condition abnormal while its s3fs is dead', async () => {
    const pv = (await w.node.kube.core.readNamespacedPersistentVolumeClaim({ namespace: NS, name: 'data' })).spec?.volumeName ?? '';
    type Vol = { name: string; usedBytes?: number; capacityBytes?: number; pvcRef?: { name: string }; volumeHealthStats?: { abnormal: boolean } };
    type Summary = { pods: Array<{ podRef: { name: string; namespace: string }; volume?: Vol[] }> };
    const volumeOf = async (): Promise<Vol | undefined> => {
      const r = await w.node.kubeletGet('/stats/summary');
      if (r.status !== 200) throw new Error(`stats/summary: ${r.status} ${r.body.slice(0, 200)}`);
      const s = JSON.parse(r.body) as Summary;
      return s.pods.find((p) => p.podRef.namespace === NS && p.podRef.name === 'writer')?.volume?.find((v) => v.pvcRef?.name === 'data');
    };
    // kubelet refreshes a volume's stats once a minute (--volume-stats-agg-period) and serves the last
    // ones meanwhile: after the mounter was replaced in the test before, that can still be the reading
    // taken while the volume was down (zero usage, abnormal). So: wait for a healthy reading.
    const healthy = await waitFor('usage of the healthy volume in kubelet\'s stats summary', async () => {
      const v = await volumeOf();
      return (v?.capacityBytes ?? 0) > 0 && v?.usedBytes !== undefined && v.volumeHealthStats?.abnormal !== true ? v : undefined;
    }, 150_000, 1000);
    assert.ok((healthy.capacityBytes ?? 0) > 0);

    // With S3 down, the repair cannot succeed: the condition stays abnormal until S3 is back.
    await w.s3.pause();
    try {
      const pids = await s3fsOfBucket((await bucketOf(pv)).bucket);
      assert.equal(pids.length, 1, 'one s3fs serves the volume');
      process.kill(pids[0] ?? 0, 'SIGKILL');
      await waitFor('kubelet reports the volume abnormal', async () => ((await volumeOf())?.volumeHealthStats?.abnormal === true) || undefined, 90_000, 1000);
    } finally {
      await w.s3.start();
    }
    await waitFor('the volume healthy again after recovery', async () => ((await volumeOf())?.volumeHealthStats?.abnormal === false) || undefined, 120_000, 1000);
    const log = await runPod('after-repair', 'data', 'cat /data/hello.txt');
    assert.match(log, /hello-from-writer/);
  });

  it('the exec liveness probe variant is judged healthy too', async () => {
    await w.install({ ...w.values, probes: { ...(w.values.probes as object), mode: 'exec' } });
    const pod = await waitFor('a node plugin pod with exec probes', async () => {
      const p = await w.nodePod().catch(() => undefined);
      return p?.spec?.containers[0]?.livenessProbe?.exec ? p : undefined;
    }, 120_000, 500);
    await w.node.waitPod(NAMESPACE, pod.metadata?.name ?? '', isPodReady, 120_000, 'Ready');
    await waitFor('a successful exec liveness probe', async () => {
      const r = await w.node.kubeletGet('/metrics/probes');
      return new RegExp(`prober_probe_total\\{[^}]*container="s3fs-csi"[^}]*pod="${pod.metadata?.name}"[^}]*probe_type="Liveness"[^}]*result="successful"[^}]*\\} [1-9]`).test(r.body) || undefined;
    }, 90_000, 1000);
    void SECRET;
  });
});
