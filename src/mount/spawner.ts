// The driver's side of `s3fs-csi-mount --spawn` (native/spawn.c): one long-lived helper that starts
// this process's children (s3fs, the statfs checks) with posix_spawn and relays their output and
// their end. Node starts a child by forking its whole address space on the event loop: 5-6 ms each
// at the driver's size, 15-20 ms under a recovery's load (docs/bench.md); the helper's start costs
// about 0.5 ms and none of it on the event loop.
//
// The helper is started on first use and again after it dies. When it dies, the children it started
// keep running (reparented); the driver then watches each of them like an s3fs it adopted after a
// restart: it polls whether the process is still there, and no longer gets its output or exit code.
import { readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { MOUNT_HELPER_NAME, type HelperProcess, MountHelperError, mountHelperMissing, mountHelperPath, spawnHelper } from './mount-helper.js';

/** How a child ended: its exit code or the signal that ended it; both null when only its absence is known. */
export interface ChildExit {
  code: number | null;
  signal: string | null;
}

/** One line of the helper's output stream, decoded (decodeSpawnerLine). */
export type SpawnerEvent =
  | { kind: 'started'; pid: number }
  | { kind: 'failed'; errno: number }
  | { kind: 'output'; pid: number; text: string }
  | { kind: 'exited'; pid: number; code: number | null; signal: string | null }
  | { kind: 'garbled'; line: string };

const SIGNAL_NAMES = new Map<number, string>(Object.entries(constants.signals).map(([name, n]) => [n, name]));

/** Pure: one start request as the helper reads it (native/spawn.c): every field NUL-terminated. */
export function encodeStart(argv: readonly string[], env: Readonly<Record<string, string>>): Buffer {
  const envFields = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  for (const f of [...argv, ...envFields]) if (f.includes('\0')) throw new MountHelperError(`an argument with a NUL byte cannot be passed: ${JSON.stringify(f)}`);
  if (argv.length === 0) throw new MountHelperError('nothing to start');
  return Buffer.from(['start', String(argv.length), ...argv, String(envFields.length), ...envFields].map((f) => `${f}\0`).join(''), 'utf8');
}

/** Pure: one line the helper wrote, without its newline. */
export function decodeSpawnerLine(line: string): SpawnerEvent {
  let m = /^S (\d+)$/.exec(line);
  if (m) return { kind: 'started', pid: Number(m[1]) };
  m = /^E (\d+)$/.exec(line);
  if (m) return { kind: 'failed', errno: Number(m[1]) };
  m = /^O (\d+) (.*)$/s.exec(line);
  if (m) return { kind: 'output', pid: Number(m[1]), text: m[2] ?? '' };
  m = /^X (\d+) (-1|\d+) (\d+)$/.exec(line);
  if (m) {
    const code = Number(m[2]);
    const sig = Number(m[3]);
    return { kind: 'exited', pid: Number(m[1]), code: code < 0 ? null : code, signal: sig === 0 ? null : (SIGNAL_NAMES.get(sig) ?? `signal ${sig}`) };
  }
  return { kind: 'garbled', line };
}

/** A child the helper started. */
export interface SpawnedChild {
  readonly pid: number;
  readonly exited: Promise<ChildExit>;
}

interface Child {
  onLine: (text: string) => void;
  exit: (e: ChildExit) => void;
}

interface PendingStart {
  onLine: (text: string) => void;
  resolve: (c: SpawnedChild | { errno: number }) => void;
  reject: (err: Error) => void;
}

/** Whether `pid` is still a process that has not ended (a zombie has ended: its parent did not reap it yet). */
export async function processAlive(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  // Field 3, after the parenthesised name (which may hold spaces): the state letter.
  return stat !== '' && stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
}

/** Resolves once `pid` has ended, checked every `everyMs` (a process that is not our child). */
export function watchUntilGone(pid: number, everyMs: number): { ended: Promise<void>; stop: () => void } {
  let stop = (): void => undefined;
  const ended = new Promise<void>((resolve) => {
    const timer = setInterval(() => {
      void processAlive(pid).then((a) => {
        if (a) return;
        clearInterval(timer);
        resolve();
      });
    }, everyMs);
    timer.unref();
    stop = () => {
      clearInterval(timer);
      resolve();
    };
  });
  return { ended, stop };
}

class Spawner {
  #proc: HelperProcess | undefined;
  #starting: Promise<HelperProcess> | undefined;
  readonly #pending: PendingStart[] = [];
  readonly #children = new Map<number, Child>();

  /** The running helper's pid (undefined before the first start and after it died). */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Starts the helper now, if it is not running, so that the first child does not wait for it. */
  async warmUp(): Promise<void> {
    await this.#helper();
  }

  /**
   * Starts `argv[0]` (a path, or a name looked up on this process's PATH) with exactly `env`, stdin from /dev/null, stdout and
   * stderr to `onLine` line by line, in a session of its own. Resolves with the child, or with the
   * errno posix_spawn gave (ENOENT...); rejects when the helper itself cannot be run.
   */
  async start(argv: readonly string[], env: Readonly<Record<string, string>>, onLine: (text: string) => void): Promise<SpawnedChild | { errno: number }> {
    const request = encodeStart(argv, env);
    const proc = await this.#helper();
    return new Promise((resolve, reject) => {
      this.#pending.push({ onLine, resolve, reject });
      proc.stdin.write(request);
    });
  }

  /** The running helper, started when there is none (one start shared by concurrent callers). */
  async #helper(): Promise<HelperProcess> {
    return this.#proc ?? (await (this.#starting ??= this.#startHelper().finally(() => (this.#starting = undefined))));
  }

  async #startHelper(): Promise<HelperProcess> {
    const bin = await mountHelperPath();
    if (!bin) throw new MountHelperError(mountHelperMissing);
    // Its PATH is where a child named without a slash is looked up (s3fs by default).
    const env = { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' };
    this.#proc = spawnHelper(bin, ['--spawn'], env, (line, proc) => this.#handle(proc, decodeSpawnerLine(line)), (why, proc) => this.#fail(proc, why));
    return this.#proc;
  }

  #handle(proc: HelperProcess, e: SpawnerEvent): void {
    switch (e.kind) {
      case 'started': {
        const p = this.#pending.shift();
        if (!p) return;
        let exit: (x: ChildExit) => void = () => undefined;
        const exited = new Promise<ChildExit>((resolve) => (exit = resolve));
        this.#children.set(e.pid, { onLine: p.onLine, exit });
        p.resolve({ pid: e.pid, exited });
        return;
      }
      case 'failed':
        this.#pending.shift()?.resolve({ errno: e.errno });
        return;
      case 'output':
        this.#children.get(e.pid)?.onLine(e.text);
        return;
      case 'exited': {
        const c = this.#children.get(e.pid);
        this.#children.delete(e.pid);
        c?.exit({ code: e.code, signal: e.signal });
        return;
      }
      case 'garbled':
        this.#fail(proc, `${MOUNT_HELPER_NAME} --spawn wrote a line it should not: ${JSON.stringify(e.line.slice(0, 200))}`);
    }
  }

  /**
   * The helper is gone or cannot be trusted: kill it, fail the starts it still owes, and watch the
   * children it started (still running, now reparented) by polling until each is gone.
   */
  #fail(proc: HelperProcess, why: string): void {
    if (this.#proc !== proc) return;
    this.#proc = undefined;
    proc.kill('SIGKILL');
    for (const p of this.#pending.splice(0)) p.reject(new MountHelperError(why));
    for (const [pid, c] of this.#children) {
      this.#children.delete(pid);
      void watchUntilGone(pid, 1000).ended.then(() => c.exit({ code: null, signal: null }));
    }
  }
}

/** The process's one process starter. */
export const spawner = new Spawner();
