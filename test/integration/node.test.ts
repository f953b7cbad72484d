// The Node service against real s3fs, real FUSE, a real S3 server (versitygw) and the real binary.
// Every test unmounts what it mounted and kills the s3fs it caused, also when it fails (after hook).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { killS3fsAndUnmountUnder, mountPointsUnder, s3fsPidsUnder } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const run = promisify(execFile);

let s3: S3Server;
let raw: S3Client;
let d: DriverProcess;

const MOUNT_CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };
const capWith = (o: { mode?: string; flags?: string[]; group?: string } = {}): object => ({
  mount: { fs_type: '', mount_flags: o.flags ?? [], volume_mount_group: o.group ?? '' },
  access_mode: { mode: o.mode ?? 'SINGLE_NODE_WRITER' },
});

let seq = 0;
async function newBucket(): Promise<string> {
  const name = `node-test-${process.pid}-${++seq}`;
  await raw.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}
const stagingOf = (drv: DriverProcess, name: string): string => join(drv.kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev', name, 'globalmount');
async function targetOf(drv: DriverProcess, pod: string, pv: string): Promise<string> {
  const parent = join(drv.kubeletDir, 'pods', pod, 'volumes/kubernetes.io~csi', pv);
  await mkdir(parent, { recursive: true });
  return join(parent, 'mount');
}
const stage = (drv: DriverProcess, volumeId: string, staging: string, extra: object = {}): Promise<unknown> =>
  drv.call('Node', 'NodeStageVolume', { volume_id: volumeId, staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets, ...extra }, 60_000);
const publish = (drv: DriverProcess, volumeId: string, staging: string, target: string, extra: object = {}): Promise<unknown> =>
  drv.call('Node', 'NodePublishVolume', { volume_id: volumeId, staging_target_path: staging, target_path: target, volume_capability: MOUNT_CAP, ...extra });
const stats = (drv: DriverProcess, volumeId: string, path: string, deadlineMs = 10_000): Promise<{ usage: { unit: string; total: number }[]; volume_condition: { abnormal: boolean; message: string } }> =>
  drv.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: path }, deadlineMs);

async function shell(cmd: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run(cmd, args, { timeout: 10_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : 1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

async function passwdFiles(drv: DriverProcess): Promise<string[]> {
  return (await readdir(join(drv.dir, 'runtime')).catch(() => [] as string[])).filter((f) => f.endsWith('.passwd'));
}

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  d = await startDriver({ mode: 'node', args: ['--s3-endpoint', s3.endpoint, '--mount-check-timeout', '1s'] });
});
after(async () => {
  if (d) await killS3fsAndUnmountUnder(d.dir);
  await d?.cleanup();
  raw?.destroy();
  await s3?.stop();
});

describe('Node service with real s3fs', () => {
  it('stages once, publishes two targets, shares data with S3, and tears down without leftovers', async () => {
    const bucket = await newBucket();
    const staging = stagingOf(d, 'full');
    const t1 = await targetOf(d, 'pod-a', 'pv-full');
    const t2 = await targetOf(d, 'pod-b', 'pv-full');
    await stage(d, bucket, staging);
    await stage(d, bucket, staging); // idempotent
    await publish(d, bucket, staging, t1);
    await publish(d, bucket, staging, t2);
    await publish(d, bucket, staging, t1); // idempotent
    assert.equal((await s3fsPidsUnder(d.dir)).length, 1, 'one s3fs per volume per node');

    await shell('sh', ['-c', `echo from-t1 > ${t1}/hello.txt`]);
    assert.equal((await readFile(join(t2, 'hello.txt'), 'utf8')).trim(), 'from-t1');
    const obj = await raw.send(new GetObjectCommand({ Bucket: bucket, Key: 'hello.txt' }));
    assert.equal((await obj.Body!.transformToString()).trim(), 'from-t1');
    await raw.send(new PutObjectCommand({ Bucket: bucket, Key: 'from-s3.txt', Body: 'via-api' }));
    assert.equal(await readFile(join(t1, 'from-s3.txt'), 'utf8'), 'via-api');

    const st = await stats(d, bucket, t1);
    assert.equal(st.volume_condition.abnormal, false, st.volume_condition.message);
    assert.ok(st.usage.some((u) => u.unit === 'BYTES' && u.total > 0));
    assert.equal(await d.callCode('Node', 'NodeGetVolumeStats', { volume_id: bucket, volume_path: join(d.kubeletDir, 'nope') }), status.NOT_FOUND);
    assert.equal(await d.callCode('Node', 'NodeGetVolumeStats', { volume_id: 'other-volume', volume_path: t1 }), status.NOT_FOUND);

    const passwd = await passwdFiles(d);
    assert.equal(passwd.length, 1);
    assert.equal((await stat(join(d.dir, 'runtime', passwd[0]!))).mode & 0o777, 0o600);
    assert.equal((await stat(join(d.dir, 'runtime'))).mode & 0o777, 0o700);

    await d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t1 });
    assert.equal(existsSync(t1), false, 'target dir removed');
    await d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t1 }); // idempotent
    await d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t2 });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: staging });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: staging }); // idempotent
    assert.deepEqual(await mountPointsUnder(d.dir), []);
    assert.deepEqual(await s3fsPidsUnder(d.dir), []);
    assert.deepEqual(await passwdFiles(d), []);
  });
});
