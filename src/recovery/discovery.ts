// Discovery: reads what the cluster says about this node's volumes, in three rounds (pods, then their
// claims and volumes, then the StorageClasses needed for secret references), each read by name and
// in parallel. A failed read of one object is recorded and the view marked incomplete; only a failed
// pod list fails the whole discovery (without it nothing is known).
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass } from '@kubernetes/client-node';
import { KubeError, type KubeReader } from '../kube/reader.js';
import { type ClusterView, claimKey, claimsToFetch, classesToFetch, volumesToFetch } from './cluster.js';
import { mapSettled } from './pool.js';

export interface DiscoveryOptions {
  nodeName: string;
  driverName: string;
  parallelism: number;
}

/** Errors of the view that are RBAC denials (reported as warnings naming the missing rule). */
export function forbiddenErrors(errors: readonly unknown[]): KubeError[] {
  return errors.filter((e): e is KubeError => e instanceof KubeError && e.kind === 'forbidden');
}

export async function fetchClusterView(reader: KubeReader, o: DiscoveryOptions): Promise<ClusterView & { failures: KubeError[] }> {
  const pods = await reader.listPodsOnNode(o.nodeName);
  const failures: KubeError[] = [];
  const errors: string[] = [];
  const note = (r: PromiseSettledResult<unknown>): void => {
    if (r.status === 'rejected') {
      const err = r.reason instanceof KubeError ? r.reason : new KubeError('other', String((r.reason as Error)?.message ?? r.reason));
      failures.push(err);
      errors.push(err.message);
    }
  };

  const claims = new Map<string, V1PersistentVolumeClaim | null>();
  const wantedClaims = claimsToFetch(pods, o.nodeName);
  (await mapSettled(wantedClaims, o.parallelism, async (c) => {
    claims.set(claimKey(c.namespace, c.name), (await reader.getPvc(c.namespace, c.name)) ?? null);
  })).forEach(note);

  const pvs = new Map<string, V1PersistentVolume | null>();
  (await mapSettled(volumesToFetch(claims), o.parallelism, async (name) => {
    pvs.set(name, (await reader.getPv(name)) ?? null);
  })).forEach(note);

  const classes = new Map<string, V1StorageClass | null>();
  (await mapSettled(classesToFetch(pvs, o.driverName), o.parallelism, async (name) => {
    classes.set(name, (await reader.getStorageClass(name)) ?? null);
  })).forEach(note);

  return { pods, claims, pvs, classes, errors, failures };
}
