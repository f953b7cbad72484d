// Volume ids are `<bucket>` or `<bucket>/<prefix>` — the volumeHandle form yandex-cloud/k8s-csi-s3
// uses, so static PVs and migrated volumes keep working. Everything the node needs to find the data
// is in the id; endpoint and credentials come from secrets.
import { invalidArgument } from '../errors.js';

export interface VolumeLocation {
  bucket: string;
  /** Key prefix inside the bucket without leading/trailing slash; '' = the whole bucket. */
  prefix: string;
}

export const MAX_VOLUME_ID_BYTES = 128;
const BUCKET_RE = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const PREFIX_SEGMENT_RE = /^[A-Za-z0-9!_.*'()-]+$/;

/** A key prefix of path segments without `.`/`..` and without characters S3 or s3fs treat specially. */
export function isValidPrefix(prefix: string): boolean {
  return prefix.split('/').every((seg) => PREFIX_SEGMENT_RE.test(seg) && seg !== '.' && seg !== '..');
}

export function isValidBucketName(name: string): boolean {
  return BUCKET_RE.test(name) && !name.includes('..') && !/^\d+\.\d+\.\d+\.\d+$/.test(name) && !name.startsWith('xn--');
}

/** Parses a volume id; throws INVALID_ARGUMENT... only for ids that could never name a volume. */
export function parseVolumeId(id: string): VolumeLocation {
  if (!id) throw invalidArgument('volume_id is required');
  if (Buffer.byteLength(id) > MAX_VOLUME_ID_BYTES) throw invalidArgument(`volume_id longer than ${MAX_VOLUME_ID_BYTES} bytes`);
  const slash = id.indexOf('/');
  const bucket = slash < 0 ? id : id.slice(0, slash);
  const prefix = slash < 0 ? '' : id.slice(slash + 1).replace(/\/+$/, '');
  if (!isValidBucketName(bucket)) throw invalidArgument(`volume_id "${id}": "${bucket}" is not a valid bucket name`);
  if (prefix && !isValidPrefix(prefix)) {
    throw invalidArgument(`volume_id "${id}": invalid prefix`);
  }
  return { bucket, prefix };
}

export function formatVolumeId(loc: VolumeLocation): string {
  return loc.prefix ? `${loc.bucket}/${loc.prefix}` : loc.bucket;
}
