// Pure logic of the batched reads: SharedRead (one mount-table read or /proc scan for concurrent
// callers, always one that started after the caller asked) and the parser of a batched `stat -f`.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { SharedRead, parseStatfsBatch } from '../../src/mount/index.js';

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

describe('parseStatfsBatch', () => {
  const paths = ['/k/a/globalmount', '/k/b/globalmount', '/k/with space/mount', '/k/gone', '/k/dead'];

  it('reads answers from stdout (figures, then the path) and failures from stderr', () => {
    const stdout = '4096 100 50 40 1000 900 /k/a/globalmount\n4096 1 2 3 4 5 /k/with space/mount\n';
    const stderr = [
      "stat: cannot read file system information for '/k/gone': No such file or directory",
      "stat: cannot read file system information for '/k/dead': Transport endpoint is not connected",
      '',
    ].join('\n');
    const r = parseStatfsBatch(paths, stdout, stderr);
    assert.equal(r.get('/k/a/globalmount')?.state, 'healthy');
    assert.deepEqual(r.get('/k/a/globalmount')?.fs, { blockSize: 4096, totalBlocks: 100, freeBlocks: 50, availableBlocks: 40, totalInodes: 1000, freeInodes: 900 });
    assert.equal(r.get('/k/with space/mount')?.state, 'healthy');
    assert.equal(r.get('/k/gone')?.state, 'missing');
    assert.equal(r.get('/k/dead')?.state, 'stale');
    assert.equal(r.has('/k/b/globalmount'), false, 'not answered: left for a check of its own');
  });

  it('ignores a line cut off at the deadline, even when it looks like another asked path', () => {
    const asked = ['/k/1', '/k/10'];
    const r = parseStatfsBatch(asked, '4096 1 1 1 1 1 /k/1', '');
    assert.equal(r.size, 0);
  });

  it('ignores names that were not asked, malformed lines and other errors', () => {
    const r = parseStatfsBatch(['/k/a'], '4096 1 1 1 1 1 /k/other\n? ? ? ? ? ? /k/a\n', "stat: cannot read file system information for '/k/x': Permission denied\nsomething else\n");
    assert.equal(r.size, 0);
  });

  it('other failures are errors carrying stat\'s words', () => {
    const r = parseStatfsBatch(['/k/a'], '', "stat: cannot read file system information for '/k/a': Permission denied\n");
    assert.deepEqual(r.get('/k/a'), { state: 'error', message: 'Permission denied' });
  });
});
