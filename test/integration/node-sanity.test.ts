// csi-sanity v5.4.0's Node specs (--ginkgo.focus=Node) with real s3fs mounts: the real binary in
// --mode all (CreateVolume makes the bucket/prefix, the node mounts it) against a real S3 server,
// staging and mount dirs under an --allowed-root. Both volume models: a bucket per volume, and a
// prefix per volume in a shared bucket. Mounts and s3fs left by a failing spec are cleaned up.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { killS3fsAndUnmountUnder, mountPointsUnder, s3fsPidsUnder } from '../harness/mounts.js';
import { failures, runSanity } from '../harness/sanity.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

let s3: S3Server;
const roots: string[] = [];
const drivers: DriverProcess[] = [];

before(async () => {
  s3 = await startS3Server();
});
after(async () => {
  for (const d of drivers) await d.cleanup();
  for (const r of roots) {
    await killS3fsAndUnmountUnder(r);
    await rm(r, { recursive: true, force: true });
  }
  await s3?.stop();
});

const secretNames = ['CreateVolumeSecret', 'DeleteVolumeSecret', 'ControllerPublishVolumeSecret', 'ControllerUnpublishVolumeSecret',
  'ControllerValidateVolumeCapabilitiesSecret', 'NodeStageVolumeSecret', 'NodePublishVolumeSecret', 'ControllerExpandVolumeSecret',
  'NodeExpandVolumeSecret'];

describe('csi-sanity v5.4.0 Node specs with real mounts', () => {
  for (const model of [
    { name: 'bucket-per-volume', parameters: undefined },
    { name: 'shared-bucket', parameters: { bucket: 'node-sanity-shared' } },
  ]) {
    it(model.name, async () => {
      const root = await mkdtemp(join(tmpdir(), `s3fs-csi-node-sanity-${model.name}-`));
      roots.push(root);
      const d = await startDriver({ mode: 'all', dir: join(root, 'driver'), args: ['--s3-endpoint', s3.endpoint, '--allowed-root', root] });
      drivers.push(d);
      await mkdir(join(root, 'sanity'), { recursive: true });
      const res = await runSanity({
        endpoint: d.socketPath,
        stagingDir: join(root, 'staging'),
        mountDir: join(root, 'mount'),
        workDir: join(root, 'sanity'),
        parameters: model.parameters,
        secrets: Object.fromEntries(secretNames.map((n) => [n, s3.secrets])),
        focus: 'Node',
        timeoutMs: 10 * 60_000,
      });
      await writeFile(join(root, 'sanity', 'output.log'), res.output);
      console.log(`csi-sanity Node [${model.name}]\n${res.summary}`);
      assert.equal(res.failed, 0, failures(res.output));
      assert.equal(res.exitCode, 0, failures(res.output));
      assert.ok(res.ran >= 15, `only ${res.ran} specs ran:\n${res.summary}`);
      // the specs really mounted: stage and publish succeeded with real s3fs
      const ok = (m: string): number => d.logs.filter((l) => l.includes(`/csi.v1.Node/${m}"`) && l.includes('"code":"OK"')).length;
      assert.ok(ok('NodeStageVolume') >= 3 && ok('NodePublishVolume') >= 3, `stage OK ${ok('NodeStageVolume')}, publish OK ${ok('NodePublishVolume')}`);
      console.log(`real mounts: ${ok('NodeStageVolume')} NodeStageVolume, ${ok('NodePublishVolume')} NodePublishVolume, ${ok('NodeGetVolumeStats')} NodeGetVolumeStats OK`);
      // csi-sanity's cleanup unstaged everything: no mount, no s3fs left behind
      assert.deepEqual(await mountPointsUnder(root), []);
      assert.deepEqual(await s3fsPidsUnder(root), []);
    });
  }
});
