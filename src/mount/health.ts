// Health of one path under a deadline. The probe (statfs(2), made by `s3fs-csi-mount --statfs`, see
// native/mount.c) runs in a child process, started by the process starter (spawner.ts) and killed
// when the deadline passes: a hung FUSE daemon then
// costs one stuck child, never the event loop or a libuv thread-pool slot (fs.promises calls on a
// hung mount would pin pool threads forever). The child answers with the errno, so the state is
// decided from the kernel's answer, not from a program's message.
import { lstat } from 'node:fs/promises';
import { errnoName, forgetMountHelperPath, mountHelperMissing, mountHelperPath } from './mount-helper.js';
import { type MountEntry, layersAt, readMountTable } from './mountinfo.js';
import { spawner } from './spawner.js';

export type PathState = 'healthy' | 'stale' | 'hung' | 'not-mounted' | 'missing' | 'error';

export interface FsStats {
  blockSize: number;
  totalBlocks: number;
  freeBlocks: number;
  availableBlocks: number;
  totalInodes: number;
  freeInodes: number;
}

export interface PathHealth {
  state: PathState;
  message: string;
  fs?: FsStats;
}

/** Pure: a failed statfs as a health state, from its errno name. */
export function healthOfErrno(path: string, code: string | undefined, message: string): PathHealth {
  switch (code) {
    case 'ENOTCONN':
    case 'ECONNABORTED':
      return { state: 'stale', message: `mount is dead (${code}): the s3fs process serving it is gone` };
    case 'ENOENT':
      return { state: 'missing', message: `${path} does not exist` };
    default:
      return { state: 'error', message: `statfs ${path}: ${message}` };
  }
}

/** Pure: a statfs that did not answer within its deadline (the daemon is hung). */
export const hungHealth = (path: string, timeoutMs: number): PathHealth => ({ state: 'hung', message: `statfs ${path} did not answer within ${timeoutMs} ms` });

/** Pure: a statfs whose caller stopped waiting (it is about to tear the mount down). */
export const abandonedHealth = (path: string): PathHealth => ({ state: 'error', message: `statfs ${path} abandoned: the caller gave up` });

/** "0" and the six figures, or a non-zero errno. */
const LINE = /^(?:0 (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)|([1-9]\d*))$/;

/**
 * Pure: the answers of one `s3fs-csi-mount --statfs paths...` run, one stdout line per path in the
 * order asked ("0" and six figures, or the errno). Only complete lines count (a run killed at its
 * deadline may leave half a line); a path without its line is left out, to be asked again on its own.
 */
export function parseStatfsReplies(paths: readonly string[], stdout: string): Map<string, PathHealth> {
  const out = new Map<string, PathHealth>();
  const lines = stdout.split('\n').slice(0, -1);
  for (let i = 0; i < lines.length && i < paths.length; i++) {
    const m = LINE.exec(lines[i] ?? '');
    const path = paths[i];
    if (!m || path === undefined) break; // not the helper's output: trust nothing after it
    if (m[7] !== undefined) {
      const name = errnoName(Number(m[7]));
      out.set(path, healthOfErrno(path, name, name));
      continue;
    }
    const [blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    out.set(path, { state: 'healthy', message: 'ok', fs: { blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes } });
  }
  return out;
}

/**
 * One statfs child for `paths` (started by the process starter, spawner.ts: no fork of this process),
 * killed at the deadline or when `signal` aborts; the answers it gave before (parseStatfsReplies) and
 * why it stopped when it did not answer every path.
 */
async function statfsRun(paths: readonly string[], timeoutMs: number, signal?: AbortSignal): Promise<{ answers: Map<string, PathHealth>; stopped?: 'deadline' | 'abandoned' | string }> {
  const bin = await mountHelperPath();
  if (!bin) return { answers: new Map(), stopped: mountHelperMissing };
  let out = '';
  const answered = (stopped?: string): { answers: Map<string, PathHealth>; stopped?: string } => {
    const answers = parseStatfsReplies(paths, out);
    return { answers, stopped: answers.size === paths.length ? undefined : stopped };
  };
  if (signal?.aborted) return answered('abandoned');
  const child = await spawner.start([bin, '--statfs', ...paths], { LC_ALL: 'C' }, (line) => (out += `${line}\n`)).catch((e: unknown) => e as Error);
  if (child instanceof Error) return answered(`cannot run ${bin}: ${child.message}`);
  if (!('pid' in child)) {
    forgetMountHelperPath();
    return answered(`cannot run ${bin}: ${errnoName(child.errno)}`);
  }
  return new Promise((resolve) => {
    let done = false;
    const finish = (stopped?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(answered(stopped));
    };
    const kill = (): void => {
      try {
        process.kill(child.pid, 'SIGKILL');
      } catch {
        // ended meanwhile
      }
    };
    const timer = setTimeout(() => {
      kill();
      finish('deadline');
    }, timeoutMs);
    const onAbort = (): void => {
      kill();
      finish('abandoned');
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    void child.exited.then((e) => finish(`${bin} --statfs ended (${e.signal ?? `exit ${e.code}`}) without answering`));
  });
}

/**
 * statfs of `path` in a child; `hung` when it does not answer within `timeoutMs`. An aborted `signal`
 * ends the wait at once (state `error`): the caller has given up and is about to tear the mount down.
 */
export async function statfsUnderDeadline(path: string, timeoutMs: number, signal?: AbortSignal): Promise<PathHealth> {
  const { answers, stopped } = await statfsRun([path], timeoutMs, signal);
  const answer = answers.get(path);
  if (answer) return answer;
  if (stopped === 'deadline') return hungHealth(path, timeoutMs);
  if (stopped === 'abandoned') return abandonedHealth(path);
  return { state: 'error', message: `statfs ${path}: ${stopped ?? 'no answer'}` };
}

/** Paths per statfs child: far below any argv limit. */
const BATCH_MAX = 256;

/**
 * statfs of many paths under the deadline with one child process per BATCH_MAX paths (a process
 * start costs milliseconds of CPU; recovery checks hundreds of paths). A path the batch did not
 * answer (its deadline passed behind a hung mount) is probed on its own, so every path gets the
 * same answer statfsUnderDeadline would give; a hung path costs up to two deadlines.
 */
export async function statfsMany(paths: readonly string[], timeoutMs: number): Promise<Map<string, PathHealth>> {
  const unique = [...new Set(paths)];
  const out = new Map<string, PathHealth>();
  if (unique.length > 1) {
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_MAX) chunks.push(unique.slice(i, i + BATCH_MAX));
    for (const { answers } of await Promise.all(chunks.map((c) => statfsRun(c, timeoutMs)))) for (const [p, h] of answers) out.set(p, h);
  }
  await Promise.all(unique.filter((p) => !out.has(p)).map(async (p) => out.set(p, await statfsUnderDeadline(p, timeoutMs))));
  return out;
}

/** statfs requests made in the same turn of the event loop, answered by one statfsMany. */
let queued: Array<{ path: string; timeoutMs: number; resolve: (h: PathHealth) => void }> | undefined;

function flushQueued(): void {
  const batch = queued ?? [];
  queued = undefined;
  const first = batch[0];
  if (batch.length === 1 && first) {
    void statfsUnderDeadline(first.path, first.timeoutMs).then(first.resolve);
    return;
  }
  const timeoutMs = Math.min(...batch.map((b) => b.timeoutMs));
  void statfsMany(batch.map((b) => b.path), timeoutMs).then((answers) => {
    for (const b of batch) b.resolve(answers.get(b.path) ?? { state: 'error', message: `statfs ${b.path}: no answer` });
  });
}

/**
 * statfsUnderDeadline, batched with the other requests of this turn of the event loop. An aborted
 * `signal` ends this caller's wait at once (state `error`), as with statfsUnderDeadline.
 */
export function statfsCoalesced(path: string, timeoutMs: number, signal?: AbortSignal): Promise<PathHealth> {
  return new Promise((resolve) => {
    const abandoned = (): void => resolve(abandonedHealth(path));
    if (signal?.aborted) {
      abandoned();
      return;
    }
    signal?.addEventListener('abort', abandoned, { once: true });
    if (!queued) {
      queued = [];
      setImmediate(flushQueued);
    }
    queued.push({
      path, timeoutMs, resolve: (h) => {
        signal?.removeEventListener('abort', abandoned);
        resolve(h);
      },
    });
  });
}

async function unmountedState(path: string): Promise<PathHealth> {
  try {
    await lstat(path);
    return { state: 'not-mounted', message: `nothing is mounted on ${path}` };
  } catch {
    return { state: 'missing', message: `${path} does not exist` };
  }
}

/**
 * Classifies `path`: `not-mounted` / `missing` from the mount table and lstat (safe: only done when
 * nothing is mounted there), otherwise the statfs probe under the deadline (batched with concurrent
 * checks: statfsCoalesced).
 */
export async function checkPath(path: string, timeoutMs: number, table?: readonly MountEntry[]): Promise<PathHealth> {
  const mounts = table ?? (await readMountTable());
  if (layersAt(mounts, path).length === 0) return unmountedState(path);
  return statfsCoalesced(path, timeoutMs);
}

/** checkPath of many paths: one mount table, one statfs child per BATCH_MAX mounted paths. */
export async function checkPaths(paths: readonly string[], timeoutMs: number, table?: readonly MountEntry[]): Promise<Map<string, PathHealth>> {
  const mounts = table ?? (await readMountTable());
  const mountPoints = new Set(mounts.map((m) => m.mountPoint));
  const out = new Map<string, PathHealth>();
  const mounted = paths.filter((p) => mountPoints.has(p));
  await Promise.all(paths.filter((p) => !mountPoints.has(p)).map(async (p) => out.set(p, await unmountedState(p))));
  for (const [p, h] of await statfsMany(mounted, timeoutMs)) out.set(p, h);
  return out;
}
