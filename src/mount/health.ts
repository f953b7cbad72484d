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
      if (ENOTCONN_TEXT.test(err)) finish({ state: 'stale', message: `mount is dead (ENOTCONN): the s3fs process serving it is gone` });
      else if (/No such file or directory/.test(err)) finish({ state: 'missing', message: `${path} does not exist` });
      else finish({ state: 'error', message: text || `stat exited with ${code}` });
    });
  });
}

/**
 * Classifies `path`: `not-mounted` / `missing` from the mount table and lstat (safe: only done when
 * nothing is mounted there), otherwise the statfs probe under the deadline.
 */
export async function checkPath(path: string, timeoutMs: number, table?: readonly MountEntry[]): Promise<PathHealth> {
  const mounts = table ?? (await readMountTable());
  if (layersAt(mounts, path).length === 0) {
    try {
      await lstat(path);
      return { state: 'not-mounted', message: `nothing is mounted on ${path}` };
    } catch {
      return { state: 'missing', message: `${path} does not exist` };
    }
  }
  return statfsUnderDeadline(path, timeoutMs);
}
