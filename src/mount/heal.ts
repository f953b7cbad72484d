// Healing containers in place, the acting half (the deciding half is heal-plan.ts): find the other
// mount namespaces of this node through /proc, read their mount tables, and run the single-threaded
// helper s3fs-csi-heal (native/heal.c) for each dead mount, under a deadline. Node.js cannot enter a
// mount namespace itself: setns(CLONE_NEWNS) refuses a multi-threaded caller.
import { spawn } from 'node:child_process';
import { readFile, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { packageRoot } from '../paths.js';
import { resolveHelper } from './executables.js';
import type { HealTask, NamespaceView } from './heal-plan.js';
import { parseMountInfo } from './mountinfo.js';

export const HEAL_HELPER_NAME = 's3fs-csi-heal';
/** Where `make build` puts the helper in a checkout (the image installs it on PATH instead). */
export const BUILT_HEAL_HELPER = join(packageRoot, 'build', 'native', HEAL_HELPER_NAME);

export type HealFailure = 'no-entry' | 'source' | 'target' | 'refused' | 'timeout' | 'helper';

/** Which mount: the namespace, the process it was entered through, the path as the container sees it. */
export interface HealWhere {
  ns: string;
  pid: number;
  target: string;
}

export type HealResult =
  | { result: 'healed'; where: HealWhere; source: string; readOnly: boolean; ms: number }
  | { result: 'failed'; where: HealWhere; reason: HealFailure; message: string; ms: number }
  | { result: 'skipped'; where: HealWhere; reason: string };

/** The helper's exit statuses (native/heal.c). */
const EXIT: Record<number, HealFailure | 'healed' | 'gone'> = { 0: 'healed', 2: 'helper', 3: 'gone', 4: 'no-entry', 5: 'source', 6: 'target', 7: 'refused' };

/**
 * The helper binary: `flag` as a path when it contains a slash; else looked up on PATH; else, for the
 * default name, the copy built in this checkout. Undefined = not found (or the flag is `none`).
 */
export async function resolveHealHelper(flag: string): Promise<string | undefined> {
  if (flag === 'none' || flag === '') return undefined;
  return resolveHelper(flag, flag === HEAL_HELPER_NAME ? BUILT_HEAL_HELPER : undefined);
}

/**
 * Whether this process sees the node's processes: false in a nested PID namespace (a pod without
 * hostPID), where NSpid in /proc/self/status lists more than one id.
 */
export async function seesHostPids(proc = '/proc'): Promise<boolean> {
  const status = await readFile(join(proc, 'self', 'status'), 'utf8');
  const line = status.split('\n').find((l) => l.startsWith('NSpid:'));
  return !line || line.trim().split(/\s+/).length <= 2;
}

const nsInode = (link: string): string | undefined => /^mnt:\[(\d+)\]$/.exec(link)?.[1];

/**
 * One view per mount namespace other than ours: processes grouped by /proc/<pid>/ns/mnt, the mount
 * table read through the first process that still exists. Processes that exit meanwhile are skipped.
 */
export async function otherNamespaces(proc = '/proc'): Promise<NamespaceView[]> {
  const own = nsInode(await readlink(join(proc, 'self', 'ns', 'mnt')));
  const byNs = new Map<string, number[]>();
  const pids = (await readdir(proc)).filter((n) => /^\d+$/.test(n)).map(Number);
  await Promise.all(pids.map(async (pid) => {
    const ns = nsInode(await readlink(join(proc, String(pid), 'ns', 'mnt')).catch(() => ''));
    if (!ns || ns === own) return;
    const list = byNs.get(ns);
    if (list) list.push(pid);
    else byNs.set(ns, [pid]);
  }));
  const views: NamespaceView[] = [];
  await Promise.all([...byNs].map(async ([ns, members]) => {
    for (const pid of members.sort((a, b) => a - b)) {
      try {
        // Mount points in /proc/<pid>/mountinfo are relative to that process's root: the container's view.
        views.push({ ns, pid, table: parseMountInfo(await readFile(join(proc, String(pid), 'mountinfo'), 'utf8')) });
        return;
      } catch {
        // exited meanwhile: try the next process of the namespace
      }
    }
  }));
  return views.sort((a, b) => a.pid - b.pid);
}

/** Runs the helper for one task; killed when it does not finish within `timeoutMs`. Never throws. */
export function runHealHelper(helper: string, task: HealTask, timeoutMs: number): Promise<HealResult> {
  const args = ['--pid', String(task.pid), '--source', task.source, '--target', task.target, '--expect-dev', task.deadDevice, '--expect-ns', task.ns];
  if (task.readOnly) args.push('--read-only');
  const started = Date.now();
  const where: HealWhere = { ns: task.ns, pid: task.pid, target: task.target };
  return new Promise((resolve) => {
    const child = spawn(helper, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { LC_ALL: 'C' } });
    let stderr = '';
    let settled = false;
    const finish = (r: HealResult): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const failed = (reason: HealFailure, message: string): HealResult => ({ result: 'failed', where, reason, message, ms: Date.now() - started });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(failed('timeout', `${HEAL_HELPER_NAME} did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
    child.stderr.on('data', (d: Buffer) => {
      if (stderr.length < 4096) stderr += d.toString();
    });
    child.once('error', (e) => finish(failed('helper', `cannot run ${helper}: ${e.message}`)));
    child.once('close', (code, signal) => {
      const line = stderr.trim().split('\n')[0] ?? '';
      const kind = code === null ? undefined : EXIT[code];
      if (kind === 'healed') finish({ result: 'healed', where, source: task.source, readOnly: task.readOnly, ms: Date.now() - started });
      else if (kind === 'gone') finish({ result: 'skipped', where, reason: 'the container exited meanwhile' });
      else finish(failed(kind ?? 'helper', line || `${HEAL_HELPER_NAME} ended with ${signal ?? `exit ${code}`}`));
    });
  });
}
