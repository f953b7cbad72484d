// What kubernetes-csi's external-provisioner (v6, as the chart runs it: --extra-create-metadata)
// does for one claim, done by the test because the sidecar's image and Go module cannot be had here.
// It is not a controller loop; per claim it makes exactly the calls and objects the sidecar makes:
//   - StorageClass parameters minus the reserved `csi.storage.k8s.io/` keys, plus the three
//     extra-create-metadata keys (pvc/name, pvc/namespace, pv/name);
//   - the provisioner Secret resolved from `csi.storage.k8s.io/provisioner-secret-name/-namespace`
//     (with the ${pvc.name}, ${pvc.namespace}, ${pv.name} templates) and passed as `secrets`;
//   - CreateVolume named `pvc-<claim uid>` with the claim's size and one capability per access mode;
//   - the PV object: provisioned-by and deletion-secret annotations, the provisioner's finalizer,
//     claimRef, reclaim policy, mount options, the volume context plus the provisioner identity, and
//     the node-stage / controller-expand secret references; the PV controller then binds it.
// deleteLikeExternalProvisioner() is the other half: DeleteVolume with the deletion Secret, then the
// PV object goes (finalizer removed).
import type { CoreV1Api, V1PersistentVolume, V1PersistentVolumeClaim, V1StorageClass, StorageV1Api } from '@kubernetes/client-node';
import { csiClient, unary } from '../../src/csi/proto.js';

const RESERVED = 'csi.storage.k8s.io/';
const PROVISIONED_BY = 'pv.kubernetes.io/provisioned-by';
const DELETION_SECRET_NAME = 'volume.kubernetes.io/provisioner-deletion-secret-name';
const DELETION_SECRET_NAMESPACE = 'volume.kubernetes.io/provisioner-deletion-secret-namespace';
const FINALIZER = 'external-provisioner.volume.kubernetes.io/finalizer';
const PROVISIONER_IDENTITY = 'storage.kubernetes.io/csiProvisionerIdentity';

/** The access modes of a claim as CSI access modes, as the sidecar maps them (pure). */
export function csiAccessMode(mode: string): string {
  switch (mode) {
    case 'ReadWriteOnce': return 'SINGLE_NODE_WRITER';
    case 'ReadOnlyMany': return 'MULTI_NODE_READER_ONLY';
    case 'ReadWriteMany': return 'MULTI_NODE_MULTI_WRITER';
    case 'ReadWriteOncePod': return 'SINGLE_NODE_SINGLE_WRITER';
    default: throw new Error(`unknown access mode ${mode}`);
  }
}

/** `${pvc.name}`-style templates of secret names and namespaces (pure). */
export function resolveTemplate(text: string, vars: Record<string, string>): string {
  return text.replace(/\$\{([a-z.]+)\}/g, (_, k: string) => {
    const v = vars[k];
    if (v === undefined) throw new Error(`unknown template variable \${${k}} in "${text}"`);
    return v;
  });
}

/** A secret reference from the class's reserved parameters, or undefined (pure). */
export function secretRef(params: Record<string, string>, kind: string, vars: Record<string, string>): { name: string; namespace: string } | undefined {
  const name = params[`${RESERVED}${kind}-secret-name`];
  const namespace = params[`${RESERVED}${kind}-secret-namespace`];
  if (!name || !namespace) return undefined;
  return { name: resolveTemplate(name, vars), namespace: resolveTemplate(namespace, vars) };
}

/** CreateVolume parameters: reserved keys out, extra-create-metadata keys in (pure). */
export function createParameters(params: Record<string, string>, meta: { pvcName: string; pvcNamespace: string; pvName: string }): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(params)) if (!k.startsWith(RESERVED)) out[k] = v;
  out[`${RESERVED}pvc/name`] = meta.pvcName;
  out[`${RESERVED}pvc/namespace`] = meta.pvcNamespace;
  out[`${RESERVED}pv/name`] = meta.pvName;
  return out;
}

const sizeBytes = (q: string): number => {
  const m = /^(\d+)(Ki|Mi|Gi|Ti|k|M|G|T)?$/.exec(q);
  if (!m) throw new Error(`unsupported quantity ${q}`);
  const mult: Record<string, number> = { Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, k: 1e3, M: 1e6, G: 1e9, T: 1e12 };
  return Number(m[1]) * (m[2] ? mult[m[2]] ?? 1 : 1);
};

async function secretData(core: CoreV1Api, ref: { name: string; namespace: string } | undefined): Promise<Record<string, string>> {
  if (!ref) return {};
  const s = await core.readNamespacedSecret({ name: ref.name, namespace: ref.namespace });
  return Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
}

export interface ProvisionDeps {
  core: CoreV1Api;
  storage: StorageV1Api;
  /** The controller's CSI socket (reached on the host through its pod's emptyDir). */
  controllerSocket: string;
  driverName: string;
}

export async function provisionLikeExternalProvisioner(deps: ProvisionDeps, claim: { namespace: string; name: string }): Promise<V1PersistentVolume> {
  const pvc: V1PersistentVolumeClaim = await deps.core.readNamespacedPersistentVolumeClaim(claim);
  const scName = pvc.spec?.storageClassName;
  if (!scName) throw new Error(`claim ${claim.namespace}/${claim.name} names no StorageClass`);
  const sc: V1StorageClass = await deps.storage.readStorageClass({ name: scName });
  if (sc.provisioner !== deps.driverName) throw new Error(`StorageClass ${scName} is provisioned by ${sc.provisioner}`);
  const pvName = `pvc-${pvc.metadata?.uid}`;
  const params = sc.parameters ?? {};
  const vars = { 'pvc.name': claim.name, 'pvc.namespace': claim.namespace, 'pv.name': pvName };
  const provisionerSecret = secretRef(params, 'provisioner', vars);
  const accessModes = pvc.spec?.accessModes ?? ['ReadWriteOnce'];
  const requested = sizeBytes(String(pvc.spec?.resources?.requests?.storage ?? '1Gi'));
  const fsType = params[`${RESERVED}fstype`] ?? '';

  const client = csiClient('Controller', deps.controllerSocket);
  let res: { volume: { volume_id: string; capacity_bytes: number; volume_context: Record<string, string> } };
  try {
    res = await unary(client, 'CreateVolume', {
      name: pvName,
      capacity_range: { required_bytes: requested },
      volume_capabilities: accessModes.map((m) => ({ mount: { fs_type: fsType, mount_flags: sc.mountOptions ?? [] }, access_mode: { mode: csiAccessMode(m) } })),
      parameters: createParameters(params, { pvcName: claim.name, pvcNamespace: claim.namespace, pvName }),
      secrets: await secretData(deps.core, provisionerSecret),
    }, 60_000);
  } finally {
    client.close();
  }

  const nodeStage = secretRef(params, 'node-stage', vars);
  const controllerExpand = secretRef(params, 'controller-expand', vars);
  const nodePublish = secretRef(params, 'node-publish', vars);
  const pv: V1PersistentVolume = {
    metadata: {
      name: pvName,
      annotations: {
        [PROVISIONED_BY]: deps.driverName,
        ...(provisionerSecret ? { [DELETION_SECRET_NAME]: provisionerSecret.name, [DELETION_SECRET_NAMESPACE]: provisionerSecret.namespace } : {}),
      },
      finalizers: [FINALIZER],
    },
    spec: {
      capacity: { storage: String(res.volume.capacity_bytes || requested) },
      accessModes,
      persistentVolumeReclaimPolicy: sc.reclaimPolicy ?? 'Delete',
      storageClassName: scName,
      mountOptions: sc.mountOptions,
      volumeMode: 'Filesystem',
      claimRef: { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: claim.namespace, name: claim.name, uid: pvc.metadata?.uid },
      csi: {
        driver: deps.driverName,
        volumeHandle: res.volume.volume_id,
        ...(fsType ? { fsType } : {}),
        volumeAttributes: { ...res.volume.volume_context, [PROVISIONER_IDENTITY]: `${Date.now()}-1234-${deps.driverName}` },
        ...(nodeStage ? { nodeStageSecretRef: nodeStage } : {}),
        ...(controllerExpand ? { controllerExpandSecretRef: controllerExpand } : {}),
        ...(nodePublish ? { nodePublishSecretRef: nodePublish } : {}),
      },
    },
  };
  return deps.core.createPersistentVolume({ body: pv });
}

export async function deleteLikeExternalProvisioner(deps: ProvisionDeps, pvName: string): Promise<void> {
  const pv = await deps.core.readPersistentVolume({ name: pvName });
  const a = pv.metadata?.annotations ?? {};
  const ref = a[DELETION_SECRET_NAME] && a[DELETION_SECRET_NAMESPACE] ? { name: a[DELETION_SECRET_NAME], namespace: a[DELETION_SECRET_NAMESPACE] } : undefined;
  const client = csiClient('Controller', deps.controllerSocket);
  try {
    await unary(client, 'DeleteVolume', { volume_id: pv.spec?.csi?.volumeHandle, secrets: await secretData(deps.core, ref) }, 60_000);
  } finally {
    client.close();
  }
  pv.metadata = { ...pv.metadata, finalizers: (pv.metadata?.finalizers ?? []).filter((f) => f !== FINALIZER) };
  await deps.core.replacePersistentVolume({ name: pvName, body: pv });
  await deps.core.deletePersistentVolume({ name: pvName }).catch(() => undefined);
}
