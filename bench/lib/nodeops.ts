// NodeStage/NodePublish through the real driver, with kubelet-shaped paths.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { DriverProcess } from '../../test/harness/driver.js';
import type { S3Server } from '../../test/harness/s3server.js';

export const MOUNT_CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

export const stagingOf = (d: DriverProcess, name: string): string => join(d.kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev', name, 'globalmount');

export async function targetOf(d: DriverProcess, pod: string, pv: string): Promise<string> {
  const parent = join(d.kubeletDir, 'pods', pod, 'volumes/kubernetes.io~csi', pv);
  await mkdir(parent, { recursive: true });
  return join(parent, 'mount');
}

export function stage(d: DriverProcess, s3: S3Server, volumeId: string, staging: string, options?: string): Promise<unknown> {
  return d.call('Node', 'NodeStageVolume', {
    volume_id: volumeId, staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets,
    volume_context: options ? { options } : {},
  }, 60_000);
}

export function unstage(d: DriverProcess, volumeId: string, staging: string): Promise<unknown> {
  return d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging }, 60_000);
}

export function publish(d: DriverProcess, volumeId: string, staging: string, target: string): Promise<unknown> {
  return d.call('Node', 'NodePublishVolume', { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: MOUNT_CAP }, 60_000);
}

export function unpublish(d: DriverProcess, volumeId: string, target: string): Promise<unknown> {
  return d.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target }, 60_000);
}
