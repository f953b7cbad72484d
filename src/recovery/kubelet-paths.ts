// Where kubelet (>= 1.24) asks a CSI driver to stage and publish a volume, and the reverse: which pod
// and volume a path on disk belongs to. Pure string work.
import { createHash } from 'node:crypto';

/** `<kubelet>/plugins/kubernetes.io/csi/<driver>/<sha256hex(volumeHandle)>/globalmount` */
export function stagingPathFor(kubeletDir: string, driverName: string, volumeHandle: string): string {
  const hash = createHash('sha256').update(volumeHandle).digest('hex');
  return `${stagingRoot(kubeletDir, driverName)}/${hash}/globalmount`;
}

/** The directory holding every staging dir of this driver. */
export function stagingRoot(kubeletDir: string, driverName: string): string {
  return `${kubeletDir}/plugins/kubernetes.io/csi/${driverName}`;
}

/** `<kubelet>/pods/<pod-uid>/volumes/kubernetes.io~csi/<pv-name>/mount` */
export function targetPathFor(kubeletDir: string, podUid: string, pvName: string): string {
  return `${kubeletDir}/pods/${podUid}/volumes/kubernetes.io~csi/${pvName}/mount`;
}

export interface TargetRef {
  podUid: string;
  /** PV name (or, for inline volumes, the pod's volume name). */
  volumeName: string;
}

/** The pod uid and volume name of a publish target path; undefined when it is not one. */
export function parseTargetPath(kubeletDir: string, path: string): TargetRef | undefined {
  const prefix = `${kubeletDir}/pods/`;
  if (!path.startsWith(prefix)) return undefined;
  const parts = path.slice(prefix.length).split('/');
  if (parts.length !== 5 || parts[1] !== 'volumes' || parts[2] !== 'kubernetes.io~csi' || parts[4] !== 'mount') return undefined;
  const [podUid, , , volumeName] = parts as [string, string, string, string, string];
  if (!podUid || !volumeName) return undefined;
  return { podUid, volumeName };
}

/** True when `path` has the shape of one of this driver's staging paths. */
export function isStagingPath(kubeletDir: string, driverName: string, path: string): boolean {
  const prefix = `${stagingRoot(kubeletDir, driverName)}/`;
  if (!path.startsWith(prefix)) return false;
  const parts = path.slice(prefix.length).split('/');
  return parts.length === 2 && /^[0-9a-f]{64}$/.test(parts[0] ?? '') && parts[1] === 'globalmount';
}
