// s3fs-csi-mount (native/mount.c) through the driver's own calls (src/mount/ops.ts), on real tmpfs
// mounts: every operation the mount engine relies on, the errno-based decisions (nothing mounted,
// busy), and the helper's death and replacement. Root needed. Everything mounted lives under one
// temp dir and is unmounted in after(), also when a test fails.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, statfs, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { BUILT_MOUNT_HELPER, MountHelperError, mountHelper } from '../../src/mount/mount-helper.js';
import { layersAt, readMountTable } from '../../src/mount/mountinfo.js';
import { MountError, bindMount, detach, unmountTop } from '../../src/mount/ops.js';
import { statfsMany, statfsUnderDeadline } from '../../src/mount/health.js';
import { scrubDir } from '../harness/mounts.js';

const run = promisify(execFile);
let base: string;

async function tmpfs(dir: string, content: string, options = 'size=1m'): Promise<string> {
  await mkdir(dir, { recursive: true });
  await run('mount', ['-t', 'tmpfs', '-o', options, 'mount-helper-test', dir]);
  await writeFile(join(dir, 'f'), content);
  return dir;
}
const layers = async (path: string) => layersAt(await readMountTable(), path);
const read = (path: string): Promise<string> => readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => e.code ?? 'error');
async function dir(name: string): Promise<string> {
  const d = join(base, name);
  await mkdir(d, { recursive: true });
  return d;
}

before(async () => {
  assert.ok(existsSync(BUILT_MOUNT_HELPER), `${BUILT_MOUNT_HELPER} missing: run make build (or make native)`);
  base = await mkdtemp(join(tmpdir(), 's3fs-csi-mount-helper-'));
  // A private base: nothing made here propagates to the rest of the host.
  await run('mount', ['--bind', base, base]);
  await run('mount', ['--make-private', base]);
});

after(async () => {
  if (base) await scrubDir(base);
});

describe('s3fs-csi-mount through ops.ts', () => {
  it('bind stacks a mount on the target; unmountTop takes only the top layer off', async () => {
    const a = await tmpfs(join(base, 'a'), 'A');
    const b = await tmpfs(join(base, 'b'), 'B');
    const t = await dir('t1');
    await bindMount(a, t);
    await bindMount(b, t);
    assert.equal(await read(join(t, 'f')), 'B');
    assert.equal((await layers(t)).length, 2);
    await unmountTop(t);
    assert.equal(await read(join(t, 'f')), 'A', 'the layer below is back');
    await unmountTop(t);
    assert.equal((await layers(t)).length, 0);
  });

  it('nothing mounted, or no such path: unmountTop and detach succeed and change nothing (EINVAL / ENOENT)', async () => {
    const t = await dir('t2');
    await unmountTop(t);
    await detach(t);
    await unmountTop(join(base, 'does-not-exist'));
    await detach(join(base, 'does-not-exist'));
    assert.equal((await layers(t)).length, 0);
  });

  it('read-only bind keeps the source mount\'s nosuid, nodev and noexec, and writes fail with EROFS', async () => {
    const src = await tmpfs(join(base, 'ro-src'), 'R', 'size=1m,nosuid,nodev,noexec');
    const t = await dir('t3');
    await bindMount(src, t, true);
    const top = (await layers(t)).at(-1);
    assert.ok(top);
    for (const o of ['ro', 'nosuid', 'nodev', 'noexec']) assert.ok(top.options.includes(o), `${o} in ${top.options.join(',')}`);
    await assert.rejects(writeFile(join(t, 'g'), 'x'), { code: 'EROFS' });
    assert.equal(await read(join(t, 'f')), 'R');
    await writeFile(join(src, 'g'), 'still writable at the source');
    await unmountTop(t);
  });

  it('slave bind: receives mounts made on its (shared) source, and its own unmounts stay local', async () => {
    const src = await tmpfs(join(base, 'shared-src'), 'S');
    await run('mount', ['--make-shared', src]);
    const t = await dir('t4');
    await bindMount(src, t, false, true);
    const top = (await layers(t)).at(-1);
    assert.ok(top?.optionalFields.some((f) => f.startsWith('master:')), `a slave: ${top?.optionalFields.join(' ')}`);
    // A repair stacks a new layer on the source: the slave receives it.
    const repair = await tmpfs(join(base, 'repair'), 'NEW');
    await bindMount(repair, src);
    assert.equal(await read(join(t, 'f')), 'NEW', 'the layer stacked on the source reached the slave');
    // The slave's own unmount of that layer does not travel back to the source.
    await unmountTop(t);
    assert.equal(await read(join(src, 'f')), 'NEW', 'the source keeps its repair');
    await unmountTop(src);
    await unmountTop(t);
  });

  it('a busy mount is detached lazily; a process inside keeps its files', async () => {
    const src = await tmpfs(join(base, 'busy'), 'BUSY');
    const holder = spawn('sleep', ['60'], { cwd: src, stdio: 'ignore' });
    try {
      await new Promise((r) => holder.once('spawn', r));
      await unmountTop(src);
      assert.equal((await layers(src)).length, 0, 'gone from the mount table');
      assert.equal(await read(join(`/proc/${holder.pid}/cwd`, 'f')), 'BUSY', 'the holder still reads through its cwd');
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('a bind whose source does not exist fails with the errno in the message, and nothing is mounted', async () => {
    const t = await dir('t6');
    await assert.rejects(bindMount(join(base, 'no-source'), t), (e: Error) => e instanceof MountError && /ENOENT/.test(e.message));
    assert.equal((await layers(t)).length, 0);
  });

  it('the helper is one process for many calls; killed, it fails what it owed and the next call starts a new one', async () => {
    const a = await tmpfs(join(base, 'k'), 'K');
    const t = await dir('t7');
    await bindMount(a, t);
    const first = mountHelper.pid;
    assert.ok(first !== undefined);
    await unmountTop(t);
    assert.equal(mountHelper.pid, first, 'the same helper served both calls');
    // A request queued to a helper that is dying (killed in the same tick, its exit not yet seen)
    // fails with the helper's error, not a made-up errno; the next call starts another helper.
    process.kill(first, 'SIGKILL');
    await assert.rejects(mountHelper.call('umount', [t], 15_000), (e: unknown) => e instanceof MountHelperError && /ended \(SIGKILL\)/.test(e.message));
    assert.equal(mountHelper.pid, undefined, 'the dead helper is forgotten');
    await bindMount(a, t);
    assert.notEqual(mountHelper.pid, first, 'a new helper');
    assert.equal(await read(join(t, 'f')), 'K');
    await unmountTop(t);
  });

  it('--statfs: the kernel\'s figures and errnos, one answer per path, in one child for many', async () => {
    const m = await tmpfs(join(base, 'statfs'), 'S', 'size=2m,nr_inodes=500');
    const want = await statfs(m);
    const one = await statfsUnderDeadline(m, 5000);
    assert.equal(one.state, 'healthy', one.message);
    assert.deepEqual(one.fs, { blockSize: want.bsize, totalBlocks: want.blocks, freeBlocks: want.bfree, availableBlocks: want.bavail, totalInodes: want.files, freeInodes: want.ffree });
    const gone = join(base, 'no-such-dir');
    const notDir = join(m, 'f', 'below-a-file');
    const many = await statfsMany([m, gone, notDir, base], 5000);
    assert.equal(many.get(m)?.state, 'healthy');
    assert.equal(many.get(gone)?.state, 'missing');
    assert.deepEqual(many.get(notDir), { state: 'error', message: `statfs ${notDir}: ENOTDIR` });
    assert.equal(many.get(base)?.state, 'healthy');
  });
});
