// Pure parts of the mounter split: the handshake decision, the event -> recovery mapping, the wire
// conversions and the typed event channel.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EventChannel, type EngineEvent, type StageSpec, type StagedRecord } from '../../src/mount/index.js';
import { type MounterHello, judgeMounter } from '../../src/mounter/protocol.js';
import { eventFromWire, exitToWire, helloFromWire, helloToWire, publishResultFromWire, recordFromWire, recordToWire, specFromWire, specToWire, stageResultFromWire } from '../../src/mounter/wire.js';
import { reactionTo } from '../../src/recovery/triggers.js';
import { Secret } from '../../src/secrets.js';

const hello = (o: Partial<MounterHello> = {}): MounterHello => ({
  serverVersion: '0.1.0', apiVersion: 1, minApiVersion: 1, instanceId: 'i-1', startedAt: '2026-01-01T00:00:00Z', nodeId: 'n1', ...o,
});
const ours = { apiVersion: 1, packageVersion: '0.1.0', nodeId: 'n1' };

describe('judgeMounter', () => {
  it('accepts the same API and version without a warning', () => {
    assert.deepEqual(judgeMounter(hello(), ours), { ok: true });
  });
  it('tolerates another package version with the same API, with a warning naming both', () => {
    const v = judgeMounter(hello({ serverVersion: '0.0.9' }), ours);
    assert.equal(v.ok, true);
    assert.match(v.ok ? v.warning ?? '' : '', /0\.0\.9.*0\.1\.0/);
  });
  it('accepts a newer mounter that still serves our API', () => {
    assert.equal(judgeMounter(hello({ apiVersion: 3, minApiVersion: 1, serverVersion: '0.3.0' }), ours).ok, true);
  });
  it('refuses an older mounter (API below ours) and says to replace the mounter pod', () => {
    const v = judgeMounter(hello({ apiVersion: 1, minApiVersion: 1 }), { ...ours, apiVersion: 2 });
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, /older than this node plugin's v2.*replace the mounter pod/);
  });
  it('refuses a newer mounter that dropped our API and says to upgrade the node plugin', () => {
    const v = judgeMounter(hello({ apiVersion: 4, minApiVersion: 3 }), ours);
    assert.equal(v.ok, false);
    assert.match(v.ok ? '' : v.reason, /no longer serves API v1 \(it serves v3\.\.v4\)/);
  });
  it('refuses a peer without API version or instance id, and a mounter of another node', () => {
    assert.equal(judgeMounter(hello({ apiVersion: 0 }), ours).ok, false);
    assert.equal(judgeMounter(hello({ instanceId: '' }), ours).ok, false);
    const other = judgeMounter(hello({ nodeId: 'n2' }), ours);
    assert.match(other.ok ? '' : other.reason, /serves node "n2"/);
  });
  it('reads a missing min_api_version as the API version itself', () => {
    assert.equal(judgeMounter(hello({ apiVersion: 2, minApiVersion: 0 }), ours).ok, false);
    assert.equal(judgeMounter(hello({ apiVersion: 1, minApiVersion: 0 }), ours).ok, true);
  });
});

describe('reactionTo (engine event -> recovery work)', () => {
  const exit: EngineEvent = { kind: 's3fs-exit', volumeId: 'v', stagingPath: '/k/s', backingDir: '/b', pid: 9, code: null, signal: 'SIGKILL', stderr: [] };
  it('repairs the volume of an s3fs exit shortly, and a dead mount at once', () => {
    assert.deepEqual(reactionTo(exit, true), { kind: 'repair', stagingPath: '/k/s', trigger: 's3fs-exit', delayMs: 100 });
    assert.deepEqual(reactionTo({ kind: 'dead-mount', volumeId: 'v', path: '/t', stagingPath: '/k/s' }, false), { kind: 'repair', stagingPath: '/k/s', trigger: 'dead-mount', delayMs: 0 });
  });
  it('scans when a dead mount has no known staging path', () => {
    assert.deepEqual(reactionTo({ kind: 'dead-mount', volumeId: 'v', path: '/t' }, true), { kind: 'scan', trigger: 'dead-mount' });
  });
  it('a new mounter process: local pass, then a full scan only when the API is there', () => {
    assert.deepEqual(reactionTo({ kind: 'mounter-connected', instanceId: 'b', restarted: true }, true), { kind: 'local-pass', trigger: 'mounter-restart', thenScan: true });
    assert.deepEqual(reactionTo({ kind: 'mounter-connected', instanceId: 'b', restarted: true }, false), { kind: 'local-pass', trigger: 'mounter-restart', thenScan: false });
  });
  it('the same mounter again: a local pass only; a lost mounter: nothing', () => {
    assert.deepEqual(reactionTo({ kind: 'mounter-connected', instanceId: 'a', restarted: false }, true), { kind: 'local-pass', trigger: 'mounter-connected', thenScan: false });
    assert.deepEqual(reactionTo({ kind: 'mounter-lost', reason: 'x' }, true), { kind: 'none' });
  });
});

describe('wire conversions', () => {
  const spec: StageSpec = {
    volumeId: 'b/p', stagingPath: '/k/s', bucket: 'b', prefix: 'p', endpoint: undefined, region: 'us-east-1', pathStyle: true,
    insecureSkipVerify: false, credentials: { accessKeyId: new Secret('AKIAX'), secretAccessKey: new Secret('s3cr3t-value') },
    userOptions: ['umask=0002'], readonly: true, mountGroup: undefined,
  };
  it('a StageSpec survives the round trip, credentials as Secrets again', () => {
    const back = specFromWire(specToWire(spec));
    assert.equal(back.credentials.secretAccessKey.reveal(), 's3cr3t-value');
    assert.equal(String(back.credentials.secretAccessKey), '[REDACTED]');
    assert.deepEqual({ ...back, credentials: undefined }, { ...spec, credentials: undefined });
  });
  it('a StagedRecord and a Hello survive the round trip; optional strings stay undefined', () => {
    const rec: StagedRecord = { volumeId: 'v', stagingPath: '/k/s', key: '0123456789abcdef', bucket: 'b', prefix: '', region: 'r', userOptions: [], readonly: false, fingerprint: 'f', backingDir: '/b/1', stagedAt: 't', endpoint: 'http://x', mountGroup: '1000' };
    assert.deepEqual(recordFromWire(recordToWire(rec)), rec);
    const noOpt = recordFromWire(recordToWire({ ...rec, endpoint: undefined, mountGroup: undefined }));
    assert.equal(noOpt.endpoint, undefined);
    assert.equal(noOpt.mountGroup, undefined);
    assert.deepEqual(helloFromWire(helloToWire(hello())), hello());
    assert.equal(helloFromWire(undefined).apiVersion, 0);
  });
  it('a record\'s device history crosses the wire (the node plugin heals containers holding an earlier repair\'s mount from it)', () => {
    const rec: StagedRecord = { volumeId: 'v', stagingPath: '/k/s', key: 'k', bucket: 'b', prefix: '', region: 'r', userOptions: [], readonly: false, fingerprint: 'f', backingDir: '/b/1', stagedAt: 't', devices: ['0:51', '0:63'] };
    assert.deepEqual(recordFromWire(recordToWire(rec)).devices, ['0:51', '0:63']);
    // An older mounter sends none (decoded as []): no history rather than an empty list.
    assert.equal(recordFromWire({ ...recordToWire(rec), devices: [] }).devices, undefined);
  });
  it('an s3fs exit keeps "no exit code" apart from code 0', () => {
    const exit = { kind: 's3fs-exit' as const, volumeId: 'v', stagingPath: '/k/s', backingDir: '/b', pid: 9, code: null, signal: 'SIGKILL', stderr: ['x'] };
    assert.deepEqual(eventFromWire({ s3fs_exit: exitToWire(exit) }), exit);
    assert.deepEqual(eventFromWire({ s3fs_exit: exitToWire({ ...exit, code: 0, signal: null }) }), { ...exit, code: 0, signal: null });
    assert.equal(eventFromWire({ hello: helloToWire(hello()) }), undefined);
  });
  it('refuses results it does not know', () => {
    assert.equal(stageResultFromWire('adopted'), 'adopted');
    assert.throws(() => stageResultFromWire('exploded'), /unknown stage result/);
    assert.throws(() => publishResultFromWire('adopted'), /unknown publish result/);
  });
});

describe('EventChannel', () => {
  it('delivers to every listener in order, survives a throwing one, and unsubscribes', () => {
    const ch = new EventChannel<EngineEvent>();
    const seen: string[] = [];
    const off = ch.on((e) => seen.push(`a:${e.kind}`));
    ch.on(() => {
      throw new Error('listener bug');
    });
    ch.on((e) => seen.push(`c:${e.kind}`));
    ch.emit({ kind: 'mounter-lost', reason: 'x' });
    off();
    ch.emit({ kind: 'mounter-lost', reason: 'y' });
    assert.deepEqual(seen, ['a:mounter-lost', 'c:mounter-lost', 'c:mounter-lost']);
  });
});
