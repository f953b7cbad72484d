// Plain Kubernetes objects for the recovery unit tests (pods, claims, volumes, classes, a ClusterView).
import type { V1PersistentVolume, V1PersistentVolumeClaim, V1Pod, V1StorageClass } from '@kubernetes/client-node';
import type { ClusterView } from '../../src/recovery/cluster.js';

export const DRIVER = 's3fs.csi.dev';
export const NODE = 'node-a';
export const KUBELET = '/var/lib/kubelet';

export function pod(name: string, o: { ns?: string; node?: string; claims?: string[]; phase?: string; uid?: string; ro?: boolean; fsGroup?: number; ephemeral?: string[] } = {}): V1Pod {
  return {
    metadata: { name, namespace: o.ns ?? 'default', uid: o.uid ?? `uid-${o.ns ?? 'default'}-${name}` },
    spec: {
      nodeName: o.node ?? NODE,
      containers: [{ name: 'c', image: 'x' }],
      securityContext: o.fsGroup !== undefined ? { fsGroup: o.fsGroup } : undefined,
      volumes: [
        { name: 'token', projected: { sources: [] } },
        ...(o.claims ?? []).map((c, i) => ({ name: `v${i}`, persistentVolumeClaim: { claimName: c, readOnly: o.ro } })),
        ...(o.ephemeral ?? []).map((v) => ({ name: v, ephemeral: { volumeClaimTemplate: { spec: {} } } })),
      ],
    },
    status: { phase: o.phase ?? 'Running' },
  };
}
export function pvc(name: string, o: { ns?: string; volume?: string; annotations?: Record<string, string> } = {}): V1PersistentVolumeClaim {
  return { metadata: { name, namespace: o.ns ?? 'default', uid: `pvc-uid-${name}`, annotations: o.annotations }, spec: { volumeName: o.volume } };
}
export function pv(name: string, o: { handle?: string; driver?: string; claim?: [string, string]; sc?: string; stageRef?: [string, string]; publishRef?: [string, string]; modes?: string[]; attrs?: Record<string, string>; mountOptions?: string[]; csi?: boolean } = {}): V1PersistentVolume {
  return {
    metadata: { name },
    spec: {
      accessModes: o.modes ?? ['ReadWriteMany'],
      storageClassName: o.sc,
      mountOptions: o.mountOptions,
      claimRef: o.claim ? { namespace: o.claim[0], name: o.claim[1] } : undefined,
      csi: o.csi === false ? undefined : {
        driver: o.driver ?? DRIVER,
        volumeHandle: o.handle ?? `bucket-${name}`,
        volumeAttributes: o.attrs,
        nodeStageSecretRef: o.stageRef ? { namespace: o.stageRef[0], name: o.stageRef[1] } : undefined,
        nodePublishSecretRef: o.publishRef ? { namespace: o.publishRef[0], name: o.publishRef[1] } : undefined,
      },
      hostPath: o.csi === false ? { path: '/tmp' } : undefined,
    },
  };
}
export function sc(name: string, params: Record<string, string> = {}): V1StorageClass {
  return { metadata: { name }, provisioner: DRIVER, parameters: params };
}
export function view(o: { pods: V1Pod[]; pvcs?: V1PersistentVolumeClaim[]; pvs?: V1PersistentVolume[]; classes?: V1StorageClass[]; missing?: string[]; errors?: string[] }): ClusterView {
  const claims = new Map<string, V1PersistentVolumeClaim | null>((o.pvcs ?? []).map((c) => [`${c.metadata?.namespace}/${c.metadata?.name}`, c]));
  for (const m of o.missing ?? []) claims.set(m, null);
  return {
    pods: o.pods,
    claims,
    pvs: new Map((o.pvs ?? []).map((v) => [v.metadata?.name ?? '', v])),
    classes: new Map((o.classes ?? []).map((c) => [c.metadata?.name ?? '', c])),
    errors: o.errors ?? [],
  };
}
