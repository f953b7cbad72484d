// Kubernetes access for the node plugin: the handful of reads recovery needs, behind a small
// interface (KubeReader) so discovery can be exercised with plain objects too. In a cluster the
// ServiceAccount token is used (in-cluster config); --kubeconfig points elsewhere (tests, laptops).
// Every failure becomes a KubeError saying what was being read and, for 403, which rule is missing.
import { ApiException, CoreV1Api, KubeConfig, StorageV1Api, type V1Pod } from '@kubernetes/client-node';
import { PooledKubeConfig } from './pooled-config.js';
import { ruleText } from './rbac.js';
import { type KubeAccessOptions, KubeError, type KubeReader } from './reader.js';

export { type KubeAccessOptions, KubeError, type KubeErrorKind, type KubeReader } from './reader.js';

export function loadKubeConfig(kubeconfig?: string): KubeConfig {
  const kc = new PooledKubeConfig();
  if (kubeconfig) kc.loadFromFile(kubeconfig);
  else if (!process.env.KUBERNETES_SERVICE_HOST || !process.env.KUBERNETES_SERVICE_PORT) {
    // loadFromCluster() would happily build "https://undefined:undefined" outside a cluster.
    throw new KubeError('other', 'not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset) and no --kubeconfig given');
  } else kc.loadFromCluster();
  if (!kc.getCurrentCluster()) throw new KubeError('other', kubeconfig ? `kubeconfig ${kubeconfig} names no cluster` : 'no in-cluster configuration');
  return kc;
}

/** The Status message of an API error body (a JSON string or an object), without echoing anything else. */
function statusMessage(body: unknown): string | undefined {
  let b = body;
  if (typeof b === 'string') {
    try {
      b = JSON.parse(b);
    } catch {
      return undefined;
    }
  }
  if (b && typeof b === 'object' && 'message' in b && typeof (b as { message: unknown }).message === 'string') {
    return (b as { message: string }).message;
  }
  return undefined;
}

function causeText(err: unknown): string {
  const e = err as { message?: string; cause?: { code?: string; message?: string } };
  return e.cause?.code ?? e.cause?.message ?? e.message ?? String(err);
}

interface Request {
  verb: string;
  resource: string;
  apiGroup?: string;
  what: string;
}

export function toKubeError(err: unknown, req: Request): KubeError {
  if (err instanceof KubeError) return err;
  if (err instanceof ApiException) {
    const code = err.code;
    const msg = statusMessage(err.body);
    if (code === 403) {
      return new KubeError('forbidden',
        `RBAC denies "${req.verb} ${req.resource}" (${req.what}): the node plugin's ClusterRole needs ` +
        `${ruleText(req.verb, req.resource, req.apiGroup)}${msg ? ` — API server: ${msg}` : ''}`, code);
    }
    if (code === 401) return new KubeError('unauthorized', `API server rejected the credentials while reading ${req.what} (401): token expired or invalid`, code);
    return new KubeError('other', `reading ${req.what} failed with HTTP ${code}${msg ? `: ${msg}` : ''}`, code);
  }
  return new KubeError('unreachable', `API server unreachable while reading ${req.what}: ${causeText(err)}`);
}

const isNotFound = (err: unknown): boolean => err instanceof ApiException && err.code === 404;

/**
 * `fn()`, or the error `onTimeout()` makes once `ms` have passed: client-node's requests carry no
 * deadline of their own, and a hung API server must not hold a scan or an Event write for ever.
 */
export async function withDeadline<T>(fn: () => Promise<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms);
  });
  try {
    return await Promise.race([fn(), deadline]);
  } finally {
    clearTimeout(timer);
  }
}

export function createKubeReader(opts: KubeAccessOptions = {}): KubeReader {
  const kc = loadKubeConfig(opts.kubeconfig);
  const core = kc.makeApiClient(CoreV1Api);
  const storage = kc.makeApiClient(StorageV1Api);
  const timeoutMs = opts.timeoutMs ?? 10_000;
  let calls = 0;

  const call = async <T>(req: Request, fn: () => Promise<T>, allowNotFound: boolean): Promise<T | undefined> => {
    calls++;
    try {
      return await withDeadline(fn, timeoutMs, () => new KubeError('timeout', `API server did not answer within ${timeoutMs} ms while reading ${req.what}`));
    } catch (err) {
      if (allowNotFound && isNotFound(err)) return undefined;
      throw toKubeError(err, req);
    }
  };

  return {
    get calls() {
      return calls;
    },
    async listPodsOnNode(node) {
      const fieldSelector = `spec.nodeName=${node}`;
      const pods: V1Pod[] = [];
      let cont: string | undefined;
      do {
        const page = await call({ verb: 'list', resource: 'pods', what: `pods on node ${node}` },
          () => core.listPodForAllNamespaces({ fieldSelector, limit: 500, _continue: cont }), false);
        pods.push(...(page?.items ?? []));
        cont = page?.metadata?._continue || undefined;
      } while (cont);
      return pods;
    },
    getPvc: (namespace, name) => call({ verb: 'get', resource: 'persistentvolumeclaims', what: `PersistentVolumeClaim ${namespace}/${name}` },
      () => core.readNamespacedPersistentVolumeClaim({ namespace, name }), true),
    getPv: (name) => call({ verb: 'get', resource: 'persistentvolumes', what: `PersistentVolume ${name}` },
      () => core.readPersistentVolume({ name }), true),
    getStorageClass: (name) => call({ verb: 'get', resource: 'storageclasses', apiGroup: 'storage.k8s.io', what: `StorageClass ${name}` },
      () => storage.readStorageClass({ name }), true),
    async getSecretData(namespace, name) {
      const secret = await call({ verb: 'get', resource: 'secrets', what: `Secret ${namespace}/${name}` },
        () => core.readNamespacedSecret({ namespace, name }), true);
      if (!secret) return undefined;
      const out: Record<string, string> = {};
      for (const [k, v] of Object.entries(secret.data ?? {})) out[k] = Buffer.from(v, 'base64').toString('utf8');
      for (const [k, v] of Object.entries(secret.stringData ?? {})) out[k] = v;
      return out;
    },
  };
}
