// A real single-node Kubernetes for the end-to-end tests: etcd, kube-apiserver (Node,RBAC
// authorization, NodeRestriction), kube-controller-manager, kube-scheduler, containerd + runc and
// kubelet 1.34, all on 127.0.0.1, with images imported locally (no registry is reachable). See
// docs/e2e.md.
//
//   const node = await startNode({ images: [pauseTar, busyboxTar, driverTar], sandboxImage });
//   ... helm install with node.kubeletDir, pods ...
//   await node.drain();         // workloads deleted, their volumes torn down by kubelet
//   const drift = await node.stop();   // [] when every process, mount, sysctl and directory is back
//
// Strict teardown, also after a failure: workloads deleted (kubelet unpublishes and unstages), then
// kubelet, containerd tasks and shims, the control plane stopped by PID; whatever is still mounted
// under the node's directory unmounted, network namespaces and cgroups removed, kubelet's sysctls
// restored, directories removed.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AppsV1Api, type V1Pod } from '@kubernetes/client-node';
import { mountsUnder, readMountTable } from '../../src/mount/index.js';
import { type Containerd, startContainerd } from './containerd.js';
import { type HostSnapshot, restoreHost, snapshotHost } from './host-state.js';
import { type KubeCluster, type Proc, startKube, startProc, stopProc } from './kube.js';
import { type Kubelet, startKubelet } from './kubelet.js';
import { killS3fsAndUnmountUnder, scrubDir, unmountUnder } from './mounts.js';
import { freePort, waitFor } from './net.js';
import { type NodePki, makeNodePki } from './pki.js';
import { requireTool, tools } from './tools.js';

const run = promisify(execFile);

export const NODE_NAME = 'localhost';

export interface NodeTimings {
  /** Process start of etcd -> API server ready. */
  apiReadyMs: number;
  /** Process start of etcd -> node Ready. */
  nodeReadyMs: number;
}

export interface TestNode {
  kube: KubeCluster;
  nodeName: string;
  dir: string;
  /** kubelet --root-dir (the chart's kubeletDir). */
  kubeletDir: string;
  apiPort: number;
  containerd: Containerd;
  kubelet: Kubelet;
  pki: NodePki;
  timings: NodeTimings;
  /** GET on kubelet's own HTTPS port (127.0.0.1) with the API server's kubelet client certificate. */
  kubeletGet(path: string): Promise<{ status: number; body: string }>;
  /** Waits until the pod satisfies `ok` (e.g. Ready); throws with its status and kubelet's last lines. */
  waitPod(namespace: string, name: string, ok: (p: V1Pod) => boolean, timeoutMs?: number, what?: string): Promise<V1Pod>;
  /**
   * Deletes workload controllers and pods (all, or those `keep` does not spare), gracefully, and
   * waits until they are gone and kubelet has torn their volumes down.
   */
  drain(keep?: (p: V1Pod) => boolean, timeoutMs?: number): Promise<void>;
  /** Last lines of kubelet's log, for failure messages. */
  kubeletLog(lines?: number): string;
  /** Stops everything; returns what could not be restored on the host ([] = clean). */
  stop(): Promise<string[]>;
}

export const isPodReady = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

function describePod(p: V1Pod | undefined): string {
  if (!p) return 'pod not found';
  const cs = [...(p.status?.initContainerStatuses ?? []), ...(p.status?.containerStatuses ?? [])]
    .map((c) => `${c.name}: ${JSON.stringify(c.state)} restarts=${c.restartCount}`).join('; ');
  return `phase=${p.status?.phase} conditions=${JSON.stringify(p.status?.conditions?.map((c) => [c.type, c.status, c.reason]))} ${cs}`;
}

export interface NodeOptions {
  /** docker-save tars imported into containerd before kubelet starts. */
  images: string[];
  /** The pause image's ref (containerd's sandbox_image), one of `images`. */
  sandboxImage: string;
}

export async function startNode(opts: NodeOptions): Promise<TestNode> {
  const kubeletBin = requireTool(tools.kubelet);
  const cmBin = requireTool(tools.kubeControllerManager);
  const schedBin = requireTool(tools.kubeScheduler);
  if (process.getuid?.() !== 0) throw new Error('a test node needs root');

  const host: HostSnapshot = await snapshotHost();
  const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-node-'));
  const kubeletDir = join(dir, 'kubelet');
  const started = Date.now();
  let kube: KubeCluster | undefined;
  let cm: Proc | undefined;
  let sched: Proc | undefined;
  let containerd: Containerd | undefined;
  let kubelet: Kubelet | undefined;

  const teardown = async (): Promise<string[]> => {
    await kubelet?.stop();
    if (containerd) {
      await containerd.killAllTasks().catch(() => 0);
      await containerd.stop();
    }
    await stopProc(sched);
    await stopProc(cm);
    await kube?.stop();
    // Driver pods' s3fs die with their containers; a hostPID pod's would not: kill by path anyway.
    await killS3fsAndUnmountUnder(dir);
    // Pod sandboxes' network namespaces are nsfs mounts under /run/netns.
    const netns = mountsUnder(await readMountTable(), '/run/netns').map((m) => m.mountPoint).filter((p) => !host.netns.some((n) => p === `/run/netns/${n}`));
    for (const p of netns) await run('umount', ['-l', p]).catch(() => undefined);
    await unmountUnder(kubeletDir);
    await scrubDir(dir);
    return restoreHost(host);
  };

  try {
    const pki = await makeNodePki(await mkdtemp(join(dir, 'pki-')), NODE_NAME);
    kube = await startKube({
      extraApiArgs: [
        '--authorization-mode', 'Node,RBAC',
        '--enable-admission-plugins', 'NodeRestriction',
        '--client-ca-file', pki.caCert,
        '--kubelet-client-certificate', pki.apiserverKubeletClient.cert,
        '--kubelet-client-key', pki.apiserverKubeletClient.key,
        // The node's only name is `localhost`: logs and exec reach kubelet on loopback.
        '--kubelet-preferred-address-types', 'Hostname',
      ],
    });
    const apiReadyMs = Date.now() - started;
    const apiPort = Number(new URL(kube.server).port);
    cm = startProc(cmBin, [
      '--kubeconfig', kube.adminKubeconfig, '--secure-port', '0', '--leader-elect=false', '--use-service-account-credentials',
      '--service-account-private-key-file', kube.saKeyFile, '--root-ca-file', kube.servingCertFile, '--v', '1',
    ]);
    sched = startProc(schedBin, ['--kubeconfig', kube.adminKubeconfig, '--secure-port', '0', '--leader-elect=false', '--v', '1']);

    containerd = await startContainerd(join(dir, 'containerd'), opts.sandboxImage);
    for (const tar of opts.images) await containerd.importImage(tar);

    const port = await freePort();
    kubelet = await startKubelet({
      bin: kubeletBin, dir: join(dir, 'kubelet-conf'), rootDir: kubeletDir, nodeName: NODE_NAME, port, healthzPort: await freePort(),
      containerdSocket: containerd.socket, caCert: pki.caCert, clientCert: pki.kubelet.cert, clientKey: pki.kubelet.key,
      server: kube.server, serverCaPem: kube.caPem,
    });
    const k = kube;
    const kl = kubelet;
    await waitFor('node Ready', async () => {
      if (kl.log.length && (await Promise.race([kl.exited.then(() => true), Promise.resolve(false)]))) throw new Error(`kubelet exited:\n${kl.log.slice(-30).join('\n')}`);
      const n = await k.core.readNode({ name: NODE_NAME }).catch(() => undefined);
      return n?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') || undefined;
    }, 120_000, 200).catch((err: Error) => {
      throw new Error(`${err.message}\nkubelet:\n${kl.log.slice(-40).join('\n')}\ncontainerd:\n${containerd?.log.slice(-10).join('\n')}`);
    });
    const nodeReadyMs = Date.now() - started;
    const apps = k.admin.makeApiClient(AppsV1Api);

    const node: TestNode = {
      kube: k,
      nodeName: NODE_NAME,
      dir,
      kubeletDir,
      apiPort,
      containerd,
      kubelet: kl,
      pki,
      timings: { apiReadyMs, nodeReadyMs },
      async kubeletGet(path) {
        const [cert, key] = await Promise.all([readFile(pki.apiserverKubeletClient.cert), readFile(pki.apiserverKubeletClient.key)]);
        return new Promise((resolve, reject) => {
          // kubelet's serving certificate is self-signed (made at its start): not verified here.
          const req = request({ host: '127.0.0.1', port, path, cert, key, rejectUnauthorized: false, timeout: 15_000 }, (res) => {
            let body = '';
            res.setEncoding('utf8');
            res.on('data', (c: string) => (body += c));
            res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
          });
          req.on('error', reject);
          req.on('timeout', () => req.destroy(new Error(`kubelet GET ${path} timed out`)));
          req.end();
        });
      },
      async waitPod(namespace, name, ok, timeoutMs = 120_000, what = 'condition') {
        let last: V1Pod | undefined;
        try {
          return await waitFor(`pod ${namespace}/${name} ${what}`, async () => {
            last = await k.core.readNamespacedPod({ namespace, name }).catch(() => undefined);
            return last && ok(last) ? last : undefined;
          }, timeoutMs, 250);
        } catch (err) {
          throw new Error(`${(err as Error).message}\n${describePod(last)}\nkubelet:\n${kl.log.filter((l) => /^[EW]\d{4}/.test(l)).slice(-25).join('\n')}`);
        }
      },
      async drain(keep = () => false, timeoutMs = 120_000) {
        const spared = (p: V1Pod): boolean => keep(p);
        const pods = (await k.core.listPodForAllNamespaces()).items.filter((p) => !spared(p));
        // Controllers first, or they would recreate what is deleted.
        const owners = new Set(pods.flatMap((p) => (p.metadata?.ownerReferences ?? []).map((o) => `${p.metadata?.namespace}/${o.kind}/${o.name}`)));
        for (const key of owners) {
          const [namespace, kind, name] = key.split('/') as [string, string, string];
          if (kind === 'DaemonSet') await apps.deleteNamespacedDaemonSet({ namespace, name }).catch(() => undefined);
          if (kind === 'ReplicaSet') {
            const rs = await apps.readNamespacedReplicaSet({ namespace, name }).catch(() => undefined);
            const dep = rs?.metadata?.ownerReferences?.find((o) => o.kind === 'Deployment');
            if (dep) await apps.deleteNamespacedDeployment({ namespace, name: dep.name }).catch(() => undefined);
            await apps.deleteNamespacedReplicaSet({ namespace, name }).catch(() => undefined);
          }
        }
        for (const p of pods) {
          await k.core.deleteNamespacedPod({ namespace: p.metadata?.namespace ?? 'default', name: p.metadata?.name ?? '' }).catch(() => undefined);
        }
        const uids = new Set(pods.map((p) => p.metadata?.uid));
        await waitFor('deleted pods gone and their volumes torn down', async () => {
          const left = (await k.core.listPodForAllNamespaces()).items.filter((p) => uids.has(p.metadata?.uid));
          if (left.length > 0) return undefined;
          const table = await readMountTable();
          const busy = [...uids].some((uid) => mountsUnder(table, join(kubeletDir, 'pods', uid ?? '')).some((m) => m.mountPoint.includes('/volumes/')));
          return busy ? undefined : true;
        }, timeoutMs, 250);
      },
      kubeletLog: (lines = 60) => kl.log.slice(-lines).join('\n'),
      async stop() {
        if (kl && (await Promise.race([kl.exited.then(() => false), Promise.resolve(true)]))) {
          // Still running: let kubelet tear every pod's volumes down before anything stops.
          await node.drain(() => false, 90_000).catch(() => undefined);
        }
        return teardown();
      },
    };
    return node;
  } catch (err) {
    const drift = await teardown().catch((e: Error) => [e.message]);
    if (drift.length) (err as Error).message += `\nteardown left: ${drift.join('; ')}`;
    throw err;
  }
}
