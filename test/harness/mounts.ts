// Test cleanup: unmount whatever is still mounted under a directory (deepest first, also dead FUSE
// mounts), so a failing test never leaves mounts behind.
import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { mountsUnder, readMountTable } from '../../src/mount/mountinfo.js';

const run = promisify(execFile);

/** Mount points under `dir` (the driver's own mountinfo parser). */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  return mountsUnder(await readMountTable(), dir).map((m) => m.mountPoint);
}

export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = (await mountPointsUnder(dir)).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    for (const p of points) await run('umount', ['-l', p]).catch(() => undefined);
  }
}

/** PIDs of s3fs processes whose command line mentions a path under `dir`. */
export async function s3fsPidsUnder(dir: string): Promise<number[]> {
  const { readdir } = await import('node:fs/promises');
  const out: number[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const argv = (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0');
    if (argv[0]?.endsWith('s3fs') && argv.some((a) => a === dir || a.startsWith(`${dir}/`))) out.push(Number(name));
  }
  return out;
}

/** Test cleanup for FUSE: SIGKILL every s3fs serving a path under `dir`, then unmount everything there. */
export async function killS3fsAndUnmountUnder(dir: string): Promise<void> {
  for (const pid of await s3fsPidsUnder(dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone already
    }
  }
  await unmountUnder(dir);
}
