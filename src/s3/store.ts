// Thin S3 actions the controller composes: buckets, prefixes, metadata objects, recursive deletes.
// Every call carries the RPC's abort signal and maps failures through s3Error().
import {
  CreateBucketCommand, type CreateBucketCommandInput, DeleteBucketCommand, DeleteObjectCommand, DeleteObjectsCommand,
  GetBucketVersioningCommand, GetObjectCommand, HeadBucketCommand, ListBucketsCommand, ListObjectVersionsCommand,
  ListObjectsV2Command, PutObjectCommand, type S3Client,
} from '@aws-sdk/client-s3';
import { CsiError, Code } from '../errors.js';
import { isNotFound, s3Error, s3ErrorName } from './errors.js';
import { type VolumeRecord, metadataKey, parseRecord, serializeRecord } from './metadata.js';
import type { VolumeLocation } from './volume-id.js';

export type BucketState = 'exists' | 'missing';

const DELETE_BATCH = 1000;

export class S3Store {
  constructor(
    readonly client: S3Client,
    /** The RPC's signal: aborted when the caller cancels or its deadline passes. */
    readonly signal?: AbortSignal,
    /** Cap of one S3 call including the SDK's retries, so a hung server cannot hold an RPC. */
    readonly callTimeoutMs = 10_000,
  ) {}

  #opts(): { abortSignal: AbortSignal } {
    const timeout = AbortSignal.timeout(this.callTimeoutMs);
    return { abortSignal: this.signal ? AbortSignal.any([this.signal, timeout]) : timeout };
  }

  async bucketState(bucket: string): Promise<BucketState> {
    try {
      await this.client.send(new HeadBucketCommand({ Bucket: bucket }), this.#opts());
      return 'exists';
    } catch (err) {
      if (isNotFound(err)) return 'missing';
      throw s3Error(err, `check bucket "${bucket}"`, this.signal);
    }
  }

  /** Creates the bucket; a bucket we already own counts as success. */
  async createBucket(bucket: string, region: string): Promise<void> {
    const input: CreateBucketCommandInput = { Bucket: bucket };
    if (region && region !== 'us-east-1') input.CreateBucketConfiguration = { LocationConstraint: region as never };
    try {
      await this.client.send(new CreateBucketCommand(input), this.#opts());
    } catch (err) {
      if (s3ErrorName(err) === 'BucketAlreadyOwnedByYou') return;
      throw s3Error(err, `create bucket "${bucket}"`, this.signal);
    }
  }

  async readRecord(loc: VolumeLocation): Promise<VolumeRecord | undefined> {
    const key = metadataKey(loc);
    let text: string;
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: loc.bucket, Key: key }), this.#opts());
      text = (await res.Body?.transformToString()) ?? '';
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw s3Error(err, `read volume metadata "${loc.bucket}/${key}"`, this.signal);
    }
    const record = parseRecord(text, loc);
    if (!record) throw new CsiError(Code.FAILED_PRECONDITION, `volume metadata "${loc.bucket}/${key}" is not a valid s3fs-csi record`);
    return record;
  }

  async writeRecord(loc: VolumeLocation, record: VolumeRecord): Promise<void> {
    const key = metadataKey(loc);
    try {
      await this.client.send(
        new PutObjectCommand({ Bucket: loc.bucket, Key: key, Body: serializeRecord(record), ContentType: 'application/json' }),
        this.#opts(),
      );
    } catch (err) {
      throw s3Error(err, `write volume metadata "${loc.bucket}/${key}"`, this.signal);
    }
  }

  /** Removes the record, every version of it in a versioned bucket. */
  async deleteRecord(loc: VolumeLocation): Promise<void> {
    const key = metadataKey(loc);
    await this.deleteAll(loc.bucket, key, (k) => k !== key);
  }

  async deleteKey(bucket: string, key: string): Promise<void> {
    try {
      await this.client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }), this.#opts());
    } catch (err) {
      if (isNotFound(err)) return;
      throw s3Error(err, `delete "${bucket}/${key}"`, this.signal);
    }
  }

  /** An empty object `<prefix>/`: the directory marker s3fs shows as the mount root. */
  async putDirectoryMarker(bucket: string, prefix: string): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/`, Body: '' }), this.#opts());
    } catch (err) {
      throw s3Error(err, `create prefix "${bucket}/${prefix}/"`, this.signal);
    }
  }

  /** Up to `limit` keys under `keyPrefix` ('' = the whole bucket); NoSuchBucket -> undefined. */
  async listKeys(bucket: string, keyPrefix: string, limit: number): Promise<string[] | undefined> {
    try {
      const res = await this.client.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix || undefined, MaxKeys: limit }), this.#opts());
      return (res.Contents ?? []).map((o) => o.Key ?? '').filter(Boolean);
    } catch (err) {
      if (s3ErrorName(err) === 'NoSuchBucket') return undefined;
      throw s3Error(err, `list "${bucket}/${keyPrefix}"`, this.signal);
    }
  }

  /** Every key under `keyPrefix` (paginated). */
  async *allKeys(bucket: string, keyPrefix: string): AsyncGenerator<string> {
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: keyPrefix || undefined, ContinuationToken: token }),
          this.#opts(),
        );
      } catch (err) {
        if (s3ErrorName(err) === 'NoSuchBucket') return;
        throw s3Error(err, `list "${bucket}/${keyPrefix}"`, this.signal);
      }
      for (const o of res.Contents ?? []) if (o.Key) yield o.Key;
      token = res.IsTruncated ? res.NextContinuationToken : undefined;
    } while (token);
  }

  async isVersioned(bucket: string): Promise<boolean> {
    try {
      const res = await this.client.send(new GetBucketVersioningCommand({ Bucket: bucket }), this.#opts());
      return res.Status === 'Enabled' || res.Status === 'Suspended';
    } catch (err) {
      const name = s3ErrorName(err);
      // Servers without versioning support say so in several ways; none of them has versions to delete.
      if (name === 'NotImplemented' || name === 'VersioningNotConfigured' || name === 'NoSuchBucket') return false;
      throw s3Error(err, `read versioning of bucket "${bucket}"`, this.signal);
    }
  }

  /**
   * Deletes every object under `keyPrefix` (every version and delete marker when the bucket is
   * versioned) except those `keep` selects, in batches of 1000. Returns the number of keys/versions removed.
   */
  async deleteAll(bucket: string, keyPrefix: string, keep: (key: string) => boolean = () => false): Promise<number> {
    const versioned = await this.isVersioned(bucket);
    let deleted = 0;
    let batch: { Key: string; VersionId?: string }[] = [];
    const flush = async (): Promise<void> => {
      if (batch.length === 0) return;
      const objects = batch;
      batch = [];
      deleted += await this.#deleteBatch(bucket, objects);
    };
    if (versioned) {
      for await (const v of this.#allVersions(bucket, keyPrefix)) {
        if (keep(v.Key)) continue;
        batch.push(v);
        if (batch.length >= DELETE_BATCH) await flush();
      }
    } else {
      for await (const key of this.allKeys(bucket, keyPrefix)) {
        if (keep(key)) continue;
        batch.push({ Key: key });
        if (batch.length >= DELETE_BATCH) await flush();
      }
    }
    await flush();
    return deleted;
  }

  async *#allVersions(bucket: string, keyPrefix: string): AsyncGenerator<{ Key: string; VersionId?: string }> {
    let keyMarker: string | undefined;
    let versionMarker: string | undefined;
    for (;;) {
      let res;
      try {
        res = await this.client.send(
          new ListObjectVersionsCommand({ Bucket: bucket, Prefix: keyPrefix || undefined, KeyMarker: keyMarker, VersionIdMarker: versionMarker }),
          this.#opts(),
        );
      } catch (err) {
        if (s3ErrorName(err) === 'NoSuchBucket') return;
        throw s3Error(err, `list versions in "${bucket}/${keyPrefix}"`, this.signal);
      }
      for (const v of [...(res.Versions ?? []), ...(res.DeleteMarkers ?? [])]) {
        if (v.Key) yield { Key: v.Key, VersionId: v.VersionId };
      }
      if (!res.IsTruncated) return;
      keyMarker = res.NextKeyMarker;
      versionMarker = res.NextVersionIdMarker;
    }
  }

  async #deleteBatch(bucket: string, objects: { Key: string; VersionId?: string }[]): Promise<number> {
    let res;
    try {
      res = await this.client.send(new DeleteObjectsCommand({ Bucket: bucket, Delete: { Objects: objects, Quiet: true } }), this.#opts());
    } catch (err) {
      throw s3Error(err, `delete ${objects.length} objects in bucket "${bucket}"`, this.signal);
    }
    const failures = (res.Errors ?? []).filter((e) => e.Code !== 'NoSuchKey');
    if (failures.length > 0) {
      const first = failures[0];
      const fake = { name: first?.Code ?? 'Error', message: first?.Message, $metadata: {} };
      throw s3Error(fake, `delete "${bucket}/${first?.Key ?? ''}" (${failures.length} objects failed)`, this.signal);
    }
    return objects.length;
  }

  /** Deletes an (emptied) bucket; already gone counts as success. */
  async deleteBucket(bucket: string): Promise<void> {
    try {
      await this.client.send(new DeleteBucketCommand({ Bucket: bucket }), this.#opts());
    } catch (err) {
      if (isNotFound(err)) return;
      if (s3ErrorName(err) === 'BucketNotEmpty') {
        throw new CsiError(Code.ABORTED, `bucket "${bucket}" received new objects while it was being deleted; retry`);
      }
      throw s3Error(err, `delete bucket "${bucket}"`, this.signal);
    }
  }

  async listBuckets(): Promise<string[]> {
    const names: string[] = [];
    let token: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListBucketsCommand({ ContinuationToken: token }), this.#opts());
      } catch (err) {
        throw s3Error(err, 'list buckets', this.signal);
      }
      for (const b of res.Buckets ?? []) if (b.Name) names.push(b.Name);
      // Servers that ignore paging may echo a token with an empty page: stop rather than loop.
      token = res.ContinuationToken && res.ContinuationToken !== token && (res.Buckets ?? []).length > 0 ? res.ContinuationToken : undefined;
    } while (token);
    return names;
  }
}
