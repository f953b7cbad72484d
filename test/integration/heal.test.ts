// Healing running containers in place, end to end: the real driver binary (node mode, recovery from
// local state), real s3fs and FUSE, a real S3 server (versitygw), "containers" = processes in their
// own mount namespaces (unshare), chroot'ed like a runtime's, holding binds of the published targets.
// s3fs is SIGKILLed; the driver repairs the staging mount and heals every container in place: the
// same processes read and write again, never restarted. Cleanup kills our containers, our s3fs and
// unmounts everything under our temp dir, also when a test fails.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
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
let rwTarget: string;
let roTarget: string;
const containers: NsContainer[] = [];
/** tmpfs mounts taken to get a freed device number back (unmounted after the tests). */
const reuseMounts: string[] = [];

async function container(o: Parameters<typeof startContainer>[0]): Promise<NsContainer> {
  const c = await startContainer(o);
  containers.push(c);
  return c;
}
const devicesAt = async (path: string): Promise<string[]> => layersAt(await readMountTable(), path).map((m) => m.device);
const logLines = (msg: string): Array<Record<string, unknown>> =>
  d.logs.filter((l) => l.includes(msg)).map((l) => JSON.parse(l) as Record<string, unknown>).filter((l) => l.msg === msg);

/** SIGKILLs the volume's s3fs and waits until the driver's repair is on the staging path. */
async function killS3fs(): Promise<{ dead: string; healthy: string }> {
  const [pid] = await s3fsPidsUnder(base);
  assert.ok(pid, 'the volume has an s3fs');
  const before = await devicesAt(staging);
  process.kill(pid, 'SIGKILL');
  const healthy = await waitFor('staging repaired', async () => {
    const now = await devicesAt(staging);
    // A repair puts a fresh layer on top (and drops what lay above the bottom one: the depth stays bounded).
    const top = now.at(-1);
    return top !== undefined && top !== before.at(-1) ? top : undefined;
  }, 20_000, 50);
  return { dead: before.at(-1) ?? '', healthy };
}

before(async () => {
  const n = await startHealNode({
    name: 'heal', targets: [{ pod: 'pod-rw', readonly: false }, { pod: 'pod-ro', readonly: true }],
    driverArgs: () => ['--recovery', 'true', '--recovery-interval', '0', '--heal-helper', BUILT_HEAL_HELPER, '--log-level', 'debug'],
  });
  ({ s3, base, driver: d, staging } = n);
  [rwTarget = '', roTarget = ''] = n.targets;
  await writeFile(join(rwTarget, 'hello.txt'), 'hello\n');
  await mkdir(join(rwTarget, 'sub', 'dir'), { recursive: true });
  await writeFile(join(rwTarget, 'sub', 'dir', 'log.txt'), 'subpath\n');
}, { timeout: 120_000 });

after(async () => {
  for (const c of containers) c.stop();
  for (const dir of reuseMounts.reverse()) await run('umount', [dir]).catch(() => undefined);
  await d?.stop('SIGKILL').catch(() => undefined);
  await scrubDir(base).catch(() => undefined);
  await s3?.stop();
}, { timeout: 60_000 });

describe('containers healed in place after s3fs dies (real s3fs, real namespaces)', () => {
  let rw: NsContainer;
  let ro: NsContainer;
  let sub: NsContainer;
  let slave: NsContainer;

  it('containers with propagation None (rw, read-only, subPath) and HostToContainer read the volume', async () => {
    rw = await container({ propagation: 'private', root: join(base, 'c-rw'), binds: [{ source: rwTarget, path: '/data' }] });
    ro = await container({ propagation: 'private', root: join(base, 'c-ro'), binds: [{ source: roTarget, path: '/data', readOnly: true }] });
    sub = await container({ propagation: 'private', root: join(base, 'c-sub'), binds: [{ source: join(rwTarget, 'sub', 'dir'), path: '/logs' }] });
    slave = await container({ propagation: 'slave', binds: [] });
    assert.equal((await rw.exec(['cat', '/data/hello.txt'])).out, 'hello\n');
    assert.equal((await ro.exec(['cat', '/data/hello.txt'])).out, 'hello\n');
    assert.equal((await sub.exec(['cat', '/logs/log.txt'])).out, 'subpath\n');
    assert.equal((await slave.exec(['cat', join(rwTarget, 'hello.txt')])).out, 'hello\n');
  });

  it('a dead s3fs mount: ENOTCONN on every access, still listed in the mount table (seen by a container the heal does not cover)', async () => {
    // A private container whose mount has another mount nested inside: the planner leaves it alone
    // (detaching the dead mount would take the nested one along), so it shows the dead mount.
    const nested = await container({ propagation: 'private', root: join(base, 'c-nested'), binds: [{ source: rwTarget, path: '/data' }, { source: join(base, 'c-rw', 'usr'), path: '/data/sub' }] });
    const { dead } = await killS3fs();
    const r = await nested.exec(['cat', '/data/hello.txt']);
    assert.equal(r.ok, false);
    assert.match(r.out, /Transport endpoint is not connected/);
    const st = await nested.exec(['stat', '-f', '/data']);
    assert.match(st.out, /Transport endpoint is not connected/);
    const entry = (await nested.mounts()).find((m) => m.mountPoint === '/data');
    assert.equal(entry?.device, dead);
    assert.equal(entry?.fsType, 'fuse.s3fs');
    const skipped = await waitFor('skip logged', () => logLines('container heal skipped').find((l) => l.pid === nested.pid));
    assert.match(String(skipped.reason), /nested/);
  });

  it('the same container processes read and write again; read-only stays read-only; no dead layer left on top', async () => {
    const healthy = (await devicesAt(staging)).at(-1);
    const dead = new Set((await devicesAt(staging)).slice(0, -1));
    await waitFor('rw container readable', async () => ((await rw.exec(['cat', '/data/hello.txt'], 2000)).out === 'hello\n' ? true : undefined), 15_000, 100);
    for (const c of [rw, ro, sub, slave]) assert.ok(c.alive(), `container ${c.pid} still runs (never restarted)`);
    assert.equal((await ro.exec(['cat', '/data/hello.txt'])).out, 'hello\n');
    assert.equal((await sub.exec(['cat', '/logs/log.txt'])).out, 'subpath\n');
    assert.equal((await slave.exec(['cat', join(rwTarget, 'hello.txt')])).out, 'hello\n');

    assert.ok((await rw.exec(['sh', '-c', 'echo from-container > /data/written.txt'])).ok);
    assert.equal(await readFile(join(rwTarget, 'written.txt'), 'utf8'), 'from-container\n');
    assert.ok((await sub.exec(['sh', '-c', 'echo more > /logs/more.txt'])).ok);
    assert.equal(await readFile(join(rwTarget, 'sub', 'dir', 'more.txt'), 'utf8'), 'more\n');
    const w = await ro.exec(['sh', '-c', 'echo x > /data/nope.txt']);
    assert.equal(w.ok, false);
    assert.match(w.out, /Read-only file system/);

    for (const [c, path] of [[rw, '/data'], [ro, '/data'], [sub, '/logs']] as const) {
      const layers = layersAt(await c.mounts(), path);
      assert.equal(layers.length, 1, `${path} in ${c.pid}: one layer`);
      assert.equal(layers[0]?.device, healthy);
      assert.ok(!dead.has(layers[0]?.device ?? ''));
    }
    assert.deepEqual(layersAt(await sub.mounts(), '/logs').map((m) => m.root), ['/sub/dir']);

    const healed = logLines('container heal pass done');
    assert.equal(healed.at(-1)?.healed, 3, JSON.stringify(healed));
    assert.ok(!logLines('container healed in place').some((l) => l.pid === slave.pid), 'the slave container healed by propagation, untouched');
    assert.match((await d.http('/metrics')).body, /s3fs_csi_container_heals_total\{result="healed"\} 3/);
    process.stdout.write(`# heal: 3 containers healed ${String(healed.at(-1)?.ms)} ms after the repair (${String(healed.at(-1)?.namespaces)} other namespaces on the machine)\n`);
  });

  it('heals 20 containers again after a second s3fs death', async () => {
    const many: NsContainer[] = [];
    // chroot'ed like the others: a container sees its own root, not a copy of every host mount
    for (let i = 0; i < 20; i++) many.push(await container({ propagation: 'private', root: join(base, `many-${i}`), binds: [{ source: rwTarget, path: '/data' }] }));
    const started = Date.now();
    await killS3fs();
    const repaired = Date.now() - started;
    const readable = async (c: NsContainer, path: string): Promise<boolean> => (await c.exec(['cat', path], 2000)).out === 'hello\n';
    await waitFor('all containers readable', async () => {
      const oks = await Promise.all([...many, rw, ro].map((c) => readable(c, '/data/hello.txt')));
      return oks.every(Boolean) ? true : undefined;
    }, 30_000, 100);
    const all = Date.now() - started;
    for (const c of many) assert.ok(c.alive());
    const pass = logLines('container heal pass done').at(-1);
    assert.equal(pass?.healed, 23, JSON.stringify(pass)); // 20 + rw, ro, subPath
    assert.equal(pass?.failed, 0);
    const each = logLines('container healed in place').slice(-23).map((l) => Number(l.ms)).sort((a, b) => a - b);
    process.stdout.write(`# heal: s3fs killed -> staging repaired ${repaired} ms -> 23 containers readable ${all} ms (heal pass ${String(pass?.ms)} ms, ${String(pass?.namespaces)} namespaces scanned; one helper run ${each[0]}-${each.at(-1)} ms, median ${each[11]} ms)\n`);
  });

  it('a dead device number the kernel has since given to another mount is never healed over: that mount answers, so it is left alone', async () => {
    const passes = logLines('container heal pass done').length;
    const { dead } = await killS3fs();
    await waitFor('heal pass after the repair', async () => (logLines('container heal pass done').length > passes ? true : undefined), 30_000, 100);
    // Once no mount holds the dead s3fs's superblock, the kernel hands its anonymous device number to
    // the next mount that needs one (lowest free first): take tmpfs mounts until one gets it.
    const reused = await waitFor(`a tmpfs mount with device ${dead}`, async () => {
      const dir = join(base, `reuse-${reuseMounts.length}`);
      await mkdir(dir, { recursive: true });
      await run('mount', ['-t', 'tmpfs', 'tmpfs', dir]);
      reuseMounts.push(dir);
      return (await devicesAt(dir)).at(-1) === dead ? dir : undefined;
    }, 20_000, 10);
    await writeFile(join(reused, 'marker.txt'), 'another volume\n');
    const other = await container({ propagation: 'private', root: join(base, 'c-other'), binds: [{ source: reused, path: '/other' }] });
    // The volume's device history still names the reused number: the next repair's heal pass finds it.
    const before = logLines('container heal pass done').length;
    await killS3fs();
    await waitFor('heal pass after the next repair', async () => (logLines('container heal pass done').length > before ? true : undefined), 30_000, 100);
    assert.equal((await other.exec(['cat', '/other/marker.txt'])).out, 'another volume\n', 'the other mount is untouched');
    assert.equal(layersAt(await other.mounts(), '/other').at(-1)?.device, dead);
    const skipped = logLines('container heal skipped').find((l) => l.pid === other.pid);
    assert.match(String(skipped?.reason), /the mount answers/);
    assert.ok(!logLines('container healed in place').some((l) => l.pid === other.pid));
  });
});
