// The Helm chart under test: `helm lint`/`helm template` with the real helm binary, the rendered
// manifests as objects, and the value sets every chart test (render, RBAC, dry run) goes through.
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type KubernetesObject, loadAllYaml } from '@kubernetes/client-node';
import { packageRoot } from '../../src/paths.js';
import { requireTool, tools } from './tools.js';

export const chartDir = join(packageRoot, 'charts', 's3fs-csi');
/** The API version the chart is rendered for: the kube-apiserver the dry-run test starts. */
export const KUBE_VERSION = '1.34.4';

export interface HelmResult {
  code: number;
  stdout: string;
  stderr: string;
}

export function helm(args: string[], timeoutMs = 60_000): Promise<HelmResult> {
  const bin = requireTool(tools.helm);
  return new Promise((resolve) => {
    // Helm's own cache/config/data under tmp: tests never touch the user's ~/.config/helm.
    const home = join(tmpdir(), 's3fs-csi-helm');
    const env = { ...process.env, HELM_CACHE_HOME: join(home, 'cache'), HELM_CONFIG_HOME: join(home, 'config'), HELM_DATA_HOME: join(home, 'data') };
    execFile(bin, args, { timeout: timeoutMs, maxBuffer: 32 * 1024 * 1024, env }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Runs helm with the values written to a temporary file (-f), so nested objects need no --set syntax. */
async function withValues<T>(values: object, fn: (file: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-values-'));
  try {
    const file = join(dir, 'values.json');
    await writeFile(file, JSON.stringify(values));
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface RenderOptions {
  release?: string;
  namespace?: string;
  /** The cluster version helm renders for (default KUBE_VERSION). */
  kubeVersion?: string;
}

/** `helm template` as the raw result (for failure tests). */
export function template(values: object, opts: RenderOptions = {}): Promise<HelmResult> {
  return withValues(values, (file) => helm([
    'template', opts.release ?? 's3fs-csi', chartDir, '--namespace', opts.namespace ?? 'kube-system',
    '--kube-version', opts.kubeVersion ?? KUBE_VERSION, '-f', file,
  ]));
}

/** `helm template` parsed into objects; throws with helm's message when rendering fails. */
export async function render(values: object, opts: RenderOptions = {}): Promise<KubernetesObject[]> {
  const r = await template(values, opts);
  if (r.code !== 0) throw new Error(`helm template failed (${r.code}): ${r.stderr}`);
  return parseManifests(r.stdout);
}

/** `helm install`/`helm upgrade --install` of the chart against a real API server (kubeconfig file). */
export function upgradeInstall(values: object, opts: { release: string; namespace: string; kubeconfig: string }): Promise<HelmResult> {
  return withValues(values, (file) => helm([
    'upgrade', '--install', opts.release, chartDir, '--namespace', opts.namespace, '--kubeconfig', opts.kubeconfig, '-f', file, '--timeout', '60s',
  ], 120_000));
}

export function lint(values: object): Promise<HelmResult> {
  // --kube-version: a helm built from source without a version stamp would assume v1.20.
  return withValues(values, (file) => helm(['lint', '--strict', chartDir, '--kube-version', KUBE_VERSION, '-f', file]));
}

/** Plain objects (loadAllYaml builds the client's model classes; tests compare plain data). */
export function parseManifests(text: string): KubernetesObject[] {
  const objects = (loadAllYaml(text) as (KubernetesObject | null)[]).filter((o): o is KubernetesObject => Boolean(o && o.kind));
  return JSON.parse(JSON.stringify(objects)) as KubernetesObject[];
}

export function objectsOf(objects: KubernetesObject[], kind: string): KubernetesObject[] {
  return objects.filter((o) => o.kind === kind);
}

/** The one object of `kind` (whose name ends with `suffix`, when given); throws otherwise. */
export function only<T extends KubernetesObject = KubernetesObject>(objects: KubernetesObject[], kind: string, suffix = ''): T {
  const found = objects.filter((o) => o.kind === kind && (o.metadata?.name ?? '').endsWith(suffix));
  if (found.length !== 1) throw new Error(`expected one ${kind}${suffix ? ` named *${suffix}` : ''}, found ${found.length}`);
  return found[0] as T;
}

/**
 * The value sets every chart test goes through: the defaults and the shapes users deploy. Each one
 * must lint, render, and be accepted by a real kube-apiserver (server-side dry run).
 */
export const VALUE_SETS: Record<string, object> = {
  defaults: {},
  // Both provisioning models, wired to an existing credentials Secret.
  sharedBucket: {
    credentials: { name: 's3-creds' },
    s3: { endpoint: 'https://minio.storage.svc:9000', region: 'eu-west-1' },
    storageClasses: [
      { name: 's3fs-shared', default: true, bucket: 'team-data', options: 'allow_other,umask=0002', reclaimData: 'retain', reclaimPolicy: 'Retain' },
      { name: 's3fs-buckets', bucketPrefix: 'pvc', volumeBindingMode: 'WaitForFirstConsumer', mountOptions: ['stat_cache_expire=30'] },
    ],
  },
  // Exec probes (`s3fs-csi probe`) and no metrics: the driver opens no port at all.
  execProbe: { probes: { mode: 'exec' }, metrics: { enabled: false } },
  // A kubelet with another --root-dir (k0s, some managed distributions), on the host network.
  customKubeletDir: { kubeletDir: '/var/lib/k0s/kubelet', node: { stateDir: '/data/s3fs-csi', hostNetwork: true, healthPort: 19808 } },
  // Everything optional on: chart-made Secret, CA bundle, health monitor, digest-pinned image, the
  // Grafana dashboard (the PrometheusRule needs a CRD the test API server lacks: chart-alerts.test.ts).
  everything: {
    image: { digest: `sha256:${'a'.repeat(64)}` },
    credentials: { create: true, accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 'not-a-real-secret', endpoint: 'https://s3.example.test' },
    s3: { caBundle: { configMap: 's3-ca' } },
    controller: { healthMonitor: { enabled: true } },
    storageClasses: [{ name: 's3fs', parameters: { mounter: 's3fs' } }],
    commonLabels: { team: 'storage' },
    metrics: { grafanaDashboard: { enabled: true } },
  },
  // No recovery: the node gets no API access at all.
  noRecovery: { node: { recovery: { enabled: false } } },
  // Recovery without Kubernetes Events: the node role loses its events rule.
  noEvents: { node: { recovery: { events: false } } },
  // No mounter: s3fs runs in the (privileged) node plugin, as before the mounter existed.
  noMounter: { mounter: { enabled: false } },
};
