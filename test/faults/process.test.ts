// Process faults: the driver is SIGKILLed in the middle of CreateVolume, DeleteVolume,
// NodeStageVolume and NodePublishVolume (fault points in the code, armed through
// S3FS_CSI_FAULTS_FILE), restarted on the same directories, and the CO's retry must succeed. The
// node must end with no orphan s3fs, mount layer, passwd file or half-created target, and every
// bucket must end either fully created (bucket + record) or fully deleted.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ListBucketsCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { findSecrets, s3fsProcessesUnder } from '../harness/scan.js';
import { CAPS, type FaultsFile, faultsFile, leaks, outcome, publishReq, retryUntilOk, scrubDir, stageReq, stagingOf, targetOf } from './lib.js';

let s3: S3Server;
let raw: S3Client;
let dir: string;
let faults: FaultsFile;
const drivers: DriverProcess[] = [];
const measured: string[] = [];

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  dir = await mkdtemp(join(tmpdir(), 's3fs-csi-kill-'));
  faults = await faultsFile();
});

/** Logs of every driver of this file, for the secret scan at the end. */
const logs: string[] = [];

after(async () => {
  for (const d of drivers) await d.stop('SIGKILL');
  if (dir) await scrubDir(dir);
  await scrubDir(join(faults.path, '..'));
  raw?.destroy();
  await s3?.stop();
  console.log(`process faults, measured:\n${measured.join('\n')}`);
});

/** A driver on the shared directory (so a restart finds what the killed one left). */
async function driver(): Promise<DriverProcess> {
  const d = await startDriver({ mode: 'all', dir, args: ['--s3-endpoint', s3.endpoint, '--mount-check-timeout', '2s'], env: { S3FS_CSI_FAULTS_FILE: faults.path } });
  drivers.push(d);
  return d;
}

async function buckets(): Promise<string[]> {
  return ((await raw.send(new ListBucketsCommand({}))).Buckets ?? []).map((b) => b.Name ?? '');
}

interface World {
  d: DriverProcess;
  name: string;
  volumeId: string;
  staging: string;
  target: string;
}

const create = (w: World): Promise<{ volume: { volume_id: string } }> =>
  w.d.call('Controller', 'CreateVolume', { name: w.name, volume_capabilities: CAPS, secrets: s3.secrets });
const del = (w: World): Promise<unknown> => w.d.call('Controller', 'DeleteVolume', { volume_id: w.volumeId, secrets: s3.secrets });
const stage = (w: World): Promise<unknown> => w.d.call('Node', 'NodeStageVolume', stageReq(w.volumeId, w.staging, s3.secrets), 60_000);
const publish = (w: World): Promise<unknown> => w.d.call('Node', 'NodePublishVolume', publishReq(w.volumeId, w.staging, w.target));
const unpublish = (w: World): Promise<unknown> => w.d.call('Node', 'NodeUnpublishVolume', { volume_id: w.volumeId, target_path: w.target });
const unstage = (w: World): Promise<unknown> => w.d.call('Node', 'NodeUnstageVolume', { volume_id: w.volumeId, staging_target_path: w.staging });

interface Case {
  point: string;
  /** Brings the volume to the state before the interrupted call. */
  setup: (w: World) => Promise<void>;
  /** The interrupted call, retried after the restart. */
  call: (w: World) => Promise<unknown>;
  /** What must hold right after the retry succeeded. */
  verify: (w: World) => Promise<void>;
  /** Tears the volume down completely. */
  teardown: (w: World) => Promise<unknown>;
}

const volumeIdOf = async (w: World): Promise<void> => {
  w.volumeId = (await create(w)).volume.volume_id;
};
const fullyCreated = async (w: World): Promise<void> => {
  assert.ok((await buckets()).includes(w.volumeId), 'bucket exists');
  // The record is there: ValidateVolumeCapabilities finds the volume (NOT_FOUND otherwise).
  await w.d.call('Controller', 'ValidateVolumeCapabilities', { volume_id: w.volumeId, volume_capabilities: CAPS, secrets: s3.secrets });
  assert.equal((await buckets()).filter((b) => b.startsWith(w.name)).length, 1, 'exactly one bucket for the name');
};
const fullyDeleted = async (w: World): Promise<void> => {
  assert.ok(!(await buckets()).includes(w.volumeId), 'bucket deleted');
};
const stagedOnce = async (w: World): Promise<void> => {
  assert.equal(s3fsProcessesUnder(dir).length, 1, 'exactly one s3fs');
  const layers = await mountPointsUnder(w.staging);
  assert.equal(layers.length, 1, `one layer at the staging path, got ${layers.length}`);
  await w.d.call('Node', 'NodeGetVolumeStats', { volume_id: w.volumeId, volume_path: w.staging });
};
const publishedOnce = async (w: World): Promise<void> => {
  await stagedOnce(w);
  assert.equal((await mountPointsUnder(w.target)).length, 1, 'one layer at the target');
  await w.d.call('Node', 'NodeGetVolumeStats', { volume_id: w.volumeId, volume_path: w.target });
};
const withData = async (w: World): Promise<void> => {
  await volumeIdOf(w);
  await raw.send(new PutObjectCommand({ Bucket: w.volumeId, Key: 'data/file.txt', Body: 'payload' }));
};
const downFromStaged = async (w: World): Promise<void> => {
  await unstage(w);
  await del(w);
};
const downFromPublished = async (w: World): Promise<void> => {
  await unpublish(w);
  await downFromStaged(w);
};

const cases: Case[] = [
  { point: 'create-after-bucket', setup: async () => {}, call: volumeIdOf, verify: fullyCreated, teardown: del },
  { point: 'create-after-record', setup: async () => {}, call: volumeIdOf, verify: fullyCreated, teardown: del },
  { point: 'delete-after-data', setup: withData, call: del, verify: fullyDeleted, teardown: async () => {} },
  { point: 'delete-after-record', setup: withData, call: del, verify: fullyDeleted, teardown: async () => {} },
  { point: 'stage-after-s3fs', setup: volumeIdOf, call: stage, verify: stagedOnce, teardown: downFromStaged },
  { point: 'stage-after-bind', setup: volumeIdOf, call: stage, verify: stagedOnce, teardown: downFromStaged },
  { point: 'publish-after-mkdir', setup: async (w) => { await volumeIdOf(w); await stage(w); }, call: publish, verify: publishedOnce, teardown: downFromPublished },
  { point: 'publish-after-bind', setup: async (w) => { await volumeIdOf(w); await stage(w); }, call: publish, verify: publishedOnce, teardown: downFromPublished },
];

describe('SIGKILL in the middle of an RPC, restart, retry', () => {
  for (const c of cases) {
    it(`killed at ${c.point}: the retry succeeds and nothing is left behind`, async (t) => {
      // A failed case must not leave a driver serving the shared socket, s3fs or mounts to the next.
      t.after(async () => {
        for (const drv of drivers.splice(0)) {
          await drv.stop('SIGKILL');
          logs.push(...drv.logs);
        }
        await scrubDir(dir, false);
      });
      await faults.clear();
      let d = await driver();
      const name = `kill-${c.point}`;
      const w: World = { d, name, volumeId: name, staging: stagingOf(d, name), target: await targetOf(d, `pod-${name}`, name) };
      await c.setup(w);
      await faults.set({ [c.point]: 'kill' });
      const interrupted = await outcome(c.call(w));
      const exit = (await d.exitedWithin(15_000)) === 'still running' ? 'still running' : d.proc.signalCode;
      assert.equal(exit, 'SIGKILL', `the driver died at ${c.point} (call answered ${interrupted.code}: ${interrupted.message})`);
      await faults.clear();
      const t0 = Date.now();
      d = await driver();
      w.d = d;
      const retryMs = await retryUntilOk(() => c.call(w), 60_000);
      measured.push(`| SIGKILL at ${c.point} | retry OK ${Date.now() - t0} ms after restart (driver start included; retry itself ${retryMs} ms) |`);
      await c.verify(w);
      await c.teardown(w);
      assert.deepEqual(await leaks(d, [w.target]), [], 'nothing left after teardown');
      await fullyDeleted(w);
      assert.ok(!existsSync(w.target), 'no half-created target');
      await d.stop();
    });
  }
});

describe('secret hygiene of the killed and restarted drivers', () => {
  it('no secret value in any of their log lines', () => {
    assert.ok(logs.length > 0);
    assert.deepEqual(findSecrets([{ where: 'driver logs', text: logs.join('\n') }], [s3.secretKey]), []);
  });
});
