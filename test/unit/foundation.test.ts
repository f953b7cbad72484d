import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { describe, it } from 'node:test';
import { logLevelOf, parseHttpEndpoint, socketPathOf } from '../../src/config.js';
import { parseDuration } from '../../src/duration.js';
import { CsiError, codeName } from '../../src/errors.js';
import { KeyedMutex } from '../../src/locks.js';
import { Secret, scrub, secretValuesOf } from '../../src/secrets.js';

describe('flag parsing', () => {
  it('parses Go-style durations', () => {
    assert.equal(parseDuration('3s'), 3000);
    assert.equal(parseDuration('500ms'), 500);
    assert.equal(parseDuration('1m30s'), 90_000);
    assert.equal(parseDuration('2'), 2000);
    assert.throws(() => parseDuration('3 parsecs'));
    assert.throws(() => parseDuration(''));
  });
  it('accepts unix:// endpoints and bare paths', () => {
    assert.equal(socketPathOf('unix:///csi/csi.sock'), '/csi/csi.sock');
    assert.equal(socketPathOf('unix:/csi/csi.sock'), '/csi/csi.sock');
    assert.equal(socketPathOf('/run/x.sock'), '/run/x.sock');
    assert.throws(() => socketPathOf('tcp://127.0.0.1:10000'), /only unix sockets/);
  });
  it('parses --http-endpoint like the sidecars', () => {
    assert.deepEqual(parseHttpEndpoint(':9808'), { host: '0.0.0.0', port: 9808 });
    assert.deepEqual(parseHttpEndpoint('127.0.0.1:1'), { host: '127.0.0.1', port: 1 });
    assert.deepEqual(parseHttpEndpoint('[::1]:80'), { host: '::1', port: 80 });
    assert.throws(() => parseHttpEndpoint('9808'));
    assert.throws(() => parseHttpEndpoint(':99999'));
  });
  it('maps klog verbosity to pino levels', () => {
    assert.equal(logLevelOf(2), 'info');
    assert.equal(logLevelOf(5), 'debug');
    assert.equal(logLevelOf(9), 'trace');
    assert.equal(logLevelOf(9, 'warn'), 'warn');
  });
});

describe('secrets', () => {
  it('a Secret never prints its value', () => {
    const s = new Secret('s3cr3t-canary');
    assert.equal(`${s}`, '[REDACTED]');
    assert.equal(JSON.stringify({ s }), '{"s":"[REDACTED]"}');
    assert.ok(!inspect({ s }).includes('canary'));
    assert.equal(s.reveal(), 's3cr3t-canary');
  });
  it('collects every secrets map value and secret-like field, and scrubs them', () => {
    const values = secretValuesOf({ name: 'v', secrets: { accessKeyID: 'AKIAEXAMPLE', secretAccessKey: 's3cr3t-canary' }, nested: { password: 'hunter22' } });
    assert.deepEqual([...values].sort(), ['AKIAEXAMPLE', 'hunter22', 's3cr3t-canary']);
    assert.equal(scrub('key AKIAEXAMPLE denied; s3cr3t-canary', values), 'key [REDACTED] denied; [REDACTED]');
  });
});

describe('errors', () => {
  it('spells codes as Go does (sidecar metric labels)', () => {
    assert.equal(codeName(0), 'OK');
    assert.equal(codeName(9), 'FailedPrecondition');
    assert.equal(codeName(14), 'Unavailable');
    assert.equal(new CsiError(5, 'x').code, 5);
  });
});

describe('KeyedMutex', () => {
  it('serialises one key and runs different keys in parallel', async () => {
    const m = new KeyedMutex();
    const order: string[] = [];
    const slow = (tag: string, ms: number) => async () => {
      order.push(`start ${tag}`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`end ${tag}`);
    };
    await Promise.all([m.run('a', slow('a1', 30)), m.run('a', slow('a2', 1)), m.run('b', slow('b1', 1))]);
    assert.ok(order.indexOf('end a1') < order.indexOf('start a2'), order.join(','));
    assert.ok(order.indexOf('end b1') < order.indexOf('end a1'), 'b is not blocked by a');
    assert.equal(m.size, 0);
  });
  it('a waiter whose call is cancelled gets ABORTED and the queue goes on', async () => {
    const m = new KeyedMutex();
    let release!: () => void;
    const first = m.run('v', () => new Promise<void>((r) => (release = r)));
    const ac = new AbortController();
    const second = m.run('v', async () => 'ran', ac.signal);
    ac.abort();
    await assert.rejects(second, (err: CsiError) => err.code === 10);
    const third = m.run('v', async () => 'third');
    release();
    await first;
    assert.equal(await third, 'third');
  });
});
