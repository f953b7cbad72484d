// Kubernetes Event correlation: PURE. One event to record + the correlator's state + the clock in;
// what to write (create a new Event, patch an existing one's count, or drop it) + the next state out.
// The semantics are those of client-go's EventCorrelator, which kubelet's recorder uses, so a storm
// of repairs looks in `kubectl describe` like any other component's storm:
//   identical (same object, type, reason, message) -> PATCH the existing Event: count+1, lastTimestamp
//   similar   (same object, type, reason; another message) -> the first maxSimilar-1 distinct messages
//             within the window are written as they are; from then on they collapse into one
//             "(combined from similar events): <latest message>" Event whose count grows
//   spam      a token bucket per (object, reason): `spamBurst` writes, then one per `spamRefillMs`;
//             beyond that the write is dropped, but the count keeps growing, so the next write that
//             gets through carries the true number of occurrences
// Every map is an LRU bounded by `cacheSize`: a node with thousands of pods cannot grow it unbounded.

export type ObjectKind = 'Pod' | 'PersistentVolumeClaim';

/** The object an Event is about: what client-go's GetReference puts into involvedObject. */
export interface ObjectRef {
  kind: ObjectKind;
  apiVersion: 'v1';
  namespace: string;
  name: string;
  uid: string;
  resourceVersion?: string;
}

export type WarningReason = 'SecretUnreadable' | 'RBACMissing' | 'BucketMissing' | 'S3AccessDenied';

/** Type and reason travel together: a Normal event can only say VolumeRecovered, and so on. */
export type EventKind = { type: 'Normal'; reason: 'VolumeRecovered' } | { type: 'Warning'; reason: WarningReason };

export type EventIntent = EventKind & { object: ObjectRef; message: string };

/** Who writes: source (component, host) and reportingComponent/reportingInstance of the Event. */
export interface EventSource {
  component: string;
  host: string;
  reportingController: string;
  reportingInstance: string;
}

/** A core/v1 Event as JSON (timestamps as RFC 3339 strings), ready for the API. */
export interface EventBody {
  apiVersion: 'v1';
  kind: 'Event';
  metadata: { name: string; namespace: string };
  involvedObject: ObjectRef;
  type: EventKind['type'];
  reason: EventKind['reason'];
  message: string;
  source: { component: string; host: string };
  reportingComponent: string;
  reportingInstance: string;
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
}

export type Decision =
  | { kind: 'create'; event: EventBody }
  /** `event` is the whole Event with the new count: created instead when the patched one is gone (expired). */
  | { kind: 'patch'; event: EventBody; patch: { count: number; lastTimestamp: string; message: string } }
  | { kind: 'drop'; cause: 'spam'; event: EventBody };

export interface AggregationOptions {
  /** Distinct messages per (object, type, reason) within the window before they are combined. */
  maxSimilar: number;
  similarWindowMs: number;
  spamBurst: number;
  /** One token back per this many ms. */
  spamRefillMs: number;
  cacheSize: number;
}

/** client-go's defaults (10 similar in 10 minutes; 25 per object, then one per 5 minutes; 4096 entries). */
export const DEFAULT_AGGREGATION: AggregationOptions = {
  maxSimilar: 10,
  similarWindowMs: 600_000,
  spamBurst: 25,
  spamRefillMs: 300_000,
  cacheSize: 4096,
};

interface Observed {
  name: string;
  count: number;
  firstTimestamp: string;
}
interface Similar {
  messages: readonly string[];
  lastMs: number;
}
interface Bucket {
  tokens: number;
  updatedMs: number;
}

export interface AggregationState {
  /** Event key (identical events) or aggregate key (combined event) -> the Event written for it. */
  readonly observed: ReadonlyMap<string, Observed>;
  readonly similar: ReadonlyMap<string, Similar>;
  readonly buckets: ReadonlyMap<string, Bucket>;
  /** Makes names unique among events decided within the same millisecond. */
  readonly seq: number;
}

export const emptyAggregationState = (): AggregationState => ({ observed: new Map(), similar: new Map(), buckets: new Map(), seq: 0 });

export const COMBINED_PREFIX = '(combined from similar events): ';

const objectKey = (o: ObjectRef): string => [o.kind, o.namespace, o.name, o.uid].join('\u0000');
const aggregateKey = (e: EventIntent): string => [objectKey(e.object), e.type, e.reason].join('\u0000');
const eventKey = (e: EventIntent): string => [aggregateKey(e), e.message].join('\u0000');

/** Copy of `m` with `k` set as the most recently used entry, the oldest evicted beyond `cap`. */
function lruSet<V>(m: ReadonlyMap<string, V>, k: string, v: V, cap: number): Map<string, V> {
  const out = new Map(m);
  out.delete(k);
  out.set(k, v);
  while (out.size > cap) {
    const oldest = out.keys().next().value;
    if (oldest === undefined) break;
    out.delete(oldest);
  }
  return out;
}

/** `<object name>.<hex nanoseconds>` like client-go; the object part is cut so the name stays <= 253. */
export function eventName(objectName: string, nowMs: number, seq: number): string {
  const suffix = (BigInt(Math.floor(nowMs)) * 1_000_000n + BigInt(seq % 1_000_000)).toString(16);
  return `${objectName.slice(0, 253 - suffix.length - 1)}.${suffix}`;
}

export function decide(intent: EventIntent, source: EventSource, nowMs: number, state: AggregationState, o: AggregationOptions = DEFAULT_AGGREGATION): { decision: Decision; state: AggregationState } {
  const now = new Date(nowMs).toISOString();

  // Similar events: past maxSimilar distinct messages in the window, one combined Event.
  const aKey = aggregateKey(intent);
  const prev = state.similar.get(aKey);
  const fresh = prev && nowMs - prev.lastMs <= o.similarWindowMs ? prev.messages : [];
  const messages = fresh.includes(intent.message) || fresh.length >= o.maxSimilar ? fresh : [...fresh, intent.message];
  const combined = messages.length >= o.maxSimilar;
  const key = combined ? aKey : eventKey(intent);
  const message = combined ? `${COMBINED_PREFIX}${intent.message}` : intent.message;

  // Identical events (or the combined one): the same Event object, one more occurrence.
  const seen = state.observed.get(key);
  const seq = state.seq + 1;
  const observed: Observed = seen
    ? { name: seen.name, count: seen.count + 1, firstTimestamp: seen.firstTimestamp }
    : { name: eventName(intent.object.name, nowMs, seq), count: 1, firstTimestamp: now };
  const event: EventBody = {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name: observed.name, namespace: intent.object.namespace },
    involvedObject: { ...intent.object },
    type: intent.type,
    reason: intent.reason,
    message,
    source: { component: source.component, host: source.host },
    reportingComponent: source.reportingController,
    reportingInstance: source.reportingInstance,
    firstTimestamp: observed.firstTimestamp,
    lastTimestamp: now,
    count: observed.count,
  };

  // Spam filter: every write (create or patch) costs a token of the object's bucket for this reason.
  const sKey = `${objectKey(intent.object)}\u0000${intent.reason}`;
  const b = state.buckets.get(sKey);
  const refilled = b ? Math.min(o.spamBurst, b.tokens + Math.max(0, nowMs - b.updatedMs) / o.spamRefillMs) : o.spamBurst;
  const allowed = refilled >= 1;
  const bucket: Bucket = { tokens: allowed ? refilled - 1 : refilled, updatedMs: nowMs };

  const next: AggregationState = {
    observed: lruSet(state.observed, key, observed, o.cacheSize),
    similar: lruSet(state.similar, aKey, { messages, lastMs: nowMs }, o.cacheSize),
    buckets: lruSet(state.buckets, sKey, bucket, o.cacheSize),
    seq,
  };
  let decision: Decision;
  if (!allowed) decision = { kind: 'drop', cause: 'spam', event };
  else if (seen) decision = { kind: 'patch', event, patch: { count: event.count, lastTimestamp: now, message } };
  else decision = { kind: 'create', event };
  return { decision, state: next };
}
