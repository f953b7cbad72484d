// `make demo`: a node plugin restart without losing the mounts, step by step with timings.
// Real components only: versitygw (S3), etcd + kube-apiserver, the s3fs-csi binary, s3fs and FUSE. This
// script plays the parts that do not run here: the external-provisioner, the PV controller and
// kubelet (vol_data.json, NodeStage, NodePublish) and a container (a mount namespace made with unshare,
// mountPropagation HostToContainer).
//   node dist/scripts/demo.js            recovery through the Kubernetes API (the product's main path)
//   node dist/scripts/demo.js --local    no API server: recovery from the driver's on-disk records
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { NODE_RBAC_RULES } from '../src/kube/rbac.js';
import { stagingPathFor, targetPathFor } from '../src/recovery/kubelet-paths.js';
import { startDriver, type DriverProcess } from '../test/harness/driver.js';
import { startKube, type KubeCluster } from '../test/harness/kube.js';
import { killS3fsAndUnmountUnder, s3fsPidsUnder, unmountUnder } from '../test/harness/mounts.js';
import { waitFor } from '../test/harness/net.js';
import { startS3Server, type S3Server } from '../test/harness/s3server.js';
import { type Container, container, readIn } from '../test/integration/recovery-world.js';

const run = promisify(execFile);
const local = process.argv.includes('--local');
const DRIVER = 's3fs.csi.dev';
const NODE = 'demo-node';
const CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };
// The driver must not pick up a kubeconfig from this shell: the demo decides.
delete process.env.KUBECONFIG;

const bold = (s: string): string => (process.stdout.isTTY ? `\x1b[1m${s}\x1b[0m` : s);
const dim = (s: string): string => (process.stdout.isTTY ? `\x1b[2m${s}\x1b[0m` : s);
let n = 0;
async function step<T>(title: string, fn: () => Promise<T>): Promise<T> {
  n++;
  process.stdout.write(`${bold(`[${n}]`)} ${title} ... `);
  const t0 = performance.now();
  const r = await fn();
  process.stdout.write(`${((performance.now() - t0) / 1000).toFixed(2)} s\n`);
  return r;
}
const note = (s: string): void => {
  process.stdout.write(`    ${dim(s)}\n`);
};

let s3: S3Server | undefined;
let kube: KubeCluster | undefined;
let driver: DriverProcess | undefined;
let ctr: Container | undefined;
let base = '';

async function main(): Promise<void> {
  process.stdout.write(`${bold('s3fs-csi demo')}: the node plugin restarts (driver and s3fs killed), the mounts come back by themselves\n`);
  process.stdout.write(`${dim(`mode: ${local ? 'local (no Kubernetes API: on-disk records)' : 'Kubernetes API (kube-apiserver 1.34 + etcd 3.6 on 127.0.0.1)'}`)}\n\n`);
  base = await mkdtemp(join(tmpdir(), 's3fs-csi-demo-'));
  const kubeletDir = join(base, 'kubelet');

  s3 = await step('start the S3 server (versitygw)', () => startS3Server());
  note(`${s3.endpoint}, data in ${s3.dataDir}`);
  const s = s3;

  let kubeconfig: string | undefined;
  if (!local) {
    kube = await step('start the Kubernetes API (etcd + kube-apiserver, RBAC on)', () => startKube());
    const k = kube;
    kubeconfig = await step('namespace, Secret, StorageClass, node ServiceAccount with the chart\'s node RBAC', async () => {
      await k.createNamespace('demo');
      await k.core.createNamespacedSecret({ namespace: 'demo', body: { metadata: { name: 's3-creds', namespace: 'demo' }, stringData: s.secrets } });
      await k.storage.createStorageClass({
        body: {
          metadata: { name: 's3' }, provisioner: DRIVER,
          parameters: { 'csi.storage.k8s.io/node-stage-secret-name': 's3-creds', 'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}' },
        },
      });
      return k.kubeconfigForRules('s3fs-csi-node', NODE_RBAC_RULES.map((r) => ({ ...r })));
    });
    note(`${k.server}; driver identity: system:serviceaccount:kube-system:s3fs-csi-node`);
  }

  await step('simulated node: kubelet dir as a shared mount', async () => {
    await mkdir(kubeletDir, { recursive: true });
    await run('mount', ['--bind', kubeletDir, kubeletDir]);
    await run('mount', ['--make-rshared', kubeletDir]);
  });
  note(kubeletDir);

  const args = ['--nodeid', NODE, '--drivername', DRIVER, '--s3-endpoint', s.endpoint, '--recovery', 'true', ...(kubeconfig ? ['--kubeconfig', kubeconfig] : [])];
  driver = await step('start the driver (controller + node, recovery on)', () => startDriver({ mode: 'all', dir: base, args }));
  note(`socket ${driver.socketPath}, health http://127.0.0.1:${driver.httpPort}/readyz`);

  const { volumeId, volumeContext, pvName } = await step('provision a volume (CreateVolume' + (local ? ')' : ' -> PersistentVolume bound to PVC demo/data)'), async () => {
    const d = driver as DriverProcess;
    let name = 'pvc-demo';
    if (kube) {
      const pvc = await kube.core.createNamespacedPersistentVolumeClaim({
        namespace: 'demo', body: { metadata: { name: 'data', namespace: 'demo' }, spec: { accessModes: ['ReadWriteMany'], storageClassName: 's3', resources: { requests: { storage: '1Gi' } } } },
      });
      name = `pvc-${pvc.metadata?.uid}`;
    }
    const r = await d.call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
      name, capacity_range: { required_bytes: 1 << 30 }, volume_capabilities: [CAP], secrets: s.secrets,
    });
    if (kube) {
      await kube.core.createPersistentVolume({
        body: {
          metadata: { name },
          spec: {
            accessModes: ['ReadWriteMany'], capacity: { storage: '1Gi' }, storageClassName: 's3', persistentVolumeReclaimPolicy: 'Delete',
            csi: { driver: DRIVER, volumeHandle: r.volume.volume_id, volumeAttributes: r.volume.volume_context, nodeStageSecretRef: { namespace: 'demo', name: 's3-creds' } },
          },
        },
      });
      await kube.bindClaim('demo', 'data', name);
    }
    return { volumeId: r.volume.volume_id, volumeContext: r.volume.volume_context, pvName: name };
  });
  note(`volume id ${volumeId} (a bucket on the S3 server)`);

  const podUid = await step('pod demo/app on this node; kubelet stages and publishes the volume', async () => {
    let uid = '00000000-0000-4000-8000-00000000demo';
    if (kube) {
      const pod = await kube.core.createNamespacedPod({
        namespace: 'demo',
        body: {
          metadata: { name: 'app', namespace: 'demo' },
          spec: { nodeName: NODE, containers: [{ name: 'app', image: 'busybox', volumeMounts: [{ name: 'data', mountPath: '/data', mountPropagation: 'HostToContainer' }] }], volumes: [{ name: 'data', persistentVolumeClaim: { claimName: 'data' } }] },
        },
      });
      uid = pod.metadata?.uid ?? uid;
    }
    const d = driver as DriverProcess;
    const staging = stagingPathFor(kubeletDir, DRIVER, volumeId);
    const target = targetPathFor(kubeletDir, uid, pvName);
    await mkdir(staging, { recursive: true });
    await writeFile(join(dirname(staging), 'vol_data.json'), JSON.stringify({ driverName: DRIVER, volumeHandle: volumeId }));
    await d.call('Node', 'NodeStageVolume', { volume_id: volumeId, staging_target_path: staging, volume_capability: CAP, volume_context: volumeContext, secrets: s.secrets }, 60_000);
    await mkdir(dirname(target), { recursive: true });
    await writeFile(join(dirname(target), 'vol_data.json'), JSON.stringify({ specVolID: pvName, volumeHandle: volumeId, driverName: DRIVER, nodeName: NODE, volumeLifecycleMode: 'Persistent' }));
    await d.call('Node', 'NodePublishVolume', { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: CAP, volume_context: volumeContext });
    return uid;
  });
  const target = targetPathFor(kubeletDir, podUid, pvName);
  const file = join(target, 'hello.txt');
  note(`staging ${stagingPathFor(kubeletDir, DRIVER, volumeId)}`);
  note(`target  ${target}`);

  const text = `hello from s3fs-csi, written at ${new Date().toISOString()}\n`;
  ctr = await step('write hello.txt; a container (HostToContainer mount namespace) reads it', async () => {
    await writeFile(file, text);
    const c = await container('slave');
    const r = await readIn(c.pid, file);
    if (!r.ok || r.text !== text) throw new Error(`container cannot read the file: ${r.text}`);
    return c;
  });
  note(`container pid ${ctr.pid}: ${text.trim()}`);

  await step('kill -9 the driver and its s3fs (what a container restart does)', async () => {
    await driver?.stop('SIGKILL');
    for (const pid of await s3fsPidsUnder(base)) process.kill(pid, 'SIGKILL');
    await waitFor('the mount to die', async () => ((await readIn(undefined, file, 1000)).ok ? undefined : true), 5000, 50);
  });
  const dead = await readIn(ctr.pid, file);
  note(`in the container: cat hello.txt -> ${dead.ok ? dead.text.trim() : dead.text.split(': ').pop()}`);

  const startedAt = performance.now();
  driver = await step('start the driver again', () => startDriver({ mode: 'all', dir: base, args }));
  const d2 = driver;
  await step('wait until the data is readable again', () => waitFor('the data', async () => {
    const r = await readIn(undefined, file, 1000);
    return r.ok && r.text === text ? true : undefined;
  }, 30_000, 50));
  const healedMs = performance.now() - startedAt;
  const inCtr = await readIn(ctr.pid, file);
  note(`on the node:       ${text.trim()}`);
  note(`in the container:  ${inCtr.ok ? inCtr.text.trim() : `FAILED: ${inCtr.text}`} (never restarted)`);
  await waitFor('ready', async () => ((await d2.http('/readyz')).status === 200 ? true : undefined), 15_000, 100);
  const metrics = (await d2.http('/metrics')).body.split('\n').filter((l) => l.startsWith('s3fs_csi_recovery_actions_total') || l.startsWith('s3fs_csi_recovery_runs_total'));
  for (const m of metrics) note(m);
  const scan = d2.logs.map((l) => { try { return JSON.parse(l) as Record<string, unknown>; } catch { return {}; } })
    .find((l) => l.msg === 'recovery scan done' || l.msg === 'local recovery done');
  if (scan) note(`driver log: ${String(scan.msg)}${scan.ms !== undefined ? ` in ${String(scan.ms)} ms` : ''}${scan.api_calls !== undefined ? `, ${String(scan.api_calls)} API calls` : ''}`);
  process.stdout.write(`\n${bold(`data readable again ${(healedMs / 1000).toFixed(2)} s after the driver was started`)}${inCtr.ok ? ', in the running container too' : ''}\n`);
  if (!inCtr.ok) throw new Error('the HostToContainer container did not heal');
}

async function cleanup(): Promise<void> {
  ctr?.stop();
  await driver?.stop('SIGKILL').catch(() => undefined);
  if (base) {
    await killS3fsAndUnmountUnder(base);
    await unmountUnder(base);
    await rm(base, { recursive: true, force: true }).catch(() => undefined);
  }
  await kube?.stop().catch(() => undefined);
  await s3?.stop().catch(() => undefined);
}

let code = 0;
try {
  await main();
} catch (err) {
  code = 1;
  process.stdout.write(`\nFAILED: ${(err as Error).message}\n`);
  if (driver) process.stdout.write(`${dim(driver.logs.slice(-15).join('\n'))}\n`);
} finally {
  await cleanup();
}
process.exit(code);
