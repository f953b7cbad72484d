// Pure logic of the batched reads: SharedRead (one mount-table read or /proc scan for concurrent
// callers, always one that started after the caller asked) and the parser of a batched statfs run.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedRead, parseStatfsReplies } from '../../src/mount/index.js';

/** A source whose reads the test finishes by hand; each read returns the version current when it STARTED. */
function manualSource(): { read: () => Promise<number>; version: number; started: number; finish: () => void } {
  const pending: Array<() => void> = [];
  const s = {
    version: 0,
    started: 0,
    read(): Promise<number> {
      s.started++;
      const seen = s.version;
      return new Promise<number>((resolve) => pending.push(() => resolve(seen)));
    },
    finish(): void {
      pending.shift()?.();
    },
  };
  return s;
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('SharedRead', () => {
  it('one caller: one read', async () => {
    const src = manualSource();
    const shared = new SharedRead(() => src.read());
    const p = shared.get();
    src.finish();
    assert.equal(await p, 0);
    assert.equal(src.started, 1);
  });

  it('callers that ask while a read runs share the next read, which starts after they asked', async () => {
    const src = manualSource();
    const shared = new SharedRead(() => src.read());
    const first = shared.get();
    src.version = 1; // a change made before the next callers ask: the running read may not show it
    const late = [shared.get(), shared.get(), shared.get()];
    assert.equal(src.started, 1);
    src.finish();
    assert.equal(await first, 0);
    await tick();
    assert.equal(src.started, 2, 'one more read for all three');
    src.finish();
    assert.deepEqual(await Promise.all(late), [1, 1, 1]);
  });

  it('a caller arriving while the next read is queued joins it', async () => {
    const src = manualSource();
    const shared = new SharedRead(() => src.read());
    const a = shared.get();
    const b = shared.get();
    const c = shared.get();
    src.finish();
    await a;
    await tick();
    src.finish();
    assert.equal(await b, await c);
    assert.equal(src.started, 2);
  });

  it('a failed read fails its callers only; the next call reads again', async () => {
    let n = 0;
    const shared = new SharedRead(async () => {
      n++;
      if (n === 1) throw new Error('EIO');
      return n;
    });
    await assert.rejects(shared.get(), /EIO/);
    assert.equal(await shared.get(), 2);
  });

  it('a read that throws synchronously is a rejection', async () => {
    const shared = new SharedRead<number>(() => {
      throw new Error('sync');
    });
    await assert.rejects(shared.get(), /sync/);
  });
});

describe('parseStatfsReplies (s3fs-csi-mount --statfs: one line per path, in the order asked)', () => {
  const paths = ['/k/a/globalmount', '/k/with space/mount', '/k/gone', '/k/dead', '/k/aborted', '/k/b/globalmount'];

  it('reads figures for the answered paths and the state from each errno', () => {
    const stdout = '0 4096 100 50 40 1000 900\n0 4096 1 2 3 4 5\n2\n107\n103\n';
    const r = parseStatfsReplies(paths, stdout);
    assert.equal(r.get('/k/a/globalmount')?.state, 'healthy');
    assert.deepEqual(r.get('/k/a/globalmount')?.fs, { blockSize: 4096, totalBlocks: 100, freeBlocks: 50, availableBlocks: 40, totalInodes: 1000, freeInodes: 900 });
    assert.equal(r.get('/k/with space/mount')?.state, 'healthy');
    assert.equal(r.get('/k/gone')?.state, 'missing');
    assert.equal(r.get('/k/dead')?.state, 'stale');
    assert.match(r.get('/k/dead')?.message ?? '', /ENOTCONN/);
    assert.equal(r.get('/k/aborted')?.state, 'stale');
    assert.equal(r.has('/k/b/globalmount'), false, 'not answered: left for a check of its own');
  });

  it('ignores a line cut off at the deadline', () => {
    const r = parseStatfsReplies(['/k/1', '/k/2'], '0 4096 1 1 1 1 1\n0 4096 1');
    assert.deepEqual([...r.keys()], ['/k/1']);
  });

  it('trusts nothing from a malformed line on', () => {
    const r = parseStatfsReplies(['/k/a', '/k/b', '/k/c'], '0 4096 1 1 1 1 1\nstat: something\n0 4096 1 1 1 1 1\n');
    assert.deepEqual([...r.keys()], ['/k/a']);
  });

  it('other errnos are errors named by the errno', () => {
    const r = parseStatfsReplies(['/k/a'], '13\n');
    assert.deepEqual(r.get('/k/a'), { state: 'error', message: 'statfs /k/a: EACCES' });
  });
});
