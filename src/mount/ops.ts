// The bind mounts and unmounts the node makes, through the long-lived s3fs-csi-mount helper
// (mount-helper.ts): the mount(2)/umount2(2) calls mount(8) would make, without starting a process
// per call. Why: every process started from Node forks this whole process on the event loop, 8 ms at
// 150 MiB of RSS on this machine and far more under load; a recovery of 100 volumes made ~400 such
// calls, ~10 s of the mounter's event loop (docs/bench.md). Paths are used as given: they are
// absolute, normalised and symlink-free already, and the final component is never followed
// (UMOUNT_NOFOLLOW). Decisions come from the errno, never from a message. Every call has a deadline.
import { constants } from 'node:os';
import { type MountOp, errnoName, mountHelper } from './mount-helper.js';
import { layersAt, readMountTable } from './mountinfo.js';

const TIMEOUT_MS = 15_000;
const { EINVAL, ENOENT } = constants.errno;

export class MountError extends Error {}

const call = (op: MountOp, ...args: string[]): Promise<number> => mountHelper.call(op, args, TIMEOUT_MS);

/** Per-mount flags a read-only remount must name again, or it would clear them (as mount(8) keeps them). */
const KEPT_ON_REMOUNT = new Set(['nosuid', 'nodev', 'noexec', 'noatime', 'nodiratime', 'relatime']);

/** Pure: the flags of a mount's options (mountinfo's per-mount field) that a read-only remount keeps. */
export const keptOnRemount = (options: readonly string[]): string => options.filter((o) => KEPT_ON_REMOUNT.has(o)).join(',');

/** umount2 said the path holds no mount (EINVAL) or does not exist (ENOENT): nothing to unmount. */
const nothingMounted = (e: number): boolean => e === EINVAL || e === ENOENT;

/**
 * Bind-mounts `source` on `target` (stacking on whatever is there), read-only when asked. `slave`
 * makes the new mount a slave of the source's peer group: it still receives every mount and unmount
 * made on the source (a repair), but its own unmounts never travel back to the source and its other
 * copies. A bind whose slave or read-only step fails is taken off again.
 */
export async function bindMount(source: string, target: string, readonly = false, slave = false): Promise<void> {
  const e = await call('bind', source, target);
  if (e !== 0) throw new MountError(`bind mount ${source} on ${target}: ${errnoName(e)}`);
  const step = async (what: string, op: () => Promise<number>): Promise<void> => {
    const s = await op().catch(async (err: unknown) => {
      await call('umount', target).catch(() => undefined);
      throw err;
    });
    if (s === 0) return;
    await call('umount', target).catch(() => undefined);
    throw new MountError(`${what} ${target}: ${errnoName(s)}`);
  };
  if (slave) await step('make-slave', () => call('slave', target));
  if (readonly) {
    // The new bind's own flags, from the mount table (never a statfs: the source may be a hung FUSE mount).
    await step('remount read-only', async () => {
      const top = layersAt(await readMountTable(), target).at(-1);
      if (!top) throw new MountError(`remount read-only ${target}: the bind is not in the mount table`);
      return call('ro', target, keptOnRemount(top.options));
    });
  }
}

/** Removes the top mount on `path`; a busy or hung one is detached lazily. Nothing mounted is fine. */
export async function unmountTop(path: string): Promise<void> {
  const e = await call('umount', path);
  if (e === 0 || nothingMounted(e)) return;
  const lazy = await call('detach', path);
  if (lazy !== 0 && !nothingMounted(lazy)) throw new MountError(`umount ${path}: ${errnoName(e)}; lazy: ${errnoName(lazy)}`);
}

/** Detaches the mount on `path` at once (MNT_DETACH): users keep their open files, new lookups miss it. */
export async function detach(path: string): Promise<void> {
  const e = await call('detach', path);
  if (e !== 0 && !nothingMounted(e)) throw new MountError(`umount -l ${path}: ${errnoName(e)}`);
}
