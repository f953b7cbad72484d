// The wire format of s3fs-csi-mount (native/mount.c), pure: requests are NUL-terminated fields,
// replies one errno per line in order (lines are split by spawnHelper, tested with real helpers). The helper itself is tested on real mounts in
// test/integration/mount-helper.test.ts.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MountHelperError, decodeReply, encodeRequest } from '../../src/mount/mount-helper.js';
import { keptOnRemount } from '../../src/mount/ops.js';

describe('s3fs-csi-mount protocol', () => {
  it('every field, the operation included, ends with a NUL byte; spaces and newlines in paths survive', () => {
    assert.equal(encodeRequest('bind', ['/a b', '/c\nd']).toString('utf8'), 'bind\0/a b\0/c\nd\0');
    assert.equal(encodeRequest('umount', ['/x']).toString('utf8'), 'umount\0/x\0');
  });
  it('a path with a NUL byte is refused before anything is sent (it would shift every later field)', () => {
    assert.throws(() => encodeRequest('detach', ['/x\0/y']), MountHelperError);
  });
  it('a reply line is an errno (0 = done)', () => {
    assert.equal(decodeReply('0'), 0);
    assert.equal(decodeReply('22'), 22);
  });
  it('a reply that is not a number is reported as such (NaN), not taken for success', () => {
    for (const line of ['oops', '', '-1', '0 ', '1x']) assert.ok(Number.isNaN(decodeReply(line)), JSON.stringify(line));
  });
  it('a read-only remount names again the flags it must keep, from the mount\'s own options, and nothing else', () => {
    assert.equal(keptOnRemount(['rw', 'nosuid', 'nodev', 'relatime']), 'nosuid,nodev,relatime');
    assert.equal(keptOnRemount(['rw', 'noexec', 'noatime', 'nodiratime']), 'noexec,noatime,nodiratime');
    assert.equal(keptOnRemount(['rw']), '', 'nothing to keep: an empty list');
    assert.equal(encodeRequest('ro', ['/t', 'nosuid,nodev']).toString('utf8'), 'ro\0/t\0nosuid,nodev\0');
  });
});
