// A small cluster for the recovery tests, built through the real API and the real driver, with this
// test playing the parts that do not run here: the external-provisioner (CreateVolume -> PV), the PV
// controller (binding), and kubelet (vol_data.json files, NodeStage, NodePublish, "containers" as
// mount namespaces made with unshare). The kubelet dir is a shared (rshared) bind mount, as on a node.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { V1PersistentVolume } from '@kubernetes/client-node';
import { NODE_RBAC_RULES } from '../../src/kube/rbac.js';
import { stagingPathFor, targetPathFor } from '../../src/recovery/kubelet-paths.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { startKube, type KubeCluster } from '../harness/kube.js';
import { s3fsPidsUnder, scrubDir } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const run = promisify(execFile);

export const DRIVER = 's3fs.csi.dev';
export const THIS_NODE = 'node-a';
export const OTHER_NODE = 'node-b';
export const CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };

export interface WorldVolume {
  namespace: string;
  claim: string;
  pvName: string;
  handle: string;
  storageClass: string;
  volumeContext: Record<string, string>;
  stagingPath: string;
}
export interface WorldPod {
  namespace: string;
  name: string;
  uid: string;
  node: string;
  volume: WorldVolume;
  target: string;
}

export interface World {
  kube: KubeCluster;
  s3: S3Server;
  base: string;
  kubeletDir: string;
  /** Kubeconfig of a ServiceAccount bound to exactly NODE_RBAC_RULES. */
  nodeKubeconfig: string;
  volumes: WorldVolume[];
  pods: WorldPod[];
  driver?: DriverProcess;
  startDriver(o?: { kubeconfig?: string; args?: string[]; waitReady?: boolean }): Promise<DriverProcess>;
  /** SIGKILL the driver and every s3fs it started, as a container restart does. */
  killAll(): Promise<void>;
  cleanup(): Promise<void>;
}

export interface WorldOptions {
  volumes: number;
  podsHere: number;
  podsElsewhere: number;
}

const NAMESPACES = ['team-a', 'team-b', 'team-c'];
const SECRET_NS = 's3fs-system';

export async function buildWorld(o: WorldOptions): Promise<World> {
  const base = await mkdtemp(join(tmpdir(), 's3fs-csi-rec-'));
  const kubeletDir = join(base, 'kubelet');
  await mkdir(kubeletDir, { recursive: true });
  // kubelet's root dir is shared on a real node: what is mounted over a staging path reaches the
  // targets bound from it (and slave namespaces of them).
  await run('mount', ['--bind', kubeletDir, kubeletDir]);
  await run('mount', ['--make-rshared', kubeletDir]);

  let kube: KubeCluster | undefined;
  let s3: S3Server | undefined;
  const world: Partial<World> & { volumes: WorldVolume[]; pods: WorldPod[] } = { base, kubeletDir, volumes: [], pods: [] };
  const cleanup = async (): Promise<void> => {
    await world.driver?.stop('SIGKILL').catch(() => undefined);
    await scrubDir(base).catch(() => undefined);
    await kube?.stop();
    await s3?.stop();
  };
  try {
    [kube, s3] = await Promise.all([startKube(), startS3Server()]);
    const k = kube;
    const s = s3;
    for (const ns of [...NAMESPACES, SECRET_NS]) await k.createNamespace(ns);
    const secretData = Object.fromEntries(Object.entries(s.secrets).map(([key, v]) => [key, Buffer.from(v).toString('base64')]));
    for (const ns of [...NAMESPACES, SECRET_NS]) {
      await k.core.createNamespacedSecret({ namespace: ns, body: { metadata: { name: 's3-creds', namespace: ns }, data: secretData } });
    }
    const shared = `shared-${process.pid}`;
    const classes = {
      // bucket per volume; Secret in one central namespace; the provisioner copies the ref into each PV
      's3-buckets': { 'csi.storage.k8s.io/node-stage-secret-name': 's3-creds', 'csi.storage.k8s.io/node-stage-secret-namespace': SECRET_NS },
      // one shared bucket, a prefix per volume; the Secret of the claim's own namespace (templated);
      // these PVs carry no secret ref, so recovery must expand the template from the class
      's3-shared': { bucket: shared, 'csi.storage.k8s.io/node-stage-secret-name': 's3-creds', 'csi.storage.k8s.io/node-stage-secret-namespace': '${pvc.namespace}' },
    } as const;
    for (const [name, parameters] of Object.entries(classes)) {
      await k.storage.createStorageClass({ body: { metadata: { name }, provisioner: DRIVER, parameters: { ...parameters }, reclaimPolicy: 'Delete', volumeBindingMode: 'Immediate' } });
    }
    const nodeKubeconfig = await k.kubeconfigForRules('s3fs-csi-node', NODE_RBAC_RULES.map((r) => ({ ...r })));

    const startDriverFn = async (so: { kubeconfig?: string; args?: string[]; waitReady?: boolean } = {}): Promise<DriverProcess> => {
      world.driver = await startDriver({
        mode: 'all',
        dir: base,
        waitReady: so.waitReady,
        args: [
          '--nodeid', THIS_NODE, '--drivername', DRIVER, '--s3-endpoint', s.endpoint,
          '--recovery', 'true', '--kubeconfig', so.kubeconfig ?? nodeKubeconfig,
          '--recovery-parallelism', '10', '--mount-check-timeout', '2s', '--log-level', 'debug',
          // This world shows healing by propagation and by restart; healing in place: heal.test.ts.
          '--heal-helper', 'none',
          ...(so.args ?? []),
        ],
      });
      return world.driver;
    };
    const d = await startDriverFn();

    // Provision: CreateVolume as the external-provisioner would, then the PV, then the binding.
    const classNames = Object.keys(classes) as Array<keyof typeof classes>;
    for (let i = 0; i < o.volumes; i++) {
      const namespace = NAMESPACES[i % NAMESPACES.length] ?? 'team-a';
      const storageClass = classNames[i % 2] ?? 's3-buckets';
      const claim = `data-${i}`;
      const pvc = await k.core.createNamespacedPersistentVolumeClaim({
        namespace,
        body: { metadata: { name: claim, namespace, annotations: { 'volume.kubernetes.io/storage-provisioner': DRIVER } }, spec: { accessModes: ['ReadWriteMany'], storageClassName: storageClass, resources: { requests: { storage: '1Gi' } } } },
      });
      const pvName = `pvc-${pvc.metadata?.uid}`;
      const params = Object.fromEntries(Object.entries(classes[storageClass]).filter(([key]) => !key.startsWith('csi.storage.k8s.io/')));
      const created = await d.call<{ volume: { volume_id: string; volume_context: Record<string, string> } }>('Controller', 'CreateVolume', {
        name: pvName, capacity_range: { required_bytes: 1 << 30 }, volume_capabilities: [CAP], parameters: params, secrets: s.secrets,
      });
      const pv: V1PersistentVolume = {
        metadata: { name: pvName, annotations: { 'pv.kubernetes.io/provisioned-by': DRIVER } },
        spec: {
          accessModes: ['ReadWriteMany'], capacity: { storage: '1Gi' }, persistentVolumeReclaimPolicy: 'Delete', storageClassName: storageClass,
          csi: {
            driver: DRIVER, volumeHandle: created.volume.volume_id, volumeAttributes: created.volume.volume_context,
            nodeStageSecretRef: storageClass === 's3-buckets' ? { name: 's3-creds', namespace: SECRET_NS } : undefined,
          },
        },
      };
      await k.core.createPersistentVolume({ body: pv });
      await k.bindClaim(namespace, claim, pvName);
      world.volumes.push({
        namespace, claim, pvName, handle: created.volume.volume_id, storageClass, volumeContext: created.volume.volume_context,
        stagingPath: stagingPathFor(kubeletDir, DRIVER, created.volume.volume_id),
      });
    }

    // Pods: spec.nodeName set directly (no scheduler); they stay Pending.
    const podCount = o.podsHere + o.podsElsewhere;
    for (let j = 0; j < podCount; j++) {
      const node = j < o.podsHere ? THIS_NODE : OTHER_NODE;
      const vol = world.volumes[j % world.volumes.length];
      if (!vol) throw new Error('no volumes');
      const name = `app-${j}`;
      const created = await k.core.createNamespacedPod({
        namespace: vol.namespace,
        body: {
          metadata: { name, namespace: vol.namespace },
          spec: {
            nodeName: node,
            containers: [{ name: 'app', image: 'registry.invalid/app:1', volumeMounts: [{ name: 'data', mountPath: '/data' }] }],
            volumes: [{ name: 'data', persistentVolumeClaim: { claimName: vol.claim } }],
          },
        },
      });
      const uid = created.metadata?.uid ?? '';
      world.pods.push({ namespace: vol.namespace, name, uid, node, volume: vol, target: targetPathFor(kubeletDir, uid, vol.pvName) });
    }

    // Kubelet's part on this node: vol_data.json, NodeStage once per volume, NodePublish per pod.
    const staged = new Set<string>();
    for (const p of world.pods.filter((x) => x.node === THIS_NODE)) {
      const v = p.volume;
      if (!staged.has(v.handle)) {
        staged.add(v.handle);
        await mkdir(v.stagingPath, { recursive: true });
        await writeFile(join(dirname(v.stagingPath), 'vol_data.json'), JSON.stringify({ driverName: DRIVER, volumeHandle: v.handle }));
        await d.call('Node', 'NodeStageVolume', { volume_id: v.handle, staging_target_path: v.stagingPath, volume_capability: CAP, volume_context: v.volumeContext, secrets: s.secrets }, 60_000);
      }
      await mkdir(dirname(p.target), { recursive: true });
      await writeFile(join(dirname(p.target), 'vol_data.json'), JSON.stringify({
        specVolID: v.pvName, volumeHandle: v.handle, driverName: DRIVER, nodeName: THIS_NODE, volumeLifecycleMode: 'Persistent',
      }));
      await d.call('Node', 'NodePublishVolume', { volume_id: v.handle, staging_target_path: v.stagingPath, target_path: p.target, volume_capability: CAP, volume_context: v.volumeContext });
    }
    Object.assign(world, {
      kube: k, s3: s, nodeKubeconfig, startDriver: startDriverFn, cleanup,
      async killAll() {
        await world.driver?.stop('SIGKILL');
        for (const pid of await s3fsPidsUnder(base)) {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // already gone
          }
        }
      },
    });
    return world as World;
  } catch (err) {
    await cleanup();
    throw err;
  }
}

// --- "containers": mount namespaces ----------------------------------------------------------

export interface Container {
  pid: number;
  proc: ChildProcess;
  stop(): void;
}

/** A process in a new mount namespace: `slave` = mountPropagation HostToContainer, `private` = None. */
export async function container(propagation: 'slave' | 'private'): Promise<Container> {
  const proc = spawn('unshare', ['--mount', '--propagation', propagation, 'sleep', '3600'], { stdio: 'ignore' });
  const pid = proc.pid;
  if (!pid) throw new Error('unshare did not start');
  // Wait until the namespace exists (the pid's mnt ns differs from ours).
  const mine = await readLink('/proc/self/ns/mnt');
  for (let i = 0; i < 100; i++) {
    const theirs = await readLink(`/proc/${pid}/ns/mnt`).catch(() => mine);
    if (theirs !== mine) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { pid, proc, stop: () => proc.kill('SIGKILL') };
}

async function readLink(p: string): Promise<string> {
  const { readlink } = await import('node:fs/promises');
  return readlink(p);
}

/** Reads a file inside a namespace (or on the host when pid is undefined), bounded in time. */
export async function readIn(pid: number | undefined, path: string, timeoutMs = 3000): Promise<{ ok: boolean; text: string }> {
  try {
    if (pid === undefined) {
      const { stdout } = await run('timeout', [String(Math.ceil(timeoutMs / 1000)), 'cat', path]);
      return { ok: true, text: stdout };
    }
    const { stdout } = await run('nsenter', ['-t', String(pid), '-m', 'timeout', String(Math.ceil(timeoutMs / 1000)), 'cat', path], { timeout: timeoutMs + 1000 });
    return { ok: true, text: stdout };
  } catch (err) {
    return { ok: false, text: String((err as { stderr?: string }).stderr ?? (err as Error).message).trim() };
  }
}

function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8');
  } catch {
    return '';
  }
}

/** The pid of the s3fs serving a staging path now (its backing dir is what is bound there). */
export async function s3fsServing(world: Pick<World, 'base'>, stagingPath: string): Promise<number> {
  const { readMountTable, layersAt } = await import('../../src/mount/index.js');
  const table = await readMountTable();
  const top = layersAt(table, stagingPath).at(-1);
  const backing = table.find((m) => m.device === top?.device && m.mountPoint.startsWith(join(world.base, 'state')))?.mountPoint;
  if (!backing) throw new Error(`no backing dir of ${stagingPath}`);
  const pid = (await s3fsPidsUnder(world.base)).find((x) => cmdline(x).split('\0').includes(backing));
  if (!pid) throw new Error(`no s3fs of ${stagingPath}`);
  return pid;
}

export async function writeHost(path: string, text: string): Promise<void> {
  await writeFile(path, text);
}

export async function readHost(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
