// The few mount(8)/umount(8) calls the node makes. `-c` (--no-canonicalize) keeps mount(8) from
// resolving paths itself: our paths are already absolute, normalised and symlink-free, and
// resolving a path on a dead or hung FUSE mount fails or blocks. Every call has a deadline.
import { execa } from 'execa';

const TIMEOUT_MS = 15_000;
const ENV = { PATH: process.env.PATH ?? '/usr/sbin:/usr/bin:/sbin:/bin', LC_ALL: 'C' };

async function run(cmd: string, args: string[]): Promise<{ ok: boolean; message: string }> {
  const r = await execa(cmd, args, { reject: false, timeout: TIMEOUT_MS, killSignal: 'SIGKILL', env: ENV, extendEnv: false, stdin: 'ignore' });
  const message = `${r.stderr || r.stdout || ''}`.trim() || (r.timedOut ? 'timed out' : `exit ${r.exitCode ?? r.signal}`);
  return { ok: r.exitCode === 0, message };
}

export class MountError extends Error {}

/**
 * Bind-mounts `source` on `target` (stacking on whatever is there), read-only when asked. `slave`
 * makes the new mount a slave of the source's peer group in the same mount(8) call: it still
 * receives every mount and unmount made on the source (a repair), but its own unmounts never travel
 * back to the source and its other copies.
 */
export async function bindMount(source: string, target: string, readonly = false, slave = false): Promise<void> {
  const r = await run('mount', ['-c', '--bind', ...(slave ? ['--make-slave'] : []), source, target]);
  if (!r.ok) throw new MountError(`mount --bind ${source} ${target}: ${r.message}`);
  if (readonly) {
    const ro = await run('mount', ['-c', '-o', 'remount,bind,ro', target]);
    if (!ro.ok) {
      await run('umount', ['-c', target]);
      throw new MountError(`remount ${target} read-only: ${ro.message}`);
    }
  }
}

/** Pure: whether umount(8)'s error output names `path` ("umount: <path>: target is busy."). */
export const failedIn = (stderr: string, path: string): boolean => stderr.split('\n').some((l) => l.startsWith(`umount: ${path}: `));

/** unmountTop requests made in the same turn of the event loop: one umount(8) for all of them. */
let queued: Array<{ path: string; resolve: () => void; reject: (err: unknown) => void }> | undefined;

function flushUnmounts(): void {
  const batch = queued ?? [];
  queued = undefined;
  const paths = [...new Set(batch.map((b) => b.path))];
  const settle = (path: string, p: Promise<void>): void => {
    for (const b of batch) if (b.path === path) p.then(b.resolve, b.reject);
  };
  if (paths.length === 1 && paths[0] !== undefined) {
    settle(paths[0], unmountTopOnce(paths[0]));
    return;
  }
  // Every path unmounted by one process. A path umount(8) names in an error line gets the full
  // treatment on its own (not-mounted is fine, busy or hung is detached lazily); the others were
  // unmounted. Never a second umount of a path that succeeded: that would take the layer below too.
  void run('umount', ['-c', ...paths]).then(
    (r) => {
      for (const p of paths) settle(p, !r.ok && failedIn(r.message, p) ? unmountTopOnce(p) : Promise.resolve());
    },
    (err: unknown) => {
      for (const p of paths) settle(p, Promise.reject(err));
    },
  );
}

/**
 * Removes the top mount on `path`; a busy or hung one is detached lazily. Calls made in the same
 * turn of the event loop (recovery repairs many volumes at once) share one umount(8) process: a
 * process start costs milliseconds of CPU. Each caller re-reads the mount table afterwards anyway.
 */
export function unmountTop(path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (!queued) {
      queued = [];
      setImmediate(flushUnmounts);
    }
    queued.push({ path, resolve, reject });
  });
}

async function unmountTopOnce(path: string): Promise<void> {
  const r = await run('umount', ['-c', path]);
  if (r.ok) return;
  if (/not mounted|no mount point/i.test(r.message)) return;
  const lazy = await run('umount', ['-c', '-l', path]);
  if (!lazy.ok && !/not mounted|no mount point/i.test(lazy.message)) throw new MountError(`umount ${path}: ${r.message}; lazy: ${lazy.message}`);
}

/** Detaches the mount on `path` at once (MNT_DETACH): users keep their open files, new lookups miss it. */
export async function detach(path: string): Promise<void> {
  const r = await run('umount', ['-c', '-l', path]);
  if (!r.ok && !/not mounted|no mount point/i.test(r.message)) throw new MountError(`umount -l ${path}: ${r.message}`);
}
