// Work that must not be cut off by a shutdown: the CSI handlers in flight and recovery's repairs.
// Both stop the same way: wait a grace period, then abort what is still running (a half-done mount
// is undone, never left behind unrecorded) and give it a bounded time to finish undoing.

export class RunningTasks {
  readonly #running = new Set<Promise<void>>();
  readonly #abort = new AbortController();

  /** Aborted once drain() gives up waiting. */
  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get size(): number {
    return this.#running.size;
  }

  /** Counts `p` as running until it settles; returns `p`. */
  track<T>(p: Promise<T>): Promise<T> {
    const forget = (): void => void this.#running.delete(settled);
    const settled: Promise<void> = p.then(forget, forget);
    this.#running.add(settled);
    return p;
  }

  /** Waits up to `graceMs` for the running tasks, then aborts the rest and waits up to `cleanupMs`. */
  async drain(graceMs: number, cleanupMs: number): Promise<void> {
    const settledWithin = (ms: number): Promise<unknown> =>
      Promise.race([Promise.allSettled([...this.#running]), new Promise((r) => setTimeout(r, ms).unref())]);
    if (graceMs > 0) await settledWithin(graceMs);
    if (this.#running.size === 0) return;
    this.#abort.abort(new Error('driver shutting down'));
    await settledWithin(cleanupMs);
  }
}
