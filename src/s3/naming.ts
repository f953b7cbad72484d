// Where a dynamically provisioned volume lives, derived from its CSI name alone (deterministic, so a
// retried CreateVolume — on any replica — lands on the same bucket or prefix without local state).
import { createHash } from 'node:crypto';
import { MAX_VOLUME_ID_BYTES } from './volume-id.js';

const HASH_CHARS = 12;
const MAX_BUCKET = 63;
/** Longest `bucketPrefix` accepted: leaves room for a hash and a few readable characters. */
export const MAX_BUCKET_PREFIX = MAX_BUCKET - HASH_CHARS - 5;

const shortHash = (text: string): string => createHash('sha256').update(text).digest('hex').slice(0, HASH_CHARS);

/** `bucketPrefix` StorageClass parameter: lowercase letters, digits and '-', not starting with '-'. */
export function isValidBucketPrefix(prefix: string): boolean {
  return prefix.length <= MAX_BUCKET_PREFIX && /^([a-z0-9][a-z0-9-]*)?$/.test(prefix);
}

/**
 * Bucket for the bucket-per-volume model. Names that are already valid DNS-style bucket names are
 * used as they are (readable: `pvc-<uid>`); anything that had to be changed (case, characters,
 * length) gets a hash of the original name so two names never collapse onto one bucket. Dots are
 * avoided on purpose: they break virtual-host TLS.
 */
export function bucketNameFor(volumeName: string, bucketPrefix = ''): string {
  const plain = `${bucketPrefix}${volumeName}`;
  if (plain.length >= 3 && plain.length <= MAX_BUCKET && /^[a-z0-9][a-z0-9-]*[a-z0-9]$/.test(plain) && !plain.startsWith('xn--')) {
    return plain;
  }
  const sanitized = volumeName.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-{2,}/g, '-').replace(/^-+|-+$/g, '');
  const room = MAX_BUCKET - bucketPrefix.length - HASH_CHARS - 1;
  const head = sanitized.slice(0, room).replace(/-+$/, '');
  const name = `${bucketPrefix}${head ? `${head}-` : ''}${shortHash(volumeName)}`;
  // A hash starting with a digit after an empty prefix is still valid; "xn--" cannot arise here.
  return name;
}

/**
 * Key prefix (one path segment) for the shared-bucket model. Must keep `<bucket>/<prefix>` within
 * the 128-byte volume id limit, so long names are shortened and hashed.
 */
export function prefixNameFor(volumeName: string, bucket: string): string {
  const max = MAX_VOLUME_ID_BYTES - bucket.length - 1;
  if (volumeName.length <= max && /^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(volumeName) && !volumeName.includes('..')) {
    return volumeName;
  }
  const sanitized = volumeName.replace(/[^A-Za-z0-9_.-]+/g, '-').replace(/\.{2,}/g, '.').replace(/^[^A-Za-z0-9]+/, '');
  const room = max - HASH_CHARS - 1;
  const head = sanitized.slice(0, room).replace(/[-.]+$/, '');
  return `${head ? `${head}-` : ''}${shortHash(volumeName)}`;
}
