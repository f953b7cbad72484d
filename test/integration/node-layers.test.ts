// Mount layers on REAL mounts (real s3fs, real FUSE, versitygw) in kubelet's topology: an rshared
// kubelet directory (staging and targets are propagation peers there) and "containers" made with
// `unshare --mount --propagation slave` (what HostToContainer gives a pod). Covers: an unpublish never
// undoes a repair for the other targets; repeated repairs keep the depth bounded and unstage works;
// SIGTERM of the driver uploads data still open for writing; stage error codes come from S3's answer.
import assert from 'node:assert/strict';
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { layersAt, readMountTable } from '../../src/mount/mountinfo.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder, s3fsPidsUnder, scrubDir } from '../harness/mounts.js';
import { freePort, waitFor } from '../harness/net.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const run = promisify(execFile);
const CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

let s3: S3Server;
let raw: S3Client;
let seq = 0;
async function newBucket(): Promise<string> {
  const name = `layers-${process.pid}-${++seq}`;
  await raw.send(new CreateBucketCommand({ Bucket: name }));
  return name;
}

interface World {
  dir: string;
  d: DriverProcess;
  staging: string;
  target(pod: string): Promise<string>;
}

/** A driver whose kubelet dir is rshared, as kubelet's is on a real node. */
async function world(name: string, args: string[] = []): Promise<World> {
  const dir = await mkdtemp(join(tmpdir(), `s3fs-csi-${name}-`));
  const kubelet = join(dir, 'kubelet');
  await mkdir(kubelet, { recursive: true });
  await run('mount', ['--bind', kubelet, kubelet]);
  await run('mount', ['--make-rshared', kubelet]);
  const d = await startDriver({ mode: 'node', dir, args: ['--s3-endpoint', s3.endpoint, '--mount-check-timeout', '1s', ...args] });
  return {
    dir, d,
    staging: join(kubelet, 'plugins/kubernetes.io/csi/s3fs.csi.dev', name, 'globalmount'),
    async target(pod) {
      const parent = join(kubelet, 'pods', pod, 'volumes/kubernetes.io~csi', name);
      await mkdir(parent, { recursive: true });
      return join(parent, 'mount');
    },
  };
}
async function endWorld(w: World | undefined, containers: ChildProcess[] = []): Promise<void> {
  for (const c of containers) c.kill('SIGKILL');
  await w?.d.stop('SIGKILL');
  if (w) await scrubDir(w.dir);
}

const stage = (w: World, volumeId: string, extra: object = {}): Promise<unknown> =>
  w.d.call('Node', 'NodeStageVolume', { volume_id: volumeId, staging_target_path: w.staging, volume_capability: CAP, secrets: s3.secrets, ...extra }, 60_000);
const publish = (w: World, volumeId: string, target: string): Promise<unknown> =>
  w.d.call('Node', 'NodePublishVolume', { volume_id: volumeId, staging_target_path: w.staging, target_path: target, volume_capability: CAP });

/** A pod container with HostToContainer propagation: a slave copy of the host's mounts. */
async function container(): Promise<ChildProcess> {
  const c = spawn('unshare', ['--mount', '--propagation', 'slave', 'sleep', '600'], { stdio: 'ignore' });
  await waitFor('the container namespace', async () => {
    const own = await run('readlink', [`/proc/${c.pid}/ns/mnt`]).catch(() => undefined);
    const mine = await run('readlink', ['/proc/self/ns/mnt']);
    return own && own.stdout !== mine.stdout ? true : undefined;
  }, 5000, 10);
  return c;
}
/** Reads `file` inside the container's namespace; the error text when it fails. */
async function readIn(c: ChildProcess, file: string): Promise<string> {
  return run('nsenter', ['-t', String(c.pid), '-m', 'cat', file], { timeout: 10_000 }).then((r) => r.stdout, (e: { stderr?: string }) => `ERR ${e.stderr ?? ''}`);
}
async function depthIn(c: ChildProcess, path: string): Promise<number> {
  const r = await run('nsenter', ['-t', String(c.pid), '-m', 'cat', '/proc/self/mountinfo']);
  return r.stdout.split('\n').filter((l) => l.split(' ')[4] === path).length;
}
async function readHost(file: string): Promise<string> {
  return run('cat', [file], { timeout: 10_000 }).then((r) => r.stdout, (e: { stderr?: string }) => `ERR ${e.stderr ?? ''}`);
}
const depth = async (path: string): Promise<number> => layersAt(await readMountTable(), path).length;

/** SIGKILL the volume's s3fs and wait until it is gone. */
async function killS3fs(w: World): Promise<void> {
  const [pid] = await s3fsPidsUnder(w.dir);
  assert.ok(pid, 'an s3fs serves the volume');
  process.kill(pid, 'SIGKILL');
  await waitFor('s3fs to exit', async () => ((await s3fsPidsUnder(w.dir)).includes(pid) ? undefined : true), 5000, 5);
}

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
});
after(async () => {
  raw?.destroy();
  await s3?.stop();
});

describe('mount layers in an rshared kubelet dir', () => {
  it('an unpublish of one pod never takes a repair away from the staging path, the other target or its container', async () => {
    let w: World | undefined;
    const ctrs: ChildProcess[] = [];
    try {
      w = await world('unpublish');
      const bucket = await newBucket();
      const t1 = await w.target('pod-1');
      const t2 = await w.target('pod-2');
      await stage(w, bucket);
      await publish(w, bucket, t1);
      await publish(w, bucket, t2);
      await run('sh', ['-c', `echo kept > ${t1}/data.txt`]);
      const c1 = await container();
      ctrs.push(c1);
      assert.equal(await readIn(c1, `${t1}/data.txt`), 'kept\n');

      await killS3fs(w);
      assert.match(await readHost(`${t1}/data.txt`), /ERR .*Transport endpoint is not connected/);
      await stage(w, bucket); // repair: stacked on the staging path, propagated to both targets and the container
      for (const p of [w.staging, t1, t2]) assert.equal(await readHost(`${p}/data.txt`), 'kept\n', `${p} after repair`);
      assert.equal(await readIn(c1, `${t1}/data.txt`), 'kept\n', 'container after repair');

      await w.d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t2 });
      assert.equal(await depth(t2), 0);
      for (const p of [w.staging, t1]) assert.equal(await readHost(`${p}/data.txt`), 'kept\n', `${p} after the other pod's unpublish`);
      assert.equal(await readIn(c1, `${t1}/data.txt`), 'kept\n', 'container after the other pod\'s unpublish');

      await w.d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t1 });
      await w.d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: w.staging });
      assert.deepEqual((await mountPointsUnder(w.dir)).filter((p) => p !== join(w!.dir, 'kubelet')), []);
      assert.deepEqual(await s3fsPidsUnder(w.dir), []);
    } finally {
      await endWorld(w, ctrs);
    }
  });

  it('40 repairs in a row keep every path at most 2 layers deep; the container heals each time; unstage removes any number of layers', async () => {
    let w: World | undefined;
    const ctrs: ChildProcess[] = [];
    try {
      w = await world('repairs');
      const bucket = await newBucket();
      const t1 = await w.target('pod-1');
      await stage(w, bucket);
      await publish(w, bucket, t1);
      await run('sh', ['-c', `echo v > ${t1}/f.txt`]);
      const c1 = await container();
      ctrs.push(c1);
      let maxDepth = 0;
      for (let i = 0; i < 40; i++) {
        await killS3fs(w);
        await stage(w, bucket);
        const depths = [await depth(w.staging), await depth(t1), await depthIn(c1, t1)];
        maxDepth = Math.max(maxDepth, ...depths);
        assert.ok(depths.every((n) => n <= 2), `repair ${i + 1}: depths staging/target/container ${depths.join('/')}`);
        assert.equal(await readIn(c1, `${t1}/f.txt`), 'v\n', `container after repair ${i + 1}`);
      }
      console.log(`40 repairs: max depth ${maxDepth}`);
      await w.d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t1 });
      // Something else stacked 40 mounts on the staging path: unstage still removes them all. (Small
      // private tmpfs mounts: a bind of a shared mount onto itself would double its peer group each time.)
      for (let i = 0; i < 40; i++) await run('mount', ['-t', 'tmpfs', '-o', 'size=64k', '--make-private', 'stack', w.staging]);
      assert.ok((await depth(w.staging)) > 33);
      await w.d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: w.staging });
      assert.equal(await depth(w.staging), 0);
      assert.deepEqual(await s3fsPidsUnder(w.dir), []);
    } finally {
      await endWorld(w, ctrs);
    }
  });

  it('--s3fs-on-exit keep leaves s3fs serving after SIGTERM (for an owner that outlives the driver)', async () => {
    let w: World | undefined;
    try {
      w = await world('keep', ['--s3fs-on-exit', 'keep']);
      const bucket = await newBucket();
      await stage(w, bucket);
      const pids = await s3fsPidsUnder(w.dir);
      assert.equal(await w.d.stop('SIGTERM'), 0);
      assert.deepEqual(await s3fsPidsUnder(w.dir), pids);
      await run('sh', ['-c', `echo still > ${w.staging}/x.txt`]);
      assert.equal(await readHost(`${w.staging}/x.txt`), 'still\n');
    } finally {
      await endWorld(w);
    }
  });

  it('stage error codes come from S3: missing bucket NOT_FOUND, wrong key PERMISSION_DENIED, unreachable endpoint UNAVAILABLE', async () => {
    let w: World | undefined;
    try {
      w = await world('codes');
      const bucket = await newBucket();
      const code = async (volumeId: string, secrets: Record<string, string>): Promise<{ code: number; details: string }> =>
        w!.d.call('Node', 'NodeStageVolume', { volume_id: volumeId, staging_target_path: w!.staging, volume_capability: CAP, secrets }, 60_000)
          .then(() => ({ code: 0, details: 'succeeded' }), (e: { code: number; details: string }) => e);
      const missing = await code('no-such-bucket-layers', s3.secrets);
      assert.equal(missing.code, status.NOT_FOUND, missing.details);
      const wrongKey = await code(bucket, { ...s3.secrets, secretAccessKey: 'not-the-secret-key-000' });
      assert.equal(wrongKey.code, status.PERMISSION_DENIED, wrongKey.details);
      assert.ok(!wrongKey.details.includes('not-the-secret-key-000'));
      const down = await code(bucket, { ...s3.secrets, endpoint: `http://127.0.0.1:${await freePort()}` });
      assert.equal(down.code, status.UNAVAILABLE, down.details);
      // a prefix volume of an existing bucket mounts
      assert.equal((await code(`${bucket}/some/prefix`, s3.secrets)).code, 0);
      await w.d.call('Node', 'NodeUnstageVolume', { volume_id: `${bucket}/some/prefix`, staging_target_path: w.staging });
      assert.deepEqual(await s3fsPidsUnder(w.dir), []);
      assert.deepEqual((await mountPointsUnder(w.dir)).filter((p) => p !== join(w!.dir, 'kubelet')), []);
    } finally {
      await endWorld(w);
    }
  });
});
