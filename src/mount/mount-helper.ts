// The driver's side of s3fs-csi-mount (native/mount.c): one long-lived helper process that makes the
// bind mounts and unmounts with mount(2)/umount2(2), requests written to its stdin and answered in
// order with an errno. Starting mount(8) per call cost the event loop a fork of this whole process
// each time (src/mount/ops.ts has the figures); the helper is started once, on first use, and again
// after it dies. A request the kernel does not answer within its deadline (an unmount that blocks
// on a hung FUSE mount) kills the helper: that request and every one queued behind it fail with a
// timeout, and the next request starts a new helper.
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { getSystemErrorName } from 'node:util';
import { packageRoot } from '../paths.js';
import { resolveHelper } from './executables.js';

export const MOUNT_HELPER_NAME = 's3fs-csi-mount';
/** Where `make build` puts the helper in a checkout (the image installs it on PATH instead). */
export const BUILT_MOUNT_HELPER = join(packageRoot, 'build', 'native', MOUNT_HELPER_NAME);

export type MountOp = 'bind' | 'slave' | 'ro' | 'umount' | 'detach';

export class MountHelperError extends Error {}

/** The helper binary: on PATH, else the copy built in this checkout; undefined when neither exists. */
export const findMountHelper = (): Promise<string | undefined> => resolveHelper(MOUNT_HELPER_NAME, BUILT_MOUNT_HELPER);

let found: Promise<string | undefined> | undefined;
/**
 * findMountHelper, remembered once found (the mount operations and every statfs check start it; a
 * PATH walk each time would cost more than the check). A miss, or a start that fails, looks again
 * next time. The readiness check (checkMountHelper) always looks afresh.
 */
export function mountHelperPath(): Promise<string | undefined> {
  found ??= findMountHelper().then((p) => {
    if (!p) found = undefined;
    return p;
  });
  return found;
}

/** The helper could not be started from the remembered path: look it up again next time. */
export function forgetMountHelperPath(): void {
  found = undefined;
}

/** Pure: an errno the helper answered, by name (ENOENT...); `errno N` for one Node does not know. */
export function errnoName(e: number): string {
  try {
    return getSystemErrorName(-e);
  } catch {
    return `errno ${e}`;
  }
}

/** Why nothing can be mounted when findMountHelper finds nothing (readiness and the failed call say the same). */
export const mountHelperMissing = `${MOUNT_HELPER_NAME} not found on PATH nor at ${BUILT_MOUNT_HELPER} (make build; the image installs it)`;

/** Pure: one request as the helper reads it (every field NUL-terminated). */
export function encodeRequest(op: MountOp, args: readonly string[]): Buffer {
  for (const a of args) if (a.includes('\0')) throw new MountHelperError(`a path with a NUL byte cannot be mounted: ${JSON.stringify(a)}`);
  return Buffer.from([op, ...args].map((f) => `${f}\0`).join(''), 'utf8');
}

/** Pure: one reply line as an errno; NaN for a line that is not one. */
export const decodeReply = (line: string): number => (/^\d+$/.test(line) ? Number(line) : Number.NaN);

export type HelperProcess = ChildProcessByStdio<Writable, Readable, Readable>;

/**
 * Starts `s3fs-csi-mount ARGS` from `bin` as a long-lived helper of this process, with exactly `env`.
 * It never keeps this process alive (what waits on it keeps its own timer). Each complete line of its
 * stdout goes to `onLine`; `onEnd` gets why it cannot be run or why it ended (with the first KiB of
 * its stderr), possibly twice (a failed start is also an end): the caller drops a helper once.
 */
export function spawnHelper(
  bin: string, args: readonly string[], env: Readonly<Record<string, string>>,
  onLine: (line: string, proc: HelperProcess) => void, onEnd: (why: string, proc: HelperProcess) => void,
): HelperProcess {
  const name = [MOUNT_HELPER_NAME, ...args].join(' ');
  const proc = spawn(bin, args, { stdio: ['pipe', 'pipe', 'pipe'], env: { ...env } });
  proc.unref();
  for (const s of [proc.stdin, proc.stdout, proc.stderr]) (s as unknown as Socket).unref();
  let buffered = '';
  let stderr = '';
  proc.stdout.setEncoding('utf8');
  proc.stdout.on('data', (chunk: string) => {
    const lines = (buffered + chunk).split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) onLine(line, proc);
  });
  proc.stderr.on('data', (d: Buffer) => {
    if (stderr.length < 1024) stderr += d.toString();
  });
  proc.stdin.on('error', () => undefined); // an exit is reported by 'close' below
  proc.once('error', (e) => {
    forgetMountHelperPath();
    onEnd(`cannot run ${[bin, ...args].join(' ')}: ${e.message}`, proc);
  });
  proc.once('close', (code, signal) => onEnd(`${name} ended (${signal ?? `exit ${code}`})${stderr ? `: ${stderr.trim()}` : ''}`, proc));
  return proc;
}

interface Pending {
  resolve: (errno: number) => void;
  reject: (err: Error) => void;
  timer: NodeJS.Timeout;
}

class MountHelper {
  #proc: HelperProcess | undefined;
  #starting: Promise<HelperProcess> | undefined;
  readonly #pending: Pending[] = [];

  /** The running helper's pid (undefined before the first call and after it died). */
  get pid(): number | undefined {
    return this.#proc?.pid;
  }

  /** Runs one operation; resolves with its errno (0 = done). Rejects only when the helper fails. */
  async call(op: MountOp, args: readonly string[], timeoutMs: number): Promise<number> {
    const request = encodeRequest(op, args);
    const proc = this.#proc ?? (await (this.#starting ??= this.#start().finally(() => (this.#starting = undefined))));
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.#fail(proc, `${MOUNT_HELPER_NAME} ${op} did not finish within ${timeoutMs} ms`), timeoutMs);
      this.#pending.push({ resolve, reject, timer });
      proc.stdin.write(request);
    });
  }

  async #start(): Promise<HelperProcess> {
    const bin = await mountHelperPath();
    if (!bin) throw new MountHelperError(mountHelperMissing);
    this.#proc = spawnHelper(bin, [], { LC_ALL: 'C' }, (line) => this.#reply(decodeReply(line)), (why, proc) => this.#fail(proc, why));
    return this.#proc;
  }

  /** The answer to the oldest request still waiting. */
  #reply(errno: number): void {
    const p = this.#pending.shift();
    if (!p) return;
    clearTimeout(p.timer);
    if (Number.isNaN(errno)) p.reject(new MountHelperError(`${MOUNT_HELPER_NAME} answered something that is not an errno`));
    else p.resolve(errno);
  }

  /** The helper cannot be trusted any more: kill it and fail everything it still owes. */
  #fail(proc: HelperProcess, why: string): void {
    if (this.#proc !== proc) return;
    this.#proc = undefined;
    proc.kill('SIGKILL');
    for (const p of this.#pending.splice(0)) {
      clearTimeout(p.timer);
      p.reject(new MountHelperError(why));
    }
  }
}

/** The process's one helper: every mount operation of this process goes through it, in order. */
export const mountHelper = new MountHelper();
