// The periodic container-heal sweep, end to end: the real driver binary (node mode, recovery from
// local state every second), real s3fs and FUSE, versitygw, "containers" = processes in their own
// mount namespaces (unshare). Each repair heals the containers it finds; when that pass cannot (here:
// its helper fails, as one that times out on a loaded node would), the container keeps a dead mount
// that nothing on the host shows any more. The sweep after the next interval finds and heals it.
// The helper is the real s3fs-csi-heal behind a wrapper that fails while a marker file exists.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BUILT_HEAL_HELPER } from '../../src/mount/heal.js';
import { layersAt, readMountTable } from '../../src/mount/mountinfo.js';
import type { DriverProcess } from '../harness/driver.js';
import { startHealNode } from '../harness/heal-node.js';
import { s3fsPidsUnder, scrubDir } from '../harness/mounts.js';
import { type NsContainer, startContainer } from '../harness/namespaces.js';
import { waitFor } from '../harness/net.js';
import type { S3Server } from '../harness/s3server.js';

const run = promisify(execFile);

let s3: S3Server;
let base: string;
let d: DriverProcess;
let staging: string;
let target: string;
let failMarker: string;
const containers: NsContainer[] = [];

const devicesAt = async (path: string): Promise<string[]> => layersAt(await readMountTable(), path).map((m) => m.device);
const logLines = (msg: string): Array<Record<string, unknown>> =>
  d.logs.filter((l) => l.includes(msg)).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

before(async () => {
  const n = await startHealNode({
    name: 'sweep', targets: [{ pod: 'pod-a', readonly: false }],
    driverArgs: (_s3, dir) => ['--recovery', 'true', '--recovery-interval', '1s', '--heal-helper', join(dir, 'heal-wrapper.sh'), '--log-level', 'debug'],
    beforeDriver: async (dir) => {
      const wrapper = join(dir, 'heal-wrapper.sh');
      await writeFile(wrapper, `#!/bin/sh\nif [ -e '${join(dir, 'helper-fails')}' ]; then echo 'made to fail by the test' >&2; exit 2; fi\nexec '${BUILT_HEAL_HELPER}' "$@"\n`);
      await chmod(wrapper, 0o755);
    },
  });
  ({ s3, base, driver: d, staging } = n);
  failMarker = join(base, 'helper-fails');
  target = n.targets[0] ?? '';
  await writeFile(join(target, 'hello.txt'), 'hello\n');
}, { timeout: 120_000 });

after(async () => {
  for (const c of containers) c.stop();
  await d?.stop('SIGKILL').catch(() => undefined);
  await scrubDir(base).catch(() => undefined);
  await s3?.stop();
}, { timeout: 60_000 });

describe('the periodic container-heal sweep (real s3fs, real namespaces)', () => {
  it('a healthy node: the sweeps find nothing and change nothing', async () => {
    const c = await startContainer({ propagation: 'private', root: join(base, 'c-0'), binds: [{ source: target, path: '/data' }] });
    containers.push(c);
    const before = (await c.mounts()).map((m) => `${m.id} ${m.device}`);
    // Three intervals go by (each a local pass and a sweep).
    const passes = async (): Promise<number> => Number((await d.http('/metrics')).body.match(/s3fs_csi_recovery_runs_total\{trigger="interval",result="local"\} (\d+)/)?.[1] ?? 0);
    const first = await passes();
    await waitFor('three more intervals', async () => ((await passes()) >= first + 3 ? true : undefined), 20_000, 200);
    assert.deepEqual((await c.mounts()).map((m) => `${m.id} ${m.device}`), before);
    assert.equal(logLines('container heal pass done').length, 0);
    assert.equal(logLines('container heal sweep: containers that still showed a dead mount').length, 0);
  });

  it('a container the repair could not heal (its helper failed) is healed by a later sweep: same process, no restart', async () => {
    const c = containers[0];
    assert.ok(c);
    await writeFile(failMarker, '');
    const [pid] = await s3fsPidsUnder(base);
    assert.ok(pid, 'the volume has an s3fs');
    const dead = (await devicesAt(staging)).at(-1);
    process.kill(pid, 'SIGKILL');
    // The repair and its own heal pass: the helper fails, the container keeps the dead mount.
    const failed = await waitFor('the repair\'s heal pass failed', async () => logLines('container heal failed').find((l) => l.pid === c.pid), 30_000, 100);
    assert.equal(failed.reason, 'helper');
    assert.notEqual((await devicesAt(staging)).at(-1), dead, 'the staging path is repaired');
    const r = await c.exec(['cat', '/data/hello.txt']);
    assert.equal(r.ok, false);
    assert.match(r.out, /Transport endpoint is not connected/);
    // Nothing on the host shows it: the staging path and the target answer.
    assert.equal((await run('cat', [join(target, 'hello.txt')])).stdout, 'hello\n');

    await rm(failMarker);
    const t0 = Date.now();
    await waitFor('the container reads again', async () => ((await c.exec(['cat', '/data/hello.txt'], 2000)).out === 'hello\n' ? true : undefined), 30_000, 100);
    const ms = Date.now() - t0;
    assert.ok(c.alive(), 'the same container process, never restarted');
    const sweep = logLines('container heal sweep: containers that still showed a dead mount').at(-1);
    assert.equal(sweep?.healed, 1, JSON.stringify(sweep));
    assert.ok(logLines('container healed in place').some((l) => l.pid === c.pid));
    assert.deepEqual(layersAt(await c.mounts(), '/data').map((m) => m.device), [(await devicesAt(staging)).at(-1)], 'one healthy layer');
    assert.match((await d.http('/metrics')).body, /s3fs_csi_container_heals_total\{result="healed"\} 1/);
    process.stdout.write(`# heal sweep: container readable ${ms} ms after the helper works again (--recovery-interval 1s)\n`);
  });
});
