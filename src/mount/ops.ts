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

/** Removes the top mount on `path`; a busy or hung one is detached lazily. */
export async function unmountTop(path: string): Promise<void> {
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
