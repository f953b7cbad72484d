// The Event recorder against a fake sink: record() never waits or throws, the queue is bounded, transient
// failures are retried, a missing RBAC rule drops (counted, logged once), an expired Event is created
// again, and no secret value reaches a message.
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import type { EventBody, EventIntent } from '../../src/kube/event-aggregation.js';
import { type EventSink, EventRecorder, EventWriteError, onWriteFailure } from '../../src/kube/events.js';
import { createLogger } from '../../src/log.js';
import { Metrics } from '../../src/metrics.js';

const SOURCE = { component: 's3fs.csi.dev', host: 'node-a', reportingController: 's3fs.csi.dev', reportingInstance: 'node-a' };
const intent = (message: string, name = 'app-0'): EventIntent => ({
  object: { kind: 'Pod', apiVersion: 'v1', namespace: 'team-a', name, uid: `uid-${name}` }, type: 'Normal', reason: 'VolumeRecovered', message,
});

type Call = { op: 'create'; event: EventBody } | { op: 'patch'; name: string; patch: { count: number; message: string } };

/** Records calls; `fail(call, n)` decides a failure (an HTTP status, 'hang', or undefined = success). */
function fakeSink(fail: (c: Call, n: number) => number | 'hang' | 'network' | undefined = () => undefined): EventSink & { calls: Call[] } {
  const calls: Call[] = [];
  const act = async (c: Call): Promise<void> => {
    calls.push(c);
    const f = fail(c, calls.length);
    if (f === 'hang') return new Promise(() => undefined);
    if (f === 'network') throw new EventWriteError(undefined, 'ECONNREFUSED');
    if (f !== undefined) throw new EventWriteError(f, `HTTP ${f}`);
  };
  return {
    calls,
    create: (event) => act({ op: 'create', event }),
    patch: (_ns, name, patch) => act({ op: 'patch', name, patch }),
  };
}

function logSink(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  return { lines, stream: new Writable({ write(chunk: Buffer, _e, cb) { lines.push(chunk.toString()); cb(); } }) };
}

function recorder(sink: EventSink, o: { queueSize?: number; maxTries?: number; secrets?: () => string[] } = {}) {
  const metrics = new Metrics('s3fs.csi.dev');
  const log = logSink();
  const rec = new EventRecorder({ sink, source: SOURCE, metrics, log: createLogger('debug', log.stream), retryBaseMs: 5, ...o });
  const counter = async (name: string): Promise<Record<string, number>> => {
    const m = (await metrics.registry.getSingleMetric(name)?.get())?.values ?? [];
    return Object.fromEntries(m.map((v) => [Object.values(v.labels).join(','), v.value]));
  };
  return { rec, metrics, log, counter };
}

async function drained(rec: EventRecorder, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (rec.pending > 0 && Date.now() < end) await sleep(5);
  assert.equal(rec.pending, 0, 'queue drained');
}

describe('event recorder', () => {
  it('writes a create, then patches for repeats; counts written events by type and reason', async () => {
    const sink = fakeSink();
    const { rec, counter } = recorder(sink);
    rec.record(intent('m'));
    rec.record(intent('m'));
    await drained(rec);
    assert.deepEqual(sink.calls.map((c) => c.op), ['create', 'patch']);
    assert.deepEqual(await counter('s3fs_csi_events_written_total'), { 'Normal,VolumeRecovered': 2 });
  });

  it('record() returns at once while the API hangs; a full queue drops its oldest and counts it', async () => {
    const sink = fakeSink(() => 'hang');
    const { rec, counter } = recorder(sink, { queueSize: 5 });
    const started = performance.now();
    for (let i = 0; i < 20; i++) rec.record(intent(`m${i}`, `p${i}`));
    assert.ok(performance.now() - started < 200, 'never waits for the API');
    assert.equal(rec.pending, 6, '5 queued + 1 being written');
    assert.deepEqual(await counter('s3fs_csi_events_dropped_total'), { 'queue-full': 14 });
    await rec.close(10);
    assert.deepEqual(await counter('s3fs_csi_events_dropped_total'), { 'queue-full': 14, shutdown: 5 });
  });

  it('transient failures (no answer, 5xx, 429) are retried with backoff; after maxTries the Event is dropped as unavailable', async () => {
    const sink = fakeSink((_c, n) => (n === 1 ? 'network' : n === 2 ? 503 : n === 3 ? 429 : undefined));
    const { rec, counter } = recorder(sink);
    rec.record(intent('m'));
    await drained(rec);
    assert.equal(sink.calls.length, 4);
    assert.deepEqual(await counter('s3fs_csi_events_written_total'), { 'Normal,VolumeRecovered': 1 });

    const down = fakeSink(() => 500);
    const r2 = recorder(down, { maxTries: 3 });
    r2.rec.record(intent('m'));
    await drained(r2.rec);
    assert.equal(down.calls.length, 3);
    assert.deepEqual(await r2.counter('s3fs_csi_events_dropped_total'), { unavailable: 1 });
  });

  it('RBAC without events (403): dropped at once, counted as forbidden, one warning naming the rule', async () => {
    const sink = fakeSink(() => 403);
    const { rec, counter, log } = recorder(sink);
    for (let i = 0; i < 5; i++) rec.record(intent(`m${i}`));
    await drained(rec);
    assert.equal(sink.calls.length, 5, 'no retries');
    assert.deepEqual(await counter('s3fs_csi_events_dropped_total'), { forbidden: 5 });
    const warnings = log.lines.filter((l) => l.includes('"level":"warn"'));
    assert.equal(warnings.length, 1);
    assert.match(warnings[0] ?? '', /resources: \[\\"events\\"\], verbs: \[\\"create\\", \\"patch\\"\]/);
  });

  it('a patch of an Event the API has expired (404) creates it again with the full count', async () => {
    const sink = fakeSink((c) => (c.op === 'patch' ? 404 : undefined));
    const { rec } = recorder(sink);
    for (let i = 0; i < 3; i++) rec.record(intent('m'));
    await drained(rec);
    assert.deepEqual(sink.calls.map((c) => c.op), ['create', 'patch', 'create', 'patch', 'create']);
    const last = sink.calls.at(-1);
    assert.ok(last?.op === 'create');
    assert.equal(last.event.count, 3);
  });

  it('other 4xx (invalid, conflict) are dropped as rejected, without retries', async () => {
    const sink = fakeSink(() => 422);
    const { rec, counter } = recorder(sink);
    rec.record(intent('m'));
    await drained(rec);
    assert.equal(sink.calls.length, 1);
    assert.deepEqual(await counter('s3fs_csi_events_dropped_total'), { rejected: 1 });
  });

  it('never throws into recovery, whatever the sink does', async () => {
    const sink: EventSink = { create: () => { throw new Error('sync boom'); }, patch: () => { throw new Error('sync boom'); } };
    const { rec } = recorder(sink, { maxTries: 2 });
    assert.doesNotThrow(() => rec.record(intent('m')));
    await drained(rec);
    await rec.close(10);
    assert.doesNotThrow(() => rec.record(intent('after close')));
  });

  it('no secret in any message: the volume\'s values and the driver\'s defaults are scrubbed', async () => {
    const sink = fakeSink();
    const { rec } = recorder(sink, { secrets: () => ['DEFAULTSECRETKEY'] });
    rec.record(intent('S3 said: key AKIAVOLUMEKEY secret s3cr3t/VALUE and DEFAULTSECRETKEY'), ['AKIAVOLUMEKEY', 's3cr3t/VALUE']);
    await drained(rec);
    const c = sink.calls[0];
    assert.ok(c?.op === 'create');
    assert.equal(c.event.message, 'S3 said: key [REDACTED] secret [REDACTED] and [REDACTED]');
  });

  it('messages are cut at 1024 characters', async () => {
    const sink = fakeSink();
    const { rec } = recorder(sink);
    rec.record(intent('x'.repeat(5000)));
    await drained(rec);
    const c = sink.calls[0];
    assert.ok(c?.op === 'create');
    assert.equal(c.event.message.length, 1024);
  });

  it('what a failed write leads to (pure)', () => {
    assert.deepEqual(onWriteFailure(undefined, 'create'), { kind: 'retry' });
    assert.deepEqual(onWriteFailure(503, 'patch'), { kind: 'retry' });
    assert.deepEqual(onWriteFailure(429, 'create'), { kind: 'retry' });
    assert.deepEqual(onWriteFailure(404, 'patch'), { kind: 'create-instead' });
    assert.deepEqual(onWriteFailure(404, 'create'), { kind: 'drop', cause: 'rejected' }, 'namespace gone');
    assert.deepEqual(onWriteFailure(403, 'create'), { kind: 'drop', cause: 'forbidden' });
    assert.deepEqual(onWriteFailure(401, 'patch'), { kind: 'drop', cause: 'forbidden' });
    assert.deepEqual(onWriteFailure(409, 'create'), { kind: 'drop', cause: 'rejected' });
  });
});
