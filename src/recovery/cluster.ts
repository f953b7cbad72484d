// From the cluster's objects to the volumes this node must have: pure, no I/O. Discovery fetches the
// objects (discovery.ts); this decides which of them are ours and where kubelet expects them.
//
// Pods on this node -> their PVC volumes (incl. generic ephemeral ones) -> PVCs -> bound PVs whose
// spec.csi.driver is ours -> staging path (by volumeHandle) and one target per pod (by PV name), with
// the Secret that holds the volume's credentials (PV secret refs, else the StorageClass parameters
// with ${pvc.name} / ${pvc.namespace} / ${pv.name} templates, as the external-provisioner expands them).
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import { stagingPathFor, targetPathFor } from './kubelet-paths.js';

export interface SecretRef {
  namespace: string;
  name: string;
  /** Where the reference came from, for logs ("pv nodeStageSecretRef", "storageclass node-stage"). */
  source: string;
}

export interface DesiredTarget {
  path: string;
  podUid: string;
  podNamespace: string;
  podName: string;
  /** For the involvedObject of the Events recovery writes on the pod. */
  podResourceVersion?: string;
  readonly: boolean;
}

export interface DesiredVolume {
  volumeHandle: string;
  pvName: string;
  /** uid/resourceVersion: for the involvedObject of the Events recovery writes on the claim. */
  claim: { namespace: string; name: string; uid?: string; resourceVersion?: string };
  storageClass?: string;
  stagingPath: string;
  /** Staged read-only: the PV's first access mode is ReadOnlyMany (what kubelet sends as the capability). */
  readonly: boolean;
  volumeContext: Record<string, string>;
  /** PV spec.mountOptions (kubelet's mount_flags). */
  mountOptions: string[];
  /** fsGroup of the first pod that has one (kubelet's volume_mount_group). */
  mountGroup?: string;
  /** Secret with the volume's credentials; undefined = the driver's default credentials. */
  secretRef?: SecretRef;
  targets: DesiredTarget[];
}

export interface Skip {
  subject: string;
  reason: string;
  /** Something is wrong (as opposed to simply not ours). */
  warn: boolean;
}

export interface ClusterView {
  pods: V1Pod[];
  /** "namespace/name" -> the claim, or null when it does not exist. */
  claims: ReadonlyMap<string, V1PersistentVolumeClaim | null>;
  pvs: ReadonlyMap<string, V1PersistentVolume | null>;
  classes: ReadonlyMap<string, V1StorageClass | null>;
  /** Reads that failed other than with 404: the view is incomplete. */
  errors: string[];
}

export interface DesiredState {
  volumes: DesiredVolume[];
  /** Every pod of this node the API listed (terminal ones too). A target of any other pod is an orphan. */
  knownPodUids: Set<string>;
  skipped: Skip[];
  /** False when some read failed: nothing may then be treated as an orphan. */
  complete: boolean;
}

export const PROVISIONER_ANNOTATIONS = ['volume.kubernetes.io/storage-provisioner', 'volume.beta.kubernetes.io/storage-provisioner'];

export interface PodClaim {
  volumeName: string;
  claimName: string;
  readOnly: boolean;
}

/** The PVCs a pod uses: persistentVolumeClaim volumes and generic ephemeral volumes (`<pod>-<volume>`). */
export function claimsOfPod(pod: V1Pod): PodClaim[] {
  const out: PodClaim[] = [];
  for (const v of pod.spec?.volumes ?? []) {
    if (v.persistentVolumeClaim?.claimName) out.push({ volumeName: v.name, claimName: v.persistentVolumeClaim.claimName, readOnly: v.persistentVolumeClaim.readOnly === true });
    else if (v.ephemeral) out.push({ volumeName: v.name, claimName: `${pod.metadata?.name ?? ''}-${v.name}`, readOnly: false });
  }
  return out;
}

export const isTerminal = (pod: V1Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';
export const claimKey = (namespace: string, name: string): string => `${namespace}/${name}`;

/** The Kubernetes objects to fetch next, given what is known (discovery asks in these three rounds). */
export function claimsToFetch(pods: readonly V1Pod[], nodeName: string): Array<{ namespace: string; name: string }> {
  const seen = new Map<string, { namespace: string; name: string }>();
  for (const pod of pods) {
    if (pod.spec?.nodeName !== nodeName || isTerminal(pod)) continue;
    const namespace = pod.metadata?.namespace ?? 'default';
    for (const c of claimsOfPod(pod)) seen.set(claimKey(namespace, c.claimName), { namespace, name: c.claimName });
  }
  return [...seen.values()];
}

export function volumesToFetch(claims: ReadonlyMap<string, V1PersistentVolumeClaim | null>): string[] {
  const names = new Set<string>();
  for (const pvc of claims.values()) if (pvc?.spec?.volumeName) names.add(pvc.spec.volumeName);
  return [...names];
}

/** StorageClasses needed: only for our PVs whose own secret refs are absent (the class is the fallback). */
export function classesToFetch(pvs: ReadonlyMap<string, V1PersistentVolume | null>, driverName: string): string[] {
  const names = new Set<string>();
  for (const pv of pvs.values()) {
    const csi = pv?.spec?.csi;
    if (!csi || csi.driver !== driverName) continue;
    if (csi.nodeStageSecretRef?.name || csi.nodePublishSecretRef?.name) continue;
    if (pv?.spec?.storageClassName) names.add(pv.spec.storageClassName);
  }
  return [...names];
}

const SECRET_PARAMS = [
  { name: 'csi.storage.k8s.io/node-stage-secret-name', namespace: 'csi.storage.k8s.io/node-stage-secret-namespace', source: 'storageclass node-stage' },
  { name: 'csi.storage.k8s.io/node-publish-secret-name', namespace: 'csi.storage.k8s.io/node-publish-secret-namespace', source: 'storageclass node-publish' },
];
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** Expands ${pv.name}, ${pvc.name}, ${pvc.namespace}, ${pvc.annotations['key']}; throws on anything else. */
export function expandTemplate(template: string, pv: V1PersistentVolume, pvc: V1PersistentVolumeClaim): string {
  return template.replace(/\$\{([^}]*)\}/g, (_m, expr: string) => {
    const e = expr.trim();
    if (e === 'pv.name') return pv.metadata?.name ?? '';
    if (e === 'pvc.name') return pvc.metadata?.name ?? '';
    if (e === 'pvc.namespace') return pvc.metadata?.namespace ?? '';
    const ann = /^pvc\.annotations\['([^']+)'\]$/.exec(e);
    if (ann?.[1]) return pvc.metadata?.annotations?.[ann[1]] ?? '';
    throw new Error(`unsupported template \${${e}}`);
  });
}

/** The Secret holding a volume's credentials: PV refs (stage, then publish), then StorageClass parameters. */
export function secretRefFor(pv: V1PersistentVolume, pvc: V1PersistentVolumeClaim, sc: V1StorageClass | null | undefined): SecretRef | undefined {
  const csi = pv.spec?.csi;
  if (csi?.nodeStageSecretRef?.name) return { namespace: csi.nodeStageSecretRef.namespace ?? 'default', name: csi.nodeStageSecretRef.name, source: 'pv nodeStageSecretRef' };
  if (csi?.nodePublishSecretRef?.name) return { namespace: csi.nodePublishSecretRef.namespace ?? 'default', name: csi.nodePublishSecretRef.name, source: 'pv nodePublishSecretRef' };
  const params = sc?.parameters ?? {};
  for (const p of SECRET_PARAMS) {
    const nameT = params[p.name];
    if (!nameT) continue;
    const name = expandTemplate(nameT, pv, pvc);
    const namespace = expandTemplate(params[p.namespace] ?? pvc.metadata?.namespace ?? 'default', pv, pvc);
    if (!DNS_SUBDOMAIN.test(name) || name.length > 253) throw new Error(`${p.source} secret name "${name.slice(0, 80)}" (from "${nameT.slice(0, 80)}") is not a valid Secret name`);
    if (!DNS_SUBDOMAIN.test(namespace) || namespace.length > 63) throw new Error(`${p.source} secret namespace "${namespace.slice(0, 80)}" is not a valid namespace`);
    return { namespace, name, source: p.source };
  }
  return undefined;
}

export interface DesiredOptions {
  nodeName: string;
  driverName: string;
  kubeletDir: string;
}

/** Pure: the volumes (with their targets) this node must have, and why everything else was left out. */
export function desiredState(view: ClusterView, o: DesiredOptions): DesiredState {
  const skipped: Skip[] = [];
  const knownPodUids = new Set<string>();
  const byHandle = new Map<string, DesiredVolume>();

  for (const pod of view.pods) {
    const podId = `pod ${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const uid = pod.metadata?.uid;
    if (!uid) continue;
    if (pod.spec?.nodeName !== o.nodeName) {
      skipped.push({ subject: podId, reason: `scheduled to node ${pod.spec?.nodeName ?? '(none)'}`, warn: false });
      continue;
    }
    knownPodUids.add(uid);
    if (isTerminal(pod)) {
      skipped.push({ subject: podId, reason: `pod ${pod.status?.phase}: its volumes are kubelet's to tear down`, warn: false });
      continue;
    }
    const namespace = pod.metadata?.namespace ?? 'default';
    for (const pc of claimsOfPod(pod)) {
      const subject = `${podId} volume ${pc.volumeName} (claim ${namespace}/${pc.claimName})`;
      const key = claimKey(namespace, pc.claimName);
      if (!view.claims.has(key)) {
        skipped.push({ subject, reason: 'claim was not read', warn: true });
        continue;
      }
      const pvc = view.claims.get(key);
      if (!pvc) {
        skipped.push({ subject, reason: 'PersistentVolumeClaim not found (deleted?)', warn: true });
        continue;
      }
      const annotated = PROVISIONER_ANNOTATIONS.some((a) => pvc.metadata?.annotations?.[a] === o.driverName);
      const pvName = pvc.spec?.volumeName;
      if (!pvName) {
        skipped.push({ subject, reason: 'claim is not bound to a volume', warn: annotated });
        continue;
      }
      const pv = view.pvs.get(pvName);
      if (!pv) {
        skipped.push({ subject, reason: view.pvs.has(pvName) ? `PersistentVolume ${pvName} not found` : `PersistentVolume ${pvName} was not read`, warn: annotated || !view.pvs.has(pvName) });
        continue;
      }
      const csi = pv.spec?.csi;
      if (!csi || csi.driver !== o.driverName) {
        skipped.push({ subject, reason: csi ? `volume of driver ${csi.driver}` : 'not a CSI volume', warn: annotated });
        continue;
      }
      const ref = pv.spec?.claimRef;
      if (ref && (ref.name !== pvc.metadata?.name || ref.namespace !== namespace)) {
        skipped.push({ subject, reason: `PersistentVolume ${pvName} is bound to ${ref.namespace}/${ref.name}`, warn: true });
        continue;
      }
      if (!csi.volumeHandle) {
        skipped.push({ subject, reason: `PersistentVolume ${pvName} has no volumeHandle`, warn: true });
        continue;
      }
      let vol = byHandle.get(csi.volumeHandle);
      if (!vol) {
        const scName = pv.spec?.storageClassName || undefined;
        const hasPvRef = !!(csi.nodeStageSecretRef?.name || csi.nodePublishSecretRef?.name);
        if (!hasPvRef && scName && !view.classes.has(scName)) {
          skipped.push({ subject, reason: `StorageClass ${scName} (source of the volume's secret reference) was not read`, warn: true });
          continue;
        }
        let secretRef: SecretRef | undefined;
        try {
          secretRef = secretRefFor(pv, pvc, scName ? view.classes.get(scName) : undefined);
        } catch (err) {
          skipped.push({ subject, reason: (err as Error).message, warn: true });
          continue;
        }
        vol = {
          volumeHandle: csi.volumeHandle,
          pvName,
          claim: { namespace, name: pc.claimName, uid: pvc.metadata?.uid, resourceVersion: pvc.metadata?.resourceVersion },
          storageClass: scName,
          stagingPath: stagingPathFor(o.kubeletDir, o.driverName, csi.volumeHandle),
          readonly: pv.spec?.accessModes?.[0] === 'ReadOnlyMany',
          volumeContext: { ...(csi.volumeAttributes ?? {}) },
          mountOptions: [...(pv.spec?.mountOptions ?? [])],
          secretRef,
          targets: [],
        };
        byHandle.set(csi.volumeHandle, vol);
      }
      const fsGroup = pod.spec?.securityContext?.fsGroup;
      if (vol.mountGroup === undefined && fsGroup !== undefined && fsGroup !== null) vol.mountGroup = String(fsGroup);
      const path = targetPathFor(o.kubeletDir, uid, pvName);
      if (!vol.targets.some((t) => t.path === path)) {
        vol.targets.push({
          path,
          podUid: uid,
          podNamespace: namespace,
          podName: pod.metadata?.name ?? '',
          podResourceVersion: pod.metadata?.resourceVersion,
          readonly: pc.readOnly || csi.readOnly === true,
        });
      }
    }
  }
  return { volumes: [...byHandle.values()], knownPodUids, skipped, complete: view.errors.length === 0 };
}
