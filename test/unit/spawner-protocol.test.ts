// The wire format of `s3fs-csi-mount --spawn` (native/spawn.c), pure. The starter itself is tested
// with real children in test/integration/spawner.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MountHelperError } from '../../src/mount/mount-helper.js';
import { decodeSpawnerLine, encodeStart } from '../../src/mount/spawner.js';

describe('s3fs-csi-mount --spawn protocol', () => {
  it('a start request: "start", the argv count, argv, the env count, env; every field NUL-terminated', () => {
    assert.equal(encodeStart(['/usr/bin/s3fs', 'b:/p', '/m', '-o', 'a b'], { PATH: '/bin', LC_ALL: 'C' }).toString('utf8'),
      'start\x005\x00/usr/bin/s3fs\x00b:/p\x00/m\x00-o\x00a b\x002\x00PATH=/bin\x00LC_ALL=C\x00');
    assert.equal(encodeStart(['x'], {}).toString('utf8'), 'start\x001\x00x\x000\x00');
  });
  it('refuses before sending: a NUL byte in any field (it would shift every later one), an empty argv', () => {
    assert.throws(() => encodeStart(['/bin/sh', 'a\0b'], {}), MountHelperError);
    assert.throws(() => encodeStart(['/bin/sh'], { K: 'v\0w' }), MountHelperError);
    assert.throws(() => encodeStart([], {}), MountHelperError);
  });
  it('replies: started, failed with an errno, a line of output (spaces kept, may be empty), an exit', () => {
    assert.deepEqual(decodeSpawnerLine('S 123'), { kind: 'started', pid: 123 });
    assert.deepEqual(decodeSpawnerLine('E 2'), { kind: 'failed', errno: 2 });
    assert.deepEqual(decodeSpawnerLine('O 123  two  spaces '), { kind: 'output', pid: 123, text: ' two  spaces ' });
    assert.deepEqual(decodeSpawnerLine('O 123 '), { kind: 'output', pid: 123, text: '' });
    assert.deepEqual(decodeSpawnerLine('X 123 3 0'), { kind: 'exited', pid: 123, code: 3, signal: null });
    assert.deepEqual(decodeSpawnerLine('X 123 -1 9'), { kind: 'exited', pid: 123, code: null, signal: 'SIGKILL' });
    assert.deepEqual(decodeSpawnerLine('X 123 -1 15'), { kind: 'exited', pid: 123, code: null, signal: 'SIGTERM' });
  });
  it('anything else is garbled, never taken for an answer', () => {
    for (const line of ['', 'S', 'S x', 'E -1', 'O 12', 'X 1 2', 'X 1 -2 0', 'hello']) {
      assert.equal(decodeSpawnerLine(line).kind, 'garbled', line);
    }
  });
});
