// One s3fs child: started in the foreground (-f) by the process starter (spawner.ts), its log (stdout+stderr) parsed line by line into the
// driver log (secret values scrubbed), its last lines kept for error messages and exit events.
// Children run in their own session, so a signal to the driver's group never reaches them: whether they
// stop when the driver exits is the owner's choice (--s3fs-on-exit, Mounter.shutdown). Kept running
// outside a container, their mounts survive a driver restart and the new driver adopts them.
import { readFile, readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import type { Logger } from '../log.js';
import { scrub } from '../secrets.js';
import { errnoName } from './mount-helper.js';
import { SharedRead } from './shared-read.js';
import { processAlive, spawner, watchUntilGone } from './spawner.js';

export interface S3fsExit {
  code: number | null;
  signal: string | null;
  /** Last stderr lines (scrubbed). */
  stderr: string[];
  /** True when the driver itself stopped it. */
  expected: boolean;
}

const KEEP_LINES = 20;

const LEVEL: Record<string, 'error' | 'warn' | 'info' | 'debug'> = { CRT: 'error', ERR: 'error', WAN: 'warn', INF: 'info', DBG: 'debug' };

export class S3fsProcess {
  readonly exited: Promise<S3fsExit>;
  #expected = false;
  #done = false;

  private constructor(
    readonly pid: number,
    exited: Promise<{ code: number | null; signal: string | null }>,
    /** Its last output lines (scrubbed), oldest first. */
    readonly lines: string[] = [],
  ) {
    this.exited = exited.then((r) => {
      this.#done = true;
      return { ...r, stderr: [...this.lines], expected: this.#expected };
    });
  }

  get running(): boolean {
    return !this.#done;
  }

  /**
   * Starts s3fs through the process starter (spawner.ts); `secrets` are the values scrubbed from every
   * logged line. A start that fails (no such file, the helper missing) gives a process with pid -1
   * that has exited with code 127 and says why in its lines.
   */
  static async start(bin: string, args: string[], log: Logger, secrets: string[]): Promise<S3fsProcess> {
    const lines: string[] = [];
    let pid = -1;
    const onLine = (raw: string): void => {
      const line = scrub(raw, secrets).slice(0, 2000);
      lines.push(line);
      if (lines.length > KEEP_LINES) lines.shift();
      const m = /\[(CRT|ERR|WAN|INF|DBG)\]/.exec(line);
      log[LEVEL[m?.[1] ?? 'INF'] ?? 'info']({ s3fs_pid: pid, s3fs: line }, 's3fs');
    };
    // Nothing of the driver's environment (which may hold default AWS keys) reaches s3fs. s3fs 1.90 in
    // the foreground writes its log to stdout, FUSE's errors go to stderr: the starter relays both.
    const child = await spawner
      .start([bin, ...args], { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' }, onLine)
      .catch((err: unknown) => ({ message: err instanceof Error ? err.message : String(err) }));
    if (!('pid' in child)) {
      const why = 'errno' in child ? `cannot start ${bin}: ${errnoName(child.errno)}` : `cannot start ${bin}: ${child.message}`;
      const proc = new S3fsProcess(-1, Promise.resolve({ code: 127, signal: null }), lines);
      lines.push(scrub(why, secrets));
      return proc;
    }
    pid = child.pid;
    return new S3fsProcess(child.pid, child.exited, lines);
  }

  /** Supervises an s3fs the driver did not start (found after a restart): polls its liveness. */
  static adopt(pid: number, pollMs = 1000): S3fsProcess {
    const watch = watchUntilGone(pid, pollMs);
    const proc = new S3fsProcess(pid, watch.ended.then(() => ({ code: null, signal: null })));
    proc.#stopPoll = watch.stop;
    return proc;
  }

  #stopPoll?: () => void;

  /** SIGTERM (s3fs unmounts and exits), SIGKILL after `graceMs`. */
  async stop(graceMs = 5000): Promise<void> {
    this.#expected = true;
    if (this.#done || this.pid <= 0) return;
    try {
      process.kill(this.pid, 'SIGTERM');
    } catch {
      // already gone
    }
    const timer = setTimeout(() => {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }, graceMs);
    if (this.#stopPoll) {
      // adopted: not our child, wait for it to disappear
      for (let i = 0; i < (graceMs + 2000) / 50; i++) {
        if (!(await processAlive(this.pid))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      this.#stopPoll();
    }
    await this.exited;
    clearTimeout(timer);
  }

  /** Marks an exit as expected without signalling (the mount is being torn down another way). */
  markExpected(): void {
    this.#expected = true;
  }
}

/** Every process's argv, one /proc scan shared by the callers that ask while it runs (shared-read.ts). */
const processTable = new SharedRead<ReadonlyArray<{ pid: number; argv: readonly string[] }>>(async () => {
  const out: Array<{ pid: number; argv: readonly string[] }> = [];
  // One at a time: a process stuck on a hung mount can block a read of its cmdline, and that must pin
  // at most one thread of the pool.
  for (const name of await readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(name)) continue;
    out.push({ pid: Number(name), argv: (await readFile(`/proc/${name}/cmdline`, 'utf8').catch(() => '')).split('\0') });
  }
  return out;
});

/** PIDs of the processes whose argv satisfies `match` (one scan of /proc/<pid>/cmdline, started after the call). */
export async function pidsWhere(match: (argv: readonly string[]) => boolean): Promise<number[]> {
  return (await processTable.get()).filter((p) => match(p.argv)).map((p) => p.pid);
}

/** PIDs of s3fs processes whose argv satisfies `match`. */
export function s3fsPidsWhere(match: (argv: readonly string[]) => boolean): Promise<number[]> {
  return pidsWhere((argv) => argv[0] !== undefined && basename(argv[0]) === 's3fs' && match(argv));
}

/** PIDs of s3fs processes whose argv names `mountPoint`. */
export function findS3fsPids(mountPoint: string): Promise<number[]> {
  return s3fsPidsWhere((argv) => argv.includes(mountPoint));
}
