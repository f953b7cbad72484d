// What the end-to-end tests do to the cluster as a user would: claims, pods with the claim at /data,
// deletions, and what they read back from the node (its mount table, the driver's call log, S3).
// One namespace per test file; `workloads(world, ns)` binds these to it.
import { createHash } from 'node:crypto';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import type { CoreV1Event, V1Pod, V1PodSecurityContext, V1Probe } from '@kubernetes/client-node';
import { mountsUnder, readMountTable } from '../../src/mount/index.js';
import { s3fsPidsWhere } from '../../src/mount/s3fs-process.js';
import { isPodReady } from '../harness/cluster.js';
import { waitFor } from '../harness/net.js';
import { provisionLikeExternalProvisioner } from '../harness/provisioner.js';
import { DRIVER, NAMESPACE, type World } from './world.js';

export interface PodOpts {
  readOnly?: boolean;
  securityContext?: V1PodSecurityContext;
  /** The container's mountPropagation for /data (default: none, i.e. private). */
  mountPropagation?: 'HostToContainer' | 'None';
  livenessProbe?: V1Probe;
}

export interface Workloads {
  ns: string;
  claim(name: string, opts?: { sc?: string; volumeName?: string; accessModes?: string[] }): Promise<void>;
  /** A claim provisioned as external-provisioner would, bound; returns the PV name. */
  provision(name: string, sc?: string): Promise<string>;
  /** A busybox pod running `script` with the claim at /data; stays up after the script (sleep). */
  pod(name: string, claimName: string, script: string, opts?: PodOpts): Promise<V1Pod>;
  /** pod(), then Ready, then its log once the script printed `script-done`. */
  runPod(name: string, claimName: string, script: string, opts?: PodOpts): Promise<string>;
  deletePods(...names: string[]): Promise<void>;
  logs(pod: string): Promise<string>;
  readPod(name: string): Promise<V1Pod>;
  /** Mounts on the host of one PV: its staging path and its pods' targets. */
  mountsOfPv(pv: string): Promise<{ staging: string[]; targets: string[] }>;
  bucketOf(pv: string): Promise<{ bucket: string; prefix: string }>;
  keysIn(bucket: string, prefix: string): Promise<string[]>;
  /** PIDs of the s3fs processes serving a bucket (any prefix of it). */
  s3fsOfBucket(bucket: string): Promise<number[]>;
  /** The node plugin's JSON call log lines of one Node method (current container only). */
  driverCalls(method: string): Promise<Array<Record<string, unknown>>>;
  /** The Events of one object of this namespace with `reason`, as `kubectl describe` lists them. */
  eventsOf(kind: 'Pod' | 'PersistentVolumeClaim', name: string, reason: string): Promise<CoreV1Event[]>;
}

export function workloads(w: World, ns: string): Workloads {
  const core = w.node.kube.core;
  const self: Workloads = {
    ns,
    async claim(name, opts = {}) {
      await core.createNamespacedPersistentVolumeClaim({
        namespace: ns,
        body: {
          metadata: { name },
          spec: {
            accessModes: opts.accessModes ?? ['ReadWriteMany'],
            storageClassName: opts.volumeName ? '' : opts.sc ?? 's3fs',
            ...(opts.volumeName ? { volumeName: opts.volumeName } : {}),
            resources: { requests: { storage: '1Gi' } },
          },
        },
      });
    },
    async provision(name, sc = 's3fs') {
      await self.claim(name, { sc });
      const pv = await provisionLikeExternalProvisioner({ core, storage: w.node.kube.storage, controllerSocket: await w.controllerSocket(), driverName: DRIVER }, { namespace: ns, name });
      await waitFor(`claim ${name} Bound`, async () => (await core.readNamespacedPersistentVolumeClaim({ namespace: ns, name })).status?.phase === 'Bound' || undefined, 60_000, 200);
      return pv.metadata?.name ?? '';
    },
    pod(name, claimName, script, opts = {}) {
      return core.createNamespacedPod({
        namespace: ns,
        body: {
          metadata: { name },
          spec: {
            terminationGracePeriodSeconds: 2,
            securityContext: opts.securityContext,
            containers: [{
              name: 'c', image: w.images.workload.ref, imagePullPolicy: 'Never',
              command: ['sh', '-c', `${script}\necho script-done\nexec sleep 100000`],
              ...(opts.livenessProbe ? { livenessProbe: opts.livenessProbe } : {}),
              volumeMounts: [{ name: 'v', mountPath: '/data', ...(opts.mountPropagation ? { mountPropagation: opts.mountPropagation } : {}) }],
            }],
            volumes: [{ name: 'v', persistentVolumeClaim: { claimName, readOnly: opts.readOnly ?? false } }],
          },
        },
      });
    },
    async runPod(name, claimName, script, opts = {}) {
      await self.pod(name, claimName, script, opts);
      await w.node.waitPod(ns, name, isPodReady, 120_000, 'Ready');
      return waitFor(`pod ${name} script`, async () => {
        const log = await self.logs(name).catch(() => '');
        return log.includes('script-done') ? log : undefined;
      }, 60_000, 250);
    },
    async deletePods(...names) {
      const uids: string[] = [];
      for (const name of names) {
        const p = await core.readNamespacedPod({ namespace: ns, name }).catch(() => undefined);
        if (p?.metadata?.uid) uids.push(p.metadata.uid);
        await core.deleteNamespacedPod({ namespace: ns, name }).catch(() => undefined);
      }
      await waitFor('pods gone', async () => {
        const left = (await core.listNamespacedPod({ namespace: ns })).items.filter((p) => uids.includes(p.metadata?.uid ?? ''));
        return left.length === 0 || undefined;
      }, 120_000, 250);
    },
    logs: (pod) => w.logs(ns, pod),
    readPod: (name) => core.readNamespacedPod({ namespace: ns, name }),
    async mountsOfPv(pv) {
      const handle = (await core.readPersistentVolume({ name: pv })).spec?.csi?.volumeHandle ?? '';
      // kubelet stages a CSI volume at plugins/kubernetes.io/csi/<driver>/<sha256 of its handle>/globalmount.
      const staging = `/plugins/kubernetes.io/csi/${DRIVER}/${createHash('sha256').update(handle).digest('hex')}/globalmount`;
      const all = mountsUnder(await readMountTable(), w.node.kubeletDir);
      return {
        staging: all.filter((m) => m.mountPoint.endsWith(staging)).map((m) => m.mountPoint),
        targets: all.filter((m) => m.mountPoint.endsWith(`/volumes/kubernetes.io~csi/${pv}/mount`)).map((m) => m.mountPoint),
      };
    },
    async bucketOf(pv) {
      const obj = await core.readPersistentVolume({ name: pv });
      const [bucket, ...rest] = (obj.spec?.csi?.volumeHandle ?? '').split('/');
      return { bucket: bucket ?? '', prefix: rest.join('/') };
    },
    async keysIn(bucket, prefix) {
      const r = await w.s3client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix ? `${prefix}/` : undefined }));
      return (r.Contents ?? []).map((o) => o.Key ?? '');
    },
    s3fsOfBucket: (bucket) => s3fsPidsWhere((argv) => argv.some((a) => a === bucket || a.startsWith(`${bucket}:`))),
    async driverCalls(method) {
      const pod = await w.nodePod();
      const log = await w.logs(NAMESPACE, pod.metadata?.name ?? '', 's3fs-csi');
      return log.split('\n').filter((l) => l.includes(`"/csi.v1.Node/${method}"`)).map((l) => JSON.parse(l) as Record<string, unknown>);
    },
    async eventsOf(kind, name, reason) {
      const fieldSelector = `involvedObject.kind=${kind},involvedObject.name=${name},reason=${reason}`;
      return (await core.listNamespacedEvent({ namespace: ns, fieldSelector })).items;
    },
  };
  return self;
}
