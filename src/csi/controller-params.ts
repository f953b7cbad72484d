// Pure decisions of the controller: StorageClass parameters, capacity ranges, volume capabilities and
// the volume context handed to the node. No I/O here, so all of it is unit tested with plain data.
import { type CsiError, invalidArgument, outOfRange } from '../errors.js';
import { checkEndpointUrl, isValidRegion } from '../s3/connection.js';
import type { ReclaimData } from '../s3/metadata.js';
import { isValidBucketPrefix, MAX_BUCKET_PREFIX } from '../s3/naming.js';
import { isValidBucketName, type VolumeLocation } from '../s3/volume-id.js';
import type { CapacityRange, StringMap } from './messages.js';

/** StorageClass parameters this driver understands (see docs/controller.md). */
export const PARAMETERS = {
  bucket: 'bucket',
  bucketPrefix: 'bucketPrefix',
  options: 'options',
  reclaimData: 'reclaimData',
  region: 'region',
  endpoint: 'endpoint',
  mounter: 'mounter',
} as const;
const KNOWN = new Set<string>(Object.values(PARAMETERS));
/** Set by the external-provisioner (secret references, PVC metadata); never part of the volume. */
const RESERVED_PREFIX = 'csi.storage.k8s.io/';

export const GiB = 1024 ** 3;
/** Recorded when a CreateVolume asks for no particular size (S3 itself has no size). */
export const DEFAULT_CAPACITY_BYTES = GiB;
const MAX_OPTIONS_LENGTH = 4096;

export interface VolumeParams {
  /** Shared bucket (prefix per volume); undefined = a bucket per volume. */
  sharedBucket?: string;
  bucketPrefix: string;
  options: string;
  reclaimData: ReclaimData;
  region?: string;
  endpoint?: string;
  /** What is recorded in the metadata and compared on re-create: every parameter but csi.storage.k8s.io/*. */
  recorded: Record<string, string>;
}

const bad = (name: string, why: string): CsiError => invalidArgument(`StorageClass parameter "${name}": ${why}`);

export function parseParameters(input: StringMap | undefined): VolumeParams {
  const recorded: Record<string, string> = {};
  for (const key of Object.keys(input ?? {}).sort()) {
    if (key.startsWith(RESERVED_PREFIX)) continue;
    if (!KNOWN.has(key)) throw invalidArgument(`unknown StorageClass parameter "${key}" (known: ${[...KNOWN].join(', ')})`);
    recorded[key] = (input ?? {})[key] ?? '';
  }
  const get = (k: string): string | undefined => {
    const v = recorded[k]?.trim();
    return v ? v : undefined;
  };

  const sharedBucket = get(PARAMETERS.bucket);
  if (sharedBucket !== undefined && !isValidBucketName(sharedBucket)) {
    throw bad(PARAMETERS.bucket, `"${sharedBucket.slice(0, 80)}" is not a valid bucket name (3-63 lowercase letters, digits, '.', '-')`);
  }
  const bucketPrefix = get(PARAMETERS.bucketPrefix) ?? '';
  if (!isValidBucketPrefix(bucketPrefix)) {
    throw bad(PARAMETERS.bucketPrefix, `must be lowercase letters, digits and '-', start with a letter or digit, at most ${MAX_BUCKET_PREFIX} characters`);
  }
  if (sharedBucket !== undefined && bucketPrefix) {
    throw bad(PARAMETERS.bucketPrefix, `applies to the bucket-per-volume model only; it cannot be combined with "${PARAMETERS.bucket}"`);
  }

  const options = recorded[PARAMETERS.options] ?? '';
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(options)) throw bad(PARAMETERS.options, 'must not contain control characters or newlines');
  if (options.length > MAX_OPTIONS_LENGTH) throw bad(PARAMETERS.options, `longer than ${MAX_OPTIONS_LENGTH} characters`);

  const reclaim = get(PARAMETERS.reclaimData) ?? 'delete';
  if (reclaim !== 'delete' && reclaim !== 'retain') throw bad(PARAMETERS.reclaimData, `"${reclaim.slice(0, 40)}" is not one of retain, delete`);

  const region = get(PARAMETERS.region);
  if (region !== undefined && !isValidRegion(region)) throw bad(PARAMETERS.region, 'is not a region name');

  let endpoint = get(PARAMETERS.endpoint);
  if (endpoint !== undefined) {
    try {
      endpoint = checkEndpointUrl(endpoint);
    } catch (err) {
      throw bad(PARAMETERS.endpoint, (err as Error).message);
    }
  }

  const mounter = get(PARAMETERS.mounter);
  if (mounter !== undefined && mounter !== 's3fs') throw bad(PARAMETERS.mounter, `only "s3fs" is supported, not "${mounter.slice(0, 40)}"`);

  return { sharedBucket, bucketPrefix, options, reclaimData: reclaim, region, endpoint, recorded };
}

/** Parameters as recorded; tolerant of records written by other versions (never throws). */
export function recordedParams(recorded: Record<string, string>): VolumeParams {
  try {
    return parseParameters(recorded);
  } catch {
    return {
      sharedBucket: recorded.bucket,
      bucketPrefix: recorded.bucketPrefix ?? '',
      options: recorded.options ?? '',
      reclaimData: recorded.reclaimData === 'retain' ? 'retain' : 'delete',
      region: recorded.region || undefined,
      endpoint: recorded.endpoint || undefined,
      recorded,
    };
  }
}

export function sameParameters(a: Record<string, string>, b: Record<string, string>): boolean {
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && a[k] === b[k]);
}

/** What the node needs to mount, never secrets. */
export function volumeContext(loc: VolumeLocation, params: Pick<VolumeParams, 'options' | 'region' | 'endpoint'>): StringMap {
  const ctx: StringMap = { bucket: loc.bucket, prefix: loc.prefix, options: params.options };
  if (params.region) ctx.region = params.region;
  if (params.endpoint) ctx.endpoint = params.endpoint;
  return ctx;
}

export function checkRange(range: CapacityRange | null | undefined): { required: number; limit: number } {
  const required = range?.required_bytes ?? 0;
  const limit = range?.limit_bytes ?? 0;
  if (required < 0 || limit < 0) throw invalidArgument('capacity_range: negative byte counts');
  if (limit > 0 && required > limit) throw outOfRange(`capacity_range: required_bytes ${required} exceeds limit_bytes ${limit}`);
  return { required, limit };
}

/**
 * The capacity to record for a new volume: the required bytes, else the default bounded by the
 * limit. S3 does not enforce it; it is what Kubernetes shows and what expansion grows.
 */
export function capacityFor(range: CapacityRange | null | undefined): number {
  const { required, limit } = checkRange(range);
  if (required > 0) return required;
  if (limit > 0) return Math.min(DEFAULT_CAPACITY_BYTES, limit);
  return DEFAULT_CAPACITY_BYTES;
}

/** Whether an existing volume of `capacity` satisfies a (re-)create request's range. */
export function capacityFits(capacity: number, range: CapacityRange | null | undefined): boolean {
  const { required, limit } = checkRange(range);
  return capacity >= required && (limit === 0 || capacity <= limit);
}

