// csi-sanity v5.4.0's Controller specs against the real binary in --mode controller and a real S3
// server, in the bucket-per-volume and the shared-bucket model. A --mode node driver serves
// --csi.endpoint for the node calls csi-sanity makes while cleaning up.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { failures, runSanity } from '../harness/sanity.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

let s3: S3Server;
let work: string;
const drivers: DriverProcess[] = [];

before(async () => {
  s3 = await startS3Server();
  work = await mkdtemp(join(tmpdir(), 's3fs-csi-ctl-sanity-'));
  // Driver-level defaults from a mounted-Secret-style directory (ListVolumes/ControllerGetVolume).
  await writeFile(join(work, 'accessKeyID'), s3.accessKey, { mode: 0o600 });
  await writeFile(join(work, 'secretAccessKey'), s3.secretKey, { mode: 0o600 });
});
after(async () => {
  for (const d of drivers) await d.cleanup();
  await s3?.stop();
  if (work) await rm(work, { recursive: true, force: true });
});

// The secrets every controller call of csi-sanity carries (the provisioner/resizer secrets in Kubernetes).
const secretsFor = (s: S3Server): Record<string, Record<string, string>> => {
  const names = ['CreateVolumeSecret', 'DeleteVolumeSecret', 'ControllerValidateVolumeCapabilitiesSecret', 'ControllerExpandVolumeSecret',
    'ControllerPublishVolumeSecret', 'ControllerUnpublishVolumeSecret'];
  return Object.fromEntries(names.map((n) => [n, s.secrets]));
};

for (const model of [
  { name: 'bucket per volume', parameters: undefined },
  { name: 'shared bucket', parameters: { bucket: 'sanity-shared', options: '-o allow_other' } },
]) {
  describe(`csi-sanity Controller specs: ${model.name}`, () => {
    it('pass', { timeout: 10 * 60_000 }, async () => {
      const d = await startDriver({
        mode: 'controller',
        // endpoint from the secrets on mutating calls; from --s3-endpoint on ListVolumes/GetVolume
        args: ['--s3-endpoint', s3.endpoint, '--s3-secret-dir', work],
      });
      drivers.push(d);
      const dir = join(work, model.parameters ? 'shared' : 'bucket');
      // csi-sanity's cleanup calls NodeUnpublishVolume/NodeGetCapabilities on --csi.endpoint after
      // every spec: the real node role answers them (nothing is ever published by these specs).
      const node = await startDriver({ mode: 'node', args: ['--allowed-root', work] });
      drivers.push(node);
      const result = await runSanity({
        endpoint: node.socketPath,
        controllerEndpoint: d.socketPath,
        stagingDir: join(dir, 'staging'),
        mountDir: join(dir, 'mount'),
        workDir: dir,
        parameters: model.parameters,
        secrets: secretsFor(s3),
        volumeSize: 1 << 30,
        expandSize: 2 << 30,
        focus: 'Controller',
        junitReport: join(dir, 'junit.xml'),
      });
      console.log(`csi-sanity (${model.name}): ${result.summary}`);
      if (process.env.SANITY_DEBUG) console.log(result.output);
      assert.equal(result.failed, 0, failures(result.output));
      assert.equal(result.exitCode, 0, failures(result.output));
      assert.ok(result.passed >= 20, `only ${result.passed} specs passed:\n${result.summary}`);
    });
  });
}
