// Coalesced reads of a source that changes (the mount table, /proc): every caller gets the result of
// a read that STARTED AFTER it asked, so it sees every change it made before asking; callers that ask
// while a read is running share the next one. N concurrent callers thus cost at most two reads
// instead of N (each mountinfo read is O(mounts): one per caller made recovery O(n²)).
export class SharedRead<T> {
  readonly #read: () => Promise<T>;
  #running: Promise<T> | undefined;
  #next: Promise<T> | undefined;
  /** Reads actually made (for tests and logs). */
  reads = 0;

  constructor(read: () => Promise<T>) {
    this.#read = read;
  }

  get(): Promise<T> {
    // A next read is queued and has not started yet: it is fresh for this caller too.
    if (this.#next) return this.#next;
    if (!this.#running) return this.#start();
    // A read is running: it may have started before our caller's change, so wait for the next one.
    this.#next ??= this.#running.then(noop, noop).then(() => {
      this.#next = undefined;
      return this.#start();
    });
    return this.#next;
  }

  #start(): Promise<T> {
    this.reads++;
    let p: Promise<T>;
    try {
      p = this.#read();
    } catch (err) {
      p = Promise.reject(err as Error);
    }
    this.#running = p;
    const clear = (): void => {
      if (this.#running === p) this.#running = undefined;
    };
    p.then(clear, clear);
    return p;
  }
}

const noop = (): void => undefined;
