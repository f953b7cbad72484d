// Secret hygiene and symlink attacks against the real binary with real s3fs.
// Secrets: through a whole lifecycle (and failing calls) at debug log level, no secret value appears
// in a log line, an error message, the metrics, or /proc/<pid>/cmdline|environ of the driver's
// children (s3fs); the driver's own command line is clean too; passwd files are 0600 in a 0700 dir
// and gone after unstage.
// Symlinks: a target or staging path with a symlinked component (to /etc, outside the roots, or to
// another pod's volume directory) is refused and what it points at is left untouched.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { randomBytes } from 'node:crypto';
import { startDriver, type DriverProcess } from '../harness/driver.js';
import { mountPointsUnder } from '../harness/mounts.js';
import { startS3Server, type S3Server } from '../harness/s3server.js';
import { allProcesses, descendants, findSecrets, procTexts, s3fsProcessesUnder } from '../harness/scan.js';
import { CAPS, Witness, leaks, outcome, publishReq, scrubDir, stageReq, stagingOf, targetOf } from './lib.js';

let s3: S3Server;
let d: DriverProcess;
/** Driver-level default credentials, given through the driver's environment. */
const defaultSecret = `DEFAULT-SECRET-${randomBytes(12).toString('hex')}`;
const witness = new Witness();

before(async () => {
  s3 = await startS3Server({ secretKey: `HYGIENE-SECRET-${randomBytes(12).toString('hex')}` });
  d = await startDriver({
    mode: 'all',
    args: ['--s3-endpoint', s3.endpoint, '--log-level', 'trace'],
    env: { AWS_ACCESS_KEY_ID: 'DEFAULTACCESSKEY', AWS_SECRET_ACCESS_KEY: defaultSecret },
  });
});

after(async () => {
  if (d) {
    await d.stop('SIGKILL');
    await scrubDir(d.dir);
  }
  await s3?.stop();
});

const secretValues = (): string[] => [s3.secretKey, defaultSecret];

describe('secret hygiene', () => {
  it('no secret in logs, errors, metrics or /proc of started processes; passwd files 0600 and removed', async () => {
    const vol = (await d.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', { name: 'hygiene', volume_capabilities: CAPS, secrets: s3.secrets })).volume.volume_id;
    const staging = stagingOf(d, 'hygiene');
    const target = await targetOf(d, 'pod-hygiene', 'hygiene');
    await d.call('Node', 'NodeStageVolume', stageReq(vol, staging, s3.secrets), 60_000);
    await d.call('Node', 'NodePublishVolume', publishReq(vol, staging, target));
    await d.call('Node', 'NodeGetVolumeStats', { volume_id: vol, volume_path: target });

    // passwd file: one, 0600, in a 0700 directory.
    const runtime = join(d.dir, 'runtime');
    const files = readdirSync(runtime);
    assert.equal(files.length, 1, `passwd files: ${files.join(', ')}`);
    assert.equal(statSync(join(runtime, files[0] ?? '')).mode & 0o777, 0o600);
    assert.equal(statSync(runtime).mode & 0o777, 0o700);

    // While s3fs runs: its cmdline and environ, and the driver's cmdline.
    const procs = descendants(d.proc.pid ?? 0, allProcesses());
    const children = [...procs.filter((p) => p.pid !== d.proc.pid), ...s3fsProcessesUnder(d.dir)];
    assert.ok(children.some((p) => p.comm === 's3fs'), 's3fs is running');
    const self = procs.find((p) => p.pid === d.proc.pid);
    const procScan = [...procTexts(children), { where: 'driver cmdline', text: self?.cmdline.join(' ') ?? '' }];

    // Failing calls whose messages could echo a secret.
    const failing = [
      d.call('Controller', 'CreateVolume', { name: 'hygiene-bad', volume_capabilities: CAPS, secrets: { ...s3.secrets, secretAccessKey: `${s3.secretKey}x` } }),
      d.call('Controller', 'CreateVolume', { name: 'hygiene-bad2', volume_capabilities: CAPS, secrets: { ...s3.secrets, accessKeyID: s3.secretKey } }),
      d.call('Controller', 'CreateVolume', { name: 'hygiene-bad3', volume_capabilities: CAPS, secrets: { ...s3.secrets, region: `${s3.secretKey}\n` } }),
      d.call('Controller', 'CreateVolume', { name: 'hygiene-bad4', volume_capabilities: CAPS, parameters: { options: s3.secretKey }, secrets: s3.secrets }),
      d.call('Node', 'NodeStageVolume', stageReq(vol, stagingOf(d, 'hygiene-bad'), { ...s3.secrets, secretAccessKey: `${s3.secretKey}y` }), 60_000),
      d.call('Node', 'NodeStageVolume', { ...stageReq(vol, stagingOf(d, 'hygiene-bad2'), s3.secrets), volume_context: { options: `passwd_file=${s3.secretKey}` } }, 60_000),
      d.call('Node', 'NodeStageVolume', stageReq(`${s3.secretKey.toLowerCase().slice(0, 40)}`, stagingOf(d, 'hygiene-bad3'), s3.secrets), 60_000),
    ];
    const outcomes = await Promise.all(failing.map((p) => outcome(p)));
    for (const [i, o] of outcomes.entries()) {
      // (call 3 may succeed: the controller records mount options and the node validates them)
      if (i !== 3) assert.notEqual(o.code, 'OK', `failing call ${i} succeeded`);
      witness.add(`error of failing call ${i} (${o.code})`, o.message);
    }

    await d.call('Node', 'NodeUnpublishVolume', { volume_id: vol, target_path: target });
    await d.call('Node', 'NodeUnstageVolume', { volume_id: vol, staging_target_path: staging });
    await d.call('Controller', 'DeleteVolume', { volume_id: vol, secrets: s3.secrets });
    await outcome(d.call('Controller', 'DeleteVolume', { volume_id: 'hygiene-bad4', secrets: s3.secrets }));
    assert.deepEqual(readdirSync(runtime), [], 'passwd file removed on unstage');
    assert.deepEqual(await leaks(d, [target]), []);

    const metrics = (await d.http('/metrics')).body;
    const texts = [...witness.texts, ...procScan, { where: 'driver log (trace level)', text: d.logs.join('\n') }, { where: 'metrics', text: metrics }];
    assert.ok(d.logs.length > 20, 'the driver logged');
    assert.deepEqual(findSecrets(texts, secretValues()), []);
  });
});

describe('symlink attacks', () => {
  let vol: string;
  let staging: string;
  let victimTarget: string;

  before(async () => {
    vol = (await d.call<{ volume: { volume_id: string } }>('Controller', 'CreateVolume', { name: 'symlink', volume_capabilities: CAPS, secrets: s3.secrets })).volume.volume_id;
    staging = stagingOf(d, 'symlink');
    await d.call('Node', 'NodeStageVolume', stageReq(vol, staging, s3.secrets), 60_000);
    // Another pod with this volume published.
    victimTarget = await targetOf(d, 'victim-pod', 'symlink');
    await d.call('Node', 'NodePublishVolume', publishReq(vol, staging, victimTarget));
  });
  after(async () => {
    await outcome(d.call('Node', 'NodeUnpublishVolume', { volume_id: vol, target_path: victimTarget }));
    await outcome(d.call('Node', 'NodeUnstageVolume', { volume_id: vol, staging_target_path: staging }));
    await outcome(d.call('Controller', 'DeleteVolume', { volume_id: vol, secrets: s3.secrets }));
  });

  async function podDirLinkedTo(pod: string, to: string): Promise<string> {
    const volumes = join(d.kubeletDir, 'pods', pod, 'volumes', 'kubernetes.io~csi');
    await mkdir(volumes, { recursive: true });
    await symlink(to, join(volumes, 'pv'));
    return join(volumes, 'pv', 'mount');
  }

  it('a target whose parent is a symlink to /etc is refused; /etc untouched', async () => {
    const target = await podDirLinkedTo('attacker-etc', '/etc');
    const o = await outcome(d.call('Node', 'NodePublishVolume', publishReq(vol, staging, target)));
    assert.equal(o.code, 'InvalidArgument', o.message);
    assert.match(o.message, /symbolic link/);
    assert.ok(!existsSync('/etc/mount'), '/etc/mount not created');
    // Nor may unpublish or stats act through it.
    assert.equal((await outcome(d.call('Node', 'NodeUnpublishVolume', { volume_id: vol, target_path: target }))).code, 'InvalidArgument');
  });

  it("a target whose parent is a symlink to another pod's volume directory is refused; that pod's mount stays", async () => {
    const victimDir = join(victimTarget, '..');
    const target = await podDirLinkedTo('attacker-pod', victimDir);
    // Unpublish through the link would unmount the victim's volume.
    const u = await outcome(d.call('Node', 'NodeUnpublishVolume', { volume_id: vol, target_path: target }));
    assert.equal(u.code, 'InvalidArgument', u.message);
    const p = await outcome(d.call('Node', 'NodePublishVolume', publishReq(vol, staging, target)));
    assert.equal(p.code, 'InvalidArgument', p.message);
    assert.equal((await mountPointsUnder(victimTarget)).length, 1, 'the victim is still published, once');
    await d.call('Node', 'NodeGetVolumeStats', { volume_id: vol, volume_path: victimTarget });
  });

  it('a target that is itself a symlink, and a staging path through a symlinked dir, are refused', async () => {
    const outside = join(d.dir, 'outside');
    await mkdir(outside, { recursive: true });
    await writeFile(join(outside, 'keep'), 'x');
    const parent = join(d.kubeletDir, 'pods', 'attacker-leaf', 'volumes', 'kubernetes.io~csi', 'pv');
    await mkdir(parent, { recursive: true });
    await symlink(outside, join(parent, 'mount'));
    const p = await outcome(d.call('Node', 'NodePublishVolume', publishReq(vol, staging, join(parent, 'mount'))));
    assert.equal(p.code, 'InvalidArgument', p.message);
    const u = await outcome(d.call('Node', 'NodeUnpublishVolume', { volume_id: vol, target_path: join(parent, 'mount') }));
    assert.equal(u.code, 'InvalidArgument', u.message);
    assert.deepEqual(readdirSync(outside), ['keep'], 'the link target is untouched');

    const plugins = join(d.kubeletDir, 'plugins', 'kubernetes.io', 'csi', 's3fs.csi.dev');
    await mkdir(plugins, { recursive: true });
    await symlink(outside, join(plugins, 'evil'));
    const s = await outcome(d.call('Node', 'NodeStageVolume', stageReq(vol, join(plugins, 'evil', 'globalmount'), s3.secrets), 60_000));
    assert.equal(s.code, 'InvalidArgument', s.message);
    assert.deepEqual(readdirSync(outside), ['keep']);
    assert.deepEqual(await mountPointsUnder(outside), []);
  });
});
