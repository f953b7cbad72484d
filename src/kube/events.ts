// The Event recorder: the acting half of Events (the deciding half is event-aggregation.ts). record()
// only decides (pure, synchronous) and enqueues; one writer drains the bounded queue against the API.
// Nothing here may slow or fail a repair: record() never awaits and never throws, a full queue drops
// its oldest entry, transient API errors are retried with backoff a few times and then dropped, and
// every drop is counted (s3fs_csi_events_dropped_total{cause}). core/v1 Events (docs/recovery.md
// says why): a repeat PATCHes count/lastTimestamp/message with a JSON merge patch; a patch of an
// Event the API has already expired (404) creates it again.
import { ApiException, CoreV1Api, type CoreV1Event, PatchStrategy, setHeaderOptions } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { scrub } from '../secrets.js';
import { loadKubeConfig, withDeadline } from './client.js';
import {
  type AggregationOptions, type AggregationState, DEFAULT_AGGREGATION, type Decision, type EventBody, type EventIntent, type EventSource,
  decide, emptyAggregationState,
} from './event-aggregation.js';

/** Where Events go: the API (apiEventSink) or, in tests, anything that records calls. */
export interface EventSink {
  create(event: EventBody): Promise<void>;
  patch(namespace: string, name: string, patch: { count: number; lastTimestamp: string; message: string }): Promise<void>;
}

/** A failed write; `status` is the HTTP status, undefined when the API did not answer. */
export class EventWriteError extends Error {
  constructor(readonly status: number | undefined, message: string) {
    super(message);
    this.name = 'EventWriteError';
  }
}

export type DropCause = 'spam' | 'queue-full' | 'forbidden' | 'rejected' | 'unavailable' | 'shutdown';
export type FailureAction = { kind: 'retry' } | { kind: 'create-instead' } | { kind: 'drop'; cause: DropCause };

/** Pure: what to do after a write failed with `status` (undefined = no answer: network, timeout). */
export function onWriteFailure(status: number | undefined, op: 'create' | 'patch'): FailureAction {
  if (status === undefined || status === 429 || status >= 500) return { kind: 'retry' };
  if (status === 404 && op === 'patch') return { kind: 'create-instead' };
  // 401 included: the token is the driver's own; no point hammering the API with it.
  if (status === 403 || status === 401) return { kind: 'drop', cause: 'forbidden' };
  return { kind: 'drop', cause: 'rejected' };
}

export interface RecorderOptions {
  sink: EventSink;
  source: EventSource;
  metrics: Metrics;
  log: Logger;
  /** ms since the epoch; tests pass a fake clock. */
  clock?: () => number;
  queueSize?: number;
  /** Writes of one Event (the first included) before a transient failure drops it. */
  maxTries?: number;
  retryBaseMs?: number;
  aggregation?: AggregationOptions;
  /** Texts that must never appear in a message (the driver's default keys). */
  secrets?: () => Iterable<string>;
}

/** What the writer works on: the decisions that do write. */
type Write = Exclude<Decision, { kind: 'drop' }>;

/** core/v1 Event messages are cut here, as kubelet's recorder cuts them. */
export const MAX_MESSAGE = 1024;

export class EventRecorder {
  readonly #o: Required<Omit<RecorderOptions, 'secrets'>> & Pick<RecorderOptions, 'secrets'>;
  #state: AggregationState = emptyAggregationState();
  readonly #queue: Write[] = [];
  #writing: Promise<void> | undefined;
  #closed = false;
  #forbiddenLogged = false;
  #wake: (() => void) | undefined;

  constructor(o: RecorderOptions) {
    this.#o = {
      clock: Date.now, queueSize: 1000, maxTries: 5, retryBaseMs: 500, aggregation: DEFAULT_AGGREGATION, ...o,
    };
  }

  /** Decides and enqueues; returns at once. Never throws: an Event is never worth a failed repair. */
  record(intent: EventIntent, secrets: Iterable<string> = []): void {
    try {
      if (this.#closed) return this.#drop('shutdown');
      const message = scrub(scrub(intent.message, secrets), this.#o.secrets?.() ?? []).slice(0, MAX_MESSAGE);
      const { decision, state } = decide({ ...intent, message }, this.#o.source, this.#o.clock(), this.#state, this.#o.aggregation);
      this.#state = state;
      if (decision.kind === 'drop') return this.#drop(decision.cause);
      if (this.#queue.length >= this.#o.queueSize) {
        this.#queue.shift();
        this.#drop('queue-full');
      }
      this.#queue.push(decision);
      this.#kick();
    } catch (err) {
      this.#o.log.error({ err: errorMessage(err) }, 'cannot record a Kubernetes Event');
    }
  }

  /** Events waiting to be written (for tests and the shutdown flush). */
  get pending(): number {
    return this.#queue.length + (this.#writing ? 1 : 0);
  }

  /** Stops accepting Events and waits up to `waitMs` for the queue to drain; what is left is dropped. */
  async close(waitMs = 2000): Promise<void> {
    this.#closed = true;
    this.#wake?.(); // a write waiting to retry gives up now
    const deadline = Date.now() + waitMs;
    while (this.#writing && Date.now() < deadline) await Promise.race([this.#writing, sleep(Math.max(1, deadline - Date.now()))]);
    for (let n = this.#queue.splice(0).length; n > 0; n--) this.#drop('shutdown');
  }

  #drop(cause: DropCause): void {
    this.#o.metrics.eventsDropped.inc({ cause });
  }

  #kick(): void {
    if (this.#writing) return;
    this.#writing = this.#drain().finally(() => {
      this.#writing = undefined;
      if (this.#queue.length > 0 && !this.#closed) this.#kick();
    });
  }

  async #drain(): Promise<void> {
    for (let d = this.#queue.shift(); d; d = this.#queue.shift()) {
      try {
        await this.#write(d);
      } catch (err) {
        this.#o.log.error({ err: errorMessage(err) }, 'Kubernetes Event writer failed');
      }
    }
  }

  async #write(d: Write): Promise<void> {
    let op: 'create' | 'patch' = d.kind;
    for (let attempt = 1; ; attempt++) {
      try {
        if (op === 'patch' && d.kind === 'patch') await this.#o.sink.patch(d.event.metadata.namespace, d.event.metadata.name, d.patch);
        else await this.#o.sink.create(d.event);
        this.#o.metrics.eventsWritten.inc({ type: d.event.type, reason: d.event.reason });
        return;
      } catch (err) {
        const status = err instanceof EventWriteError ? err.status : undefined;
        const next = onWriteFailure(status, op);
        if (next.kind === 'create-instead') {
          op = 'create';
          continue;
        }
        if (next.kind === 'retry' && attempt < this.#o.maxTries && !this.#closed) {
          await this.#backoff(attempt);
          continue;
        }
        const cause: DropCause = next.kind === 'drop' ? next.cause : this.#closed ? 'shutdown' : 'unavailable';
        this.#drop(cause);
        this.#logDrop(cause, d.event, err);
        return;
      }
    }
  }

  /** Exponential with jitter; cut short by close(). */
  #backoff(attempt: number): Promise<void> {
    const ms = this.#o.retryBaseMs * 2 ** (attempt - 1) * (0.8 + Math.random() * 0.4);
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      t.unref();
      this.#wake = () => {
        clearTimeout(t);
        resolve();
      };
    });
  }

  #logDrop(cause: DropCause, e: EventBody, err: unknown): void {
    const fields = { cause, reason: e.reason, object: `${e.involvedObject.kind} ${e.involvedObject.namespace}/${e.involvedObject.name}`, err: errorMessage(err) };
    // A missing RBAC rule would otherwise log once per Event: say it once, loudly, then quietly.
    if (cause === 'forbidden') {
      if (this.#forbiddenLogged) return this.#o.log.debug(fields, 'Kubernetes Event dropped');
      this.#forbiddenLogged = true;
      return this.#o.log.warn({ ...fields, needs: '{apiGroups: [""], resources: ["events"], verbs: ["create", "patch"]}' }, 'Kubernetes Events cannot be written (RBAC): recovery goes on without them');
    }
    this.#o.log.warn(fields, 'Kubernetes Event dropped');
  }
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms).unref());

/** Writes to the API with the same credentials as recovery's reads (--kubeconfig or in-cluster). */
export function apiEventSink(o: { kubeconfig?: string; timeoutMs?: number } = {}): EventSink {
  const core = loadKubeConfig(o.kubeconfig).makeApiClient(CoreV1Api);
  const timeoutMs = o.timeoutMs ?? 10_000;
  const call = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
    try {
      await withDeadline(fn, timeoutMs, () => new EventWriteError(undefined, `API server did not answer within ${timeoutMs} ms (${what})`));
    } catch (err) {
      if (err instanceof EventWriteError) throw err;
      if (err instanceof ApiException) throw new EventWriteError(err.code, `${what}: HTTP ${err.code}`);
      throw new EventWriteError(undefined, `${what}: ${errorMessage(err)}`);
    }
  };
  return {
    create: (e) => call(`create event ${e.metadata.namespace}/${e.metadata.name}`, () => core.createNamespacedEvent({
      namespace: e.metadata.namespace,
      body: { ...e, firstTimestamp: new Date(e.firstTimestamp), lastTimestamp: new Date(e.lastTimestamp) } satisfies CoreV1Event,
    })),
    patch: (namespace, name, patch) => call(`patch event ${namespace}/${name}`, () => core.patchNamespacedEvent(
      { namespace, name, body: patch },
      setHeaderOptions('Content-Type', PatchStrategy.MergePatch),
    )),
  };
}
