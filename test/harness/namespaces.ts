// "Containers" for mount tests: a process in its own mount namespace (unshare), holding bind mounts
// of host paths at its own paths, optionally chroot'ed into a small root of its own (as a runtime
// does), so that a path in the container differs from the same path on the host. The namespace and
// its mounts disappear when the process is killed.
import { execFile, spawn } from 'node:child_process';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { type MountEntry, parseMountInfo } from '../../src/mount/mountinfo.js';

const run = promisify(execFile);

export interface ContainerBind {
  /** Host path bound into the container. */
  source: string;
  /** Path as the container sees it (under `root` when there is one). */
  path: string;
  readOnly?: boolean;
}

export interface NsContainer {
  pid: number;
  /** Mount namespace inode. */
  ns: string;
  /** The container's root directory on the host, if chroot'ed. */
  root?: string;
  /** Runs a command in the container (its namespace and root); never throws, bounded in time. */
  exec(args: string[], timeoutMs?: number): Promise<{ ok: boolean; out: string }>;
  /** The container's mount table, paths as it sees them. */
  mounts(): Promise<MountEntry[]>;
  alive(): boolean;
  stop(): void;
}

/**
 * Starts `sleep` in a new mount namespace (`private` = mountPropagation None, `slave` =
 * HostToContainer) with `binds` mounted; with `root`, a directory that gets /usr and is chroot'ed into.
 */
export async function startContainer(o: { propagation: 'private' | 'slave'; binds: ContainerBind[]; root?: string }): Promise<NsContainer> {
  const args: string[] = [o.root ?? ''];
  for (const b of o.binds) {
    const hostPath = o.root ? join(o.root, b.path) : b.path;
    await mkdir(hostPath, { recursive: true });
    args.push(b.source, hostPath, b.readOnly ? 'ro' : 'rw');
  }
  if (o.root) {
    await mkdir(join(o.root, 'usr'), { recursive: true });
    for (const l of ['bin', 'lib', 'lib64', 'sbin']) await symlink(`usr/${l}`, join(o.root, l)).catch(() => undefined);
  }
  const script = [
    'set -e', 'root=$1', 'shift',
    'while [ $# -ge 3 ]; do mount --bind "$1" "$2"; if [ "$3" = ro ]; then mount -o remount,bind,ro "$2"; fi; shift 3; done',
    'if [ -n "$root" ]; then mount --bind /usr "$root/usr"; exec chroot "$root" /usr/bin/sleep 3600; fi',
    'exec sleep 3600',
  ].join('\n');
  const proc = spawn('unshare', ['--mount', '--propagation', o.propagation, 'sh', '-c', script, 'sh', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  let exited = false;
  proc.once('exit', () => (exited = true));
  const pid = proc.pid;
  if (!pid) throw new Error('unshare did not start');
  // Ready once the shell has exec'd sleep (every bind done).
  for (let i = 0; ; i++) {
    const comm = await readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '');
    if (comm.trim() === 'sleep') break;
    if (exited || i > 250) {
      proc.kill('SIGKILL');
      throw new Error(`container did not start: ${stderr.trim() || 'timeout'}`);
    }
    await sleep(20);
  }
  const ns = /\[(\d+)\]/.exec(await run('readlink', [`/proc/${pid}/ns/mnt`]).then((r) => r.stdout))?.[1] ?? '';
  return {
    pid, ns, root: o.root,
    async exec(cmd, timeoutMs = 5000) {
      try {
        const r = await run('nsenter', ['-t', String(pid), '-m', ...(o.root ? ['-r'] : []), 'timeout', '-s', 'KILL', String(Math.ceil(timeoutMs / 1000)), ...cmd], { timeout: timeoutMs + 1000 });
        return { ok: true, out: r.stdout };
      } catch (err) {
        const e = err as { stderr?: string; message: string };
        return { ok: false, out: (e.stderr ?? e.message).trim() };
      }
    },
    async mounts() {
      return parseMountInfo(await readFile(`/proc/${pid}/mountinfo`, 'utf8'));
    },
    alive: () => !exited,
    stop: () => {
      if (!exited) proc.kill('SIGKILL');
    },
  };
}
