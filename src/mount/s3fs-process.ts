// One s3fs child: started in the foreground (-f) with execa, its log (stdout+stderr) parsed line by line into the
// driver log (secret values scrubbed), its last lines kept for error messages and exit events.
// Children run in their own process group, so a signal to the driver never reaches them: whether they
// stop when the driver exits is the owner's choice (--s3fs-on-exit, Mounter.shutdown). Kept running
// outside a container, their mounts survive a driver restart and the new driver adopts them.
import { readFile, readdir } from 'node:fs/promises';
import { basename } from 'node:path';
import { createInterface } from 'node:readline';
import type { Logger } from '../log.js';
import { scrub } from '../secrets.js';
import { SharedRead } from './shared-read.js';

export interface S3fsExit {
  code: number | null;
  signal: string | null;
  /** Last stderr lines (scrubbed). */
  stderr: string[];
  /** True when the driver itself stopped it. */
  expected: boolean;
}

const KEEP_LINES = 20;

/**
 * execa, loaded on first use rather than with this module: the node plugin imports the mount layer
 * but, with the separate mounter, never starts an s3fs itself, and execa costs ~20 MiB of RSS and
 * ~130 ms of load on its own (docs/bench.md, footprint). The processes that do start s3fs (the
 * mounter, a node plugin without one) load it once they serve (Mounter.warmUp).
 */
let execaModule: Promise<typeof import('execa')> | undefined;
export const loadExeca = (): Promise<typeof import('execa')> => (execaModule ??= import('execa'));
const LEVEL: Record<string, 'error' | 'warn' | 'info' | 'debug'> = { CRT: 'error', ERR: 'error', WAN: 'warn', INF: 'info', DBG: 'debug' };

export class S3fsProcess {
  readonly lines: string[] = [];
  readonly exited: Promise<S3fsExit>;
  #expected = false;
  #done = false;

  private constructor(
    readonly pid: number,
    exited: (self: S3fsProcess) => Promise<{ code: number | null; signal: string | null }>,
  ) {
    this.exited = exited(this).then((r) => {
      this.#done = true;
      return { ...r, stderr: [...this.lines], expected: this.#expected };
    });
  }

  get running(): boolean {
    return !this.#done;
  }

  /** Starts s3fs; `secrets` are the values scrubbed from every logged line. */
  static async start(bin: string, args: string[], log: Logger, secrets: string[]): Promise<S3fsProcess> {
    const { execa } = await loadExeca();
    const child = execa(bin, args, {
      reject: false,
      buffer: false,
      cleanup: false,
      detached: true,
      stdin: 'ignore',
      // s3fs 1.90 in the foreground writes its log to stdout, FUSE's errors go to stderr: read both.
      stdout: 'pipe',
      stderr: 'pipe',
      // Nothing of the driver's environment (which may hold default AWS keys) reaches s3fs.
      extendEnv: false,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    });
    if (child.pid === undefined) {
      // spawn failed (ENOENT...): execa resolves with the error
      const proc = new S3fsProcess(-1, async () => {
        const r = await child;
        return { code: r.exitCode ?? 127, signal: null };
      });
      void child.then((r) => proc.lines.push(scrub(r.message ?? 'cannot start s3fs', secrets)));
      return proc;
    }
    const proc = new S3fsProcess(child.pid, async () => {
      const r = await child;
      return { code: r.exitCode ?? null, signal: r.signal ?? null };
    });
    const onLine = (raw: string): void => {
      const line = scrub(raw, secrets).slice(0, 2000);
      proc.lines.push(line);
      if (proc.lines.length > KEEP_LINES) proc.lines.shift();
      const m = /\[(CRT|ERR|WAN|INF|DBG)\]/.exec(line);
      log[LEVEL[m?.[1] ?? 'INF'] ?? 'info']({ s3fs_pid: child.pid, s3fs: line }, 's3fs');
    };
    for (const stream of [child.stdout, child.stderr]) if (stream) createInterface({ input: stream }).on('line', onLine);
    return proc;
  }

  /** Supervises an s3fs the driver did not start (found after a restart): polls its liveness. */
  static adopt(pid: number, pollMs = 1000): S3fsProcess {
    return new S3fsProcess(pid, (self) => new Promise((resolve) => {
      const timer = setInterval(() => {
        if (self.#done) return;
        try {
          process.kill(pid, 0);
        } catch {
          clearInterval(timer);
          resolve({ code: null, signal: null });
        }
      }, pollMs);
      timer.unref();
      self.#stopPoll = () => {
        clearInterval(timer);
        resolve({ code: null, signal: null });
      };
    }));
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
        try {
          process.kill(this.pid, 0);
        } catch {
          break;
        }
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
