// The Event correlator with plain data and a fake clock: identical events patch a count, similar ones
// collapse after 10, a token bucket per object and reason caps writes, every map stays bounded.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type AggregationState, COMBINED_PREFIX, DEFAULT_AGGREGATION, type Decision, type EventIntent, type ObjectRef,
  decide, emptyAggregationState, eventName,
} from '../../src/kube/event-aggregation.js';

const SOURCE = { component: 's3fs.csi.dev', host: 'node-a', reportingController: 's3fs.csi.dev', reportingInstance: 'node-a' };
const T0 = Date.UTC(2025, 0, 1, 12, 0, 0);
const pod = (name = 'app-0', uid = `uid-${name}`): ObjectRef => ({ kind: 'Pod', apiVersion: 'v1', namespace: 'team-a', name, uid, resourceVersion: '42' });
const recovered = (message: string, object = pod()): EventIntent => ({ object, type: 'Normal', reason: 'VolumeRecovered', message });

/** Feeds intents one by one (each `stepMs` after the previous) and returns every decision. */
function run(intents: EventIntent[], o: { stepMs?: number; start?: number; state?: AggregationState } = {}): { decisions: Decision[]; state: AggregationState } {
  let state = o.state ?? emptyAggregationState();
  const decisions: Decision[] = [];
  intents.forEach((intent, i) => {
    const r = decide(intent, SOURCE, (o.start ?? T0) + i * (o.stepMs ?? 1000), state);
    decisions.push(r.decision);
    state = r.state;
  });
  return { decisions, state };
}
const kinds = (ds: Decision[]): string[] => ds.map((d) => d.kind);
const objects = (ds: Decision[]): Set<string> => new Set(ds.filter((d) => d.kind !== 'drop').map((d) => d.event.metadata.name));

describe('event aggregation (client-go EventCorrelator semantics)', () => {
  it('a first event is created as client-go writes it: involvedObject, source, reporting*, timestamps, count 1', () => {
    const { decision } = decide(recovered('volume pv-1 recovered'), SOURCE, T0, emptyAggregationState());
    assert.equal(decision.kind, 'create');
    const e = decision.event;
    assert.deepEqual(e.involvedObject, pod());
    assert.equal(e.metadata.namespace, 'team-a');
    assert.match(e.metadata.name, /^app-0\.[0-9a-f]+$/);
    assert.deepEqual([e.type, e.reason, e.message, e.count], ['Normal', 'VolumeRecovered', 'volume pv-1 recovered', 1]);
    assert.deepEqual(e.source, { component: 's3fs.csi.dev', host: 'node-a' });
    assert.deepEqual([e.reportingComponent, e.reportingInstance], ['s3fs.csi.dev', 'node-a']);
    assert.equal(e.firstTimestamp, new Date(T0).toISOString());
    assert.equal(e.lastTimestamp, e.firstTimestamp);
  });

  it('identical events patch the same Event: count grows, firstTimestamp stays, lastTimestamp moves', () => {
    const { decisions } = run([recovered('m'), recovered('m'), recovered('m')]);
    assert.deepEqual(kinds(decisions), ['create', 'patch', 'patch']);
    assert.equal(objects(decisions).size, 1);
    const last = decisions[2];
    assert.ok(last?.kind === 'patch');
    assert.deepEqual(last.patch, { count: 3, lastTimestamp: new Date(T0 + 2000).toISOString(), message: 'm' });
    assert.equal(last.event.firstTimestamp, new Date(T0).toISOString());
    assert.equal(last.event.count, 3, 'the full Event carries the count too (created again if the patch finds it expired)');
  });

  it('similar events (same object and reason, other messages): 9 written as they are, then one combined Event whose count grows', () => {
    const { decisions } = run(Array.from({ length: 15 }, (_, i) => recovered(`recovered in ${i} ms`)));
    assert.deepEqual(kinds(decisions), [...Array(10).fill('create'), ...Array(5).fill('patch')]);
    assert.equal(objects(decisions).size, 10);
    const tenth = decisions[9];
    assert.equal(tenth?.event.message, `${COMBINED_PREFIX}recovered in 9 ms`);
    const last = decisions[14];
    assert.ok(last?.kind === 'patch');
    assert.equal(last.event.metadata.name, tenth?.event.metadata.name);
    assert.deepEqual([last.patch.count, last.patch.message], [6, `${COMBINED_PREFIX}recovered in 14 ms`]);
  });

  it('a message seen before the threshold keeps patching its own Event', () => {
    const { decisions } = run([recovered('a'), recovered('b'), recovered('a')]);
    assert.deepEqual(kinds(decisions), ['create', 'create', 'patch']);
    assert.equal(decisions[2]?.event.metadata.name, decisions[0]?.event.metadata.name);
  });

  it('the similarity window (10 minutes) starts afresh: messages are written as they are again', () => {
    const first = run(Array.from({ length: 10 }, (_, i) => recovered(`m${i}`)));
    assert.ok(first.decisions[9]?.event.message.startsWith(COMBINED_PREFIX));
    const later = run([recovered('new one')], { start: T0 + 9000 + DEFAULT_AGGREGATION.similarWindowMs + 1, state: first.state });
    assert.equal(later.decisions[0]?.event.message, 'new one');
  });

  it('objects and reasons are aggregated apart: other pods, the PVC and Warnings are never folded into one another', () => {
    const claim: ObjectRef = { kind: 'PersistentVolumeClaim', apiVersion: 'v1', namespace: 'team-a', name: 'data-0', uid: 'pvc-uid' };
    const { decisions } = run([
      recovered('m'), recovered('m', pod('app-1')), recovered('m', claim),
      { object: pod(), type: 'Warning', reason: 'SecretUnreadable', message: 'm' },
    ]);
    assert.deepEqual(kinds(decisions), ['create', 'create', 'create', 'create']);
  });

  it('spam filter: 25 writes per object and reason, then drops; one more every 5 minutes; the count keeps the true number', () => {
    const { decisions, state } = run(Array.from({ length: 40 }, () => recovered('same')), { stepMs: 10 });
    assert.deepEqual(kinds(decisions).filter((k) => k !== 'drop').length, 25);
    assert.ok(decisions.slice(25).every((d) => d.kind === 'drop' && d.cause === 'spam'));
    const soon = run([recovered('same')], { start: T0 + 400 + 60_000, state });
    assert.equal(soon.decisions[0]?.kind, 'drop', 'no token back within a minute');
    const later = run([recovered('same')], { start: T0 + 400 + DEFAULT_AGGREGATION.spamRefillMs, state: soon.state });
    const d = later.decisions[0];
    assert.ok(d?.kind === 'patch');
    assert.equal(d.patch.count, 42, 'every occurrence counted, written or not');
  });

  it('a storm of 50 repairs with distinct messages on one pod: at most 10 Event objects and 25 writes', () => {
    const { decisions } = run(Array.from({ length: 50 }, (_, i) => recovered(`volume pv-1 recovered after s3fs exit in ${100 + i} ms`)), { stepMs: 500 });
    assert.equal(objects(decisions).size, 10);
    assert.equal(decisions.filter((d) => d.kind !== 'drop').length, 25);
  });

  it('state is immutable (a decision never changes the state it was given) and every map is bounded', () => {
    const before = emptyAggregationState();
    decide(recovered('m'), SOURCE, T0, before);
    assert.deepEqual([before.observed.size, before.similar.size, before.buckets.size, before.seq], [0, 0, 0, 0]);
    let state = before;
    for (let i = 0; i < 50; i++) state = decide(recovered('m', pod(`p${i}`)), SOURCE, T0 + i, state, { ...DEFAULT_AGGREGATION, cacheSize: 8 }).state;
    assert.deepEqual([state.observed.size, state.similar.size, state.buckets.size], [8, 8, 8]);
    assert.ok(state.observed.has(['Pod', 'team-a', 'p49', 'uid-p49', 'Normal', 'VolumeRecovered', 'm'].join('\u0000')), 'the most recent entries stay');
  });

  it('event names: <object>.<hex>, unique within a millisecond, at most 253 characters', () => {
    assert.notEqual(eventName('app', T0, 1), eventName('app', T0, 2));
    assert.ok(eventName('x'.repeat(253), T0, 1).length <= 253);
    const { decisions } = run([recovered('a'), recovered('b')], { stepMs: 0 });
    assert.equal(objects(decisions).size, 2);
  });
});
