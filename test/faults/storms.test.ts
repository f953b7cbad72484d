// Concurrency storms against the real binary: 100 concurrent duplicate requests per RPC on one
// volume, then full lifecycles of 50 volumes at once with reads mixed in. No deadlock (every call
// answers within its deadline), no double mount or second s3fs, nothing leaked, every answer a
// valid CSI code, and every bucket either fully created or fully deleted.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { ListBucketsCommand, S3Client } from '@aws-sdk/client-s3';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { findSecrets, s3fsProcessesUnder } from '../harness/scan.js';
import { CAPS, leaks, outcome, publishReq, scrubDir, stageReq, stagingOf, targetOf } from './lib.js';

const DUPLICATES = 100;
const VOLUMES = 50;
/** Codes a duplicate may get while the first is in flight; everything else is a failure. */
const OK_OR_BUSY = new Set(['OK', 'Aborted']);

let s3: S3Server;
let d: DriverProcess;
let raw: S3Client;

before(async () => {
  s3 = await startS3Server();
  raw = new S3Client({
    endpoint: s3.endpoint, region: s3.region, forcePathStyle: true,
    credentials: { accessKeyId: s3.accessKey, secretAccessKey: s3.secretKey },
  });
  d = await startDriver({ mode: 'all', args: ['--s3-endpoint', s3.endpoint, '--mount-check-timeout', '2s'] });
});

after(async () => {
  if (d) {
    await d.stop('SIGKILL');
    await scrubDir(d.dir);
  }
  raw?.destroy();
  await s3?.stop();
});

async function buckets(): Promise<string[]> {
  const res = await raw.send(new ListBucketsCommand({}));
  return (res.Buckets ?? []).map((b) => b.Name ?? '').sort();
}

describe(`${DUPLICATES} concurrent duplicate requests per RPC on one volume`, () => {
  const figures: string[] = [];
  after(() => console.log(`storm figures:\n${figures.join('\n')}`));
  let volumeId = '';
  let staging = '';
  let target = '';

  const check = async (rpc: string, call: () => Promise<unknown>): Promise<unknown[]> => {
    // Duplicates that found the volume busy (ABORTED) are retried by the CO; do the same once all answered.
    const s = await stormWithCodes(call);
    figures.push(`${rpc}: ${JSON.stringify(s.codes)} max ${s.maxMs} ms`);
    assert.deepEqual(s.bad, [], `${rpc}: unexpected answers`);
    assert.ok((s.codes.OK ?? 0) >= 1, `${rpc}: no call succeeded`);
    await call();
    return s.results;
  };

  it('CreateVolume: one bucket, one volume id', async () => {
    const before = await buckets();
    const results = (await check('CreateVolume', () => d.call('Controller', 'CreateVolume', { name: 'storm-one', volume_capabilities: CAPS, secrets: s3.secrets }))) as { volume: { volume_id: string } }[];
    const ids = new Set(results.map((r) => r.volume.volume_id));
    assert.equal(ids.size, 1, `volume ids: ${[...ids].join(', ')}`);
    volumeId = [...ids][0] ?? '';
    const added = (await buckets()).filter((b) => !before.includes(b));
    assert.deepEqual(added, [volumeId.split('/')[0]]);
  });

  it('ValidateVolumeCapabilities and ControllerGetVolume', async () => {
    await check('ValidateVolumeCapabilities', () => d.call('Controller', 'ValidateVolumeCapabilities', { volume_id: volumeId, volume_capabilities: CAPS, secrets: s3.secrets }));
    await check('ControllerExpandVolume', () => d.call('Controller', 'ControllerExpandVolume', { volume_id: volumeId, capacity_range: { required_bytes: 2 * 1024 ** 3 }, secrets: s3.secrets }));
  });

  it('NodeStageVolume: one s3fs, one mount layer', async () => {
    staging = stagingOf(d, 'storm-one');
    await check('NodeStageVolume', () => d.call('Node', 'NodeStageVolume', stageReq(volumeId, staging, s3.secrets), 60_000));
    assert.equal(s3fsProcessesUnder(d.dir).length, 1, 'exactly one s3fs');
    assert.equal((await mountPointsUnder(staging)).length, 1, 'exactly one layer on the staging path');
  });

  it('NodePublishVolume: one bind on the target', async () => {
    target = await targetOf(d, 'storm-pod', 'storm-one');
    await check('NodePublishVolume', () => d.call('Node', 'NodePublishVolume', publishReq(volumeId, staging, target)));
    assert.equal((await mountPointsUnder(target)).length, 1, 'exactly one layer on the target');
  });

  it('NodeGetVolumeStats', async () => {
    await check('NodeGetVolumeStats', () => d.call('Node', 'NodeGetVolumeStats', { volume_id: volumeId, volume_path: target }));
  });

  it('NodeUnpublishVolume and NodeUnstageVolume: nothing left', async () => {
    await check('NodeUnpublishVolume', () => d.call('Node', 'NodeUnpublishVolume', { volume_id: volumeId, target_path: target }));
    assert.ok(!existsSync(target), 'target removed');
    await check('NodeUnstageVolume', () => d.call('Node', 'NodeUnstageVolume', { volume_id: volumeId, staging_target_path: staging }));
    assert.deepEqual(await leaks(d, [target]), []);
  });

  it('DeleteVolume: the bucket is gone', async () => {
    await check('DeleteVolume', () => d.call('Controller', 'DeleteVolume', { volume_id: volumeId, secrets: s3.secrets }));
    assert.ok(!(await buckets()).includes(volumeId.split('/')[0] ?? ''), 'bucket deleted');
  });
});

async function stormWithCodes(call: () => Promise<unknown>): Promise<{ codes: Record<string, number>; bad: string[]; maxMs: number; results: unknown[] }> {
  const results: unknown[] = [];
  const outs = await Promise.all(Array.from({ length: DUPLICATES }, async () => {
    const t0 = Date.now();
    const p = call();
    const o = await outcome(p);
    if (o.code === 'OK') results.push(await p);
    return { ...o, ms: Date.now() - t0 };
  }));
  const codes: Record<string, number> = {};
  let maxMs = 0;
  for (const o of outs) {
    codes[o.code] = (codes[o.code] ?? 0) + 1;
    maxMs = Math.max(maxMs, o.ms);
  }
  return { codes, bad: outs.filter((o) => !OK_OR_BUSY.has(o.code)).map((o) => `${o.code}: ${o.message}`), maxMs, results };
}

describe(`mixed operations on ${VOLUMES} volumes at once`, () => {
  it('full lifecycles interleaved with reads: all succeed (after ABORTED retries), nothing leaks, buckets all gone', async () => {
    const before = await buckets();
    const codes: Record<string, number> = {};
    const invalid: string[] = [];
    const count = (code: string, what: string, message: string): void => {
      codes[code] = (codes[code] ?? 0) + 1;
      if (!OK_OR_BUSY.has(code)) invalid.push(`${what}: ${code} ${message}`);
    };
    /** A CO retries ABORTED (and only that here: the S3 server is healthy). */
    const call = async <T>(what: string, fn: () => Promise<T>): Promise<T> => {
      for (let attempt = 0; ; attempt++) {
        try {
          const r = await fn();
          count('OK', what, '');
          return r;
        } catch (err) {
          const o = await outcome(Promise.reject(err));
          count(o.code, what, o.message);
          if (o.code !== 'Aborted' || attempt > 50) throw err;
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    };
    const targets: string[] = [];
    let stop = false;
    // Readers running the whole time.
    const readers = Promise.all(Array.from({ length: 4 }, async () => {
      while (!stop) {
        await outcome(d.call('Identity', 'Probe', {}, 10_000)).then((o) => count(o.code, 'Probe', o.message));
        await outcome(d.call('Node', 'NodeGetInfo', {}, 10_000)).then((o) => count(o.code, 'NodeGetInfo', o.message));
        await outcome(d.call('Controller', 'ControllerGetCapabilities', {}, 10_000)).then((o) => count(o.code, 'ControllerGetCapabilities', o.message));
      }
    }));
    const t0 = Date.now();
    const lifecycles = await Promise.allSettled(Array.from({ length: VOLUMES }, async (_v, i) => {
      const name = `storm-mixed-${i}`;
      const res = await call('CreateVolume', () => d.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', { name, volume_capabilities: CAPS, secrets: s3.secrets }));
      const id = res.volume.volume_id;
      const staging = stagingOf(d, name);
      const t1 = await targetOf(d, `pod-a-${i}`, name);
      const t2 = await targetOf(d, `pod-b-${i}`, name);
      targets.push(t1, t2);
      await call('NodeStageVolume', () => d.call('Node', 'NodeStageVolume', stageReq(id, staging, s3.secrets), 90_000));
      await Promise.all([
        call('NodePublishVolume', () => d.call('Node', 'NodePublishVolume', publishReq(id, staging, t1))),
        call('NodePublishVolume', () => d.call('Node', 'NodePublishVolume', publishReq(id, staging, t2))),
        call('NodeGetVolumeStats', () => d.call('Node', 'NodeGetVolumeStats', { volume_id: id, volume_path: staging })),
        call('ValidateVolumeCapabilities', () => d.call('Controller', 'ValidateVolumeCapabilities', { volume_id: id, volume_capabilities: CAPS, secrets: s3.secrets })),
      ]);
      await Promise.all([
        call('NodeUnpublishVolume', () => d.call('Node', 'NodeUnpublishVolume', { volume_id: id, target_path: t1 })),
        call('NodeUnpublishVolume', () => d.call('Node', 'NodeUnpublishVolume', { volume_id: id, target_path: t2 })),
      ]);
      await call('NodeUnstageVolume', () => d.call('Node', 'NodeUnstageVolume', { volume_id: id, staging_target_path: staging }));
      await call('DeleteVolume', () => d.call('Controller', 'DeleteVolume', { volume_id: id, secrets: s3.secrets }));
    }));
    stop = true;
    await readers;
    const elapsed = Date.now() - t0;
    console.log(`mixed storm: ${VOLUMES} lifecycles in ${elapsed} ms; codes ${JSON.stringify(codes)}`);
    const failed = lifecycles.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => (r.reason as Error).message);
    assert.deepEqual(failed, [], 'every lifecycle completed');
    assert.deepEqual(invalid, [], 'only OK or ABORTED');
    assert.deepEqual(await leaks(d, targets), []);
    assert.deepEqual((await buckets()).filter((b) => !before.includes(b)), [], 'no bucket left');
    assert.ok(d.proc.exitCode === null, 'driver alive');
    assert.deepEqual(findSecrets([{ where: 'storm driver log', text: d.logs.join('\n') }], [s3.secretKey]), []);
  });
});
