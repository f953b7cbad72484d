// Pure controller decisions: StorageClass parameters, capacity, capabilities, volume context, paging.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { decodeToken, encodeToken, pageOf } from '../../src/csi/controller-list.js';
import {
  DEFAULT_CAPACITY_BYTES, capacityFits, capacityFor, parseParameters, sameParameters, volumeContext,
} from '../../src/csi/controller-params.js';
import { capabilityProblem } from '../../src/csi/capability.js';
import { Code, CsiError } from '../../src/errors.js';

const codeOf = (fn: () => unknown): number | undefined => {
  try {
    fn();
  } catch (err) {
    return err instanceof CsiError ? err.code : -1;
  }
  return undefined;
};

describe('parseParameters', () => {
  it('defaults to a bucket per volume, deleting data on delete', () => {
    const p = parseParameters({});
    assert.equal(p.sharedBucket, undefined);
    assert.equal(p.reclaimData, 'delete');
    assert.equal(p.options, '');
    assert.deepEqual(p.recorded, {});
  });
  it('ignores csi.storage.k8s.io/* and records the rest', () => {
    const p = parseParameters({ bucket: 'shared', options: '-o ro', 'csi.storage.k8s.io/pvc/name': 'x', reclaimData: 'retain', region: 'eu-west-1', endpoint: 'https://s3.example.com/' });
    assert.deepEqual(p.recorded, { bucket: 'shared', endpoint: 'https://s3.example.com/', options: '-o ro', reclaimData: 'retain', region: 'eu-west-1' });
    assert.equal(p.sharedBucket, 'shared');
    assert.equal(p.endpoint, 'https://s3.example.com');
  });
  it('rejects bad values with INVALID_ARGUMENT naming the parameter', () => {
    for (const [params, name] of [
      [{ bucket: 'UPPER' }, 'bucket'], [{ bucketPrefix: 'x_' }, 'bucketPrefix'], [{ bucket: 'shared', bucketPrefix: 'a-' }, 'bucketPrefix'],
      [{ reclaimData: 'keep' }, 'reclaimData'], [{ region: 'EU WEST' }, 'region'], [{ endpoint: 'ftp://x' }, 'endpoint'],
      [{ endpoint: 'http://user:pw@x' }, 'endpoint'], [{ options: 'a\u0000b' }, 'options'], [{ mounter: 'geesefs' }, 'mounter'], [{ unknown: '1' }, 'unknown'],
    ] as [Record<string, string>, string][]) {
      assert.throws(() => parseParameters(params), (err: CsiError) => err.code === Code.INVALID_ARGUMENT && err.message.includes(`"${name}"`), name);
    }
  });
  it('compares parameter sets exactly', () => {
    assert.ok(sameParameters({ a: '1', b: '2' }, { b: '2', a: '1' }));
    assert.ok(!sameParameters({ a: '1' }, { a: '1', b: '' }));
    assert.ok(!sameParameters({ a: '1' }, { a: '2' }));
  });
});

describe('capacity', () => {
  it('records the required bytes, else a documented default within the limit', () => {
    assert.equal(capacityFor(undefined), DEFAULT_CAPACITY_BYTES);
    assert.equal(capacityFor({ required_bytes: 5, limit_bytes: 0 }), 5);
    assert.equal(capacityFor({ required_bytes: 0, limit_bytes: 100 }), 100);
    assert.equal(codeOf(() => capacityFor({ required_bytes: 10, limit_bytes: 5 })), Code.OUT_OF_RANGE);
    assert.equal(codeOf(() => capacityFor({ required_bytes: -1, limit_bytes: 0 })), Code.INVALID_ARGUMENT);
  });
  it('an existing volume fits a range that contains its size', () => {
    assert.ok(capacityFits(10, { required_bytes: 10, limit_bytes: 0 }));
    assert.ok(capacityFits(10, { required_bytes: 5, limit_bytes: 20 }));
    assert.ok(capacityFits(10, undefined));
    assert.ok(!capacityFits(10, { required_bytes: 20, limit_bytes: 20 }));
    assert.ok(!capacityFits(10, { required_bytes: 0, limit_bytes: 5 }));
  });
});

describe('capabilities and context', () => {
  it('mount with any access mode; no block, no foreign filesystem, no missing mode', () => {
    assert.equal(capabilityProblem({ mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'MULTI_NODE_MULTI_WRITER' } }), undefined);
    assert.match(capabilityProblem({ block: {}, access_mode: { mode: 'SINGLE_NODE_WRITER' } }) ?? '', /block/);
    assert.match(capabilityProblem({ mount: { fs_type: 'ext4', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'SINGLE_NODE_WRITER' } }) ?? '', /ext4/);
    assert.match(capabilityProblem({ mount: { fs_type: '', mount_flags: [], volume_mount_group: '' }, access_mode: { mode: 'UNKNOWN' } }) ?? '', /access mode/);
  });
  it('the volume context carries location and options, region/endpoint only when given, never secrets', () => {
    assert.deepEqual(volumeContext({ bucket: 'b', prefix: '' }, { options: '' }), { bucket: 'b', prefix: '', options: '' });
    assert.deepEqual(volumeContext({ bucket: 'b', prefix: 'p' }, { options: '-o ro', region: 'r', endpoint: 'http://e' }),
      { bucket: 'b', prefix: 'p', options: '-o ro', region: 'r', endpoint: 'http://e' });
  });
});

describe('ListVolumes paging', () => {
  const items = ['ccc', 'aaa/x', 'bbb', 'aaa'].map((id) => ({ id }));
  it('pages in id order and continues after the last id, even if it was deleted', () => {
    const p1 = pageOf(items, 2, '');
    assert.deepEqual(p1.page.map((i) => i.id), ['aaa', 'aaa/x']);
    const p2 = pageOf(items.filter((i) => i.id !== 'aaa/x'), 2, p1.nextToken);
    assert.deepEqual(p2.page.map((i) => i.id), ['bbb', 'ccc']);
    assert.equal(p2.nextToken, '');
    assert.deepEqual(pageOf(items, 0, '').page.length, 4);
  });
  it('a token it did not issue is ABORTED', () => {
    assert.equal(decodeToken(encodeToken('bucket/prefix')), 'bucket/prefix');
    for (const bad of ['invalid-token', '7', 'v1.', 'v1.!!', `v1.${Buffer.from('NOT VALID').toString('base64url')}`]) {
      assert.equal(codeOf(() => decodeToken(bad)), Code.ABORTED, bad);
    }
  });
});
