// The end-to-end world: a real single node (test/harness/cluster.ts), a real S3 server on the host's
// loopback, the driver image built from the Dockerfile and imported into containerd, and the chart
// installed with helm, the way a user installs it, with only what this machine forces changed:
//   - images: the local driver image (pullPolicy Never); the kubernetes-csi sidecar images cannot be
//     had here, so they are set to Never too (never pulled: no registry traffic) and stay waiting —
//     the tests do what external-provisioner would do (test/harness/provisioner.ts);
//   - hostNetwork for both roles and probes on 127.0.0.1: S3 listens on the host's loopback, and no
//     probe may go to a pod or node address;
//   - the API server is reached on 127.0.0.1 (KUBERNETES_SERVICE_HOST/PORT): no kube-proxy runs,
//     and the service IP must never be sent to.
import { execFile } from 'node:child_process';
import { mkdir, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { S3Client } from '@aws-sdk/client-s3';
import type { V1Pod } from '@kubernetes/client-node';
import { packageRoot } from '../../src/paths.js';
import { type TestNode, isPodReady, startNode } from '../harness/cluster.js';
import { helm, upgradeInstall, chartDir } from '../harness/chart.js';
import { type E2eImages, ensureE2eImages } from '../harness/images.js';
import { freePort, waitFor } from '../harness/net.js';
import { type S3Server, startS3Server } from '../harness/s3server.js';

const run = promisify(execFile);

export const NAMESPACE = 'kube-system';
export const RELEASE = 's3fs-csi';
export const DRIVER = 's3fs.csi.dev';
export const SECRET = 's3fs-csi-e2e-credentials';

export interface World {
  node: TestNode;
  s3: S3Server;
  s3client: S3Client;
  images: E2eImages;
  ports: { nodeHealth: number; controllerHealth: number };
  /** The values the chart was installed with (tests upgrade from them). */
  values: Record<string, unknown>;
  install(values: Record<string, unknown>): Promise<void>;
  /** The first live (not terminating) pod of a chart component: node, controller, mounter. */
  podOf(component: string): Promise<V1Pod>;
  nodePod(): Promise<V1Pod>;
  controllerPod(): Promise<V1Pod>;
  /** The controller's CSI socket as seen on the host (its pod's emptyDir). */
  controllerSocket(): Promise<string>;
  /** Lines of a container's log through the API server (kubelet on loopback). */
  logs(namespace: string, pod: string, container?: string): Promise<string>;
  /**
   * Writes every container log of the driver's namespace and of `namespaces` (current and previous
   * container), and kubelet's, under `dir`: what the next engineer reads when a test failed.
   */
  saveLogs(dir: string, namespaces?: string[]): Promise<void>;
  /**
   * saveLogs to `build/e2e/logs/before-<what>-<time>`, never failing: called before an upgrade or a
   * pod deletion takes the driver's pods, and their logs, away.
   */
  keepLogsBefore(what: string): Promise<void>;
  stop(): Promise<string[]>;
}

/** Where the e2e chart puts the mounter's passwd files (mounter.runtimeDir). */
export const mounterRuntimeDir = (node: Pick<TestNode, 'dir'>): string => join(node.dir, 'mounter-run');
/** The driver's --state-dir in the e2e chart (records of staged volumes). */
export const driverStateDir = (node: Pick<TestNode, 'dir'>): string => join(node.dir, 'driver-state');

export function chartValues(w: { node: TestNode; s3: S3Server; images: E2eImages; ports: { nodeHealth: number; controllerHealth: number; provisioner: number; resizer: number; mounterHealth: number } }): Record<string, unknown> {
  const ref = w.images.driver.ref;
  const apiEnv = [{ name: 'KUBERNETES_SERVICE_HOST', value: '127.0.0.1' }, { name: 'KUBERNETES_SERVICE_PORT', value: String(w.node.apiPort) }];
  return {
    image: { repository: ref.slice(0, ref.lastIndexOf(':')), tag: ref.slice(ref.lastIndexOf(':') + 1), pullPolicy: 'Never' },
    kubeletDir: w.node.kubeletDir,
    logVerbosity: 4,
    s3: { endpoint: w.s3.endpoint, region: w.s3.region },
    credentials: {
      create: true, name: SECRET, accessKeyID: w.s3.accessKey, secretAccessKey: w.s3.secretKey, endpoint: w.s3.endpoint, region: w.s3.region,
    },
    storageClasses: [{ name: 's3fs' }, { name: 's3fs-shared', bucket: 'e2e-shared' }],
    controller: {
      replicas: 1, hostNetwork: true, healthPort: w.ports.controllerHealth, env: apiEnv,
      provisioner: { httpPort: w.ports.provisioner, image: { pullPolicy: 'Never' } },
      resizer: { httpPort: w.ports.resizer, image: { pullPolicy: 'Never' } },
    },
    node: {
      hostNetwork: true, healthPort: w.ports.nodeHealth, stateDir: driverStateDir(w.node), env: apiEnv,
      recovery: { enabled: true, interval: '10s', parallelism: 32 },
    },
    // The socket and the passwd files in the test node's own directory, not the host's /run: removed
    // with it at teardown.
    mounter: { healthPort: w.ports.mounterHealth, socketDir: join(w.node.dir, 'mounter-socket'), runtimeDir: mounterRuntimeDir(w.node) },
    probes: { httpHost: '127.0.0.1' },
  };
}

export async function startWorld(): Promise<World> {
  const images = await ensureE2eImages();
  const s3 = await startS3Server();
  let node: TestNode | undefined;
  try {
    node = await startNode({ images: [images.pause.tar, images.workload.tar, images.driver.tar], sandboxImage: images.pause.ref });
    const n = node;
    const ports = { nodeHealth: await freePort(), controllerHealth: await freePort(), provisioner: await freePort(), resizer: await freePort(), mounterHealth: await freePort() };
    const s3client = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
    const podOf = async (component: string): Promise<V1Pod> => {
      const pods = await n.kube.core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `app.kubernetes.io/component=${component}` });
      const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp);
      const pod = live[0];
      if (!pod) throw new Error(`no ${component} pod`);
      return pod;
    };
    let installs = 0;
    const world: World = {
      node: n,
      s3,
      s3client,
      images,
      ports,
      values: {},
      async install(values) {
        // An upgrade replaces the driver's pods, and their logs go with them: keep them, since the
        // cause of a later failure (a repair that did not happen) is often only in there.
        if (installs++ > 0) await world.keepLogsBefore('install');
        const r = await upgradeInstall(values, { release: RELEASE, namespace: NAMESPACE, kubeconfig: n.kube.adminKubeconfig });
        if (r.code !== 0) throw new Error(`helm upgrade --install failed: ${r.stderr}`);
        world.values = values;
      },
      podOf,
      nodePod: () => podOf('node'),
      controllerPod: () => podOf('controller'),
      async controllerSocket() {
        const pod = await podOf('controller');
        const dir = join(n.kubeletDir, 'pods', pod.metadata?.uid ?? '', 'volumes', 'kubernetes.io~empty-dir', 'socket-dir');
        const real = await waitFor('the controller socket', async () => ((await readdir(dir).catch(() => [] as string[])).includes('csi.sock') ? join(dir, 'csi.sock') : undefined), 60_000, 200);
        // The path under kubelet's pods dir is longer than a unix socket address may be (108 bytes):
        // connect through a short symlink, as the sidecar does through its own short mount path.
        const link = join(n.dir, `ctl-${pod.metadata?.uid?.slice(0, 8) ?? 'x'}.sock`);
        await rm(link, { force: true });
        await symlink(real, link);
        return link;
      },
      async logs(namespace, pod, container) {
        return n.kube.core.readNamespacedPodLog({ namespace, name: pod, container });
      },
      async keepLogsBefore(what) {
        await world.saveLogs(join(packageRoot, 'build', 'e2e', 'logs', `before-${what}-${new Date().toISOString().replace(/[:.]/g, '-')}`)).catch(() => undefined);
      },
      async saveLogs(dir, namespaces = []) {
        await rm(dir, { recursive: true, force: true });
        await mkdir(dir, { recursive: true });
        for (const namespace of [NAMESPACE, ...namespaces]) {
          const pods = await n.kube.core.listNamespacedPod({ namespace }).catch(() => undefined);
          for (const p of pods?.items ?? []) {
            for (const c of p.spec?.containers ?? []) {
              for (const previous of [false, true]) {
                const text = await n.kube.core.readNamespacedPodLog({ namespace, name: p.metadata?.name ?? '', container: c.name, previous }).catch(() => undefined);
                if (text) await writeFile(join(dir, `${namespace}_${p.metadata?.name}_${c.name}${previous ? '.previous' : ''}.log`), text);
              }
            }
          }
        }
        await writeFile(join(dir, 'kubelet.log'), n.kubeletLog(100_000));
      },
      async stop() {
        // Workloads first (kubelet unpublishes and unstages through the running driver), then the
        // chart, then the node.
        const drift: string[] = [];
        const isDriver = (p: V1Pod): boolean => p.metadata?.namespace === NAMESPACE && p.metadata?.labels?.['app.kubernetes.io/name'] === 's3fs-csi';
        await n.drain(isDriver).catch((err: Error) => drift.push(`drain: ${err.message}`));
        await helm(['uninstall', RELEASE, '--namespace', NAMESPACE, '--kubeconfig', n.kube.adminKubeconfig, '--wait', '--timeout', '60s'], 90_000);
        drift.push(...(await n.stop()));
        await s3.stop();
        return drift;
      },
    };
    world.values = chartValues({ node: n, s3, images, ports });
    return world;
  } catch (err) {
    await node?.stop();
    await s3.stop();
    throw err;
  }
}

/** Waits for the node plugin pod to be Ready (its readiness probe, registration done). */
export async function waitNodePluginReady(w: World, timeoutMs = 120_000): Promise<V1Pod> {
  const pod = await waitFor('node plugin pod', () => w.nodePod().catch(() => undefined), timeoutMs, 250);
  return w.node.waitPod(NAMESPACE, pod.metadata?.name ?? '', isPodReady, timeoutMs, 'Ready');
}

/** Whether kubelet has registered the driver: the CSINode object lists it. */
export async function driverRegistered(w: World): Promise<boolean> {
  const { StorageV1Api } = await import('@kubernetes/client-node');
  const storage = w.node.kube.admin.makeApiClient(StorageV1Api);
  const csiNode = await storage.readCSINode({ name: w.node.nodeName }).catch(() => undefined);
  return csiNode?.spec?.drivers?.some((d) => d.name === DRIVER) ?? false;
}

export { chartDir, run };
