// Dependency faults against the real binary: the S3 server stopped, slow, hanging or answering
// errors (a TCP proxy on loopback in front of versitygw), the s3fs binary missing, /dev/fuse
// unusable. Each gives a documented CSI code within its deadline, Probe reflects node dependencies,
// nothing is left behind by a failed call, and service resumes by itself when the dependency returns.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, mkdtemp, symlink } from 'node:fs/promises';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder, s3fsPidsUnder } from '../harness/mounts.js';
import { startProxy, type TcpProxy } from '../harness/proxy.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { findSecrets, procTexts, driverProcesses } from '../harness/scan.js';
import { CAPS, Witness, leaks, outcome, publishReq, retryUntilOk, scrubDir, stageReq, stagingOf, targetOf } from './lib.js';

const run = promisify(execFile);
const MOUNT_TIMEOUT_MS = 8000;

let s3: S3Server;
let proxy: TcpProxy;
let d: DriverProcess;
let secrets: Record<string, string>;
const witness = new Witness();
const extraDirs: string[] = [];
const drivers: DriverProcess[] = [];
/** Rows for docs/reliability.md, printed at the end. */
const measured: string[] = [];

async function driver(opts: Parameters<typeof startDriver>[0]): Promise<DriverProcess> {
  const drv = await startDriver(opts);
  drivers.push(drv);
  return drv;
}

before(async () => {
  s3 = await startS3Server();
  proxy = await startProxy({ port: s3.port });
  // Every call goes through the proxy: the secrets name it as the endpoint.
  secrets = { ...s3.secrets, endpoint: proxy.endpoint };
  d = await driver({ mode: 'all', args: ['--mount-timeout', `${MOUNT_TIMEOUT_MS}ms`, '--mount-check-timeout', '1s'] });
});

after(async () => {
  for (const drv of drivers) {
    witness.addDriver(drv, `driver ${drv.proc.pid}`);
    await drv.stop('SIGKILL');
    await scrubDir(drv.dir);
  }
  for (const dir of extraDirs) await scrubDir(dir);
  await proxy?.close();
  await s3?.stop();
  const found = findSecrets(witness.texts, [s3.secretKey]);
  if (found.length > 0) console.error('secret found:', found);
  console.log(`dependency faults, measured:\n${measured.join('\n')}`);
});

const create = (name: string, deadlineMs = 30_000): Promise<unknown> =>
  d.call('Controller', 'CreateVolume', { name, volume_capabilities: CAPS, secrets }, deadlineMs);

async function stageAndPublishWorks(drv: DriverProcess, volumeId: string, name: string): Promise<void> {
  const staging = stagingOf(drv, name);
  const target = await targetOf(drv, `pod-${name}`, name);
  await drv.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000);
  await drv.call('Node', 'NodePublishVolume', publishReq(volumeId, staging, target));
  await drv.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target });
  await drv.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
}

function note(o: { code: string; message: string }, what: string): void {
  witness.add(what, o.message);
}

describe('S3 server faults (through a loopback proxy)', () => {
  let volumeId: string;

  it('baseline: create, stage, publish, clean teardown', async () => {
    const res = await d.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', { name: 'dep-base', volume_capabilities: CAPS, secrets });
    volumeId = res.volume.volume_id;
    await stageAndPublishWorks(d, volumeId, 'dep-base');
    assert.deepEqual(await leaks(d), []);
  });

  it('stopped: UNAVAILABLE fast, Probe stays healthy, nothing left behind, resumes by itself', async () => {
    await s3.pause();
    const c = await outcome(create('dep-stopped'));
    note(c, 'CreateVolume while S3 stopped');
    assert.equal(c.code, 'Unavailable', c.message);
    assert.ok(c.ms < 12_000, `CreateVolume took ${c.ms} ms`);
    const staging = stagingOf(d, 'dep-stopped-stage');
    const s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000));
    note(s, 'NodeStage while S3 stopped');
    assert.equal(s.code, 'Unavailable', s.message);
    assert.ok(s.ms < MOUNT_TIMEOUT_MS + 3000, `NodeStage took ${s.ms} ms`);
    // S3 is not the plugin's own health: restarting the driver would not bring it back.
    assert.deepEqual(await d.call('Identity', 'Probe'), { ready: { value: true } });
    assert.deepEqual(await leaks(d), []);
    await s3.start();
    const t0 = Date.now();
    await retryUntilOk(() => create('dep-stopped'), 20_000);
    const createMs = Date.now() - t0;
    await retryUntilOk(() => d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000), 30_000);
    const stageMs = Date.now() - t0;
    await d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
    measured.push(`| S3 stopped | CreateVolume ${c.code} in ${c.ms} ms, NodeStage ${s.code} in ${s.ms} ms | recovered: create ${createMs} ms, stage ${stageMs} ms after restart |`);
    assert.deepEqual(await leaks(d), []);
  });

  it('slow (300 ms per chunk): calls succeed, only slower', async () => {
    await proxy.setMode('delay', { delayMs: 300 });
    try {
      const c = await outcome(create('dep-slow', 60_000));
      assert.equal(c.code, 'OK', c.message);
      const staging = stagingOf(d, 'dep-slow');
      const s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000));
      assert.equal(s.code, 'OK', s.message);
      const st = await outcome(d.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: staging }, 10_000));
      assert.equal(st.code, 'OK', st.message);
      await d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
      measured.push(`| S3 slow (+300 ms per chunk) | CreateVolume OK in ${c.ms} ms, NodeStage OK in ${s.ms} ms | - |`);
    } finally {
      await proxy.setMode('pass');
    }
    assert.deepEqual(await leaks(d), []);
  });

  it('hanging: CreateVolume UNAVAILABLE within its S3 time cap, NodeStage fails within --mount-timeout, mounted volumes still answer stats', async () => {
    // A volume staged before the hang.
    const stagedBefore = stagingOf(d, 'dep-hang-before');
    await d.call('Node', 'NodeStageVolume', stageReq(volumeId, stagedBefore, secrets), 60_000);
    await proxy.setMode('hang');
    try {
      const c = await outcome(create('dep-hang', 30_000));
      note(c, 'CreateVolume while S3 hangs');
      assert.equal(c.code, 'Unavailable', c.message);
      assert.ok(c.ms < 15_000, `CreateVolume took ${c.ms} ms`);
      const staging = stagingOf(d, 'dep-hang');
      const s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000));
      note(s, 'NodeStage while S3 hangs');
      assert.ok(['Unavailable', 'DeadlineExceeded'].includes(s.code), `${s.code}: ${s.message}`);
      assert.ok(s.ms < MOUNT_TIMEOUT_MS + 5000, `NodeStage took ${s.ms} ms`);
      const st = await outcome(d.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: stagedBefore }, 10_000));
      assert.ok(st.ms < 5000, `stats took ${st.ms} ms`);
      assert.ok(['OK'].includes(st.code), `${st.code}: ${st.message}`);
      measured.push(`| S3 hanging | CreateVolume ${c.code} in ${c.ms} ms, NodeStage ${s.code} in ${s.ms} ms, stats of a staged volume ${st.ms} ms | - |`);
    } finally {
      await proxy.setMode('pass');
    }
    const t0 = Date.now();
    await retryUntilOk(() => create('dep-hang'), 20_000);
    measured.push(`| S3 hang ended | - | CreateVolume OK ${Date.now() - t0} ms after |`);
    await d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: stagedBefore });
    assert.deepEqual(await leaks(d), []);
  });

  it('hanging: a caller that gives up, or a SIGTERM, mid-mount leaves no s3fs and no mount behind', async () => {
    // s3fs has mounted but its bucket check hangs: the stage waits in statfs. Before the fix the
    // driver kept waiting there after the caller left, and exited on SIGTERM with s3fs still running.
    await proxy.setMode('hang');
    try {
      const staging = stagingOf(d, 'dep-hang-giveup');
      const s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 3000));
      assert.equal(s.code, 'DeadlineExceeded', s.message);
      const t0 = Date.now();
      await retryUntilOk(async () => assert.deepEqual(await leaks(d), []), 5000, 100);
      const cleanMs = Date.now() - t0;

      const drv = await driver({ mode: 'node', args: ['--mount-timeout', '60s', '--shutdown-timeout', '1s'] });
      const pending = outcome(drv.call('Node', 'NodeStageVolume', stageReq(volumeId, stagingOf(drv, 'dep-hang-term'), secrets), 60_000));
      await retryUntilOk(async () => assert.ok((await mountPointsUnder(drv.dir)).length > 0, 'not mounted yet'), 10_000, 100);
      const t1 = Date.now();
      drv.proc.kill('SIGTERM'); // not drv.stop(): that closes the client first, which cancels the call itself
      const code = await drv.exitedWithin(15_000);
      const stopMs = Date.now() - t1;
      assert.equal(code, 0, drv.logs.slice(-5).join('\n'));
      const stage = await pending;
      assert.ok(['Aborted', 'Unavailable'].includes(stage.code), stage.message);
      assert.deepEqual(await leaks(drv), []);
      measured.push(`| Caller gives up / SIGTERM while a stage hangs in s3fs's bucket check | NodeStage ${s.code} at the caller's 3 s deadline | s3fs and mount gone ${cleanMs} ms later; SIGTERM exit 0 after ${stopMs} ms, nothing left |`);
    } finally {
      await proxy.setMode('pass');
    }
  });

  it('hanging: SIGTERM while recovery re-mounts a volume stops the new s3fs and removes its mount', async () => {
    // Local recovery (no API configured): s3fs is killed, the driver re-mounts at once, S3 hangs.
    const drv = await driver({ mode: 'node', args: ['--recovery', 'true', '--mount-timeout', '60s', '--shutdown-timeout', '1s'] });
    const staging = stagingOf(drv, 'dep-hang-recovery');
    await drv.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000);
    const backing = join(drv.dir, 'state', 'backing');
    const before = readdirSync(backing);
    const [first] = await s3fsPidsUnder(drv.dir);
    assert.ok(first !== undefined);
    await proxy.setMode('hang');
    try {
      process.kill(first, 'SIGKILL');
      // The repair has started its own s3fs on a fresh backing dir, which now waits on the bucket check.
      await retryUntilOk(async () => {
        const pids = await s3fsPidsUnder(drv.dir);
        assert.ok(pids.length === 1 && pids[0] !== first, 'no new s3fs yet');
        assert.ok((await mountPointsUnder(backing)).some((m) => !before.some((b) => m.endsWith(`/${b}`))), 'not mounted yet');
      }, 15_000, 100);
      drv.proc.kill('SIGTERM');
      assert.equal(await drv.exitedWithin(15_000), 0, drv.logs.slice(-5).join('\n'));
      assert.deepEqual(await s3fsPidsUnder(drv.dir), [], 'the repair s3fs was left running');
      assert.deepEqual(readdirSync(backing), before, 'the repair backing dir was left behind');
    } finally {
      await proxy.setMode('pass');
    }
  });

  it('answering 503 SlowDown: UNAVAILABLE, nothing left behind, resumes', async () => {
    await proxy.setMode('error');
    const staging = stagingOf(d, 'dep-503');
    let c: Awaited<ReturnType<typeof outcome>>;
    let s: Awaited<ReturnType<typeof outcome>>;
    try {
      c = await outcome(create('dep-503'));
      note(c, 'CreateVolume while S3 answers 503');
      s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000));
      note(s, 'NodeStage while S3 answers 503');
    } finally {
      await proxy.setMode('pass');
    }
    assert.equal(c.code, 'Unavailable', c.message);
    assert.equal(s.code, 'Unavailable', s.message);
    assert.deepEqual(await leaks(d), []);
    const t0 = Date.now();
    await retryUntilOk(() => create('dep-503'), 20_000);
    await retryUntilOk(() => d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000), 30_000);
    measured.push(`| S3 answering 503 | CreateVolume ${c.code} in ${c.ms} ms, NodeStage ${s.code} in ${s.ms} ms | create+stage OK ${Date.now() - t0} ms after |`);
    await d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging });
    assert.deepEqual(await leaks(d), []);
  });
});

describe('node dependencies', () => {
  it('s3fs binary missing: Probe FAILED_PRECONDITION, NodeStage FAILED_PRECONDITION; both recover when it appears', async () => {
    const binDir = await mkdtemp(join(tmpdir(), 's3fs-csi-bin-'));
    extraDirs.push(binDir);
    const s3fsPath = join(binDir, 's3fs');
    const drv = await driver({ mode: 'node', args: ['--s3fs-path', s3fsPath, '--mount-timeout', `${MOUNT_TIMEOUT_MS}ms`] });
    const p = await outcome(drv.call('Identity', 'Probe'));
    assert.equal(p.code, 'FailedPrecondition');
    assert.match(p.message, /s3fs binary/);
    assert.equal((await drv.http('/healthz')).status, 500);
    const staging = stagingOf(drv, 'dep-nos3fs');
    const volumeId = 'dep-base';
    const s = await outcome(drv.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, secrets), 60_000));
    note(s, 'NodeStage without s3fs');
    assert.equal(s.code, 'FailedPrecondition', s.message);
    assert.deepEqual(await leaks(drv), []);
    await symlink('/usr/bin/s3fs', s3fsPath);
    const t0 = Date.now();
    await retryUntilOk(() => drv.call('Identity', 'Probe'), 10_000);
    await stageAndPublishWorks(drv, volumeId, 'dep-nos3fs');
    measured.push(`| s3fs binary missing | Probe FailedPrecondition, NodeStage ${s.code} in ${s.ms} ms | Probe OK and stage+publish ${Date.now() - t0} ms after the binary appeared |`);
    assert.deepEqual(await leaks(drv), []);
  });

  it('/dev/fuse unusable: Probe FAILED_PRECONDITION, NodeStage fails cleanly; both recover when the device is back', async () => {
    // In a private mount namespace, a character device with an unassigned major number is bound
    // over /dev/fuse: opening it fails with ENXIO, as on a node whose fuse module is gone.
    const nsDir = await mkdtemp(join(tmpdir(), 's3fs-csi-nofuse-'));
    extraDirs.push(nsDir);
    const fake = join(nsDir, 'fuse');
    await run('mknod', [fake, 'c', '240', '240']);
    const drv = await driver({
      mode: 'node',
      args: ['--mount-timeout', `${MOUNT_TIMEOUT_MS}ms`],
      wrapper: ['unshare', '--mount', '--propagation', 'private', 'sh', '-c', `mount --bind ${fake} /dev/fuse && exec "$@"`, 'sh'],
    });
    const pid = drv.proc.pid ?? 0;
    const p = await outcome(drv.call('Identity', 'Probe'));
    assert.equal(p.code, 'FailedPrecondition');
    assert.match(p.message, /fuse/);
    const staging = stagingOf(drv, 'dep-nofuse');
    const s = await outcome(drv.call('Node', 'NodeStageVolume', stageReq('dep-base', staging, secrets), 60_000));
    note(s, 'NodeStage without /dev/fuse');
    assert.equal(s.code, 'FailedPrecondition', s.message);
    assert.deepEqual(await leaks(drv), []);
    // The device comes back (in the driver's namespace).
    await run('nsenter', ['-t', String(pid), '-m', 'umount', '/dev/fuse']);
    const t0 = Date.now();
    await retryUntilOk(() => drv.call('Identity', 'Probe'), 10_000);
    const target = join(drv.kubeletDir, 'pods/pod-nofuse/volumes/kubernetes.io~csi/pv/mount');
    await mkdir(join(target, '..'), { recursive: true });
    await drv.call('Node', 'NodeStageVolume', stageReq('dep-base', staging, secrets), 60_000);
    await drv.call('Node', 'NodePublishVolume', publishReq('dep-base', staging, target));
    // The mounts live in the driver's namespace: look there.
    const mountinfo = readFileSync(`/proc/${pid}/mountinfo`, 'utf8');
    assert.ok(mountinfo.includes(target), 'published in the driver namespace');
    await drv.call('Node', 'NodeUnpublishVolume', { volume_id: 'dep-base', target_path: target });
    await drv.call('Node', 'NodeUnstageVolume', { volume_id: 'dep-base', staging_target_path: staging });
    assert.ok(!readFileSync(`/proc/${pid}/mountinfo`, 'utf8').includes(drv.dir), 'nothing mounted after unstage');
    measured.push(`| /dev/fuse unusable (ENXIO) | Probe FailedPrecondition, NodeStage ${s.code} in ${s.ms} ms | Probe OK and stage+publish ${Date.now() - t0} ms after the device returned |`);
    assert.deepEqual(await leaks(drv), []);
  });

  it('secret hygiene of this file: no secret in logs, errors, or the /proc of the processes the driver started', async () => {
    const texts = [...witness.texts];
    for (const drv of drivers) {
      texts.push({ where: `driver ${drv.proc.pid} log`, text: drv.logs.join('\n') });
      texts.push(...procTexts(driverProcesses(drv.proc.pid ?? 0, drv.dir)));
      if (drv.proc.exitCode === null) texts.push({ where: 'metrics', text: (await drv.http('/metrics')).body });
    }
    assert.ok(texts.length > 5);
    assert.deepEqual(findSecrets(texts, [s3.secretKey]), []);
  });
});
