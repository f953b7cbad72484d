// Everything the benchmark starts or mounts is registered here and undone in reverse order: at the
// end of a section, on an exception, and on Ctrl-C / SIGTERM (processes by PID, mounts by path).
import { unmountUnder } from '../../test/harness/mounts.js';

type Undo = { what: string; fn: () => Promise<unknown> | unknown };

export class Cleanup {
  private stack: Undo[] = [];
  /** Every PID handed to process(), for the report (the smoke test checks none survives). */
  readonly pids: number[] = [];

  add(what: string, fn: () => Promise<unknown> | unknown): () => Promise<void> {
    const entry: Undo = { what, fn };
    this.stack.push(entry);
    return async () => {
      const i = this.stack.indexOf(entry);
      if (i < 0) return;
      this.stack.splice(i, 1);
      await entry.fn();
    };
  }

  /** Kill a child by PID at cleanup time (SIGTERM, SIGKILL after 3 s). */
  process(what: string, pid: number | undefined): () => Promise<void> {
    if (pid) this.pids.push(pid);
    return this.add(what, () => killPid(pid));
  }

  mounts(dir: string): () => Promise<void> {
    return this.add(`mounts under ${dir}`, () => unmountUnder(dir));
  }

  async run(): Promise<void> {
    while (this.stack.length > 0) {
      const u = this.stack.pop();
      if (!u) break;
      try {
        await u.fn();
      } catch (err) {
        process.stderr.write(`[bench] cleanup of ${u.what} failed: ${(err as Error).message}\n`);
      }
    }
  }
}

export async function killPid(pid: number | undefined, graceMs = 3000): Promise<void> {
  if (!pid) return;
  const alive = (): boolean => {
    try {
      process.kill(pid, 0);
      return true;
    } catch {
      return false;
    }
  };
  if (!alive()) return;
  try {
    process.kill(pid, 'SIGTERM');
  } catch {
    return;
  }
  const until = Date.now() + graceMs;
  while (alive() && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  if (alive()) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
}
