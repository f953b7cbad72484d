// A real, throwaway Kubernetes API for tests: etcd 3.6 + kube-apiserver 1.34 on 127.0.0.1, RBAC on,
// a self-signed serving certificate, a service-account signing key (so TokenRequest works), an admin
// identity (static token in system:masters) and helpers that mint kubeconfigs for limited identities.
// No scheduler, controller-manager or kubelet: Pods stay Pending and PV/PVC binding is the test's job
// (see bindClaim()).
//
//   const kube = await startKube();
//   kube.server, kube.adminKubeconfig (== kube.kubeconfigPath), kube.core / kube.storage / kube.rbac
//   await kube.kubeconfigForRules('node-plugin', rules)        -> kubeconfig path of a ServiceAccount bound to exactly `rules`
//   await kube.kubeconfigForServiceAccount('kube-system', 'sa') -> kubeconfig path of an existing ServiceAccount
//   await kube.create(objects, { dryRun: true })                -> server-side (dry-run) create of any manifests
//   await kube.stopApiServer(); await kube.startApiServer()     -> API down/up on the same port (etcd keeps the data)
//   await kube.stop()
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  ApiException, CoreV1Api, KubeConfig, KubernetesObjectApi, RbacAuthorizationV1Api, StorageV1Api,
  type KubernetesObject, type V1PolicyRule,
} from '@kubernetes/client-node';
import { freePort, waitForPort } from './net.js';
import { requireTool, tools } from './tools.js';

const run = promisify(execFile);

export interface KubeCluster {
  /** https://127.0.0.1:<port> */
  server: string;
  /** PEM of the serving certificate (self-signed; it is its own CA). */
  caPem: string;
  /** Kubeconfig file of the admin (static token, group system:masters). */
  adminKubeconfig: string;
  /** Same file as adminKubeconfig. */
  kubeconfigPath: string;
  /** Admin clients. */
  admin: KubeConfig;
  core: CoreV1Api;
  storage: StorageV1Api;
  rbac: RbacAuthorizationV1Api;
  objects: KubernetesObjectApi;
  /** Directory holding certs, kubeconfigs and data; removed by stop(). */
  dir: string;
  /** The service-account signing key (the controller-manager's token controller needs it). */
  saKeyFile: string;
  /** The serving certificate file (also the CA that verifies it). */
  servingCertFile: string;
  /**
   * Creates (or updates) ServiceAccount `<namespace>/<name>` (default namespace kube-system), a
   * ClusterRole with exactly `rules` and a ClusterRoleBinding, and returns the path of a kubeconfig
   * using a fresh token of that ServiceAccount.
   */
  kubeconfigForRules(name: string, rules: V1PolicyRule[], opts?: { namespace?: string }): Promise<string>;
  /** Kubeconfig path with a fresh token (TokenRequest) of an existing ServiceAccount. */
  kubeconfigForServiceAccount(namespace: string, name: string): Promise<string>;
  /** Creates arbitrary manifests in order; with dryRun the server validates and admits but stores nothing. */
  create(objects: KubernetesObject[], opts?: { dryRun?: boolean }): Promise<KubernetesObject[]>;
  /** Creates the namespace and its `default` ServiceAccount (normally the controller-manager's job). */
  createNamespace(name: string): Promise<void>;
  /**
   * Binds a PVC to a PV as the PV controller would: PV spec.claimRef, PVC spec.volumeName, and both
   * status.phase = Bound through the status subresource.
   */
  bindClaim(namespace: string, claim: string, pv: string): Promise<void>;
  /** Stops kube-apiserver only (etcd and all objects stay); startApiServer() brings it back on the same port. */
  stopApiServer(): Promise<void>;
  startApiServer(): Promise<void>;
  /** Last lines of kube-apiserver's log, for failure messages. */
  apiServerLog(): string;
  stop(): Promise<void>;
}

/** A test-owned process with its recent output (shared by the node harness). */
export interface Proc {
  child: ChildProcess;
  log: string[];
  exited: Promise<void>;
}

export function startProc(bin: string, args: string[]): Proc {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  const log: string[] = [];
  const keep = (d: Buffer): void => {
    for (const line of d.toString().split('\n')) if (line) log.push(line);
    if (log.length > 400) log.splice(0, log.length - 400);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return { child, log, exited };
}

export async function stopProc(p: Proc | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return;
  p.child.kill('SIGTERM');
  const timer = setTimeout(() => p.child.kill('SIGKILL'), 5000);
  await p.exited;
  clearTimeout(timer);
}

/** GET an API path with the admin token; resolves to the HTTP status (0 when nothing answers). */
function getStatus(server: string, path: string, token: string, ca: string): Promise<number> {
  return new Promise((resolve) => {
    const req = request(`${server}${path}`, { ca, headers: { authorization: `Bearer ${token}` }, timeout: 3000 }, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

export function kubeconfigYaml(o: { server: string; caPem: string; user: string; token: string }): string {
  // JSON is valid YAML; KubeConfig.loadFromFile and kubectl both read it.
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'test', cluster: { server: o.server, 'certificate-authority-data': Buffer.from(o.caPem).toString('base64') } }],
    users: [{ name: o.user, user: { token: o.token } }],
    contexts: [{ name: 'test', context: { cluster: 'test', user: o.user } }],
    'current-context': 'test',
  }, null, 2);
}

const isConflict = (err: unknown): boolean => err instanceof ApiException && err.code === 409;

export interface KubeOptions {
  /**
   * Extra kube-apiserver flags, appended (a repeated flag wins over the default: e.g. a whole node's
   * `--authorization-mode Node,RBAC`, its client CA and kubelet client certificate).
   */
  extraApiArgs?: string[];
}

export async function startKube(opts: KubeOptions = {}): Promise<KubeCluster> {
  const apiserverBin = requireTool(tools.kubeApiserver);
  const etcdBin = requireTool(tools.etcd);
  const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-kube-'));
  let etcd: Proc | undefined;
  let apiserver: Proc | undefined;
  try {
    // Serving certificate for 127.0.0.1/localhost, self-signed: the kubeconfig trusts it directly.
    const certFile = join(dir, 'serving.crt');
    const keyFile = join(dir, 'serving.key');
    await run('openssl', [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '7', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost',
      '-addext', 'basicConstraints=critical,CA:TRUE',
    ]);
    const { readFile } = await import('node:fs/promises');
    const caPem = await readFile(certFile, 'utf8');
    const saKeyFile = join(dir, 'sa.key');
    const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
    await writeFile(saKeyFile, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
    const adminToken = randomBytes(24).toString('hex');
    const tokenFile = join(dir, 'tokens.csv');
    await writeFile(tokenFile, `${adminToken},admin,admin-uid,"system:masters"\n`, { mode: 0o600 });

    const etcdPort = await freePort();
    const peerPort = await freePort();
    const etcdData = join(dir, 'etcd');
    await mkdir(etcdData, { mode: 0o700 });
    etcd = startProc(etcdBin, [
      '--name', 'default', '--data-dir', etcdData, '--log-level', 'warn', '--unsafe-no-fsync',
      '--listen-client-urls', `http://127.0.0.1:${etcdPort}`, '--advertise-client-urls', `http://127.0.0.1:${etcdPort}`,
      '--listen-peer-urls', `http://127.0.0.1:${peerPort}`, '--initial-advertise-peer-urls', `http://127.0.0.1:${peerPort}`,
      '--initial-cluster', `default=http://127.0.0.1:${peerPort}`,
    ]);
    await waitForPort(etcdPort, 20_000).catch((err: Error) => {
      throw new Error(`etcd did not start: ${err.message}\n${etcd?.log.slice(-20).join('\n')}`);
    });

    const port = await freePort();
    const server = `https://127.0.0.1:${port}`;
    const apiArgs = [
      '--etcd-servers', `http://127.0.0.1:${etcdPort}`,
      '--bind-address', '127.0.0.1', '--advertise-address', '127.0.0.1', '--secure-port', String(port),
      '--tls-cert-file', certFile, '--tls-private-key-file', keyFile,
      '--token-auth-file', tokenFile,
      // A list flag: a caller's own --authorization-mode replaces this one instead of adding to it.
      ...(opts.extraApiArgs?.includes('--authorization-mode') ? [] : ['--authorization-mode', 'RBAC']),
      '--service-account-issuer', 'https://kubernetes.default.svc.cluster.local',
      '--service-account-key-file', saKeyFile, '--service-account-signing-key-file', saKeyFile,
      '--service-cluster-ip-range', '10.0.0.0/24',
      '--cert-dir', join(dir, 'apiserver-certs'),
      '--storage-media-type', 'application/json',
      // As on every real cluster that runs CSI node plugins (kubeadm sets it too): privileged pods allowed.
      '--allow-privileged=true',
      '--v', '1',
      ...(opts.extraApiArgs ?? []),
    ];
    const startApiServer = async (): Promise<void> => {
      if (apiserver && apiserver.child.exitCode === null && apiserver.child.signalCode === null) return;
      apiserver = startProc(apiserverBin, apiArgs);
      const started = Date.now();
      // /readyz includes the RBAC bootstrap post-start hook, so roles work once it says 200.
      while (Date.now() - started < 90_000) {
        if (apiserver.child.exitCode !== null) break;
        if ((await getStatus(server, '/readyz', adminToken, caPem)) === 200) return;
        await new Promise((r) => setTimeout(r, 200));
      }
      const tail = apiserver.log.slice(-30).join('\n');
      await stopProc(apiserver);
      throw new Error(`kube-apiserver did not become ready:\n${tail}`);
    };
    await startApiServer();

    const adminKubeconfig = join(dir, 'admin.kubeconfig');
    await writeFile(adminKubeconfig, kubeconfigYaml({ server, caPem, user: 'admin', token: adminToken }), { mode: 0o600 });
    const admin = new KubeConfig();
    admin.loadFromFile(adminKubeconfig);
    const core = admin.makeApiClient(CoreV1Api);
    const storage = admin.makeApiClient(StorageV1Api);
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    const objects = KubernetesObjectApi.makeApiClient(admin);

    const ensureServiceAccount = async (namespace: string, name: string): Promise<void> => {
      try {
        await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name, namespace } } });
      } catch (err) {
        if (!isConflict(err)) throw err;
      }
    };
    let counter = 0;
    const kubeconfigForServiceAccount = async (namespace: string, name: string): Promise<string> => {
      const tr = await core.createNamespacedServiceAccountToken({
        name, namespace, body: { spec: { audiences: [], expirationSeconds: 7200 } },
      });
      const token = tr.status?.token;
      if (!token) throw new Error(`TokenRequest for ${namespace}/${name} returned no token`);
      const file = join(dir, `sa-${namespace}-${name}-${++counter}.kubeconfig`);
      await writeFile(file, kubeconfigYaml({ server, caPem, user: `${namespace}-${name}`, token }), { mode: 0o600 });
      return file;
    };

    const cluster: KubeCluster = {
      server,
      caPem,
      adminKubeconfig,
      kubeconfigPath: adminKubeconfig,
      admin,
      core,
      storage,
      rbac,
      objects,
      dir,
      saKeyFile,
      servingCertFile: certFile,
      async kubeconfigForRules(name, rules, opts = {}) {
        const namespace = opts.namespace ?? 'kube-system';
        await ensureServiceAccount(namespace, name);
        const roleName = `test:${namespace}:${name}`;
        const role = { metadata: { name: roleName }, rules };
        try {
          await rbac.createClusterRole({ body: role });
        } catch (err) {
          if (!isConflict(err)) throw err;
          await rbac.replaceClusterRole({ name: roleName, body: role });
        }
        try {
          await rbac.createClusterRoleBinding({
            body: {
              metadata: { name: roleName },
              roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: roleName },
              subjects: [{ kind: 'ServiceAccount', name, namespace }],
            },
          });
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
        return kubeconfigForServiceAccount(namespace, name);
      },
      kubeconfigForServiceAccount,
      async create(list, opts = {}) {
        const out: KubernetesObject[] = [];
        for (const obj of list) out.push(await objects.create(obj, undefined, opts.dryRun ? 'All' : undefined));
        return out;
      },
      async createNamespace(name) {
        try {
          await core.createNamespace({ body: { metadata: { name } } });
        } catch (err) {
          if (!isConflict(err)) throw err;
        }
        await ensureServiceAccount(name, 'default');
      },
      async bindClaim(namespace, claim, pvName) {
        const pvc = await core.readNamespacedPersistentVolumeClaim({ name: claim, namespace });
        const pv = await core.readPersistentVolume({ name: pvName });
        pv.spec = { ...pv.spec, claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace, name: claim, uid: pvc.metadata?.uid, resourceVersion: pvc.metadata?.resourceVersion } };
        const pvNow = await core.replacePersistentVolume({ name: pvName, body: pv });
        pvNow.status = { phase: 'Bound' };
        await core.replacePersistentVolumeStatus({ name: pvName, body: pvNow });
        pvc.spec = { ...pvc.spec, volumeName: pvName };
        const pvcNow = await core.replaceNamespacedPersistentVolumeClaim({ name: claim, namespace, body: pvc });
        pvcNow.status = { ...pvcNow.status, phase: 'Bound', accessModes: pv.spec.accessModes, capacity: pv.spec.capacity };
        await core.replaceNamespacedPersistentVolumeClaimStatus({ name: claim, namespace, body: pvcNow });
      },
      async stopApiServer() {
        await stopProc(apiserver);
      },
      startApiServer,
      apiServerLog: () => apiserver?.log.slice(-40).join('\n') ?? '',
      async stop() {
        await stopProc(apiserver);
        await stopProc(etcd);
        await rm(dir, { recursive: true, force: true });
      },
    };
    return cluster;
  } catch (err) {
    await stopProc(apiserver);
    await stopProc(etcd);
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}
