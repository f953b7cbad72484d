// Pure S3 pieces: bucket/prefix naming, metadata records, error classification.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Code } from '../../src/errors.js';
import { s3Error } from '../../src/s3/errors.js';
import { metadataKey, parseRecord, prefixOfMetadataKey, serializeRecord, type VolumeRecord } from '../../src/s3/metadata.js';
import { bucketNameFor, isValidBucketPrefix, prefixNameFor } from '../../src/s3/naming.js';
import { formatVolumeId, isValidBucketName, parseVolumeId } from '../../src/s3/volume-id.js';

describe('bucketNameFor', () => {
  it('keeps valid DNS-style names as they are', () => {
    assert.equal(bucketNameFor('pvc-0b7c1c6e-8e4e-4a8f-9d7e-1f2a3b4c5d6e'), 'pvc-0b7c1c6e-8e4e-4a8f-9d7e-1f2a3b4c5d6e');
    assert.equal(bucketNameFor('pvc-1', 'team-a-'), 'team-a-pvc-1');
  });
  it('hashes names that had to change, deterministically and without collisions between variants', () => {
    const names = ['PVC-1', 'pvc_1', 'pvc.1', 'x'.repeat(128), `Sanity-${'x'.repeat(121)}`, '-leading', 'a', '..', 'UPPER', 'upper', 'xn--abc'];
    const buckets = names.map((n) => bucketNameFor(n));
    for (const [i, b] of buckets.entries()) {
      assert.ok(isValidBucketName(b) && b.length <= 63 && !b.includes('.'), `${names[i]} -> ${b}`);
      assert.equal(bucketNameFor(names[i]!), b, 'deterministic');
    }
    assert.equal(new Set(buckets).size, buckets.length);
    const prefixed = bucketNameFor('Z'.repeat(128), 'a'.repeat(50));
    assert.ok(isValidBucketName(prefixed) && prefixed.startsWith('a'.repeat(50)), prefixed);
  });
  it('accepts only lowercase DNS-ish bucket prefixes', () => {
    assert.ok(isValidBucketPrefix('') && isValidBucketPrefix('team-a-'));
    assert.ok(!isValidBucketPrefix('Team') && !isValidBucketPrefix('-x') && !isValidBucketPrefix('a.b') && !isValidBucketPrefix('a'.repeat(60)));
  });
});

describe('prefixNameFor', () => {
  it('keeps ids within 128 bytes for any name and the longest bucket', () => {
    const bucket = 'b'.repeat(63);
    for (const name of ['pvc-1', 'x'.repeat(128), 'with spaces/and/slashes', '.s3fs-csi', '..', 'ü'.repeat(100)]) {
      const prefix = prefixNameFor(name, bucket);
      const id = formatVolumeId({ bucket, prefix });
      assert.ok(Buffer.byteLength(id) <= 128, id);
      assert.deepEqual(parseVolumeId(id), { bucket, prefix }, name);
      assert.ok(!prefix.startsWith('.'), 'never collides with the .s3fs-csi/ metadata area');
    }
    assert.equal(prefixNameFor('pvc-1', 'shared'), 'pvc-1');
    assert.notEqual(prefixNameFor('a b', 'shared'), prefixNameFor('a_b', 'shared'));
  });
});

describe('metadata records', () => {
  const rec: VolumeRecord = {
    version: 1, name: 'pvc-1', volumeId: 'shared/pvc-1', capacityBytes: 5, parameters: { bucket: 'shared' },
    reclaimData: 'retain', createdAt: 't', updatedAt: 't',
  };
  it('live outside the volume prefix and round-trip', () => {
    assert.equal(metadataKey({ bucket: 'b', prefix: '' }), '.s3fs-csi/volume.json');
    assert.equal(metadataKey({ bucket: 'shared', prefix: 'pvc-1' }), '.s3fs-csi/volumes/pvc-1.json');
    assert.equal(prefixOfMetadataKey('.s3fs-csi/volumes/pvc-1.json'), 'pvc-1');
    assert.equal(prefixOfMetadataKey('.s3fs-csi/volume.json'), undefined);
    assert.deepEqual(parseRecord(serializeRecord(rec), { bucket: 'shared', prefix: 'pvc-1' }), rec);
  });
  it('reject foreign or mismatched content', () => {
    assert.equal(parseRecord('not json', { bucket: 'shared', prefix: 'pvc-1' }), undefined);
    assert.equal(parseRecord(serializeRecord(rec), { bucket: 'shared', prefix: 'other' }), undefined);
    assert.equal(parseRecord(JSON.stringify({ ...rec, capacityBytes: 1.5 }), { bucket: 'shared', prefix: 'pvc-1' }), undefined);
  });
});

describe('s3Error', () => {
  const sdk = (name: string, status?: number, extra: object = {}): object =>
    Object.assign(new Error(name), { name, $metadata: { httpStatusCode: status }, ...extra });
  it('maps known conditions to their codes', () => {
    const cases: [object, number][] = [
      [Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }), Code.UNAVAILABLE],
      [sdk('TimeoutError'), Code.UNAVAILABLE],
      [sdk('AbortError'), Code.UNAVAILABLE],
      [sdk('SlowDown', 503), Code.UNAVAILABLE],
      [sdk('InternalError', 500), Code.UNAVAILABLE],
      [sdk('AccessDenied', 403), Code.PERMISSION_DENIED],
      [sdk('Unknown', 403), Code.PERMISSION_DENIED],
      [sdk('InvalidAccessKeyId', 403), Code.UNAUTHENTICATED],
      [sdk('SignatureDoesNotMatch', 403), Code.UNAUTHENTICATED],
      [sdk('BucketAlreadyExists', 409), Code.FAILED_PRECONDITION],
      [sdk('NoSuchBucket', 404), Code.NOT_FOUND],
      [sdk('InvalidBucketName', 400), Code.INVALID_ARGUMENT],
      [sdk('SomethingNew', 400), Code.INTERNAL],
    ];
    for (const [err, code] of cases) assert.equal(s3Error(err, 'do it').code, code, (err as Error).name);
  });
  it('an aborted RPC is DEADLINE_EXCEEDED, and HEAD failures say the HTTP status', () => {
    const ac = new AbortController();
    ac.abort();
    assert.equal(s3Error(sdk('AbortError'), 'x', ac.signal).code, Code.DEADLINE_EXCEEDED);
    assert.match(s3Error(sdk('Unknown', 403, { message: 'UnknownError' }), 'check bucket "b"').message, /check bucket "b": HTTP 403/);
  });
});
