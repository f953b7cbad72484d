// Process helpers: resident memory from /proc, spawning peers, timing one command per call.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { nowMs } from './stats.js';

export const MiB = 1024 * 1024;

/** VmRSS of a process in MiB (NaN when it is gone). */
export async function rssMiB(pid: number | undefined): Promise<number> {
  if (!pid) return Number.NaN;
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmRSS:\s+(\d+)\s+kB/.exec(text);
    return m ? Number(m[1]) / 1024 : Number.NaN;
  } catch {
    return Number.NaN;
  }
}

/** Runs a command to completion; resolves with its wall time and exit code (never rejects). */
export function timeCommand(file: string, args: string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<{ ms: number; code: number; stderr: string; stdout: string }> {
  const t0 = nowMs();
  return new Promise((resolve) => {
    execFile(file, args, { cwd: opts.cwd, timeout: opts.timeoutMs ?? 30_000, maxBuffer: 16 * MiB }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : 1) : 0;
      resolve({ ms: nowMs() - t0, code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

export interface Spawned {
  proc: ChildProcess;
  output: () => string;
}

/** Starts a long-running peer; its last 8 KiB of output are kept for error messages. */
export function startProcess(file: string, args: string[], env?: NodeJS.ProcessEnv): Spawned {
  const proc = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'], env: env ?? process.env });
  let out = '';
  const keep = (d: Buffer): void => {
    out = (out + d.toString()).slice(-8192);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  return { proc, output: () => out };
}
