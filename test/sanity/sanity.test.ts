// The whole csi-sanity v5.4.0 suite (no focus), in the three shapes the driver is deployed in:
//   1. all mode, a bucket per volume;  2. all mode, a prefix per volume in a shared bucket;
//   3. controller and node as two processes on two sockets, as the Helm chart runs them.
// JUnit reports go to build/sanity/<shape>/junit.xml. Everything started here is stopped, and
// anything left mounted under the run's directory is unmounted, also when a spec fails.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { packageRoot } from '../../src/paths.js';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder, scrubDir } from '../harness/mounts.js';
import { failures, runSanity } from '../harness/sanity.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';

const GiB = 1 << 30;

// Specs may skip only for capabilities the driver does not advertise (README, "Conformance").
const ALLOWED_SKIPS = [
  /GroupControllerService not supported/, // no volume group snapshots on S3
  /Snapshot not supported|CreateSnapshot not supported|DeleteSnapshot not supported|ListSnapshots not supported/,
  /Volume Cloning not supported/,
  /ControllerPublishVolume not supported|ControllerUnpublishVolume not supported|Controller Publish, UnpublishVolume not supported/,
  /ControllerModifyVolume not supported|Modify [vV]olume not supported/,
  /GetCapacity not supported/,
  /NodeExpandVolume not supported/,
];
// In the split shape the node socket does not offer the Controller service, and csi-sanity asks the
// node socket's Identity whether it does; two node lifecycle specs skip there (they run in the others).
const SPLIT_ONLY_SKIPS = [/Controller Service not provided: CreateVolume not supported/];

/** Skipped/pending specs from a csi-sanity JUnit report: [name, message]. */
async function skippedSpecs(junitFile: string): Promise<[string, string][]> {
  const xml = await readFile(junitFile, 'utf8');
  const out: [string, string][] = [];
  const re = /<testcase name="([^"]*)"[^>]*status="(skipped|pending)"[^>]*>\s*<skipped(?: message="([^"]*)")?/g;
  for (let m = re.exec(xml); m; m = re.exec(xml)) out.push([m[1]!, m[3] ?? m[2]!]);
  return out;
}

interface Shape {
  name: string;
  split: boolean;
  parameters?: Record<string, string>;
}

const shapes: Shape[] = [
  { name: 'all-bucket-per-volume', split: false },
  { name: 'all-shared-bucket', split: false, parameters: { bucket: 'sanity-shared' } },
  { name: 'split-controller-node', split: true },
];

function secretsFile(s3: S3Server): Record<string, Record<string, string>> {
  const names = [
    'CreateVolumeSecret', 'DeleteVolumeSecret', 'ControllerPublishVolumeSecret', 'ControllerUnpublishVolumeSecret',
    'ControllerValidateVolumeCapabilitiesSecret', 'NodeStageVolumeSecret', 'NodePublishVolumeSecret',
    'ControllerExpandVolumeSecret', 'NodeExpandVolumeSecret', 'ControllerModifyVolumeSecret',
  ];
  return Object.fromEntries(names.map((n) => [n, s3.secrets]));
}

describe('csi-sanity v5.4.0, full suite', () => {
  let s3: S3Server;
  const drivers: DriverProcess[] = [];
  const roots: string[] = [];

  after(async () => {
    for (const d of drivers) await d.cleanup();
    for (const r of roots) await scrubDir(r);
    await s3?.stop();
  });

  for (const shape of shapes) {
    it(shape.name, async () => {
      s3 ??= await startS3Server();
      const root = await mkdtemp(join(tmpdir(), `s3fs-csi-sanity-${shape.name}-`));
      roots.push(root);
      const secretDir = join(root, 'default-credentials');
      await mkdir(secretDir, { mode: 0o700 });
      await writeFile(join(secretDir, 'accessKeyID'), s3.accessKey, { mode: 0o600 });
      await writeFile(join(secretDir, 'secretAccessKey'), s3.secretKey, { mode: 0o600 });
      const common = ['--s3-endpoint', s3.endpoint, '--s3-secret-dir', secretDir, '--allowed-root', root];

      let endpoint: string;
      let controllerEndpoint: string | undefined;
      if (shape.split) {
        const controller = await startDriver({ mode: 'controller', args: common, dir: join(root, 'controller') });
        const node = await startDriver({ mode: 'node', args: common, dir: join(root, 'node') });
        drivers.push(controller, node);
        endpoint = node.socketPath;
        controllerEndpoint = controller.socketPath;
      } else {
        const d = await startDriver({ mode: 'all', args: common, dir: join(root, 'driver') });
        drivers.push(d);
        endpoint = d.socketPath;
      }

      const reportDir = join(packageRoot, 'build', 'sanity', shape.name);
      await mkdir(reportDir, { recursive: true });
      const res = await runSanity({
        endpoint,
        controllerEndpoint,
        stagingDir: join(root, 'staging'),
        mountDir: join(root, 'mount'),
        workDir: join(root, 'sanity'),
        parameters: shape.parameters,
        secrets: secretsFile(s3),
        volumeSize: GiB,
        expandSize: 2 * GiB,
        junitReport: join(reportDir, 'junit.xml'),
        timeoutMs: 20 * 60_000,
      });
      await writeFile(join(reportDir, 'output.log'), res.output);
      console.log(`csi-sanity [${shape.name}]\n${res.summary}`);
      assert.equal(res.failed, 0, failures(res.output));
      assert.equal(res.exitCode, 0, failures(res.output));
      assert.ok(res.ran >= 40, `only ${res.ran} specs ran:\n${res.summary}`);
      // The node specs made real s3fs mounts (in the split shape the lifecycle specs skip, see below),
      // and csi-sanity's own cleanup left none behind.
      const node = drivers[drivers.length - 1]!;
      const ok = (m: string): number => node.logs.filter((l) => l.includes(`/csi.v1.Node/${m}"`) && l.includes('"code":"OK"')).length;
      console.log(`real mounts: ${ok('NodeStageVolume')} NodeStageVolume, ${ok('NodePublishVolume')} NodePublishVolume OK`);
      if (!shape.split) assert.ok(ok('NodeStageVolume') >= 3 && ok('NodePublishVolume') >= 3, 'node specs mounted for real');
      assert.deepEqual(await mountPointsUnder(join(root, 'staging')), []);
      assert.deepEqual(await mountPointsUnder(join(root, 'mount')), []);
      const allowed = shape.split ? [...ALLOWED_SKIPS, ...SPLIT_ONLY_SKIPS] : ALLOWED_SKIPS;
      const skipped = await skippedSpecs(join(reportDir, 'junit.xml'));
      assert.equal(skipped.length, res.skipped + res.pending, 'every skipped spec is in the JUnit report');
      for (const [name, message] of skipped) {
        // The one pending spec is disabled upstream (csi-test marks ListVolumes pagination PIt).
        if (message === 'pending' && /ListVolumes pagination/.test(name)) continue;
        assert.ok(allowed.some((re) => re.test(message)), `unexpected skip: ${name}: ${message}`);
      }
    });
  }
});
