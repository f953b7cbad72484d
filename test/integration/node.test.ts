// The Node service against real s3fs, real FUSE, a real S3 server (versitygw) and the real binary.
// Every test unmounts what it mounted and kills the s3fs it caused, also when it fails (after hook).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, readdir, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { status } from '@grpc/grpc-js';
import { CreateBucketCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { killS3fsAndUnmountUnder, mountPointsUnder, s3fsPidsUnder, scrubDir } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { waitFor } from '../harness/net.js';

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

  it('read-only publish refuses writes; a fsGroup (VOLUME_MOUNT_GROUP) gid lets a non-root uid write', async () => {
    const bucket = await newBucket();
    const staging = stagingOf(d, 'group');
    const rw = await targetOf(d, 'pod-rw', 'pv-group');
    const ro = await targetOf(d, 'pod-ro', 'pv-group');
    // mkdtemp made the driver's dir 0700; a pod's uid must be able to walk down to its volume
    await chmod(d.dir, 0o755);
    await stage(d, bucket, staging, { volume_capability: capWith({ group: '2000' }) });
    await publish(d, bucket, staging, rw, { volume_capability: capWith({ group: '2000' }) });
    await publish(d, bucket, staging, ro, { readonly: true, volume_capability: capWith({ group: '2000' }) });
    // kubelet gives the pod's processes fsGroup as a supplementary group
    const asPod = (cmd: string, dir: string): Promise<{ code: number; stderr: string }> =>
      shell('setpriv', ['--reuid=1000', '--regid=1000', '--groups=2000', 'sh', '-c', cmd.replaceAll('DIR', dir)]);
    const wrote = await asPod('echo x > DIR/by-uid-1000.txt', rw);
    assert.equal(wrote.code, 0, wrote.stderr);
    assert.equal((await stat(join(rw, 'by-uid-1000.txt'))).gid, 2000);
    const denied = await asPod('echo x > DIR/by-uid-1000-ro.txt', ro);
    assert.notEqual(denied.code, 0);
    const rootDenied = await shell('sh', ['-c', `echo x > ${ro}/root.txt`]);
    assert.notEqual(rootDenied.code, 0);
    assert.match(rootDenied.stderr, /Read-only file system/);
    assert.equal((await readFile(join(ro, 'by-uid-1000.txt'), 'utf8')).trim(), 'x');
    // a different readonly flag on an already published target is incompatible
    assert.equal(await d.callCode('Node', 'NodePublishVolume', { volume_id: bucket, staging_target_path: staging, target_path: ro, volume_capability: MOUNT_CAP, readonly: false }), status.ALREADY_EXISTS);
    // a second pod with another fsGroup (or none) shares the staged mount: the first group stays
    await d.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: capWith({ group: '3000' }), secrets: s3.secrets });
    await d.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets });
    assert.equal((await stat(join(rw, 'by-uid-1000.txt'))).gid, 2000);
    // the same path staged with other options (read-only access) is incompatible
    assert.equal(await d.callCode('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: capWith({ group: '2000', mode: 'MULTI_NODE_READER_ONLY' }), secrets: s3.secrets }), status.ALREADY_EXISTS);
    for (const t of [rw, ro]) await d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: staging });
  });

  it('kill -9 of s3fs: stats abnormal within 2 s, no RPC hangs; NodeStage and NodePublish repair by stacking', async () => {
    const bucket = await newBucket();
    const staging = stagingOf(d, 'killed');
    const t1 = await targetOf(d, 'pod-k', 'pv-killed');
    await stage(d, bucket, staging);
    await publish(d, bucket, staging, t1);
    await shell('sh', ['-c', `echo before > ${t1}/f.txt`]);
    const [pid] = await s3fsPidsUnder(d.dir);
    assert.ok(pid);
    const killedAt = Date.now();
    process.kill(pid, 'SIGKILL');
    let st = await stats(d, bucket, t1, 2000);
    while (!st.volume_condition.abnormal && Date.now() - killedAt < 2000) st = await stats(d, bucket, t1, 2000);
    const ms = Date.now() - killedAt;
    assert.equal(st.volume_condition.abnormal, true);
    assert.ok(ms < 2000, `abnormal after ${ms} ms`);
    assert.match(st.volume_condition.message, /exited unexpectedly|ENOTCONN/);
    console.log(`kill -9 -> abnormal in ${ms} ms: ${st.volume_condition.message}`);
    // other RPCs answer at once
    await d.call('Node', 'NodeGetCapabilities', {}, 2000);
    assert.equal((await stats(d, bucket, staging, 2000)).volume_condition.abnormal, true);
    const metrics = await d.http('/metrics');
    assert.match(metrics.body, /s3fs_csi_s3fs_unexpected_exits_total [1-9]/);

    // NodeStage on the dead staging path: new s3fs on a fresh backing dir + bind stacked over it
    await stage(d, bucket, staging);
    assert.equal((await stats(d, bucket, staging)).volume_condition.abnormal, false);
    assert.equal(await readFile(join(staging, 'f.txt'), 'utf8'), 'before\n');
    // the target (private propagation here) still shows the dead mount until NodePublish heals it
    await publish(d, bucket, staging, t1);
    const healed = await stats(d, bucket, t1);
    assert.equal(healed.volume_condition.abnormal, false, healed.volume_condition.message);
    assert.equal(await readFile(join(t1, 'f.txt'), 'utf8'), 'before\n');
    assert.equal((await s3fsPidsUnder(d.dir)).length, 1);
    // teardown removes every layer, dead ones included
    await d.call('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: t1 });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: staging });
    assert.deepEqual(await mountPointsUnder(d.dir), []);
    assert.deepEqual(await s3fsPidsUnder(d.dir), []);
  });

  it('a hung s3fs (SIGSTOP) is reported abnormal within the check deadline and blocks no other RPC', async () => {
    const a = await newBucket();
    const b = await newBucket();
    const sa = stagingOf(d, 'hung-a');
    const sb = stagingOf(d, 'hung-b');
    await stage(d, a, sa);
    const pidsBefore = new Set(await s3fsPidsUnder(d.dir));
    await stage(d, b, sb);
    const pidB = (await s3fsPidsUnder(d.dir)).find((p) => !pidsBefore.has(p))!;
    process.kill(pidB, 'SIGSTOP');
    try {
      const started = Date.now();
      const [hung, ok, caps] = await Promise.all([stats(d, b, sb, 5000), stats(d, a, sa, 5000), d.call('Node', 'NodeGetCapabilities', {}, 2000)]);
      assert.ok(caps);
      assert.equal(hung.volume_condition.abnormal, true);
      assert.match(hung.volume_condition.message, /did not answer/);
      assert.equal(ok.volume_condition.abnormal, false);
      assert.ok(Date.now() - started < 3000, `took ${Date.now() - started} ms`);
    } finally {
      process.kill(pidB, 'SIGCONT');
    }
    await d.call('Node', 'NodeUnstageVolume', { volume_id: b, staging_target_path: sb });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: a, staging_target_path: sa });
    assert.deepEqual(await mountPointsUnder(d.dir), []);
  });

  it('secret values appear in no argv, environment, log line or leftover file', async () => {
    const bucket = await newBucket();
    const staging = stagingOf(d, 'secrets');
    await stage(d, bucket, staging);
    const pids = [...(await s3fsPidsUnder(d.dir)), d.proc.pid!];
    assert.ok(pids.length >= 2);
    for (const pid of pids) {
      for (const file of ['cmdline', 'environ']) {
        const text = await readFile(`/proc/${pid}/${file}`, 'utf8');
        assert.ok(!text.includes(s3.secretKey), `secret key in /proc/${pid}/${file}`);
        assert.ok(!text.includes(s3.accessKey), `access key in /proc/${pid}/${file}`);
      }
    }
    const passwd = await passwdFiles(d);
    assert.equal(passwd.length, 1);
    assert.equal((await stat(join(d.dir, 'runtime', passwd[0]!))).mode & 0o777, 0o600);
    // a failing stage (wrong key) must not echo the keys either
    const wrong = { ...s3.secrets, secretAccessKey: 'wrong-secret-value-123' };
    const bad = await d.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: stagingOf(d, 'secrets-bad'), volume_capability: MOUNT_CAP, secrets: wrong }, 60_000)
      .then(() => undefined, (e: { code: number; details: string }) => e);
    assert.equal(bad?.code, status.PERMISSION_DENIED, bad?.details);
    assert.ok(!bad.details.includes('wrong-secret-value-123'));
    await d.call('Node', 'NodeUnstageVolume', { volume_id: bucket, staging_target_path: staging });
    assert.deepEqual(await passwdFiles(d), []);
    const logs = d.logs.join('\n');
    for (const v of [s3.secretKey, s3.accessKey, 'wrong-secret-value-123']) assert.ok(!logs.includes(v), 'secret in driver log');
  });

  it('a failing mount leaves nothing behind and says why', async () => {
    const staging = stagingOf(d, 'missing-bucket');
    const err = await d.call('Node', 'NodeStageVolume', { volume_id: 'no-such-bucket-here', staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets }, 60_000)
      .then(() => undefined, (e: { code: number; details: string }) => e);
    assert.ok(err);
    assert.equal(err.code, status.NOT_FOUND, err.details);
    assert.match(err.details, /404.*does not exist/);
    assert.deepEqual(await mountPointsUnder(d.dir), []);
    assert.deepEqual(await s3fsPidsUnder(d.dir), []);
    assert.deepEqual(await passwdFiles(d), []);
  });

  it('20 volumes staged and published concurrently', async () => {
    const vols = await Promise.all(Array.from({ length: 20 }, async (_, i) => ({
      id: await newBucket(), staging: stagingOf(d, `many-${i}`), target: await targetOf(d, `pod-many-${i}`, `pv-many-${i}`),
    })));
    const started = Date.now();
    await Promise.all(vols.map(async (v) => {
      await stage(d, v.id, v.staging);
      await publish(d, v.id, v.staging, v.target);
    }));
    console.log(`20 volumes staged+published concurrently in ${Date.now() - started} ms`);
    assert.equal((await s3fsPidsUnder(d.dir)).length, 20);
    await Promise.all(vols.map(async (v) => {
      await shell('sh', ['-c', `echo ${v.id} > ${v.target}/id.txt`]);
      assert.equal((await readFile(join(v.staging, 'id.txt'), 'utf8')).trim(), v.id);
    }));
    await Promise.all(vols.map(async (v) => {
      await d.call('Node', 'NodeUnpublishVolume', { volume_id: v.id, target_path: v.target });
      await d.call('Node', 'NodeUnstageVolume', { volume_id: v.id, staging_target_path: v.staging });
    }));
    assert.deepEqual(await mountPointsUnder(d.dir), []);
    assert.deepEqual(await s3fsPidsUnder(d.dir), []);
  });

  it('hostile options and paths are INVALID_ARGUMENT and change nothing', async () => {
    const bucket = await newBucket();
    const staging = stagingOf(d, 'hostile');
    const before = await mountPointsUnder('/');
    const cases: [string, object][] = [
      ['passwd_file via StorageClass', { volume_context: { options: 'passwd_file=/etc/shadow' } }],
      ['url via StorageClass', { volume_context: { options: 'url=http://elsewhere.example' } }],
      ['comma injection', { volume_context: { options: 'uid=1000,passwd_file=/etc/shadow' } }],
      ['comma injection in mount flag', { volume_capability: capWith({ flags: ['ro,url=http://elsewhere.example'] }) }],
      ['-o injection', { volume_context: { options: '-o allow_other -o bucket=other' } }],
      ['cache dir', { volume_context: { options: 'use_cache=/etc' } }],
      ['unknown option', { volume_capability: capWith({ flags: ['ahbe_conf=/etc/x'] }) }],
      ['value injection', { volume_capability: capWith({ flags: ['uid=0 -o passwd_file=/x'] }) }],
      ['non-numeric group', { volume_capability: capWith({ group: 'wheel' }) }],
      ['block volume', { volume_capability: { block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } } }],
    ];
    for (const [what, extra] of cases) {
      const res = await d.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets, ...extra })
        .then(() => undefined, (e: { code: number; details: string }) => e);
      assert.equal(res?.code, status.INVALID_ARGUMENT, `${what}: ${res?.details}`);
      assert.ok(!res.details.includes(s3.secretKey));
    }
    const outside = join(d.dir, 'outside');
    await mkdir(outside);
    await run('ln', ['-s', '/etc', join(d.kubeletDir, 'evil')]);
    const badPaths = ['/etc', '/etc/target', `${d.kubeletDir}/../../etc`, `${d.kubeletDir}/a/../../x`, 'relative/path',
      `${d.kubeletDir}/evil/mount`, `${d.kubeletDir}/evil`, `${outside}/x`, d.kubeletDir, `${d.kubeletDir}//double`];
    for (const p of badPaths) {
      assert.equal(await d.callCode('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: p, volume_capability: MOUNT_CAP, secrets: s3.secrets }), status.INVALID_ARGUMENT, `stage ${p}`);
      assert.equal(await d.callCode('Node', 'NodePublishVolume', { volume_id: bucket, staging_target_path: staging, target_path: p, volume_capability: MOUNT_CAP }), status.INVALID_ARGUMENT, `publish ${p}`);
      assert.equal(await d.callCode('Node', 'NodeUnpublishVolume', { volume_id: bucket, target_path: p }), status.INVALID_ARGUMENT, `unpublish ${p}`);
    }
    assert.equal(existsSync('/etc/target'), false);
    assert.equal(existsSync('/etc/mount'), false);
    assert.equal(existsSync(staging), false, 'nothing created');
    assert.deepEqual(await readdir(outside), []);
    assert.deepEqual(await mountPointsUnder('/'), before);
    assert.deepEqual(await s3fsPidsUnder(d.dir), []);
  });

  it('after a driver restart: a surviving s3fs is adopted; dead layers are repaired or removed from disk + mount table', async () => {
    const dir = await mkdtemp(join(tmpdir(), 's3fs-csi-node-restart-'));
    const args = ['--s3-endpoint', s3.endpoint];
    let d1: DriverProcess | undefined = await startDriver({ mode: 'node', dir, args });
    let d2: DriverProcess | undefined;
    try {
      const a = await newBucket();
      const b = await newBucket();
      const sa = stagingOf(d1, 'restart-a');
      const sb = stagingOf(d1, 'restart-b');
      const ta = await targetOf(d1, 'pod-ra', 'pv-ra');
      const tb = await targetOf(d1, 'pod-rb', 'pv-rb');
      await stage(d1, a, sa);
      await publish(d1, a, sa, ta);
      const pidA = (await s3fsPidsUnder(dir))[0]!;
      await stage(d1, b, sb);
      await publish(d1, b, sb, tb);
      const pidB = (await s3fsPidsUnder(dir)).find((p) => p !== pidA)!;
      // the driver dies; B's s3fs dies with it (as in a container), A's survives (as on a host)
      await d1.stop('SIGKILL');
      process.kill(pidB, 'SIGKILL');
      d1 = undefined;
      d2 = await startDriver({ mode: 'node', dir, args });
      // A: healthy mount from the previous driver -> adopted; a later kill is noticed at once
      await stage(d2, a, sa);
      assert.equal((await stats(d2, a, ta)).volume_condition.abnormal, false);
      process.kill(pidA, 'SIGKILL');
      await waitFor('supervision to notice the adopted s3fs exit', async () => (await stats(d2!, a, ta, 2000)).volume_condition.abnormal || undefined, 3000);
      // B: unpublish and unstage work on dead layers without any in-memory state
      assert.equal((await stats(d2, b, tb)).volume_condition.abnormal, true);
      await d2.call('Node', 'NodeUnpublishVolume', { volume_id: b, target_path: tb });
      await d2.call('Node', 'NodeUnstageVolume', { volume_id: b, staging_target_path: sb });
      assert.equal(existsSync(tb), false);
      // A: NodeStage repairs the dead staging path, NodePublish the dead target
      await stage(d2, a, sa);
      await publish(d2, a, sa, ta);
      assert.equal((await stats(d2, a, ta)).volume_condition.abnormal, false);
      await d2.call('Node', 'NodeUnpublishVolume', { volume_id: a, target_path: ta });
      await d2.call('Node', 'NodeUnstageVolume', { volume_id: a, staging_target_path: sa });
      assert.deepEqual(await mountPointsUnder(dir), []);
      assert.deepEqual(await s3fsPidsUnder(dir), []);
      assert.deepEqual(await passwdFiles(d2), []);
    } finally {
      await d1?.stop('SIGKILL');
      await d2?.stop('SIGKILL');
      await scrubDir(dir);
    }
  });
});
