// Test cleanup: unmount whatever is still mounted under a directory (deepest first, also dead FUSE
// mounts), so a failing test never leaves mounts behind.
import { execFile } from 'node:child_process';
import { rm } from 'node:fs/promises';
import { promisify } from 'node:util';
import { mountsUnder, readMountTable } from '../../src/mount/mountinfo.js';
import { s3fsPidsWhere } from '../../src/mount/s3fs-process.js';

const run = promisify(execFile);

/** Mount points under `dir` (the driver's own mountinfo parser). */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  return mountsUnder(await readMountTable(), dir).map((m) => m.mountPoint);
}

export async function unmountUnder(dir: string): Promise<void> {
  for (let round = 0; round < 10; round++) {
    const points = (await mountPointsUnder(dir)).sort((a, b) => b.length - a.length);
    if (points.length === 0) return;
    // -c: umount(8) would otherwise resolve the path, which blocks on a hung FUSE mount.
    for (const p of points) await run('umount', ['-c', '-l', p], { timeout: 15_000, killSignal: 'SIGKILL' }).catch(() => undefined);
  }
}

/** PIDs of s3fs processes whose command line mentions `dir` or a path under it. */
export function s3fsPidsUnder(dir: string): Promise<number[]> {
  return s3fsPidsWhere((argv) => argv.some((a) => a === dir || a.startsWith(`${dir}/`)));
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

/**
 * Test cleanup, also after a failure: s3fs by PID, mounts by path, then the directory. Never rm a
 * directory first: rm would walk into a FUSE mount whose s3fs still runs, and block on it if s3fs hangs.
 */
export async function scrubDir(dir: string, removeDir = true): Promise<void> {
  await killS3fsAndUnmountUnder(dir);
  if (removeDir) await rm(dir, { recursive: true, force: true });
}
