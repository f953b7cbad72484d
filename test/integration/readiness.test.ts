// The readiness statfs made in the driver's own process (src/mount/readiness.ts), against a real s3fs
// mount on real FUSE: it answers for a serving s3fs; for a hung one (SIGSTOP) it gives `hung` at its
// deadline while the kernel call keeps its pool thread, and only that one (a second check at the same
// time goes to a child process); stopping the s3fs ends the kernel call (the connection is aborted),
// which gives the slot back. That last fact is what makes an in-process statfs of our own s3fs safe.
import assert from 'node:assert/strict';
import { readFile, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { IN_PROCESS_SLOTS, readinessCallsInFlight, statfsOfOwnMount } from '../../src/mount/index.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { killS3fsAndUnmountUnder, s3fsPidsUnder } from '../harness/mounts.js';
import { waitFor } from '../harness/net.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const MOUNT_CAP = { mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } };

let s3: S3Server;
let raw: S3Client;
let d: DriverProcess;

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({ endpoint: s3.endpoint, region: s3.region, forcePathStyle: true, credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey } });
  d = await startDriver({ mode: 'node', args: ['--s3-endpoint', s3.endpoint] });
});
after(async () => {
  if (d) await killS3fsAndUnmountUnder(d.dir);
  await d?.cleanup();
  raw?.destroy();
  await s3?.stop();
});

/** A staged volume (the driver's s3fs) and that s3fs's PID. */
async function stagedVolume(name: string): Promise<{ bucket: string; staging: string; pid: number }> {
  const bucket = `readiness-${process.pid}-${name}`;
  await raw.send(new CreateBucketCommand({ Bucket: bucket }));
  const staging = join(d.kubeletDir, 'plugins/kubernetes.io/csi/s3fs.csi.dev', name, 'globalmount');
  const before = new Set(await s3fsPidsUnder(d.dir));
  await d.call('Node', 'NodeStageVolume', { volume_id: bucket, staging_target_path: staging, volume_capability: MOUNT_CAP, secrets: s3.secrets }, 60_000);
  const pid = (await s3fsPidsUnder(d.dir)).find((p) => !before.has(p));
  assert.ok(pid, 'the stage started an s3fs');
  return { bucket, staging, pid };
}

describe('readiness statfs in the driver process (real s3fs, real FUSE)', () => {
  it('a serving s3fs: healthy, with its figures, and the slot is given back', async () => {
    const v = await stagedVolume('serving');
    const h = await statfsOfOwnMount(v.staging, 5000);
    assert.equal(h.state, 'healthy', h.message);
    assert.ok(h.fs && h.fs.blockSize > 0, 'statfs figures');
    assert.equal(readinessCallsInFlight(), 0);
    await d.call('Node', 'NodeUnstageVolume', { volume_id: v.bucket, staging_target_path: v.staging });
  });

  it('a hung s3fs pins one pool thread until it is stopped, never more, and file operations go on', async () => {
    assert.equal(IN_PROCESS_SLOTS, 1);
    const v = await stagedVolume('hung');
    process.kill(v.pid, 'SIGSTOP');
    try {
      // A plain statfs from this process, waiting in the kernel like the readiness call.
      const plain = statfs(v.staging).then(() => 'answered', (e: NodeJS.ErrnoException) => e.code ?? e.message);
      const first = await statfsOfOwnMount(v.staging, 300);
      assert.equal(first.state, 'hung', first.message);
      assert.equal(readinessCallsInFlight(), 1, 'the kernel call still holds its thread past the deadline');
      // The slot is taken: this one runs in a child (killed at its deadline), not on a second thread.
      const second = await statfsOfOwnMount(v.staging, 300);
      assert.equal(second.state, 'hung', second.message);
      assert.equal(readinessCallsInFlight(), 1);
      // Two pool threads wait on the hung mount (the readiness call and `plain`): file operations still run.
      assert.match(await readFile('/proc/self/status', 'utf8'), /^Name:/m);
      // Stopping the daemon aborts its FUSE connection: both waiting calls end with an error, the slot comes back.
      process.kill(v.pid, 'SIGKILL');
      const code = await plain;
      assert.ok(code === 'ENOTCONN' || code === 'ECONNABORTED', `the waiting statfs ended with ${code}`);
      process.stdout.write(`# readiness: a statfs waiting on a stopped s3fs ended with ${code} when it was killed\n`);
      await waitFor('the readiness slot given back', () => (readinessCallsInFlight() === 0 ? true : undefined), 5000, 10);
    } finally {
      try {
        process.kill(v.pid, 'SIGCONT');
      } catch {
        // killed above
      }
    }
    await d.call('Node', 'NodeUnstageVolume', { volume_id: v.bucket, staging_target_path: v.staging }, 30_000);
  });
});
