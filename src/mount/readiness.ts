// The readiness statfs of an s3fs this process has just started. It is asked once per stage, right
// after the FUSE mount appears, and waits for s3fs's init: a statfs child costs a process start (by
// the process starter, spawner.ts) and two round trips through its pipe, for an answer that usually
// takes well under a millisecond. Measured with the starter, four alternating pairs of `--only mount`:
// the stage at 1.05-1.24x the hand-run s3fs with this in-process call, 1.24-1.27x without it.
//
// The in-process call (fs.statfs) holds a libuv pool thread until the kernel answers, and on a FUSE
// mount only the daemon can answer. That is safe here, and only here, because of two facts:
// - the daemon is ours: a caller whose check fails, passes its deadline or is given up stops that
//   s3fs, and a dead daemon aborts its FUSE connection, which ends the waiting statfs (ENOTCONN or
//   ECONNABORTED; docs/kernel.md);
// - at most IN_PROCESS_SLOTS such calls run at once; a caller that finds them taken uses the child
//   process, as every other health check does. A slot is given back when the kernel answers, not at
//   the deadline, so even a daemon that cannot be stopped pins at most that many pool threads.
import { statfs } from 'node:fs/promises';
import { type PathHealth, abandonedHealth, healthOfErrno, hungHealth, statfsUnderDeadline } from './health.js';

/** Pool threads the readiness check may hold (libuv has 4 by default, shared with every file operation). */
export const IN_PROCESS_SLOTS = 1;

let inUse = 0;

/** In-process statfs calls of readiness checks now running (the tests read it). */
export function readinessCallsInFlight(): number {
  return inUse;
}

/**
 * statfs of the mount point of a FUSE daemon the caller started and will stop when the answer is not
 * `healthy` (the contract above): `hung` past `timeoutMs`, `error` at once when `signal` aborts.
 */
export function statfsOfOwnMount(path: string, timeoutMs: number, signal?: AbortSignal): Promise<PathHealth> {
  if (inUse >= IN_PROCESS_SLOTS || signal?.aborted) return statfsUnderDeadline(path, timeoutMs, signal);
  inUse++;
  const answer = statfs(path).then(
    (s): PathHealth => ({
      state: 'healthy',
      message: 'ok',
      fs: { blockSize: s.bsize, totalBlocks: s.blocks, freeBlocks: s.bfree, availableBlocks: s.bavail, totalInodes: s.files, freeInodes: s.ffree },
    }),
    (err: NodeJS.ErrnoException): PathHealth => healthOfErrno(path, err.code, err.message),
  );
  void answer.finally(() => inUse--);
  return new Promise((resolve) => {
    const finish = (h: PathHealth): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(h);
    };
    const timer = setTimeout(() => finish(hungHealth(path, timeoutMs)), timeoutMs);
    const onAbort = (): void => finish(abandonedHealth(path));
    signal?.addEventListener('abort', onAbort, { once: true });
    void answer.then(finish);
  });
}
