// s3fs-csi-heal (native/heal.c) on its own, with tmpfs instead of s3fs (cheap), and the kernel's
// mount propagation rules the recovery design rests on (docs/kernel.md points here). Real mount
// namespaces (unshare), real chroot'ed "containers"; root needed. Everything mounted lives under one
// temp dir and is unmounted in after(), also when a test fails.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BUILT_HEAL_HELPER, otherNamespaces, resolveHealHelper, runHealHelper } from '../../src/mount/heal.js';
import { type HealTask, planHeals } from '../../src/mount/heal-plan.js';
import { layersAt, readMountTable } from '../../src/mount/mountinfo.js';
import { scrubDir } from '../harness/mounts.js';
import { type NsContainer, startContainer } from '../harness/namespaces.js';

const run = promisify(execFile);
let base: string;
let helper: string;
const containers: NsContainer[] = [];

async function tmpfs(dir: string, content: string): Promise<string> {
  await mkdir(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'heal-test', dir]);
  await writeFile(join(dir, 'f'), content);
  return (layersAt(await readMountTable(), dir).at(-1)?.device) ?? '';
}
async function container(o: Parameters<typeof startContainer>[0]): Promise<NsContainer> {
  const c = await startContainer(o);
  containers.push(c);
  return c;
}
const layersIn = async (c: NsContainer, path: string): Promise<string[]> => layersAt(await c.mounts(), path).map((m) => m.device);
const read = async (path: string): Promise<string> => readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => e.code ?? 'error');

before(async () => {
  base = await mkdtemp(join(tmpdir(), 's3fs-csi-heal-'));
  assert.ok(existsSync(BUILT_HEAL_HELPER), `${BUILT_HEAL_HELPER} missing: run make build (or make native)`);
  helper = (await resolveHealHelper(BUILT_HEAL_HELPER)) ?? '';
});
after(async () => {
  for (const c of containers) c.stop();
  await scrubDir(base);
});

describe('s3fs-csi-heal on tmpfs', () => {
  let n = 0;
  /** A "dead" volume (tmpfs old), a chroot'ed private container holding it at /data, a healthy replacement. */
  async function scene(o: { readOnly?: boolean } = {}): Promise<{ c: NsContainer; task: HealTask; oldDev: string; newDev: string; healthy: string }> {
    const dir = join(base, `s${++n}`);
    const oldDev = await tmpfs(join(dir, 'old'), 'old\n');
    const newDev = await tmpfs(join(dir, 'new'), 'new\n');
    const c = await container({ propagation: 'private', root: join(dir, 'root'), binds: [{ source: join(dir, 'old'), path: '/data', readOnly: o.readOnly }] });
    return { c, oldDev, newDev, healthy: join(dir, 'new'), task: { ns: c.ns, pid: c.pid, target: '/data', source: join(dir, 'new'), readOnly: o.readOnly ?? false, deadDevice: oldDev } };
  }

  it('replaces the mount inside a chroot\'ed private container: same process, one layer, the new device, writable', async () => {
    const { c, task, oldDev, newDev, healthy } = await scene();
    assert.equal((await c.exec(['cat', '/data/f'])).out, 'old\n');
    assert.equal(await read(join(base, 'data', 'f')), 'ENOENT', 'the container path is not a host path');
    const r = await runHealHelper(helper, task, 5000);
    assert.equal(r.result, 'healed', JSON.stringify(r));
    assert.ok(c.alive());
    assert.equal((await c.exec(['cat', '/data/f'])).out, 'new\n');
    assert.deepEqual(await layersIn(c, '/data'), [newDev], `no ${oldDev} layer left`);
    assert.ok((await c.exec(['sh', '-c', 'echo written > /data/g'])).ok);
    assert.equal(await read(join(healthy, 'g')), 'written\n');
    process.stdout.write(`# heal: one tmpfs container healed in ${r.result === 'healed' ? r.ms : '?'} ms (helper run included)\n`);
  });

  it('a read-only mount stays read-only (EROFS)', async () => {
    const { c, task } = await scene({ readOnly: true });
    const r = await runHealHelper(helper, task, 5000);
    assert.equal(r.result, 'healed', JSON.stringify(r));
    assert.equal((await c.exec(['cat', '/data/f'])).out, 'new\n');
    const w = await c.exec(['sh', '-c', 'echo x > /data/g']);
    assert.equal(w.ok, false);
    assert.match(w.out, /Read-only file system/);
    assert.ok((await c.mounts()).find((m) => m.mountPoint === '/data')?.options.includes('ro'));
  });

  it('the new mount is private: later mounts under the healthy source do not reach the container', async () => {
    const { c, task, healthy } = await scene();
    assert.equal((await runHealHelper(helper, task, 5000)).result, 'healed');
    await tmpfs(join(healthy, 'later'), 'later\n');
    assert.deepEqual(await layersIn(c, '/data/later'), []);
  });

  it('the kernels < 6.5 sequence (--no-beneath: detach, then attach) heals too', async () => {
    const { c, task, newDev } = await scene();
    await run(helper, ['--pid', String(c.pid), '--source', task.source, '--target', '/data', '--expect-dev', task.deadDevice, '--no-beneath']);
    assert.deepEqual(await layersIn(c, '/data'), [newDev]);
    assert.equal((await c.exec(['cat', '/data/f'])).out, 'new\n');
  });

  it('refuses, with a typed reason and nothing changed: another device, a missing target, a bad source, a reused pid, an exited process', async () => {
    const { c, task, oldDev } = await scene();
    const cases: Array<[Partial<HealTask>, string, RegExp]> = [
      [{ deadDevice: '0:1' }, 'target', /is device .* not 0:1/],
      [{ target: '/nowhere' }, 'target', /nothing is mounted on \/nowhere/],
      [{ source: join(base, 'no-such-dir') }, 'source', /open_tree .*ENOENT/],
      [{ ns: '1' }, 'target', /pid reused/],
    ];
    for (const [change, reason, message] of cases) {
      const r = await runHealHelper(helper, { ...task, ...change }, 5000);
      assert.equal(r.result, 'failed', JSON.stringify(r));
      assert.equal(r.result === 'failed' && r.reason, reason);
      assert.match(r.result === 'failed' ? r.message : '', message);
    }
    assert.deepEqual(await layersIn(c, '/data'), [oldDev]);
    const gone = await container({ propagation: 'private', binds: [] });
    gone.stop();
    await promisify(setTimeout)(100);
    const r = await runHealHelper(helper, { ...task, pid: gone.pid }, 5000);
    assert.equal(r.result, 'skipped');
  });

  it('finds containers by mount namespace and plans their heals from their mount tables', async () => {
    const { c, oldDev, newDev, healthy } = await scene();
    const views = await otherNamespaces();
    const mine = views.find((v) => v.ns === c.ns);
    assert.ok(mine, 'the container\'s namespace is listed');
    assert.equal(mine.pid, c.pid);
    const own = (await run('readlink', ['/proc/self/ns/mnt'])).stdout;
    assert.ok(!views.some((v) => own.includes(`[${v.ns}]`)), 'not our own namespace');
    const plan = planHeals({ stagingPath: healthy, healthyDevice: newDev, deadDevices: new Set([oldDev]) }, views);
    assert.deepEqual(plan.tasks, [{ ns: c.ns, pid: c.pid, target: '/data', source: healthy, readOnly: false, deadDevice: oldDev }]);
  });
});

describe('kernel: mount propagation (docs/kernel.md)', () => {
  /** kubelet's dir (rshared), a staging mount S, targets T1 and T2 bound from it, a repair stacked on S. */
  async function kubelet(o: { slaveT1?: boolean } = {}): Promise<{ s: string; t1: string; t2: string; k: string }> {
    const k = join(base, `kubelet-${Math.random().toString(36).slice(2, 8)}`);
    await mkdir(k, { recursive: true });
    await run('mount', ['--bind', k, k]);
    await run('mount', ['--make-rshared', k]);
    const s = join(k, 'staging');
    const [t1, t2] = [join(k, 't1'), join(k, 't2')];
    await tmpfs(s, 'dead\n');
    for (const t of [t1, t2]) {
      await mkdir(t);
      await run('mount', ['--bind', s, t]);
    }
    if (o.slaveT1) await run('mount', ['--make-slave', t1]);
    return { k, s, t1, t2 };
  }
  async function repair(s: string): Promise<void> {
    const fresh = join(base, `fresh-${Math.random().toString(36).slice(2, 8)}`);
    await tmpfs(fresh, 'repaired\n');
    await run('mount', ['--bind', fresh, s]);
  }

  it('a bind stacked on the staging path reaches every target and HostToContainer (slave) containers, not private ones', async () => {
    const { s, t1, t2 } = await kubelet();
    const slave = await container({ propagation: 'slave', binds: [] });
    const priv = await container({ propagation: 'private', binds: [] });
    await repair(s);
    for (const p of [s, t1, t2]) assert.equal(await read(join(p, 'f')), 'repaired\n', p);
    assert.equal((await slave.exec(['cat', join(t1, 'f')])).out, 'repaired\n');
    assert.equal((await priv.exec(['cat', join(t1, 'f')])).out, 'dead\n');
  });

  it('unmounting one target\'s top layer takes the repair away from the staging path and every other target', async () => {
    const { s, t1, t2 } = await kubelet();
    await repair(s);
    await run('umount', [t1]);
    for (const p of [s, t1, t2]) assert.equal(await read(join(p, 'f')), 'dead\n', p);
  });

  it('making that top layer private first does not keep the unmount local (it follows the layer underneath)', async () => {
    const { s, t1, t2 } = await kubelet();
    await repair(s);
    await run('mount', ['--make-rprivate', t1]);
    await run('umount', [t1]);
    for (const p of [s, t2]) assert.equal(await read(join(p, 'f')), 'dead\n', p);
  });

  it('a target made a slave when it is bound still receives repairs, and its unmount stays local', async () => {
    const { s, t1, t2 } = await kubelet({ slaveT1: true });
    await repair(s);
    assert.equal(await read(join(t1, 'f')), 'repaired\n');
    await run('umount', [t1]);
    assert.equal(await read(join(t1, 'f')), 'dead\n');
    for (const p of [s, t2]) assert.equal(await read(join(p, 'f')), 'repaired\n', p);
  });
});
