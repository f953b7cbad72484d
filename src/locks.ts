// Per-key serialisation (per volume id / name): operations on one volume queue behind each other,
// different volumes run in parallel. A waiter gives up with ABORTED when its call is cancelled or
// its deadline passes, which is what the CSI spec asks for an operation already in flight.
import { aborted } from './errors.js';

export class KeyedMutex {
  readonly #tails = new Map<string, Promise<void>>();

  async run<T>(key: string, fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => mine);
    this.#tails.set(key, tail);
    try {
      await waitOrAbort(previous, signal, key);
      return await fn();
    } finally {
      release();
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }

  get size(): number {
    return this.#tails.size;
  }
}

function waitOrAbort(p: Promise<void>, signal: AbortSignal | undefined, key: string): Promise<void> {
  if (!signal) return p;
  if (signal.aborted) return Promise.reject(aborted(`an operation on ${key} is already in progress`));
  return new Promise((resolve, reject) => {
    const onAbort = (): void => reject(aborted(`an operation on ${key} is already in progress`));
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(() => {
      signal.removeEventListener('abort', onAbort);
      resolve();
    }, reject);
  });
}
