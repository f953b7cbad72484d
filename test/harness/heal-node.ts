// The set-up the heal tests share: a real node-mode driver whose kubelet dir is rshared (as kubelet's
// root dir is on a real node, so a staging repair reaches targets and slave copies), versitygw, one
// bucket staged and published to the given pod targets. The caller stops the driver and the S3 server
// and scrubs `base` (which also unmounts the kubelet dir's bind).
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { type DriverProcess, startDriver } from './driver.js';
import { type S3Server, startS3Server } from './s3server.js';

const run = promisify(execFile);
export const MULTI_WRITER_CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } };

export interface HealNode {
  s3: S3Server;
  base: string;
  driver: DriverProcess;
  staging: string;
  /** The published targets, in the order of `o.targets`. */
  targets: string[];
}

export async function startHealNode(o: {
  name: string;
  driverArgs: (s3: S3Server, base: string) => string[];
  targets: ReadonlyArray<{ pod: string; readonly: boolean }>;
  /** Runs once `base` exists, before the driver starts (files its flags name). */
  beforeDriver?: (base: string) => Promise<void>;
}): Promise<HealNode> {
  const s3 = await startS3Server();
  const base = await mkdtemp(join(tmpdir(), `s3fs-csi-${o.name}-`));
  const kubeletDir = join(base, 'kubelet');
  await mkdir(kubeletDir, { recursive: true });
  await run('mount', ['--bind', kubeletDir, kubeletDir]);
  await run('mount', ['--make-rshared', kubeletDir]);
  await o.beforeDriver?.(base);
  const driver = await startDriver({ mode: 'node', dir: base, args: ['--s3-endpoint', s3.endpoint, ...o.driverArgs(s3, base)] });
  const raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
  const bucket = `${o.name}-${process.pid}`;
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  raw.destroy();
  const staging = join(kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev', bucket, 'globalmount');
  await mkdir(staging, { recursive: true });
  await driver.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: MULTI_WRITER_CAP, secrets: s3.secrets }, 60_000);
  const targets: string[] = [];
  for (const t of o.targets) {
    const target = join(kubeletDir, `pods/${t.pod}/volumes/kubernetes.io~csi/pv-${o.name}/mount`);
    await mkdir(join(target, '..'), { recursive: true });
    await driver.call('Node', 'NodePublishVolume', { volume_id: bucket, staging_target_path: staging, target_path: target, volume_capability: MULTI_WRITER_CAP, readonly: t.readonly });
    targets.push(target);
  }
  return { s3, base, driver, staging, targets };
}
