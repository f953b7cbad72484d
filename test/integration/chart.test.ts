// The Helm chart rendered by the real helm: lint, every value set, the flags it passes accepted by the
// driver's real command line, StorageClass parameters accepted by the real controller, the schema
// rejecting wrong values, and the examples.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import type {
  KubernetesObject, V1Container, V1CSIDriver, V1DaemonSet, V1Deployment, V1PersistentVolume, V1StorageClass, V1Volume,
} from '@kubernetes/client-node';
import { buildCli } from '../../src/cli.js';
import type { Config } from '../../src/config.js';
import { parseParameters } from '../../src/csi/controller-params.js';
import { parseVolumeId } from '../../src/s3/volume-id.js';
import { VALUE_SETS, chartDir, lint, objectsOf, only, parseManifests, render, template } from '../harness/chart.js';
import { startDriver } from '../harness/driver.js';

const container = (spec: { template: { spec?: { containers: V1Container[] } } }, name: string): V1Container => {
  const c = spec.template.spec?.containers.find((x) => x.name === name);
  assert.ok(c, `container ${name}`);
  return c;
};
const volume = (w: V1DaemonSet | V1Deployment, name: string): V1Volume => {
  const v = w.spec?.template.spec?.volumes?.find((x) => x.name === name);
  assert.ok(v, `volume ${name}`);
  return v;
};
const nodeDs = (objs: KubernetesObject[]): V1DaemonSet => only<V1DaemonSet>(objs, 'DaemonSet', '-node');
const mounterDs = (objs: KubernetesObject[]): V1DaemonSet => only<V1DaemonSet>(objs, 'DaemonSet', '-mounter');
const controllerDeploy = (objs: KubernetesObject[]): V1Deployment => only<V1Deployment>(objs, 'Deployment', '-controller');

/** Kubelet's $(VAR) expansion of container args from the container's env (here: the downward API). */
const expand = (args: string[], env: Record<string, string>): string[] => args.map((a) => a.replace(/\$\(([A-Z_]+)\)/g, (_, k: string) => env[k] ?? ''));

/** Parses serve args with the driver's real CLI (commander), returning the Config it would run with. */
async function configOf(args: string[]): Promise<Config> {
  let cfg: Config | undefined;
  const program = buildCli({
    serve: async (c) => {
      cfg = c;
    },
    probe: async () => {
      throw new Error('not a serve command line');
    },
  });
  program.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  await program.parseAsync(args, { from: 'user' });
  assert.ok(cfg, `no config from ${args.join(' ')}`);
  return cfg;
}

async function probeOf(command: string[]): Promise<{ endpoint: string; timeoutMs: number; requireReady: boolean }> {
  assert.equal(command[0], 's3fs-csi');
  let got: { endpoint: string; timeoutMs: number; requireReady: boolean } | undefined;
  const program = buildCli({
    serve: async () => {
      throw new Error('not a probe command line');
    },
    probe: async (o) => {
      got = o;
    },
  });
  program.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  for (const sub of program.commands) sub.exitOverride().configureOutput({ writeErr: () => undefined, writeOut: () => undefined });
  await program.parseAsync(command.slice(1), { from: 'user' });
  assert.ok(got);
  return got;
}

describe('helm chart: lint and render', () => {
  for (const [name, values] of Object.entries(VALUE_SETS)) {
    it(`value set "${name}": helm lint --strict passes and helm template renders`, async () => {
      const l = await lint(values);
      assert.equal(l.code, 0, `helm lint: ${l.stdout}${l.stderr}`);
      // A template `fail` is only an [INFO] line for lint, and would hide everything after it.
      assert.doesNotMatch(l.stdout + l.stderr, /Fail:|\[WARNING\]|\[ERROR\]/);
      const objs = await render(values);
      for (const kind of ['CSIDriver', 'DaemonSet', 'Deployment', 'ClusterRole', 'ServiceAccount']) {
        assert.ok(objectsOf(objs, kind).length > 0, `${name}: no ${kind}`);
      }
      // Every driver container's command line is one the real binary accepts.
      await configOf(expand(container(nodeDs(objs).spec!, 's3fs-csi').args ?? [], { KUBE_NODE_NAME: 'node-1' }));
      await configOf(container(controllerDeploy(objs).spec!, 's3fs-csi').args ?? []);
      const mounters = objectsOf(objs, 'DaemonSet').filter((o) => o.metadata?.name?.endsWith('-mounter')) as V1DaemonSet[];
      for (const m of mounters) await configOf(expand(container(m.spec!, 'mounter').args ?? [], { KUBE_NODE_NAME: 'node-1' }));
    });
  }
});

describe('helm chart: defaults', () => {
  it('CSIDriver: no attach, pod info, fsGroup delegated (File), republish on, Persistent only', async () => {
    const d = only<V1CSIDriver>(await render({}), 'CSIDriver');
    assert.equal(d.metadata?.name, 's3fs.csi.dev');
    assert.deepEqual(d.spec, {
      attachRequired: false, podInfoOnMount: true, fsGroupPolicy: 'File', requiresRepublish: true, volumeLifecycleModes: ['Persistent'],
    });
  });

  it('CSIDriver choices match the real node plugin: VOLUME_MOUNT_GROUP, so File delegates fsGroup to the driver', async (t) => {
    const node = await startDriver({ mode: 'node' });
    t.after(() => node.cleanup());
    const caps = await node.call<{ capabilities: { rpc?: { type: string } }[] }>('Node', 'NodeGetCapabilities');
    const types = caps.capabilities.map((c) => c.rpc?.type);
    assert.ok(types.includes('VOLUME_MOUNT_GROUP'), 'fsGroupPolicy File relies on VOLUME_MOUNT_GROUP, else kubelet would chown the bucket');
    assert.ok(types.includes('STAGE_UNSTAGE_VOLUME'));
  });

  it('node DaemonSet: root driver that asks the mounter and heals containers in place (hostPID, privileged), kubelet dir HostToContainer, probes as the kubernetes-csi docs recommend', async () => {
    const ds = nodeDs(await render({}));
    const pod = ds.spec!.template.spec!;
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(pod.tolerations, [{ operator: 'Exists' }]);
    assert.equal(pod.automountServiceAccountToken, true);
    assert.equal(pod.hostPID, true, 'heal in place enters running containers\' mount namespaces');
    const driver = container(ds.spec!, 's3fs-csi');
    assert.equal(driver.securityContext?.privileged, true, 'entering another mount namespace needs CAP_SYS_ADMIN');
    // Without heal in place the node plugin needs no privilege: the mounter mounts.
    const plain = nodeDs(await render({ node: { hostPID: false } }));
    assert.equal(plain.spec!.template.spec!.hostPID, undefined);
    assert.equal(container(plain.spec!, 's3fs-csi').securityContext?.privileged, false);
    assert.equal(driver.securityContext?.runAsUser, 0);
    assert.deepEqual(driver.env?.find((e) => e.name === 'KUBE_NODE_NAME')?.valueFrom, { fieldRef: { fieldPath: 'spec.nodeName' } });
    // V8 heap limits (node.v8): a small young generation keeps the idle driver small (docs/bench.md).
    assert.equal(driver.env?.find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-semi-space-size=2 --max-old-space-size=256');
    const v8Off = container(nodeDs(await render({ node: { v8: { maxSemiSpaceSizeMiB: 0, maxOldSpaceSizeMiB: 0 } } })).spec!, 's3fs-csi');
    assert.equal(v8Off.env?.find((e) => e.name === 'NODE_OPTIONS'), undefined, 'V8 defaults: NODE_OPTIONS left to node.env');
    const oldOnly = container(nodeDs(await render({ node: { v8: { maxSemiSpaceSizeMiB: 0, maxOldSpaceSizeMiB: 512 } } })).spec!, 's3fs-csi');
    assert.equal(oldOnly.env?.find((e) => e.name === 'NODE_OPTIONS')?.value, '--max-old-space-size=512');
    const mounts = Object.fromEntries((driver.volumeMounts ?? []).map((m) => [m.name, m]));
    assert.equal(mounts['kubelet-dir']?.mountPath, '/var/lib/kubelet');
    assert.equal(mounts['kubelet-dir']?.mountPropagation, 'HostToContainer');
    assert.equal(mounts['mounter-socket']?.mountPath, '/run/s3fs-csi-mounter');
    for (const gone of ['fuse-device', 'state-dir', 'runtime-dir']) assert.equal(mounts[gone], undefined, `${gone} belongs to the mounter`);
    assert.deepEqual(volume(ds, 'mounter-socket').hostPath, { path: '/run/s3fs-csi-mounter/s3fs.csi.dev', type: 'DirectoryOrCreate' });
    assert.deepEqual(volume(ds, 'kubelet-dir').hostPath, { path: '/var/lib/kubelet', type: 'Directory' });
    assert.deepEqual(volume(ds, 'plugin-dir').hostPath, { path: '/var/lib/kubelet/plugins/s3fs.csi.dev', type: 'DirectoryOrCreate' });

    assert.deepEqual(driver.livenessProbe, {
      httpGet: { path: '/healthz', port: 'healthz' }, initialDelaySeconds: 10, timeoutSeconds: 3, periodSeconds: 2, failureThreshold: 5,
    });
    // A slow start is waited for (up to 2 s x 60), not restarted into crash-loop back-off.
    assert.deepEqual(driver.startupProbe, { httpGet: { path: '/healthz', port: 'healthz' }, timeoutSeconds: 3, periodSeconds: 2, failureThreshold: 60 });
    assert.equal(driver.readinessProbe?.httpGet?.path, '/readyz');
    assert.equal(driver.ports?.find((p) => p.name === 'healthz')?.containerPort, 9808);

    const cfg = await configOf(expand(driver.args ?? [], { KUBE_NODE_NAME: 'node-1' }));
    assert.equal(cfg.mode, 'node');
    assert.equal(cfg.nodeId, 'node-1');
    assert.equal(cfg.socketPath, '/csi/csi.sock');
    assert.equal(cfg.mounterSocketPath, '/run/s3fs-csi-mounter/mounter.sock');
    assert.equal(cfg.kubeletDir, '/var/lib/kubelet');
    assert.deepEqual(cfg.http, { host: '0.0.0.0', port: 9808 });
    assert.equal(cfg.recovery.enabled, true);
    assert.equal(cfg.kubeconfig, process.env.KUBECONFIG, 'in cluster: no --kubeconfig flag');

    // Built-in registration (the default): one container, registering itself in plugins_registry.
    assert.deepEqual(ds.spec!.template.spec!.containers.map((c) => c.name), ['s3fs-csi']);
    assert.deepEqual(cfg.registration, {
      socketPath: '/registration/s3fs.csi.dev-reg.sock', kubeletCsiSocketPath: '/var/lib/kubelet/plugins/s3fs.csi.dev/csi.sock',
    });
    assert.equal(mounts['registration-dir']?.mountPath, '/registration');
    assert.deepEqual(volume(ds, 'registration-dir').hostPath, { path: '/var/lib/kubelet/plugins_registry', type: 'Directory' });
  });

  it('node DaemonSet with registration=sidecar: node-driver-registrar announces the socket, the driver does not', async () => {
    const ds = nodeDs(await render({ node: { registration: 'sidecar' } }));
    const driver = container(ds.spec!, 's3fs-csi');
    const cfg = await configOf(expand(driver.args ?? [], { KUBE_NODE_NAME: 'node-1' }));
    assert.equal(cfg.registration, undefined);
    assert.equal(driver.volumeMounts?.find((m) => m.name === 'registration-dir'), undefined);
    const reg = container(ds.spec!, 'node-driver-registrar');
    assert.equal(reg.image, 'registry.k8s.io/sig-storage/csi-node-driver-registrar:v2.17.0');
    assert.ok(reg.args?.includes('--kubelet-registration-path=/var/lib/kubelet/plugins/s3fs.csi.dev/csi.sock'));
    assert.ok(reg.args?.includes('--csi-address=/csi/csi.sock'));
    assert.equal(reg.volumeMounts?.find((m) => m.name === 'registration-dir')?.mountPath, '/registration');
    assert.deepEqual(volume(ds, 'registration-dir').hostPath, { path: '/var/lib/kubelet/plugins_registry', type: 'Directory' });
  });

  it('mounter DaemonSet: OnDelete, privileged root with /dev/fuse, hostPID, kubelet dir Bidirectional, own state, no API token, liveness on its /healthz', async () => {
    const objs = await render({});
    const ds = mounterDs(objs);
    assert.deepEqual(ds.spec?.updateStrategy, { type: 'OnDelete' });
    const pod = ds.spec!.template.spec!;
    assert.equal(pod.hostPID, true);
    assert.equal(pod.automountServiceAccountToken, false);
    assert.equal(pod.priorityClassName, 'system-node-critical');
    assert.deepEqual(pod.tolerations, nodeDs(objs).spec?.template.spec?.tolerations, 'scheduled wherever the node plugin is');
    assert.deepEqual(pod.nodeSelector, nodeDs(objs).spec?.template.spec?.nodeSelector);
    const m = container(ds.spec!, 'mounter');
    assert.equal(m.image, container(nodeDs(objs).spec!, 's3fs-csi').image, 'same image, another role');
    assert.equal(m.securityContext?.privileged, true);
    assert.equal(m.securityContext?.runAsUser, 0);
    const mounts = Object.fromEntries((m.volumeMounts ?? []).map((x) => [x.name, x]));
    assert.equal(mounts['kubelet-dir']?.mountPropagation, 'Bidirectional');
    assert.equal(mounts['fuse-device']?.mountPath, '/dev/fuse');
    assert.equal(mounts['state-dir']?.mountPath, '/var/lib/s3fs-csi');
    assert.equal(mounts['state-dir']?.mountPropagation, undefined, 'backing mounts stay private to the mounter');
    assert.equal(mounts['mounter-socket']?.mountPath, '/run/s3fs-csi-mounter');
    assert.deepEqual(volume(ds, 'mounter-socket').hostPath, volume(nodeDs(objs), 'mounter-socket').hostPath, 'one socket dir for both');
    assert.deepEqual(volume(ds, 'fuse-device').hostPath, { path: '/dev/fuse', type: 'CharDevice' });
    assert.deepEqual(volume(ds, 'state-dir').hostPath, { path: '/var/lib/s3fs-csi', type: 'DirectoryOrCreate' });
    // passwd files on the host's /run (memory): they outlive the mounter pod, so its replacement repairs locally
    assert.deepEqual(volume(ds, 'runtime-dir').hostPath, { path: '/run/s3fs-csi/s3fs.csi.dev', type: 'DirectoryOrCreate' });
    assert.equal(volume(ds, 'runtime-dir').emptyDir, undefined);
    assert.equal(mounts['runtime-dir']?.mountPath, '/run/s3fs-csi');
    assert.deepEqual(m.livenessProbe?.httpGet, { path: '/healthz', port: 'healthz' });
    assert.deepEqual(m.startupProbe?.httpGet, { path: '/healthz', port: 'healthz' });
    assert.equal(m.ports?.find((p) => p.name === 'healthz')?.containerPort, 9810);
    const cfg = await configOf(expand(m.args ?? [], { KUBE_NODE_NAME: 'node-1' }));
    assert.equal(cfg.mode, 'mounter');
    assert.equal(cfg.nodeId, 'node-1');
    assert.equal(cfg.mounterSocketPath, '/run/s3fs-csi-mounter/mounter.sock');
    assert.equal(cfg.stateDir, '/var/lib/s3fs-csi');
    assert.equal(cfg.runtimeDir, '/run/s3fs-csi');
    assert.equal(cfg.kubeletDir, '/var/lib/kubelet');
    assert.deepEqual(cfg.http, { host: '0.0.0.0', port: 9810 });
    assert.ok((pod.terminationGracePeriodSeconds ?? 0) * 1000 > cfg.shutdownTimeoutMs + 20_000, 'grace covers calls and the s3fs flush');
  });

  it('mounter off: s3fs back in the privileged node plugin with /dev/fuse, Bidirectional, state and runtime dirs', async () => {
    const objs = await render(VALUE_SETS.noMounter!);
    assert.equal(objectsOf(objs, 'DaemonSet').length, 1);
    const ds = nodeDs(objs);
    const driver = container(ds.spec!, 's3fs-csi');
    assert.equal(driver.securityContext?.privileged, true);
    const mounts = Object.fromEntries((driver.volumeMounts ?? []).map((m) => [m.name, m]));
    assert.equal(mounts['kubelet-dir']?.mountPropagation, 'Bidirectional');
    assert.equal(mounts['fuse-device']?.mountPath, '/dev/fuse');
    assert.equal(mounts['mounter-socket'], undefined);
    assert.deepEqual(volume(ds, 'fuse-device').hostPath, { path: '/dev/fuse', type: 'CharDevice' });
    // passwd files live in memory only
    assert.deepEqual(volume(ds, 'runtime-dir').emptyDir, { medium: 'Memory', sizeLimit: '16Mi' });
    const cfg = await configOf(expand(driver.args ?? [], { KUBE_NODE_NAME: 'node-1' }));
    assert.equal(cfg.mounterSocketPath, undefined);
    assert.equal(cfg.runtimeDir, '/run/s3fs-csi');
    assert.equal(cfg.stateDir, '/var/lib/s3fs-csi');
    assert.equal(objectsOf(objs, 'Service').length, 2, 'no mounter metrics Service');
  });

  it('controller Deployment: 2 replicas, non-root driver, provisioner/resizer with leader election, socket on an emptyDir', async () => {
    const objs = await render({});
    const dep = controllerDeploy(objs);
    assert.equal(dep.spec?.replicas, 2);
    const pod = dep.spec!.template.spec!;
    assert.equal(pod.securityContext?.runAsNonRoot, true);
    assert.equal(pod.securityContext?.runAsUser, 65532);
    const driver = container(dep.spec!, 's3fs-csi');
    assert.equal(driver.securityContext?.readOnlyRootFilesystem, true);
    assert.equal(driver.securityContext?.allowPrivilegeEscalation, false);
    assert.notEqual(driver.securityContext?.privileged, true);
    assert.deepEqual(volume(dep, 'socket-dir').emptyDir, {});
    const cfg = await configOf(driver.args ?? []);
    assert.equal(cfg.mode, 'controller');
    assert.equal(cfg.socketPath, '/csi/csi.sock');
    assert.equal(cfg.s3.accessKeyId, undefined, 'no credentials wired in by default');

    const prov = container(dep.spec!, 'csi-provisioner');
    assert.equal(prov.image, 'registry.k8s.io/sig-storage/csi-provisioner:v6.3.0');
    for (const a of ['--extra-create-metadata', '--leader-election', '--csi-address=/csi/csi.sock']) assert.ok(prov.args?.includes(a), a);
    const rsz = container(dep.spec!, 'csi-resizer');
    assert.equal(rsz.image, 'registry.k8s.io/sig-storage/csi-resizer:v2.2.1');
    assert.ok(rsz.args?.includes('--leader-election'));
    assert.equal(pod.containers.length, 3, 'health monitor is off by default');
    assert.equal(only(objs, 'PodDisruptionBudget').kind, 'PodDisruptionBudget');
    // CRD-backed objects only on request
    assert.equal(objectsOf(objs, 'ServiceMonitor').length, 0);
    assert.equal(objectsOf(objs, 'Service').length, 3, 'a metrics Service per role (controller, node, mounter)');
    assert.equal(objectsOf(objs, 'StorageClass').length, 0);
    assert.equal(objectsOf(objs, 'Secret').length, 0);
  });
});

describe('helm chart: value sets', () => {
  it('exec probe: liveness `s3fs-csi probe --ignore-not-ready`, readiness without it, no HTTP port', async () => {
    const objs = await render(VALUE_SETS.execProbe!);
    for (const w of [nodeDs(objs), controllerDeploy(objs)]) {
      const driver = container(w.spec!, 's3fs-csi');
      const cfg = await configOf(expand(driver.args ?? [], { KUBE_NODE_NAME: 'n' }));
      assert.equal(cfg.http, undefined, 'no HTTP listener');
      assert.equal(driver.ports, undefined);
      const live = await probeOf(driver.livenessProbe?.exec?.command ?? []);
      const ready = await probeOf(driver.readinessProbe?.exec?.command ?? []);
      assert.equal(live.requireReady, false);
      assert.equal(ready.requireReady, true);
      assert.equal(`unix://${cfg.socketPath}`, live.endpoint);
      assert.equal(ready.endpoint, live.endpoint);
      assert.ok((driver.livenessProbe?.timeoutSeconds ?? 0) * 1000 > live.timeoutMs, 'kubelet timeout exceeds the probe deadline');
    }
    assert.equal(objectsOf(objs, 'Service').length, 0);
  });

  it('custom kubelet dir: hostPath, mount, --kubelet-dir and the registration path all follow it', async () => {
    const objs = await render(VALUE_SETS.customKubeletDir!);
    const ds = nodeDs(objs);
    const dir = '/var/lib/k0s/kubelet';
    assert.equal(volume(ds, 'kubelet-dir').hostPath?.path, dir);
    assert.equal(volume(ds, 'plugin-dir').hostPath?.path, `${dir}/plugins/s3fs.csi.dev`);
    assert.equal(volume(ds, 'registration-dir').hostPath?.path, `${dir}/plugins_registry`);
    const mds = mounterDs(objs);
    assert.equal(volume(mds, 'state-dir').hostPath?.path, '/data/s3fs-csi');
    assert.equal(volume(mds, 'kubelet-dir').hostPath?.path, dir);
    assert.equal(container(mds.spec!, 'mounter').volumeMounts?.find((m) => m.name === 'kubelet-dir')?.mountPath, dir);
    assert.equal(mds.spec?.template.spec?.hostNetwork, true, 'hostNetwork follows the node plugin');
    const mcfg = await configOf(expand(container(mds.spec!, 'mounter').args ?? [], { KUBE_NODE_NAME: 'n' }));
    assert.equal(mcfg.kubeletDir, dir);
    assert.equal(mcfg.stateDir, '/data/s3fs-csi');
    const driver = container(ds.spec!, 's3fs-csi');
    assert.equal(driver.volumeMounts?.find((m) => m.name === 'kubelet-dir')?.mountPath, dir);
    const cfg = await configOf(expand(driver.args ?? [], { KUBE_NODE_NAME: 'n' }));
    assert.equal(cfg.kubeletDir, dir);
    assert.equal(cfg.stateDir, '/data/s3fs-csi');
    assert.deepEqual(cfg.http, { host: '0.0.0.0', port: 19808 });
    assert.equal(cfg.registration?.kubeletCsiSocketPath, `${dir}/plugins/s3fs.csi.dev/csi.sock`);
    assert.equal(ds.spec?.template.spec?.hostNetwork, true);
    assert.equal(ds.spec?.template.spec?.dnsPolicy, 'ClusterFirstWithHostNet');
    // A trailing slash in the value does not leak into paths.
    const slash = nodeDs(await render({ kubeletDir: `${dir}/` }));
    assert.equal(volume(slash, 'plugin-dir').hostPath?.path, `${dir}/plugins/s3fs.csi.dev`);
  });

  it('shared bucket and bucket per volume: StorageClasses the real controller accepts, secrets wired for provision/expand/stage', async () => {
    const objs = await render(VALUE_SETS.sharedBucket!, { namespace: 'storage' });
    const shared = only<V1StorageClass>(objs, 'StorageClass', 's3fs-shared');
    const perVolume = only<V1StorageClass>(objs, 'StorageClass', 's3fs-buckets');
    assert.equal(shared.provisioner, 's3fs.csi.dev');
    assert.equal(shared.metadata?.annotations?.['storageclass.kubernetes.io/is-default-class'], 'true');
    assert.equal(shared.reclaimPolicy, 'Retain');
    assert.equal(perVolume.volumeBindingMode, 'WaitForFirstConsumer');
    assert.deepEqual(perVolume.mountOptions, ['stat_cache_expire=30']);
    assert.equal(parseParameters(shared.parameters).sharedBucket, 'team-data');
    assert.equal(parseParameters(shared.parameters).reclaimData, 'retain');
    assert.equal(parseParameters(perVolume.parameters).sharedBucket, undefined);
    assert.equal(parseParameters(perVolume.parameters).bucketPrefix, 'pvc');
    for (const sc of [shared, perVolume]) {
      for (const use of ['provisioner', 'controller-expand', 'node-stage']) {
        assert.equal(sc.parameters?.[`csi.storage.k8s.io/${use}-secret-name`], 's3-creds');
        assert.equal(sc.parameters?.[`csi.storage.k8s.io/${use}-secret-namespace`], 'storage');
      }
    }
    // The controller gets the same Secret as its default credentials (ListVolumes, volume health).
    const dep = controllerDeploy(objs);
    const driver = container(dep.spec!, 's3fs-csi');
    assert.ok(driver.args?.includes('--s3-secret-dir=/etc/s3fs-csi/credentials'));
    assert.equal(volume(dep, 'credentials').secret?.secretName, 's3-creds');
    const cfg = await configOf(driver.args ?? []);
    assert.equal(cfg.s3.endpoint, 'https://minio.storage.svc:9000');
    assert.equal(cfg.s3.region, 'eu-west-1');
  });

  it('everything on: chart-made Secret, CA bundle in both roles, health monitor, image by digest, ServiceMonitor only on request', async () => {
    const objs = await render(VALUE_SETS.everything!);
    const secret = only(objs, 'Secret') as KubernetesObject & { stringData?: Record<string, string> };
    assert.deepEqual(Object.keys(secret.stringData ?? {}).sort(), ['accessKeyID', 'endpoint', 'secretAccessKey']);
    const dep = controllerDeploy(objs);
    assert.equal(container(dep.spec!, 's3fs-csi').image, `ghcr.io/s3fs-csi/s3fs-csi@sha256:${'a'.repeat(64)}`);
    const hm = container(dep.spec!, 'csi-health-monitor');
    assert.equal(hm.image, 'registry.k8s.io/sig-storage/csi-external-health-monitor-controller:v0.18.0');
    assert.ok(hm.args?.includes('--leader-election'));
    assert.ok(dep.spec?.template.metadata?.annotations?.['checksum/credentials']);
    for (const w of [dep, nodeDs(objs)]) {
      const cfg = await configOf(expand(container(w.spec!, 's3fs-csi').args ?? [], { KUBE_NODE_NAME: 'n' }));
      assert.equal(cfg.s3.caBundle, '/etc/s3fs-csi/ca/ca.crt');
      assert.equal(volume(w, 'ca-bundle').configMap?.name, 's3-ca');
    }
    const withMonitor = await render({ ...VALUE_SETS.everything, metrics: { serviceMonitor: { enabled: true } } });
    assert.deepEqual(objectsOf(withMonitor, 'ServiceMonitor').map((o) => o.metadata?.name).sort(), ['s3fs-csi-controller', 's3fs-csi-mounter', 's3fs-csi-node']);
    assert.ok(!JSON.stringify(objectsOf(objs, 'Deployment')).includes('not-a-real-secret'), 'keys only in the Secret');
  });

  it('recovery off: no node role, no API token, --recovery=false', async () => {
    const objs = await render(VALUE_SETS.noRecovery!);
    assert.deepEqual(objectsOf(objs, 'ClusterRole').map((o) => o.metadata?.name), ['s3fs-csi-controller']);
    const ds = nodeDs(objs);
    assert.equal(ds.spec?.template.spec?.automountServiceAccountToken, false);
    const cfg = await configOf(expand(container(ds.spec!, 's3fs-csi').args ?? [], { KUBE_NODE_NAME: 'n' }));
    assert.equal(cfg.recovery.enabled, false);
  });
});

describe('helm chart: values.schema.json and template checks reject bad values', () => {
  const cases: [string, object, RegExp][] = [
    ['a string where a port belongs', { node: { healthPort: 'abc' } }, /healthPort.*want integer/s],
    ['a boolean where a count belongs', { controller: { replicas: true } }, /replicas.*want integer/s],
    ['an unknown probe mode', { probes: { mode: 'grpc' } }, /probes\/mode/],
    ['a relative kubelet dir', { kubeletDir: 'var/lib/kubelet' }, /kubeletDir/],
    ['a relative mounter socket dir', { mounter: { socketDir: 'run/m' } }, /socketDir/],
    ['a relative mounter runtime dir', { mounter: { runtimeDir: 'run/s3fs-csi' } }, /runtimeDir/],
    ['an unknown mounter key', { mounter: { updateStrategy: { type: 'RollingUpdate' } } }, /additional properties 'updateStrategy' not allowed/],
    ['a typo in a key', { nodes: {} }, /additional properties 'nodes' not allowed/],
    ['a bad duration', { node: { recovery: { interval: '1 minute' } } }, /interval/],
    ['an invalid bucket name', { storageClasses: [{ name: 'x', bucket: 'Not_A_Bucket' }] }, /bucket/],
    ['bucket and bucketPrefix together', { storageClasses: [{ name: 'x', bucket: 'team-data', bucketPrefix: 'p' }] }, /bucket-per-volume model only/],
    ['a chart-made Secret without keys', { credentials: { create: true } }, /needs credentials.accessKeyID/],
    ['(cluster) Kubernetes older than 1.26', {}, /needs Kubernetes >= 1.26/],
  ];
  for (const [what, values, message] of cases) {
    it(`rejects ${what}`, async () => {
      const r = await template(values, what.startsWith('(cluster)') ? { kubeVersion: '1.25.9' } : {});
      assert.notEqual(r.code, 0, `rendered although: ${what}`);
      assert.match(r.stderr, message);
    });
  }
});

describe('chart examples', () => {
  const examplesDir = join(chartDir, 'examples');
  const load = async (file: string): Promise<KubernetesObject[]> => parseManifests(await readFile(join(examplesDir, file), 'utf8'));

  it('has a PVC, a workload in each recovery style and a static PV', async () => {
    assert.deepEqual((await readdir(examplesDir)).sort(), ['pvc.yaml', 'static-pv.yaml', 'workload-host-to-container.yaml', 'workload-liveness.yaml']);
  });

  it('HostToContainer workload mounts the claim with HostToContainer propagation', async () => {
    const dep = only<V1Deployment>(await load('workload-host-to-container.yaml'), 'Deployment');
    const c = container(dep.spec!, 'app');
    assert.equal(c.volumeMounts?.[0]?.mountPropagation, 'HostToContainer');
  });

  it('liveness workload probes the mounted path itself, with a timeout for a hung mount', async () => {
    const dep = only<V1Deployment>(await load('workload-liveness.yaml'), 'Deployment');
    const c = container(dep.spec!, 'app');
    const mountPath = c.volumeMounts?.[0]?.mountPath;
    assert.ok(mountPath);
    assert.equal(c.volumeMounts?.[0]?.mountPropagation, undefined);
    assert.ok(c.livenessProbe?.exec?.command?.includes(mountPath), 'the probe touches the mount');
    assert.ok((c.livenessProbe?.timeoutSeconds ?? 0) > 1);
  });

  it('static PV names the default driver, a valid volume handle and the node-stage Secret', async () => {
    const objs = await load('static-pv.yaml');
    const pv = only<V1PersistentVolume>(objs, 'PersistentVolume');
    assert.equal(pv.spec?.csi?.driver, 's3fs.csi.dev');
    assert.deepEqual(parseVolumeId(pv.spec?.csi?.volumeHandle ?? ''), { bucket: 'my-existing-bucket', prefix: '' });
    assert.ok(pv.spec?.csi?.nodeStageSecretRef?.name);
    assert.equal(pv.spec?.persistentVolumeReclaimPolicy, 'Retain');
    assert.equal(only(objs, 'PersistentVolumeClaim').kind, 'PersistentVolumeClaim');
  });
});
