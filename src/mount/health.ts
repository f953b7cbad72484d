// Health of one path under a deadline. The probe (`stat -f`, i.e. statfs) runs in a child process
// killed when the deadline passes: a hung FUSE daemon then costs one stuck child, never the event
// loop or a libuv thread-pool slot (fs.promises calls on a hung mount would pin pool threads forever).
import { spawn } from 'node:child_process';
import { lstat } from 'node:fs/promises';
import { type MountEntry, layersAt, readMountTable } from './mountinfo.js';

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

const ENOTCONN_TEXT = /Transport endpoint is not connected|Software caused connection abort/i;

/**
 * statfs of `path` in a child; `hung` when it does not answer within `timeoutMs`. An aborted `signal`
 * ends the wait at once (state `error`): the caller has given up and is about to tear the mount down.
 */
export function statfsUnderDeadline(path: string, timeoutMs: number, signal?: AbortSignal): Promise<PathHealth> {
  return new Promise((resolve) => {
    // `--` so a path can never be read as an option; %S = fundamental block size (f_frsize).
    const child = spawn('stat', ['-f', '-c', '%S %b %f %a %c %d', '--', path], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    let out = '';
    let err = '';
    let done = false;
    const finish = (h: PathHealth): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(h);
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish({ state: 'hung', message: `statfs ${path} did not answer within ${timeoutMs} ms` });
    }, timeoutMs);
    const onAbort = (): void => {
      child.kill('SIGKILL');
      finish({ state: 'error', message: `statfs ${path} abandoned: the caller gave up` });
    };
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', (e) => finish({ state: 'error', message: `cannot run stat: ${e.message}` }));
    child.once('close', (code) => {
      if (code === 0) {
        const n = out.trim().split(/\s+/).map(Number);
        if (n.length === 6 && n.every(Number.isFinite)) {
          const [blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes] = n as [number, number, number, number, number, number];
          finish({ state: 'healthy', message: 'ok', fs: { blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes } });
        } else {
          finish({ state: 'healthy', message: 'ok' });
        }
        return;
      }
      const text = err.trim().split('\n').pop() ?? '';
      finish(ENOTCONN_TEXT.test(err) || /No such file or directory/.test(err) ? failureOf(path, err, '') : { state: 'error', message: text || `stat exited with ${code}` });
    });
  });
}

/** What a failed statfs said, as a state (stat's words, LC_ALL=C). */
function failureOf(path: string, err: string, fallback: string): PathHealth {
  if (ENOTCONN_TEXT.test(err)) return { state: 'stale', message: `mount is dead (ENOTCONN): the s3fs process serving it is gone` };
  if (/No such file or directory/.test(err)) return { state: 'missing', message: `${path} does not exist` };
  return { state: 'error', message: err || fallback };
}

/** `stat -f` output format of a batch: the six figures, then the path (last: it may contain spaces). */
const BATCH_FORMAT = '%S %b %f %a %c %d %n';
/** Paths per `stat -f` child: far below any argv limit. */
const BATCH_MAX = 256;
const STAT_LINE = /^(\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (.*)$/;
const STAT_ERROR = /^stat: cannot read file system information for '([^']*)': (.*)$/;

/**
 * Pure: the answers of one `stat -f -c BATCH_FORMAT -- paths...` run. stdout has one line per path
 * that answered, stderr one per path that failed. Only complete lines count (a run killed at its
 * deadline may leave half a line), and only names that were asked; a path found in neither stream
 * is left out, to be asked again on its own.
 */
export function parseStatfsBatch(paths: readonly string[], stdout: string, stderr: string): Map<string, PathHealth> {
  const wanted = new Set(paths);
  const out = new Map<string, PathHealth>();
  for (const line of stdout.split('\n').slice(0, -1)) {
    const m = STAT_LINE.exec(line);
    const path = m?.[7];
    if (!m || path === undefined || !wanted.has(path)) continue;
    const [blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes] = m.slice(1, 7).map(Number) as [number, number, number, number, number, number];
    out.set(path, { state: 'healthy', message: 'ok', fs: { blockSize, totalBlocks, freeBlocks, availableBlocks, totalInodes, freeInodes } });
  }
  for (const line of stderr.split('\n').slice(0, -1)) {
    const m = STAT_ERROR.exec(line);
    const path = m?.[1];
    if (!m || path === undefined || !wanted.has(path) || out.has(path)) continue;
    out.set(path, failureOf(path, m[2] ?? '', 'stat failed'));
  }
  return out;
}

/** One `stat -f` child for `paths`, killed at the deadline; the answers it gave (parseStatfsBatch). */
function statfsBatch(paths: readonly string[], timeoutMs: number): Promise<Map<string, PathHealth>> {
  return new Promise((resolve) => {
    const child = spawn('stat', ['-f', '-c', BATCH_FORMAT, '--', ...paths], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    let out = '';
    let err = '';
    let done = false;
    const finish = (): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(parseStatfsBatch(paths, out, err));
    };
    // Past the deadline: what it answered so far stands; the rest is asked one by one.
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish();
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', () => finish());
    child.once('close', () => finish());
  });
}

/**
 * statfs of many paths under the deadline with one child process per BATCH_MAX paths (a process
 * start costs milliseconds of CPU; recovery checks hundreds of paths). A path the batch did not
 * answer (its deadline passed behind a hung mount, or a name stat quoted) is probed on its own, so
 * every path gets the same answer statfsUnderDeadline would give; a hung path costs up to two deadlines.
 */
export async function statfsMany(paths: readonly string[], timeoutMs: number): Promise<Map<string, PathHealth>> {
  const unique = [...new Set(paths)];
  const out = new Map<string, PathHealth>();
  if (unique.length > 1) {
    const chunks: string[][] = [];
    for (let i = 0; i < unique.length; i += BATCH_MAX) chunks.push(unique.slice(i, i + BATCH_MAX));
    for (const answers of await Promise.all(chunks.map((c) => statfsBatch(c, timeoutMs)))) for (const [p, h] of answers) out.set(p, h);
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
    const abandoned = (): void => resolve({ state: 'error', message: `statfs ${path} abandoned: the caller gave up` });
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
